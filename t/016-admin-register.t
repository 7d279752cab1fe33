# Shared-secret registration, compatible with Synapse's
# /_synapse/admin/v1/register (nonce, HMAC-SHA1, admin flag), and
# matrixctl register, which uses it.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Digest::SHA qw(hmac_sha1_hex);
use JSON::PP;

my $srv = server();
my $c = client();
my $secret = 'test-shared-secret';
my $path = '/_synapse/admin/v1/register';

sub mac { my ($nonce, $user, $pw, $admin) = @_;
          hmac_sha1_hex(join("\0", $nonce, $user, $pw, $admin ? 'admin' : 'notadmin'), $secret) }

my ($status, $json) = $c->get($path);
is($status, 200, 'GET gives a nonce');
my $nonce = $json->{nonce};
like($nonce, qr/^[0-9a-f]{32}$/, 'a random one');

($status, $json) = $c->post($path, { nonce => $nonce, username => 'root', password => 'pw-root',
                                     admin => JSON::PP::true, mac => mac($nonce, 'root', 'pw-root', 1) });
is($status, 200, 'POST with the right HMAC registers');
is($json->{user_id}, '@root:localhost', 'the user');
like($json->{access_token}, qr/^mxa_/, 'with a token');
ok($json->{device_id}, 'and a device');
is($srv->redis_cmd('HGET', 'mx:{@root:localhost}:user', 'admin'), '1', 'an admin');
is((client(token => $json->{access_token})->get('/_matrix/client/v3/account/whoami'))[1]{user_id},
   '@root:localhost', 'the token works');

($status, $json) = $c->post($path, { nonce => $nonce, username => 'root2', password => 'x',
                                     mac => mac($nonce, 'root2', 'x', 0) });
is($status, 400, 'a nonce works once');
is($json->{error}, 'unrecognised nonce', 'unrecognised nonce');

$nonce = ($c->get($path))[1]{nonce};
($status, $json) = $c->post($path, { nonce => $nonce, username => 'eve', password => 'x',
                                     mac => mac($nonce, 'eve', 'x', 1) });
is($status, 403, 'a HMAC for other fields (admin) is refused');
is($json->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');
($status, $json) = $c->post($path, { nonce => $nonce, username => 'eve', password => 'x',
                                     mac => 'f' x 40 });
is($json->{error}, 'HMAC incorrect', 'HMAC incorrect');
($status, $json) = $c->post($path, { nonce => $nonce, username => 'eve', password => 'x',
                                     mac => mac($nonce, 'eve', 'x', 0) });
is($status, 200, 'the nonce survives a wrong HMAC');
is($srv->redis_cmd('HGET', 'mx:{@eve:localhost}:user', 'admin'), '0', 'not an admin');

$nonce = ($c->get($path))[1]{nonce};
($status, $json) = $c->post($path, { nonce => $nonce, username => 'eve', password => 'y',
                                     mac => mac($nonce, 'eve', 'y', 0) });
is($json->{errcode}, 'M_USER_IN_USE', 'a taken name');
($status, $json) = $c->post($path, { nonce => $nonce, username => 'eve' });
is($json->{errcode}, 'M_MISSING_PARAM', 'missing fields');

# matrixctl register
my $ctl = "$Test::Matrix::Server::Build/bin/matrixctl";
my $conf = $srv->dir . '/nginx.conf';
my $out = qx{MATRIX_URL=${\ $srv->url} $ctl register -c $conf --password 'pw frank' --admin frank 2>&1};
is($?, 0, 'matrixctl register') or diag $out;
like($out, qr/^user_id: \@frank:localhost\naccess_token: mxa_\S+\n\z/, 'prints the user and a token');
is($srv->redis_cmd('HGET', 'mx:{@frank:localhost}:user', 'admin'), '1', 'as admin');
is((client()->login('frank', 'pw frank'))[0], 200, 'who can log in with the password');
$out = qx{echo 'pw-gina' | MATRIX_URL=${\ $srv->url} $ctl register -c $conf gina 2>&1};
is($?, 0, 'matrixctl register reads the password from stdin');
is((client()->login('gina', 'pw-gina'))[0], 200, 'that password');
$out = qx{MATRIX_URL=${\ $srv->url} $ctl register -c $conf --password x gina 2>&1};
isnt($?, 0, 'matrixctl register fails for a taken name');
like($out, qr/User ID already taken/, 'and says why');

# a server without a shared secret has the API off
my $off = Test::Matrix::Server->new(name => 'admin-off', env => { MATRIX_SHARED_SECRET => '' })->start;
($status, $json) = Test::Matrix::Client->new(server => $off)->get($path);
is($status, 400, 'without a shared secret the API is off');
like($json->{error}, qr/not enabled/, 'and says so');
$off->stop;

done_testing();

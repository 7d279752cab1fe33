# matrix_registration token: registration needs a token
# (m.login.registration_token) made with matrixctl registration-token;
# uses and expiry are kept; the validity endpoint; closed registration;
# guests off by default.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;
use Time::HiRes qw(sleep);

$Test::Matrix::ServerOptions{env} = { MATRIX_REGISTRATION => 'token' };
my $srv = server();
my $c = client();
my $ctl = "$Test::Matrix::Server::Build/bin/matrixctl";
my $conf = $srv->dir . '/nginx.conf';
my $path = '/_matrix/client/v3/register';
my $validity = '/_matrix/client/v1/register/m.login.registration_token/validity';

my $token = qx{$ctl registration-token add -c $conf --uses 1 2>/dev/null};
chomp $token;
like($token, qr/^[A-Za-z0-9]{16}$/, 'matrixctl makes a token');

my ($status, $json) = $c->get("$validity?token=$token");
is_deeply($json, { valid => JSON::PP::true }, 'it is valid');
($status, $json) = $c->get("$validity?token=nosuchtoken");
is_deeply($json, { valid => JSON::PP::false }, 'another is not');
($status, $json) = $c->get("$validity?token=bad%20token");
is($json->{errcode}, 'M_INVALID_PARAM', 'a malformed one is refused');

($status, $json) = $c->post($path, { username => 'alice', password => 'pw' });
is($status, 401, 'registration asks for auth');
is_deeply($json->{flows}, [ { stages => [ 'm.login.registration_token' ] } ], 'a registration token');
my $session = $json->{session};

($status, $json) = $c->post($path, { username => 'alice', password => 'pw',
                                     auth => { type => 'm.login.dummy', session => $session } });
is($status, 400, 'the dummy stage is not offered');

($status, $json) = $c->post($path, { username => 'alice', password => 'pw',
                                     auth => { type => 'm.login.registration_token', token => 'wrong', session => $session } });
is($status, 401, 'a wrong token: 401');
is($json->{errcode}, 'M_UNAUTHORIZED', 'M_UNAUTHORIZED');

($status, $json) = $c->post($path, { username => 'alice', password => 'pw',
                                     auth => { type => 'm.login.registration_token', token => $token, session => $session } });
is($status, 200, 'the right token registers');
is($json->{user_id}, '@alice:localhost', 'alice');

($status, $json) = $c->get("$validity?token=$token");
is_deeply($json, { valid => JSON::PP::false }, 'its one use is spent');
($status, $json) = $c->post($path, { username => 'bob', password => 'pw',
                                     auth => { type => 'm.login.registration_token', token => $token } });
is($status, 401, 'a spent token registers no one');

my $list = qx{$ctl registration-token list -c $conf 2>/dev/null};
like($list, qr/^\Q$token\E .*completed=1/m, 'matrixctl lists it as used');

# expiry
my $short = qx{$ctl registration-token add -c $conf --expires-in 1 shortlived 2>/dev/null};
chomp $short;
is($short, 'shortlived', 'a token of our own naming, valid for a second');
is_deeply(($c->get("$validity?token=shortlived"))[1], { valid => JSON::PP::true }, 'valid now');
sleep 1.3;
is_deeply(($c->get("$validity?token=shortlived"))[1], { valid => JSON::PP::false }, 'not after');

system("$ctl registration-token delete -c $conf shortlived >/dev/null 2>&1");
is($?, 0, 'matrixctl deletes a token');
unlike(qx{$ctl registration-token list -c $conf 2>/dev/null}, qr/shortlived/, 'it is gone');

($status, $json) = $c->post("$path?kind=guest", {});
is($status, 403, 'guests are off by default');
is($json->{errcode}, 'M_GUEST_ACCESS_FORBIDDEN', 'M_GUEST_ACCESS_FORBIDDEN');

my $closed = Test::Matrix::Server->new(name => 'reg-closed', env => { MATRIX_REGISTRATION => 'closed' })->start;
($status, $json) = Test::Matrix::Client->new(server => $closed)->post($path, { username => 'x', password => 'y' });
is($status, 403, 'closed registration: 403');
is($json->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');
is($json->{error}, 'Registration is disabled', 'saying so');
$closed->stop;

done_testing();

# Registration: user-interactive auth with m.login.dummy, sessions, the
# checks made before auth (names taken or invalid), inhibit_login,
# device_id, initial_device_display_name, refresh tokens, guests, and
# concurrent registration of one name.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;
use POSIX qw(:sys_wait_h);

$Test::Matrix::ServerOptions{env} = { MATRIX_GUESTS => 'on' };

my $srv = server();
my $c = client();
my $path = '/_matrix/client/v3/register';

# --- the user-interactive dance ---------------------------------------------------

my ($status, $json) = $c->post($path, { username => 'alice', password => 'pw-alice' });
is($status, 401, 'no auth: 401');
is_deeply($json->{flows}, [ { stages => [ 'm.login.dummy' ] } ], 'offers m.login.dummy');
is_deeply($json->{params}, {}, 'with params');
like($json->{session}, qr/^\w{24}$/, 'and a session');
my $session = $json->{session};

($status, $json) = $c->post($path, { username => 'alice', password => 'pw-alice',
                                     auth => { type => 'm.login.dummy', session => $session } });
is($status, 200, 'the dummy stage completes registration');
is($json->{user_id}, '@alice:localhost', 'user_id');
like($json->{access_token}, qr/^mxa_/, 'an access token');
like($json->{device_id}, qr/^[A-Z]{10}$/, 'a generated device ID');
is($json->{home_server}, 'localhost', 'home_server');
ok(!exists $json->{refresh_token}, 'no refresh token unless asked');

my $who = client(token => $json->{access_token});
($status, $json) = $who->get('/_matrix/client/v3/account/whoami');
is_deeply($json, { user_id => '@alice:localhost', device_id => $json->{device_id}, is_guest => JSON::PP::false },
          'the token works');

# --- sessions cannot be reused or forged ---------------------------------------------

($status, $json) = $c->post($path, { username => 'alice2', password => 'x',
                                     auth => { type => 'm.login.dummy', session => $session } });
is($status, 400, 'a used session cannot be used again');
is($json->{errcode}, 'M_UNKNOWN', 'it is unknown');

($status, $json) = $c->post($path, { username => 'alice3', password => 'x',
                                     auth => { type => 'm.login.dummy', session => 'forgedsession0000000000' } });
is($status, 400, 'a forged session is refused');
is($json->{error}, 'Unknown session ID', 'as unknown');

($status, $json) = $c->post($path, { username => 'alice4', password => 'x' });
my $other = $json->{session};
($status, $json) = $c->put("/_matrix/client/v3/user/\@x:localhost/account_data/a.b",
                           { auth => { session => $other } });
isnt($status, 200, 'a session does not authorise another endpoint');

# an auth without a session starts one and completes at once
($status, $json) = $c->post($path, { username => 'bob', password => 'pw-bob',
                                     auth => { type => 'm.login.dummy' } });
is($status, 200, 'dummy auth without a session registers too');
is($json->{user_id}, '@bob:localhost', 'as bob');

# an unknown stage type
($status, $json) = $c->post($path, { username => 'carol', password => 'x',
                                     auth => { type => 'm.login.recaptcha' } });
is($status, 400, 'a stage not offered is refused');
is($json->{errcode}, 'M_UNRECOGNIZED', 'as unrecognized');

# --- checks before auth -------------------------------------------------------------

($status, $json) = $c->post($path, { username => 'alice', password => 'x' });
is($status, 400, 'a name in use: 400 before any auth');
is($json->{errcode}, 'M_USER_IN_USE', 'M_USER_IN_USE');

($status, $json) = $c->post($path, { username => 'ALICE', password => 'x' });
is($json->{errcode}, 'M_USER_IN_USE', 'names are case folded: ALICE is alice');

for my $bad ('has space', 'ümlaut', 'colon:name', '12345', '_hidden', 'x' x 300, '') {
    ($status, $json) = $c->post($path, { username => $bad, password => 'x' });
    is($status, 400, "username '" . substr($bad, 0, 20) . "' refused");
    is($json->{errcode}, 'M_INVALID_USERNAME', 'M_INVALID_USERNAME');
}

($status, $json) = $c->post($path, { username => 'dave' });
is($json->{errcode}, 'M_MISSING_PARAM', 'no password: M_MISSING_PARAM');
($status, $json) = $c->post($path, { username => 'dave', password => 12 });
is($json->{errcode}, 'M_INVALID_PARAM', 'a password that is no string: M_INVALID_PARAM');
($status, $json) = $c->post($path, { username => 7, password => 'x' });
is($json->{errcode}, 'M_INVALID_PARAM', 'a username that is no string: M_INVALID_PARAM');
($status, $json) = $c->post($path, { username => 'dave', password => 'x', inhibit_login => 'yes' });
is($json->{errcode}, 'M_INVALID_PARAM', 'inhibit_login must be a boolean');
($status, $json) = $c->post($path, { username => 'dave', password => 'x' x 600 });
($status, $json) = $c->post($path, { username => 'dave', password => 'x' x 600,
                                     auth => { type => 'm.login.dummy' } });
is($status, 400, 'a password over 512 bytes is refused');
($status, $json) = $c->post("$path?kind=admin", { username => 'dave', password => 'x' });
is($json->{errcode}, 'M_INVALID_PARAM', 'an unknown kind');

# --- options ------------------------------------------------------------------------

my $d = client();
($status, $json) = $d->register('dave', 'pw-dave', device_id => 'MYPHONE',
                                initial_device_display_name => 'Dave\'s phone');
is($status, 200, 'register with a device ID of our own');
is($json->{device_id}, 'MYPHONE', 'it is used');
($status, $json) = $d->get('/_matrix/client/v3/devices/MYPHONE');
is($json->{display_name}, "Dave's phone", 'with its display name');

my $e = client();
($status, $json) = $e->register('erin', 'pw-erin', inhibit_login => JSON::PP::true);
is($status, 200, 'inhibit_login registers');
is_deeply([ sort keys %$json ], [ 'home_server', 'user_id' ], 'but returns no token or device');
($status, $json) = $e->login('erin', 'pw-erin');
is($status, 200, 'and the account can log in');

my $f = client();
($status, $json) = $f->register('frank', 'pw-frank', refresh_token => JSON::PP::true);
like($json->{refresh_token}, qr/^mxr_/, 'refresh_token: true gives a refresh token');
cmp_ok($json->{expires_in_ms}, '>', 0, 'and an expiring access token');

my $g = client();
($status, $json) = $g->register(undef, 'pw-anon');
is($status, 200, 'no username: one is made up');
like($json->{user_id}, qr/^\@[a-z]{12}:localhost$/, 'a valid one: ' . $json->{user_id});

is($srv->redis_cmd('HGET', '{@alice:localhost}', 'x'), undef, 'sanity');
my $hash = $srv->redis_cmd('HGET', 'mx:{@alice:localhost}:user', 'password');
like($hash, qr/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/, 'the password is stored as an argon2id hash');
unlike($hash, qr/pw-alice/, 'not in clear');

# --- availability -------------------------------------------------------------------

($status, $json) = $c->get('/_matrix/client/v3/register/available?username=alice');
is($status, 400, 'available: a taken name');
is($json->{errcode}, 'M_USER_IN_USE', 'M_USER_IN_USE');
($status, $json) = $c->get('/_matrix/client/v3/register/available?username=newname');
is_deeply($json, { available => JSON::PP::true }, 'a free name is available');
($status, $json) = $c->get('/_matrix/client/v3/register/available?username=Bad%20Name');
is($json->{errcode}, 'M_INVALID_USERNAME', 'an invalid name');
($status, $json) = $c->get('/_matrix/client/v3/register/available');
is($json->{errcode}, 'M_MISSING_PARAM', 'no name');

# --- guests -------------------------------------------------------------------------

($status, $json) = $c->post("$path?kind=guest", { username => 'ignored', device_id => 'IGNORED',
                                                  initial_device_display_name => 'Guest tab' });
is($status, 200, 'a guest account, without user-interactive auth');
like($json->{user_id}, qr/^\@\d+:localhost$/, 'numbered');
isnt($json->{device_id}, 'IGNORED', 'the device ID given is ignored');
my $guest = client(token => $json->{access_token});
($status, $json) = $guest->get('/_matrix/client/v3/account/whoami');
is($json->{is_guest}, JSON::PP::true, 'whoami says guest');
($status, $json) = $guest->get('/_matrix/client/v3/devices');
is($json->{devices}[0]{display_name}, 'Guest tab', 'initial_device_display_name is kept');
($status, $json) = $guest->post('/_matrix/client/v3/account/password', { new_password => 'x' });
is($status, 403, 'a guest cannot use endpoints guests may not');
is($json->{errcode}, 'M_GUEST_ACCESS_FORBIDDEN', 'M_GUEST_ACCESS_FORBIDDEN');
($status, $json) = $guest->put('/_matrix/client/v3/profile/' . $guest->request('GET', '/_matrix/client/v3/account/whoami')->{json}{user_id} . '/displayname',
                              { displayname => 'Visitor' });
is($status, 200, 'a guest may set a displayname');

# --- one name, registered by many at once: exactly one wins -----------------------------

my @kids;
for my $i (1 .. 8) {
    my $pid = fork;
    if ($pid == 0) {
        my $k = client();
        my ($s) = $k->register('racer', "pw-$i");
        POSIX::_exit($s == 200 ? 0 : 1);
    }
    push @kids, $pid;
}
my $wins = 0;
for (@kids) { waitpid($_, 0); $wins++ if $? == 0 }
is($wins, 1, 'eight concurrent registrations of one name: exactly one wins');

done_testing();

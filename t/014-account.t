# Password changes and deactivation, both behind user-interactive auth:
# logout_devices, the old password refused, a deactivated account can no
# longer log in, its tokens die, its name is never reused.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;

my $srv = server();
my $a1 = client();
$a1->register('alice', 'old-pw');
my $a2 = client();
$a2->login('alice', 'old-pw');
my $a3 = client();
$a3->login('alice', 'old-pw');

my ($status, $json) = $a1->post('/_matrix/client/v3/account/password', { new_password => 'new-pw' });
is($status, 401, 'changing the password asks for the current one');
is_deeply($json->{flows}, [ { stages => [ 'm.login.password' ] } ], 'through m.login.password');

($status, $json) = $a1->with_password('POST', '/_matrix/client/v3/account/password',
                                      { new_password => 'new-pw', logout_devices => JSON::PP::false }, 'wrong');
is($status, 401, 'a wrong current password: 401');
is($json->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');

($status, $json) = $a1->with_password('POST', '/_matrix/client/v3/account/password',
                                      { new_password => 'new-pw', logout_devices => JSON::PP::false }, 'old-pw');
is($status, 200, 'password changed, keeping other devices');
is(($a2->get('/_matrix/client/v3/account/whoami'))[0], 200, 'other devices stay logged in');
is((client()->login('alice', 'old-pw'))[0], 403, 'the old password no longer works');
is((client()->login('alice', 'new-pw'))[0], 200, 'the new one does');

($status, $json) = $a1->with_password('POST', '/_matrix/client/v3/account/password',
                                      { new_password => 'newer-pw' }, 'new-pw');
is($status, 200, 'password changed again, logout_devices by default');
is(($a2->get('/_matrix/client/v3/account/whoami'))[0], 401, 'other devices are logged out');
is(($a3->get('/_matrix/client/v3/account/whoami'))[0], 401, 'all of them');
is(($a1->get('/_matrix/client/v3/account/whoami'))[0], 200, 'but not the one that asked');

($status, $json) = $a1->post('/_matrix/client/v3/account/password', {});
is($json->{errcode}, 'M_MISSING_PARAM', 'no new_password: M_MISSING_PARAM');
($status, $json) = $a1->post('/_matrix/client/v3/account/password', { new_password => 'x', logout_devices => 'yes' });
is($json->{errcode}, 'M_BAD_JSON', 'logout_devices must be a boolean');

# --- deactivation ---------------------------------------------------------------------------

my $b1 = client();
$b1->register('bob', 'pw-bob');
my $b2 = client();
$b2->login('bob', 'pw-bob');
$b1->put('/_matrix/client/v3/profile/@bob:localhost/displayname', { displayname => 'Bob' });

($status, $json) = $b1->post('/_matrix/client/v3/account/deactivate', {});
is($status, 401, 'deactivation asks for the password');
($status, $json) = $b1->with_password('POST', '/_matrix/client/v3/account/deactivate', {}, 'pw-bob');
is($status, 200, 'deactivated');
is_deeply($json, { id_server_unbind_result => 'success' }, 'nothing to unbind');

is(($b1->get('/_matrix/client/v3/account/whoami'))[0], 401, 'its tokens die');
is(($b2->get('/_matrix/client/v3/account/whoami'))[0], 401, 'all of them');
($status, $json) = client()->login('bob', 'pw-bob');
is($status, 403, 'it can no longer log in');
is($json->{errcode}, 'M_FORBIDDEN', 'same answer as a wrong password');
($status, $json) = client()->register('bob', 'pw-new');
is($json->{errcode}, 'M_USER_IN_USE', 'its name is never given out again');
($status, $json) = client()->get('/_matrix/client/v3/profile/@bob:localhost');
is($status, 404, 'its profile is gone');
my $keys = $srv->redis_cmd('KEYS', 'mx:{@bob:localhost}:*');
is_deeply([ sort @$keys ], [ 'mx:{@bob:localhost}:user' ], 'nothing but the user record is left');
is($srv->redis_cmd('HGET', 'mx:{@bob:localhost}:user', 'password'), undef, 'not even the password hash');

# --- a password is never stored or logged in clear ----------------------------------------

my $secret = 'Correct-Horse-' . int(rand(1e9));
my $z = client();
$z->register('zed', $secret);
$z->login('zed', $secret);
$z->login('zed', 'not-' . $secret);
$z->with_password('POST', '/_matrix/client/v3/account/password', { new_password => "$secret-2",
                  logout_devices => JSON::PP::false }, $secret);

my $found = 0;
my $all = $srv->redis_cmd('KEYS', '*');
for my $k (@$all) {
    my $type = $srv->redis_cmd('TYPE', $k);
    my $v = $type eq 'hash' ? join("\0", @{ $srv->redis_cmd('HGETALL', $k) })
          : $type eq 'string' ? $srv->redis_cmd('GET', $k)
          : $type eq 'set' ? join("\0", @{ $srv->redis_cmd('SMEMBERS', $k) }) : '';
    $found++ if index($k . ($v // ''), $secret) >= 0;
}
is($found, 0, 'no Redis key or value holds the password');
my $logs = join '', map { Test::Matrix::Server::slurp($_) // '' } glob($srv->dir . '/log/*');
is(index($logs, $secret), -1, 'no log holds it');
$srv->redis_cmd('BGREWRITEAOF');
sleep 1;
my $aof = join '', map { Test::Matrix::Server::slurp($_) // '' } glob($srv->dir . '/redis/appendonlydir/*');
ok(length $aof, 'the append-only files were read');
is(index($aof, $secret), -1, 'nor does the append-only file on disk');

done_testing();

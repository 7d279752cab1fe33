# Devices: list, look at, rename, delete with user-interactive auth
# (m.login.password), delete several; a deleted device's token dies.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $a1 = client();
$a1->register('alice', 'pw-alice', initial_device_display_name => 'Laptop');
my $a2 = client();
$a2->login('alice', 'pw-alice', initial_device_display_name => 'Phone');
my $a3 = client();
$a3->login('alice', 'pw-alice');
my $bob = client();
$bob->register('bob', 'pw-bob');

my ($status, $json) = $a1->get('/_matrix/client/v3/devices');
is($status, 200, 'GET /devices');
is(scalar @{ $json->{devices} }, 3, 'three devices');
my %dev = map { $_->{device_id} => $_ } @{ $json->{devices} };
is($dev{ $a1->device_id }{display_name}, 'Laptop', 'with their display names');
is($dev{ $a2->device_id }{display_name}, 'Phone', 'each');
ok(!exists $dev{ $a3->device_id }{display_name}, 'none when none was given');
like($dev{ $a1->device_id }{last_seen_ts}, qr/^\d{13}$/, 'last_seen_ts');
is($dev{ $a1->device_id }{last_seen_ip}, '127.0.0.1', 'last_seen_ip once used');

($status, $json) = $a1->get('/_matrix/client/v3/devices/' . $a2->device_id);
is($json->{device_id}, $a2->device_id, 'GET one device');
is($json->{display_name}, 'Phone', 'its name');
($status, $json) = $a1->get('/_matrix/client/v3/devices/NOSUCHDEVICE');
is($status, 404, 'an unknown device: 404');
is($json->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');
($status, $json) = $bob->get('/_matrix/client/v3/devices/' . $a1->device_id);
is($status, 404, 'someone else\'s device is not found either');

# --- rename ---------------------------------------------------------------------------------

($status, $json) = $a1->put('/_matrix/client/v3/devices/' . $a2->device_id, { display_name => 'Old phone' });
is($status, 200, 'rename a device');
is(($a1->get('/_matrix/client/v3/devices/' . $a2->device_id))[1]{display_name}, 'Old phone', 'renamed');
($status, $json) = $a1->put('/_matrix/client/v3/devices/' . $a2->device_id, { display_name => 5 });
is($json->{errcode}, 'M_INVALID_PARAM', 'a display name that is no string');
($status, $json) = $a1->put('/_matrix/client/v3/devices/NOSUCH', { display_name => 'x' });
is($status, 404, 'renaming an unknown device: 404');
($status, $json) = $bob->put('/_matrix/client/v3/devices/' . $a2->device_id, { display_name => 'mine' });
is($status, 404, 'nor can another user rename it');
is(($a1->get('/_matrix/client/v3/devices/' . $a2->device_id))[1]{display_name}, 'Old phone', 'unchanged');

# --- delete one: user-interactive auth ---------------------------------------------------------

my $id2 = $a2->device_id;
($status, $json) = $a1->delete("/_matrix/client/v3/devices/$id2");
is($status, 401, 'deleting a device asks for auth');
is_deeply($json->{flows}, [ { stages => [ 'm.login.password' ] } ], 'the password');
my $session = $json->{session};

($status, $json) = $a1->delete("/_matrix/client/v3/devices/$id2", {
    auth => { type => 'm.login.password', session => $session, password => 'wrong',
              identifier => { type => 'm.id.user', user => 'alice' } } });
is($status, 401, 'a wrong password: 401 again');
is($json->{errcode}, 'M_FORBIDDEN', 'with M_FORBIDDEN');
is($json->{session}, $session, 'in the same session');
ok(!exists $json->{completed}, 'nothing completed');
is(($a2->get('/_matrix/client/v3/account/whoami'))[0], 200, 'the device still works');

($status, $json) = $a1->delete("/_matrix/client/v3/devices/$id2", {
    auth => { type => 'm.login.password', session => $session, password => 'pw-bob',
              identifier => { type => 'm.id.user', user => 'bob' } } });
is($json->{errcode}, 'M_FORBIDDEN', 'another user\'s password does not do');

($status, $json) = $a1->delete("/_matrix/client/v3/devices/$id2", {
    auth => { type => 'm.login.password', session => $session, password => 'pw-alice',
              identifier => { type => 'm.id.user', user => 'alice' } } });
is($status, 200, 'the right password deletes the device');
is(($a2->get('/_matrix/client/v3/account/whoami'))[0], 401, 'its token stops working');
is(($a1->get("/_matrix/client/v3/devices/$id2"))[0], 404, 'it is gone');

# a session started on one endpoint cannot finish another
($status, $json) = $a1->delete('/_matrix/client/v3/devices/' . $a3->device_id);
$session = $json->{session};
($status, $json) = $a1->post('/_matrix/client/v3/delete_devices', { devices => [ $a1->device_id ],
    auth => { type => 'm.login.password', session => $session, password => 'pw-alice',
              identifier => { type => 'm.id.user', user => 'alice' } } });
is($status, 403, 'a session of another endpoint is refused');
is(($a1->get('/_matrix/client/v3/account/whoami'))[0], 200, 'nothing was deleted');

# nor by another user
($status, $json) = $bob->delete('/_matrix/client/v3/devices/' . $bob->device_id, {
    auth => { type => 'm.login.password', session => $session, password => 'pw-bob',
              identifier => { type => 'm.id.user', user => 'bob' } } });
is($status, 403, 'nor one of another user');

# --- delete several ---------------------------------------------------------------------------

my @more = map { my $k = client(); $k->login('alice', 'pw-alice'); $k } 1 .. 3;
($status, $json) = $a1->with_password('POST', '/_matrix/client/v3/delete_devices',
                                      { devices => [ map { $_->device_id } @more, $a3 ] }, 'pw-alice');
is($status, 200, 'delete_devices');
is(scalar(grep { ($_->get('/_matrix/client/v3/account/whoami'))[0] == 401 } @more, $a3), 4,
   'their tokens stop working');
is(($a1->get('/_matrix/client/v3/account/whoami'))[0], 200, 'the others keep working');
is(scalar @{ ($a1->get('/_matrix/client/v3/devices'))[1]{devices} }, 1, 'one device left');

($status, $json) = $a1->post('/_matrix/client/v3/delete_devices', { devices => 'all' });
is($json->{errcode}, 'M_BAD_JSON', 'devices must be a list');
($status, $json) = $a1->post('/_matrix/client/v3/delete_devices', {});
is($json->{errcode}, 'M_MISSING_PARAM', 'devices is required');
($status, $json) = $a1->post('/_matrix/client/v3/delete_devices', { devices => [ 1 ] });
is($json->{errcode}, 'M_BAD_JSON', 'of strings');

done_testing();

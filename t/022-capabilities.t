# GET /capabilities: the room versions of core's table, default 12, and
# only what this server lets a user (or a guest) do.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $all_stable = { map { $_ => 'stable' } 1 .. 12 };

my $user = client(token => server()->make_token(user_id => '@alice:localhost'));
my ($status, $json) = $user->get('/_matrix/client/v3/capabilities');
is($status, 200, 'capabilities of a user');
is_deeply($json, {
    capabilities => {
        'm.room_versions'            => { default => '12', available => $all_stable },
        'm.change_password'          => { enabled => JSON::PP::true },
        'm.set_displayname'          => { enabled => JSON::PP::true },
        'm.set_avatar_url'           => { enabled => JSON::PP::true },
        'm.profile_fields'           => { enabled => JSON::PP::true },
        'm.3pid_changes'             => { enabled => JSON::PP::false },
        'm.get_login_token'          => { enabled => JSON::PP::false },
        'm.forget_forced_upon_leave' => { enabled => JSON::PP::false },
    },
}, 'exactly these') or diag(explain($json));

($status, $json) = $user->get('/_matrix/client/r0/capabilities');
is($status, 200, 'the r0 path too');
is($json->{capabilities}{'m.room_versions'}{default}, '12', 'same answer');

my $guest = client(token => server()->make_token(user_id => '@123:localhost', guest => 1));
($status, $json) = $guest->get('/_matrix/client/v3/capabilities');
is($status, 200, 'a guest may ask');
my $c = $json->{capabilities};
ok(!$c->{'m.change_password'}{enabled}, 'a guest has no password to change');
ok($c->{'m.set_displayname'}{enabled}, 'a guest may set a displayname');
ok(!$c->{'m.set_avatar_url'}{enabled}, 'but not an avatar');
is_deeply($c->{'m.profile_fields'}, { enabled => JSON::PP::true, allowed => ['displayname'] },
          'profile fields: only the displayname');
is_deeply($c->{'m.room_versions'}{available}, $all_stable, 'the same room versions');

($status, $json) = client()->get('/_matrix/client/v3/capabilities');
is($status, 401, 'no token: 401');
is($json->{errcode}, 'M_MISSING_TOKEN', 'M_MISSING_TOKEN');

($status, $json) = $user->post('/_matrix/client/v3/capabilities', {});
is($status, 405, 'POST: 405');
is($json->{errcode}, 'M_UNRECOGNIZED', 'M_UNRECOGNIZED');

done_testing();

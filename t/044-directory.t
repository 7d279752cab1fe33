# Room aliases (create, resolve, delete, join by alias, createRoom's
# room_alias_name) and the published room directory (visibility, and
# /publicRooms with a search term and pages).

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $api = '/_matrix/client/v3';
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost'));
my $bob = client(token => $srv->make_token(user_id => '@bob:localhost'));
my $anon = client();

my ($status, $json) = $alice->post("$api/createRoom",
    { preset => 'public_chat', room_alias_name => 'lobby', name => 'The Lobby',
      topic => 'say hello', visibility => 'public' });
is($status, 200, 'createRoom with an alias, published') or diag explain $json;
my $lobby = $json->{room_id};

($status, $json) = $anon->get("$api/directory/room/%23lobby:localhost");
is($status, 200, 'the alias resolves, without a token');
is($json->{room_id}, $lobby, 'to the room');
is_deeply($json->{servers}, ['localhost'], 'with this server');

($status, $json) = $alice->get("$api/rooms/$lobby/state/m.room.canonical_alias");
is($json->{alias}, '#lobby:localhost', 'the canonical alias is set');

($status, $json) = $bob->post("$api/createRoom", { room_alias_name => 'lobby' });
is($status, 400, 'the same alias again: 400');
is($json->{errcode}, 'M_ROOM_IN_USE', 'M_ROOM_IN_USE');

($status, $json) = $bob->post("$api/join/%23lobby:localhost", {});
is($status, 200, 'bob joins by alias');
is($json->{room_id}, $lobby, 'the answer names the room');

# --- aliases -------------------------------------------------------------------

($status, $json) = $alice->put("$api/directory/room/%23hall:localhost", { room_id => $lobby });
is($status, 200, 'alice adds another alias');
($status, $json) = $alice->put("$api/directory/room/%23hall:localhost", { room_id => $lobby });
is($status, 409, 'an existing alias: 409');

($status, $json) = $alice->get("$api/rooms/$lobby/aliases");
is_deeply([sort @{ $json->{aliases} }], ['#hall:localhost', '#lobby:localhost'], "the room's aliases");

my $eve = client(token => $srv->make_token(user_id => '@eve:localhost'));
($status, $json) = $eve->put("$api/directory/room/%23evil:localhost", { room_id => $lobby });
is($status, 403, 'a user outside the room may not alias it');
($status, $json) = $eve->get("$api/rooms/$lobby/aliases");
is($status, 403, "nor list the room's aliases");
($status, $json) = $alice->put("$api/directory/room/%23x:elsewhere.org", { room_id => $lobby });
is($status, 400, 'an alias of another server: 400');
($status, $json) = $alice->put("$api/directory/room/nope", { room_id => $lobby });
is($status, 400, 'not an alias: 400');
($status, $json) = $alice->put("$api/directory/room/%23y:localhost", { room_id => '!unknown:localhost' });
is($status, 404, 'an unknown room: 404');
($status, $json) = $alice->put("$api/directory/room/%23y:localhost", {});
is($status, 400, 'no room_id: 400');

($status, $json) = $bob->delete("$api/directory/room/%23hall:localhost");
is($status, 403, 'bob (power 0) may not remove alice\'s alias');
($status, $json) = $alice->delete("$api/directory/room/%23hall:localhost");
is($status, 200, 'alice removes it');
($status, $json) = $anon->get("$api/directory/room/%23hall:localhost");
is($status, 404, 'it is gone');
is($json->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');
($status, $json) = $alice->delete("$api/directory/room/%23hall:localhost");
is($status, 404, 'removing it again: 404');

# --- the directory ---------------------------------------------------------------

($status, $json) = $anon->get("$api/directory/list/room/$lobby");
is_deeply($json, { visibility => 'public' }, 'the lobby is public');

($status, $json) = $alice->post("$api/createRoom", { name => 'Quiet corner' });
my $quiet = $json->{room_id};
($status, $json) = $anon->get("$api/directory/list/room/$quiet");
is_deeply($json, { visibility => 'private' }, 'a private room is not listed');

($status, $json) = $bob->put("$api/directory/list/room/$quiet", { visibility => 'public' });
is($status, 403, 'a stranger may not list it');
($status, $json) = $alice->put("$api/directory/list/room/$quiet", { visibility => 'public' });
is($status, 200, 'its creator may');
($status, $json) = $alice->put("$api/directory/list/room/$quiet", { visibility => 'hidden' });
is($status, 400, 'an unknown visibility: 400');

for my $i (1 .. 5) {
    $alice->post("$api/createRoom", { visibility => 'public', name => "extra $i" });
}

($status, $json) = $anon->get("$api/publicRooms");
is($status, 200, 'publicRooms without a token');
is($json->{total_room_count_estimate}, 7, 'seven rooms');
is(scalar @{ $json->{chunk} }, 7, 'all in one page');
my ($l) = grep { $_->{room_id} eq $lobby } @{ $json->{chunk} };
is($l->{name}, 'The Lobby', 'with the name');
is($l->{topic}, 'say hello', 'the topic');
is($l->{canonical_alias}, '#lobby:localhost', 'the alias');
is($l->{num_joined_members}, 2, 'two members');
is($l->{join_rule}, 'public', 'the join rule');
ok(!$l->{world_readable}, 'not world readable');
is($json->{chunk}[0]{room_id}, $lobby, 'the most joined first');

($status, $json) = $anon->get("$api/publicRooms?limit=3");
is(scalar @{ $json->{chunk} }, 3, 'limit=3: three');
my @all = map { $_->{room_id} } @{ $json->{chunk} };
my $next = $json->{next_batch};
ok($next, 'and a next_batch');
while ($next) {
    ($status, $json) = $anon->get("$api/publicRooms?limit=3&since=$next");
    push @all, map { $_->{room_id} } @{ $json->{chunk} };
    $next = $json->{next_batch};
    ok($json->{prev_batch}, 'later pages have a prev_batch');
}
is(scalar @all, 7, 'the pages hold every room once');
my %u = map { $_ => 1 } @all;
is(scalar keys %u, 7, 'no room twice');

($status, $json) = $alice->post("$api/publicRooms", { filter => { generic_search_term => 'LOBBY' } });
is($status, 200, 'POST publicRooms with a search term');
is_deeply([map { $_->{room_id} } @{ $json->{chunk} }], [$lobby], 'finds the lobby, case-insensitively');

($status, $json) = $alice->post("$api/publicRooms", { limit => 'x' });
is($status, 400, 'a bad limit: 400');
($status, $json) = $anon->get("$api/publicRooms?since=zzz");
is($status, 400, 'a bad since: 400');
($status, $json) = $anon->post("$api/publicRooms", {});
is($status, 401, 'POST needs a token');

done_testing();

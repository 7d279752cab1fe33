# Membership through the endpoints (invite, join, leave, kick, ban, unban),
# redactions, and reading rooms: state, one state event, events, members,
# joined members and the user's joined rooms, each refused to those who
# may not read the room.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $alice = client();
my ($status, $json) = $alice->register('alice', 'alice-password-1');
is($status, 200, 'alice registered') or diag explain $json;
$alice->put('/_matrix/client/v3/profile/@alice:localhost/displayname', { displayname => 'Alice A' });

my $bob = client(token => $srv->make_token(user_id => '@bob:localhost', device_id => 'BDEV'));
my $eve = client(token => $srv->make_token(user_id => '@eve:localhost', device_id => 'EDEV'));
my $api = '/_matrix/client/v3';

($status, $json) = $alice->post("$api/createRoom", { name => 'the room' });
is($status, 200, 'alice creates a private room');
my $r = $json->{room_id};

# --- reading ---------------------------------------------------------------

($status, $json) = $alice->get("$api/rooms/$r/state");
is($status, 200, 'GET state');
my %types = map { ($_->{type} . '|' . $_->{state_key}) => $_ } @$json;
ok($types{'m.room.create|'}, 'has the create event');
is($types{'m.room.create|'}{room_id}, $r, 'the create event carries the room ID (v12 too)');
is($types{'m.room.name|'}{content}{name}, 'the room', 'has the name');
is($types{'m.room.member|@alice:localhost'}{content}{displayname}, 'Alice A',
   "the creator's join carries her displayname");
ok(!exists $types{'m.room.name|'}{hashes} && !exists $types{'m.room.name|'}{signatures},
   'client format: no hashes or signatures');
like($types{'m.room.name|'}{event_id}, qr/^\$/, 'client format: the event ID');

($status, $json) = $alice->get("$api/rooms/$r/state/m.room.name");
is_deeply($json, { name => 'the room' }, 'GET state/m.room.name: the content');
($status, $json) = $alice->get("$api/rooms/$r/state/m.room.name/");
is_deeply($json, { name => 'the room' }, 'with an empty state key');
($status, $json) = $alice->get("$api/rooms/$r/state/m.room.name?format=event");
is($json->{type}, 'm.room.name', 'format=event: the whole event');
($status, $json) = $alice->get("$api/rooms/$r/state/m.room.topic");
is($status, 404, 'missing state: 404');
is($json->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');

($status, $json) = $bob->get("$api/rooms/$r/state");
is($status, 403, 'a stranger may not read the state');
($status, $json) = $bob->get("$api/rooms/!unknown:localhost/state");
is($status, 403, 'an unknown room looks the same: 403');
($status, $json) = $alice->get("$api/rooms/nope/state");
is($status, 400, 'not a room ID: 400');

($status, $json) = $alice->put("$api/rooms/$r/send/m.room.message/m1", { msgtype => 'm.text', body => 'one' });
my $m1 = $json->{event_id};
($status, $json) = $alice->get("$api/rooms/$r/event/$m1");
is($status, 200, 'GET event');
is($json->{content}{body}, 'one', 'its content');
is($json->{event_id}, $m1, 'its ID');
($status, $json) = $alice->get("$api/rooms/$r/event/\$nope");
is($status, 404, 'an unknown event: 404');
($status, $json) = $bob->get("$api/rooms/$r/event/$m1");
is($status, 403, 'a stranger may not read an event');

# --- invite, join, members --------------------------------------------------

($status, $json) = $bob->post("$api/rooms/$r/join", {});
is($status, 403, 'bob may not join an invite-only room uninvited');

($status, $json) = $eve->post("$api/rooms/$r/invite", { user_id => '@bob:localhost' });
is($status, 403, 'a stranger may not invite');

($status, $json) = $alice->post("$api/rooms/$r/invite", { user_id => 'bob' });
is($status, 400, 'invite of a non-user ID: 400');
($status, $json) = $alice->post("$api/rooms/$r/invite", {});
is($status, 400, 'invite without user_id: 400');

($status, $json) = $alice->post("$api/rooms/$r/invite", { user_id => '@bob:localhost', reason => 'welcome' });
is($status, 200, 'alice invites bob');
is_deeply($json, {}, 'the answer is {}');

($status, $json) = $bob->post("$api/join/$r", {});
is($status, 200, 'bob joins through /join/{roomId}');
is($json->{room_id}, $r, 'the answer names the room');

($status, $json) = $bob->get("$api/rooms/$r/state/m.room.member/\@bob:localhost");
is($json->{membership}, 'join', "bob's member event says join");

($status, $json) = $alice->get("$api/rooms/$r/joined_members");
is($status, 200, 'joined_members');
is_deeply([sort keys %{ $json->{joined} }], ['@alice:localhost', '@bob:localhost'], 'alice and bob');
is($json->{joined}{'@alice:localhost'}{display_name}, 'Alice A', 'with display names');

($status, $json) = $alice->post("$api/rooms/$r/invite", { user_id => '@eve:localhost' });
($status, $json) = $alice->get("$api/rooms/$r/members");
is(scalar @{ $json->{chunk} }, 3, 'members: three');
($status, $json) = $alice->get("$api/rooms/$r/members?membership=invite");
is_deeply([map { $_->{state_key} } @{ $json->{chunk} }], ['@eve:localhost'], 'membership=invite: eve');
($status, $json) = $alice->get("$api/rooms/$r/members?not_membership=invite");
is(scalar @{ $json->{chunk} }, 2, 'not_membership=invite: two');

ok(wait_for(sub { my (undef, $j) = $bob->get("$api/joined_rooms"); grep { $_ eq $r } @{ $j->{joined_rooms} // [] } }, 5),
   'the room is among bob\'s joined rooms');

# members at a point in the past: before eve's invite, no eve
($status, $json) = $alice->get("$api/rooms/$r/messages?dir=b&limit=1");
my $now = $json->{start};
($status, $json) = $alice->get("$api/rooms/$r/context/$m1?limit=0");
($status, $json) = $alice->get("$api/rooms/$r/members?at=$json->{end}");
is($status, 200, 'members at a token');
is_deeply([sort map { $_->{state_key} } @{ $json->{chunk} }], ['@alice:localhost'],
          'at the first message: only alice');
($status, $json) = $alice->get("$api/rooms/$r/members?at=$now");
is(scalar @{ $json->{chunk} }, 3, 'at the latest token: three');
($status, $json) = $alice->get("$api/rooms/$r/members?at=zzz");
is($status, 400, 'a bad at: 400');

($status, $json) = $alice->put("$api/rooms/$r/state/m.room.member/notauser", { membership => 'join' });
is($status, 400, 'a member event for a non-user: 400');
is($json->{errcode}, 'M_INVALID_PARAM', 'M_INVALID_PARAM');
($status, $json) = $alice->put("$api/rooms/$r/state/m.room.member/\@alice:localhost", { displayname => 'x' });
is($status, 400, 'a member event without membership: 400');

# --- power: kick, ban, unban ---------------------------------------------------

($status, $json) = $bob->post("$api/rooms/$r/kick", { user_id => '@alice:localhost' });
is($status, 403, 'bob (0) may not kick alice');
($status, $json) = $bob->post("$api/rooms/$r/ban", { user_id => '@alice:localhost' });
is($status, 403, 'nor ban her');

($status, $json) = $alice->post("$api/rooms/$r/kick", { user_id => '@bob:localhost', reason => 'bye' });
is($status, 200, 'alice kicks bob');
($status, $json) = $alice->get("$api/rooms/$r/state/m.room.member/\@bob:localhost?format=event");
is($json->{content}{membership}, 'leave', 'bob has left');
is($json->{content}{reason}, 'bye', 'with the reason');
is($json->{sender}, '@alice:localhost', 'sent by alice');
$alice->put("$api/rooms/$r/state/m.room.topic", { topic => 'after bob left' });
($status, $json) = $bob->get("$api/rooms/$r/state");
is($status, 200, 'once out, bob reads the state as it was when he left');
ok(!(grep { $_->{type} eq 'm.room.topic' } @$json), 'without what came after');
($status, $json) = $bob->get("$api/rooms/$r/state/m.room.member/\@bob:localhost");
is($json->{membership}, 'leave', 'his own leave included');
($status, $json) = $bob->get("$api/rooms/$r/state/m.room.topic");
is($status, 404, 'the later topic is not there for him');
($status, $json) = $bob->get("$api/rooms/$r/event/$m1");
is($status, 200, 'he still reads events from when he was in');

($status, $json) = $alice->post("$api/rooms/$r/ban", { user_id => '@bob:localhost' });
is($status, 200, 'alice bans bob');
$alice->post("$api/rooms/$r/invite", { user_id => '@bob:localhost' });
($status, $json) = $bob->post("$api/rooms/$r/join", {});
is($status, 403, 'a banned user may not join');
($status, $json) = $alice->post("$api/rooms/$r/unban", { user_id => '@bob:localhost' });
is($status, 200, 'alice unbans bob');
($status, $json) = $alice->post("$api/rooms/$r/invite", { user_id => '@bob:localhost' });
is($status, 200, 'and invites him again');
($status, $json) = $bob->post("$api/rooms/$r/join", {});
is($status, 200, 'he may join again');

($status, $json) = $bob->post("$api/rooms/$r/leave", {});
is($status, 200, 'bob leaves');
($status, $json) = $bob->post("$api/rooms/$r/leave", {});
is($status, 403, 'leaving twice is refused');

($status, $json) = $bob->post("$api/rooms/!nope:localhost/join", {});
is($status, 404, 'joining an unknown room: 404');
($status, $json) = $bob->post("$api/join/%23alias:localhost", {});
is($status, 404, 'joining an unknown alias: 404');

# --- a profile change reaches the member events -----------------------------

($status, $json) = $alice->post("$api/createRoom", { name => 'second' });
my $r2 = $json->{room_id};
($status, $json) = $alice->put('/_matrix/client/v3/profile/@alice:localhost/displayname', { displayname => 'Alice B' });
is($status, 200, 'alice changes her displayname');
for my $room ($r, $r2) {
    ($status, $json) = $alice->get("$api/rooms/$room/state/m.room.member/\@alice:localhost");
    is($json->{displayname}, 'Alice B', "her member event in each joined room follows ($room)");
    is($json->{membership}, 'join', 'still a join');
}
($status, $json) = $alice->put('/_matrix/client/v3/profile/@alice:localhost/avatar_url', { avatar_url => 'mxc://localhost/abc' });
($status, $json) = $alice->get("$api/rooms/$r2/state/m.room.member/\@alice:localhost");
is($json->{avatar_url}, 'mxc://localhost/abc', 'so does her avatar');
is($json->{displayname}, 'Alice B', 'keeping the displayname');

# --- redaction ---------------------------------------------------------------------

($status, $json) = $alice->put("$api/rooms/$r/redact/$m1/red1", { reason => 'oops' });
is($status, 200, 'alice redacts her message');
my $red = $json->{event_id};
($status, $json) = $alice->get("$api/rooms/$r/event/$red");
is($json->{type}, 'm.room.redaction', 'the redaction is an event');
is($json->{content}{redacts} // $json->{redacts}, $m1, 'naming its target');
($status, $json) = $alice->put("$api/rooms/$r/redact/$m1/red1", { reason => 'oops' });
is($json->{event_id}, $red, 'the same txnId: the same redaction');
($status, $json) = $alice->put("$api/rooms/$r/redact/notanid/red2", {});
is($status, 400, 'redacting a non-event-ID: 400');
($status, $json) = $alice->get("$api/rooms/$r/event/$m1");
is_deeply($json->{content}, {}, 'the redacted event is served redacted');
is($json->{unsigned}{redacted_because}{event_id}, $red, 'with the redaction');
($status, $json) = $alice->put("$api/rooms/$r/redact/\$nope/red3", {});
is($status, 404, 'redacting an unknown event: 404');

# power: bob (0) may redact his own events, not alice's
$alice->post("$api/rooms/$r/invite", { user_id => '@bob:localhost' });
$bob->post("$api/rooms/$r/join", {});
($status, $json) = $alice->put("$api/rooms/$r/send/m.room.message/m2", { body => 'two' });
my $m2 = $json->{event_id};
($status, $json) = $bob->put("$api/rooms/$r/send/m.room.message/b2", { body => 'mine' });
my $b2 = $json->{event_id};
($status, $json) = $bob->put("$api/rooms/$r/redact/$m2/br1", {});
is($status, 403, "bob may not redact alice's event");
($status, $json) = $bob->put("$api/rooms/$r/redact/$b2/br2", {});
is($status, 200, 'but may redact his own');
($status, $json) = $alice->put("$api/rooms/$r/redact/$b2/ar9", {});
is($status, 200, "alice (100) may redact bob's");

done_testing();

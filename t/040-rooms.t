# Rooms through the whole flow: createRoom in every room version, sends and
# state events answered once the roomserver has accepted them (and the
# syncer has placed them), the same txnId giving the same event, and the
# refusals: unknown rooms, strangers, bad versions, oversized events.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost', device_id => 'ADEV'));
my $bob = client(token => $srv->make_token(user_id => '@bob:localhost', device_id => 'BDEV'));

sub stored {
    my ($room, $id) = @_;
    my $pdu = $srv->redis_cmd('HGET', "mx:{$room}:pdu", $id);
    return $pdu ? JSON::PP->new->decode($pdu) : undef;
}

sub current {
    my ($room, $type, $key) = @_;
    return $srv->redis_cmd('HGET', "mx:{$room}:state", "$type\x1f" . ($key // ''));
}

# --- createRoom in every version -------------------------------------------

my %room;
for my $v (1 .. 12) {
    my ($status, $json) = $alice->post('/_matrix/client/v3/createRoom',
        { room_version => "$v", name => "room $v", topic => 'a topic' });
    is($status, 200, "createRoom v$v") or diag explain $json;
    my $id = $json->{room_id} // '';
    if ($v == 12) {
        like($id, qr/^![A-Za-z0-9_-]{43}$/, 'v12: the room ID is a hash');
    } else {
        like($id, qr/^![A-Za-z0-9_-]+:localhost$/, "v$v: the room ID names the server");
    }
    $room{$v} = $id;

    my $name_id = current($id, 'm.room.name');
    ok($name_id, "v$v: the name is current state when createRoom answers");
    is(stored($id, $name_id)->{content}{name}, "room $v", "v$v: the name event");
    ok(current($id, 'm.room.member', '@alice:localhost'), "v$v: alice is a member");
    my $jr = stored($id, current($id, 'm.room.join_rules'));
    is($jr->{content}{join_rule}, 'invite', "v$v: private by default");
}

my $r = $room{12};

# --- sends ---------------------------------------------------------------

my ($status, $json) = $alice->put("/_matrix/client/v3/rooms/$r/send/m.room.message/t1",
                                  { msgtype => 'm.text', body => 'hello' });
is($status, 200, 'send: 200');
like($json->{event_id} // '', qr/^\$[A-Za-z0-9_-]{43}$/, 'send: a v12 event ID');
my $e1 = $json->{event_id};
my $pdu = stored($r, $e1);
is($pdu->{content}{body}, 'hello', 'the event is stored when the send answers');
is($pdu->{sender}, '@alice:localhost', 'with its sender');
ok(defined $srv->redis_cmd('HGET', "mx:{$r}:spos", $e1), 'and has a stream position');

($status, $json) = $alice->put("/_matrix/client/v3/rooms/$r/send/m.room.message/t1",
                               { msgtype => 'm.text', body => 'hello again' });
is($status, 200, 'the same txnId again: 200');
is($json->{event_id}, $e1, 'the same event ID');
is($srv->redis_cmd('ZCARD', "mx:{$r}:timeline") , scalar(@{ $srv->redis_cmd('ZRANGE', "mx:{$r}:timeline", 0, -1) }), 'timeline readable');

($status, $json) = $alice->put("/_matrix/client/v3/rooms/$r/send/m.room.message/t2",
                               { msgtype => 'm.text', body => 'second' });
isnt($json->{event_id}, $e1, 'another txnId: another event');
is_deeply(stored($r, $json->{event_id})->{prev_events}, [$e1], 'on top of the first');

my $other = client(token => $srv->make_token(user_id => '@alice:localhost', device_id => 'OTHER'));
($status, $json) = $other->put("/_matrix/client/v3/rooms/$r/send/m.room.message/t1",
                               { msgtype => 'm.text', body => 'other device' });
isnt($json->{event_id}, $e1, 'txnIds are per device');

($status, $json) = $alice->put("/_matrix/client/v3/rooms/$room{11}/send/m.room.message/t1",
                               { body => 'x' });
is($status, 400, 'the same txnId in another room: 400');

# --- state --------------------------------------------------------------------

($status, $json) = $alice->put("/_matrix/client/v3/rooms/$r/state/m.room.topic", { topic => 'new topic' });
is($status, 200, 'state without a key: 200');
is(current($r, 'm.room.topic'), $json->{event_id}, 'it is the current topic');

($status, $json) = $alice->put("/_matrix/client/v3/rooms/$r/state/org.example.thing/k1", { n => 1 });
is($status, 200, 'state with a key: 200');
is(current($r, 'org.example.thing', 'k1'), $json->{event_id}, 'current under its key');

# --- refusals -------------------------------------------------------------

($status, $json) = $bob->put("/_matrix/client/v3/rooms/$r/send/m.room.message/b1", { body => 'hi' });
is($status, 403, 'a stranger may not send');
is($json->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');

($status, $json) = $bob->put("/_matrix/client/v3/rooms/$r/state/m.room.name", { name => 'mine' });
is($status, 403, 'nor set state');

($status, $json) = $alice->put('/_matrix/client/v3/rooms/!nope:localhost/send/m.room.message/n1', { body => 'x' });
is($status, 404, 'an unknown room: 404');
is($json->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');

($status, $json) = $alice->put('/_matrix/client/v3/rooms/nope/send/m.room.message/n1', { body => 'x' });
is($status, 400, 'not a room ID: 400');

($status, $json) = $alice->put("/_matrix/client/v3/rooms/$r/send/m.room.message/big", { body => 'x' x 70000 });
ok($status == 413, 'an event over 64 KiB: 413');
is($json->{errcode}, 'M_TOO_LARGE', 'M_TOO_LARGE');

($status, $json) = $alice->put("/_matrix/client/v3/rooms/$r/send/m.room.message/f1", '{"n":1.5}');
is($status, 400, 'a float in a v12 room: 400');
is($json->{errcode}, 'M_BAD_JSON', 'M_BAD_JSON');

($status, $json) = $alice->put("/_matrix/client/v3/rooms/$room{3}/send/m.room.message/f1", '{"n":1.5}');
is($status, 200, 'a float in a v3 room is allowed');

($status, $json) = $alice->put("/_matrix/client/v3/rooms/$r/send/m.room.message/j1", '{"body":');
is($status, 400, 'malformed JSON: 400');
is($json->{errcode}, 'M_NOT_JSON', 'M_NOT_JSON');

($status, $json) = $alice->post('/_matrix/client/v3/createRoom', { room_version => '13' });
is($status, 400, 'createRoom with an unknown version: 400');
is($json->{errcode}, 'M_UNSUPPORTED_ROOM_VERSION', 'M_UNSUPPORTED_ROOM_VERSION');

($status, $json) = $alice->post('/_matrix/client/v3/createRoom', { preset => 'nope' });
is($status, 400, 'an unknown preset: 400');

($status, $json) = $alice->post('/_matrix/client/v3/createRoom', { invite => ['bob'] });
is($status, 400, 'invite of a non-user: 400');

($status, $json) = client()->post('/_matrix/client/v3/createRoom', {});
is($status, 401, 'createRoom without a token: 401');

# --- presets and invites ---------------------------------------------------

($status, $json) = $alice->post('/_matrix/client/v3/createRoom',
    { preset => 'public_chat', invite => ['@bob:localhost'], is_direct => JSON::PP::true,
      initial_state => [ { type => 'm.room.history_visibility', content => { history_visibility => 'world_readable' } } ],
      power_level_content_override => { kick => 60 } });
is($status, 200, 'a public room with an invite') or diag explain $json;
my $pub = $json->{room_id};
is(stored($pub, current($pub, 'm.room.join_rules'))->{content}{join_rule}, 'public', 'public_chat: public');
is(stored($pub, current($pub, 'm.room.history_visibility'))->{content}{history_visibility}, 'world_readable',
   'initial_state replaces the preset');
my $pl = stored($pub, current($pub, 'm.room.power_levels'))->{content};
is($pl->{kick}, 60, 'the power level override applies');
ok(!exists $pl->{users}{'@alice:localhost'}, 'v12: the creator is not in the power levels');
my $inv = stored($pub, current($pub, 'm.room.member', '@bob:localhost'))->{content};
is($inv->{membership}, 'invite', 'bob is invited');
ok($inv->{is_direct}, 'is_direct on the invite');

($status, $json) = $bob->put("/_matrix/client/v3/rooms/$pub/state/m.room.member/\@bob:localhost",
                             { membership => 'join' });
is($status, 200, 'bob joins by setting his member event');
($status, $json) = $bob->put("/_matrix/client/v3/rooms/$pub/send/m.room.message/b1", { body => 'hi' });
is($status, 200, 'and may send');

$alice->put("/_matrix/client/v3/rooms/$pub/state/m.room.power_levels", { %$pl, events_default => 10 });
($status, $json) = $bob->put("/_matrix/client/v3/rooms/$pub/send/m.room.message/b2", { body => 'hi' });
is($status, 403, 'below events_default: 403');
like($json->{error} // '', qr/\S/, 'with a reason');

done_testing();

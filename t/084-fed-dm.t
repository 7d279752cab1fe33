# A direct chat with a user of another server, as Element starts one:
# POST /createRoom {preset: trusted_private_chat, is_direct: true,
# invite: [...]}.  The invitees of this server are invited in the room's
# first events; each of another server is invited once the room is in, as
# by POST /rooms/{id}/invite (PUT /_matrix/federation/v2/invite, the
# invitee's server countersigns), is_direct in the invite's content.
#
#   bob of B and carol of A: both invited, bob's /sync on B shows the
#   invite with is_direct and the room's stripped state, bob joins and
#   they talk.
#   An invitee whose server cannot be reached, or never answers: the room
#   is made all the same (200 and its ID, as Synapse), without that
#   invite, the other invitees invited, and the answer comes in bounded
#   time however many such invitees there are.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use JSON::PP;
use Time::HiRes qw(time);

%Test::Matrix::ServerOptions = (federation => 1);

my $A = server();
my $B = new_server(federation => 1);
my $api = '/_matrix/client/v3';
my $json = JSON::PP->new->canonical;

# A's nginx log: where a failed remote invite is told
sub a_log { Test::Matrix::Server::slurp($A->log_path('nginx')) // '' }

my $alice = Test::Matrix::Client->new(server => $A);
my ($status, $body) = $alice->register('alice', 'secret-password-1');
is($status, 200, 'alice registers on A');
my $carol = Test::Matrix::Client->new(server => $A);
($status) = $carol->register('carol', 'secret-password-3');
is($status, 200, 'carol registers on A');
my $bob = Test::Matrix::Client->new(server => $B);
($status) = $bob->register('bob', 'secret-password-2');
is($status, 200, 'bob registers on B');

# a user's member event in a room's state on A, as A stored it (or undef)
sub member_pdu_on_a {
    my ($room, $user) = @_;
    my $id = $A->redis_cmd('HGET', "mx:{$room}:state", "m.room.member\x1f$user") // return undef;
    return $json->decode($A->redis_cmd('HGET', "mx:{$room}:pdu", $id));
}

# --- the direct chat: bob of B, carol of A ----------------------------------------------
($status, $body) = $alice->post("$api/createRoom", {
    preset => 'trusted_private_chat', is_direct => JSON::PP::true, name => 'Alice and friends',
    invite => [ $bob->user_id, $carol->user_id ],
});
is($status, 200, 'createRoom inviting bob of B and carol of A: 200') or diag explain $body;
my $room = $body->{room_id};
like($room // '', qr/^!/, 'with the room ID');

my $inv = member_pdu_on_a($room, $bob->user_id);
is($inv->{content}{membership}, 'invite', "A's state: bob invited") or diag explain $inv;
ok($inv->{content}{is_direct}, 'is_direct in the invite');
is($inv->{sender}, $alice->user_id, 'by alice');
ok($inv->{signatures}{$B->server_name}, 'countersigned by B: sent to B by /invite');
is($B->redis_cmd('HGET', "mx:{$room}:invited:" . $bob->user_id, 'event_id'),
   $A->redis_cmd('HGET', "mx:{$room}:state", "m.room.member\x1f" . $bob->user_id),
   'B keeps the invite A stored');

my $cinv = member_pdu_on_a($room, $carol->user_id);
is($cinv->{content}{membership}, 'invite', "A's state: carol invited");
ok($cinv->{content}{is_direct}, 'is_direct in hers too');
ok(!$cinv->{signatures}{$B->server_name}, 'no other server asked for her');
my $chain_depth = $cinv->{depth};
ok($inv->{depth} > $chain_depth, "bob's invite comes after the room's first events");

($status, $body) = $alice->get("$api/rooms/" . esc($room) . '/state/m.room.power_levels');
is($body->{users}{$bob->user_id}, 100, 'trusted_private_chat: bob has power 100');
is($body->{users}{$carol->user_id}, 100, 'and carol');

# bob's /sync on B: the invite, is_direct in alice's invite of him, the stripped state
($status, $body) = $bob->get("$api/sync");
is($status, 200, "bob's /sync on B");
my $ir = $body->{rooms}{invite}{$room};
ok($ir, 'lists the invite under rooms.invite') or diag explain $body->{rooms};
my %is = map { ("$_->{type}|$_->{state_key}" => $_) } @{ $ir->{invite_state}{events} // [] };
my $mine = $is{'m.room.member|' . $bob->user_id};
is($mine->{content}{membership}, 'invite', 'his member event: invite');
is($mine->{sender}, $alice->user_id, 'from alice');
ok($mine->{content}{is_direct}, 'is_direct: true, a direct chat') or diag explain $mine;
is($is{'m.room.name|'}{content}{name}, 'Alice and friends', 'the room name');
is($is{'m.room.join_rules|'}{content}{join_rule}, 'invite', 'the join rules');
ok($is{'m.room.create|'}, 'the create event');
is($is{'m.room.member|' . $alice->user_id}{content}{membership}, 'join', "the inviter's member event");

# carol's as before
($status, $body) = $carol->get("$api/sync");
my $cir = $body->{rooms}{invite}{$room};
ok($cir, "carol's /sync on A lists her invite") or diag explain $body->{rooms};
my ($cm) = grep { $_->{type} eq 'm.room.member' && $_->{state_key} eq $carol->user_id }
           @{ $cir->{invite_state}{events} // [] };
ok($cm && $cm->{content}{is_direct}, 'is_direct in her invite');

# bob accepts; a message each way
($status, $body) = $bob->post("$api/rooms/" . esc($room) . '/join', {});
is($status, 200, 'bob joins on B') or diag explain $body;
ok(wait_for(sub { (member_pdu_on_a($room, $bob->user_id) // {})->{content}{membership} eq 'join' }, 30),
   "A's state: bob joined");

sub said {
    my ($c, $r) = @_;
    my ($s, $j) = $c->get("$api/rooms/" . esc($r) . '/messages?dir=b&limit=100');
    return [ reverse map { $_->{content}{body} } grep { $_->{type} eq 'm.room.message' } @{ $j->{chunk} // [] } ];
}

($status) = $alice->put("$api/rooms/" . esc($room) . '/send/m.room.message/a1',
                        { msgtype => 'm.text', body => 'hi bob' });
is($status, 200, 'alice writes');
ok(wait_for(sub { grep { $_ eq 'hi bob' } @{ said($bob, $room) } }, 30), 'it reaches bob on B')
    or diag explain said($bob, $room);
($status) = $bob->put("$api/rooms/" . esc($room) . '/send/m.room.message/b1',
                      { msgtype => 'm.text', body => 'hi alice' });
is($status, 200, 'bob answers');
ok(wait_for(sub { grep { $_ eq 'hi alice' } @{ said($alice, $room) } }, 30), 'it reaches alice on A')
    or diag explain said($alice, $room);

# not a direct chat: no is_direct in the remote invite
($status, $body) = $alice->post("$api/createRoom", { preset => 'private_chat', invite => [ $bob->user_id ] });
is($status, 200, 'createRoom inviting bob, not as a direct chat: 200') or diag explain $body;
my $group = member_pdu_on_a($body->{room_id}, $bob->user_id) // {};
is($group->{content}{membership}, 'invite', 'bob invited');
ok(!exists $group->{content}{is_direct}, 'without is_direct');

# --- an invitee whose server cannot be reached --------------------------------------------
my $nowhere = '@x:localhost:1';
my $t0 = time;
($status, $body) = $alice->post("$api/createRoom", {
    preset => 'trusted_private_chat', is_direct => JSON::PP::true,
    invite => [ $nowhere, $bob->user_id ],
});
my $took = time - $t0;
is($status, 200, 'createRoom inviting a user of an unreachable server: 200') or diag explain $body;
my $room2 = $body->{room_id};
like($room2 // '', qr/^!/, 'with the room ID');
ok($took < 25, sprintf('answered in bounded time (%.1f s)', $took));
ok(!defined member_pdu_on_a($room2, $nowhere), 'that user has no invite in the room');
like(a_log(), qr/\Q$nowhere not invited to $room2: localhost:1 did not take the invite\E/,
     'the failure is logged, with the server');
is((member_pdu_on_a($room2, $alice->user_id) // {})->{content}{membership}, 'join', 'alice is in the room');
is((member_pdu_on_a($room2, $bob->user_id) // {})->{content}{membership}, 'invite',
   'bob, after him in the list, is invited all the same');
($status) = $alice->put("$api/rooms/" . esc($room2) . '/send/m.room.message/c1',
                        { msgtype => 'm.text', body => 'anyone?' });
is($status, 200, 'the room works');

# --- invitees whose server never answers ---------------------------------------------------
# a fake remote that holds every request without an answer: the invites
# get no more than createRoom's budget (20 s) between them, not 30 s each
my $fed = Test::Matrix::Fed->new(server => $A);
my $silent = $fed->fake_remote(sub { sleep 3600; (500, '{}') });
my @mute = ("\@y:$silent", "\@z:$silent");
$t0 = time;
($status, $body) = $alice->post("$api/createRoom", {
    preset => 'private_chat', is_direct => JSON::PP::true, invite => \@mute,
});
$took = time - $t0;
is($status, 200, 'createRoom inviting two users of a server that never answers: 200')
    or diag explain $body;
my $room3 = $body->{room_id};
ok($took < 40, sprintf('answered within the budget, not one wait per invitee (%.1f s)', $took));
ok(!defined member_pdu_on_a($room3, $_), "$_ has no invite") for @mute;
like(a_log(), qr/\Q$mute[0] not invited to $room3: $silent did not answer in time\E/,
     'the first waited for until the budget ran out');
like(a_log(), qr/\QcreateRoom $room3: no time left to invite $mute[1]\E/,
     'the second not asked: no time left');
is((member_pdu_on_a($room3, $alice->user_id) // {})->{content}{membership}, 'join', 'alice is in the room');

done_testing();

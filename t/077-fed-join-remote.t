# Joining a room of another server, both servers real: a user of B joins
# A's public room by its ID.  B's module asks A for a template (make_join)
# and sends the signed join (send_join), each a request job for B's
# fedsender; B's roomserver checks the state and auth chain A answers with
# (signatures with A's keys, fetched by a keys job; the auth rules) and
# stores them (roomserver_join.c).  Then B's /sync shows the room with its
# state, and A's members include B's user.
#
# Events after the join, both ways: t/078-fed-chat.t.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

%Test::Matrix::ServerOptions = (federation => 1);

my $A = server();
my $B = new_server(federation => 1);
my $api = '/_matrix/client/v3';

my $alice = Test::Matrix::Client->new(server => $A);
my ($status, $body) = $alice->register('alice', 'secret-password-1');
is($status, 200, 'alice registers on A');
($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', name => 'Town square',
                                                     topic => 'all welcome' });
is($status, 200, 'and makes a public room');
my $room = $body->{room_id};

my $bob = Test::Matrix::Client->new(server => $B);
($status, $body) = $bob->register('bob', 'secret-password-2');
is($status, 200, 'bob registers on B');
$bob->put("$api/profile/" . esc($bob->user_id) . '/displayname', { displayname => 'Bob' });

# version 12 room IDs name no server: the client names one
my $via = '?server_name=' . esc($A->server_name);
($status, $body) = $bob->post("$api/join/" . esc($room), {});
is($status, 404, 'a room ID naming no server, and no server_name: 404');
($status, $body) = $bob->post("$api/join/" . esc($room) . $via, {});
is($status, 200, "bob joins A's room through A") or diag explain $body;
is($body->{room_id}, $room, 'answered with the room ID');

($status, $body) = $alice->get("$api/rooms/" . esc($room) . '/members');
my %m = map { ($_->{state_key} => $_) } @{ $body->{chunk} // [] };
is($m{$bob->user_id}{content}{membership}, 'join', "A's members: bob joined");
is($m{$bob->user_id}{content}{displayname}, 'Bob', 'with his display name from B');

($status, $body) = $bob->get("$api/sync");
is($status, 200, "bob's /sync");
my $jr = $body->{rooms}{join}{$room};
ok($jr, 'lists the room as joined') or diag explain $body->{rooms};
my %st = map { ("$_->{type}|$_->{state_key}" => $_) }
         @{ $jr->{state}{events} // [] }, @{ $jr->{timeline}{events} // [] };
is($st{'m.room.name|'}{content}{name}, 'Town square', 'with its name');
is($st{'m.room.topic|'}{content}{topic}, 'all welcome', 'its topic');
is($st{'m.room.member|' . $alice->user_id}{content}{membership}, 'join', 'alice as a member');
is($st{'m.room.member|' . $bob->user_id}{content}{membership}, 'join', 'and his own join');

($status, $body) = $bob->get("$api/rooms/" . esc($room) . '/state/m.room.name');
is($status, 200, "B serves the room's state");
is($body->{name}, 'Town square', 'the name');

($status, $body) = $bob->get("$api/joined_rooms");
is_deeply($body->{joined_rooms}, [$room], 'joined_rooms on B');

# servers that fail are passed over: the next one named is asked
($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', name => 'Second' });
my $second = $body->{room_id};
($status, $body) = $bob->post("$api/join/" . esc($second) . '?server_name=localhost:1&via='
                              . esc($A->server_name), {});
is($status, 200, 'a dead server first, then A: joined through A') or diag explain $body;
($status, $body) = $alice->get("$api/rooms/" . esc($second) . '/members');
%m = map { ($_->{state_key} => $_->{content}{membership}) } @{ $body->{chunk} // [] };
is($m{$bob->user_id}, 'join', "A's members: bob");

# a room A does not have: A's 404 comes back
($status, $body) = $bob->post("$api/join/" . esc('!nothing:' . $A->server_name), {});
is($status, 404, 'a room unknown to its server: 404');
is($body->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');

# an invite-only room of A: A's 403 comes back
($status, $body) = $alice->post("$api/createRoom", { preset => 'private_chat' });
($status, $body) = $bob->post("$api/join/" . esc($body->{room_id}) . $via, {});
is($status, 403, 'an invite-only room: 403');
is($body->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');

# --- invites from A, accepted and rejected on B ------------------------------
# A sends its invite to B itself (/v2/invite; the details: t/080-fed-invite.t)
sub invite_from_a {
    my ($room) = @_;
    my ($status) = $alice->post("$api/rooms/" . esc($room) . '/invite', { user_id => $bob->user_id });
    is($status, 200, 'alice invites bob (on A), B countersigns');
}

for my $case ('accept', 'reject') {
    ($status, $body) = $alice->post("$api/createRoom", { preset => 'private_chat', name => 'Back room' });
    my $priv = $body->{room_id};
    invite_from_a($priv);
    ($status, $body) = $bob->get("$api/sync");
    ok($body->{rooms}{invite}{$priv}, "$case: bob's /sync shows the invite");

    if ($case eq 'accept') {
        ($status, $body) = $bob->post("$api/join/" . esc($priv), {});
        is($status, 200, 'bob accepts: joined through the inviter\'s server') or diag explain $body;
        ($status, $body) = $alice->get("$api/rooms/" . esc($priv) . '/members');
        my %m = map { ($_->{state_key} => $_->{content}{membership}) } @{ $body->{chunk} // [] };
        is($m{$bob->user_id}, 'join', "A: bob joined the invite-only room");
        ($status, $body) = $bob->get("$api/sync");
        ok($body->{rooms}{join}{$priv}, "B: bob's /sync has the room as joined");
    } else {
        ($status, $body) = $bob->post("$api/rooms/" . esc($priv) . '/leave', {});
        is($status, 200, 'bob rejects: make_leave/send_leave at A') or diag explain $body;
        ($status, $body) = $alice->get("$api/rooms/" . esc($priv) . '/members');
        my %m = map { ($_->{state_key} => $_->{content}{membership}) } @{ $body->{chunk} // [] };
        is($m{$bob->user_id}, 'leave', 'A: bob has left');
        ($status, $body) = $bob->get("$api/joined_rooms");
        ok(!(grep { $_ eq $priv } @{ $body->{joined_rooms} }), 'B: not joined');
        ($status, $body) = $bob->get("$api/sync");
        ok(!$body->{rooms}{invite}{$priv}, 'B: the invite is gone from /sync');
    }
}

done_testing();

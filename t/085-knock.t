# Knocking: POST /_matrix/client/v3/knock/{roomIdOrAlias}.
#
#   A room of this server: the knock is a member event built and checked
#   as every local one (the auth rules: join rule knock or knock_restricted,
#   room version 7 or later, a user neither banned, invited nor joined);
#   the room's members see it in their timeline, the knocker's /sync shows
#   the room in rooms.knock with its stripped state; an invite moves it to
#   rooms.invite, a join to rooms.join; a leave rescinds the knock.
#
#   A room of another server (two real servers, A and B): make_knock and
#   send_knock through A, named by ?server_name= or by an alias of A's; A's
#   room has the knock, B's /sync shows it with A's knock_room_state; A's
#   invite (outbound, to B) takes it to rooms.invite, the join through A to
#   rooms.join; a knock rescinded by a leave goes through A too
#   (make_leave/send_leave) and leaves B's rooms.knock.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

%Test::Matrix::ServerOptions = (federation => 1);

my $A = server();
my $B = new_server(federation => 1);
my $api = '/_matrix/client/v3';

sub user_on {
    my ($srv, $name) = @_;
    my $c = Test::Matrix::Client->new(server => $srv);
    my ($status, $body) = $c->register($name, "secret-password-$name");
    is($status, 200, "$name registers on " . $srv->server_name) or diag explain $body;
    return $c;
}

my $alice = user_on($A, 'alice');
my ($bob, $eve, $fay) = map { user_on($A, $_) } qw(bob eve fay);
$bob->put("$api/profile/" . esc($bob->user_id) . '/displayname', { displayname => 'Bob B' });

my ($status, $body);

# a room of alice's with a join rule and a version
sub room {
    my ($rule, $version, %more) = @_;
    my ($s, $j) = $alice->post("$api/createRoom", {
        room_version => $version, name => "A $rule room", topic => 'knock first',
        initial_state => [ { type => 'm.room.join_rules', state_key => '',
                             content => { join_rule => $rule } } ],
        %more });
    is($s, 200, "alice makes a $rule room of version $version") or diag explain $j;
    return $j->{room_id};
}

# who is what in a room, as alice sees it
sub members {
    my ($room) = @_;
    my ($s, $j) = $alice->get("$api/rooms/" . esc($room) . '/members');
    return { map { ($_->{state_key} => $_->{content}{membership}) } @{ $j->{chunk} // [] } };
}

# the sections of the rooms of a /sync that hold a room
sub sections_of {
    my ($sync, $room) = @_;
    return [ grep { $sync->{rooms}{$_}{$room} } qw(join invite knock leave) ];
}

sub by_key { return { map { ("$_->{type}|$_->{state_key}" => $_) } @{ $_[0] // [] } } }

# --- a room of this server ------------------------------------------------------------------
my $room = room('knock', '10');

($status, $body) = $bob->get("$api/sync");
my $bob_since = $body->{next_batch};
($status, $body) = $alice->get("$api/sync");
my $alice_since = $body->{next_batch};

($status, $body) = $bob->post("$api/knock/" . esc($room), { reason => 'let me in' });
is($status, 200, 'bob knocks: 200') or diag explain $body;
json_is($body, { room_id => $room }, 'answered {room_id}');
is(members($room)->{$bob->user_id}, 'knock', "the room's members: bob knocks");
($status, $body) = $alice->get("$api/rooms/" . esc($room) . '/state/m.room.member/' . esc($bob->user_id));
is($body->{reason}, 'let me in', 'the knock carries the reason');
is($body->{displayname}, 'Bob B', 'and bob\'s display name');

($status, $body) = $alice->get("$api/sync?since=$alice_since");
my ($knock_ev) = grep { $_->{type} eq 'm.room.member' && $_->{state_key} eq $bob->user_id }
                 @{ $body->{rooms}{join}{$room}{timeline}{events} // [] };
ok($knock_ev, "alice's /sync: bob's knock in the room's timeline") or diag explain $body->{rooms};
is($knock_ev->{content}{membership}, 'knock', 'membership knock');
is($knock_ev->{sender}, $bob->user_id, 'sent by bob');

($status, $body) = $bob->get("$api/sync?since=$bob_since");
is_deeply(sections_of($body, $room), ['knock'], "bob's /sync: the room in rooms.knock, nowhere else");
my $ks = by_key($body->{rooms}{knock}{$room}{knock_state}{events});
is($ks->{'m.room.name|'}{content}{name}, 'A knock room', 'knock_state: the name');
is($ks->{'m.room.join_rules|'}{content}{join_rule}, 'knock', 'the join rules');
ok($ks->{'m.room.create|'}, 'the create event');
is($ks->{'m.room.member|' . $bob->user_id}{content}{membership}, 'knock', 'the knock itself');
ok(!exists $ks->{'m.room.member|' . $bob->user_id}{event_id}, 'stripped (no event_id)');
ok(!exists $ks->{'m.room.name|'}{signatures}, 'stripped (no signatures)');
my $bob_after_knock = $body->{next_batch};
($status, $body) = $bob->get("$api/sync");
ok($body->{rooms}{knock}{$room}, 'an initial /sync shows the knock too');

# refused knocks on the same room
($status, $body) = $alice->post("$api/knock/" . esc($room), {});
is($status, 403, 'alice, joined, may not knock: 403');
is($body->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');
($status, $body) = $bob->post("$api/knock/" . esc($room), { reason => 42 });
is($status, 400, 'a reason that is not a string: 400');
is($body->{errcode}, 'M_BAD_JSON', 'M_BAD_JSON');
($status, $body) = $bob->post("$api/knock/" . esc($room));
is($status, 400, 'no body: 400') or diag explain $body;
($status) = $alice->post("$api/rooms/" . esc($room) . '/ban', { user_id => $eve->user_id });
is($status, 200, 'alice bans eve');
($status, $body) = $eve->post("$api/knock/" . esc($room), {});
is($status, 403, 'eve, banned, may not knock: 403');
is($body->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');
is(members($room)->{$eve->user_id}, 'ban', 'eve stays banned');

# accepted: alice invites bob, the room moves to rooms.invite, then join
($status, $body) = $alice->post("$api/rooms/" . esc($room) . '/invite', { user_id => $bob->user_id });
is($status, 200, 'alice accepts the knock: she invites bob') or diag explain $body;
($status, $body) = $bob->get("$api/sync?since=$bob_after_knock");
is_deeply(sections_of($body, $room), ['invite'], "bob's /sync: the room moves to rooms.invite");
($status, $body) = $bob->post("$api/knock/" . esc($room), {});
is($status, 403, 'bob, invited, may not knock again: 403');
($status, $body) = $bob->post("$api/join/" . esc($room), {});
is($status, 200, 'bob joins') or diag explain $body;
($status, $body) = $bob->get("$api/sync");
is_deeply(sections_of($body, $room), ['join'], "bob's /sync: the room in rooms.join");

# a knock rescinded: fay knocks, then leaves
($status, $body) = $fay->get("$api/sync");
my $fay_since = $body->{next_batch};
($status, $body) = $fay->post("$api/knock/" . esc($room), {});
is($status, 200, 'fay knocks') or diag explain $body;
($status, $body) = $fay->post("$api/rooms/" . esc($room) . '/leave', {});
is($status, 200, 'fay rescinds her knock by leaving') or diag explain $body;
is(members($room)->{$fay->user_id}, 'leave', "the room's members: fay left");
($status, $body) = $fay->get("$api/sync?since=$fay_since");
ok(!$body->{rooms}{knock}{$room}, "fay's /sync: not in rooms.knock");
($status, $body) = $fay->get("$api/sync");
ok(!$body->{rooms}{knock}{$room}, 'nor in an initial one');

# by alias; knock_restricted
my $restricted = room('knock_restricted', '10');
($status) = $alice->put("$api/directory/room/" . esc('#door:' . $A->server_name), { room_id => $restricted });
is($status, 200, 'the knock_restricted room gets an alias');
($status, $body) = $fay->post("$api/knock/" . esc('#door:' . $A->server_name), {});
is($status, 200, 'fay knocks on a knock_restricted room by its alias') or diag explain $body;
is($body->{room_id}, $restricted, 'answered with the room ID');
is(members($restricted)->{$fay->user_id}, 'knock', "the room's members: fay knocks");

# rooms that do not take knocks
my $public = room('public', '10');
($status, $body) = $fay->post("$api/knock/" . esc($public), {});
is($status, 403, 'a public room: 403');
is($body->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');
like($body->{error}, qr/knock/, 'saying why');
ok(!exists members($public)->{$fay->user_id}, 'and fay is no member');

my $old = room('knock', '6');
($status, $body) = $fay->post("$api/knock/" . esc($old), {});
is($status, 403, 'a room of version 6 (no knocking): 403') or diag explain $body;
is($body->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');
like($body->{error}, qr/version/, 'saying the version is why');
ok(!exists members($old)->{$fay->user_id}, 'and fay is no member');

my $restricted9 = room('knock_restricted', '9');
($status, $body) = $fay->post("$api/knock/" . esc($restricted9), {});
is($status, 403, 'knock_restricted in a version 9 room: 403');

# bad and unknown rooms
($status, $body) = $fay->post("$api/knock/nope", {});
is($status, 400, 'not a room ID: 400');
is($body->{errcode}, 'M_INVALID_PARAM', 'M_INVALID_PARAM');
($status, $body) = $fay->post("$api/knock/" . esc('#bad alias'), {});
is($status, 400, 'not an alias: 400');
($status, $body) = $fay->post("$api/knock/" . esc('!nothing:' . $A->server_name), {});
is($status, 404, 'an unknown room of this server: 404');
is($body->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');
($status, $body) = $fay->post("$api/knock/" . esc('#nothing:' . $A->server_name), {});
is($status, 404, 'an unknown alias: 404');
is($body->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');
my $v12 = room('knock', '12');
my $gus = user_on($B, 'gus');
($status, $body) = $gus->post("$api/knock/" . esc($v12), {});
is($status, 404, 'a version 12 room ID names no server: 404 without server_name');
is($body->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');
($status, $body) = $fay->post("$api/knock/" . esc($room), {}, no_auth => 1);
is($status, 401, 'no access token: 401');

# --- a room of another server -------------------------------------------------------------
my $remote = room('knock', '12');
($status) = $alice->put("$api/directory/room/" . esc('#remote:' . $A->server_name), { room_id => $remote });
is($status, 200, "alice's remote-knock room gets an alias");
my ($rob, $cat) = map { user_on($B, $_) } qw(rob cat);
my $via = '?server_name=' . esc($A->server_name);

# cat knocks by alias, then rescinds
($status, $body) = $cat->get("$api/sync");
my $cat_since = $body->{next_batch};
($status, $body) = $cat->post("$api/knock/" . esc('#remote:' . $A->server_name), { reason => 'hi' });
is($status, 200, "cat of B knocks on A's room by its alias") or diag explain $body;
is($body->{room_id}, $remote, 'answered with the room ID');
is(members($remote)->{$cat->user_id}, 'knock', "A's members: cat knocks");
($status, $body) = $alice->get("$api/rooms/" . esc($remote) . '/state/m.room.member/' . esc($cat->user_id));
is($body->{reason}, 'hi', 'with her reason');
($status, $body) = $cat->get("$api/sync?since=$cat_since");
is_deeply(sections_of($body, $remote), ['knock'], "cat's /sync on B: the room in rooms.knock");
$ks = by_key($body->{rooms}{knock}{$remote}{knock_state}{events});
is($ks->{'m.room.name|'}{content}{name}, 'A knock room', "knock_state: the name A answered");
is($ks->{'m.room.join_rules|'}{content}{join_rule}, 'knock', 'the join rules');
is($ks->{'m.room.member|' . $cat->user_id}{content}{membership}, 'knock', 'the knock itself');
ok(!exists $ks->{'m.room.member|' . $cat->user_id}{signatures}, 'stripped');
$cat_since = $body->{next_batch};

($status, $body) = $cat->post("$api/rooms/" . esc($remote) . '/leave', {});
is($status, 200, 'cat rescinds her knock: a leave through A') or diag explain $body;
is(members($remote)->{$cat->user_id}, 'leave', "A's members: cat left");
($status, $body) = $cat->get("$api/sync?since=$cat_since");
is_deeply(sections_of($body, $remote), ['leave'], "cat's /sync on B: the room leaves rooms.knock");
($status, $body) = $cat->get("$api/sync");
ok(!$body->{rooms}{knock}{$remote}, 'an initial /sync has no knock either');
ok(!$B->redis_cmd('EXISTS', "mx:{$remote}:knocked:" . $cat->user_id), 'B keeps nothing of it');
($status, $body) = $cat->post("$api/rooms/" . esc($remote) . '/leave', {});
is($status, 404, 'leaving again: the room is unknown to B, 404');

# rob knocks by ID, is invited, joins
($status, $body) = $rob->get("$api/sync");
my $rob_since = $body->{next_batch};
($status, $body) = $rob->post("$api/knock/" . esc($remote) . $via, {});
is($status, 200, "rob of B knocks on A's room by its ID and server_name") or diag explain $body;
json_is($body, { room_id => $remote }, 'answered {room_id}');
is(members($remote)->{$rob->user_id}, 'knock', "A's members: rob knocks");
is($B->redis_cmd('HGET', "mx:{$remote}:knocked:" . $rob->user_id, 'server'), $A->server_name,
   'B keeps the server that took the knock');
($status, $body) = $rob->get("$api/sync?since=$rob_since");
is_deeply(sections_of($body, $remote), ['knock'], "rob's /sync on B: rooms.knock");
$rob_since = $body->{next_batch};

($status, $body) = $alice->post("$api/rooms/" . esc($remote) . '/invite', { user_id => $rob->user_id });
is($status, 200, "alice accepts rob's knock: an invite to B") or diag explain $body;
ok(wait_for(sub {
    my ($s, $j) = $rob->get("$api/sync?since=$rob_since");
    $j->{rooms}{invite}{$remote};
}, 30), "rob's /sync on B: the room moves to rooms.invite");
($status, $body) = $rob->get("$api/sync?since=$rob_since");
ok(!$body->{rooms}{knock}{$remote}, 'and is no longer in rooms.knock');
ok(!$B->redis_cmd('EXISTS', "mx:{$remote}:knocked:" . $rob->user_id), "B's record of the knock is gone");
($status, $body) = $rob->post("$api/join/" . esc($remote), {});
is($status, 200, 'rob joins through the inviter\'s server') or diag explain $body;
is(members($remote)->{$rob->user_id}, 'join', "A's members: rob joined");
($status, $body) = $rob->get("$api/sync");
is_deeply(sections_of($body, $remote), ['join'], "rob's /sync on B: rooms.join");

# a public room of A refuses a remote knock, as A answers make_knock
($status, $body) = $rob->post("$api/knock/" . esc($public) . $via, {});
is($status, 403, "a public room of A: A's 403") or diag explain $body;
is($body->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');
($status, $body) = $rob->get("$api/sync");
ok(!$body->{rooms}{knock}{$public}, 'and no knock on B');

done_testing();

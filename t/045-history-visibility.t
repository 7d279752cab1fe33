# History visibility on /messages and /event: joined, invited, shared and
# world_readable rooms; users who joined late and users who left.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $api = '/_matrix/client/v3';
my %c = map { $_ => client(token => $srv->make_token(user_id => "\@$_:localhost")) } qw(alice bob carol dave eve);

sub room {
    my ($hv) = @_;
    my (undef, $j) = $c{alice}->post("$api/createRoom", { preset => 'public_chat',
        initial_state => [ { type => 'm.room.history_visibility', content => { history_visibility => $hv } } ] });
    return $j->{room_id};
}

my $n = 0;
sub say_ {
    my ($who, $room, $body) = @_;
    my ($s, $j) = $c{$who}->put("$api/rooms/$room/send/m.room.message/m" . ++$n, { body => $body });
    die "send: $s" unless $s == 200;
    return $j->{event_id};
}

sub bodies {
    my ($who, $room) = @_;
    my ($s, $j) = $c{$who}->get("$api/rooms/$room/messages?dir=b&limit=100");
    return [ $s ] unless $s == 200;
    return [ map { $_->{content}{body} } grep { $_->{type} eq 'm.room.message' } reverse @{ $j->{chunk} } ];
}

sub can_get {
    my ($who, $room, $id) = @_;
    my ($s) = $c{$who}->get("$api/rooms/$room/event/$id");
    return $s;
}

# --- joined -------------------------------------------------------------------

my $r = room('joined');
my $before = say_('alice', $r, 'before bob');
$c{bob}->post("$api/rooms/$r/join", {});
say_('alice', $r, 'after bob');
is_deeply(bodies('bob', $r), ['after bob'], 'joined: bob sees only what came after his join');
is(can_get('bob', $r, $before), 404, 'joined: an earlier event is not found for bob');
is_deeply(bodies('alice', $r), ['before bob', 'after bob'], 'the creator sees both');

# --- shared -----------------------------------------------------------------------

$r = room('shared');
$before = say_('alice', $r, 'early');
$c{carol}->post("$api/rooms/$r/join", {});
say_('alice', $r, 'late');
is_deeply(bodies('carol', $r), ['early', 'late'], 'shared: carol, joined late, sees everything');
is(can_get('carol', $r, $before), 200, 'shared: an earlier event is there for her');
is_deeply(bodies('eve', $r), [403], 'shared: a user never in the room may not read');

# left: sees up to the leave
$c{carol}->post("$api/rooms/$r/leave", {});
say_('alice', $r, 'after carol left');
is_deeply(bodies('carol', $r), ['early', 'late'], 'after leaving, carol sees up to her leave');
my ($s, $j) = $c{carol}->get("$api/rooms/$r/messages?dir=b&limit=100");
ok((grep { $_->{type} eq 'm.room.member' && $_->{state_key} eq '@carol:localhost'
           && $_->{content}{membership} eq 'leave' } @{ $j->{chunk} }), 'her own leave included');

# --- invited -------------------------------------------------------------------------

$r = room('invited');
say_('alice', $r, 'before the invite');
$c{alice}->post("$api/rooms/$r/invite", { user_id => '@dave:localhost' });
say_('alice', $r, 'while invited');
$c{dave}->post("$api/rooms/$r/join", {});
say_('alice', $r, 'after the join');
is_deeply(bodies('dave', $r), ['while invited', 'after the join'], 'invited: dave sees from his invite on');

# --- world_readable -----------------------------------------------------------------------

$r = room('world_readable');
my $open = say_('alice', $r, 'for all');
is_deeply(bodies('eve', $r), ['for all'], 'world_readable: anyone may read the history');
is(can_get('eve', $r, $open), 200, 'and fetch an event');

# --- a room that becomes world_readable, then joined ----------------------------------------

$r = room('joined');
say_('alice', $r, 'closed 1');
$c{alice}->put("$api/rooms/$r/state/m.room.history_visibility", { history_visibility => 'world_readable' });
say_('alice', $r, 'open');
$c{alice}->put("$api/rooms/$r/state/m.room.history_visibility", { history_visibility => 'joined' });
say_('alice', $r, 'closed 2');
$c{eve}->post("$api/rooms/$r/join", {});
is_deeply(bodies('eve', $r), ['open'], 'the visibility in force when each event was sent decides');

done_testing();

# The roomserver on its own: the state-resolution scenarios of
# ../shared/spec/state-res (events from the ruma project, without hashes or
# signatures) appended to the input shards as they come; the current state
# the roomserver stores must be the expected one.  Then the syncer's work:
# every accepted event has a stream position and is in the room's timeline,
# users' room lists follow their memberships, and a daemon restart in the
# middle loses nothing.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;

my $spec = $ENV{MX_SPEC_DIR} // "$Test::Matrix::Server::Repo/../shared/spec";
my $dir = "$spec/state-res";

unless (-d "$dir/fixtures") {
    plan skip_all => "the state-resolution scenarios are not here ($dir): "
                   . 'they come from ../shared/spec, beside the repository';
}

my $srv = server();
my $ctl = "$Test::Matrix::Server::Build/bin/matrixctl";
my $json = JSON::PP->new->canonical->utf8;

sub slurp_json { my $t = Test::Matrix::Server::slurp(shift) // die; $json->decode($t) }

my %scenarios = (
    minimal_private_chat     => [ 'bootstrap-private-chat' ],
    minimal_public_chat      => [ 'bootstrap-public-chat' ],
    origin_server_ts_tiebreak => [ 'bootstrap-private-chat', 'origin-server-ts-tiebreak' ],
    ban_vs_power_levels      => [ 'bootstrap-public-chat', 'ban-vs-power-levels-alice', 'ban-vs-power-levels-bob' ],
    topic_vs_power_levels    => [ 'bootstrap-public-chat', 'topic-vs-power-levels-alice', 'topic-vs-power-levels-bob' ],
    power_levels_admin_vs_mod => [ 'bootstrap-public-chat', 'power-levels-admin-vs-mod-alice', 'power-levels-admin-vs-mod-bob' ],
    topic_vs_ban             => [ 'bootstrap-public-chat', 'topic-vs-ban-common', 'topic-vs-ban-alice', 'topic-vs-ban-bob' ],
    join_rules_vs_join       => [ 'bootstrap-public-chat', 'join-rules-vs-join-common', 'join-rules-vs-join-alice', 'join-rules-vs-join-ella' ],
    concurrent_joins         => [ 'bootstrap-public-chat', 'concurrent-joins-charlie', 'concurrent-joins-ella' ],
);

sub shard { my $room = shift; my $s = qx{$ctl shard '$room' 4}; chomp $s; $s }

sub feed {
    my ($room, $pdus) = @_;
    my $shard = shard($room);
    for my $p (@$pdus) {
        my %pdu = %$p;
        delete $pdu{'test-comments'};
        $pdu{room_id} = $room if exists $pdu{room_id};
        my @version = $pdu{type} eq 'm.room.create'
                      ? (version => $pdu{content}{room_version} // '1') : ();
        $srv->redis_cmd('XADD', "mx:input:$shard", '*', kind => 'event', room => $room,
                        event_id => $pdu{event_id}, event => $json->encode(\%pdu),
                        origin => 'local', @version);
    }
}

sub stored { my $room = shift; $srv->redis_cmd('HGET', "mx:{$room}:room", 'pos') // 0 }

sub current_state {
    my $room = shift;
    my %h = @{ $srv->redis_cmd('HGETALL', "mx:{$room}:state") };
    return { map { my ($t, $k) = split /\x1f/, $_, 2; ("$t|$k" => $h{$_}) } keys %h };
}

for my $name (sort keys %scenarios) {
    my $room = "!$name:example.com";
    my @pdus = map { @{ slurp_json("$dir/fixtures/$_.json") } } @{ $scenarios{$name} };
    feed($room, \@pdus);

    ok(wait_for(sub { stored($room) == @pdus }, 15), "$name: all " . scalar(@pdus) . ' events stored');

    my $expected = slurp_json("$dir/expected/$name.json");
    my %want = map { ("$_->{type}|$_->{state_key}" => $_->{event_id}) } @$expected;
    is_deeply(current_state($room), \%want, "$name: the current state is the expected one");
}

# --- the syncer ------------------------------------------------------------------

my $room = '!minimal_public_chat:example.com';
my $timeline = $srv->redis_cmd('ZRANGE', "mx:{$room}:timeline", 0, -1, 'WITHSCORES');
my %pos = @$timeline;
my @pdus = @{ slurp_json("$dir/fixtures/bootstrap-public-chat.json") };
is(scalar keys %pos, scalar @pdus, 'every event of the public chat is in its timeline');
my @order = map { $pos{$_->{event_id}} } @pdus;
is_deeply(\@order, [ sort { $a <=> $b } @order ], 'in the order they were accepted');

my $rooms = { @{ $srv->redis_cmd('HGETALL', 'mx:{@alice:example.com}:rooms') } };
like($rooms->{$room}, qr/^join \d+$/, 'alice\'s room list has the room, joined');

# a rejected event: no position, not in the timeline
my $bad = { event_id => '$bad-topic', room_id => $room, sender => '@nobody:example.com',
            type => 'm.room.topic', state_key => '', content => { topic => 'spam' },
            origin_server_ts => 99, prev_events => [ $pdus[-1]{event_id} ],
            auth_events => [ '$00-m-room-create', '$00-m-room-power_levels' ] };
my $before = stored($room);
feed($room, [ $bad ]);
ok(wait_for(sub { stored($room) == $before + 1 }, 10), 'a refused event is stored');
like($srv->redis_cmd('HGET', "mx:{$room}:meta", '$bad-topic'), qr/ r$/, 'as rejected');
is($srv->redis_cmd('ZSCORE', "mx:{$room}:timeline", '$bad-topic'), undef, 'and never reaches the timeline');
is(current_state($room)->{'m.room.topic|'}, undef, 'nor the state');

# a local event built on what was current a moment before: bob's message
# from the extremity before alice's ban of him (two workers at once) is
# refused by the current state, not slipped in on a branch
my $tip = $pdus[-1]{event_id};
my $ban = { event_id => '$ban-bob', room_id => $room, sender => '@alice:example.com',
            type => 'm.room.member', state_key => '@bob:example.com',
            content => { membership => 'ban' }, origin_server_ts => 100,
            prev_events => [ $tip ],
            auth_events => [ '$00-m-room-create', '$01-m-room-power_levels',
                             '$00-m-room-member-join-alice', '$00-m-room-member-join-bob' ] };
my $late = { event_id => '$bob-late', room_id => $room, sender => '@bob:example.com',
             type => 'm.room.message', content => { body => 'sent as the ban came' },
             origin_server_ts => 101, prev_events => [ $tip ],
             auth_events => [ '$00-m-room-create', '$01-m-room-power_levels',
                              '$00-m-room-member-join-bob' ] };
$before = stored($room);
feed($room, [ $ban, $late ]);
ok(wait_for(sub { stored($room) == $before + 2 }, 10), 'the ban and the late message are stored');
is(current_state($room)->{'m.room.member|@bob:example.com'}, '$ban-bob', 'bob is banned');
like($srv->redis_cmd('HGET', "mx:{$room}:meta", '$bob-late'), qr/ r$/,
     'his message built on the state before the ban is refused');
is($srv->redis_cmd('ZSCORE', "mx:{$room}:timeline", '$bob-late'), undef, 'and never reaches the timeline');

# --- a restart of every daemon in the middle of a burst -------------------------------

my $burst = '!burst:example.com';
my @burst = @{ slurp_json("$dir/fixtures/bootstrap-public-chat.json") };
my $prev = $burst[-1]{event_id};
for my $i (1 .. 200) {
    push @burst, { event_id => "\$msg-$i", room_id => $burst, sender => '@alice:example.com',
                   type => 'm.room.message', content => { body => "hello $i" },
                   origin_server_ts => 1000 + $i, prev_events => [ $prev ],
                   auth_events => [ '$00-m-room-create', '$00-m-room-power_levels',
                                    '$00-m-room-member-join-alice' ] };
    $prev = "\$msg-$i";
}
feed($burst, \@burst);
for my $d (qw(roomserver syncer)) {
    my $pid = $srv->pid_of($d);
    kill 'KILL', $pid if $pid;
}
ok(wait_for(sub { stored($burst) == @burst }, 30), 'after SIGKILL of the roomserver and syncer, every event is stored');
ok(wait_for(sub { $srv->redis_cmd('ZCARD', "mx:{$burst}:timeline") == @burst }, 30),
   'and every one has a stream position, once');
my $spos = { @{ $srv->redis_cmd('HGETALL', "mx:{$burst}:spos") } };
my @seq = map { $spos->{"\$msg-$_"} } 1 .. 200;
is_deeply(\@seq, [ sort { $a <=> $b } @seq ], 'in the order of the room');
my $extrem = $srv->redis_cmd('SMEMBERS', "mx:{$burst}:extrem");
is_deeply($extrem, [ '$msg-200' ], 'one forward extremity: the last message');

done_testing();

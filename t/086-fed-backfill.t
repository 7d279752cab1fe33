# A room joined through another server gets some history: after bob of B
# joins alice's room on A, B's fedsender backfills from A what was said
# before, and the roomserver stores it below the join.  bob's /messages
# backwards goes on from his join into it, in A's order, each event once,
# the room's creation too, in pages of any size; /context works on it.
# The room's state and forward extremities on B stay as the join left
# them, and alice's next message still arrives after.  History nobody
# gives (an unreachable server), or forged, changes nothing.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;
use IPC::Open3;

%Test::Matrix::ServerOptions = (federation => 1);

my $A = server();
my $B = new_server(federation => 1);
my $api = '/_matrix/client/v3';
my $json = JSON::PP->new->canonical;

my $alice = Test::Matrix::Client->new(server => $A);
my ($status, $body) = $alice->register('alice', 'secret-password-1');
is($status, 200, 'alice registers on A');
($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', name => 'History' });
is($status, 200, 'alice makes a public room');
my $room = $body->{room_id};

for my $i (1 .. 30) {
    ($status, $body) = $alice->put("$api/rooms/" . esc($room) . "/send/m.room.message/h$i",
                                   { msgtype => 'm.text', body => "before $i" });
    $status == 200 or fail("alice says $i: $status");
}

my $bob = Test::Matrix::Client->new(server => $B);
($status, $body) = $bob->register('bob', 'secret-password-2');
is($status, 200, 'bob registers on B');
($status, $body) = $bob->post("$api/join/" . esc($room) . '?server_name=' . esc($A->server_name), {});
is($status, 200, "bob joins A's room") or diag explain $body;
my $join = $B->redis_cmd('HGET', "mx:{$room}:state", "m.room.member\x1f" . $bob->user_id);
ok($join, "B's state holds bob's join");

# a client's view of the room by /messages backwards, oldest first: the
# events (id, type, body)
sub history {
    my ($c, $limit) = @_;
    my (@all, $from);
    for (1 .. 200) {
        my ($s, $j) = $c->get("$api/rooms/" . esc($room) . "/messages?dir=b&limit=$limit"
                              . (defined $from ? "&from=$from" : ''));
        return undef unless $s == 200;
        push @all, @{ $j->{chunk} // [] };
        last unless defined $j->{end} && @{ $j->{chunk} // [] };
        $from = $j->{end};
    }
    return [ reverse @all ];
}
sub ids { [ map { $_->{event_id} } @{ $_[0] // [] } ] }
sub bodies { [ map { $_->{content}{body} } grep { $_->{type} eq 'm.room.message' } @{ $_[0] // [] } ] }

my $on_a = history($alice, 100);
my $extrem = $B->redis_cmd('SMEMBERS', "mx:{$room}:extrem");
my $cur_sg = $B->redis_cmd('HGET', "mx:{$room}:room", 'cur_sg');

ok(wait_for(sub { @{ bodies(history($bob, 100)) } >= 30 }, 20),
   "alice's messages before bob's join reach B's /messages") or diag explain history($bob, 100);
my $on_b = history($bob, 100);
is_deeply(bodies($on_b), [ map { "before $_" } 1 .. 30 ], 'in order, each once');
is_deeply(ids($on_b), ids($on_a), "the same events as A's /messages, in A's order, the room's creation first");
is($on_b->[0]{type}, 'm.room.create', 'the room begins with its creation');
is($on_b->[-1]{event_id}, $join, "and B's timeline goes on with bob's join");
is_deeply(ids(history($bob, 7)), ids($on_b), 'pages of 7 give the same');
is_deeply(ids(history($bob, 1)), ids($on_b), 'and pages of 1');

# the room's state, extremities and current group: as the join left them
sub state_of {
    my ($c) = @_;
    my ($s, $j) = $c->get("$api/rooms/" . esc($room) . '/state');
    return { map { ("$_->{type}|$_->{state_key}" => $_->{event_id}) } @{ $j // [] } };
}
is_deeply(state_of($bob), state_of($alice), "B's state is A's");
is_deeply([ sort @{ $B->redis_cmd('SMEMBERS', "mx:{$room}:extrem") } ], [ sort @$extrem ],
          'the forward extremities on B are unchanged');
is_deeply($extrem, [ $join ], '(the join)');
is($B->redis_cmd('HGET', "mx:{$room}:room", 'cur_sg'), $cur_sg, 'the current state group too');

# the tokens of history are negative positions; others are refused
for my $bad ('p-', 'p-x', 'p--3', 'p-3x') {
    ($status, $body) = $bob->get("$api/rooms/" . esc($room) . "/messages?dir=b&from=$bad");
    is_deeply([ $status, $body->{errcode} ], [ 400, 'M_INVALID_PARAM' ], "from=$bad is no token");
}

# /context of a message from the history
my ($mid) = grep { ($_->{content}{body} // '') eq 'before 15' } @$on_b;
($status, $body) = $bob->get("$api/rooms/" . esc($room) . '/context/' . esc($mid->{event_id}) . '?limit=4');
is($status, 200, '/context of a backfilled message');
is($body->{event}{event_id}, $mid->{event_id}, 'the event');
is_deeply([ map { $_->{content}{body} } @{ $body->{events_before} } ], [ map { "before $_" } reverse 13 .. 14 ],
          'what came before it')
    or diag explain $body;
is_deeply([ map { $_->{content}{body} } @{ $body->{events_after} } ], [ map { "before $_" } 16 .. 17 ],
          'and after it');
($status, my $page) = $bob->get("$api/rooms/" . esc($room) . "/messages?dir=f&limit=3&from=$body->{end}");
is($status, 200, "/messages forwards from the context's end");
is_deeply(bodies($page->{chunk}), [ map { "before $_" } 18 .. 20 ], 'goes on after it');

# /sync is not disturbed: bob's incremental sync after the join shows nothing old
($status, $body) = $alice->put("$api/rooms/" . esc($room) . '/send/m.room.message/after1',
                               { msgtype => 'm.text', body => 'after 1' });
is($status, 200, 'alice says one more');
ok(wait_for(sub { (bodies(history($bob, 100))->[-1] // '') eq 'after 1' }, 20),
   'it arrives on B after the rest') or diag explain bodies(history($bob, 100));
is_deeply(bodies(history($bob, 100)), [ (map { "before $_" } 1 .. 30), 'after 1' ], 'all once, in order');

# an initial /sync's short timeline reaches into the history; its prev_batch
# goes on from there
my $filter = esc($json->encode({ room => { timeline => { limit => 3 } } }));
($status, $body) = $bob->get("$api/sync?filter=$filter");
is($status, 200, "bob's initial sync");
my $tl = $body->{rooms}{join}{$room}{timeline};
is_deeply([ map { $_->{content}{body} // $_->{type} } @{ $tl->{events} } ],
          [ 'before 30', 'm.room.member', 'after 1' ], 'its timeline: the last of the history, the join, after')
    or diag explain $tl;
($status, $page) = $bob->get("$api/rooms/" . esc($room) . "/messages?dir=b&limit=3&from=$tl->{prev_batch}");
is($status, 200, '/messages from its prev_batch');
is_deeply(bodies($page->{chunk}), [ map { "before $_" } reverse 27 .. 29 ], 'goes on into the history')
    or diag explain $page;

# --- nothing from an unreachable server; nothing forged ---------------------------
my $ctl = "$Test::Matrix::Server::Build/bin/matrixctl";
sub shard {
    my $pid = open3(my $in, my $out, undef, $ctl, 'shard', $room, 4);
    close $in;
    local $/;
    my $t = <$out>;
    waitpid $pid, 0;
    $t =~ s/\s+\z//;
    return $t;
}

my $before = ids(history($bob, 100));
$B->redis_cmd('XADD', 'mx:fedjobs', '*', kind => 'backfill', room => $room, destination => 'localhost:1',
              v => $join, limit => 50);
ok(wait_for(sub {
    my $p = $B->redis_cmd('XPENDING', 'mx:fedjobs', 'fedsender');
    !$p->[0];
}, 20), "a backfill from a server that does not answer is given up");

# a forged message: a history event of A, its text changed (its hash no longer
# matches: kept redacted at most, never with the forged text) and one whose
# signature is bad under a new ID
my $shard = shard();
my $pdu = $A->redis_cmd('HGET', "mx:{$room}:pdu", $mid->{event_id});
my $ev = $json->decode($pdu);
$ev->{content}{body} = 'forged';
$ev->{depth} = 2;
delete $ev->{hashes};
my $n_pdu = $B->redis_cmd('HLEN', "mx:{$room}:pdu");
$B->redis_cmd('XADD', "mx:input:$shard", '*', kind => 'backfill', room => $room, origin => $A->server_name,
              events => $json->encode([ $ev ]));
$B->redis_cmd('XADD', "mx:input:$shard", '*', kind => 'backfill', room => $room, origin => $A->server_name,
              events => 'not json');
ok(wait_for(sub {
    my $p = $B->redis_cmd('XPENDING', "mx:input:$shard", 'roomserver');
    !$p->[0];
}, 20), 'the roomserver has taken the forged history');
is($B->redis_cmd('HLEN', "mx:{$room}:pdu"), $n_pdu, 'and stored nothing of it');
is_deeply(ids(history($bob, 100)), $before, "bob's history unchanged");

($status, $body) = $alice->put("$api/rooms/" . esc($room) . '/send/m.room.message/after2',
                               { msgtype => 'm.text', body => 'after 2' });
ok(wait_for(sub { (bodies(history($bob, 100))->[-1] // '') eq 'after 2' }, 20),
   'and the room goes on') or diag explain bodies(history($bob, 100));
is_deeply(state_of($bob), state_of($alice), "B's state is still A's");

done_testing();

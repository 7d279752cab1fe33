# A roomserver killed with SIGKILL in the middle of a burst of sends: every
# send that got a 200 is stored exactly once, each sender's events in the
# order they were sent; the sends that did not get a 200 succeed when
# retried with the same transaction ID, and give the same event.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;
use Time::HiRes qw(sleep);
use File::Temp qw(tempdir);

my $srv = server();
my $api = '/_matrix/client/v3';
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost', device_id => 'ADEV'));
my ($status, $json) = $alice->post("$api/createRoom", { preset => 'public_chat' });
my $r = $json->{room_id};

my $SENDERS = 4;
my $EACH = 150;
my $dir = tempdir(CLEANUP => 1);
my @tokens;
for my $s (1 .. $SENDERS) {
    my $user = "\@s$s:localhost";
    push @tokens, $srv->make_token(user_id => $user, device_id => "D$s");
    my $c = client(token => $tokens[-1]);
    ($status) = $c->post("$api/rooms/$r/join", {});
    die "join $s: $status" unless $status == 200;
}

# each sender in its own process: "<i> <status> <event_id>" per send
my @pids;
for my $s (1 .. $SENDERS) {
    my $pid = fork // die;
    if ($pid == 0) {
        my $c = client(token => $tokens[$s - 1], timeout => 20);
        open my $out, '>', "$dir/$s" or die;
        for my $i (1 .. $EACH) {
            my ($st, $j) = $c->put("$api/rooms/$r/send/m.room.message/x$i", { body => "s$s-$i" });
            print {$out} "$i $st ", ($j && $j->{event_id} // '-'), "\n";
        }
        close $out;
        exit 0;
    }
    push @pids, $pid;
}

# kill it once a quarter of the burst is in
my $base = $srv->redis_cmd('ZCARD', "mx:{$r}:timeline");
ok(wait_for(sub { $srv->redis_cmd('ZCARD', "mx:{$r}:timeline") >= $base + $SENDERS * $EACH / 4 }, 20),
   'the burst is under way');
my $rs = $srv->pid_of('roomserver');
ok($rs, 'the roomserver runs');
kill 'KILL', $rs;
ok(wait_for(sub { my $p = $srv->pid_of('roomserver'); $p && $p != $rs }, 10), 'it is restarted');

waitpid $_, 0 for @pids;

my $timeline = $srv->redis_cmd('ZRANGE', "mx:{$r}:timeline", 0, -1);
my %count;
$count{$_}++ for @$timeline;

my ($ok, $failed, $dups, $order_bad) = (0, 0, 0, 0);
my %retry;
for my $s (1 .. $SENDERS) {
    open my $in, '<', "$dir/$s" or die;
    my $last_pos = -1;
    while (<$in>) {
        my ($i, $st, $id) = split;
        if ($st == 200) {
            $ok++;
            $dups++ if ($count{$id} // 0) != 1;
            my $pos = $srv->redis_cmd('ZSCORE', "mx:{$r}:timeline", $id) // -1;
            $order_bad++ if $pos <= $last_pos;
            $last_pos = $pos;
        } else {
            $failed++;
            $retry{"$s $i"} = 1;
        }
    }
}

is($ok + $failed, $SENDERS * $EACH, 'every send answered, none hung');
ok($srv->redis_cmd('ZCARD', "mx:{$r}:timeline") - $base > $SENDERS * $EACH / 4,
   'sends went on after the crash');
ok($ok > 0, "$ok sends got a 200");
is($dups, 0, 'each of them is in the timeline exactly once');
is($order_bad, 0, "each sender's events are in the order sent");
diag "$failed sends did not get a 200 during the crash" if $failed;

# retries with the same transaction IDs
my $retried_ok = 0;
for my $k (sort keys %retry) {
    my ($s, $i) = split ' ', $k;
    my $c = client(token => $tokens[$s - 1], timeout => 20);
    my ($st, $j);
    wait_for(sub { ($st, $j) = $c->put("$api/rooms/$r/send/m.room.message/x$i", { body => "s$s-$i" });
                   $st == 200 }, 15, 0.2);
    $retried_ok++ if $st == 200 && $j->{event_id};
}
is($retried_ok, scalar keys %retry, 'every failed send succeeds when retried');

# a retry of a send that had succeeded gives its event, not a new one
my $c1 = client(token => $tokens[0]);
open my $in, '<', "$dir/1" or die;
my $first = <$in>;
my (undef, $st1, $id1) = split ' ', $first;
($status, $json) = $c1->put("$api/rooms/$r/send/m.room.message/x1", { body => 's1-1' });
is($json->{event_id}, $id1, 'a retried success gives the same event') if $st1 == 200;

$timeline = $srv->redis_cmd('ZRANGE', "mx:{$r}:timeline", 0, -1);
my %c2;
$c2{$_}++ for @$timeline;
is(scalar(grep { $c2{$_} > 1 } keys %c2), 0, 'after the retries, still no event twice');
my $bodies = 0;
for my $id (@$timeline) {
    my $pdu = $srv->redis_cmd('HGET', "mx:{$r}:pdu", $id);
    $bodies++ if $pdu && $pdu =~ /"body":"s\d+-\d+"/;
}
is($bodies, $SENDERS * $EACH, 'every send is in the room once');

# --- consumed entries are trimmed; a group that is behind keeps them ------------

ok(wait_for(sub { $srv->redis_cmd('XLEN', 'mx:output') < 100 }, 10),
   'the output log is trimmed once every group has its entries');
my $input_len;
ok(wait_for(sub { $input_len = 0;
                  $input_len += $srv->redis_cmd('XLEN', "mx:input:$_") // 0 for 0 .. 3;
                  $input_len < 100 }, 10),
   'so are the input shards') or diag "$input_len entries left";

$srv->redis_cmd('XGROUP', 'CREATE', 'mx:output', 'laggard', '$');
for my $i (1 .. 30) {
    $alice->put("$api/rooms/$r/send/m.room.message/lag$i", { body => "lag $i" });
}
sleep 2.5;
ok($srv->redis_cmd('XLEN', 'mx:output') >= 30, 'a group that has not read them holds them');
$srv->redis_cmd('XGROUP', 'DESTROY', 'mx:output', 'laggard');

# --- the roomserver down for longer than a send waits -----------------------

$srv->hold('roomserver');
$rs = $srv->pid_of('roomserver');
kill 'KILL', $rs;
ok(wait_for(sub { !Test::Matrix::Server::alive($rs) }, 5), 'the roomserver is down and held');

my $t0 = time;
($status, $json) = $alice->put("$api/rooms/$r/send/m.room.message/late1", { body => 'late' });
is($status, 503, 'a send with no verdict in time: 503');
is($json->{errcode}, 'M_UNKNOWN', 'M_UNKNOWN');
like($json->{error}, qr/same transaction ID/, 'which says to retry');
ok(time - $t0 < 15, 'within the timeout, no hang');

$srv->unhold('roomserver');
ok(wait_for(sub { $srv->pid_of('roomserver') }, 10), 'the roomserver is back');
ok(wait_for(sub { ($status, $json) = $alice->put("$api/rooms/$r/send/m.room.message/late1", { body => 'late' });
                 $status == 200 }, 15, 0.2),
   'the retry with the same txnId: 200 once the roomserver has it (503 before)');
my $late = $json->{event_id};
($status, $json) = $alice->put("$api/rooms/$r/send/m.room.message/late1", { body => 'late' });
is($json->{event_id}, $late, 'and again: the same event');
my $n_late = grep { ($srv->redis_cmd('HGET', "mx:{$r}:pdu", $_) // '') =~ /"body":"late"/ }
             @{ $srv->redis_cmd('ZRANGE', "mx:{$r}:timeline", 0, -1) };
is($n_late, 1, 'stored once');

done_testing();

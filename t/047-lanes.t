# Concurrent sends to one room stay one line of events per nginx worker
# (ngx_matrix_lane.c): after a burst from many clients the room has at most
# one forward extremity per worker, and no event merges more branches than
# there are workers.  Without lanes every overlapping send started a branch.
# And a lane that is closed by a refusal does not break the sends after it.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;

my $srv = server();
my $api = '/_matrix/client/v3';
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost', device_id => 'ADEV'));
my ($status, $json) = $alice->post("$api/createRoom", { preset => 'public_chat' });
is($status, 200, 'a room');
my $r = $json->{room_id};

my $SENDERS = 8;
my $EACH = 40;
my @tokens;
for my $s (1 .. $SENDERS) {
    push @tokens, $srv->make_token(user_id => "\@l$s:localhost", device_id => "L$s");
    ($status) = client(token => $tokens[-1])->post("$api/rooms/$r/join", {});
    die "join $s: $status" unless $status == 200;
}

my @pids;
for my $s (1 .. $SENDERS) {
    my $pid = fork // die;
    if ($pid == 0) {
        my $c = client(token => $tokens[$s - 1]);
        my $bad = 0;
        for my $i (1 .. $EACH) {
            my ($st) = $c->put("$api/rooms/$r/send/m.room.message/l$i", { body => "l$s-$i" });
            $bad++ if $st != 200;
        }
        exit($bad ? 1 : 0);
    }
    push @pids, $pid;
}
my $failed = 0;
for (@pids) { waitpid $_, 0; $failed++ if $? }
is($failed, 0, "$SENDERS senders x $EACH messages at once: every send 200");

my $workers = $srv->{workers} // 2;
my $extrem = $srv->redis_cmd('SMEMBERS', "mx:{$r}:extrem");
cmp_ok(scalar @$extrem, '<=', $workers, "at most one forward extremity per worker (" . scalar(@$extrem) . ")");

my %pdus = @{ $srv->redis_cmd('HGETALL', "mx:{$r}:pdu") };
my @msgs = grep { $_->{type} eq 'm.room.message' } map { decode_json($_) } values %pdus;
is(scalar @msgs, $SENDERS * $EACH, 'every message stored');
my ($max) = sort { $b <=> $a } map { scalar @{ $_->{prev_events} } } @msgs;
cmp_ok($max, '<=', $workers + 1, "no event merges more than the workers' branches (max $max prev_events)");

# a refusal closes the worker's lane; the sends after it still succeed
my $outsider = client(token => $srv->make_token(user_id => '@out:localhost', device_id => 'O'));
($status) = $alice->post("$api/rooms/$r/ban", { user_id => '@l1:localhost' });
is($status, 200, 'a sender is banned');
my $l1 = client(token => $tokens[0]);
($status) = $l1->put("$api/rooms/$r/send/m.room.message/after-ban", { body => 'no' });
is($status, 403, 'whose next send is refused');
for my $i (1 .. 6) {
    ($status) = client(token => $tokens[1])->put("$api/rooms/$r/send/m.room.message/after-$i", { body => "yes $i" });
    is($status, 200, "another member's send $i after it is accepted");
}

done_testing();

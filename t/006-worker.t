# The daemon runtime, with a real Redis: a daemon killed with SIGKILL in the
# middle of an entry loses nothing after restart, and applies nothing twice;
# an entry that keeps crashing its consumer goes to the dead-letter stream,
# as does one the handler refuses; entries a dead consumer left are claimed
# by another; SIGTERM finishes the entry in hand.  The daemon is
# t/c/stream_worker, supervised by scripts/mx-run like every daemon.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Time::HiRes qw(sleep);
use POSIX qw(:sys_wait_h);

my $build = Test::Matrix::Server::daemon_build();
my $worker = "$build/t/stream_worker";

%Test::Matrix::ServerOptions = (
    daemons => Test::Matrix::Server::default_daemons() . " $worker",
    env => { MXW_TEST_MAX_DELIVERIES => 3, MXW_TEST_CLAIM_IDLE_MS => 800,
             MXW_TEST_CLAIM_EVERY_MS => 300 },
);

my $srv = server();
sub r { $srv->redis_cmd(@_) }
sub done_count { r('HLEN', 'mx:test:done') }
sub pending { my $p = r('XPENDING', 'mx:test:in', 'test'); ref $p eq 'ARRAY' ? $p->[0] : -1 }
sub add { r('XADD', 'mx:test:in', '*', @_) }

ok(wait_for(sub { $srv->pid_of('stream_worker') }, 5), 'the launcher started the worker');
my $pid = $srv->pid_of('stream_worker');

# --- SIGKILL in the middle of an entry ----------------------------------------

my ($total, $slow) = (0);
for my $i (1 .. 200) {
    my $id = add(n => $i, sleep_ms => $i == 60 ? 3000 : 1);
    $slow = $id if $i == 60;
    $total += $i;
}

ok(wait_for(sub { done_count() == 59 }, 20), '59 entries done, the 60th (slow) in hand');
sleep 0.3;
my $p = r('XPENDING', 'mx:test:in', 'test', '-', '+', 100);
ok((grep { $_->[0] eq $slow } @$p), 'the 60th is delivered but not acknowledged');
kill 'KILL', $pid;

ok(wait_for(sub { my $p = $srv->pid_of('stream_worker'); $p && $p != $pid }, 10),
   'the launcher restarted the killed worker');
ok(wait_for(sub { done_count() == 200 }, 30), 'after the restart every entry is done');
is(r('GET', 'mx:test:sum'), $total, 'each entry applied exactly once (the sum)');
my $order = r('LRANGE', 'mx:test:order', 0, -1);
is(scalar @$order, 200, 'no entry recorded twice');
is_deeply($order, [ sort { my @a = split /-/, $a; my @b = split /-/, $b; $a[0] <=> $b[0] || $a[1] <=> $b[1] } @$order ],
          'entries were applied in stream order');
ok(wait_for(sub { pending() == 0 }, 5), 'nothing left pending');

# --- a poison entry: crashes its consumer on every delivery ----------------------

$pid = $srv->pid_of('stream_worker');
my $poison = add(crash => 1);
add(n => 1000);

ok(wait_for(sub { my $d = r('XRANGE', 'mx:dead', '-', '+'); ref $d eq 'ARRAY' && @$d >= 1 }, 30),
   'the poison entry reached the dead-letter stream');
my $dead = r('XRANGE', 'mx:dead', '-', '+')->[-1][1];
my %dead = @$dead;
is($dead{entry}, $poison, 'the dead letter names the entry');
is($dead{stream}, 'mx:test:in', 'and its stream');
like($dead{reason}, qr/delivered [4-9] times without success/, 'and why: ' . $dead{reason});
is($dead{'f:crash'}, '1', 'and keeps its fields');
ok(wait_for(sub { done_count() == 201 }, 10), 'the entry after the poison one is processed');
ok(wait_for(sub { pending() == 0 }, 5), 'nothing left pending');

# --- an entry the handler refuses -----------------------------------------------

my $bad = add(reject => 1);
ok(wait_for(sub { my $d = r('XRANGE', 'mx:dead', '-', '+'); @$d == 2 }, 10),
   'a refused entry is dead-lettered at once');
%dead = @{ r('XRANGE', 'mx:dead', '-', '+')->[-1][1] };
is($dead{entry}, $bad, 'the right entry');
is($dead{reason}, 'asked to reject', 'with the handler\'s reason');
is($dead{deliveries}, '1', 'on its first delivery');

# --- a dead consumer's entries are claimed by another --------------------------

# the supervised worker is held down; another consumer takes the next entries
$srv->hold('stream_worker');
$pid = $srv->pid_of('stream_worker');
kill 'TERM', $pid;
ok(wait_for(sub { !Test::Matrix::Server::alive($pid) }, 10), 'supervised worker stopped');

my $other = fork;
if ($other == 0) {
    open STDOUT, '>>', "$srv->{dir}/log/other.log";
    open STDERR, '>&', \*STDOUT;
    exec $worker, '-c', "$srv->{dir}/nginx.conf", '-n', 'other';
    exit 127;
}

$total = r('GET', 'mx:test:sum');
for my $i (1 .. 20) {
    add(n => $i, sleep_ms => 100);
    $total += $i;
}

ok(wait_for(sub { done_count() >= 203 }, 10), 'the other consumer is working');
kill 'KILL', $other;
waitpid($other, 0);
my $left = 221 - done_count();
cmp_ok($left, '>', 0, "it died with $left entries not done");

$srv->unhold('stream_worker');
ok(wait_for(sub { done_count() == 221 }, 30), 'the supervised worker claimed and finished them');
is(r('GET', 'mx:test:sum'), $total, 'each applied once');
ok(wait_for(sub { pending() == 0 }, 5), 'nothing left pending');

# --- SIGTERM finishes the entry in hand ------------------------------------------

ok(wait_for(sub { $srv->pid_of('stream_worker') }, 5), 'worker running');
$pid = $srv->pid_of('stream_worker');
add(n => 5, sleep_ms => 1500);
ok(wait_for(sub { pending() == 1 }, 5), 'an entry in hand');
$srv->hold('stream_worker');
kill 'TERM', $pid;
ok(wait_for(sub { !Test::Matrix::Server::alive($pid) }, 10), 'the worker exits on SIGTERM');
is(done_count(), 222, 'after finishing the entry in hand');
is(pending(), 0, 'and acknowledging it');
$srv->unhold('stream_worker');

# --- pipelined commands: checked before the batch is acknowledged ------------

ok(wait_for(sub { $srv->pid_of('stream_worker') }, 5), 'worker running again');
my $sum0 = r('GET', 'mx:test:sum');
my ($added, $failing) = (0, undef);
for my $i (1 .. 20) {
    my $id = r('XADD', 'mx:test:in', '*', n => $i, ($i == 10 ? (pipefail => 1) : (pipe => 1)));
    $failing = $id if $i == 10;
    $added += $i;
}
ok(wait_for(sub { done_count() == 242 }, 20), 'twenty pipelined entries done');
is(r('GET', 'mx:test:sum'), $sum0 + $added, 'each applied once, the batch that failed included');
cmp_ok(r('GET', 'mx:test:failed') // 0, '>=', 1, 'the failed hook heard the failure');
is(r('GET', "mx:test:once:$failing"), 2, 'the failing command ran again');
ok(wait_for(sub { pending() == 0 }, 5), 'nothing left pending');

# --- the real daemons dead-letter what they cannot handle yet ------------------

my $id = r('XADD', 'mx:input:0', '*', kind => 'no.such.kind', x => 1);
ok(wait_for(sub { grep { my %f = @{ $_->[1] }; ($f{entry} // '') eq $id }
                  @{ r('XRANGE', 'mx:dead', '-', '+') } }, 10),
   'the roomserver dead-letters an entry of an unknown kind');
my ($d) = grep { my %f = @{ $_->[1] }; ($f{entry} // '') eq $id } @{ r('XRANGE', 'mx:dead', '-', '+') };
%dead = @{ $d->[1] };
is($dead{group}, 'roomserver', 'from the roomserver group');
like($dead{reason}, qr/no handler for entries of kind "no\.such\.kind"/, 'saying why');

$srv->stop;
my @reports = $srv->sanitizer_reports;
is(scalar @reports, 0, 'no sanitizer report in any daemon log') or diag join "\n", @reports;

done_testing();

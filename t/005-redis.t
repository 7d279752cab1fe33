# Redis inside nginx: while Redis is down or hung, requests that need it get
# a JSON 503 within the timeout, never a hang; when it is back they succeed
# again without restarting nginx.  Both connections of every worker come
# back.  A function library of another version is never used silently.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Time::HiRes qw(time sleep);

$Test::Matrix::ServerOptions{redis_timeout} = '1s';

my $srv = server();
my $c = client(token => $srv->make_token(user_id => '@alice:localhost'),
               timeout => 8);

sub whoami { my ($s, $j) = $c->get('/_matrix/client/v3/account/whoami'); ($s, $j) }

sub subscribers {
    my $ch = $srv->redis_cmd('PUBSUB', 'CHANNELS', 'mx:w:*');
    return ref $ch eq 'ARRAY' ? scalar @$ch : 0;
}

my ($status, $json) = whoami();
is($status, 200, 'whoami works with Redis up');
ok(wait_for(sub { subscribers() == 2 }, 5), 'each of the 2 workers has its subscriber connection');

# --- Redis stopped ---------------------------------------------------------

my $redis_pid = $srv->pid_of('redis');
$srv->hold('redis');
kill 'TERM', $redis_pid;
ok(wait_for(sub { !Test::Matrix::Server::alive($redis_pid) }, 10), 'redis stopped');

for my $i (1 .. 4) {
    my $t0 = time;
    ($status, $json) = whoami();
    is($status, 503, "request $i while Redis is down: 503");
    is($json->{errcode}, 'M_UNKNOWN', "request $i: a Matrix error");
    like($json->{error}, qr/store is unavailable/, "request $i: says why");
}

my ($s2, $j2, $res) = $c->get('/_matrix/client/v3/account/whoami');
is($res->{headers}{'retry-after'}, '1', '503 carries Retry-After');

# endpoints that need no Redis keep working
($status) = $c->get('/_matrix/client/versions');
is($status, 200, 'versions needs no Redis');

$srv->unhold('redis');
ok(wait_for(sub { (whoami())[0] == 200 }, 15), 'whoami works again once Redis is back, nginx not restarted');
ok(wait_for(sub { subscribers() == 2 }, 10), 'the subscriber connections came back');
isnt($srv->pid_of('redis'), $redis_pid, 'it is a new Redis process');

# --- Redis hung (SIGSTOP): the socket stays open, nothing answers ------------

$redis_pid = $srv->pid_of('redis');
kill 'STOP', $redis_pid;

my $t0 = time;
($status, $json) = whoami();
my $took = time - $t0;
is($status, 503, 'a hung Redis: 503');
like($json->{error}, qr/did not answer in time|unavailable/, 'says the store did not answer');
cmp_ok($took, '<', 5, 'answered within the timeout, not left hanging');

($status) = whoami();
is($status, 503, 'later requests are refused at once while it is hung');

kill 'CONT', $redis_pid;
ok(wait_for(sub { (whoami())[0] == 200 }, 15), 'whoami works again once Redis answers');

# --- a function library of another version --------------------------------

my $fake = <<'LUA';
#!lua name=matrix
redis.register_function('mx_version', function() return 'old-version' end)
LUA
my $r = $srv->redis_cmd('FUNCTION', 'LOAD', 'REPLACE', $fake);
is($r, 'matrix', 'replaced the library with an old one');

ok(wait_for(sub {
    my ($s, $j) = whoami();
    $s == 503 && ($j->{error} // '') =~ /function library is version old-version/;
}, 10), 'the module notices and refuses to use it, saying why');

my $out = qx{$Test::Matrix::Server::Build/bin/matrixctl functions -c $srv->{dir}/nginx.conf 2>&1};
is($?, 0, 'matrixctl functions loads the right library') or diag $out;

ok(wait_for(sub { (whoami())[0] == 200 }, 10), 'and requests succeed again');

# --- no library at all ----------------------------------------------------

$srv->redis_cmd('FUNCTION', 'DELETE', 'matrix');
($status, $json) = whoami();
is($status, 503, 'a missing library: 503, not 500');
ok(wait_for(sub {
    my ($s, $j) = whoami();
    $s == 503 && ($j->{error} // '') =~ /is not loaded/;
}, 10), 'and the error says the library is not loaded');

qx{$Test::Matrix::Server::Build/bin/matrixctl functions -c $srv->{dir}/nginx.conf 2>&1};
ok(wait_for(sub { (whoami())[0] == 200 }, 10), 'loading it again brings the service back');

my $log = Test::Matrix::Server::slurp($srv->log_path('nginx'));
unlike($log, qr/\[(alert|emerg)\]|signal \d+ \(SIG(SEGV|ABRT)/, 'no crash or alert in the nginx log');

done_testing();

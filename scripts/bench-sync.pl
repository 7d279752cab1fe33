#!/usr/bin/perl
# bench-sync.pl BASE_URL REDIS_SOCKET: the /sync figures of make bench.
#
#   fan-out   N users (default 1,000) in one room, each with a /sync parked;
#             one message; the time from its send until each has its
#             answer: p50, p99, max
#   initial   a user in 100 rooms of 100 messages each: an initial /sync,
#             the best and the median of 5
#   parked    BENCH_PARKED (10,000) /sync requests parked at once: the
#             memory of nginx (RSS of its workers) and Redis (used_memory)
#             per parked request; needs BENCH_DATA (the server's data
#             folder, for nginx's pid)
#
# BENCH_SYNC names the parts to run (default "fanout initial parked").
#
# Users get tokens straight in Redis, as the HTTP bench does; everything
# else goes through the API.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";

use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time sleep);

use Test::Matrix::Bench;
use Test::Matrix::Redis;

my ($base, $sock) = @ARGV;
my ($host, $port) = $base =~ m{^http://([^:/]+):(\d+)} or die "usage: $0 BASE_URL REDIS_SOCKET\n";
my $N = $ENV{BENCH_FANOUT} // 1000;
my $api = '/_matrix/client/v3';
my $json = JSON::PP->new->canonical;
my %part = map { $_ => 1 } split ' ', $ENV{BENCH_SYNC} // 'fanout initial parked';
my $http = Test::Matrix::Bench::http();

my $redis = Test::Matrix::Redis->new(path => $sock);
sub token { Test::Matrix::Bench::token(sub { $redis->command(@_) }, $_[0]) }

sub call {
    my ($method, $path, $token, $body) = @_;
    my $res = $http->request($method, "$base$path", {
        headers => { Authorization => "Bearer $token", 'Content-Type' => 'application/json' },
        defined $body ? (content => $json->encode($body)) : () });
    die "$method $path: $res->{status} $res->{content}\n" unless $res->{status} == 200;
    return $json->decode($res->{content});
}

sub pct {
    my ($p, @v) = @_;
    @v = sort { $a <=> $b } @v;
    return $v[ int(($#v) * $p) ];
}

# --- fan-out ------------------------------------------------------------------

if ($part{fanout}) {

    my $owner = token('@owner:localhost');
    my $room = call('POST', "$api/createRoom", $owner, { preset => 'public_chat' })->{room_id};
    (my $room_path = $room) =~ s/!/%21/;

    my @tokens;
    for my $i (1 .. $N) {
        my $t = token("\@fan$i:localhost");
        call('POST', "$api/rooms/$room_path/join", $t, {});
        push @tokens, $t;
    }
    # a first sync each: it marks the user online, which is news to the room;
    # after it, nothing but the message will wake anybody
    my $since;
    $since = call('GET', "$api/sync", $_)->{next_batch} for @tokens;

    my (%conn, @socks);
    my $sel = IO::Select->new;
    for my $t (@tokens) {
        my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port) or die "connect: $!\n";
        print {$s} "GET $api/sync?since=$since&timeout=60000 HTTP/1.1\r\nHost: $host\r\n"
                 . "Authorization: Bearer $t\r\nConnection: close\r\n\r\n";
        $sel->add($s);
        $conn{$s} = '';
    }
    sleep 2;        # every request parked

    my $t0 = time;
    call('PUT', "$api/rooms/$room_path/send/m.room.message/fanout", $owner, { body => 'to all' });
    my @lat;
    my $deadline = time + 30;
    while ($sel->count && time < $deadline) {
        for my $s ($sel->can_read(1)) {
            my $n = sysread($s, my $buf, 65536);
            if ($n) { $conn{$s} .= $buf; next }
            push @lat, (time - $t0) * 1000 if $conn{$s} =~ /"to all"/;
            $sel->remove($s);
            close $s;
        }
    }

    printf "== sync fan-out: %d users in one room, each /sync parked; one message\n", $N;
    printf "  answered with the message: %d of %d\n", scalar @lat, $N;
    printf "  time to answer: p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 under 100 ms)\n",
           pct(0.5, @lat), pct(0.99, @lat), pct(1, @lat) if @lat;
}

# --- initial sync of a user in 100 rooms of 100 messages -----------------------

if ($part{initial}) {

    my $heavy = token('@heavy:localhost');
    for my $i (1 .. 100) {
        my $r = call('POST', "$api/createRoom", $heavy, { name => "room $i" })->{room_id};
        (my $rp = $r) =~ s/!/%21/;
        for my $j (1 .. 100) {
            call('PUT', "$api/rooms/$rp/send/m.room.message/m$i-$j", $heavy,
                 { msgtype => 'm.text', body => "message $j of room $i" });
        }
    }

    # the time until the whole response is in: the client's JSON decoding
    # (JSON::PP takes longer than the server) is not the server's
    my @t;
    my $bytes = 0;
    for (1 .. 5) {
        my $s = time;
        my $raw = $http->request('GET', "$base$api/sync", { headers => { Authorization => "Bearer $heavy" } });
        push @t, (time - $s) * 1000;
        die "initial sync: $raw->{status}\n" unless $raw->{status} == 200;
        $bytes = length $raw->{content};
        my $res = $json->decode($raw->{content});
        die "initial sync: not 100 rooms\n" unless keys %{ $res->{rooms}{join} } >= 100;
    }
    printf "== initial sync of a user in 100 rooms of 100 messages\n";
    printf "  best %.0f ms, median %.0f ms, %d KiB (target under 200 ms)\n", pct(0, @t), pct(0.5, @t), $bytes / 1024;
}

# --- memory of parked /sync requests --------------------------------------------

my $P = $ENV{BENCH_PARKED} // 10000;
my $data = $ENV{BENCH_DATA};
if ($part{parked} && $P > 0 && $data && -r "$data/run/nginx.pid") {
    open my $pf, '<', "$data/run/nginx.pid" or die;
    chomp(my $master = <$pf>);

    my $rss = sub {
        my $kib = 0;
        for my $pid (split ' ', `pgrep -P $master`) {
            open my $st, '<', "/proc/$pid/status" or next;
            while (<$st>) { $kib += $1 if /^VmRSS:\s+(\d+)/ }
        }
        return $kib;
    };
    my $redis_mem = sub {
        my ($m) = `redis-cli -s $sock INFO memory` =~ /^used_memory:(\d+)/m;
        return $m / 1024;
    };

    # 100 users, each parked 1/100th of the requests
    my @parkers = map { token("\@parked$_:localhost") } 1 .. 100;
    my %since = map { $_ => call('GET', "$api/sync", $_)->{next_batch} } @parkers;
    sleep 1;

    my ($n0, $r0) = ($rss->(), $redis_mem->());
    my @open;
    for my $i (0 .. $P - 1) {
        my $t = $parkers[$i % @parkers];
        my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port) or last;
        print {$s} "GET $api/sync?since=$since{$t}&timeout=120000 HTTP/1.1\r\nHost: $host\r\n"
                 . "Authorization: Bearer $t\r\nConnection: close\r\n\r\n";
        push @open, $s;
    }
    sleep 3;        # every request parked
    my $sel = IO::Select->new(@open);
    my $answered = () = $sel->can_read(0);
    my ($n1, $r1) = ($rss->(), $redis_mem->());
    my $n = scalar @open;
    printf "== %d /sync requests parked at once (%d answered early)\n", $n, $answered;
    printf "  nginx workers RSS %+.1f MiB: %.2f KiB per parked request; Redis used_memory %+.1f MiB: %.2f KiB each"
           . " (target under 16 KiB each)\n",
           ($n1 - $n0) / 1024, $n ? ($n1 - $n0) / $n : 0, ($r1 - $r0) / 1024, $n ? ($r1 - $r0) / $n : 0;
    close $_ for @open;
}

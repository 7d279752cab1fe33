#!/usr/bin/perl
# bench-sync.pl BASE_URL REDIS_SOCKET: the /sync figures of make bench.
#
#   fan-out   N users (default 1,000) in one room, each with a /sync parked;
#             one message; the time from its send until each has its
#             answer: p50, p99, max
#   initial   a user in 100 rooms of 100 messages each: an initial /sync,
#             the best and the median of 5
#
# Users get tokens straight in Redis, as the HTTP bench does; everything
# else goes through the API.

use strict;
use warnings;

use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64;
use Digest::SHA qw(sha256);
use Time::HiRes qw(time sleep);
use HTTP::Tiny;

my ($base, $sock) = @ARGV;
my ($host, $port) = $base =~ m{^http://([^:/]+):(\d+)} or die "usage: $0 BASE_URL REDIS_SOCKET\n";
my $N = $ENV{BENCH_FANOUT} // 1000;
my $api = '/_matrix/client/v3';
my $json = JSON::PP->new->canonical;
my $http = HTTP::Tiny->new(keep_alive => 1, timeout => 60);

sub b64url { my $s = encode_base64(shift, ''); $s =~ tr{+/}{-_}; $s =~ s/=+$//; $s }

sub token {
    my ($user) = @_;
    my $t = 'mxa_' . b64url($user) . '_' . b64url(join '', map { chr int rand 256 } 1 .. 32);
    (my $h = encode_base64(sha256($t), '')) =~ s/=+$//;
    system("redis-cli -s $sock HSET 'mx:{$user}:token:$h' user_id '$user'"
           . " device_id BENCH guest 0 > /dev/null") == 0 or die "redis-cli failed\n";
    return $t;
}

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

# --- initial sync of a user in 100 rooms of 100 messages -----------------------

my $heavy = token('@heavy:localhost');
for my $i (1 .. 100) {
    my $r = call('POST', "$api/createRoom", $heavy, { name => "room $i" })->{room_id};
    (my $rp = $r) =~ s/!/%21/;
    for my $j (1 .. 100) {
        call('PUT', "$api/rooms/$rp/send/m.room.message/m$i-$j", $heavy,
             { msgtype => 'm.text', body => "message $j of room $i" });
    }
}

my @t;
for (1 .. 5) {
    my $s = time;
    my $res = call('GET', "$api/sync", $heavy);
    push @t, (time - $s) * 1000;
    die "initial sync: not 100 rooms\n" unless keys %{ $res->{rooms}{join} } >= 100;
}
printf "== initial sync of a user in 100 rooms of 100 messages\n";
printf "  best %.0f ms, median %.0f ms (target under 200 ms)\n", pct(0, @t), pct(0.5, @t);

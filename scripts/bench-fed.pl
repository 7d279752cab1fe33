#!/usr/bin/perl
# bench-fed.pl FED_URL REDIS_SOCKET SERVER_NAME: inbound federation for
# make bench.
#
#   A simulated remote server (remote.example, its key in the cache) has a
#   user join a public room here, then sends BENCH_FED_PDUS (1,000) signed
#   messages, chained one after the other, in transactions of 50, one
#   transaction in flight at a time as a real server sends them; the time
#   from the first PUT /send until the last is answered (each answer comes
#   once the roomserver has accepted every PDU of it): PDUs per second.
#
# The events and the requests' signatures are made before the clock
# starts (matrixctl, one process each).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";

use JSON::PP;
use Time::HiRes qw(time);

use Test::Matrix::Bench;
use Test::Matrix::Fed;

my ($fed_url, $sock, $name) = @ARGV;
die "usage: $0 FED_URL REDIS_SOCKET SERVER_NAME\n" unless $name;
my $N = $ENV{BENCH_FED_PDUS} // 1000;
my $per = $ENV{BENCH_FED_PER} // 50;
my $json = JSON::PP->new->canonical;
my $http = Test::Matrix::Bench::http(verify_SSL => 0);

my $srv = Test::Matrix::Bench::server($sock, $name);
my $fed = Test::Matrix::Fed->new(server => $srv);

# a local user and a public room
my $user = '@fedowner:' . $name;
my $token = Test::Matrix::Bench::token(sub { $srv->redis_cmd(@_) }, $user);
(my $client_url = $ENV{BENCH_CLIENT_URL} // '') or die "BENCH_CLIENT_URL is needed\n";
my $res = $http->post("$client_url/_matrix/client/v3/createRoom", {
    headers => { Authorization => "Bearer $token", 'Content-Type' => 'application/json' },
    content => $json->encode({ preset => 'public_chat', room_version => '10' }) });
die "createRoom: $res->{status} $res->{content}\n" unless $res->{status} == 200;
my $room = $json->decode($res->{content})->{room_id};

my $remote = $fed->key('remote.example');
$fed->store($remote);
my $bob = '@bob:remote.example';

my $state = { @{ $srv->redis_cmd('HGETALL', "mx:{$room}:state") } };
sub sid { $state->{"$_[0]\x1f" . ($_[1] // '')} }
my @prev = @{ $srv->redis_cmd('SMEMBERS', "mx:{$room}:extrem") };
my $depth = 0 + ($srv->redis_cmd("HGET", "mx:{$room}:room", "depth") // 0);
my $ts = int(time * 1000);

sub event {
    my (%o) = @_;
    my $ev = { room_id => $room, sender => $bob, origin_server_ts => $ts++, depth => ++$depth,
               prev_events => [@prev], %o };
    my $signed = $fed->sign_event($remote, $ev, '10');
    my $id = $fed->event_id($signed, '10');
    @prev = ($id);
    return $signed;
}

my $txn = 0;
sub put_txn {
    my ($content, $auth, $uri) = @_;
    my $r = $http->request('PUT', "$fed_url$uri", {
        headers => { Authorization => $auth, 'Content-Type' => 'application/json' },
        content => $json->encode($content) });
    die "send: $r->{status} $r->{content}\n" unless $r->{status} == 200;
    my $body = $json->decode($r->{content});
    my @errors = grep { exists $body->{pdus}{$_}{error} } keys %{ $body->{pdus} };
    warn "send: $_: $body->{pdus}{$_}{error}\n" for @errors[0 .. ($#errors < 2 ? $#errors : 2)];
    return scalar @errors;
}

sub txn_for {
    my ($pdus) = @_;
    my $uri = '/_matrix/federation/v1/send/bench' . $$ . '-' . ++$txn;
    my $content = { origin => 'remote.example', origin_server_ts => $ts, pdus => $pdus };
    return ($content, $fed->xmatrix($remote, PUT => $uri, $content), $uri);
}

# bob joins
my $join = event(type => 'm.room.member', state_key => $bob, content => { membership => 'join' },
                 auth_events => [ grep { defined } sid('m.room.create'), sid('m.room.power_levels'),
                                  sid('m.room.join_rules') ]);
{ my $e = put_txn(txn_for([$join])); die "the join was refused\n" if $e; }
my $member = $prev[0];

# the messages and their transactions, made beforehand
my @txns;
my @batch;
for my $i (1 .. $N) {
    push @batch, event(type => 'm.room.message',
                       content => { msgtype => 'm.text', body => "message $i from afar" },
                       auth_events => [ grep { defined } sid('m.room.create'), sid('m.room.power_levels'),
                                        $member ]);
    if (@batch == $per || $i == $N) {
        push @txns, [ txn_for([@batch]) ];
        @batch = ();
    }
}

$srv->redis_cmd('CONFIG', 'RESETSTAT') if $ENV{BENCH_DEBUG};
print STDERR "fedbench-start\n" if $ENV{BENCH_DEBUG};
my $t0 = time;
my $errors = 0;
$errors += put_txn(@$_) for @txns;
my $dt = time - $t0;

printf "== inbound federation: %d signed PDUs from one server, transactions of %d, one in flight\n", $N, $per;
printf "  %.0f PDUs/s accepted (%.2f s, %d per-PDU errors)\n", $N / $dt, $dt, $errors;
# BENCH_DEBUG=1: where Redis spent its time
if ($ENV{BENCH_DEBUG}) {
    my @s = sort { $b->[1] <=> $a->[1] } map { /^cmdstat_(\S+?):calls=(\d+),usec=(\d+)/ ? [$1, $3, $2] : () }
            split /\r?\n/, $srv->redis_cmd('INFO', 'commandstats');
    printf "  redis %-24s %8d usec %6d calls\n", @$_ for @s[0 .. ($#s < 9 ? $#s : 9)];
}

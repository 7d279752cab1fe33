#!/usr/bin/perl
# bench-fedjoin.pl CLIENT_URL REDIS_SOCKET CA_DIR: a local user joins a
# remote room whose state holds BENCH_JOIN_MEMBERS (1,000) members, for
# make bench.
#
#   The remote server is played here: an HTTPS server of the CA in CA_DIR
#   (ca.crt, ca.key; the server under test trusts it and may connect to
#   loopback), named localhost:<port>, with its own ed25519 key.  It
#   serves its key (/_matrix/key/v2/server), make_join, v2/send_join and
#   /send, and holds BENCH_JOIN_RUNS (5) rooms of version 10, each made
#   before the clock starts: create, the creator's join, power levels,
#   public join rules, history visibility, then the other members' joins,
#   each signed and hashed, on the create, power levels and join rules,
#   each after the one before it.
#
#   Each run a new local user joins one of the rooms (POST
#   /join/{roomId}?server_name=<the remote>) while a /sync of theirs is
#   parked: the time until the join's 200, and until that /sync answers
#   with the room.  The first run also fetches the remote's key.
#
#   BENCH_JOIN_SERVERS (1): the members' joins spread over that many
#   servers, the remote and others played here too (each a port of its
#   own and its own key, serving only its key): the first run fetches
#   every one's key (the keys_many job), the others find them cached.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/../t/lib";

use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use IO::Socket::SSL;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);

use Test::Matrix::Bench;
use Test::Matrix::Fed;

my ($client_url, $sock, $ca) = @ARGV;
die "usage: $0 CLIENT_URL REDIS_SOCKET CA_DIR\n" unless $ca && -r "$ca/ca.key";
my $M = $ENV{BENCH_JOIN_MEMBERS} // 1000;
my $RUNS = $ENV{BENCH_JOIN_RUNS} // 5;
my $S = $ENV{BENCH_JOIN_SERVERS} // 1;
my $V = '10';
my $api = '/_matrix/client/v3';
my $json = JSON::PP->new->canonical;
my $http = Test::Matrix::Bench::http();
my $dir = tempdir(CLEANUP => 1);

sub esc { my $s = shift; $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge; $s }
sub unesc { my $s = shift; $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge; $s }

sub openssl {
    my $out = qx{openssl @_ 2>&1};
    die "openssl @_: $out" if $?;
}

# --- the remote server's name, certificate and key ------------------------------

# the remote first, then the members' other servers
my @listen = map { IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 64,
                                         ReuseAddr => 1) or die "listen: $!" } 1 .. $S;
my $listen = $listen[0];
my $remote = 'localhost:' . $listen->sockport;

open my $ext, '>', "$dir/ext.cnf" or die;
print {$ext} "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
           . "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n";
close $ext;
openssl("req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
        "-subj /CN=localhost -keyout $dir/tls.key -out $dir/tls.csr");
openssl("x509 -req -in $dir/tls.csr -CA $ca/ca.crt -CAkey $ca/ca.key",
        "-set_serial " . (1000 + int rand 1_000_000_000), "-days 2 -extfile $dir/ext.cnf -out $dir/tls.crt");

my $srv = Test::Matrix::Bench::server($sock, 'localhost');
my $fed = Test::Matrix::Fed->new(server => $srv);
my @keys = map { $fed->key('localhost:' . $_->sockport) } @listen;
my $key = $keys[0];
my %key_json = map { ($_->{server} => $json->encode($fed->key_response($_, int(time * 1000) + 86400000))) }
               @keys;

# --- the rooms, made before the clock starts ------------------------------------

my @signers = map { $fed->signer($_, $V) } @keys;     # (its ID, its JSON text)
my $sign = $signers[0];

my $t_make = time;
my $ts = int(time * 1000) - 3600_000;
my @rooms;

for my $r (1 .. $RUNS) {
    my $room = "!joinbench$r-$$:$remote";
    my $creator = "\@creator:$remote";
    my (%id, @state, $last, $depth);

    my $ev = sub {
        my ($type, $sk, $sender, $content, @auth) = @_;
        my ($server) = $sender =~ /:(.*)/;
        my ($s) = grep { $keys[$_]{server} eq $server } 0 .. $#keys;
        my ($id, $text) = $signers[$s]->({ type => $type, state_key => $sk, sender => $sender,
                                           room_id => $room, content => $content,
                                           origin_server_ts => $ts++, depth => ++$depth,
                                           prev_events => [ $last // () ], auth_events => [@auth] });
        push @state, $text;
        $last = $id;
        return $id;
    };

    $depth = 0;
    $id{create} = $ev->('m.room.create', '', $creator, { creator => $creator, room_version => $V });
    $id{creator} = $ev->('m.room.member', $creator, $creator, { membership => 'join' }, $id{create});
    $id{pl} = $ev->('m.room.power_levels', '', $creator,
                    { users => { $creator => 100 }, users_default => 0, events_default => 0,
                      state_default => 50, ban => 50, kick => 50, redact => 50, invite => 0,
                      events => {} },
                    @id{qw(create creator)});
    $id{jr} = $ev->('m.room.join_rules', '', $creator, { join_rule => 'public' },
                    @id{qw(create creator pl)});
    $ev->('m.room.history_visibility', '', $creator, { history_visibility => 'shared' },
          @id{qw(create creator pl)});
    for my $i (1 .. $M - 1) {
        my $user = "\@member$i:$keys[$i % $S]{server}";
        $ev->('m.room.member', $user, $user, { membership => 'join', displayname => "Member $i" },
              @id{qw(create pl jr)});
    }

    # send_join's answer: the state and its auth chain (the create, the
    # creator's join, the power levels and the join rules)
    my $answer = '{"auth_chain":[' . join(',', @state[0 .. 3]) . '],"members_omitted":false,'
               . '"origin":' . $json->encode($remote) . ',"servers_in_room":[' . $json->encode($remote)
               . '],"state":[' . join(',', @state) . ']}';
    push @rooms, { id => $room, last => $last, depth => $depth, auth => [ @id{qw(create pl jr)} ],
                   answer => $answer };
}
undef $sign;
@signers = ();
$t_make = time - $t_make;

# --- the remote server ----------------------------------------------------------
# a process of its own, a child for each connection (the fedsender keeps
# several open); its process group is ended at the end

my %room = map { ($_->{id} => $_) } @rooms;

sub respond {
    my ($c, $status, $body, $close) = @_;
    print {$c} "HTTP/1.1 $status X\r\nContent-Type: application/json\r\nContent-Length: "
             . length($body) . ($close ? "\r\nConnection: close" : '') . "\r\n\r\n$body";
}

sub serve {
    my ($c, $name) = @_;
    while (1) {
        my $head = '';
        while (defined(my $l = <$c>)) { $head .= $l; last if $l eq "\r\n" }
        return if $head !~ /\r\n\r\n\z/;
        my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
        my ($body, $got) = ('', 0);
        while ($len && $got < $len) {
            my $n = read($c, $body, $len - $got, $got) or return;
            $got += $n;
        }
        my ($method, $path) = $head =~ /^(\S+) (\S+)/;
        my $query = $path =~ s/\?(.*)// ? $1 : '';
        my $t_in = time;

        if ($name ne $remote) {
            # the other servers: their keys, one request a connection
            respond($c, $path =~ m{^/_matrix/key/v2/server} ? (200, $key_json{$name})
                        : (404, '{"errcode":"M_UNRECOGNIZED","error":"not here"}'), 1);
        } elsif ($path =~ m{^/_matrix/key/v2/server}) {
            respond($c, 200, $key_json{$name});
        } elsif ($method eq 'GET' && $path =~ m{^/_matrix/federation/v1/make_join/([^/]+)/([^/]+)$}
                 && (my $r = $room{ unesc($1) })) {
            my $user = unesc($2);
            respond($c, 200, $json->encode({ room_version => $V, event => {
                type => 'm.room.member', room_id => $r->{id}, sender => $user, state_key => $user,
                content => { membership => 'join' }, origin => $remote,
                origin_server_ts => int(time * 1000), depth => $r->{depth} + 1,
                prev_events => [ $r->{last} ], auth_events => $r->{auth} } }));
        } elsif ($method eq 'PUT' && $path =~ m{^/_matrix/federation/v2/send_join/([^/]+)/}
                 && (my $s = $room{ unesc($1) })) {
            respond($c, 200, $s->{answer});
        } elsif ($method eq 'PUT' && $path =~ m{^/_matrix/federation/v1/send/}) {
            respond($c, 200, '{"pdus":{}}');
        } else {
            respond($c, 404, '{"errcode":"M_UNRECOGNIZED","error":"not here"}');
        }
        if ($ENV{BENCH_DEBUG} && open my $log, '>>', "$dir/requests") {
            printf {$log} "%.4f %.4f %s %s\n", $t_in, time, $method, $path;
        }
        return if $head =~ /^connection:\s*close/mi || $name ne $remote;
    }
}

my $fake = fork // die "fork: $!";
if ($fake == 0) {
    setpgrp(0, 0);
    $SIG{CHLD} = 'IGNORE';
    # one TLS context for every connection: made per connection, each
    # child would read the system's CAs again (tens of ms each, a second
    # for a hundred servers' key fetches coming together)
    my $ctx = IO::Socket::SSL::SSL_Context->new(SSL_server => 1, SSL_cert_file => "$dir/tls.crt",
                                                SSL_key_file => "$dir/tls.key", SSL_verify_mode => 0,
                                                SSL_ca_file => undef, SSL_ca_path => undef)
        or die "TLS context: $IO::Socket::SSL::SSL_ERROR";

    # the other servers: a few workers taking their connections in turn
    # (a process forked per connection, of this size, serves some 15 a
    # second: the fetches of a hundred servers at once would time out)
    my @others = @listen[1 .. $#listen];
    $_->blocking(0) for @others;
    for (1 .. (@others ? 6 : 0)) {
        my $pid = fork // die "fork: $!";
        next if $pid;
        my $sel = IO::Select->new(@others);
        while (1) {
            for my $l ($sel->can_read) {
                my $c = $l->accept or next;         # another worker took it
                $c->blocking(1);
                IO::Socket::SSL->start_SSL($c, SSL_server => 1, SSL_reuse_ctx => $ctx)
                    and serve($c, 'localhost:' . $l->sockport);
                close $c;
            }
        }
    }

    # the remote: a child per connection (the fedsender keeps them open)
    while (1) {
        my $c = $listen->accept or next;
        my $pid = fork;
        if (defined $pid && $pid == 0) {
            IO::Socket::SSL->start_SSL($c, SSL_server => 1, SSL_reuse_ctx => $ctx)
                and serve($c, $remote);
            POSIX::_exit(0);
        }
        close $c;
    }
}
close $_ for @listen;
END { if ($fake) { local $?; kill 'TERM', -$fake; kill 'TERM', $fake; waitpid $fake, 0 } }

# --- the joins --------------------------------------------------------------------

sub call {
    my ($method, $path, $token, $body) = @_;
    my $res = $http->request($method, "$client_url$path", {
        headers => { Authorization => "Bearer $token", 'Content-Type' => 'application/json' },
        defined $body ? (content => $json->encode($body)) : () });
    return ($res->{status}, $res->{content});
}

my (@join, @sync);
if ($ENV{BENCH_DEBUG}) {
    $srv->redis_cmd('CONFIG', 'SET', 'slowlog-log-slower-than', 1000);
    $srv->redis_cmd('CONFIG', 'SET', 'slowlog-max-len', 1000);
    $srv->redis_cmd('SLOWLOG', 'RESET');
}
my $redis_cmd = sub { $srv->redis_cmd(@_) };

for my $r (0 .. $#rooms) {
    my $room = $rooms[$r]{id};
    my $user = "\@joiner$r-$$:localhost";
    my $token = Test::Matrix::Bench::token($redis_cmd, $user);
    my ($status, $body) = call(GET => "$api/sync?timeout=0", $token);
    die "sync: $status $body\n" unless $status == 200;
    my $since = $json->decode($body)->{next_batch};

    # the parked /sync, in a child: the time its answer with the room came
    my $watcher = open(my $seen, '-|') // die "fork: $!";
    if ($watcher == 0) {
        $| = 1;
        my $h = Test::Matrix::Bench::http();
        my $until = time + 60;
        while (time < $until) {
            my $res = $h->get("$client_url$api/sync?since=$since&timeout=30000",
                              { headers => { Authorization => "Bearer $token" } });
            my $t = time;
            next unless $res->{status} == 200;
            my $b = $json->decode($res->{content});
            if ($b->{rooms}{join}{$room}) {
                print "$t\n";
                POSIX::_exit(0);
            }
            $since = $b->{next_batch};
        }
        print "none\n";
        POSIX::_exit(0);
    }
    sleep 0.3;                          # parked by now

    my $t0 = time;
    ($status, $body) = call(POST => "$api/join/" . esc($room) . '?server_name=' . esc($remote), $token, {});
    my $t1 = time;
    die "join: $status $body\n" unless $status == 200;
    chomp(my $t2 = <$seen> // 'none');
    close $seen;
    die "the room never came in /sync\n" if $t2 eq 'none';
    push @join, $t1 - $t0;
    printf "    t0 %s.%03d\n", POSIX::strftime("%H:%M:%S", gmtime $t0), ($t0 - int $t0) * 1000 if $ENV{BENCH_DEBUG};
    # BENCH_DEBUG=1: when the remote had each request, from the POST
    if ($ENV{BENCH_DEBUG} && open my $log, '<', "$dir/requests") {
        while (<$log>) {
            my ($in, $out, $m, $p) = split ' ';
            printf "    %6.0f-%6.0f ms %s %s\n", ($in - $t0) * 1000, ($out - $t0) * 1000, $m,
                substr($p, 0, 60) if $in >= $t0;
        }
        unlink "$dir/requests";
    }
    push @sync, $t2 - $t0;

    # what the join made: every member here
    ($status, $body) = call(GET => "$api/rooms/" . esc($room) . '/joined_members', $token);
    my $n = $status == 200 ? keys %{ $json->decode($body)->{joined} } : 0;
    die "joined_members: $status, $n members (want " . ($M + 1) . ")\n" unless $n == $M + 1;
}

printf "== joining a remote room: %d members in its state (%d events, %.0f KiB from send_join)," .
       " room version %s, %d runs%s\n", $M, $M + 4, length($rooms[0]{answer}) / 1024, $V, $RUNS,
       $S > 1 ? ", members of $S servers" : '';
printf "  (the rooms took %.1f s to make, before the clock)\n", $t_make;
printf "  run %d: join 200 after %6.0f ms, room in /sync after %6.0f ms%s\n",
       $_ + 1, $join[$_] * 1000, $sync[$_] * 1000,
       $_ ? '' : $S > 1 ? " (the keys of the $S servers fetched too)" : ' (the remote key fetched too)'
    for 0 .. $#join;
my ($jm, $jx) = Test::Matrix::Bench::median_max(@join);
my ($sm, $sx) = Test::Matrix::Bench::median_max(@sync);
printf "  POST /join until its 200:       median %6.0f ms, max %6.0f ms\n", $jm * 1000, $jx * 1000;
printf "  until the room is in /sync:     median %6.0f ms, max %6.0f ms\n", $sm * 1000, $sx * 1000;
printf "target: under 2 s (%s)\n", $sx < 2 ? 'met' : 'not met';
# BENCH_DEBUG=1: the Redis commands of 1 ms or more
if ($ENV{BENCH_DEBUG}) {
    my @slow = sort { $b->[2] <=> $a->[2] } @{ $srv->redis_cmd('SLOWLOG', 'GET', 1000) };
    printf "  redis %6.1f ms %s\n", $_->[2] / 1000, join(' ', map { substr($_, 0, 30) } @{ $_->[3] }[0 .. 3])
        for @slow[0 .. ($#slow < 14 ? $#slow : 14)];
}

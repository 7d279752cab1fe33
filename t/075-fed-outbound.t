# Outbound transactions: server A has a room where @bob of a fake remote
# server is joined.  The fake is a small HTTPS server of the test CA,
# named localhost:<port> so that A finds it with no look-up; it writes
# down every request and answers 200 {"pdus":{}}, or 500 when told to.
#
#   local messages arrive in transactions, in order, each exactly once,
#   signed by A (X-Matrix, checked with A's key), origin A; at most 50
#   PDUs a transaction; a 500 answer: the same transaction (its ID too)
#   again later, until it gets through; the fedsender stopped while
#   events happen, or while a transaction waits for its retry: nothing
#   lost, the same transaction resent; typing and to-device messages to
#   @bob go as EDUs; bob's own join, received from the fake, never goes
#   back to it.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use JSON::PP;
use File::Temp qw(tempdir);
use MIME::Base64 qw(decode_base64);
use Time::HiRes qw(time sleep);

%Test::Matrix::ServerOptions = (federation => 1);

my $A = server();
my $api = '/_matrix/client/v3';
my $json = JSON::PP->new->canonical;
my $dir = tempdir(CLEANUP => 1);

# --- the fake remote server ---------------------------------------------------

sub mode { Test::Matrix::Server::write_file("$dir/mode", shift) }
mode('200');

my $fed = Test::Matrix::Fed->new(server => $A);
my $fake = $fed->fake_remote(sub {
    my ($r) = @_;
    my $mode = Test::Matrix::Server::slurp("$dir/mode") // '200';
    my $status = $mode =~ /^(\d+)/ ? $1 : 200;
    open my $f, '>>', "$dir/log" or die;
    print {$f} $json->encode({ method => $r->{method}, path => $r->{path}, auth => $r->{auth},
                               body => $r->{body}, status => $status }), "\n";
    close $f;
    return ($status, $status == 200 ? '{"pdus":{}}' : '{"errcode":"M_UNKNOWN","error":"down"}');
});

# every request the fake had: {method, path, auth, body (decoded), status}
sub requests {
    my $text = Test::Matrix::Server::slurp("$dir/log") // '';
    my @r;
    for my $l (split /\n/, $text) {
        my $r = $json->decode($l);
        $r->{txn} = $r->{body} ? eval { $json->decode($r->{body}) } : undef;
        push @r, $r;
    }
    return @r;
}

# the requests after the first $n
sub since {
    my ($n) = @_;
    my @r = requests();
    return @r[$n .. $#r];
}

# the events the fake accepted (200), in the order they came: a message
# by its body, another event by its type and sender
sub accepted_ids {
    my @ids;
    for my $r (requests()) {
        next unless $r->{status} == 200 && $r->{txn};
        push @ids, map { $_->{type} eq 'm.room.message' ? $_->{content}{body}
                                                       : "$_->{type} $_->{sender}" }
                   @{ $r->{txn}{pdus} };
    }
    return @ids;
}

# --- a room on A with @bob of the fake joined ---------------------------------

my $fk = $fed->key($fake);
$fed->store($fk);

sub event_id {
    my ($ev) = @_;
    return scalar $fed->ctl($json->encode($ev), 'event-id', '--room-version', '10');
}

my $alice_id = '@alice:' . $A->server_name;
my $alice = client(token => $A->make_token(user_id => $alice_id, device_id => 'ADEV'));
my ($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', room_version => '10' });
is($status, 200, 'a room') or diag explain $body;
my $room = $body->{room_id};

my $bob = "\@bob:$fake";
my $extrem = $A->redis_cmd('SMEMBERS', "mx:{$room}:extrem");
my $state = { @{ $A->redis_cmd('HGETALL', "mx:{$room}:state") } };
my @auth = map { $state->{$_} } grep { /^m\.room\.(create|power_levels|join_rules)\x1f$/ } keys %$state;
my $join = { type => 'm.room.member', room_id => $room, sender => $bob, state_key => $bob,
             content => { membership => 'join' }, prev_events => $extrem,
             auth_events => \@auth, depth => 10, origin_server_ts => int(time * 1000) };
$join = $json->decode($fed->ctl($json->encode($join), 'sign', '-k', $fk->{file}, '-s', $fake,
                                '--room-version', '10'));
my $join_id = event_id($join);
my $shard = $fed->ctl('', 'shard', $room, 4);
$A->redis_cmd('XADD', "mx:input:$shard", '*', kind => 'event', room => $room,
              event_id => $join_id, event => $json->encode($join), origin => $fake);
ok(wait_for(sub { ($A->redis_cmd('HGET', "mx:{$room}:members", $bob) // '') eq 'join' }, 10),
   'bob of the fake is joined to the room');
is($A->redis_cmd('HGET', "mx:{$room}:servers", $fake), 1, 'the room has a member on the fake');
is($A->redis_cmd('HGET', "mx:{$room}:servers", $A->server_name), 1, '... and one here');

my $n = 0;
sub msg {
    my ($text) = @_;
    my ($s, $b) = $alice->put("$api/rooms/$room/send/m.room.message/t" . ++$n,
                              { msgtype => 'm.text', body => $text });
    die "send: $s" unless $s == 200;
    return $text;
}

# --- messages arrive --------------------------------------------------------------

my @sent = map { msg("hello $_") } 1 .. 3;
ok(wait_for(sub { my %a = map { $_ => 1 } accepted_ids(); !grep { !$a{$_} } @sent }, 15),
   'three messages reach the fake');
my @reqs = grep { $_->{txn} } requests();
my $t = $reqs[0];
is($t->{method}, 'PUT', 'a transaction is a PUT');
like($t->{path}, qr{^/_matrix/federation/v1/send/[^/]+$}, '... to /send/{txnId}');
is($t->{txn}{origin}, $A->server_name, '... origin A');
ok($t->{txn}{origin_server_ts} > (time - 60) * 1000, '... origin_server_ts now');
is(ref $t->{txn}{edus}, 'ARRAY', '... with edus');
my @got = accepted_ids();
is_deeply([ grep { my $i = $_; grep { $_ eq $i } @sent } @got ], \@sent, 'in order, each once');
ok(!grep({ $_ eq "m.room.member $bob" } @got), "bob's join, from the fake, is not sent back to it");

# X-Matrix: A's signature over the request, checked with A's key
my %x = ($t->{auth} // '') =~ /(\w+)="?([^",]*)"?/g;
is($x{origin}, $A->server_name, 'X-Matrix origin A');
is($x{destination}, $fake, 'X-Matrix destination: the fake');
my $http = HTTP::Tiny->new(timeout => 5);
my $akeys = $json->decode($http->get($A->url . '/_matrix/key/v2/server')->{content});
my $apk = decode_base64($akeys->{verify_keys}{$x{key} // ''}{key} // '');
my $signed = $json->encode({ method => 'PUT', uri => $t->{path}, origin => $A->server_name,
                             destination => $fake, content => $t->{txn} });
Test::Matrix::Server::write_file("$dir/msg", $signed);
Test::Matrix::Server::write_file("$dir/sig", decode_base64($x{sig} // ''));
Test::Matrix::Server::write_file("$dir/pk.der", pack('H*', '302a300506032b6570032100') . $apk);
my $v = qx{openssl pkeyutl -verify -pubin -keyform DER -inkey $dir/pk.der -rawin -in $dir/msg -sigfile $dir/sig 2>&1};
like($v, qr/Signature Verified Successfully/, "the transaction's signature verifies with A's key");

# --- batches: no transaction over 50 PDUs ------------------------------------------

push @sent, map { msg("burst $_") } 1 .. 120;
ok(wait_for(sub { scalar(accepted_ids()) >= @sent }, 60), '120 more messages arrive');
@got = accepted_ids();
is_deeply(\@got, \@sent, 'all of them, in order, each once');
my @big = grep { $_->{txn} && @{ $_->{txn}{pdus} } > 50 } requests();
is(scalar @big, 0, 'no transaction has more than 50 PDUs');
my %ids;
$ids{ $_->{path} }++ for grep { $_->{status} == 200 } requests();
ok(!grep({ $_ > 1 } values %ids), 'every transaction ID is new');

# --- the fake fails for a while -----------------------------------------------------

mode('500');
my $before = scalar(requests());
push @sent, map { msg("while down $_") } 1 .. 5;
ok(wait_for(sub { grep({ $_->{status} == 500 } since($before)) >= 2 }, 20),
   'a 500: the transaction is tried again');
my @failed = grep { $_->{status} == 500 } since($before);
is($failed[1]{path}, $failed[0]{path}, '... with the same txnId');
is($failed[1]{body}, $failed[0]{body}, '... and the same content');
my $list = $A->redis_cmd('FCALL', 'mx_fedq_list', 0);
my ($q) = grep { $_->[0] eq $fake } @$list;
ok($q && $q->[1] >= 5 && $q->[3] > 0, 'mx_fedq_list shows the queue and its backoff')
    or diag explain $list;
mode('200');
ok(wait_for(sub { scalar(accepted_ids()) >= @sent }, 30), 'back up: everything arrives');
is_deeply([ accepted_ids() ], \@sent, '... in order, no duplicates');
my ($ok) = grep { $_->{status} == 200 && $_->{path} eq $failed[0]{path} } requests();
ok($ok, '... the failed transaction went through under its ID');

# --- the fedsender restarts ----------------------------------------------------------

sub stop_fedsender {
    $A->hold('fedsender');
    my $p = $A->pid_of('fedsender');
    kill 'TERM', $p if $p;
    wait_for(sub { !Test::Matrix::Server::alive($p) }, 10);
}

stop_fedsender();
push @sent, map { msg("while stopped $_") } 1 .. 5;
sleep 0.5;
is(scalar(accepted_ids()), @sent - 5, 'the fedsender stopped: nothing goes');
$A->unhold('fedsender');
ok(wait_for(sub { scalar(accepted_ids()) >= @sent }, 20), 'started again: what happened meanwhile arrives');
is_deeply([ accepted_ids() ], \@sent, '... in order, no duplicates');

# a transaction waiting for its retry when the fedsender stops
mode('500');
$before = scalar(requests());
push @sent, msg('before the crash');
ok(wait_for(sub { grep({ $_->{status} == 500 } since($before)) }, 15),
   'a transaction fails');
my ($pending) = grep { $_->{status} == 500 } since($before);
stop_fedsender();
mode('200');
$A->unhold('fedsender');
ok(wait_for(sub { scalar(accepted_ids()) >= @sent }, 20), 'after the restart it gets through');
($ok) = grep { $_->{status} == 200 && $_->{path} eq $pending->{path} } requests();
ok($ok, '... under the same txnId');
is($ok && $ok->{body}, $pending->{body}, '... with the same content');
is_deeply([ accepted_ids() ], \@sent, 'everything once, in order');

# --- EDUs: typing, to-device -------------------------------------------------------

sub edus {
    my ($type) = @_;
    return map { grep { $_->{edu_type} eq $type } @{ $_->{txn}{edus} // [] } }
           grep { $_->{status} == 200 && $_->{txn} } requests();
}

($status) = $alice->put("$api/rooms/$room/typing/$alice_id", { typing => JSON::PP::true, timeout => 30000 });
is($status, 200, 'alice types');
ok(wait_for(sub { scalar edus('m.typing') }, 10), 'an m.typing EDU reaches the fake');
is_deeply((edus('m.typing'))[0]{content}, { room_id => $room, user_id => $alice_id, typing => JSON::PP::true },
          '... room, user, typing');

($status) = $alice->put("$api/sendToDevice/m.test/td1",
                        { messages => { $bob => { BDEV => { secret => 'x' } },
                                        $alice_id => { ADEV => { self => 1 } } } });
is($status, 200, 'a to-device message to bob');
ok(wait_for(sub { scalar edus('m.direct_to_device') }, 10), 'an m.direct_to_device EDU reaches the fake');
my $td = (edus('m.direct_to_device'))[0]{content};
is($td->{sender}, $alice_id, '... sender');
is($td->{type}, 'm.test', '... type');
ok(length($td->{message_id} // ''), '... a message_id');
is_deeply($td->{messages}, { $bob => { BDEV => { secret => 'x' } } }, '... only the remote messages');

($status) = $alice->put("$api/sendToDevice/m.test/td1",
                        { messages => { $bob => { BDEV => { secret => 'x' } } } });
sleep 1;
is(scalar(edus('m.direct_to_device')), 1, 'the same transaction again: not sent again');

# a receipt
my $last_id = $A->redis_cmd('ZRANGE', "mx:{$room}:timeline", -1, -1)->[0];
($status) = $alice->post("$api/rooms/$room/receipt/m.read/$last_id", {});
is($status, 200, 'alice reads');
ok(wait_for(sub { scalar edus('m.receipt') }, 10), 'an m.receipt EDU reaches the fake');
my $rc = (edus('m.receipt'))[0]{content};
is_deeply($rc->{$room}{'m.read'}{$alice_id}{event_ids}, [ $last_id ], '... the event read, by alice, in the room')
    or diag explain $rc;
ok($rc->{$room}{'m.read'}{$alice_id}{data}{ts}, '... with its ts');

# presence
($status) = $alice->put("$api/presence/$alice_id/status", { presence => 'unavailable', status_msg => 'away' });
is($status, 200, 'alice is away');
ok(wait_for(sub { grep { $_->{content}{push}[0]{presence} eq 'unavailable' } edus('m.presence') }, 10),
   'an m.presence EDU reaches the fake');
my ($pr) = grep { $_->{content}{push}[0]{presence} eq 'unavailable' } edus('m.presence');
is($pr->{content}{push}[0]{user_id}, $alice_id, '... for alice');
is($pr->{content}{push}[0]{status_msg}, 'away', '... with her message');

# a device list change: a device renamed
$A->redis_cmd('HSET', "mx:{$alice_id}:device:ADEV", created_ts => int(time * 1000));
$A->redis_cmd('SADD', "mx:{$alice_id}:devices", 'ADEV');
($status) = $alice->put("$api/devices/ADEV", { display_name => 'phone' });
is($status, 200, 'alice renames her device');
($status) = $alice->put("$api/devices/ADEV", { display_name => 'laptop' });
ok(wait_for(sub { edus('m.device_list_update') >= 2 }, 10), 'm.device_list_update EDUs reach the fake');
my @du = map { $_->{content} } edus('m.device_list_update');
is($du[0]{user_id}, $alice_id, '... for alice');
is($du[0]{device_id}, 'ADEV', '... her device');
is($du[0]{device_display_name}, 'phone', '... its new name');
ok($du[1]{stream_id} > $du[0]{stream_id}, '... stream_id grows');
is_deeply($du[1]{prev_id}, [ $du[0]{stream_id} ], '... prev_id: the update before');

# a room older than mx:{<room>}:servers: made from the members
$A->redis_cmd('DEL', "mx:{$room}:servers");
my $typing = () = edus('m.typing');
($status) = $alice->put("$api/rooms/$room/typing/$alice_id", { typing => JSON::PP::false });
ok(wait_for(sub { edus('m.typing') > $typing }, 10), 'servers of a room made from its members: typing still goes');
is_deeply({ @{ $A->redis_cmd('HGETALL', "mx:{$room}:servers") } }, { $fake => 1, $A->server_name => 1 },
          '... and the servers are known again');

# --- a long outage: the queue shed past its cap ------------------------------------
# (20 items here): every PDU but the room's newest goes, oldest first; the
# fake, back, gets that newest one (a real server fetches the rest)
$A->redis_cmd('SET', 'mx:fedq:max', 20);
mode('500');
my $had = scalar(accepted_ids());
my @long = map { msg("long away $_") } 1 .. 60;
my $qlen = sub { $A->redis_cmd('LLEN', "mx:fedq:{$fake}") };
ok(wait_for(sub { my $seen = $A->redis_cmd('HGET', "mx:fedq:{$fake}:seen", 'shed'); $seen && $seen > 0 }, 15),
   'past its cap the queue is shed');
ok($qlen->() <= 20, '... and stays within it (' . $qlen->() . ' items)');
mode('200');
ok(wait_for(sub { (accepted_ids())[-1] eq $long[-1] }, 30), 'back up: the newest message arrives');
my @after = (accepted_ids())[$had .. scalar(accepted_ids()) - 1];
my %pos; @pos{@long} = 0 .. $#long;
ok(@after < @long, '... not all sixty (' . scalar(@after) . ')');
ok(!grep({ !defined $pos{$_} } @after), '... only those messages');
is_deeply(\@after, [ sort { $pos{$a} <=> $pos{$b} } @after ], '... in order');
my %dup; $dup{$_}++ for @after;
ok(!grep({ $_ > 1 } values %dup), '... each once');
$A->redis_cmd('DEL', 'mx:fedq:max');

ok(wait_for(sub { !@{ $A->redis_cmd('FCALL', 'mx_fedq_list', 0) } }, 10), 'every queue is empty at the end');
ok(!grep({ /m\.room\.member \Q$bob\E/ } accepted_ids()), "bob's join never went back");

is($A->redis_cmd('XLEN', 'mx:dead'), 0, 'nothing dead-lettered');

my @bad = $A->sanitizer_reports;
is(scalar @bad, 0, 'no sanitizer report') or diag join "\n", @bad;

done_testing();

# A room joined through another server, at the roomserver: the join_state
# input entry the module makes of send_join's answer (roomserver_join.c),
# put here straight on the room's input stream.  The room belongs to
# remote.example (its key in the cache): 250 members, so its outliers take
# more than one mx_room_outliers call.
#
#   an event the join needs (the join rules) changed after it was signed:
#   the join fails (502), nothing of the room stored
#   a member's join signed with a key not to be had: dropped (its
#   signature cannot be verified), and so is an event whose auth events
#   name it; the join goes on without them
#   a state event whose content hash does not match: kept redacted, the
#   join goes on
#   every event of the state and auth chain stored once, as an outlier;
#   the join the room's first event here; the user's /sync has the room
#   the same entry again: the same answer, nothing stored twice

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use Test::Matrix::Redis;
use JSON::PP;
use Time::HiRes qw(time);

# no fedsender: nothing goes out, every key is in the cache
my $bin = Test::Matrix::Server::daemon_build() . '/bin';
%Test::Matrix::ServerOptions = (daemons => "$bin/roomserver $bin/syncer");

my $srv = server();
my $fed = Test::Matrix::Fed->new(server => $srv);
my $json = JSON::PP->new->canonical;
my $api = '/_matrix/client/v3';
my $M = 250;

my $remote = $fed->key('remote.example');
$fed->store($remote);
my $sign = $fed->signer($remote, '10');
my $room = '!joinstate:remote.example';
my $creator = '@creator:remote.example';
my $ts = int(time * 1000) - 60_000;

# the room: create, the creator's join, power levels, join rules, history
# visibility, then the others' joins, each after the one before
my (@state, %id, $last);
my $depth = 0;
sub ev {
    my ($type, $sk, $sender, $content, @auth) = @_;
    my ($id, $text) = $sign->({ type => $type, state_key => $sk, sender => $sender, room_id => $room,
                                content => $content, origin_server_ts => $ts++, depth => ++$depth,
                                prev_events => [ $last // () ], auth_events => [@auth] });
    push @state, $text;
    return $last = $id;
}
$id{create} = ev('m.room.create', '', $creator, { creator => $creator, room_version => '10' });
$id{creator} = ev('m.room.member', $creator, $creator, { membership => 'join' }, $id{create});
$id{pl} = ev('m.room.power_levels', '', $creator, { users => { $creator => 100 } },
             @id{qw(create creator)});
$id{jr} = ev('m.room.join_rules', '', $creator, { join_rule => 'public' }, @id{qw(create creator pl)});
ev('m.room.history_visibility', '', $creator, { history_visibility => 'shared' },
   @id{qw(create creator pl)});
for my $i (1 .. $M - 1) {
    my $u = "\@member$i:remote.example";
    ev('m.room.member', $u, $u, { membership => 'join', displayname => "Member $i" }, @id{qw(create pl jr)});
}
my @chain = @state[0 .. 3];

# our user's join on it, signed by this server
my $carol = '@carol:' . $srv->server_name;
my $token = $srv->make_token(user_id => $carol, device_id => 'CDEV');
my $me = { server => $srv->server_name, file => $srv->dir . '/signing.key' };
($me->{id}) = split ' ', $fed->ctl('', 'public-key', '-k', $me->{file});
my $join = $fed->sign_event($me, { type => 'm.room.member', state_key => $carol, sender => $carol,
                                   room_id => $room, content => { membership => 'join' },
                                   origin_server_ts => $ts++, depth => $depth + 1, prev_events => [$last],
                                   auth_events => [ @id{qw(create pl jr)} ] }, '10');
my $jid = $fed->event_id($join, '10');

my $shard = $fed->ctl('', 'shard', $room, 4);
my $sub = Test::Matrix::Redis->new(path => $srv->socket_path);
$sub->command('SUBSCRIBE', 'mx:test:joinstate');
my $req = 0;

# a join_state entry of these state events (and auth chain events); the
# answer published for it
sub submit {
    my ($st, $ch) = @_;
    my $r = 'js' . ++$req;
    $srv->redis_cmd('XADD', "mx:input:$shard", '*', kind => 'join_state', room => $room, version => '10',
                    event_id => $jid, event => $json->encode($join), state => '[' . join(',', @$st) . ']',
                    auth_chain => '[' . join(',', @{ $ch // \@chain }) . ']', origin => 'remote.example',
                    reply => 'mx:test:joinstate', req => $r);
    while (my $m = $sub->next_reply(30)) {
        next unless ref $m eq 'ARRAY' && $m->[0] eq 'message';
        my ($got, $answer) = split / /, $m->[2], 2;
        return $json->decode($answer) if $got eq $r;
    }
    return undef;
}

my $meta = "mx:{$room}:meta";

# a copy of PDU text signed with a key this server cannot have: the same
# event (the same ID: signatures are not in the reference hash), whose
# signature cannot be verified
sub forge {
    my $f = $json->decode($_[0]);
    my $sigs = $f->{signatures}{'remote.example'};
    $f->{signatures}{'remote.example'} = { 'ed25519:unknown' => (values %$sigs)[0] };
    return $json->encode($f);
}

# --- an event the join needs, its signature not to be checked: refused ------
my @forged = @state;
$forged[3] = forge($forged[3]);             # the join rules
my @fchain = @chain;
$fchain[3] = $forged[3];
my $ans = submit(\@forged, \@fchain);
is($ans->{status}, 502, 'the join rules signed with a key not to be had: 502') or diag explain $ans;
like($ans->{error} // '', qr/the join needs \S+ \(m\.room\.join_rules\).*signatures/,
     'saying the join needs them and it is the signatures');
is($srv->redis_cmd('HLEN', $meta), 0, 'nothing of the room stored');
ok(!$srv->redis_cmd('EXISTS', "mx:{$room}:state"), 'no state');

# --- the room's state: a member's join unverifiable, another's content changed
my @tampered = @state;
my $t = $json->decode($tampered[10]);
$t->{content}{displayname} = 'Changed in transit';     # not covered by the signature
$tampered[10] = $json->encode($t);
my $tid = $fed->event_id($t, '10');

my $bad = $json->decode($tampered[100]);
$tampered[100] = forge($tampered[100]);

# a member whose first join (in the chain only) is forged: its later
# join, in the state, names it among its auth events
my $twice = '@twice:remote.example';
my ($j1, $j1text) = $sign->({ type => 'm.room.member', state_key => $twice, sender => $twice, room_id => $room,
                              content => { membership => 'join' }, origin_server_ts => $ts++,
                              depth => $depth + 1, prev_events => [$last],
                              auth_events => [ @id{qw(create pl jr)} ] });
my ($j2, $j2text) = $sign->({ type => 'm.room.member', state_key => $twice, sender => $twice, room_id => $room,
                              content => { membership => 'join', displayname => 'Twice' },
                              origin_server_ts => $ts++, depth => $depth + 2, prev_events => [$j1],
                              auth_events => [ @id{qw(create pl jr)}, $j1 ] });

$ans = submit([ @tampered, $j2text ], [ @chain, forge($j1text) ]);
is($ans->{event_id}, $jid, 'joined: answered with the join') or diag explain $ans;

my %m = @{ $srv->redis_cmd('HGETALL', $meta) };
my $kept_n = @state - 1;                    # the forged join left out
is(scalar(keys %m), $kept_n + 1, 'every event of the state and chain stored but those dropped, and the join');
is(scalar(grep { / o$/ } values %m), $kept_n, '... each of the state an outlier');
ok(!exists $m{ $fed->event_id($bad, '10') }, 'not the forged join');
ok(!exists $m{$j2}, 'nor the join whose auth event was dropped');
unlike($m{$jid}, qr/o$/, 'the join not');
my @pos = sort { $a <=> $b } map { (split ' ')[0] } values %m;
is_deeply(\@pos, [ 1 .. $kept_n + 1 ], 'each at a position of its own, the join last');
is($srv->redis_cmd('HGET', "mx:{$room}:room", 'pos'), $kept_n + 1, "the room's count of events");
ok(!defined $srv->redis_cmd('HGET', "mx:{$room}:members", $bad->{state_key}),
   'the forged member is no member here');
ok(!defined $srv->redis_cmd('HGET', "mx:{$room}:members", $twice), 'nor the one whose first join was');
is($srv->redis_cmd('HGET', 'mx:eventroom', $id{jr}), $room, 'mx:eventroom names the room');

my $kept = $json->decode($srv->redis_cmd('HGET', "mx:{$room}:pdu", $tid));
is_deeply($kept->{content}, { membership => 'join' }, 'the changed member event: kept redacted');
is($srv->redis_cmd('HGET', "mx:{$room}:members", $t->{state_key}), 'join', '... still a member');

my $carol_c = client(token => $token);
my ($status, $body) = $carol_c->get("$api/rooms/" . esc($room) . '/joined_members');
is($status, 200, 'joined_members');
is(scalar(keys %{ $body->{joined} }), $M, "every member but the forged one, and carol");
($status, $body) = $carol_c->get("$api/sync");
my $jr = $body->{rooms}{join}{$room};
ok($jr, "carol's /sync has the room") or diag explain $body->{rooms};
my %members = map { ($_->{state_key} => $_->{content}{membership}) } grep { $_->{type} eq 'm.room.member' }
               @{ $jr->{state}{events} // [] }, @{ $jr->{timeline}{events} // [] };
is(scalar(grep { $_ eq 'join' } values %members), $M, '... with those members joined');

# --- the same entry again: the same answer, nothing twice -------------------
$ans = submit([ @tampered, $j2text ], [ @chain, forge($j1text) ]);
is($ans->{event_id}, $jid, 'delivered again: the same answer');
is($srv->redis_cmd('HLEN', $meta), $kept_n + 1, 'nothing stored twice');

done_testing();

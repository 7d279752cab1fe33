# A PDU over a gap that get_missing_events does not close: the module asks
# the origin for /state at the missing prev event (a `request` job for the
# fedsender, played by a fake) and the roomserver takes that state as the
# state before the PDU.  A remote server's room of ours: bob joined; then,
# unseen here, dave joins and bob sends two messages; bob's next message
# arrives with get_missing_events answering nothing.  It is accepted,
# stored in the timeline after bob's join, dave's join is stored as an
# outlier (not in the timeline) and is in the room's state afterwards; an
# event building on the PDU is taken as usual.  A /state answer whose
# event for dave has a bad signature: that event dropped, and dave's
# message that needs it refused.  No /state (the remote unreachable): an
# error for the PDU, nothing stored.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use JSON::PP;
use Time::HiRes qw(time);

my ($srv, $fed, $http) = Test::Matrix::Fed->without_fedsender;
my $json = JSON::PP->new->canonical;
my $api = '/_matrix/client/v3';

my $alice = client(token => $srv->make_token(user_id => '@alice:localhost', device_id => 'ADEV'));
my ($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', room_version => '10' });
is($status, 200, 'a public room');
my $room = $body->{room_id};

my $remote = $fed->key('remote.example');
$fed->store($remote);
my $forger = $fed->key('remote.example', ($remote->{id} =~ /:(.+)$/)[0]);  # its key ID, another key
isnt($forger->{pk}, $remote->{pk}, 'a forger: the same key ID, another key');

# the fake fedsender: get_missing_events gives nothing; /state answered
# from mx:test:state:<event_id>, or the fedsender's error when unset
my $third = $fed->key('third.example');     # not cached: the fake has it
$fed->fake_fedsender(fresh => [$third], request => sub {
    my ($job, $r) = @_;
    if ($job->{path} =~ m{^/_matrix/federation/v1/state/[^?]+\?event_id=(.+)$}) {
        my $id = $1;
        $id =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
        my $canned = $r->command('GET', "mx:test:state:$id");
        return $canned ? $json->decode($canned) : { error => 'connection refused' };
    }
    return { status => 200, body => { events => [] } };
});

my $state = { @{ $srv->redis_cmd('HGETALL', "mx:{$room}:state") } };
sub sid { $state->{"$_[0]\x1f" . ($_[1] // '')} }
my $depth = $srv->redis_cmd('HGET', "mx:{$room}:room", 'depth');
my $bob = '@bob:remote.example';
my $dave = '@dave:remote.example';

# bob's PDU (or a sender's given) on the prev events given: Fed.pm's
# room_event, its auth events from the room's state here
sub event {
    my (%o) = @_;
    my $key = delete $o{key} // $remote;
    return $fed->room_event($key, $room, sender => $bob, %o);
}

sub send_txn {
    my ($txn, @pdus) = @_;
    my $uri = "/_matrix/federation/v1/send/$txn";
    my $content = { origin => 'remote.example', origin_server_ts => int(time * 1000),
                    pdus => \@pdus };
    return $http->request('PUT', $uri, $content,
                          headers => { Authorization => $fed->xmatrix($remote, PUT => $uri, $content) });
}

sub pdu { $json->decode($srv->redis_cmd('HGET', "mx:{$room}:pdu", $_[0]) // 'null') }

# the state at an event of the gap as /state gives it: the room's state
# here with the gap's state events, and their auth chain
sub state_answer {
    my (@extra) = @_;
    my %ids = %$state;
    my @pdus = map { pdu($_) } sort values %ids;
    my %auth;
    for my $ev (@pdus, @extra) {
        $auth{$_} = 1 for @{ $ev->{auth_events} };
    }
    my @chain = map { pdu($_) } sort keys %auth;
    return { status => 200, body => { pdus => [@pdus, @extra], auth_chain => \@chain } };
}

# --- bob joins -------------------------------------------------------------
my @extrem = @{ $srv->redis_cmd('SMEMBERS', "mx:{$room}:extrem") };
my ($join, $join_id) = event(type => 'm.room.member', state_key => $bob,
                             content => { membership => 'join' },
                             prev_events => \@extrem, depth => $depth + 1);
($status, $body) = send_txn('j1', $join);
is_deeply($body, { pdus => { $join_id => {} } }, 'bob joins');
$state->{"m.room.member\x1f$bob"} = $join_id;

my ($s0, $sync0) = $alice->get("$api/sync");
my $since = $sync0->{next_batch};

# --- the gap: dave joins, bob says two things; none of it sent ---------------
my ($djoin, $djoin_id) = event(type => 'm.room.member', state_key => $dave, sender => $dave,
                               content => { membership => 'join' },
                               prev_events => [$join_id], depth => $depth + 2);
my ($g1, $g1_id) = event(prev_events => [$djoin_id], depth => $depth + 3,
                         content => { msgtype => 'm.text', body => 'unseen 1' });
my ($g2, $g2_id) = event(prev_events => [$g1_id], depth => $depth + 4,
                         content => { msgtype => 'm.text', body => 'unseen 2' });
my ($m, $m_id) = event(prev_events => [$g2_id], depth => $depth + 5,
                       content => { msgtype => 'm.text', body => 'after the gap' });

$srv->redis_cmd('SET', "mx:test:state:$g2_id", $json->encode(state_answer($djoin)));

my $jobs_before = () = $fed->jobs;
($status, $body) = send_txn('g1', $m);
is($status, 200, 'a PDU over a gap: 200');
is_deeply($body, { pdus => { $m_id => {} } }, 'accepted with the state at its prev event');

my @req = grep { ($_->{kind} // '') eq 'request' } ($fed->jobs)[$jobs_before .. scalar($fed->jobs) - 1];
is(scalar @req, 2, 'two request jobs: get_missing_events, then /state');
like($req[0]{path} // '', qr{/get_missing_events/}, 'get_missing_events first');
is($req[1]{method}, 'GET', '/state: GET');
like($req[1]{path} // '', qr{^/_matrix/federation/v1/state/\Q!\E?[^?]*\?event_id=}, '/state of the room');
is($req[1]{destination}, 'remote.example', 'of the origin');

ok($srv->redis_cmd('HGET', "mx:{$room}:spos", $m_id), 'the PDU in the timeline');
ok(!$srv->redis_cmd('HGET', "mx:{$room}:spos", $djoin_id), "dave's join not in the timeline");
ok($srv->redis_cmd('HEXISTS', "mx:{$room}:pdu", $djoin_id), "dave's join stored");
like($srv->redis_cmd('HGET', "mx:{$room}:meta", $djoin_id) // '', qr/ o$/, '... as an outlier');
ok(!$srv->redis_cmd('HEXISTS', "mx:{$room}:pdu", $g2_id), 'the missing prev event stays unknown');

($status, $body) = $alice->get("$api/sync?since=$since");
my @tl = map { $_->{event_id} } @{ $body->{rooms}{join}{$room}{timeline}{events} // [] };
ok((grep { $_ eq $m_id } @tl), "alice /sync: bob's message after the gap");
ok(!(grep { $_ eq $djoin_id } @tl), "... and not dave's join");

($status, $body) = $alice->get("$api/rooms/$room/state/m.room.member/" . $dave);
is($status, 200, "dave's membership in the room's state");
is($body->{membership}, 'join', '... joined');

$state->{"m.room.member\x1f$dave"} = $djoin_id;

# an event on the PDU: built on its state group as usual
my ($n, $n_id) = event(prev_events => [$m_id], depth => $depth + 6,
                       content => { msgtype => 'm.text', body => 'on top' });
($status, $body) = send_txn('g2', $n);
is_deeply($body, { pdus => { $n_id => {} } }, 'an event on it: accepted');

($status, $body) = $alice->get("$api/rooms/$room/messages?dir=b&limit=2");
is_deeply([map { $_->{event_id} } @{ $body->{chunk} }], [$n_id, $m_id], '/messages: both, newest first');

# --- a member who joined in the gap speaks: soft failure is checked against
# the current state resolved with the PDU's state, as Synapse does -----------
my $frank = '@frank:remote.example';
my ($fjoin, $fjoin_id) = event(type => 'm.room.member', state_key => $frank, sender => $frank,
                               content => { membership => 'join' },
                               prev_events => [$n_id], depth => $depth + 7);
my $tom = '@tom:third.example';
my ($tjoin, $tjoin_id) = event(type => 'm.room.member', state_key => $tom, sender => $tom,
                               key => $third, content => { membership => 'join' },
                               prev_events => [$fjoin_id], depth => $depth + 8);
my ($k1, $k1_id) = event(prev_events => [$tjoin_id], depth => $depth + 8);
my ($f, $f_id) = event(sender => $frank, prev_events => [$k1_id], depth => $depth + 9,
                       auth_events => [ sid('m.room.create'), sid('m.room.power_levels'), $fjoin_id ],
                       content => { msgtype => 'm.text', body => 'from frank' });
$srv->redis_cmd('SET', "mx:test:state:$k1_id", $json->encode(state_answer($fjoin, $tjoin)));

my $njobs = () = $fed->jobs;
($status, $body) = send_txn('k1', $f);
is_deeply($body, { pdus => { $f_id => {} } }, "frank's message over the gap: accepted");
unlike($srv->redis_cmd('HGET', "mx:{$room}:meta", $f_id) // '', qr/ \S*s\S*$/, '... not soft-failed');
($status, $body) = $alice->get("$api/rooms/$room/messages?dir=b&limit=1");
is_deeply([map { $_->{event_id} } @{ $body->{chunk} }], [$f_id], '... and visible in /messages');
($status, $body) = $alice->get("$api/rooms/$room/state/m.room.member/" . $frank);
is($body->{membership}, 'join', 'frank in the room\'s state');
my @kj = grep { ($_->{kind} // '') eq 'keys' } ($fed->jobs)[$njobs .. scalar($fed->jobs) - 1];
is_deeply([map { $_->{server} } @kj], ['third.example'],
          'a keys job for the server of an event in the state given');
like($srv->redis_cmd('HGET', "mx:{$room}:meta", $tjoin_id) // '', qr/ o$/,
     "tom's join (third.example) checked with its key, stored as an outlier");
($status, $body) = $alice->get("$api/rooms/$room/state/m.room.member/" . $tom);
is($body->{membership}, 'join', 'tom in the room\'s state');

# --- a forged event in the state: dropped, and what needs it refused --------
my $erin = '@erin:remote.example';
my ($ejoin, $ejoin_id) = event(type => 'm.room.member', state_key => $erin, sender => $erin,
                               key => $forger, content => { membership => 'join' },
                               prev_events => [$f_id], depth => $depth + 10);
my ($h1, $h1_id) = event(prev_events => [$ejoin_id], depth => $depth + 11);
my ($e, $e_id) = event(sender => $erin, prev_events => [$h1_id], depth => $depth + 12,
                       auth_events => [ sid('m.room.create'), sid('m.room.power_levels'), $ejoin_id ],
                       content => { msgtype => 'm.text', body => 'from erin' });
$srv->redis_cmd('SET', "mx:test:state:$h1_id", $json->encode(state_answer($ejoin)));

($status, $body) = send_txn('f1', $e);
is($status, 200, 'a PDU over a gap with a forged state event: 200');
like($body->{pdus}{$e_id}{error} // '', qr/auth event is missing/, 'the PDU refused: its auth event dropped');
ok(!$srv->redis_cmd('HEXISTS', "mx:{$room}:pdu", $ejoin_id), 'the forged event not stored');
ok(!$srv->redis_cmd('HGET', "mx:{$room}:spos", $e_id), 'the PDU not in the timeline');
($status, $body) = $alice->get("$api/rooms/$room/state/m.room.member/" . $erin);
is($status, 404, 'erin not in the room');

# --- no /state: an error, nothing stored --------------------------------------
my ($u, $u_id) = event(prev_events => ['$' . ('Z' x 43)], depth => $depth + 13,
                       content => { msgtype => 'm.text', body => 'unreachable' });
($status, $body) = send_txn('u1', $u);
is($status, 200, 'a gap whose /state fails: 200');
like($body->{pdus}{$u_id}{error} // '', qr/prev_events/, 'an error for the PDU');
my @last = grep { ($_->{kind} // '') eq 'request' } $fed->jobs;
like($last[-1]{path} // '', qr{/state/.*event_id=%24Z{43}$}, '/state was asked for its prev event');
ok(!$srv->redis_cmd('HEXISTS', "mx:{$room}:pdu", $u_id), 'not stored');

done_testing();

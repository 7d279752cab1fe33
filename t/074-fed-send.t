# Transactions from another server: PUT /_matrix/federation/v1/send/{txnId}.
# A fake remote server (its key in the cache) sends signed PDUs of a public
# room of ours: bob's join and messages reach local users' /sync and
# /messages in order; a transaction sent again is answered the same and
# not processed again; a bad signature is refused, a bad content hash kept
# redacted, a sender of a third server without its signature refused, and
# one with it taken once the module has had that server's keys fetched (a
# `keys` job); a PDU whose prev event is missing makes the module ask the
# origin for get_missing_events (through a `request` job for the
# fedsender, played by a fake) and both are stored in order; an event
# that passes at its own
# state but not at the current one is soft-failed.  EDUs: typing,
# receipts, presence, to-device (once), device list updates; an EDU for a
# user of another server than the origin is ignored.  A transaction sent
# twice at once is processed once; one whose verdicts do not come in time
# is 503 and done again when retried.  Malformed transactions: 400.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use JSON::PP;
use POSIX ();
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
my $third = $fed->key('third.example');     # not cached: the fake has it

# the fake fedsender: get_missing_events answered from mx:test:gme:<latest>
$fed->fake_fedsender(fresh => [$third], request => sub {
    my ($job, $r) = @_;
    my $req = eval { $json->decode($job->{body}) } // {};
    my $latest = $req->{latest_events}[0] // '';
    my $canned = $r->command('GET', "mx:test:gme:$latest");
    return $canned ? $json->decode($canned) : { status => 200, body => { events => [] } };
});

# --- building bob's events ---------------------------------------------------
my $state = { @{ $srv->redis_cmd('HGETALL', "mx:{$room}:state") } };
sub sid { $state->{"$_[0]\x1f" . ($_[1] // '')} }
my @extrem = @{ $srv->redis_cmd('SMEMBERS', "mx:{$room}:extrem") };
my $depth = $srv->redis_cmd('HGET', "mx:{$room}:room", 'depth');

my $bob = '@bob:remote.example';
my $ts = int(time * 1000);

sub event {
    my (%o) = @_;
    my $key = delete $o{key} // $remote;
    my $ev = { room_id => $room, sender => $bob, origin_server_ts => $ts++,
               type => 'm.room.message', %o };
    $ev->{auth_events} //= [ grep { defined } sid('m.room.create'), sid('m.room.power_levels'),
                             sid('m.room.member', $ev->{sender}) ];
    $ev->{content} //= { msgtype => 'm.text', body => 'hello' };
    my $signed = $fed->sign_event($key, $ev, '10');
    return ($signed, $fed->event_id($signed, '10'));
}

sub send_txn {
    my ($txn, $content, %o) = @_;
    my $uri = "/_matrix/federation/v1/send/$txn";
    my $auth = $fed->xmatrix($o{key} // $remote, PUT => $uri, ref $content ? $content : undef);
    return $http->request('PUT', $uri, $content, headers => { Authorization => $auth });
}

sub txn {
    my (%o) = @_;
    return { origin => 'remote.example', origin_server_ts => int(time * 1000),
             pdus => $o{pdus} // [], ($o{edus} ? (edus => $o{edus}) : ()) };
}

my ($join, $join_id) = event(type => 'm.room.member', state_key => $bob,
                             content => { membership => 'join' },
                             auth_events => [ sid('m.room.create'), sid('m.room.power_levels'),
                                              sid('m.room.join_rules') ],
                             prev_events => \@extrem, depth => $depth + 1);
$state->{"m.room.member\x1f$bob"} = $join_id;
my ($m1, $m1_id) = event(prev_events => [$join_id], depth => $depth + 2,
                         content => { msgtype => 'm.text', body => 'first' });
my ($m2, $m2_id) = event(prev_events => [$m1_id], depth => $depth + 3,
                         content => { msgtype => 'm.text', body => 'second' });

# --- a transaction: join and two messages, given out of order ----------------
my ($s0, $sync0) = $alice->get("$api/sync");
my $since = $sync0->{next_batch};

($status, $body) = send_txn('t1', txn(pdus => [$m2, $join, $m1]));
is($status, 200, 'the transaction: 200');
is_deeply($body, { pdus => { $join_id => {}, $m1_id => {}, $m2_id => {} } },
          'each event accepted: {}');

is($srv->redis_cmd('HGET', "mx:{$room}:members", $bob), 'join', 'bob is joined');
my @order = map { $srv->redis_cmd('HGET', "mx:{$room}:spos", $_) } $join_id, $m1_id, $m2_id;
ok($order[0] < $order[1] && $order[1] < $order[2], 'placed in order, prev events first');

($status, $body) = $alice->get("$api/sync?since=$since");
my @tl = map { $_->{event_id} } @{ $body->{rooms}{join}{$room}{timeline}{events} // [] };
is_deeply(\@tl, [$join_id, $m1_id, $m2_id], 'alice /sync: the join and the messages, in order');
my $since2 = $body->{next_batch};

($status, $body) = $alice->get("$api/rooms/$room/messages?dir=b&limit=3");
is_deeply([map { $_->{event_id} } @{ $body->{chunk} }], [$m2_id, $m1_id, $join_id],
          '/messages: newest first');

# --- the same transaction again: the same answer, nothing done again ---------
my $shards = 4;
# entries ever added to the input shards (XLEN shrinks: consumers trim)
my $inputs = sub {
    my $n = 0;
    for my $s (0 .. $shards - 1) {
        my $info = $srv->redis_cmd('EXISTS', "mx:input:$s") ? { @{ $srv->redis_cmd('XINFO', 'STREAM', "mx:input:$s") } } : {};
        $n += $info->{'entries-added'} // 0;
    }
    return $n;
};
my $before = $inputs->();
my $tl_before = $srv->redis_cmd('ZCARD', "mx:{$room}:timeline");
($status, $body) = send_txn('t1', txn(pdus => [$m2, $join, $m1]));
is($status, 200, 'the same txnId again: 200');
is_deeply($body, { pdus => { $join_id => {}, $m1_id => {}, $m2_id => {} } }, 'the same answer');
is($inputs->(), $before, 'nothing appended to the input again');
is($srv->redis_cmd('ZCARD', "mx:{$room}:timeline"), $tl_before, 'nothing placed twice');

# --- the same transaction twice at once: processed once, the same answer ----
# the roomserver stopped meanwhile, so that the second copy comes while
# the first waits for its verdict
my ($m3, $m3_id) = event(prev_events => [$m2_id], depth => $depth + 4,
                         content => { msgtype => 'm.text', body => 'twice at once' });
$before = $inputs->();
my $tmp = $ENV{TMPDIR} // '/tmp';
sub send_in_child {
    my ($out, $txn_id, $pdu) = @_;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    my $c = client(base => $srv->fed_url);
    my $uri = "/_matrix/federation/v1/send/$txn_id";
    my $t = txn(pdus => [$pdu]);
    my ($st, $bd) = $c->request('PUT', $uri, $t,
                                headers => { Authorization => $fed->xmatrix($remote, PUT => $uri, $t) });
    open my $f, '>', $out or POSIX::_exit(1);
    print {$f} $json->encode([$st, $bd]);
    close $f;
    POSIX::_exit(0);
}
my $t0;
my $rs = $srv->pid_of('roomserver') or BAIL_OUT('no roomserver pid');
kill 'STOP', $rs;
my @kids = (send_in_child("$tmp/074-a.$$", 'tc', $m3));
ok(wait_for(sub { $inputs->() > $before }, 10), 'the first copy is appended');
push @kids, send_in_child("$tmp/074-b.$$", 'tc', $m3);
select undef, undef, undef, 0.6;
kill 'CONT', $rs;
waitpid $_, 0 for @kids;
my @answers = map { my $f = "$tmp/074-$_.$$"; my $a = eval { $json->decode(do { local (@ARGV, $/) = ($f); <> }) };
                    unlink $f; $a } qw(a b);
is_deeply($answers[0], [200, { pdus => { $m3_id => {} } }], 'the first copy: 200, taken');
is_deeply($answers[1], [200, { pdus => { $m3_id => {} } }], 'the second, which came meanwhile: the same');
is($inputs->(), $before + 1, 'appended once');

# --- the same event in other transactions: answered, stored once --------------
$tl_before = $srv->redis_cmd('ZCARD', "mx:{$room}:timeline");
($status, $body) = send_txn('t-again', txn(pdus => [$m1]));
is_deeply([$status, $body], [200, { pdus => { $m1_id => {} } }],
          'an event stored already, in a new transaction: {}');
# a new event in two transactions at once: both copies reach the input as
# new ones (the roomserver stopped), the second's store finds the first's
my ($m4, $m4_id) = event(prev_events => [$m3_id], depth => $depth + 5,
                         content => { msgtype => 'm.text', body => 'in two transactions' });
$before = $inputs->();
kill 'STOP', $rs;
@kids = (send_in_child("$tmp/074-c.$$", 'td1', $m4), send_in_child("$tmp/074-d.$$", 'td2', $m4));
ok(wait_for(sub { $inputs->() >= $before + 2 }, 10), 'both copies appended');
kill 'CONT', $rs;
waitpid $_, 0 for @kids;
@answers = map { my $f = "$tmp/074-$_.$$"; my $a = eval { $json->decode(do { local (@ARGV, $/) = ($f); <> }) };
                 unlink $f; $a } qw(c d);
is_deeply(\@answers, [[200, { pdus => { $m4_id => {} } }], [200, { pdus => { $m4_id => {} } }]],
          'both transactions: 200, the event taken');
is($srv->redis_cmd('ZCARD', "mx:{$room}:timeline"), $tl_before + 1, 'placed once');

# --- refused and redacted ----------------------------------------------------
my ($forged) = event(prev_events => [$m2_id], depth => $depth + 4,
                     content => { msgtype => 'm.text', body => 'forged' });
$forged->{origin_server_ts} += 1;    # covered by the signature
my $forged_id = $fed->event_id($forged, '10');

my ($tampered) = event(prev_events => [$m2_id], depth => $depth + 4,
                       content => { msgtype => 'm.text', body => 'original' });
$tampered->{content}{body} = 'changed in transit';   # only the content hash covers it
my $tampered_id = $fed->event_id($tampered, '10');

# carol of third.example, relayed by remote.example with only its signature
my ($carol) = event(sender => '@carol:third.example', prev_events => [$m2_id], depth => $depth + 4);
my $carol_id = $fed->event_id($carol, '10');

($status, $body) = send_txn('t2', txn(pdus => [$forged, $tampered, $carol]));
is($status, 200, 'a transaction with bad events: 200');
ok($body->{pdus}{$forged_id}{error}, 'a bad signature: an error for it');
ok(!$srv->redis_cmd('HEXISTS', "mx:{$room}:pdu", $forged_id), 'and not stored');
is_deeply($body->{pdus}{$tampered_id}, {}, 'a bad content hash: accepted');
my $stored = $json->decode($srv->redis_cmd('HGET', "mx:{$room}:pdu", $tampered_id));
is_deeply($stored->{content}, {}, 'and stored redacted');
like($body->{pdus}{$carol_id}{error} // '', qr/sender's server/,
     "another server's user without its server's signature: refused");
ok(!$srv->redis_cmd('HEXISTS', "mx:{$room}:pdu", $carol_id), 'and not stored');

# carol's join, signed by third.example, whose keys are not cached yet:
# the module has the fedsender fetch them before the roomserver checks it
my ($cjoin, $cjoin_id) = event(key => $third, sender => '@carol:third.example', type => 'm.room.member',
                               state_key => '@carol:third.example', content => { membership => 'join' },
                               auth_events => [ sid('m.room.create'), sid('m.room.power_levels'),
                                                sid('m.room.join_rules') ],
                               prev_events => [$tampered_id], depth => $depth + 5);
ok(!$srv->redis_cmd('EXISTS', 'mx:serverkeys:{third.example}'), "third.example's keys not cached");
($status, $body) = send_txn('t2b', txn(pdus => [$cjoin]));
is_deeply([$status, $body], [200, { pdus => { $cjoin_id => {} } }],
          'an event relayed from a third server, signed by it: accepted');
my @kj = grep { ($_->{kind} // '') eq 'keys' && $_->{server} eq 'third.example' } $fed->jobs;
is(scalar @kj, 1, "a keys job for the third server's key");
is($srv->redis_cmd('HGET', "mx:{$room}:members", '@carol:third.example'), 'join', 'carol is joined');

# the cached key is known but no longer valid when carol's next event is
# made (a week after its fetch, say): fetched again first, not dropped
$srv->redis_cmd('HSET', 'mx:serverkeys:{third.example}:until', $third->{id}, int(time * 1000) - 60000);
$state->{"m.room.member\x1f\@carol:third.example"} = $cjoin_id;
my ($cmsg, $cmsg_id) = event(key => $third, sender => '@carol:third.example', prev_events => [$cjoin_id],
                             depth => $depth + 6, content => { msgtype => 'm.text', body => 'carol here' });
($status, $body) = send_txn('t2c', txn(pdus => [$cmsg]));
is_deeply([$status, $body], [200, { pdus => { $cmsg_id => {} } }],
          "a relayed event whose signer's cached key has expired: accepted");
@kj = grep { ($_->{kind} // '') eq 'keys' && $_->{server} eq 'third.example' } $fed->jobs;
is(scalar @kj, 2, '... after a keys job for it');
is($kj[1]{valid_at}, $cmsg->{origin_server_ts}, '... valid when the event was made');

# --- a missing prev event: get_missing_events through the fedsender ----------
my ($ma, $ma_id) = event(prev_events => [$tampered_id], depth => $depth + 5,
                         content => { msgtype => 'm.text', body => 'missed' });
my ($mb, $mb_id) = event(prev_events => [$ma_id], depth => $depth + 6,
                         content => { msgtype => 'm.text', body => 'after the gap' });
$srv->redis_cmd('SET', "mx:test:gme:$mb_id", $json->encode({ status => 200, body => { events => [$ma] } }));

my $jobs_before = () = $fed->jobs;
($status, $body) = send_txn('t3', txn(pdus => [$mb]));
is($status, 200, 'a PDU after a gap: 200');
is_deeply($body, { pdus => { $mb_id => {} } }, 'accepted');
my @jobs = grep { ($_->{kind} // '') eq 'request' } $fed->jobs;
is(scalar @jobs, 1, 'one request job for the fedsender');
my $job = $jobs[0];
is($job->{destination}, 'remote.example', 'to the origin');
is($job->{method}, 'POST', 'POST');
like($job->{path}, qr{^/_matrix/federation/v1/get_missing_events/}, 'get_missing_events');
my $gme = $json->decode($job->{body});
is_deeply($gme->{latest_events}, [$mb_id], 'latest_events: the PDU');
ok(scalar @{ $gme->{earliest_events} }, 'earliest_events: our extremities');
my ($pa, $pb) = map { $srv->redis_cmd('HGET', "mx:{$room}:spos", $_) } $ma_id, $mb_id;
ok($pa && $pb && $pa < $pb, 'the missing event stored, before the PDU');

# a gap neither get_missing_events nor /state fills (the fake answers no
# state): an error, nothing stored (t/086: one /state fills)
my ($mc, $mc_id) = event(prev_events => ['$' . ('Q' x 43)], depth => $depth + 7);
($status, $body) = send_txn('t4', txn(pdus => [$mc]));
is($status, 200, 'a gap nobody fills: 200');
like($body->{pdus}{$mc_id}{error} // '', qr/prev_events/, 'an error for the PDU');
ok(!$srv->redis_cmd('HEXISTS', "mx:{$room}:pdu", $mc_id), 'not stored');

# --- EDUs ---------------------------------------------------------------------
($status, $body) = $alice->get("$api/sync?since=$since2");
my $since3 = $body->{next_batch};

my $edus = [
    { edu_type => 'm.typing', content => { room_id => $room, user_id => $bob, typing => JSON::PP::true } },
    { edu_type => 'm.typing', content => { room_id => $room, user_id => '@eve:other.example',
                                           typing => JSON::PP::true } },
    { edu_type => 'm.receipt', content => { $room => { 'm.read' => {
        $bob => { event_ids => [$mb_id], data => { ts => 1 } } } } } },
    { edu_type => 'm.direct_to_device', content => { sender => $bob, type => 'm.test',
        message_id => 'msg1', messages => { '@alice:localhost' => { ADEV => { n => 1 } } } } },
    { edu_type => 'm.direct_to_device', content => { sender => '@eve:other.example', type => 'm.test',
        message_id => 'msg2', messages => { '@alice:localhost' => { ADEV => { n => 2 } } } } },
    { edu_type => 'm.device_list_update', content => { user_id => $bob, device_id => 'BOBDEV',
        stream_id => 1, keys => { user_id => $bob, device_id => 'BOBDEV' } } },
    { edu_type => 'm.presence', content => { push => [
        { user_id => $bob, presence => 'online', last_active_ago => 1000, currently_active => JSON::PP::true },
        { user_id => '@eve:other.example', presence => 'online', last_active_ago => 1 } ] } },
    { edu_type => 'm.unknown', content => {} },
];
($status, $body) = send_txn('t5', txn(edus => $edus));
is_deeply([$status, $body], [200, { pdus => {} }], 'EDUs: 200');

# the same to-device message again, in another transaction
($status, $body) = send_txn('t6', txn(edus => [$edus->[3]]));
is($status, 200, 'the to-device message again: 200');

($status, $body) = $alice->get("$api/sync?since=$since3");
my $jr = $body->{rooms}{join}{$room} // {};
my %eph = map { $_->{type} => $_->{content} } @{ $jr->{ephemeral}{events} // [] };
is_deeply($eph{'m.typing'}{user_ids}, [$bob], 'bob types (eve of another server is ignored)');
ok($eph{'m.receipt'}{$mb_id}{'m.read'}{$bob}, "bob's receipt");
my @td = @{ $body->{to_device}{events} // [] };
is(scalar @td, 1, 'one to-device message, once (eve\'s ignored)');
is_deeply([$td[0]{sender}, $td[0]{type}, $td[0]{content}], [$bob, 'm.test', { n => 1 }], 'from bob');
ok((grep { $_ eq $bob } @{ $body->{device_lists}{changed} // [] }), 'bob in device_lists.changed');
my %pres = map { $_->{sender} => $_->{content}{presence} } @{ $body->{presence}{events} // [] };
is_deeply(\%pres, { $bob => 'online' }, "bob's presence (eve's ignored)");
my $since4 = $body->{next_batch};

# a parked /sync wakes for a remote user's device list change
my $kid = fork // die "fork: $!";
if (!$kid) {
    select undef, undef, undef, 1;
    my $c = client(base => $srv->fed_url);
    my $uri = '/_matrix/federation/v1/send/t6b';
    my $t = txn(edus => [ { edu_type => 'm.device_list_update', content => {
        user_id => $bob, device_id => 'BOBDEV2', stream_id => 2, prev_id => [1] } } ]);
    $c->request('PUT', $uri, $t, headers => { Authorization => $fed->xmatrix($remote, PUT => $uri, $t) });
    POSIX::_exit(0);
}
$t0 = time;
($status, $body) = $alice->get("$api/sync?since=$since4&timeout=15000");
waitpid $kid, 0;
ok(time - $t0 < 10, 'a parked /sync wakes for it');
ok((grep { $_ eq $bob } @{ $body->{device_lists}{changed} // [] }), 'with bob in device_lists.changed');
$since4 = $body->{next_batch};

# --- soft failure --------------------------------------------------------------
# bob's event built before alice bans him: fine at its own state, not now
my $before_ban = $mb_id;
($status) = $alice->post("$api/rooms/$room/ban", { user_id => $bob, reason => 'bye' });
is($status, 200, 'alice bans bob');
my ($soft, $soft_id) = event(prev_events => [$before_ban], depth => $depth + 7,
                             content => { msgtype => 'm.text', body => 'too late' });
($status, $body) = send_txn('t7', txn(pdus => [$soft]));
is_deeply([$status, $body], [200, { pdus => { $soft_id => {} } }], 'an event soft-failed: taken');
like($srv->redis_cmd('HGET', "mx:{$room}:meta", $soft_id) // '', qr/ s$/, 'stored soft-failed');
ok(!$srv->redis_cmd('SISMEMBER', "mx:{$room}:extrem", $soft_id), 'not a forward extremity');
($status, $body) = $alice->get("$api/sync?since=$since4");
ok(!(grep { $_->{event_id} eq $soft_id } @{ $body->{rooms}{join}{$room}{timeline}{events} // [] }),
   'and shown to nobody');

# --- no verdict in time: 503, and the transaction is done again when retried ----
my ($late, $late_id) = event(prev_events => [$soft_id], depth => $depth + 8,
                             content => { msgtype => 'm.text', body => 'late' });
kill 'STOP', $rs;
$t0 = time;
($status, $body) = send_txn('t8', txn(pdus => [$late]));
my $took = time - $t0;
kill 'CONT', $rs;
is_deeply([$status, $body->{errcode}], [503, 'M_UNKNOWN'], 'the roomserver stopped: 503');
ok($took >= 19 && $took < 30, 'after the 20 s the verdicts may take');
ok(!$srv->redis_cmd('EXISTS', 'mx:fedtxn:{remote.example}:t8'), 'the transaction forgotten');
($status, $body) = send_txn('t8', txn(pdus => [$late]));
is($status, 200, 'the retry: 200');
ok(exists $body->{pdus}{$late_id}, 'with a verdict for the event');

# --- a transaction past the client API's 1 MiB: taken ---------------------------
my $big = 'x' x 20000;
($status, $body) = send_txn('big', txn(edus => [ map { { edu_type => 'm.unknown', content => { pad => $big } } } 1 .. 80 ]));
is_deeply([$status, $body], [200, { pdus => {} }], 'a 1.6 MB transaction: 200');

# --- malformed transactions ----------------------------------------------------
($status, $body) = send_txn('m1', 'not json');
is_deeply([$status, $body->{errcode}], [400, 'M_NOT_JSON'], 'not JSON: 400 M_NOT_JSON');
($status, $body) = send_txn('m2', { origin => 'remote.example', origin_server_ts => 1, pdus => {} });
is_deeply([$status, $body->{errcode}], [400, 'M_BAD_JSON'], 'pdus not a list: 400 M_BAD_JSON');
($status, $body) = send_txn('m3', { origin => 'remote.example', pdus => [] });
is_deeply([$status, $body->{errcode}], [400, 'M_BAD_JSON'], 'no origin_server_ts: 400 M_BAD_JSON');
($status, $body) = send_txn('m4', txn(pdus => [ map { {} } 1 .. 51 ]));
is_deeply([$status, $body->{errcode}], [400, 'M_BAD_JSON'], '51 PDUs: 400 M_BAD_JSON');
($status, $body) = send_txn('m5', txn(edus => [ map { { edu_type => 'm.x', content => {} } } 1 .. 101 ]));
is_deeply([$status, $body->{errcode}], [400, 'M_BAD_JSON'], '101 EDUs: 400 M_BAD_JSON');
($status, $body) = send_txn('m6', { %{ txn() }, origin => 'third.example' });
is_deeply([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'another origin in the body: 403');
($status, $body) = send_txn('m7', [1, 2]);
is_deeply([$status, $body->{errcode}], [400, 'M_BAD_JSON'], 'an array: 400 M_BAD_JSON');
($status, $body) = $http->request('PUT', '/_matrix/federation/v1/send/m8', txn(), no_auth => 1);
is($status, 401, 'unsigned: 401');

$fed->stop_fake;
done_testing();

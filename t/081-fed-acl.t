# Server ACLs (m.room.server_acl) on what other servers send: a room whose
# ACL denies evil.example takes nothing from it, while remote.example (and
# evil.example in a room without an ACL) goes on as before.  Both servers
# are played by Test::Matrix::Fed (their keys in the cache, their requests
# and events signed here).
#
#   /send        a PDU of the denied room: an error for it, not stored; a
#                PDU of another room in the same transaction: taken; typing
#                and receipts for the denied room dropped, those for the
#                other room applied (the same EDU, for a receipt)
#   make_join, make_leave, make_knock, send_join, send_leave, send_knock,
#   invite       403 M_FORBIDDEN naming the ACL, before anything else is
#                looked at; the same requests of remote.example are served
#
# /state, /state_ids, /event, /event_auth, /backfill and
# /get_missing_events are in t/073.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use JSON::PP;
use Time::HiRes qw(time);

# no fedsender: every key is in the cache already
my ($srv, $fed, $http) = Test::Matrix::Fed->without_fedsender;
my $json = JSON::PP->new->canonical;
my $api = '/_matrix/client/v3';
my $F = '/_matrix/federation/v1';
my $here = $srv->server_name;

my $remote = $fed->key('remote.example');
my $evil = $fed->key('evil.example');
$fed->store($_) for $remote, $evil;

my $bob = '@bob:remote.example';
my $eve = '@eve:evil.example';

# a signed federation request as $key's server
sub fed {
    my ($key, $method, $uri, $content) = @_;
    return $http->request($method, $uri, $content,
                          headers => { Authorization => $fed->xmatrix($key, $method => $uri, $content) });
}

my $txn_n = 0;
sub send_txn {
    my ($key, %o) = @_;
    my $t = { origin => $key->{server}, origin_server_ts => int(time * 1000),
              pdus => $o{pdus} // [], ($o{edus} ? (edus => $o{edus}) : ()) };
    return fed($key, PUT => "$F/send/acl" . ++$txn_n, $t);
}

# an event of $key's server in $room, on the room's current extremities
sub event { $fed->room_event(@_) }
my $ts = int(time * 1000);

sub stored { my ($room, $id) = @_; $srv->redis_cmd('HEXISTS', "mx:{$room}:pdu", $id) }

sub timeline {
    my ($c, $room) = @_;
    my ($s, $j) = $c->get("$api/rooms/" . esc($room) . '/messages?dir=b&limit=50');
    return [ map { $_->{event_id} } @{ $j->{chunk} // [] } ];
}

# --- two public rooms, eve and bob in them -------------------------------------
my $alice = client(token => $srv->make_token(user_id => "\@alice:$here", device_id => 'ADEV'));
my ($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', room_version => '10' });
is($status, 200, 'a room that will have an ACL');
my $room = $body->{room_id};
($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', room_version => '10' });
is($status, 200, 'a room without one');
my $free = $body->{room_id};

my ($ej, $ej_id) = event($evil, $room, type => 'm.room.member', sender => $eve, state_key => $eve,
                         content => { membership => 'join' });
my ($ejf, $ejf_id) = event($evil, $free, type => 'm.room.member', sender => $eve, state_key => $eve,
                           content => { membership => 'join' });
($status, $body) = send_txn($evil, pdus => [$ej, $ejf]);
is_deeply([$status, $body], [200, { pdus => { $ej_id => {}, $ejf_id => {} } }],
          'before any ACL, eve of evil.example joins both rooms') or diag explain $body;
my ($bj, $bj_id) = event($remote, $room, type => 'm.room.member', sender => $bob, state_key => $bob,
                         content => { membership => 'join' });
($status, $body) = send_txn($remote, pdus => [$bj]);
is_deeply([$status, $body], [200, { pdus => { $bj_id => {} } }], 'bob of remote.example joins');

($status) = $alice->put("$api/rooms/" . esc($room) . '/state/m.room.server_acl',
                        { allow => ['*'], deny => ['evil.example'], allow_ip_literals => JSON::PP::false });
is($status, 200, 'alice denies evil.example');

my ($s0, $sync0) = $alice->get("$api/sync");
my $since = $sync0->{next_batch};

# --- /send: PDUs ---------------------------------------------------------------
my ($em, $em_id) = event($evil, $room, sender => $eve, content => { msgtype => 'm.text', body => 'denied' });
my ($emf, $emf_id) = event($evil, $free, sender => $eve, content => { msgtype => 'm.text', body => 'elsewhere' });
my $topic_before = $srv->redis_cmd('HGET', "mx:{$room}:state", "m.room.topic\x1f");
my ($et, $et_id) = event($evil, $room, sender => $eve, type => 'm.room.topic', state_key => '',
                         content => { topic => 'taken over' }, prev_events => [$em_id]);

# EDUs: typing and a receipt in both rooms
my $last = $srv->redis_cmd('SMEMBERS', "mx:{$room}:extrem")->[0];
my $lastf = $srv->redis_cmd('SMEMBERS', "mx:{$free}:extrem")->[0];
my $edus = [
    { edu_type => 'm.typing', content => { room_id => $room, user_id => $eve, typing => JSON::PP::true } },
    { edu_type => 'm.typing', content => { room_id => $free, user_id => $eve, typing => JSON::PP::true } },
    { edu_type => 'm.receipt', content => {
        $room => { 'm.read' => { $eve => { event_ids => [$last], data => { ts => 1 } } } },
        $free => { 'm.read' => { $eve => { event_ids => [$lastf], data => { ts => 1 } } } } } },
];

($status, $body) = send_txn($evil, pdus => [$em, $emf, $et], edus => $edus);
is($status, 200, 'a transaction of evil.example: 200');
like($body->{pdus}{$em_id}{error} // '', qr/server ACL/, 'its message in the denied room: an error naming the ACL');
like($body->{pdus}{$et_id}{error} // '', qr/server ACL/, 'its topic change: the same');
is_deeply($body->{pdus}{$emf_id}, {}, 'its message in the other room: taken');
ok(!stored($room, $em_id) && !stored($room, $et_id), 'nothing of it stored in the denied room');
ok(stored($free, $emf_id), 'the other room has its message');
is($srv->redis_cmd('HGET', "mx:{$room}:state", "m.room.topic\x1f"), $topic_before, 'the topic unchanged');
ok(!(grep { $_ eq $em_id || $_ eq $et_id } @{ timeline($alice, $room) }), "not in alice's /messages");

($status, $body) = $alice->get("$api/sync?since=$since");
my %eph;
for my $r ($room, $free) {
    $eph{$r} = { map { $_->{type} => $_->{content} } @{ $body->{rooms}{join}{$r}{ephemeral}{events} // [] } };
}
is_deeply($eph{$free}{'m.typing'}{user_ids}, [$eve], 'eve types in the other room');
ok(!(grep { $_ eq $eve } @{ $eph{$room}{'m.typing'}{user_ids} // [] }), 'not in the denied room');
ok($eph{$free}{'m.receipt'}{$lastf}{'m.read'}{$eve}, "her receipt in the other room");
ok(!$eph{$room}{'m.receipt'}, 'none in the denied room (the same EDU)');
is($srv->redis_cmd('HEXISTS', "mx:{$room}:receipts", "m.read\x1f$eve\x1f"), 0, 'no receipt of hers kept for it');
is($srv->redis_cmd('HEXISTS', "mx:{$free}:receipts", "m.read\x1f$eve\x1f"), 1, '(as there is for the other)');
my @tl = map { $_->{event_id} } @{ $body->{rooms}{join}{$room}{timeline}{events} // [] };
ok(!(grep { $_ eq $em_id } @tl), "nor in alice's /sync");

# remote.example is not denied
my ($bm, $bm_id) = event($remote, $room, sender => $bob, content => { msgtype => 'm.text', body => 'still here' });
($status, $body) = send_txn($remote, pdus => [$bm],
                            edus => [ { edu_type => 'm.typing',
                                        content => { room_id => $room, user_id => $bob, typing => JSON::PP::true } } ]);
is_deeply([$status, $body], [200, { pdus => { $bm_id => {} } }], "remote.example's message: taken");
is(timeline($alice, $room)->[0], $bm_id, "in alice's /messages");
is_deeply($srv->redis_cmd('HGET', "mx:{$room}:members", $eve), 'join', 'eve is still a member, as far as the room goes');

# --- membership endpoints --------------------------------------------------------
my $eve2 = '@eve2:evil.example';
my $mj = "$F/make_join/" . esc($room) . '/' . esc($eve2) . '?ver=10';
($status, $body) = fed($evil, GET => $mj);
json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'make_join of evil.example: 403');
like($body->{error}, qr/server ACL/, 'because of the ACL');
($status, $body) = fed($evil, GET => "$F/make_join/" . esc($free) . '/' . esc($eve2) . '?ver=10');
is($status, 200, 'make_join of evil.example into the other room: 200');
($status, $body) = fed($remote, GET => "$F/make_join/" . esc($room) . '/' . esc('@bob2:remote.example') . '?ver=10');
is($status, 200, 'make_join of remote.example: 200');

($status, $body) = fed($evil, GET => "$F/make_leave/" . esc($room) . '/' . esc($eve));
json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'make_leave: 403');
like($body->{error}, qr/server ACL/, 'because of the ACL');
($status, $body) = fed($evil, GET => "$F/make_knock/" . esc($room) . '/' . esc($eve2) . '?ver=10');
json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'make_knock: 403');
like($body->{error}, qr/server ACL/, 'because of the ACL');

# events the endpoints would take from anyone else
my ($j2, $j2_id) = event($evil, $room, type => 'm.room.member', sender => $eve2, state_key => $eve2,
                         content => { membership => 'join' });
($status, $body) = fed($evil, PUT => "/_matrix/federation/v2/send_join/" . esc($room) . '/' . esc($j2_id), $j2);
json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'send_join: 403');
like($body->{error}, qr/server ACL/, 'because of the ACL');
ok(!stored($room, $j2_id), 'the join not stored');

my ($lv, $lv_id) = event($evil, $room, type => 'm.room.member', sender => $eve, state_key => $eve,
                         content => { membership => 'leave' });
($status, $body) = fed($evil, PUT => "/_matrix/federation/v2/send_leave/" . esc($room) . '/' . esc($lv_id), $lv);
json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'send_leave: 403');
like($body->{error}, qr/server ACL/, 'because of the ACL');
ok(!stored($room, $lv_id), 'the leave not stored');

my ($kn, $kn_id) = event($evil, $room, type => 'm.room.member', sender => $eve2, state_key => $eve2,
                         content => { membership => 'knock' });
($status, $body) = fed($evil, PUT => "$F/send_knock/" . esc($room) . '/' . esc($kn_id), $kn);
json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'send_knock: 403');
like($body->{error}, qr/server ACL/, 'because of the ACL');

# the same send_join from remote.example is served
my ($rj, $rj_id) = event($remote, $room, type => 'm.room.member', sender => '@bob2:remote.example',
                         state_key => '@bob2:remote.example', content => { membership => 'join' });
($status, $body) = fed($remote, PUT => "/_matrix/federation/v2/send_join/" . esc($room) . '/' . esc($rj_id), $rj);
is($status, 200, 'send_join of remote.example: 200') or diag explain $body;

# an invite into the room: 403 for evil.example; remote.example's is
# countersigned (the room's copy comes with /send)
for my $k ($evil, $remote) {
    my $from = $k == $evil ? $eve : $bob;
    my $inv = { type => 'm.room.member', room_id => $room, sender => $from, state_key => "\@carol:$here",
                content => { membership => 'invite' }, depth => 50, origin_server_ts => $ts++,
                prev_events => $srv->redis_cmd('SMEMBERS', "mx:{$room}:extrem"), auth_events => [] };
    my $iev = $fed->sign_event($k, $inv, '10');
    my $iid = $fed->event_id($iev, '10');
    ($status, $body) = fed($k, PUT => '/_matrix/federation/v2/invite/' . esc($room) . '/' . esc($iid),
                           { room_version => '10', event => $iev, invite_room_state => [] });
    if ($k == $evil) {
        json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'invite of evil.example: 403');
        like($body->{error}, qr/server ACL/, 'because of the ACL');
    } else {
        is($status, 200, 'invite of remote.example: 200') or diag explain $body;
        ok($body->{event}{signatures}{$here}, '... countersigned by this server');
    }
}

# --- the ACL lifted: evil.example is heard again -------------------------------------
($status) = $alice->put("$api/rooms/" . esc($room) . '/state/m.room.server_acl', { allow => ['*'] });
is($status, 200, 'alice lifts the ACL');
my ($em2, $em2_id) = event($evil, $room, sender => $eve, content => { msgtype => 'm.text', body => 'back' });
($status, $body) = send_txn($evil, pdus => [$em2]);
is_deeply([$status, $body], [200, { pdus => { $em2_id => {} } }], 'its message: taken');
($status, $body) = fed($evil, GET => $mj);
is($status, 200, 'make_join: 200');

done_testing();

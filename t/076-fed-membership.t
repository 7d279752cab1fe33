# Membership over federation, the resident side: a user of another server
# (remote.example, played by Test::Matrix::Fed: its key in the cache, its
# requests and events signed here) joins and leaves a room of this server.
#
#   make_join  ─► a template built on the room's state, auth rules checked
#   send_join  ─► the signed event, checked by the roomserver as any remote
#                 event; answered with the state before it and its auth chain
#   make_leave / send_leave the same way, answered {}
#
# The joining side (a local user joining another server's room) needs the
# outbound request jobs and comes later; outbound transactions (fedtx) and
# inbound /send (fedsend) are on other branches, so events after the join
# reaching remote.example are not tested here.

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
my $here = $srv->server_name;

my $remote = $fed->key('remote.example');
$fed->store($remote);
my $other = $fed->key('other.example');
$fed->store($other);

sub fed {
    my ($method, $uri, $content, $key) = @_;
    $key //= $remote;
    return $http->request($method, $uri, $content,
                          headers => { Authorization => $fed->xmatrix($key, $method => $uri, $content) });
}

# the event signed by $key's server as an event of room version $v, and its ID
sub sign_event {
    my ($ev, $key, $v) = @_;
    my $signed = $json->decode($fed->ctl($json->encode($ev), 'sign', '-k', $key->{file},
                                         '-s', $key->{server}, '--room-version', $v));
    my $id = $fed->ctl($json->encode($signed), 'event-id', '--room-version', $v);
    return ($signed, $id);
}

my $alice = client();
my ($status, $body) = $alice->register('alice', 'secret-password-1');
is($status, 200, 'alice registers');
($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', room_version => '10',
                                                     name => 'Open' });
is($status, 200, 'a public room');
my $room = $body->{room_id};
($status, $body) = $alice->post("$api/createRoom", { preset => 'private_chat', room_version => '10' });
my $closed = $body->{room_id};

my $bob = '@bob:remote.example';
my $mj = '/_matrix/federation/v1/make_join';

# --- make_join ----------------------------------------------------------------
my $uri = "$mj/" . esc($room) . '/' . esc($bob) . '?ver=9&ver=10';
($status, $body) = fed(GET => $uri);
is($status, 200, 'make_join: 200') or diag explain $body;
is($body->{room_version}, '10', 'the room version');
my $t = $body->{event};
is($t->{type}, 'm.room.member', 'a member event');
is($t->{sender}, $bob, 'of bob');
is($t->{state_key}, $bob, 'about bob');
is($t->{room_id}, $room, 'in the room');
json_is($t->{content}, { membership => 'join' }, 'joining');
my $extrem = $srv->redis_cmd('SMEMBERS', "mx:{$room}:extrem");
is_deeply([sort @{ $t->{prev_events} }], [sort @$extrem], 'on the forward extremities');
is(scalar @{ $t->{auth_events} }, 3, 'auth events: create, power levels, join rules');
ok($t->{depth} > 1 && $t->{origin_server_ts} > 0, 'depth and timestamp');
ok(!exists $t->{signatures} && !exists $t->{hashes}, 'unsigned: remote.example signs it');

# --- send_join ----------------------------------------------------------------
my ($join, $jid) = sign_event($t, $remote, '10');
my $sj = '/_matrix/federation/v2/send_join/' . esc($room) . '/' . esc($jid);
($status, $body) = fed(PUT => $sj, $join);
is($status, 200, 'send_join: 200') or diag explain $body;
is($body->{origin}, $here, 'origin: this server');
is($body->{members_omitted}, JSON::PP::false, 'no members omitted');
is_deeply([sort @{ $body->{servers_in_room} }], [sort $here, 'remote.example'],
          'servers in the room: both');
is($body->{event}{signatures}{'remote.example'} ? 1 : 0, 1, 'the event as stored');
my %state = map { ("$_->{type}|$_->{state_key}" => $_) } @{ $body->{state} };
ok($state{'m.room.create|'}, 'state: the create event');
ok($state{'m.room.join_rules|'} && $state{'m.room.power_levels|'}, 'join rules, power levels');
is($state{'m.room.name|'}{content}{name}, 'Open', 'the name');
is($state{"m.room.member|\@alice:$here"}{content}{membership}, 'join', "alice's membership");
ok(!$state{"m.room.member|$bob"}, 'the state before the join: no bob');
my %chain = map { ($_->{type} => 1) } @{ $body->{auth_chain} };
ok($chain{'m.room.create'} && $chain{'m.room.power_levels'} && $chain{'m.room.join_rules'},
   'the auth chain: create, power levels, join rules');
ok($chain{'m.room.member'}, "and alice's join");
ok(!(grep { $_->{type} eq 'm.room.name' } @{ $body->{auth_chain} }), 'not the name (no auth event)');

($status, $body) = $alice->get("$api/rooms/" . esc($room) . '/members');
my %m = map { ($_->{state_key} => $_->{content}{membership}) } @{ $body->{chunk} // [] };
is($m{$bob}, 'join', 'bob is a member, as a local /members says');

($status, $body) = fed(PUT => $sj, $join);
is($status, 200, 'send_join again: 200 (stored once)');

# --- refusals -----------------------------------------------------------------
($status, $body) = fed(GET => "$mj/" . esc($room) . '/' . esc('@carol:other.example') . '?ver=10');
is($status, 403, 'make_join for a user of another server: 403');
is($body->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');

($status, $body) = fed(GET => "$mj/" . esc("!nowhere:$here") . '/' . esc($bob) . '?ver=10');
is($status, 404, 'an unknown room: 404');
is($body->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');

($status, $body) = fed(GET => "$mj/" . esc($room) . '/' . esc($bob) . '?ver=1&ver=2');
is($status, 400, 'the room version not offered: 400');
is($body->{errcode}, 'M_INCOMPATIBLE_ROOM_VERSION', 'M_INCOMPATIBLE_ROOM_VERSION');
is($body->{room_version}, '10', "with the room's version");

($status, $body) = fed(GET => "$mj/" . esc($room) . '/' . esc($bob));
is($status, 400, 'no ver: version 1 only, 400');

($status, $body) = fed(GET => "$mj/" . esc($closed) . '/' . esc($bob) . '?ver=10');
is($status, 403, 'an invite-only room: 403');
is($body->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');

# a join of another server's user, sent by remote.example
my $carol = { %$t, sender => '@carol:other.example', state_key => '@carol:other.example' };
my ($cj, $cid) = sign_event($carol, $other, '10');
($status, $body) = fed(PUT => '/_matrix/federation/v2/send_join/' . esc($room) . '/' . esc($cid), $cj);
is($status, 400, 'send_join of another server\'s user: 400');
like($body->{error}, qr/origin/, 'saying why');

# a join under another ID
my $dave = { %$t, sender => '@dave:remote.example', state_key => '@dave:remote.example',
             origin_server_ts => $t->{origin_server_ts} + 1 };
my ($dj, $did) = sign_event($dave, $remote, '10');
($status, $body) = fed(PUT => "$sj", $dj);
is($status, 400, 'an event under another ID: 400');
like($body->{error}, qr/event ID/, 'saying why');

# a signature by a key remote.example does not have (under the same key ID)
my $forger = $fed->key('remote.example', substr($remote->{id}, 8));
my ($fj, $fid) = sign_event($dave, $forger, '10');
($status, $body) = fed(PUT => '/_matrix/federation/v2/send_join/' . esc($room) . '/' . esc($fid), $fj);
is($status, 403, 'a join whose signature does not verify: 403');
like($body->{error}, qr/signature/, 'saying why');
($status, $body) = $alice->get("$api/rooms/" . esc($room) . '/members');
%m = map { ($_->{state_key} => $_->{content}{membership}) } @{ $body->{chunk} // [] };
ok(!exists $m{'@dave:remote.example'}, 'and dave is no member');

# a join into the invite-only room, built by hand: the auth rules refuse it
my $closed_state = { @{ $srv->redis_cmd('HGETALL', "mx:{$closed}:state") } };
my $ce = { %$t, room_id => $closed, prev_events => $srv->redis_cmd('SMEMBERS', "mx:{$closed}:extrem"),
           auth_events => [ map { $closed_state->{"$_\x1f"} } qw(m.room.create m.room.power_levels m.room.join_rules) ] };
my ($cej, $ceid) = sign_event($ce, $remote, '10');
($status, $body) = fed(PUT => '/_matrix/federation/v2/send_join/' . esc($closed) . '/' . esc($ceid), $cej);
is($status, 403, 'send_join into an invite-only room: 403');

# --- make_leave, send_leave --------------------------------------------------
($status, $body) = fed(GET => '/_matrix/federation/v1/make_leave/' . esc($room) . '/' . esc($bob));
is($status, 200, 'make_leave: 200') or diag explain $body;
json_is($body->{event}{content}, { membership => 'leave' }, 'a leave');
my ($leave, $lid) = sign_event($body->{event}, $remote, '10');
($status, $body) = fed(PUT => '/_matrix/federation/v2/send_leave/' . esc($room) . '/' . esc($lid), $leave);
is($status, 200, 'send_leave: 200') or diag explain $body;
json_is($body, {}, 'answered {}');
($status, $body) = $alice->get("$api/rooms/" . esc($room) . '/members');
%m = map { ($_->{state_key} => $_->{content}{membership}) } @{ $body->{chunk} // [] };
is($m{$bob}, 'leave', 'bob has left');

($status, $body) = fed(PUT => '/_matrix/federation/v2/send_leave/' . esc($room) . '/' . esc($jid), $join);
is($status, 400, 'a join sent to send_leave: 400');

# --- invite v2: remote.example invites alice to one of its rooms --------------
my $rroom = '!elsewhere:remote.example';
my $aid = "\@alice:$here";
my $invite = { type => 'm.room.member', room_id => $rroom, sender => $bob, state_key => $aid,
               content => { membership => 'invite' }, depth => 5,
               origin_server_ts => int(time * 1000),
               prev_events => [ '$' . ('P' x 43) ], auth_events => [ '$' . ('A' x 43) ] };
my ($iev, $iid) = sign_event($invite, $remote, '10');
my $stripped = [ { type => 'm.room.name', state_key => '', sender => $bob, content => { name => 'Elsewhere' } },
                 { type => 'm.room.join_rules', state_key => '', sender => $bob,
                   content => { join_rule => 'invite' } } ];
my $iuri = '/_matrix/federation/v2/invite/' . esc($rroom) . '/' . esc($iid);

($status, $body) = fed(PUT => $iuri, { room_version => '10', event => $iev,
                                        invite_room_state => $stripped });
is($status, 200, 'invite: 200') or diag explain $body;
ok($body->{event}{signatures}{$here}, 'countersigned by this server');
ok($body->{event}{signatures}{'remote.example'}, "the inviter's signature kept");
is($fed->ctl($json->encode($body->{event}), 'event-id', '--room-version', '10'), $iid,
   'the same event');

($status, $body) = $alice->get("$api/sync");
my $ir = $body->{rooms}{invite}{$rroom};
ok($ir, "alice's /sync lists the invite") or diag explain $body->{rooms};
my %is = map { ("$_->{type}|$_->{state_key}" => $_) } @{ $ir->{invite_state}{events} // [] };
is($is{'m.room.name|'}{content}{name}, 'Elsewhere', 'with the stripped state');
is($is{"m.room.member|$aid"}{content}{membership}, 'invite', 'and the invite');
is($is{"m.room.member|$aid"}{sender}, $bob, 'from bob');
my $since = $body->{next_batch};

($status, $body) = fed(PUT => $iuri, { room_version => '10', event => $iev,
                                        invite_room_state => $stripped });
is($status, 200, 'the same invite again: 200');
($status, $body) = $alice->get("$api/sync?since=$since");
ok(!$body->{rooms}{invite}{$rroom}, 'not a new invite for /sync');

# refusals
my ($fiev, $fiid) = sign_event({ %$invite, depth => 6 }, $forger, '10');
($status, $body) = fed(PUT => '/_matrix/federation/v2/invite/' . esc($rroom) . '/' . esc($fiid),
                       { room_version => '10', event => $fiev, invite_room_state => [] });
is($status, 403, 'an invite whose signature does not verify: 403');

my ($oev, $oid) = sign_event({ %$invite, state_key => '@zed:other.example' }, $remote, '10');
($status, $body) = fed(PUT => '/_matrix/federation/v2/invite/' . esc($rroom) . '/' . esc($oid),
                       { room_version => '10', event => $oev, invite_room_state => [] });
is($status, 400, 'an invite of a user of another server: 400');

($status, $body) = fed(PUT => $iuri, { room_version => '99', event => $iev, invite_room_state => [] });
is($status, 400, 'an unknown room version: 400');
is($body->{errcode}, 'M_INCOMPATIBLE_ROOM_VERSION', 'M_INCOMPATIBLE_ROOM_VERSION');

($status, $body) = fed(PUT => $iuri, { room_version => '10', event => $iev }, $other);
is($status, 400, 'an invite relayed by another server: 400');

# --- make_knock, send_knock ----------------------------------------------------
($status, $body) = $alice->post("$api/createRoom", { preset => 'private_chat', room_version => '10',
                                                     name => 'Knock first' });
my $kroom = $body->{room_id};
($status) = $alice->put("$api/rooms/" . esc($kroom) . '/state/m.room.join_rules', { join_rule => 'knock' });
is($status, 200, 'a room one knocks on');

($status, $body) = fed(GET => '/_matrix/federation/v1/make_knock/' . esc($room) . '/' . esc($bob) . '?ver=10');
is($status, 403, 'make_knock on a public room: 403 (the auth rules)');

my $mk = '/_matrix/federation/v1/make_knock/' . esc($kroom) . '/' . esc($bob);
($status, $body) = fed(GET => "$mk?ver=9");
is($status, 400, 'make_knock without the version: 400');
is($body->{errcode}, 'M_INCOMPATIBLE_ROOM_VERSION', 'M_INCOMPATIBLE_ROOM_VERSION');

($status, $body) = fed(GET => "$mk?ver=10");
is($status, 200, 'make_knock: 200') or diag explain $body;
json_is($body->{event}{content}, { membership => 'knock' }, 'a knock');
my ($knock, $kid) = sign_event($body->{event}, $remote, '10');
($status, $body) = fed(PUT => '/_matrix/federation/v1/send_knock/' . esc($kroom) . '/' . esc($kid), $knock);
is($status, 200, 'send_knock: 200') or diag explain $body;
my %ks = map { ("$_->{type}|$_->{state_key}" => $_) } @{ $body->{knock_room_state} // [] };
is($ks{'m.room.name|'}{content}{name}, 'Knock first', 'knock_room_state: the name');
is($ks{'m.room.join_rules|'}{content}{join_rule}, 'knock', 'the join rules');
ok($ks{'m.room.create|'}, 'the create event');
ok(!$ks{"m.room.member|\@alice:$here"}, 'no members');
ok(!exists $ks{'m.room.name|'}{signatures}, 'stripped');
is($srv->redis_cmd('HGET', "mx:{$kroom}:members", $bob), 'knock', 'bob knocks, as the room says');

# --- restricted rooms: a member of an allowed room, authorised by alice ------
($status, $body) = fed(GET => "$mj/" . esc($room) . '/' . esc($bob) . '?ver=10');
my ($rejoin, $rjid) = sign_event($body->{event}, $remote, '10');
($status, $body) = fed(PUT => '/_matrix/federation/v2/send_join/' . esc($room) . '/' . esc($rjid), $rejoin);
is($status, 200, 'bob joins the public room again');

($status, $body) = $alice->post("$api/createRoom", { preset => 'private_chat', room_version => '10' });
my $rroom2 = $body->{room_id};
($status) = $alice->put("$api/rooms/" . esc($rroom2) . '/state/m.room.join_rules',
                        { join_rule => 'restricted', allow => [ { type => 'm.room_membership', room_id => $room } ] });
is($status, 200, 'a room restricted to members of the public room');

my $rmj = "$mj/" . esc($rroom2);
($status, $body) = fed(GET => "$rmj/" . esc('@erin:remote.example') . '?ver=10');
is($status, 403, 'make_join of a user in no allowed room: 403');

($status, $body) = fed(GET => "$rmj/" . esc($bob) . '?ver=10');
is($status, 200, 'make_join of a member of the allowed room: 200') or diag explain $body;
is($body->{event}{content}{join_authorised_via_users_server}, "\@alice:$here",
   'authorised by alice, who may invite');
my ($rj, $rjid2) = sign_event($body->{event}, $remote, '10');
($status, $body) = fed(PUT => '/_matrix/federation/v2/send_join/' . esc($rroom2) . '/' . esc($rjid2), $rj);
is($status, 200, 'send_join: 200') or diag explain $body;
ok($body->{event}{signatures}{$here}, 'the join comes back signed by this server too');
ok($body->{event}{signatures}{'remote.example'}, 'and by remote.example');
is($srv->redis_cmd('HGET', "mx:{$rroom2}:members", $bob), 'join', 'bob is a member');

done_testing();

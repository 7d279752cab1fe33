# Serving rooms to other servers: /state, /state_ids, /event, /event_auth,
# /backfill, /get_missing_events, /query/directory and /publicRooms, each
# signed with X-Matrix by a fake remote server.  remote.example has a user
# in the room (a signed join appended to the roomserver's input, as another
# server's events arrive); other.example has none.  Each endpoint: the
# right events in the right order, auth chains complete, 403 for servers
# that may not see the room (or that its server ACL denies), 404 for what
# is unknown, 400 for bad requests, and no change to anything in Redis.

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
my $F = '/_matrix/federation/v1';

my $remote = $fed->key('remote.example');
my $other = $fed->key('other.example');
$fed->store($_) for $remote, $other;

# a signed federation request as $key's server
sub fed {
    my ($key, $method, $uri, $body) = @_;
    my $content = ref $body ? $body : undef;
    my $auth = $fed->xmatrix($key, $method => $uri, $content);
    return $http->request($method, $uri, $body, headers => { Authorization => $auth }, no_auth => 1);
}

sub pdu { my ($room, $id) = @_; $json->decode($srv->redis_cmd('HGET', "mx:{$room}:pdu", $id)) }

# the event ID of a PDU (room version 10)
sub eid { return scalar $fed->ctl($json->encode($_[0]), 'event-id', '--room-version', '10') }

sub refs { [map { ref $_ ? $_->[0] : $_ } @{ $_[0] // [] }] }

# the auth chain of some events, computed here from the stored PDUs
sub chain_of {
    my ($room, @ids) = @_;
    my (%seen, @queue);
    push @queue, @{ refs(pdu($room, $_)->{auth_events}) } for @ids;
    while (defined(my $id = shift @queue)) {
        next if $seen{$id}++;
        push @queue, @{ refs(pdu($room, $id)->{auth_events}) };
    }
    return [sort keys %seen];
}

# every key in Redis with its serialized value: requests must not change
# it (streams left out: the daemons' consumer groups move on their own)
sub snapshot {
    my %s;
    for my $k (@{ $srv->redis_cmd('KEYS', '*') }) {
        next if $srv->redis_cmd('TYPE', $k) eq 'stream';
        $s{$k} = unpack('H*', $srv->redis_cmd('DUMP', $k));
    }
    return \%s;
}

# --- a room with some history, and bob of remote.example in it --------------
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost', device_id => 'ADEV'));
my ($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', room_version => '10',
                                                       room_alias_name => 'pub', topic => 'first',
                                                       visibility => 'public', name => 'Pub' });
is($status, 200, 'alice makes a room');
my $room = $body->{room_id};

sub say {
    my ($c, $room, $text) = @_;
    my ($s, $b) = $c->put("$api/rooms/" . esc($room) . '/send/m.room.message/' . rand(), { msgtype => 'm.text', body => $text });
    die "send: $s" unless $s == 200;
    return $b->{event_id};
}

my $m1 = say($alice, $room, 'one');
my $m2 = say($alice, $room, 'two');
my $m3 = say($alice, $room, 'three');

my $shard = $fed->ctl('', 'shard', $room, 4);

# a remote user's join, signed by remote.example, into the roomserver's input
sub remote_join {
    my ($room, $user) = @_;
    my $state = { @{ $srv->redis_cmd('HGETALL', "mx:{$room}:state") } };
    my @auth = map { $state->{"m.room.$_\x1f"} } qw(create power_levels join_rules);
    my $depth = $srv->redis_cmd('HGET', "mx:{$room}:room", 'depth');
    my $ev = { type => 'm.room.member', state_key => $user, sender => $user, room_id => $room,
               content => { membership => 'join' }, prev_events => $srv->redis_cmd('SMEMBERS', "mx:{$room}:extrem"),
               auth_events => \@auth, depth => $depth + 1, origin_server_ts => int(time * 1000),
               origin => 'remote.example' };
    my $text = $fed->ctl($json->encode($ev), 'sign', '-k', $remote->{file}, '-s', 'remote.example',
                         '--room-version', '10');
    my $id = $fed->ctl($text, 'event-id', '--room-version', '10');
    $srv->redis_cmd('XADD', "mx:input:" . $fed->ctl('', 'shard', $room, 4), '*', kind => 'event', room => $room,
                    event_id => $id, event => $text, origin => 'remote.example');
    ok(wait_for(sub { $srv->redis_cmd('HEXISTS', "mx:{$room}:spos", $id) }, 10), "$user joins: stored and placed");
    unlike($srv->redis_cmd('HGET', "mx:{$room}:meta", $id), qr/ \S*r\S*$/, 'not rejected');
    return $id;
}

my $join = remote_join($room, '@bob:remote.example');
is($srv->redis_cmd('HGET', "mx:{$room}:members", '@bob:remote.example'), 'join', 'bob is a member');

my $m4 = say($alice, $room, 'four');
($status, $body) = $alice->put("$api/rooms/" . esc($room) . '/state/m.room.topic', { topic => 'second' });
is($status, 200, 'the topic changes');
my $t2 = $body->{event_id};
my $m5 = say($alice, $room, 'five');
($status) = $alice->put("$api/rooms/" . esc($room) . "/redact/$m2/r1", { reason => 'oops' });
is($status, 200, 'm2 is redacted');
ok(wait_for(sub { $srv->redis_cmd('HEXISTS', "mx:{$room}:redactions", $m2) }, 10), 'the redaction is stored');

my $state = { @{ $srv->redis_cmd('HGETALL', "mx:{$room}:state") } };
# the first topic: the one createRoom set
my ($t1) = grep { my $e = pdu($room, $_); $e->{type} eq 'm.room.topic' && $e->{content}{topic} eq 'first' }
           @{ $srv->redis_cmd('HKEYS', "mx:{$room}:pdu") };
ok($t1, 'the first topic event');

my $before = snapshot();

# --- /state_ids and /state ----------------------------------------------------
my $u = "$F/state_ids/" . esc($room) . '?event_id=' . esc($m5);
($status, $body) = fed($remote, GET => $u);
is($status, 200, 'state_ids: 200');
my @expect = map { $state->{$_} } sort keys %$state;
json_is($body->{pdu_ids}, \@expect, 'state_ids: the state at a message (sorted by type and key)');
json_is($body->{auth_chain_ids} && [sort @{ $body->{auth_chain_ids} }], chain_of($room, @expect),
        'state_ids: the auth chain of the state, complete');
my %have = map { $_ => 1 } @{ $body->{pdu_ids} }, @{ $body->{auth_chain_ids} };
ok(!(grep { !$have{$_} } map { @{ refs(pdu($room, $_)->{auth_events}) } } keys %have),
   'state_ids: every auth event of every event given is given');

$u = "$F/state_ids/" . esc($room) . '?event_id=' . esc($t2);
($status, $body) = fed($remote, GET => $u);
is($status, 200, 'state_ids at a state event: 200');
ok((grep { $_ eq $t1 } @{ $body->{pdu_ids} }) && !(grep { $_ eq $t2 } @{ $body->{pdu_ids} }),
   'the state before it: the old topic, not the event itself');
is(scalar @{ $body->{pdu_ids} }, scalar @expect, 'and the rest of the state');

$u = "$F/state_ids/" . esc($room) . '?event_id=' . esc($join);
($status, $body) = fed($remote, GET => $u);
ok(!(grep { $_ eq $join } @{ $body->{pdu_ids} }), 'the state before a join does not hold the join');
is(scalar @{ $body->{pdu_ids} }, scalar(@expect) - 1, 'one member fewer');

$u = "$F/state/" . esc($room) . '?event_id=' . esc($m5);
($status, $body) = fed($remote, GET => $u);
is($status, 200, 'state: 200');
json_is($body->{pdus}, [map { pdu($room, $_) } @expect], 'state: the PDUs as stored');
json_is([sort map { $_->{content}{topic} // () } @{ $body->{pdus} }], ['second'], 'the topic at m5');
my @chain = @{ $body->{auth_chain} };
json_is([sort map { eid($_) } @chain],
        chain_of($room, @expect), 'state: the auth chain, as PDUs whose IDs are the chain');
ok(!(grep { $chain[$_ - 1]{depth} > $chain[$_]{depth} } 1 .. $#chain), 'the auth chain by depth');

# --- /event --------------------------------------------------------------------
$u = "$F/event/" . esc($m4);
($status, $body) = fed($remote, GET => $u);
is($status, 200, 'event: 200');
is($body->{origin}, 'localhost', 'a transaction from this server');
ok($body->{origin_server_ts} > 1e12, 'with a timestamp');
json_is($body->{pdus}, [pdu($room, $m4)], 'holding the PDU as stored');
ok(!exists $body->{pdus}[0]{event_id} && !exists $body->{pdus}[0]{unsigned}, 'in the federation format');

($status, $body) = fed($remote, GET => "$F/event/" . esc($m2));
is($status, 200, 'a redacted event: 200');
json_is($body->{pdus}[0]{content}, {}, 'served redacted');
json_is($body->{pdus}[0]{signatures}, pdu($room, $m2)->{signatures}, 'signatures kept');

# --- /event_auth ---------------------------------------------------------------
$u = "$F/event_auth/" . esc($room) . '/' . esc($m4);
($status, $body) = fed($remote, GET => $u);
is($status, 200, 'event_auth: 200');
my @ids = map { eid($_) } @{ $body->{auth_chain} };
json_is([sort @ids], chain_of($room, $m4), 'the auth chain of the event');
ok(!(grep { $_ eq $m4 } @ids), 'without the event itself');

# --- /backfill -----------------------------------------------------------------
my @timeline = reverse @{ $srv->redis_cmd('ZRANGE', "mx:{$room}:timeline", 0, -1) };
$u = "$F/backfill/" . esc($room) . '?v=' . esc($m5) . '&limit=3';
($status, $body) = fed($remote, GET => $u);
is($status, 200, 'backfill: 200');
is($body->{origin}, 'localhost', 'a transaction');
my @got = map { eid($_) } @{ $body->{pdus} };
json_is(\@got, [$m5, $t2, $m4], 'the event and those before it, newest first');

$u = "$F/backfill/" . esc($room) . '?v=' . esc($m5) . '&limit=1000';
($status, $body) = fed($remote, GET => $u);
is(scalar @{ $body->{pdus} }, @timeline - 1, 'a limit past 100 is clamped: the whole room up to m5 (it is small)');
is($body->{pdus}[-1]{type}, 'm.room.create', 'down to the create event');
my @d = map { $_->{depth} } @{ $body->{pdus} };
ok(!(grep { $d[$_ - 1] < $d[$_] } 1 .. $#d), 'deepest first');
my ($red) = grep { ($_->{type} eq 'm.room.message') && !%{ $_->{content} } } @{ $body->{pdus} };
ok($red, 'the redacted message is served redacted');

$u = "$F/backfill/" . esc($room) . '?v=' . esc($m5) . '&v=' . esc($m3) . '&limit=0';
($status, $body) = fed($remote, GET => $u);
is(scalar @{ $body->{pdus} }, 1, 'limit 0 is clamped to 1');
$u = "$F/backfill/" . esc($room) . '?v=' . esc($m3) . ',' . esc($m4) . '&limit=2';
($status, $body) = fed($remote, GET => $u);
@got = map { eid($_) } @{ $body->{pdus} };
json_is(\@got, [$m4, $join], 'v as a comma-separated list');

# --- /get_missing_events -------------------------------------------------------
$u = "$F/get_missing_events/" . esc($room);
($status, $body) = fed($remote, POST => $u, { earliest_events => [$m3], latest_events => [$m5], limit => 10 });
is($status, 200, 'get_missing_events: 200');
@got = map { eid($_) } @{ $body->{events} };
json_is(\@got, [$join, $m4, $t2], 'the events between, oldest first, not past the earliest');

($status, $body) = fed($remote, POST => $u, { earliest_events => [$m3], latest_events => [$m5], limit => 1 });
@got = map { eid($_) } @{ $body->{events} };
json_is(\@got, [$t2], 'limit 1: the nearest');

($status, $body) = fed($remote, POST => $u, { earliest_events => [$m3], latest_events => [$m5],
                                              min_depth => pdu($room, $m4)->{depth} });
@got = map { eid($_) } @{ $body->{events} };
json_is(\@got, [$m4, $t2], 'min_depth: nothing below it');

($status, $body) = fed($remote, POST => $u, { earliest_events => [], latest_events => [$m5], limit => 500 });
is(scalar @{ $body->{events} }, @timeline - 2, 'a limit past 20: all there is (up to 20)');

# --- who may see ----------------------------------------------------------------
for my $t (["$F/state_ids/" . esc($room) . '?event_id=' . esc($m5), 'GET'],
           ["$F/state/" . esc($room) . '?event_id=' . esc($m5), 'GET'],
           ["$F/event_auth/" . esc($room) . '/' . esc($m5), 'GET'],
           ["$F/backfill/" . esc($room) . '?v=' . esc($m5) . '&limit=5', 'GET'],
           ["$F/get_missing_events/" . esc($room), 'POST', { earliest_events => [], latest_events => [$m5] }]) {
    ($status, $body) = fed($other, $t->[1], $t->[0], $t->[2]);
    json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], "a server with nobody in the room: 403 ($t->[0])");
}
($status, $body) = fed($other, GET => "$F/event/" . esc($m4));
json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'nor any of its events');

# --- unknown rooms and events --------------------------------------------------
my $nope = '!nope:localhost';
my $nev = '$' . ('A' x 43);
for my $t (["$F/state_ids/" . esc($nope) . '?event_id=' . esc($m5), 'GET'],
           ["$F/state_ids/" . esc($room) . '?event_id=' . esc($nev), 'GET'],
           ["$F/state/" . esc($room) . '?event_id=' . esc($nev), 'GET'],
           ["$F/event/" . esc($nev), 'GET'],
           ["$F/event_auth/" . esc($room) . '/' . esc($nev), 'GET'],
           ["$F/event_auth/" . esc($nope) . '/' . esc($m5), 'GET'],
           ["$F/backfill/" . esc($room) . '?v=' . esc($nev) . '&limit=5', 'GET'],
           ["$F/backfill/" . esc($nope) . '?v=' . esc($m5) . '&limit=5', 'GET'],
           ["$F/get_missing_events/" . esc($room), 'POST', { earliest_events => [], latest_events => [$nev] }]) {
    ($status, $body) = fed($remote, $t->[1], $t->[0], $t->[2]);
    json_is([$status, $body->{errcode}], [404, 'M_NOT_FOUND'], "unknown: 404 ($t->[0])");
}

# --- bad requests ----------------------------------------------------------------
for my $t (["$F/state_ids/" . esc($room), 'GET', undef, 'M_MISSING_PARAM'],
           ["$F/state/" . esc($room) . '?event_id=', 'GET', undef, 'M_MISSING_PARAM'],
           ["$F/state_ids/notaroom?event_id=" . esc($m5), 'GET', undef, 'M_INVALID_PARAM'],
           ["$F/state_ids/" . esc($room) . '?event_id=nope', 'GET', undef, 'M_INVALID_PARAM'],
           ["$F/backfill/" . esc($room) . '?limit=5', 'GET', undef, 'M_MISSING_PARAM'],
           ["$F/backfill/" . esc($room) . '?v=' . esc($m5), 'GET', undef, 'M_MISSING_PARAM'],
           ["$F/backfill/" . esc($room) . '?v=' . esc($m5) . '&limit=ten', 'GET', undef, 'M_INVALID_PARAM'],
           ["$F/get_missing_events/" . esc($room), 'POST', '{"latest_events":', 'M_NOT_JSON'],
           ["$F/get_missing_events/" . esc($room), 'POST', '', 'M_NOT_JSON'],
           ["$F/get_missing_events/" . esc($room), 'POST', { earliest_events => [] }, 'M_MISSING_PARAM'],
           ["$F/get_missing_events/" . esc($room), 'POST', { latest_events => [$m5] }, 'M_MISSING_PARAM'],
           ["$F/get_missing_events/" . esc($room), 'POST', { earliest_events => [], latest_events => $m5 }, 'M_BAD_JSON'],
           ["$F/get_missing_events/" . esc($room), 'POST', { earliest_events => [1], latest_events => [$m5] }, 'M_BAD_JSON'],
           ["$F/get_missing_events/" . esc($room), 'POST', { earliest_events => [], latest_events => [$m5], limit => 'x' }, 'M_BAD_JSON'],
           ["$F/get_missing_events/" . esc($room), 'POST', { earliest_events => [], latest_events => [$m5], min_depth => '1' }, 'M_BAD_JSON']) {
    my ($uri, $m, $b, $code) = @$t;
    if (defined $b && !ref $b) {
        # a body that is not JSON (nothing to sign as content)
        my $auth = $fed->xmatrix($remote, $m => $uri);
        ($status, $body) = $http->request($m, $uri, $b, headers => { Authorization => $auth }, no_auth => 1);
    } else {
        ($status, $body) = fed($remote, $m, $uri, $b);
    }
    json_is([$status, $body->{errcode}], [400, $code], "bad request: $code ($uri " . ($b ? $json->encode($b) : '') . ')');
}

($status, $body) = $http->request('GET', "$F/event/" . esc($m4), undef, no_auth => 1);
is($status, 401, 'unsigned: 401');

# --- /query/directory and /publicRooms ----------------------------------------
$u = "$F/query/directory?room_alias=" . esc('#pub:localhost');
($status, $body) = fed($other, GET => $u);
json_is([$status, $body], [200, { room_id => $room, servers => ['localhost', 'remote.example'] }],
        'query/directory: the room and the servers in it, this one first');
($status, $body) = fed($other, GET => "$F/query/directory?room_alias=" . esc('#nope:localhost'));
json_is([$status, $body->{errcode}], [404, 'M_NOT_FOUND'], 'an unknown alias: 404');
($status, $body) = fed($other, GET => "$F/query/directory?room_alias=" . esc('#pub:elsewhere.org'));
json_is([$status, $body->{errcode}], [400, 'M_INVALID_PARAM'], 'an alias of another server: 400');
($status, $body) = fed($other, GET => "$F/query/directory");
json_is([$status, $body->{errcode}], [400, 'M_MISSING_PARAM'], 'no alias: 400');
($status, $body) = $alice->get("$api/directory/room/" . esc('#pub:localhost'));
json_is($body->{servers}, ['localhost', 'remote.example'], 'the client API lists the same servers');

($status, $body) = fed($other, GET => "$F/publicRooms");
is($status, 200, 'publicRooms: 200');
my ($listed) = grep { $_->{room_id} eq $room } @{ $body->{chunk} };
ok($listed && $listed->{num_joined_members} == 2 && $listed->{name} eq 'Pub', 'the room, with both members');
($status, $body) = fed($other, POST => "$F/publicRooms", { limit => 5, filter => { generic_search_term => 'pub' } });
is(scalar(grep { $_->{room_id} eq $room } @{ $body->{chunk} }), 1, 'POST publicRooms: filtered');
($status, $body) = fed($other, POST => "$F/publicRooms", { filter => { generic_search_term => 'zzz' } });
json_is($body->{chunk}, [], 'a filter that matches nothing');
($status, $body) = fed($other, POST => "$F/publicRooms", { limit => 'x' });
json_is([$status, $body->{errcode}], [400, 'M_BAD_JSON'], 'a limit that is no number: 400');

my $now = snapshot();
my @changed = grep { ($before->{$_} // '') ne ($now->{$_} // '') } sort(keys %$before, keys %$now);
json_is(\@changed, [], 'nothing in Redis changed');

# --- history visibility: events a server's users may not see ------------------
($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', room_version => '10',
    initial_state => [{ type => 'm.room.history_visibility', state_key => '', content => { history_visibility => 'joined' } }] });
my $hroom = $body->{room_id};
my $secret = say($alice, $hroom, 'before bob');
my $hjoin = remote_join($hroom, '@bob:remote.example');
my $after = say($alice, $hroom, 'after bob');
($status, $body) = fed($remote, GET => "$F/event/" . esc($after));
is($status, 200, 'joined visibility: an event after the join is visible');
($status, $body) = fed($remote, GET => "$F/event/" . esc($secret));
json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'one before it is not');
($status, $body) = fed($remote, GET => "$F/backfill/" . esc($hroom) . '?v=' . esc($after) . '&limit=3');
is($status, 200, 'backfill across the join: 200');
@got = map { eid($_) } @{ $body->{pdus} };
json_is(\@got, [$after, $hjoin, $secret], 'the graph stays whole');
is($body->{pdus}[0]{content}{body}, 'after bob', 'the visible event in full');
json_is($body->{pdus}[2]{content}, {}, 'the hidden one redacted');

my @more = map { say($alice, $hroom, "more $_") } 1 .. 22;
($status, $body) = fed($remote, POST => "$F/get_missing_events/" . esc($hroom),
                       { earliest_events => [], latest_events => [$more[-1]], limit => 500 });
@got = map { eid($_) } @{ $body->{events} };
json_is(\@got, [@more[1 .. 20]], 'get_missing_events: a limit past 20 is clamped to 20');

# world_readable: any server may read what is sent while it holds
($status) = $alice->put("$api/rooms/" . esc($hroom) . '/state/m.room.history_visibility',
                        { history_visibility => 'world_readable' });
is($status, 200, 'the room becomes world_readable');
my $open = say($alice, $hroom, 'for everyone');
($status, $body) = fed($other, GET => "$F/event/" . esc($open));
json_is([$status, $body->{pdus}[0]{content}{body}], [200, 'for everyone'],
        'world_readable: a server with nobody in the room reads the event');
($status, $body) = fed($other, GET => "$F/state_ids/" . esc($hroom) . '?event_id=' . esc($open));
is($status, 200, 'and the state at it');
($status, $body) = fed($other, GET => "$F/event/" . esc($more[0]));
json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'but not what was sent before');

# room version 1: prev_events and auth_events as [id, hashes] pairs
($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', room_version => '1',
    initial_state => [{ type => 'm.room.history_visibility', state_key => '', content => { history_visibility => 'world_readable' } }] });
is($status, 200, 'a room of version 1');
my $v1 = $body->{room_id};
my @v1 = map { say($alice, $v1, "old $_") } 1 .. 3;
($status, $body) = fed($other, GET => "$F/backfill/" . esc($v1) . '?v=' . esc($v1[2]) . '&limit=3');
json_is([map { $_->{event_id} } @{ $body->{pdus} }], [reverse @v1], 'backfill walks v1 prev_events');
($status, $body) = fed($other, GET => "$F/state_ids/" . esc($v1) . '?event_id=' . esc($v1[2]));
is($status, 200, 'state_ids in a v1 room');
json_is([sort @{ $body->{auth_chain_ids} }], chain_of($v1, @{ $body->{pdu_ids} }), 'its auth chain, from v1 pairs');

# --- server ACLs ------------------------------------------------------------------
($status) = $alice->put("$api/rooms/" . esc($room) . '/state/m.room.server_acl',
                        { allow => ['*'], deny => ['evil.example', 'other.*'] });
is($status, 200, 'an ACL denying other servers');
$u = "$F/state_ids/" . esc($room) . '?event_id=' . esc($m5);
($status, $body) = fed($remote, GET => $u);
is($status, 200, 'remote.example is still allowed');
($status, $body) = fed($other, GET => $u);
json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], 'other.example: 403');
like($body->{error}, qr/ACL/, 'because of the ACL');

($status) = $alice->put("$api/rooms/" . esc($room) . '/state/m.room.server_acl',
                        { allow => ['*.org'], deny => [] });
is($status, 200, 'an ACL allowing only *.org');
for my $t (["$F/state_ids/" . esc($room) . '?event_id=' . esc($m5), 'GET'],
           ["$F/state_ids/" . esc($room) . '?event_id=' . esc($nev), 'GET'],
           ["$F/event/" . esc($m4), 'GET'],
           ["$F/event_auth/" . esc($room) . '/' . esc($m5), 'GET'],
           ["$F/backfill/" . esc($room) . '?v=' . esc($m5) . '&limit=5', 'GET'],
           ["$F/get_missing_events/" . esc($room), 'POST', { earliest_events => [], latest_events => [$m5] }]) {
    ($status, $body) = fed($remote, $t->[1], $t->[0], $t->[2]);
    json_is([$status, $body->{errcode}], [403, 'M_FORBIDDEN'], "denied by the ACL, member or not: 403 ($t->[0])");
}
($status, $body) = fed($remote, GET => "$F/event/" . esc($after));
is($status, 200, 'the ACL is of that room only');

done_testing();

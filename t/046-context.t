# /context around an event, /timestamp_to_event in both directions, and
# /forget of a room one has left.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Time::HiRes qw(sleep time);

my $srv = server();
my $api = '/_matrix/client/v3';
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost'));
my $bob = client(token => $srv->make_token(user_id => '@bob:localhost'));

my ($status, $json) = $alice->post("$api/createRoom", { preset => 'public_chat' });
my $r = $json->{room_id};
$bob->post("$api/rooms/$r/join", {});

my (@ids, @ts);
for my $i (1 .. 20) {
    ($status, $json) = $alice->put("$api/rooms/$r/send/m.room.message/c$i", { body => "n$i" });
    push @ids, $json->{event_id};
    ($status, my $ev) = $alice->get("$api/rooms/$r/event/$json->{event_id}");
    push @ts, $ev->{origin_server_ts};
    sleep 0.003;
}

# --- context --------------------------------------------------------------------

($status, $json) = $alice->get("$api/rooms/$r/context/$ids[9]?limit=6");
is($status, 200, 'context');
is($json->{event}{content}{body}, 'n10', 'the event');
is_deeply([map { $_->{content}{body} } @{ $json->{events_before} }], ['n9', 'n8', 'n7'], 'three before, newest first');
is_deeply([map { $_->{content}{body} } @{ $json->{events_after} }], ['n11', 'n12', 'n13'], 'three after');
ok((grep { $_->{type} eq 'm.room.create' } @{ $json->{state} }), 'the state');
like($json->{start}, qr/^p\d+$/, 'a start token');

# the tokens continue with /messages
($status, my $more) = $alice->get("$api/rooms/$r/messages?dir=b&limit=2&from=$json->{start}");
is_deeply([map { $_->{content}{body} } @{ $more->{chunk} }], ['n6', 'n5'], 'start goes on backwards');
($status, $more) = $alice->get("$api/rooms/$r/messages?dir=f&limit=2&from=$json->{end}");
is_deeply([map { $_->{content}{body} } @{ $more->{chunk} }], ['n14', 'n15'], 'end goes on forwards');

($status, $json) = $alice->get("$api/rooms/$r/context/\$nope");
is($status, 404, 'an unknown event: 404');
my $eve = client(token => $srv->make_token(user_id => '@eve:localhost'));
($status, $json) = $eve->get("$api/rooms/$r/context/$ids[0]");
is($status, 403, 'a stranger: 403');
($status, $json) = $alice->get("$api/rooms/$r/context/$ids[0]?limit=x");
is($status, 400, 'a bad limit: 400');

# --- timestamp_to_event -------------------------------------------------------------

my $tsp = '/_matrix/client/v1';
($status, $json) = $alice->get("$tsp/rooms/$r/timestamp_to_event?ts=$ts[5]&dir=f");
is($status, 200, 'timestamp_to_event');
is($json->{event_id}, $ids[5], 'forwards from an event\'s own time: that event');
is($json->{origin_server_ts}, $ts[5], 'with its timestamp');

($status, $json) = $alice->get("$tsp/rooms/$r/timestamp_to_event?ts=" . ($ts[5] + 1) . '&dir=b');
is($json->{event_id}, $ids[5], 'backwards from just after it: that event');
($status, $json) = $alice->get("$tsp/rooms/$r/timestamp_to_event?ts=" . ($ts[5] + 1) . '&dir=f');
is($json->{event_id}, $ids[6], 'forwards from just after it: the next');

($status, $json) = $alice->get("$tsp/rooms/$r/timestamp_to_event?ts=" . ($ts[-1] + 100000) . '&dir=f');
is($status, 404, 'nothing after the last event: 404');
is($json->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');
($status, $json) = $alice->get("$tsp/rooms/$r/timestamp_to_event?ts=1&dir=b");
is($status, 404, 'nothing before the room: 404');
($status, $json) = $alice->get("$tsp/rooms/$r/timestamp_to_event?ts=abc&dir=f");
is($status, 400, 'a bad ts: 400');
($status, $json) = $alice->get("$tsp/rooms/$r/timestamp_to_event?ts=1&dir=x");
is($status, 400, 'a bad dir: 400');
($status, $json) = $eve->get("$tsp/rooms/$r/timestamp_to_event?ts=$ts[0]&dir=f");
is($status, 403, 'a stranger: 403');

# --- forget -----------------------------------------------------------------------

($status, $json) = $bob->post("$api/rooms/$r/forget", {});
is($status, 400, 'forgetting a room one is in: 400');
$bob->post("$api/rooms/$r/leave", {});
ok(wait_for(sub { ($srv->redis_cmd('HGET', 'mx:{@bob:localhost}:rooms', $r) // '') =~ /^leave / }, 5),
   'bob has left');
($status, $json) = $bob->post("$api/rooms/$r/forget", {});
is($status, 200, 'then he may forget it');
ok(!defined $srv->redis_cmd('HGET', 'mx:{@bob:localhost}:rooms', $r), 'it is gone from his rooms');

done_testing();

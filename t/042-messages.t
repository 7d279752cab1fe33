# /messages: 1,000 events walked back in pages with no gap and no
# duplicate, then forwards again; limits, filters, redacted events, bad
# tokens, and users who may not read the room.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost', device_id => 'ADEV'));
my $bob = client(token => $srv->make_token(user_id => '@bob:localhost', device_id => 'BDEV'));
my $api = '/_matrix/client/v3';

my ($status, $json) = $alice->post("$api/createRoom", { preset => 'public_chat' });
my $r = $json->{room_id};
$bob->post("$api/rooms/$r/join", {});

my $N = 1000;
my @sent;
for my $i (1 .. $N) {
    my $who = $i % 10 == 0 ? $bob : $alice;
    my $type = $i % 7 == 0 ? 'org.example.other' : 'm.room.message';
    ($status, $json) = $who->put("$api/rooms/$r/send/$type/t$i", { msgtype => 'm.text', body => "message $i" });
    die "send $i: $status" unless $status == 200;
    push @sent, $json->{event_id};
}
pass("$N events sent");

# --- backwards, in pages of 37 ------------------------------------------------

my (@seen, $from, $pages);
while (1) {
    my $q = "dir=b&limit=37" . (defined $from ? "&from=$from" : '');
    ($status, $json) = $alice->get("$api/rooms/$r/messages?$q");
    die "page: $status" unless $status == 200;
    $pages++;
    push @seen, map { $_->{event_id} } @{ $json->{chunk} };
    last unless defined $json->{end};
    die 'start must be where the page began' if defined $from && $json->{start} ne $from;
    $from = $json->{end};
    last if $pages > 100;
}

my %count;
$count{$_}++ for @seen;
is(scalar(grep { $count{$_} > 1 } keys %count), 0, 'walking back: no duplicate');
is_deeply([ @seen[0 .. $N - 1] ], [ reverse @sent ], 'the sent events, newest first, none missing');
ok(@seen > $N, 'and then the room\'s first events');
($status, $json) = $alice->get("$api/rooms/$r/event/$seen[-1]");
is($json->{type}, 'm.room.create', 'ends at the create event');
ok($pages >= int($N / 37), "in $pages pages");

# --- forwards from the start -----------------------------------------------------

my @fwd;
$from = undef;
for (1 .. 100) {
    ($status, $json) = $alice->get("$api/rooms/$r/messages?dir=f&limit=250" . (defined $from ? "&from=$from" : ''));
    push @fwd, map { $_->{event_id} } @{ $json->{chunk} };
    last unless defined $json->{end};
    $from = $json->{end};
}
is_deeply(\@fwd, [ reverse @seen ], 'forwards: the same events, oldest first');

# --- limits, to, filters -----------------------------------------------------------

($status, $json) = $alice->get("$api/rooms/$r/messages?dir=b");
is(scalar @{ $json->{chunk} }, 10, 'the default limit is 10');
is($json->{chunk}[0]{content}{body}, "message $N", 'newest first');
is($json->{chunk}[0]{type}, 'm.room.message', 'client format: type');
ok(!exists $json->{chunk}[0]{hashes}, 'client format: no hashes');

my $mid = $json->{end};
($status, $json) = $alice->get("$api/rooms/$r/messages?dir=b&from=$mid&to=$mid");
is(scalar @{ $json->{chunk} }, 0, 'from = to: nothing');

my $f = '{"types":["m.room.message"],"not_senders":["@bob:localhost"]}';
(my $fe = $f) =~ s/([^A-Za-z0-9])/sprintf('%%%02X', ord $1)/ge;
($status, $json) = $alice->get("$api/rooms/$r/messages?dir=b&limit=50&filter=$fe");
is($status, 200, 'a filter');
ok(@{ $json->{chunk} } > 30 && @{ $json->{chunk} } < 50, 'the filter drops some of the 50');
is(scalar(grep { $_->{type} ne 'm.room.message' || $_->{sender} eq '@bob:localhost' } @{ $json->{chunk} }), 0,
   'only messages, none of bob\'s');

($fe = '{"limit":3}') =~ s/([^A-Za-z0-9])/sprintf('%%%02X', ord $1)/ge;
($status, $json) = $alice->get("$api/rooms/$r/messages?dir=b&filter=$fe");
is(scalar @{ $json->{chunk} }, 3, 'the filter\'s limit when none is given');

($status, $json) = $alice->get("$api/rooms/$r/messages?dir=b&filter=%7B%22limit%22%3A%22x%22%7D");
is($status, 400, 'a bad filter: 400');
is($json->{errcode}, 'M_BAD_JSON', 'M_BAD_JSON');

# --- redacted events ------------------------------------------------------------------

($status, $json) = $alice->put("$api/rooms/$r/redact/$sent[-1]/red1", { reason => 'no' });
is($status, 200, 'the newest message redacted');
($status, $json) = $alice->get("$api/rooms/$r/messages?dir=b&limit=2");
my ($redaction, $target) = @{ $json->{chunk} };
is($redaction->{type}, 'm.room.redaction', 'the redaction is in the timeline');
is($target->{event_id}, $sent[-1], 'then its target');
is_deeply($target->{content}, {}, 'served redacted');
is($target->{unsigned}{redacted_because}{event_id}, $redaction->{event_id}, 'redacted_because names the redaction');

# --- refusals ---------------------------------------------------------------------------

for my $bad ('x', 'p', 'p12x', 'q12', 'p99999999999999999999999') {
    ($status, $json) = $alice->get("$api/rooms/$r/messages?dir=b&from=$bad");
    is($status, 400, "from=$bad: 400");
    is($json->{errcode}, 'M_INVALID_PARAM', "from=$bad: M_INVALID_PARAM");
}
($status, $json) = $alice->get("$api/rooms/$r/messages?dir=x");
is($status, 400, 'dir=x: 400');
($status, $json) = $alice->get("$api/rooms/$r/messages?dir=b&limit=abc");
is($status, 400, 'limit=abc: 400');

my $eve = client(token => $srv->make_token(user_id => '@eve:localhost'));
($status, $json) = $eve->get("$api/rooms/$r/messages?dir=b");
is($status, 403, 'a user who never joined: 403');
($status, $json) = $eve->get("$api/rooms/!nope:localhost/messages?dir=b");
is($status, 403, 'an unknown room: 403, no leak');

done_testing();

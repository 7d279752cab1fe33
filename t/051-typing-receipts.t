# Typing and receipts through /sync: typing starts, stops and runs out;
# receipts public and private, threaded; each wakes the room's parked
# syncs; refusals.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Time::HiRes qw(sleep time);

my $srv = server();
my $api = '/_matrix/client/v3';
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost'));
my $bob = client(token => $srv->make_token(user_id => '@bob:localhost'), timeout => 40);

my ($status, $json) = $alice->post("$api/createRoom", { preset => 'public_chat' });
my $r = $json->{room_id};
$bob->post("$api/rooms/$r/join", {});
($status, $json) = $alice->put("$api/rooms/$r/send/m.room.message/t1", { body => 'hello' });
my $msg = $json->{event_id};

sub ephemeral {
    my ($c, $since) = @_;
    my ($s, $j) = $c->get("$api/sync" . ($since ? "?since=$since" : ''));
    my %e = map { $_->{type} => $_->{content} } @{ $j->{rooms}{join}{$r}{ephemeral}{events} // [] };
    return (\%e, $j->{next_batch});
}

my (undef, $next) = ephemeral($bob);

# --- typing ------------------------------------------------------------------

($status, $json) = $alice->put("$api/rooms/$r/typing/\@alice:localhost", { typing => JSON::PP::true, timeout => 1500 });
is($status, 200, 'alice types');
my ($e, $n2) = ephemeral($bob, $next);
is_deeply($e->{'m.typing'}, { user_ids => ['@alice:localhost'] }, 'bob sees her typing');
$next = $n2;

($e, $n2) = ephemeral($bob, $next);
ok(!exists $e->{'m.typing'}, 'not again when nothing changed');

my $t0 = time;
ok(wait_for(sub { my ($x) = ephemeral($bob, $next); $x->{'m.typing'} && !@{ $x->{'m.typing'}{user_ids} } }, 6),
   'her typing runs out by itself');
ok(time - $t0 < 5, 'near its timeout');
(undef, $next) = ephemeral($bob, $next);

($status) = $alice->put("$api/rooms/$r/typing/\@alice:localhost", { typing => JSON::PP::true, timeout => 30000 });
($status) = $alice->put("$api/rooms/$r/typing/\@alice:localhost", { typing => JSON::PP::false });
($e, $next) = ephemeral($bob, $next);
is_deeply($e->{'m.typing'}, { user_ids => [] }, 'and stops when she says so');

($status, $json) = $alice->put("$api/rooms/$r/typing/\@bob:localhost", { typing => JSON::PP::true });
is($status, 403, "alice may not type as bob");
($status, $json) = $alice->put("$api/rooms/$r/typing/\@alice:localhost", { typing => 'yes' });
is($status, 400, 'typing must be a boolean');
my $eve = client(token => $srv->make_token(user_id => '@eve:localhost'));
($status, $json) = $eve->put("$api/rooms/$r/typing/\@eve:localhost", { typing => JSON::PP::true });
is($status, 403, 'a stranger may not type in the room');

# a parked sync wakes for typing
if (my $pid = fork // die) {
    sleep 0.5;
    $alice->put("$api/rooms/$r/typing/\@alice:localhost", { typing => JSON::PP::true, timeout => 5000 });
    waitpid $pid, 0;
    is($? >> 8, 0, "bob's parked sync wakes when alice types");
} else {
    my $c = client(token => $bob->token, timeout => 40);
    my $t = time;
    my ($s, $j) = $c->get("$api/sync?since=$next&timeout=20000");
    my ($ty) = grep { $_->{type} eq 'm.typing' } @{ $j->{rooms}{join}{$r}{ephemeral}{events} // [] };
    exit(($ty && @{ $ty->{content}{user_ids} } == 1 && time - $t < 3) ? 0 : 1);
}
(undef, $next) = ephemeral($bob, $next);

# --- receipts --------------------------------------------------------------------

($status) = $bob->post("$api/rooms/$r/receipt/m.read/$msg", {});
is($status, 200, 'bob sends a read receipt');
($e, my $anext) = ephemeral($alice);
ok($e->{'m.receipt'}{$msg}{'m.read'}{'@bob:localhost'}{ts}, 'alice sees it, with its time');

($status) = $bob->post("$api/rooms/$r/receipt/m.read.private/$msg", {});
is($status, 200, 'and a private one');
($e) = ephemeral($alice, $anext);
ok(!$e->{'m.receipt'}, 'which alice does not see');
($e) = ephemeral($bob, $next);
ok($e->{'m.receipt'}{$msg}{'m.read.private'}{'@bob:localhost'}, 'but bob does');

($status) = $bob->post("$api/rooms/$r/receipt/m.read/$msg", { thread_id => 'main' });
($e) = ephemeral($alice, $anext);
is($e->{'m.receipt'}{$msg}{'m.read'}{'@bob:localhost'}{thread_id}, 'main', 'threaded receipts keep their thread');

($status, $json) = $bob->post("$api/rooms/$r/receipt/m.fully_read/$msg", {});
is($status, 400, 'm.fully_read is not a receipt type here: 400');
($status, $json) = $bob->post("$api/rooms/$r/receipt/m.read/\$unknown", {});
is($status, 404, 'a receipt for an unknown event: 404');
($status, $json) = $eve->post("$api/rooms/$r/receipt/m.read/$msg", {});
is($status, 403, 'a stranger may not send receipts');
($status, $json) = $bob->post("$api/rooms/$r/receipt/m.read/$msg", { thread_id => 5 });
is($status, 400, 'a thread_id that is not a string: 400');

# --- read markers --------------------------------------------------------------------

(undef, $next) = ephemeral($bob, $next);
($status, $json) = $bob->post("$api/rooms/$r/read_markers", { 'm.fully_read' => $msg, 'm.read' => $msg });
is($status, 200, 'read markers');
($status, $json) = $bob->get("$api/sync?since=$next");
my $room = $json->{rooms}{join}{$r};
is_deeply($room->{account_data}{events}, [ { type => 'm.fully_read', content => { event_id => $msg } } ],
          'the fully read marker is room account data');
my ($rc) = grep { $_->{type} eq 'm.receipt' } @{ $room->{ephemeral}{events} };
ok($rc->{content}{$msg}{'m.read'}{'@bob:localhost'}, 'm.read went as a receipt');
($status, $json) = $bob->get("$api/user/\@bob:localhost/rooms/$r/account_data/m.fully_read");
is_deeply($json, { event_id => $msg }, 'and reads back');
($status, $json) = $bob->post("$api/rooms/$r/read_markers", { 'm.fully_read' => 5 });
is($status, 400, 'a marker that is no event ID: 400');
($status, $json) = $bob->post("$api/rooms/$r/read_markers", { 'm.read' => '$nope' });
is($status, 404, 'an unknown event: 404');

done_testing();

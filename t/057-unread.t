# Unread notification counts in /sync: messages count by the push rules
# (the server defaults and the user's own), mentions of the user ID or the
# display name highlight, the sender's own messages never count, a read
# receipt (public or private, whichever is further) resets them, sending
# is reading; override and room rules that silence a room; per-thread
# counts; GET /notifications.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $api = '/_matrix/client/v3';
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost'));
my $bob = client(token => $srv->make_token(user_id => '@bob:localhost'));
my $carol = client(token => $srv->make_token(user_id => '@carol:localhost'));

my ($status, $json) = $alice->post("$api/createRoom", { preset => 'public_chat' });
my $r = $json->{room_id};
is($bob->post("$api/rooms/$r/join", {})->{status}, 200, 'bob joins');
is($carol->post("$api/rooms/$r/join", {})->{status}, 200, 'carol joins');

my $n = 0;
sub say {
    my ($c, $room, $body, %extra) = @_;
    my ($s, $j) = $c->put("$api/rooms/$room/send/m.room.message/u" . ++$n,
                          { msgtype => 'm.text', body => $body, %extra });
    is($s, 200, "sent '$body'");
    return $j->{event_id};
}

# the counts of a room in a sync, and the next token
sub counts {
    my ($c, $room, $since, $filter) = @_;
    my $q = join '&', ($since ? "since=$since" : ()), ($filter ? "filter=$filter" : ());
    my ($s, $j) = $c->get("$api/sync" . ($q ? "?$q" : ''));
    is($s, 200, 'sync');
    return ($j->{rooms}{join}{$room}, $j->{next_batch});
}

my ($room, $next) = counts($alice, $r);
is_deeply($room->{unread_notifications}, { notification_count => 0, highlight_count => 0 },
          'nothing unread in a new room');

# --- messages count, mentions highlight -----------------------------------------

say($bob, $r, "message $_") for 1 .. 3;
($room, $next) = counts($alice, $r, $next);
is_deeply($room->{unread_notifications}, { notification_count => 3, highlight_count => 0 },
          "bob's three messages: three unread for alice, none highlighted");
is(scalar @{ $room->{timeline}{events} }, 3, 'in the same sync as the messages');

my ($broom) = counts($bob, $r);
is_deeply($broom->{unread_notifications}, { notification_count => 0, highlight_count => 0 },
          "bob's own messages never count for bob");
my ($croom) = counts($carol, $r);
is($croom->{unread_notifications}{notification_count}, 3, 'carol has them too');

say($bob, $r, 'are you there, alice?');
($room, $next) = counts($alice, $r, $next);
is_deeply($room->{unread_notifications}, { notification_count => 4, highlight_count => 1 },
          'her user name in a message highlights it');

say($bob, $r, 'ping @alice:localhost');
($room, $next) = counts($alice, $r, $next);
is($room->{unread_notifications}{highlight_count}, 2, 'her user ID too');

($status) = $alice->put("$api/rooms/$r/state/m.room.member/\@alice:localhost",
                        { membership => 'join', displayname => 'Wonder Woman' });
is($status, 200, 'alice takes a display name');
say($bob, $r, 'what does wonder woman think?');
($room, $next) = counts($alice, $r, $next);
is_deeply($room->{unread_notifications}, { notification_count => 6, highlight_count => 3 },
          'her display name highlights');

say($bob, $r, 'hi', 'm.mentions' => { user_ids => ['@alice:localhost'] });
($room, $next) = counts($alice, $r, $next);
is($room->{unread_notifications}{highlight_count}, 4, 'an m.mentions of her highlights');

$bob->put("$api/rooms/$r/send/m.room.message/notice1", { msgtype => 'm.notice', body => 'alice: a notice' });
my $hi = say($bob, $r, 'x');
($room, $next) = counts($alice, $r, $next);
$bob->put("$api/rooms/$r/send/m.reaction/react1",
          { 'm.relates_to' => { rel_type => 'm.annotation', event_id => $hi, key => 'x' } });
($room, $next) = counts($alice, $r, $next);
is($room->{unread_notifications}{notification_count}, 8, 'notices and reactions do not notify');

# --- receipts reset the counts --------------------------------------------------------

my $mid = say($bob, $r, 'one more');
my $last = say($bob, $r, 'and the last');
($room, $next) = counts($alice, $r, $next);
is($room->{unread_notifications}{notification_count}, 10, 'ten unread');

($status, $json) = $alice->post("$api/rooms/$r/receipt/m.read/$mid", {});
is($status, 200, 'a receipt on the one before last');
($room, $next) = counts($alice, $r, $next);
is_deeply($room->{unread_notifications}, { notification_count => 1, highlight_count => 0 },
          'the next sync counts what is after it');

($status) = $alice->post("$api/rooms/$r/receipt/m.read.private/$last", {});
is($status, 200, 'a private receipt on the last');
($room, $next) = counts($alice, $r, $next);
is_deeply($room->{unread_notifications}, { notification_count => 0, highlight_count => 0 },
          'counts go to 0: the private receipt is further');

($status) = $alice->post("$api/rooms/$r/receipt/m.read/$mid", {});
($room, $next) = counts($alice, $r, $next);
is($room->{unread_notifications}{notification_count}, 0,
   'a public receipt further back changes nothing: the later one counts');

($croom) = counts($carol, $r);
is($croom->{unread_notifications}{notification_count}, 10, "alice's receipts are not carol's");

my $cnext;
(undef, $cnext) = counts($carol, $r);
say($bob, $r, 'carol?');
($croom, $cnext) = counts($carol, $r, $cnext);
is($croom->{unread_notifications}{notification_count}, 11, 'carol: eleven');
say($carol, $r, 'yes');
($croom, $cnext) = counts($carol, $r, $cnext);
is($croom->{unread_notifications}{notification_count}, 0, 'sending is reading: her message resets her counts');

# the read_markers endpoint's receipt resets too
say($bob, $r, 'again');
my $again = say($bob, $r, 'and again');
($room, $next) = counts($alice, $r, $next);
is($room->{unread_notifications}{notification_count}, 4, "four new: bob's and carol's");
($status) = $alice->post("$api/rooms/$r/read_markers", { 'm.fully_read' => $again, 'm.read' => $again });
is($status, 200, 'read markers');
($room, $next) = counts($alice, $r, $next);
is($room->{unread_notifications}{notification_count}, 0, 'and they are read');

# --- push rules silence a room --------------------------------------------------------

($status, $json) = $alice->post("$api/createRoom", { preset => 'public_chat' });
my $quiet = $json->{room_id};
$bob->post("$api/rooms/$quiet/join", {});
$carol->post("$api/rooms/$quiet/join", {});
($status) = $alice->put("$api/pushrules/global/override/mute",
                        { conditions => [ { kind => 'event_match', key => 'room_id', pattern => $quiet } ],
                          actions => ['dont_notify'] });
is($status, 200, 'an override rule: dont_notify for the room');
say($bob, $quiet, 'hello');
say($bob, $quiet, 'hello alice');
my ($q) = counts($alice, $quiet);
is_deeply($q->{unread_notifications}, { notification_count => 0, highlight_count => 0 },
          'nothing counts there, mentions neither');
($room) = counts($alice, $r, $next);
say($bob, $r, 'elsewhere');
($room, $next) = counts($alice, $r, $next);
is($room->{unread_notifications}{notification_count}, 1, 'other rooms count as before');

($status) = $alice->delete("$api/pushrules/global/override/mute");
is($status, 200, 'the rule goes');
say($bob, $quiet, 'now?');
($q) = counts($alice, $quiet);
is($q->{unread_notifications}{notification_count}, 1, 'and messages count again (the rule change reached the syncer)');

($status) = $alice->put("$api/pushrules/global/room/" . uri($quiet), { actions => [] });
is($status, 200, 'a room rule with no actions');
say($bob, $quiet, 'plain');
say($bob, $quiet, 'plain, alice');
($q) = counts($alice, $quiet);
is_deeply($q->{unread_notifications}, { notification_count => 2, highlight_count => 1 },
          'plain messages are quiet, a mention still highlights (content rules come first)');

# --- threads ---------------------------------------------------------------------------------

my $tf = uri('{"room":{"timeline":{"unread_thread_notifications":true}}}');
my ($troom, $tnext) = counts($alice, $r, undef, $tf);
$alice->post("$api/rooms/$r/receipt/m.read/" . $troom->{timeline}{events}[-1]{event_id}, {});
my $root = say($bob, $r, 'a thread starts');
say($bob, $r, "in the thread $_", 'm.relates_to' => { rel_type => 'm.thread', event_id => $root }) for 1 .. 2;
my $tlast = say($bob, $r, 'in the thread, alice', 'm.relates_to' => { rel_type => 'm.thread', event_id => $root });
($troom, $tnext) = counts($alice, $r, $tnext, $tf);
is_deeply($troom->{unread_notifications}, { notification_count => 1, highlight_count => 0 },
          'by threads: the main timeline counts its own');
is_deeply($troom->{unread_thread_notifications}, { $root => { notification_count => 3, highlight_count => 1 } },
          'and the thread its own');
($room) = counts($alice, $r);
is_deeply($room->{unread_notifications}, { notification_count => 4, highlight_count => 1 },
          'without the filter, all together');
ok(!exists $room->{unread_thread_notifications}, 'and no thread counts');

($status) = $alice->post("$api/rooms/$r/receipt/m.read/$root", { thread_id => 'main' });
is($status, 200, 'a receipt on the main timeline');
($troom, $tnext) = counts($alice, $r, $tnext, $tf);
is($troom->{unread_notifications}{notification_count}, 0, 'reads the main timeline');
is($troom->{unread_thread_notifications}{$root}{notification_count}, 3, 'not the thread');
($status) = $alice->post("$api/rooms/$r/receipt/m.read/$tlast", { thread_id => $root });
is($status, 200, 'a receipt in the thread');
($troom, $tnext) = counts($alice, $r, $tnext, $tf);
ok(!%{ $troom->{unread_thread_notifications} // {} }, 'reads the thread');
($room) = counts($alice, $r);
is($room->{unread_notifications}{notification_count}, 0, 'and all is read');

# --- GET /notifications -------------------------------------------------------------------------

my $newest = say($bob, $quiet, 'the last one, alice');
($status, $json) = $alice->get("$api/notifications?limit=100");
is($status, 200, 'GET /notifications');
my @all = @{ $json->{notifications} };
ok(@all >= 10, 'lists what notified her (' . scalar(@all) . ')');
ok(!exists $json->{next_token}, 'all of it: no next_token');
is($all[0]{event}{event_id}, $newest, 'newest first');
is($all[0]{room_id}, $quiet, 'with the room');
ok(!$all[0]{read}, 'not read');
ok((grep { ref $_ && $_->{set_tweak} eq 'highlight' } @{ $all[0]{actions} }), 'with the actions');
ok($all[0]{ts} > 0, 'and a time');
my ($old) = grep { $_->{event}{content}{body} eq 'message 1' } @all;
ok($old && $old->{read}, 'what is behind her receipts is read');
ok(!(grep { $_->{event}{sender} eq '@alice:localhost' } @all), 'none of her own');

($status, $json) = $alice->get("$api/notifications?only=highlight&limit=100");
my @hl = @{ $json->{notifications} };
ok(@hl >= 5 && @hl < @all, 'only=highlight: fewer (' . scalar(@hl) . ')');
ok(!(grep { my $n = $_; !grep { ref $_ && $_->{set_tweak} eq 'highlight' } @{ $n->{actions} } } @hl),
   'and only highlights');

($status, $json) = $alice->get("$api/notifications?limit=3");
is(scalar @{ $json->{notifications} }, 3, 'limit');
ok($json->{next_token}, 'and a next_token');
my @seen = map { $_->{event}{event_id} } @{ $json->{notifications} };
my $pages = 1;
while ($json->{next_token} && $pages++ < 50) {
    ($status, $json) = $alice->get("$api/notifications?limit=3&from=$json->{next_token}");
    push @seen, map { $_->{event}{event_id} } @{ $json->{notifications} };
}
is_deeply(\@seen, [ map { $_->{event}{event_id} } @all ], 'pages of three give the same list, no gap, no repeat');

($status, $json) = $alice->get("$api/notifications?from=abc");
is($status, 400, 'a bad from: 400');
is($json->{errcode}, 'M_INVALID_PARAM', 'M_INVALID_PARAM');
($status, $json) = $bob->get("$api/notifications");
is($status, 200, "bob's");
ok(@{ $json->{notifications} } && !(grep { $_->{event}{sender} eq '@bob:localhost' } @{ $json->{notifications} }),
   "bob's list has none of his own");

done_testing();

sub uri {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

# /sync, first slice: initial and incremental sync of joined, invited and
# left rooms; a long-poll woken by a message in well under a second, one
# that times out empty, one woken by an invite; limited timelines whose
# prev_batch continues with /messages; malformed tokens.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP ();
use Time::HiRes qw(time sleep);

my $srv = server();
my $api = '/_matrix/client/v3';
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost'));
my $bob = client(token => $srv->make_token(user_id => '@bob:localhost'), timeout => 40);

my ($status, $json) = $alice->post("$api/createRoom", { name => 'sync room' });
my $r = $json->{room_id};

# --- initial sync ---------------------------------------------------------------

($status, $json) = $alice->get("$api/sync");
is($status, 200, 'initial sync');
like($json->{next_batch}, qr/^s\d+$/, 'a next_batch');
my $room = $json->{rooms}{join}{$r};
ok($room, 'the room is under rooms.join');
ok((grep { $_->{type} eq 'm.room.name' } @{ $room->{state}{events} }, @{ $room->{timeline}{events} }),
   'its state, before or in the timeline');
ok((grep { $_->{type} eq 'm.room.create' } @{ $room->{timeline}{events} }), 'its timeline');
my %in_tl = map { $_->{event_id} => 1 } @{ $room->{timeline}{events} };
is_deeply([grep { $in_tl{$_->{event_id}} } @{ $room->{state}{events} }], [],
          'the state is what comes before the timeline: none of its events');
like($room->{timeline}{prev_batch}, qr/^p\d+$/, 'a prev_batch');
is_deeply($json->{rooms}{invite}, {}, 'no invites');
my $next = $json->{next_batch};

# a limited timeline: the state before it, without the timeline's own
# state event (the topic), but with what came before (the name)
{
    my ($st, $j) = $alice->put("$api/rooms/$r/state/m.room.topic/", { topic => 'before the timeline' });
    my $topic = $j->{event_id};
    $alice->put("$api/rooms/$r/send/m.room.message/s0", { body => 'zero' });
    ($st, $j) = $alice->get("$api/sync?filter=" . '%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A2%7D%7D%7D');
    my $rm = $j->{rooms}{join}{$r};
    is_deeply([map { $_->{type} } @{ $rm->{timeline}{events} }], ['m.room.topic', 'm.room.message'],
              'limited: the topic and the message in the timeline');
    ok($rm->{timeline}{limited}, '... limited');
    ok(!(grep { $_->{event_id} eq $topic } @{ $rm->{state}{events} }), '... the topic not in the state');
    ok((grep { $_->{type} eq 'm.room.name' } @{ $rm->{state}{events} }), '... the name in the state');
    $next = $j->{next_batch};
}

# --- incremental -------------------------------------------------------------------

($status, $json) = $alice->put("$api/rooms/$r/send/m.room.message/s1", { body => 'one' });
my $one = $json->{event_id};
($status, $json) = $alice->get("$api/sync?since=$next");
is($status, 200, 'incremental sync');
my @tl = @{ $json->{rooms}{join}{$r}{timeline}{events} };
is_deeply([map { $_->{event_id} } @tl], [$one], 'exactly the new message');
ok(!$json->{rooms}{join}{$r}{timeline}{limited}, 'not limited');
is_deeply($json->{rooms}{join}{$r}{state}{events}, [], 'no state repeated');
$next = $json->{next_batch};

($status, $json) = $alice->get("$api/sync?since=$next");
is_deeply($json->{rooms}{join}, {}, 'nothing new: no rooms');
is($json->{next_batch}, $next, 'and the same token');

# --- long-poll ------------------------------------------------------------------------

my $woke = "/tmp/mx-sync-woke-$$";
if (my $pid = fork // die) {
    sleep 0.5;
    my $sent = time;
    $alice->put("$api/rooms/$r/send/m.room.message/s2", { body => 'two' });
    waitpid $pid, 0;
    is($? >> 8, 0, 'the parked sync was woken by the message and saw it');
    open my $f, '<', $woke or die;
    my $at = <$f>;
    unlink $woke;
    my $ms = ($at - $sent) * 1000;
    ok($ms < 100, sprintf('within 100 ms of the send (%.1f ms)', $ms));
} else {
    my $c = client(token => $alice->token, timeout => 40);
    my ($s, $j) = $c->get("$api/sync?since=$next&timeout=20000");
    open my $f, '>', $woke or die;
    print {$f} time;
    close $f;
    my @ev = @{ $j->{rooms}{join}{$r}{timeline}{events} // [] };
    exit(($s == 200 && @ev == 1 && $ev[0]{content}{body} eq 'two') ? 0 : 1);
}

($status, $json) = $alice->get("$api/sync?since=$next&timeout=20000");
$next = $json->{next_batch};
my $t0 = time;
($status, $json) = $alice->get("$api/sync?since=$next&timeout=700");
my $took = time - $t0;
is($status, 200, 'a long-poll with nothing happening');
ok($took >= 0.6 && $took < 3, sprintf('answers at its timeout (%.2f s)', $took));
is_deeply($json->{rooms}{join}, {}, 'empty');

# an invite wakes the invitee's parked sync
($status, $json) = $bob->get("$api/sync");
my $bnext = $json->{next_batch};
if (my $pid = fork // die) {
    sleep 0.5;
    $alice->post("$api/rooms/$r/invite", { user_id => '@bob:localhost' });
    waitpid $pid, 0;
    is($? >> 8, 0, "bob's parked sync was woken by his invite, with the stripped state");
} else {
    my $c = client(token => $bob->token, timeout => 40);
    my ($s, $j) = $c->get("$api/sync?since=$bnext&timeout=20000");
    my $inv = $j->{rooms}{invite}{$r}{invite_state}{events} // [];
    my %t = map { $_->{type} => $_ } @$inv;
    exit(($s == 200 && $t{'m.room.name'} && $t{'m.room.member'}
          && !exists $t{'m.room.name'}{event_id}) ? 0 : 1);
}

# --- join, limited timelines, leave --------------------------------------------------------

($status, $json) = $bob->get("$api/sync?since=$bnext");
$bnext = $json->{next_batch};
$bob->post("$api/rooms/$r/join", {});
for my $i (1 .. 30) {
    $alice->put("$api/rooms/$r/send/m.room.message/burst$i", { body => "b$i" });
}
($status, $json) = $bob->get("$api/sync?since=$bnext");
$room = $json->{rooms}{join}{$r};
ok($room, 'after joining, the room is under join for bob');
ok($room->{timeline}{limited}, '30 messages: the timeline is limited');
is(scalar @{ $room->{timeline}{events} }, 20, 'to 20 events');
is($room->{timeline}{events}[-1]{content}{body}, 'b30', 'the newest last');
ok((grep { $_->{type} eq 'm.room.create' } @{ $room->{state}{events} }), 'a newly joined room comes with its state');
is_deeply($room->{summary}, { 'm.joined_member_count' => 2, 'm.invited_member_count' => 0,
                              'm.heroes' => ['@alice:localhost'] }, 'and its summary');
($status, my $more) = $bob->get("$api/rooms/$r/messages?dir=b&limit=10&from=$room->{timeline}{prev_batch}");
is($more->{chunk}[0]{content}{body}, 'b10', 'prev_batch continues with /messages, no gap');
$bnext = $json->{next_batch};

$bob->post("$api/rooms/$r/leave", {});
($status, $json) = $bob->get("$api/sync?since=$bnext");
ok($json->{rooms}{leave}{$r}, 'after leaving: under rooms.leave');
my @lt = @{ $json->{rooms}{leave}{$r}{timeline}{events} };
is($lt[-1]{type}, 'm.room.member', 'ending with the leave');
is($lt[-1]{content}{membership}, 'leave', 'which says leave');
ok(!$json->{rooms}{join}{$r}, 'and no longer under join');

# --- account data ------------------------------------------------------------------------------

($status, $json) = $alice->get("$api/sync");
my $ad_next = $json->{next_batch};
$alice->put("$api/user/\@alice:localhost/account_data/org.example.pref", { colour => 'blue' });
$alice->put("$api/user/\@alice:localhost/rooms/$r/account_data/org.example.room", { pinned => 1 });
($status, $json) = $alice->get("$api/sync?since=$ad_next");
is_deeply($json->{account_data}{events}, [ { type => 'org.example.pref', content => { colour => 'blue' } } ],
          'global account data changed since: once');
is_deeply($json->{rooms}{join}{$r}{account_data}{events},
          [ { type => 'org.example.room', content => { pinned => 1 } } ], "and the room's");
$ad_next = $json->{next_batch};
($status, $json) = $alice->get("$api/sync?since=$ad_next");
is_deeply($json->{account_data}{events}, [], 'not again');

if (my $pid = fork // die) {
    sleep 0.5;
    $alice->put("$api/user/\@alice:localhost/account_data/org.example.pref", { colour => 'red' });
    waitpid $pid, 0;
    is($? >> 8, 0, 'a parked sync is woken by an account data change');
} else {
    my $c = client(token => $alice->token, timeout => 40);
    my ($s, $j) = $c->get("$api/sync?since=$ad_next&timeout=20000");
    exit(($s == 200 && ($j->{account_data}{events}[0]{content}{colour} // '') eq 'red') ? 0 : 1);
}

($status, $json) = $alice->get("$api/sync");
ok((grep { $_->{type} eq 'org.example.pref' } @{ $json->{account_data}{events} }),
   'an initial sync has all account data');

# --- filters ------------------------------------------------------------------------------------

sub enc { my $s = shift; $s =~ s/([^A-Za-z0-9])/sprintf('%%%02X', ord $1)/ge; $s }

($status, $json) = $alice->get("$api/sync?filter=" . enc('{"room":{"timeline":{"limit":2}}}'));
is($status, 200, 'an inline filter');
is(scalar @{ $json->{rooms}{join}{$r}{timeline}{events} }, 2, 'its timeline limit');
ok($json->{rooms}{join}{$r}{timeline}{limited}, 'limited');

($status, $json) = $alice->get("$api/sync?filter="
    . enc('{"room":{"timeline":{"types":["m.room.member"]},"state":{"types":["m.room.name"]}}}'));
is(scalar(grep { $_->{type} ne 'm.room.member' } @{ $json->{rooms}{join}{$r}{timeline}{events} }), 0,
   'timeline types');
is_deeply([map { $_->{type} } @{ $json->{rooms}{join}{$r}{state}{events} }], ['m.room.name'], 'state types');

($status, $json) = $alice->post("$api/user/\@alice:localhost/filter", { room => { not_rooms => [$r] } });
my $fid = $json->{filter_id};
($status, $json) = $alice->get("$api/sync?filter=$fid");
is($status, 200, 'a stored filter by its ID');
ok(!$json->{rooms}{join}{$r}, 'not_rooms leaves the room out');

$alice->put("$api/rooms/$r/send/m.room.message/lazy", { body => 'last' });
($status, $json) = $alice->get("$api/sync?filter="
    . enc('{"room":{"timeline":{"limit":1},"state":{"lazy_load_members":true}}}'));
my @members = map { $_->{state_key} } grep { $_->{type} eq 'm.room.member' } @{ $json->{rooms}{join}{$r}{state}{events} };
is_deeply(\@members, ['@alice:localhost'], 'lazy loading: only the members the timeline needs');

($status, $json) = $alice->get("$api/sync?filter=99999");
is($status, 400, 'an unknown filter ID: 400');
($status, $json) = $alice->get("$api/sync?filter=" . enc('{"room":{"timeline":{"limit":"x"}}}'));
is($status, 400, 'an invalid inline filter: 400');
is($json->{errcode}, 'M_BAD_JSON', 'M_BAD_JSON');
($status, $json) = $alice->get("$api/sync?filter=abc");
is($status, 400, 'neither ID nor JSON: 400');

# --- a client that goes away while parked ---------------------------------------------------

use IO::Socket::INET;
($status, $json) = $alice->get("$api/sync");
my $anext = $json->{next_batch};
my @gone;
for (1 .. 5) {
    my $sock = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$srv->{client_port}") or die;
    print {$sock} "GET $api/sync?since=$anext&timeout=30000 HTTP/1.1\r\nHost: x\r\n"
                . 'Authorization: Bearer ' . $alice->token . "\r\n\r\n";
    push @gone, $sock;
}
sleep 0.5;
close $_ for @gone;
sleep 0.3;
($status, $json) = $alice->put("$api/rooms/$r/send/m.room.message/after-gone", { body => 'anyone?' });
is($status, 200, 'a message after parked clients went away: no one to wake, no harm');
($status, $json) = $alice->get("$api/sync?since=$anext");
is($status, 200, 'and sync goes on');

# --- knocking ------------------------------------------------------------------------------------

($status, $json) = $alice->post("$api/createRoom", { name => 'knock here',
    initial_state => [ { type => 'm.room.join_rules', content => { join_rule => 'knock' } } ] });
my $kr = $json->{room_id};
my $eve = client(token => $srv->make_token(user_id => '@eve:localhost'));
($status, $json) = $eve->get("$api/sync");
my $enext = $json->{next_batch};
($status, $json) = $eve->put("$api/rooms/$kr/state/m.room.member/\@eve:localhost", { membership => 'knock' });
is($status, 200, 'eve knocks');
($status, $json) = $eve->get("$api/sync?since=$enext");
my %ks = map { $_->{type} => $_ } @{ $json->{rooms}{knock}{$kr}{knock_state}{events} // [] };
ok($ks{'m.room.name'} && $ks{'m.room.member'}, 'the room is under rooms.knock with its stripped state');

# --- a position is never visible before what it means -------------------------------------

# mx_sync_position records the memberships an event changes in the same call that gives it
# its position: right after the call, the user's room list, the room's history of the user
# and the wakeup are all there.
{
    my $fr = '!atomic:localhost';
    $srv->redis_cmd('HSET', "mx:{$fr}:pdu", '$m1', '{"type":"m.room.member","state_key":"@zed:localhost","content":{"membership":"invite"}}');
    my $before = $srv->redis_cmd('GET', 'mx:stream');
    my $res = $srv->redis_cmd('FCALL', 'mx_sync_position', 1, "mx:{$fr}:spos", $fr, '$m1', '', '', '-',
                              '@zed:localhost', '$m1');
    is_deeply($res, [$before + 1, 1], 'the next position, new');
    is($srv->redis_cmd('HGET', 'mx:{@zed:localhost}:rooms', $fr), 'invite ' . ($before + 1),
       'the membership recorded with the position');
    is_deeply($srv->redis_cmd('ZRANGE', "mx:{$fr}:mhist:\@zed:localhost", 0, -1),
              [($before + 1) . ' invite $m1'], 'and in the room\'s history of the user');
    $res = $srv->redis_cmd('FCALL', 'mx_sync_position', 1, "mx:{$fr}:spos", $fr, '$m1', '', '', '-',
                           '@zed:localhost', '$m1');
    is_deeply($res, [$before + 1, 0], 'seen again: the same position, not new');
    $srv->redis_cmd('FCALL', 'mx_sync_position', 1, "mx:{$fr}:spos", $fr, '$m2', '', '', '-',
                    '@zed:localhost', '');
    is($srv->redis_cmd('HGET', 'mx:{@zed:localhost}:rooms', $fr), undef, 'a state entry gone: no longer listed');
}

# A room records the position of its last change, so that an incremental sync skips the rooms
# quiet since its token with one read; a quiet room is left out, the busy one comes.
{
    my ($s, $j) = $alice->post("$api/createRoom", { name => 'quiet' });
    my $quiet = $j->{room_id};
    ($s, $j) = $alice->post("$api/createRoom", { name => 'busy' });
    my $busy = $j->{room_id};
    ($s, $j) = $alice->get("$api/sync?timeout=0");
    my $tok = $j->{next_batch};
    ($s, $j) = $alice->put("$api/rooms/$busy/send/m.room.message/q1", { body => 'busy' });
    my $ev = $j->{event_id};
    is($srv->redis_cmd('GET', "mx:{$busy}:last"), $srv->redis_cmd('HGET', "mx:{$busy}:spos", $ev),
       'the room\'s last change is the event\'s position');
    ($s, $j) = $alice->get("$api/sync?since=$tok&timeout=0");
    ok($j->{rooms}{join}{$busy} && !$j->{rooms}{join}{$quiet}, 'the busy room comes, the quiet one not');
    ($s, $j) = $alice->put("$api/rooms/$quiet/typing/\@alice:localhost", { typing => JSON::PP::true(), timeout => 5000 });
    ($s, $j) = $alice->get("$api/sync?since=$tok&timeout=0");
    ok($j->{rooms}{join}{$quiet}, 'typing is a change of the room too');
}

# Woken together: the parked syncs of many users of a room are answered by one call per batch
# (mx_sync_many); each gets its own answer, with its own filter; one that went away meanwhile
# is left out, not answered to somebody else.
{
    use IO::Socket::INET;
    use IO::Select;
    my ($s, $j) = $alice->post("$api/createRoom", { preset => 'public_chat', name => 'many' });
    my $mr = $j->{room_id};
    my (@socks, %who);
    my ($host, $port) = $srv->url =~ m{^http://([^:/]+):(\d+)};
    my @users = map { client(token => $srv->make_token(user_id => "\@many$_:localhost")) } 1 .. 8;
    $_->post("$api/rooms/$mr/join", {}) for @users;
    # a first sync marks each online, which is news to the others: all before any parks
    $_->get("$api/sync?timeout=0") for @users;
    my $now = ($users[0]->get("$api/sync?timeout=0"))[1]{next_batch};
    my @since = ($now) x 8;
    for my $i (1 .. 8) {
        my $u = $users[$i - 1];
        $j = { next_batch => $since[$i - 1] };
        my $filter = $i % 2 ? '' : '&filter=' . '%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A1%7D%7D%7D';
        my $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port) or die;
        print {$sock} "GET $api/sync?since=$j->{next_batch}&timeout=20000$filter HTTP/1.0\r\nHost: x\r\n"
                    . "Authorization: Bearer $u->{token}\r\nConnection: close\r\n\r\n";
        push @socks, $sock;
        $who{$sock} = $i;
    }
    sleep 1;
    my $gone = pop @socks;
    close $gone;
    ($s, $j) = $alice->put("$api/rooms/$mr/send/m.room.message/many1", { body => 'to many' });
    my $ev = $j->{event_id};
    my $sel = IO::Select->new(@socks);
    my (%got, %buf);
    my $end = time + 15;
    while ($sel->count && time < $end) {
        for my $h ($sel->can_read(1)) {
            my $n = sysread($h, my $b, 65536);
            if ($n) { $buf{$h} .= $b; next }
            my ($body) = $buf{$h} =~ /\r\n\r\n(.*)\z/s;
            my $res = eval { JSON::PP::decode_json($body) } // {};
            my @ids = map { $_->{event_id} } @{ $res->{rooms}{join}{$mr}{timeline}{events} // [] };
            $got{ $who{$h} } = join ',', @ids;
            $sel->remove($h);
            close $h;
        }
    }
    is(scalar keys %got, 7, 'the seven still waiting are answered');
    is_deeply([ grep { $got{$_} ne $ev } sort keys %got ], [], 'each with the message') or diag explain \%got;
}

# Non-parked syncs racing a stream of invites: every invite comes in one of them.
{
    my $zoe = client(token => $srv->make_token(user_id => '@zoe:localhost'));
    ($status, $json) = $zoe->get("$api/sync");
    my $zn = $json->{next_batch};
    my $seen = "/tmp/mx-sync-race-$$";
    my $n = 25;
    if (my $pid = fork // die) {
        for my $i (1 .. $n) {
            my ($s, $j) = $alice->post("$api/createRoom", { invite => ['@zoe:localhost'] });
        }
        waitpid $pid, 0;
        open my $f, '<', $seen or die;
        chomp(my $got = <$f>);
        unlink $seen;
        is($got, $n, "all $n invites came through back-to-back incremental syncs");
    } else {
        my %inv;
        my $end = time + 30;
        while (keys %inv < $n && time < $end) {
            my ($s, $j) = $zoe->get("$api/sync?since=$zn&timeout=0");
            next unless $s == 200;
            $inv{$_} = 1 for keys %{ $j->{rooms}{invite} // {} };
            $zn = $j->{next_batch};
        }
        open my $f, '>', $seen or die;
        print $f scalar(keys %inv), "\n";
        close $f;
        exit 0;
    }
}

# --- refusals ---------------------------------------------------------------------------------

for my $bad ('x', 'p12', 's', 'sabc') {
    ($status, $json) = $alice->get("$api/sync?since=$bad");
    is($status, 400, "since=$bad: 400");
    is($json->{errcode}, 'M_INVALID_PARAM', "since=$bad: M_INVALID_PARAM");
}
($status, $json) = $alice->get("$api/sync?timeout=soon");
is($status, 400, 'a bad timeout: 400');
($status, $json) = client()->get("$api/sync");
is($status, 401, 'without a token: 401');

done_testing();

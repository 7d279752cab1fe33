# /sync filters, each on its section: lazy-loaded members with and without
# include_redundant_members across incremental syncs (a record per device,
# reset by an initial sync), the ephemeral filter (types, senders, limit,
# rooms), room and global account data, presence, include_leave and
# event_fields.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $api = '/_matrix/client/v3';
my %c = map { $_ => client(token => $srv->make_token(user_id => "\@$_:localhost")) } qw(alice bob carol dave);
my $alice2 = client(token => $srv->make_token(user_id => '@alice:localhost', device_id => 'OTHER'));
my ($alice, $bob, $carol, $dave) = @c{qw(alice bob carol dave)};

sub uri {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge;
    return $s;
}

sub sync {
    my ($c, $filter, $since) = @_;
    my @q = (($filter ? 'filter=' . uri($filter) : ()), ($since ? "since=$since" : ()));
    my ($s, $j) = $c->get("$api/sync" . (@q ? '?' . join('&', @q) : ''));
    is($s, 200, 'sync: 200');
    return $j;
}

# the state keys of the member events in a room's state, sorted
sub members {
    my ($j, $r, $section) = @_;
    return [ sort map { $_->{state_key} } grep { $_->{type} eq 'm.room.member' }
             @{ $j->{rooms}{ $section // 'join' }{$r}{state}{events} // [] } ];
}

my $n = 0;
sub say {
    my ($c, $r, $body) = @_;
    my ($s, $j) = $c->put("$api/rooms/$r/send/m.room.message/f" . ++$n, { msgtype => 'm.text', body => $body });
    die "send: $s" unless $s == 200;
    return $j->{event_id};
}

my (undef, $json) = $alice->post("$api/createRoom", { preset => 'public_chat', name => 'filters' });
my $r = $json->{room_id};
$_->post("$api/rooms/$r/join", {}) for $dave, $bob, $carol;
say($bob, $r, "bob $_") for 1 .. 10;
say($carol, $r, "carol $_") for 1 .. 5;

# --- lazy-loaded members, redundant ones skipped -----------------------------------------

my $lazy = '{"room":{"state":{"lazy_load_members":true},"timeline":{"limit":10}}}';
my $j = sync($alice, $lazy);
is_deeply(members($j, $r), [ '@alice:localhost', '@bob:localhost', '@carol:localhost' ],
          "initial, lazily: the members of the timeline's senders and her own, not dave");
ok((grep { $_->{type} eq 'm.room.name' } @{ $j->{rooms}{join}{$r}{state}{events} }), 'the other state is there');
my $next = $j->{next_batch};
$j = sync($alice2, $lazy);
is_deeply(members($j, $r), [ '@alice:localhost', '@bob:localhost', '@carol:localhost' ], 'her other device: the same');
my $next2 = $j->{next_batch};

say($bob, $r, 'bob again');
say($carol, $r, 'carol again');
$j = sync($alice, $lazy, $next);
is(scalar @{ $j->{rooms}{join}{$r}{timeline}{events} }, 2, 'incremental: two messages');
is_deeply(members($j, $r), [], 'and no member events: this device has them');
$next = $j->{next_batch};

say($dave, $r, 'dave speaks');
$j = sync($alice, $lazy, $next);
is_deeply(members($j, $r), ['@dave:localhost'], "a new sender's member event comes once");
$next = $j->{next_batch};
$j = sync($alice2, $lazy, $next2);
is_deeply(members($j, $r), ['@dave:localhost'], 'to each device: the other device has its own record');
say($dave, $r, 'dave again');
$j = sync($alice, $lazy, $next);
is_deeply(members($j, $r), [], 'and not again');
$next = $j->{next_batch};

my ($s) = $bob->put("$api/rooms/$r/state/m.room.member/\@bob:localhost", { membership => 'join', displayname => 'Robert' });
is($s, 200, 'bob changes his name');
say($bob, $r, 'renamed');
$j = sync($alice, $lazy, $next);
my @tl = @{ $j->{rooms}{join}{$r}{timeline}{events} };
is($tl[0]{content}{displayname}, 'Robert', 'his new member event is in the timeline');
is_deeply(members($j, $r), [], 'so not repeated in the state');
$next = $j->{next_batch};
say($bob, $r, 'after the rename');
$j = sync($alice, $lazy, $next);
is_deeply(members($j, $r), [], 'nor later: the timeline sent it');

$j = sync($alice, $lazy);
is_deeply(members($j, $r), [ '@alice:localhost', '@carol:localhost', '@dave:localhost' ],
          "an initial sync starts the record again (bob's is in its timeline)");

# a limited sync: member changes in the gap come, redundant or not
$next = $j->{next_batch};
($s) = $carol->put("$api/rooms/$r/state/m.room.member/\@carol:localhost", { membership => 'join', displayname => 'Caroline' });
is($s, 200, 'carol changes her name');
say($bob, $r, "filler $_") for 1 .. 12;
$j = sync($alice, $lazy, $next);
ok($j->{rooms}{join}{$r}{timeline}{limited}, 'twelve messages later: a limited timeline');
is_deeply(members($j, $r), ['@carol:localhost'], "carol's change in the gap is in the state, bob's is not (he has it)");
my ($cm) = grep { $_->{type} eq 'm.room.member' } @{ $j->{rooms}{join}{$r}{state}{events} };
is($cm->{content}{displayname}, 'Caroline', 'her new member event');
$next = $j->{next_batch};
say($carol, $r, 'carol speaks');
$j = sync($alice, $lazy, $next);
is_deeply(members($j, $r), [], 'and it counts as sent');

# --- include_redundant_members ---------------------------------------------------------------

my $redundant = '{"room":{"state":{"lazy_load_members":true,"include_redundant_members":true},"timeline":{"limit":10}}}';
$j = sync($alice2, $redundant);
my $rnext = $j->{next_batch};
say($bob, $r, 'once more');
say($carol, $r, 'once more');
$j = sync($alice2, $redundant, $rnext);
is_deeply(members($j, $r), [ '@bob:localhost', '@carol:localhost' ],
          'with include_redundant_members, the senders\' member events every time');
$rnext = $j->{next_batch};
say($bob, $r, 'and more');
$j = sync($alice2, $redundant, $rnext);
is_deeply(members($j, $r), ['@bob:localhost'], 'again on the next sync');

# --- the ephemeral filter ----------------------------------------------------------------------

$j = sync($alice);
$next = $j->{next_batch};
$bob->put("$api/rooms/$r/typing/\@bob:localhost", { typing => JSON::PP::true, timeout => 30000 });
$carol->put("$api/rooms/$r/typing/\@carol:localhost", { typing => JSON::PP::true, timeout => 30000 });
my $last = say($bob, $r, 'read me');
$bob->post("$api/rooms/$r/receipt/m.read/$last", {});
$carol->post("$api/rooms/$r/receipt/m.read/$last", {});

sub eph {
    my ($filter) = @_;
    my $j = sync($alice, $filter, $next);
    return { map { $_->{type} => $_->{content} } @{ $j->{rooms}{join}{$r}{ephemeral}{events} // [] } },
           $j->{rooms}{join}{$r}{ephemeral}{events};
}

my ($e, $list) = eph(undef);
is_deeply([ sort @{ $e->{'m.typing'}{user_ids} } ], [ '@bob:localhost', '@carol:localhost' ], 'unfiltered: both type');
is_deeply([ sort keys %{ $e->{'m.receipt'}{$last}{'m.read'} } ], [ '@bob:localhost', '@carol:localhost' ],
          'and both receipts');

($e) = eph('{"room":{"ephemeral":{"types":["m.receipt"]}}}');
ok(!$e->{'m.typing'} && $e->{'m.receipt'}, 'types: only receipts');
($e) = eph('{"room":{"ephemeral":{"not_types":["m.receipt"]}}}');
ok($e->{'m.typing'} && !$e->{'m.receipt'}, 'not_types: no receipts');
($e) = eph('{"room":{"ephemeral":{"senders":["@carol:localhost"]}}}');
is_deeply($e->{'m.typing'}{user_ids}, ['@carol:localhost'], "senders: carol's typing only");
is_deeply([ keys %{ $e->{'m.receipt'}{$last}{'m.read'} } ], ['@carol:localhost'], 'and her receipt only');
($e) = eph('{"room":{"ephemeral":{"not_senders":["@carol:localhost","@bob:localhost"]}}}');
ok($e->{'m.typing'} && !@{ $e->{'m.typing'}{user_ids} } && !$e->{'m.receipt'},
   'not_senders: nobody types, no receipt left');
(undef, $list) = eph('{"room":{"ephemeral":{"limit":1}}}');
is(scalar @$list, 1, 'limit: one event');
($e, $list) = eph('{"room":{"ephemeral":{"not_rooms":["' . $r . '"]}}}');
is_deeply($list, [], 'not_rooms: none in that room');
($e, $list) = eph('{"room":{"ephemeral":{"rooms":["!elsewhere:localhost"]}}}');
is_deeply($list, [], 'rooms: none outside them');

# --- account data -----------------------------------------------------------------------------------

$j = sync($alice);
$next = $j->{next_batch};
for my $t (qw(org.example.a org.example.b com.other.c)) {
    $alice->put("$api/user/\@alice:localhost/account_data/$t", { v => $t });
    $alice->put("$api/user/\@alice:localhost/rooms/$r/account_data/$t", { v => $t });
}

sub ad {
    my ($filter) = @_;
    my $j = sync($alice, $filter, $next);
    return ([ sort map { $_->{type} } @{ $j->{account_data}{events} } ],
            [ sort map { $_->{type} } @{ $j->{rooms}{join}{$r}{account_data}{events} // [] } ]);
}

my ($g, $ra) = ad(undef);
is_deeply($g, [qw(com.other.c org.example.a org.example.b)], 'global account data, unfiltered');
is_deeply($ra, [qw(com.other.c org.example.a org.example.b)], "the room's, unfiltered");
($g, $ra) = ad('{"account_data":{"types":["org.example.*"]}}');
is_deeply($g, [qw(org.example.a org.example.b)], 'account_data types: global filtered');
is_deeply($ra, [qw(com.other.c org.example.a org.example.b)], "not the room's");
($g, $ra) = ad('{"account_data":{"not_types":["org.example.a"],"limit":1}}');
is(scalar @$g, 1, 'limit 1');
ok(!grep({ $_ eq 'org.example.a' } @$g), 'not_types');
($g) = ad('{"account_data":{"senders":["@bob:localhost"]}}');
is_deeply($g, [], 'senders that are not the user: none of hers');
($g, $ra) = ad('{"room":{"account_data":{"types":["com.*"]}}}');
is_deeply($ra, ['com.other.c'], 'room.account_data types');
is_deeply($g, [qw(com.other.c org.example.a org.example.b)], 'not the global ones');
($g, $ra) = ad('{"room":{"account_data":{"not_rooms":["' . $r . '"]}}}');
is_deeply($ra, [], 'room.account_data not_rooms');
($g, $ra) = ad('{"room":{"account_data":{"limit":1,"not_types":["com.*"]}}}');
is(scalar @$ra, 1, 'room.account_data limit');
like($ra->[0], qr/^org\.example\./, 'and not_types');

# --- presence -------------------------------------------------------------------------------------------

for my $who (qw(bob carol)) {
    my ($st) = $c{$who}->put("$api/presence/\@$who:localhost/status", { presence => 'online', status_msg => "$who here" });
    is($st, 200, "$who sets presence");
}

sub pres {
    my ($filter) = @_;
    my $j = sync($alice, $filter);
    return [ sort map { $_->{sender} } @{ $j->{presence}{events} } ];
}

my $p = pres(undef);
ok((grep { $_ eq '@bob:localhost' } @$p) && (grep { $_ eq '@carol:localhost' } @$p), 'presence, unfiltered: bob and carol');
is_deeply(pres('{"presence":{"senders":["@bob:localhost"]}}'), ['@bob:localhost'], 'presence senders');
ok(!grep({ $_ eq '@bob:localhost' } @{ pres('{"presence":{"not_senders":["@bob:localhost"]}}') }), 'presence not_senders');
is_deeply(pres('{"presence":{"types":["m.nothing"]}}'), [], 'presence types');
is_deeply(pres('{"presence":{"not_types":["m.presence"]}}'), [], 'presence not_types');
is(scalar @{ pres('{"presence":{"limit":1}}') }, 1, 'presence limit');

# --- include_leave -----------------------------------------------------------------------------------------

(undef, $json) = $alice->post("$api/createRoom", { preset => 'public_chat', name => 'to leave' });
my $gone = $json->{room_id};
say($alice, $gone, 'bye');
($s) = $alice->post("$api/rooms/$gone/leave", {});
is($s, 200, 'alice leaves a room');
$j = sync($alice);
ok(!$j->{rooms}{leave}{$gone}, 'initial sync: no left rooms by default');
$j = sync($alice, '{"room":{"include_leave":true}}');
my $left = $j->{rooms}{leave}{$gone};
ok($left, 'include_leave: the left room is there');
is($left->{timeline}{events}[-1]{content}{membership}, 'leave', 'its timeline ends with the leave');
is($left->{timeline}{events}[-2]{content}{body}, 'bye', 'after what she saw');
ok(!$j->{rooms}{join}{$gone}, 'and it is not under join');

# --- event_fields -------------------------------------------------------------------------------------------

$j = sync($alice, '{"event_fields":["type","content.body"],"room":{"timeline":{"limit":3}}}');
my @ev = @{ $j->{rooms}{join}{$r}{timeline}{events} };
is_deeply($ev[-1], { type => 'm.room.message', content => { body => 'read me' } },
          'event_fields: only the fields asked for');
ok(!(grep { exists $_->{event_id} } @{ $j->{rooms}{join}{$r}{state}{events} }), 'in the state events too');

done_testing();

# Two real servers, and what A refuses of what claims to come from B.
# bob and carl of B join alice's public room on A; alice bans bob.  Then
# the test speaks for B directly to A's /send, with B's real signing key
# (read from B's data folder), as a compromised or buggy B would:
#
#   bob, banned: a message on A's current state (refused, per PDU), one
#   built before the ban (soft-failed: taken, shown to nobody), a rejoin,
#   a name change (refused)
#   forged requests: an X-Matrix signature by a key that is not B's
#   (same key ID), another destination in X-Matrix (both 401), a txnId
#   replayed with other content (answered as the first, the new content
#   not taken), an event whose content hash does not match (kept
#   redacted, as the spec says and t/074 checks), events whose sender is
#   of A (alice), with no signature of A or a bogus one (refused)
#
# Each: the status and body, and nothing of it in alice's /messages or
# /state.  Then normal traffic both ways still flows.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use JSON::PP;
use Time::HiRes qw(time sleep);

%Test::Matrix::ServerOptions = (federation => 1);

my $A = server();
my $B = new_server(federation => 1);
my $api = '/_matrix/client/v3';
my $json = JSON::PP->new->canonical;

my $alice = Test::Matrix::Client->new(server => $A);
my ($status, $body) = $alice->register('alice', 'secret-password-1');
is($status, 200, 'alice registers on A');
($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', room_version => '10',
                                                     name => 'Guarded' });
is($status, 200, 'a public room on A');
my $room = $body->{room_id};

my ($bob, $carl) = map { Test::Matrix::Client->new(server => $B) } 1 .. 2;
is(($bob->register('bob', 'secret-password-2'))[0], 200, 'bob registers on B');
is(($carl->register('carl', 'secret-password-3'))[0], 200, 'carl registers on B');
for my $c ($bob, $carl) {
    ($status, $body) = $c->post("$api/join/" . esc($room) . '?server_name=' . esc($A->server_name), {});
    is($status, 200, $c->user_id . " joins A's room") or diag explain $body;
}

# the bodies and IDs of the room's events alice sees, newest first
sub seen {
    my ($c) = @_;
    my ($s, $j) = $c->get("$api/rooms/" . esc($room) . '/messages?dir=b&limit=100');
    return $j->{chunk} // [];
}
sub said { [ reverse map { $_->{content}{body} // () } grep { $_->{type} eq 'm.room.message' } @{ seen($_[0]) } ] }

sub state_of {
    my ($c) = @_;
    my ($s, $j) = $c->get("$api/rooms/" . esc($room) . '/state');
    return { map { ("$_->{type}|$_->{state_key}" => $_->{event_id}) } @{ $j // [] } };
}

my $before_ban = $A->redis_cmd('SMEMBERS', "mx:{$room}:extrem");
my %st = @{ $A->redis_cmd('HGETALL', "mx:{$room}:state") };
my $auth_before_ban = [ map { $st{$_} } "m.room.create\x1f", "m.room.power_levels\x1f",
                                        "m.room.member\x1f" . $bob->user_id ];
($status) = $alice->post("$api/rooms/" . esc($room) . '/ban', { user_id => $bob->user_id, reason => 'no' });
is($status, 200, 'alice bans bob');
ok(wait_for(sub {
    my $id = $B->redis_cmd('HGET', "mx:{$room}:state", "m.room.member\x1f" . $bob->user_id) // '';
    ($B->redis_cmd('HGET', "mx:{$room}:pdu", $id) // '') =~ /"ban"/;
}, 30), 'B has the ban');

my $state0 = state_of($alice);
is($state0->{'m.room.member|' . $bob->user_id}, $A->redis_cmd('HGET', "mx:{$room}:state", "m.room.member\x1f" . $bob->user_id),
   "alice's /state has bob's ban");

# --- speaking for B ------------------------------------------------------------
my $fed = Test::Matrix::Fed->new(server => $A);
my $bkey = $fed->key_of_file($B->server_name, $B->dir . '/signing.key');
like($bkey->{id}, qr/^ed25519:/, "B's signing key, from its data folder");
is($A->redis_cmd('HGET', 'mx:serverkeys:{' . $B->server_name . '}', $bkey->{id}), $bkey->{pk},
   '... the one A has fetched from B');

my $http = client(base => $A->fed_url);
# an event in the room, signed as B's unless another key is given, on
# A's current extremities unless said otherwise
sub event {
    my (%o) = @_;
    my $key = delete $o{key} // $bkey;
    return $fed->room_event($key, $room, content => { msgtype => 'm.text', body => 'forged' }, %o);
}

# PUT /send to A as B; options: key (the X-Matrix key), destination
sub send_txn {
    my ($txn, $pdus, %o) = @_;
    my $uri = "/_matrix/federation/v1/send/$txn";
    my $t = { origin => $B->server_name, origin_server_ts => int(time * 1000), pdus => $pdus };
    my $auth = $fed->xmatrix($o{key} // $bkey, PUT => $uri, $t,
                             exists $o{destination} ? (destination => $o{destination}) : ());
    return $http->request('PUT', $uri, $t, headers => { Authorization => $auth }, no_auth => 1);
}

my (@forged_ids, @forged_bodies);

# nothing of the forged events in alice's view of the room
sub nothing_seen {
    my ($what) = @_;
    my $chunk = seen($alice);
    my %ids = map { $_->{event_id} => 1 } @$chunk;
    my @bodies = map { $_->{content}{body} // () } @$chunk;
    my %bad = map { $_ => 1 } @forged_bodies;
    ok(!(grep { $ids{$_} } @forged_ids) && !(grep { $bad{$_} } @bodies), "$what: nothing in alice's /messages")
        or diag explain [ grep { $ids{$_} } @forged_ids ];
    is_deeply(state_of($alice), $state0, "$what: alice's /state unchanged");
}

# --- bob, banned, speaking through B -------------------------------------------------
my ($m1, $m1_id) = event(sender => $bob->user_id, content => { msgtype => 'm.text', body => 'banned but talking' });
my ($m2, $m2_id) = event(sender => $bob->user_id, prev_events => $before_ban, auth_events => $auth_before_ban,
                         content => { msgtype => 'm.text', body => 'as if before the ban' });
my ($rj, $rj_id) = event(sender => $bob->user_id, type => 'm.room.member', state_key => $bob->user_id,
                         content => { membership => 'join' });
my ($nm, $nm_id) = event(sender => $bob->user_id, type => 'm.room.name', state_key => '',
                         content => { name => 'Taken' });
push @forged_ids, $m1_id, $m2_id, $rj_id, $nm_id;
push @forged_bodies, 'banned but talking', 'as if before the ban';

($status, $body) = send_txn('forged-1', [$m1, $m2, $rj, $nm]);
is($status, 200, "bob's events with B's real signature: 200");
like($body->{pdus}{$m1_id}{error} // '', qr/./, 'his message: an error for it');
is_deeply($body->{pdus}{$m2_id}, {}, 'his message built before the ban: taken (soft-failed, as the spec has it)');
like($A->redis_cmd('HGET', "mx:{$room}:meta", $m2_id) // '', qr/ s$/, '... kept soft-failed');
like($body->{pdus}{$rj_id}{error} // '', qr/./, 'his rejoin: an error');
like($body->{pdus}{$nm_id}{error} // '', qr/./, 'his name change: an error');
my $first_answer = $body;
nothing_seen("bob's events");
my $name_id = $A->redis_cmd('HGET', "mx:{$room}:state", "m.room.name\x1f");
like($A->redis_cmd('HGET', "mx:{$room}:pdu", $name_id), qr/"Guarded"/, 'the name is still alice\'s');

# --- forged requests -----------------------------------------------------------------
# a message carl might have sent: taken if the request were believed
my ($c1, $c1_id) = event(sender => $carl->user_id, content => { msgtype => 'm.text', body => 'not really carl 1' });
push @forged_ids, $c1_id;
push @forged_bodies, 'not really carl 1';

my $impostor = $fed->key($B->server_name, substr($bkey->{id}, 8));
is($impostor->{id}, $bkey->{id}, 'a key of the same ID that is not B\'s');
($status, $body) = send_txn('forged-2', [$c1], key => $impostor);
is_deeply([$status, $body->{errcode}], [401, 'M_UNAUTHORIZED'], 'X-Matrix signed with it: 401');
like($body->{error}, qr/signature/i, '... the signature');

($status, $body) = send_txn('forged-3', [$c1], destination => 'elsewhere.example');
is_deeply([$status, $body->{errcode}], [401, 'M_UNAUTHORIZED'], 'X-Matrix for another destination: 401');
like($body->{error}, qr/addressed to elsewhere\.example/, '... the destination');

ok(!$A->redis_cmd('HEXISTS', "mx:{$room}:pdu", $c1_id), 'the message of neither stored');
ok(!$A->redis_cmd('EXISTS', 'mx:fedtxn:{' . $B->server_name . '}:forged-2')
   && !$A->redis_cmd('EXISTS', 'mx:fedtxn:{' . $B->server_name . '}:forged-3'), '... nor their txnIds taken');

# the first transaction's ID again, with carl's message: the first answer
($status, $body) = send_txn('forged-1', [$c1]);
is($status, 200, 'a txnId replayed with other content: 200');
is_deeply($body, $first_answer, '... the answer of the first');
ok(!$A->redis_cmd('HEXISTS', "mx:{$room}:pdu", $c1_id), '... the new content not taken');
nothing_seen('forged requests');

# a content hash that does not match: kept redacted
my ($h, $h_id) = event(sender => $carl->user_id, content => { msgtype => 'm.text', body => 'as carl wrote it' });
$h->{content}{body} = 'changed on the way';
$h_id = $fed->event_id($h, '10');      # the reference hash covers the content hash, not the content
push @forged_bodies, 'changed on the way', 'as carl wrote it';
($status, $body) = send_txn('forged-4', [$h]);
is_deeply([$status, $body], [200, { pdus => { $h_id => {} } }], 'a bad content hash: taken');
my ($ev) = grep { $_->{event_id} eq $h_id } @{ seen($alice) };
ok($ev, "in alice's /messages");
is_deeply($ev->{content}, {}, '... redacted: nothing of its content');
nothing_seen('the bad content hash');

# events whose sender is alice, of A, sent by B
my ($fa, $fa_id) = event(sender => $alice->user_id, content => { msgtype => 'm.text', body => 'not alice 1' });
my ($fb, $fb_id) = event(sender => $alice->user_id, content => { msgtype => 'm.text', body => 'not alice 2' });
$fb->{signatures}{$A->server_name} = { 'ed25519:a_bogus' => 'A' x 86 };
$fb_id = $fed->event_id($fb, '10');
my ($fc, $fc_id) = event(sender => $alice->user_id, type => 'm.room.power_levels', state_key => '',
                         content => { users => { $carl->user_id => 100, $alice->user_id => 100 } });
push @forged_ids, $fa_id, $fb_id, $fc_id;
push @forged_bodies, 'not alice 1', 'not alice 2';
($status, $body) = send_txn('forged-5', [$fa, $fb, $fc]);
is($status, 200, "alice's events from B: 200");
like($body->{pdus}{$fa_id}{error} // '', qr/sender's server/, 'without A\'s signature: refused');
like($body->{pdus}{$fc_id}{error} // '', qr/sender's server/, 'a power levels change too');
like($body->{pdus}{$fb_id}{error} // '', qr/./, 'with a bogus signature of A: refused');
ok(!$A->redis_cmd('HEXISTS', "mx:{$room}:pdu", $_), 'not stored') for $fa_id, $fb_id, $fc_id;
nothing_seen("alice's events from B");

# --- normal traffic still flows ---------------------------------------------------------
($status) = $carl->put("$api/rooms/" . esc($room) . '/send/m.room.message/c1', { msgtype => 'm.text', body => 'carl, for real' });
is($status, 200, 'carl says something on B');
ok(wait_for(sub { grep { $_ eq 'carl, for real' } @{ said($alice) } }, 30), 'it reaches alice on A');
($status) = $alice->put("$api/rooms/" . esc($room) . '/send/m.room.message/a1', { msgtype => 'm.text', body => 'alice, for real' });
is($status, 200, 'alice answers on A');
ok(wait_for(sub { grep { $_ eq 'alice, for real' } @{ said($carl) } }, 30), 'it reaches carl on B')
    or diag explain said($carl);
ok(!(grep { my $b = $_; grep { $b eq $_ } @forged_bodies } @{ said($carl) }), 'and B has nothing forged to show');

for my $srv ($A, $B) {
    my @bad = $srv->sanitizer_reports;
    is(scalar @bad, 0, 'no sanitizer report') or diag join "\n", @bad;
}

done_testing();

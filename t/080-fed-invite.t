# Outbound invites: alice on A invites users of other servers into her
# private room.  A builds the invite, sends it to the invitee's server
# (PUT /_matrix/federation/v2/invite, a request job for A's fedsender),
# checks that server's signature on it and only then puts it in the room.
#
#   B, a real server: bob sees the invite in /sync with the room's
#   stripped state, accepts (a remote join through A), and messages go
#   both ways; carol rejects hers (make_leave/send_leave to A); dave is
#   invited once B is in the room (B countersigns, the room's copy comes
#   by /send) and joins on B.
#   A fake remote (an HTTPS server of the test CA, as in t/075) that
#   refuses, answers another event, answers without its signature or with
#   a forged one: the client gets the error and the room has no invite;
#   one that countersigns: the invite by PUT .../state/m.room.member.
#   An unreachable server: an error, nothing stored.  A banned user: 403,
#   and the remote is never asked.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use JSON::PP;
use File::Temp qw(tempdir);

%Test::Matrix::ServerOptions = (federation => 1);

my $A = server();
my $B = new_server(federation => 1);
my $api = '/_matrix/client/v3';
my $json = JSON::PP->new->canonical;

my $alice = Test::Matrix::Client->new(server => $A);
my ($status, $body) = $alice->register('alice', 'secret-password-1');
is($status, 200, 'alice registers on A');
($status, $body) = $alice->post("$api/createRoom", { preset => 'private_chat', name => 'Secret plans',
                                                     topic => 'not for everyone' });
is($status, 200, 'alice makes a private room');
my $room = $body->{room_id};

my %user;
for my $name (qw(bob carol dave)) {
    $user{$name} = Test::Matrix::Client->new(server => $B);
    ($status) = $user{$name}->register($name, "secret-password-$name");
    is($status, 200, "$name registers on B");
}
my ($bob, $carol, $dave) = @user{qw(bob carol dave)};

# the membership of everyone in A's room, as alice sees it
sub members_on_a {
    my ($s, $j) = $alice->get("$api/rooms/" . esc($room) . '/members');
    return { map { ($_->{state_key} => $_->{content}{membership}) } @{ $j->{chunk} // [] } };
}

# the member event of a user in A's room state, as A stored it (or undef)
sub member_pdu_on_a {
    my ($user) = @_;
    my $id = $A->redis_cmd('HGET', "mx:{$room}:state", "m.room.member\x1f$user") // return undef;
    return $json->decode($A->redis_cmd('HGET', "mx:{$room}:pdu", $id));
}

# --- bob: invited, sees it, accepts ---------------------------------------------------
($status, $body) = $alice->post("$api/rooms/" . esc($room) . '/invite', { user_id => $bob->user_id });
is($status, 200, 'alice invites bob of B: 200') or diag explain $body;
json_is($body, {}, 'answered {}');
is(members_on_a()->{$bob->user_id}, 'invite', "A's members: bob invited");
my $inv = member_pdu_on_a($bob->user_id);
ok($inv->{signatures}{$A->server_name}, "A's copy of the invite is signed by A");
ok($inv->{signatures}{$B->server_name}, 'and countersigned by B');
is($B->redis_cmd('HGET', "mx:{$room}:invited:" . $bob->user_id, 'event_id'),
   $A->redis_cmd('HGET', "mx:{$room}:state", "m.room.member\x1f" . $bob->user_id),
   'B keeps the invite A stored, by its event ID');

($status, $body) = $bob->get("$api/sync");
my $ir = $body->{rooms}{invite}{$room};
ok($ir, "bob's /sync on B lists the invite") or diag explain $body->{rooms};
my %is = map { ("$_->{type}|$_->{state_key}" => $_) } @{ $ir->{invite_state}{events} // [] };
is($is{'m.room.name|'}{content}{name}, 'Secret plans', 'with the room name');
is($is{'m.room.join_rules|'}{content}{join_rule}, 'invite', 'the join rules');
ok($is{'m.room.create|'}, 'the create event');
is($is{'m.room.member|' . $alice->user_id}{content}{membership}, 'join', "the inviter's member event");
is($is{'m.room.member|' . $bob->user_id}{content}{membership}, 'invite', 'and the invite');
is($is{'m.room.member|' . $bob->user_id}{sender}, $alice->user_id, 'from alice');
ok(!exists $is{'m.room.member|' . $bob->user_id}{signatures}, 'stripped (no signatures)');

# --- carol: invited, rejects ------------------------------------------------------------
($status, $body) = $alice->post("$api/rooms/" . esc($room) . '/invite', { user_id => $carol->user_id });
is($status, 200, 'alice invites carol of B: 200') or diag explain $body;
($status, $body) = $carol->get("$api/sync");
ok($body->{rooms}{invite}{$room}, "carol's /sync lists the invite");
($status, $body) = $carol->post("$api/rooms/" . esc($room) . '/leave', {});
is($status, 200, 'carol rejects it') or diag explain $body;
is(members_on_a()->{$carol->user_id}, 'leave', "A's members: carol left");
is(member_pdu_on_a($carol->user_id)->{sender}, $carol->user_id, 'by her own leave');
($status, $body) = $carol->get("$api/sync");
ok(!$body->{rooms}{invite}{$room}, "the invite is gone from carol's /sync");

# --- bob accepts; messages both ways ----------------------------------------------------
($status, $body) = $bob->post("$api/join/" . esc($room), {});
is($status, 200, 'bob accepts: joined through the inviter\'s server') or diag explain $body;
is(members_on_a()->{$bob->user_id}, 'join', "A's members: bob joined");

# the bodies of the room's messages a client sees, in order
sub said {
    my ($c) = @_;
    my ($s, $j) = $c->get("$api/rooms/" . esc($room) . '/messages?dir=b&limit=100');
    return [ reverse map { $_->{content}{body} } grep { $_->{type} eq 'm.room.message' } @{ $j->{chunk} // [] } ];
}

($status) = $alice->put("$api/rooms/" . esc($room) . '/send/m.room.message/a1',
                        { msgtype => 'm.text', body => 'hello bob' });
is($status, 200, 'alice says hello');
ok(wait_for(sub { grep { $_ eq 'hello bob' } @{ said($bob) } }, 30), 'it reaches bob on B')
    or diag explain said($bob);
($status) = $bob->put("$api/rooms/" . esc($room) . '/send/m.room.message/b1',
                      { msgtype => 'm.text', body => 'hi alice' });
is($status, 200, 'bob answers');
ok(wait_for(sub { grep { $_ eq 'hi alice' } @{ said($alice) } }, 30), 'it reaches alice on A')
    or diag explain said($alice);

# --- dave: invited once B is in the room ------------------------------------------------
($status, $body) = $alice->post("$api/rooms/" . esc($room) . '/invite', { user_id => $dave->user_id });
is($status, 200, 'alice invites dave; B, in the room, countersigns') or diag explain $body;
ok(member_pdu_on_a($dave->user_id)->{signatures}{$B->server_name}, "A's copy signed by B");
ok(!$B->redis_cmd('EXISTS', "mx:{$room}:invited:" . $dave->user_id),
   'B keeps no copy of its own: the room has it');
ok(wait_for(sub {
    my ($s, $j) = $dave->get("$api/sync");
    $j->{rooms}{invite}{$room};
}, 30), "the room's invite reaches dave's /sync through /send");
($status, $body) = $dave->post("$api/rooms/" . esc($room) . '/join', {});
is($status, 200, 'dave joins on B') or diag explain $body;
ok(wait_for(sub { (members_on_a()->{$dave->user_id} // '') eq 'join' }, 30), "A's members: dave joined");

# --- a fake remote server ---------------------------------------------------------------
my $dir = tempdir(CLEANUP => 1);
my $fed = Test::Matrix::Fed->new(server => $A);

sub mode { Test::Matrix::Server::write_file("$dir/mode", shift) }
mode('sign');

# it writes down each request; an invite it refuses, or answers with the
# event as it came, with another event, signed with a forged key or with
# its own (sign); the keys it signs with are made once its name is known
my $fake = $fed->fake_remote(sub {
    my ($r) = @_;
    my $mode = Test::Matrix::Server::slurp("$dir/mode") // 'sign';
    my $req = eval { $json->decode($r->{body}) } // {};
    my ($st, $out) = (404, { errcode => 'M_UNRECOGNIZED', error => 'no' });
    if ($r->{path} =~ m{^/_matrix/federation/v2/invite/} && $req->{event}) {
        my ($ev, $v) = ($req->{event}, $req->{room_version});
        my ($fk, $forger) = @{ $json->decode(Test::Matrix::Server::slurp("$dir/keys")) };
        ($st, $out) = $mode eq 'refuse'   ? (403, { errcode => 'M_FORBIDDEN', error => 'not from you' })
                    : $mode eq 'unsigned' ? (200, { event => $ev })
                    : $mode eq 'other'    ? (200, { event => $fed->sign_event($fk,
                                                { %$ev, content => { membership => 'invite', x => 1 } }, $v) })
                    : $mode eq 'forged'   ? (200, { event => $fed->sign_event($forger, $ev, $v) })
                    :                       (200, { event => $fed->sign_event($fk, $ev, $v) });
    }
    open my $f, '>>', "$dir/log" or die;
    print {$f} $json->encode({ method => $r->{method}, path => $r->{path}, auth => $r->{auth},
                               body => $req }), "\n";
    close $f;
    return ($st, $json->encode($out));
});

# its key, in A's cache as if fetched; a forger's under the same key ID
my $fk = $fed->key($fake);
$fed->store($fk);
my $forger = $fed->key($fake, substr($fk->{id}, 8));
Test::Matrix::Server::write_file("$dir/keys", $json->encode([$fk, $forger]));

# the invite requests the fake had
sub invites_seen {
    my $text = Test::Matrix::Server::slurp("$dir/log") // '';
    return grep { $_->{path} =~ m{^/_matrix/federation/v2/invite/} } map { $json->decode($_) } split /\n/, $text;
}

# the fake countersigns: an invite by the member event itself (PUT state)
my $frank = "\@frank:$fake";
($status, $body) = $alice->put("$api/rooms/" . esc($room) . '/state/m.room.member/' . esc($frank),
                               { membership => 'invite' });
is($status, 200, 'an invite by PUT state/m.room.member: 200') or diag explain $body;
my $fid = $A->redis_cmd('HGET', "mx:{$room}:state", "m.room.member\x1f$frank");
is($body->{event_id}, $fid, "answered with the event's ID");
ok(member_pdu_on_a($frank)->{signatures}{$fake}, "A's copy signed by the fake");

my ($seen) = invites_seen();
ok($seen, 'the fake was asked') or BAIL_OUT('no invite request reached the fake');
is($seen->{method}, 'PUT', 'with PUT');
is($seen->{path}, '/_matrix/federation/v2/invite/' . esc($room) . '/' . esc($fid), 'at the invite and its ID');
like($seen->{auth}, qr/^X-Matrix origin="\Q${\ $A->server_name }\E"/, 'signed by A (X-Matrix)');
is($seen->{body}{event}{state_key}, $frank, 'the invite of frank');
ok($seen->{body}{event}{signatures}{$A->server_name}, 'signed by A');
like($seen->{body}{room_version}, qr/^\d+$/, 'with the room version');
my %st = map { ("$_->{type}|$_->{state_key}" => $_) } @{ $seen->{body}{invite_room_state} // [] };
is($st{'m.room.name|'}{content}{name}, 'Secret plans', 'invite_room_state: the name');
is($st{'m.room.topic|'}{content}{topic}, 'not for everyone', 'the topic');
is($st{'m.room.join_rules|'}{content}{join_rule}, 'invite', 'the join rules');
is($st{'m.room.member|' . $alice->user_id}{content}{membership}, 'join', "the inviter's member event");
ok($st{'m.room.create|'}{signatures}, 'full PDUs (the create event, signed)');
ok(!$st{"m.room.member|$frank"}, 'not the invite itself');

# the fake refuses, or answers wrongly: an error, and no invite in the room
my %case = (
    refuse   => [403, 'M_FORBIDDEN', 'the remote refuses: its 403 M_FORBIDDEN'],
    unsigned => [502, 'M_UNKNOWN', 'the event back without its signature: 502'],
    other    => [502, 'M_UNKNOWN', 'another event back, signed: 502'],
    forged   => [502, 'M_UNKNOWN', 'a signature that does not verify: 502'],
);
for my $mode (sort keys %case) {
    my ($want, $errcode, $what) = @{ $case{$mode} };
    mode($mode);
    my $who = "\@$mode:$fake";
    my $before = () = invites_seen();
    ($status, $body) = $alice->post("$api/rooms/" . esc($room) . '/invite', { user_id => $who });
    is($status, $want, $what) or diag explain $body;
    is($body->{errcode}, $errcode, "... $errcode");
    is(scalar(() = invites_seen()), $before + 1, '... after asking the fake');
    ok(!defined member_pdu_on_a($who), '... and the room has no invite');
    ok(!exists members_on_a()->{$who}, '... nor its members');
}
like($body->{error}, qr/signature/, 'saying why');

# a banned user: 403 before the remote is asked
mode('sign');
my $mallory = "\@mallory:$fake";
($status) = $alice->post("$api/rooms/" . esc($room) . '/ban', { user_id => $mallory, reason => 'no' });
is($status, 200, 'alice bans mallory of the fake');
my $before = () = invites_seen();
($status, $body) = $alice->post("$api/rooms/" . esc($room) . '/invite', { user_id => $mallory });
is($status, 403, 'inviting a banned user: 403');
is($body->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');
is(scalar(() = invites_seen()), $before, 'the fake was not asked');
is(members_on_a()->{$mallory}, 'ban', 'mallory stays banned');

# an inviter without the power to invite: 403, no remote asked either
($status) = $alice->put("$api/rooms/" . esc($room) . '/state/m.room.power_levels',
                        { invite => 50 });
is($status, 200, 'invites take power level 50 (alice, the creator, has them all)');
ok(wait_for(sub {
    my ($s, $j) = $bob->get("$api/rooms/" . esc($room) . '/state/m.room.power_levels');
    ($j->{invite} // 0) == 50;
}, 30), 'B has the new power levels');
($status, $body) = $bob->post("$api/rooms/" . esc($room) . '/invite', { user_id => "\@zoe:$fake" });
is($status, 403, 'bob (level 0) may not invite: 403, on B') or diag explain $body;
is(scalar(() = invites_seen()), $before, 'the fake was not asked');

# --- a server that cannot be reached ------------------------------------------------------
my $nowhere = '@x:localhost:1';
($status, $body) = $alice->post("$api/rooms/" . esc($room) . '/invite', { user_id => $nowhere });
ok($status == 502 || $status == 504, "an unreachable server: $status") or diag explain $body;
is($body->{errcode}, 'M_UNKNOWN', 'M_UNKNOWN');
ok(!defined member_pdu_on_a($nowhere), 'the room has no invite');

# the room still works: the held invites left no hole in the DAG
($status) = $alice->put("$api/rooms/" . esc($room) . '/send/m.room.message/a2',
                        { msgtype => 'm.text', body => 'still here' });
is($status, 200, 'alice sends on');
ok(wait_for(sub { grep { $_ eq 'still here' } @{ said($bob) } }, 30), 'and B gets it');

done_testing();

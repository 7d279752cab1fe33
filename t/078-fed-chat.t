# Two real servers chat: a user of B joins A's public room, then 100
# messages go each way through the fedsenders' transactions and the other
# side's inbound /send, each arriving once and in order on both servers,
# with the same room state on both.  Then B goes away (its nginx stopped)
# while alice goes on talking; back, B gets everything it missed, in
# order, once.  Last, alice bans bob: B learns it, and bob can send
# nothing more into the room.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Time::HiRes qw(time sleep);

%Test::Matrix::ServerOptions = (federation => 1);

my $A = server();
my $B = new_server(federation => 1);
my $api = '/_matrix/client/v3';

my $alice = Test::Matrix::Client->new(server => $A);
my ($status, $body) = $alice->register('alice', 'secret-password-1');
is($status, 200, 'alice registers on A');
($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', name => 'Chat' });
my $room = $body->{room_id};

my $bob = Test::Matrix::Client->new(server => $B);
($status, $body) = $bob->register('bob', 'secret-password-2');
is($status, 200, 'bob registers on B');
($status, $body) = $bob->post("$api/join/" . esc($room) . '?server_name=' . esc($A->server_name), {});
is($status, 200, "bob joins A's room") or diag explain $body;

# the bodies of the room's messages a client sees, in order, by /messages
sub said {
    my ($c) = @_;
    my (@all, $from);
    for (1 .. 20) {
        my ($s, $j) = $c->get("$api/rooms/" . esc($room) . '/messages?dir=b&limit=100'
                              . (defined $from ? "&from=$from" : ''));
        last unless $s == 200 && @{ $j->{chunk} // [] };
        push @all, map { $_->{content}{body} } grep { $_->{type} eq 'm.room.message' } @{ $j->{chunk} };
        last unless defined $j->{end};
        $from = $j->{end};
    }
    return [ reverse @all ];
}

my @sent;
for my $i (1 .. 100) {
    ($status, $body) = $alice->put("$api/rooms/" . esc($room) . "/send/m.room.message/a$i",
                                   { msgtype => 'm.text', body => "alice $i" });
    $status == 200 or fail("alice says $i: $status");
    push @sent, "alice $i";
}
ok(wait_for(sub { @{ said($bob) } >= 100 }, 60), "alice's messages reach B") or diag explain said($bob);
is_deeply(said($bob), \@sent, 'each once, in order');

for my $i (1 .. 100) {
    ($status, $body) = $bob->put("$api/rooms/" . esc($room) . "/send/m.room.message/b$i",
                                 { msgtype => 'm.text', body => "bob $i" });
    $status == 200 or fail("bob says $i: $status");
    push @sent, "bob $i";
}
ok(wait_for(sub { @{ said($alice) } >= 200 }, 60), "bob's messages reach A") or diag explain said($alice);
is_deeply(said($alice), \@sent, 'A has the conversation once, in order');
is_deeply(said($bob), \@sent, 'and so has B');

# the same state on both sides
sub state_of {
    my ($c) = @_;
    my ($s, $j) = $c->get("$api/rooms/" . esc($room) . '/state');
    return { map { ("$_->{type}|$_->{state_key}" => $_->{event_id}) } @{ $j // [] } };
}
is_deeply(state_of($bob), state_of($alice), 'A and B hold the same state');

# --- B away, and back ------------------------------------------------------------------
my $pid = $B->pid_of('nginx');
$B->hold('nginx');
kill 'TERM', $pid;
ok(wait_for(sub { !Test::Matrix::Server::alive($pid) }, 10), "B's nginx stopped");
for my $i (1 .. 20) {
    ($status, $body) = $alice->put("$api/rooms/" . esc($room) . "/send/m.room.message/away$i",
                                   { msgtype => 'm.text', body => "while away $i" });
    $status == 200 or fail("alice says $i while B is away: $status");
    push @sent, "while away $i";
}
sleep 3;    # A's fedsender fails and backs off
$B->unhold('nginx');
ok(wait_for(sub { my $r = eval { said($bob) } // []; @$r >= 220 }, 90), 'B back: what it missed arrives')
    or diag explain said($bob);
is_deeply(said($bob), \@sent, 'in order, each once');

# --- a ban on A ------------------------------------------------------------------------
($status, $body) = $alice->post("$api/rooms/" . esc($room) . '/ban', { user_id => $bob->user_id, reason => 'enough' });
is($status, 200, 'alice bans bob');
ok(wait_for(sub {
    my ($s, $j) = $bob->get("$api/rooms/" . esc($room) . '/state/m.room.member/' . esc($bob->user_id));
    # bob may no longer read the room's current state: his own ban is what he may see
    ($j->{membership} // '') eq 'ban' || $s == 403;
}, 30), 'B learns of the ban');
my $bid = $B->redis_cmd('HGET', "mx:{$room}:state", "m.room.member\x1f" . $bob->user_id);
like($B->redis_cmd('HGET', "mx:{$room}:pdu", $bid) // '', qr/"membership":"ban"/,
     "B's current state holds bob's ban");
($status, $body) = $bob->put("$api/rooms/" . esc($room) . '/send/m.room.message/after-ban',
                             { msgtype => 'm.text', body => 'still here?' });
is($status, 403, 'bob can send nothing more');
sleep 1;
ok(!(grep { $_ eq 'still here?' } @{ said($alice) }), 'and A has nothing new from him');

done_testing();

# Aliases of another server, both servers real: a user of B resolves A's
# #chat:<A> (B's module sends a request job, GET /query/directory, to A and
# answers with A's room_id and servers) and joins A's room by it (the room
# ID then joined through the servers A named, make_join/send_join).
# Errors: A's 404 comes back as 404 M_NOT_FOUND, a malformed alias is 400,
# the alias of a server that does not exist an error in bounded time.  Once
# B has the room, a join by the alias is an ordinary local join.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Time::HiRes qw(time);

%Test::Matrix::ServerOptions = (federation => 1);

my $A = server();
my $B = new_server(federation => 1);
my $api = '/_matrix/client/v3';

my $alias = '#chat:' . $A->server_name;

my $alice = Test::Matrix::Client->new(server => $A);
my ($status, $body) = $alice->register('alice', 'secret-password-1');
is($status, 200, 'alice registers on A');
($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', name => 'Chat',
                                                     room_alias_name => 'chat' });
is($status, 200, "and makes a public room aliased $alias") or diag explain $body;
my $room = $body->{room_id};

my $bob = Test::Matrix::Client->new(server => $B);
($status, $body) = $bob->register('bob', 'secret-password-2');
is($status, 200, 'bob registers on B');

# --- resolving --------------------------------------------------------------------------
($status, $body) = $bob->get("$api/directory/room/" . esc($alias));
is($status, 200, "B resolves A's alias") or diag explain $body;
is($body->{room_id}, $room, "to A's room");
is_deeply($body->{servers}, [$A->server_name], "with A as the server in the room");

($status, $body) = $bob->get("$api/directory/room/" . esc('#nope:' . $A->server_name));
is($status, 404, 'an alias A does not have: 404') or diag explain $body;
is($body->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');

($status, $body) = $bob->get("$api/directory/room/" . esc('#no-server'));
is($status, 400, 'a malformed alias: 400');
is($body->{errcode}, 'M_INVALID_PARAM', 'M_INVALID_PARAM');

my $t0 = time;
($status, $body) = $bob->get("$api/directory/room/" . esc('#x:nonexistent.invalid'));
is($status, 502, 'the alias of a server that does not exist: 502') or diag explain $body;
is($body->{errcode}, 'M_UNKNOWN', 'M_UNKNOWN');
ok(time - $t0 < 25, 'answered without waiting out the timeout');

($status, $body) = $bob->put("$api/directory/room/" . esc('#mine:' . $A->server_name), { room_id => $room });
is($status, 400, "B still makes no alias of A's");
($status, $body) = $bob->delete("$api/directory/room/" . esc($alias));
is($status, 400, "nor deletes one");
($status, $body) = $alice->get("$api/directory/room/" . esc($alias));
is($body->{room_id}, $room, "A's alias is still there");

# --- joining ----------------------------------------------------------------------------
($status, $body) = $bob->post("$api/join/" . esc('#nope:' . $A->server_name), {});
is($status, 404, 'joining an alias A does not have: 404');
is($body->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');

$t0 = time;
($status, $body) = $bob->post("$api/join/" . esc('#x:nonexistent.invalid'), {});
is($status, 502, 'joining the alias of a server that does not exist: 502') or diag explain $body;
ok(time - $t0 < 25, 'in bounded time');

($status, $body) = $bob->post("$api/join/" . esc('#no-server'), {});
is($status, 400, 'joining a malformed alias: 400');
is($body->{errcode}, 'M_INVALID_PARAM', 'M_INVALID_PARAM');

($status, $body) = $bob->get("$api/joined_rooms");
is_deeply($body->{joined_rooms}, [], 'none of that joined bob to anything');

($status, $body) = $bob->post("$api/join/" . esc($alias), {});
is($status, 200, "bob joins A's room by its alias") or diag explain $body;
is($body->{room_id}, $room, 'answered with the room ID');

($status, $body) = $alice->get("$api/rooms/" . esc($room) . '/members');
my %m = map { ($_->{state_key} => $_->{content}{membership}) } @{ $body->{chunk} // [] };
is($m{$bob->user_id}, 'join', "A's members: bob joined");

($status, $body) = $bob->get("$api/sync");
my $jr = $body->{rooms}{join}{$room};
ok($jr, "bob's /sync lists the room as joined") or diag explain $body->{rooms};
my %st = map { ("$_->{type}|$_->{state_key}" => $_) }
         @{ $jr->{state}{events} // [] }, @{ $jr->{timeline}{events} // [] };
is($st{'m.room.canonical_alias|'}{content}{alias}, $alias, 'with its canonical alias');
my $since = $body->{next_batch};

($status, $body) = $alice->put("$api/rooms/" . esc($room) . '/send/m.room.message/t1',
                               { msgtype => 'm.text', body => 'hello B' });
is($status, 200, 'alice says hello');
my @got;
ok(wait_for(sub {
    my ($s, $j) = $bob->get("$api/sync?timeout=1000&since=$since");
    return 0 unless $s == 200;
    $since = $j->{next_batch};
    push @got, map { $_->{content}{body} // () }
               grep { $_->{type} eq 'm.room.message' } @{ $j->{rooms}{join}{$room}{timeline}{events} // [] };
    return scalar @got;
}, 30), "alice's message reaches bob's /sync");
is_deeply(\@got, ['hello B'], 'once, as sent');

# --- the room is here now: a join by the alias is a local one ---------------------------
my $carol = Test::Matrix::Client->new(server => $B);
($status, $body) = $carol->register('carol', 'secret-password-3');
($status, $body) = $carol->post("$api/join/" . esc($alias), {});
is($status, 200, 'carol (on B) joins by the alias') or diag explain $body;
is($body->{room_id}, $room, 'the same room');
($status, $body) = $carol->get("$api/rooms/" . esc($room) . '/joined_members');
ok($body->{joined}{$carol->user_id} && $body->{joined}{$bob->user_id}, "B's room has carol and bob")
    or diag explain $body;
ok(wait_for(sub {
    my ($s, $j) = $alice->get("$api/rooms/" . esc($room) . '/joined_members');
    $j->{joined}{$carol->user_id};
}, 30), "carol's join reaches A");

($status, $body) = $bob->post("$api/rooms/" . esc($alias) . '/join', {});
is($status, 200, 'a join by the alias through /rooms/{id}/join, already joined: 200') or diag explain $body;
is($body->{room_id}, $room, 'the same room');

done_testing();

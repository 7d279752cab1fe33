# Joining a room of another server whose state holds events of many
# servers: the keys step of the joining side.  The resident is a fake
# (Test::Matrix::Fed's fake_remote) and so are its members' servers:
#
#   near     reachable, serves its own key
#   auth     reachable; only the authorising server of a member's restricted
#            join (join_authorised_via_users_server): its signature is
#            needed too
#   dead     a closed port: its key only the resident's notary gives
#   slow     accepts connections and never answers: asked of the notary
#            after a grace of 2 s, before its connection gives up (3 s)
#   gone     a closed port the notary knows nothing of either: its member's
#            join is dropped, the join goes on without it
#
# B's module sends one keys_many job for every server the state needs,
# the resident as notary; the fedsender fetches side by side and asks the
# notary (POST /_matrix/key/v2/query) for what it cannot fetch.  Then:
#   the room on B holds every member but gone's
#   a room whose power levels a user of gone set: the join fails, 502,
#   saying so
#   a second room of the same servers: no key fetched again, joined at once

use strict;
use warnings;
use lib 't/lib';

use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(time);

use Test::Matrix;
use Test::Matrix::Fed;

%Test::Matrix::ServerOptions = (federation => 1);

my $B = server();
my $fed = Test::Matrix::Fed->new(server => $B);
my $json = JSON::PP->new->canonical;
my $api = '/_matrix/client/v3';
my $dir = tempdir(CLEANUP => 1);
my $V = '10';

sub unesc { my $s = shift; $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge; $s }
sub slurp { Test::Matrix::Server::slurp(@_) }
sub write_json { Test::Matrix::Server::write_file("$dir/$_[0].new", $json->encode($_[1]));
                 rename "$dir/$_[0].new", "$dir/$_[0]" or die }

# --- the other servers ------------------------------------------------------------
# each fake writes down every request ("<tag> <time> <method> <path>
# <body>") and
# serves its key from $dir/<tag>.key, written once its name is known; the
# resident also serves make_join, send_join and the notary from
# $dir/rooms and $dir/notary
sub fake {
    my ($tag) = @_;
    return $fed->fake_remote(sub {
        my ($r) = @_;
        open my $log, '>>', "$dir/log" or die;
        print {$log} "$tag @{[ time ]} $r->{method} $r->{path} $r->{body}\n";
        close $log;
        my $path = $r->{path} =~ s/\?.*//r;
        if ($r->{method} eq 'GET' && $path eq '/_matrix/key/v2/server') {
            return (200, slurp("$dir/$tag.key"));
        }
        return (404, '{"errcode":"M_UNRECOGNIZED","error":"no"}') unless $tag eq 'resident';

        if ($r->{method} eq 'POST' && $path eq '/_matrix/key/v2/query') {
            my $ask = eval { $json->decode($r->{body}) } // {};
            my $known = $json->decode(slurp("$dir/notary"));
            my $me = $json->decode(slurp("$dir/resident.keyfile"));
            my @out = map { $fed->sign($me, $known->{$_}) }
                      grep { $known->{$_} } sort keys %{ $ask->{server_keys} // {} };
            return (200, $json->encode({ server_keys => \@out }));
        }
        my $rooms = $json->decode(slurp("$dir/rooms"));
        if ($r->{method} eq 'GET' && $path =~ m{^/_matrix/federation/v1/make_join/([^/]+)/([^/]+)$}
            && (my $room = $rooms->{ unesc($1) })) {
            my $user = unesc($2);
            return (200, $json->encode({ room_version => $V, event => {
                type => 'm.room.member', room_id => unesc($1), sender => $user, state_key => $user,
                content => { membership => 'join' }, origin_server_ts => int(time * 1000),
                depth => $room->{depth} + 1, prev_events => [ $room->{last} ],
                auth_events => $room->{auth} } }));
        }
        if ($r->{method} eq 'PUT' && $path =~ m{^/_matrix/federation/v2/send_join/([^/]+)/}
            && (my $room = $rooms->{ unesc($1) })) {
            return (200, $room->{answer});
        }
        if ($r->{method} eq 'PUT' && $path =~ m{^/_matrix/federation/v1/send/}) {
            return (200, '{"pdus":{}}');
        }
        return (404, '{"errcode":"M_NOT_FOUND","error":"no"}');
    });
}

# a port nothing listens on: connections refused
sub closed_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die;
    my $port = $s->sockport;
    close $s;
    return "localhost:$port";
}

my $resident = fake('resident');
my $near = fake('near');
my $auth = fake('auth');
my $dead = closed_port();
my $gone = closed_port();

# a listener that never accepts: the TCP handshake completes in the
# backlog, TLS never does
my $hole = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16) or die;
my $slow = 'localhost:' . $hole->sockport;

my %key;
my $until = int(time * 1000) + 86400_000;
for my $s ([resident => $resident], [near => $near], [auth => $auth], [dead => $dead], [slow => $slow],
           [gone => $gone]) {
    my ($tag, $name) = @$s;
    $key{$tag} = $fed->key($name);
    Test::Matrix::Server::write_file("$dir/$tag.key", $json->encode($fed->key_response($key{$tag}, $until)));
}
Test::Matrix::Server::write_file("$dir/resident.keyfile", $json->encode($key{resident}));

# the notary (the resident) knows dead's and slow's keys, not gone's
write_json(notary => { map { ($key{$_}{server} => $fed->key_response($key{$_}, $until)) } qw(dead slow) });

# --- the rooms --------------------------------------------------------------------------
my %signer = map { ($_ => $fed->signer($key{$_}, $V)) } keys %key;
my $ts = int(time * 1000) - 600_000;
my %rooms;

sub user { my ($name, $tag) = @_; "\@$name:$key{$tag}{server}" }

# a room of the resident: create, the creator's join, power levels (the
# creator and the admins given at 100), public join rules, then the
# members ([tag, name, extra content, countersigning tag]); then the
# events `more` makes (given the event maker and the IDs so far).  The
# state is the last event of each type and state key; the auth chain the
# first four and those replaced.
sub make_room {
    my ($name, %o) = @_;
    my $room = "!$name:$resident";
    my (@events, %id, $last);
    my $depth = 0;
    my $ev = sub {
        my ($tag, $type, $sk, $sender, $content, $auth, $counter) = @_;
        my $e = { type => $type, state_key => $sk, sender => $sender, room_id => $room, content => $content,
                  origin_server_ts => $ts++, depth => ++$depth, prev_events => [ $last // () ],
                  auth_events => $auth };
        my ($id, $text) = $signer{$tag}->($e);
        ($id, $text) = $signer{$counter}->($json->decode($text)) if $counter;
        push @events, ["$type\0$sk", $text];
        return $last = $id;
    };
    my $creator = user('creator', 'resident');
    $id{create} = $ev->('resident', 'm.room.create', '', $creator, { creator => $creator, room_version => $V }, []);
    $id{creator} = $ev->('resident', 'm.room.member', $creator, $creator, { membership => 'join' }, [$id{create}]);
    $id{pl} = $ev->('resident', 'm.room.power_levels', '', $creator,
                    { users => { $creator => 100, map { ($_ => 100) } @{ $o{admins} // [] } } },
                    [ @id{qw(create creator)} ]);
    $id{jr} = $ev->('resident', 'm.room.join_rules', '', $creator, { join_rule => 'public' },
                    [ @id{qw(create creator pl)} ]);
    for my $m (@{ $o{members} }) {
        my ($tag, $local, $extra, $counter) = @$m;
        my $u = user($local, $tag);
        $id{"member:$u"} = $ev->($tag, 'm.room.member', $u, $u, { membership => 'join', %{ $extra // {} } },
                                 [ @id{qw(create pl jr)} ], $counter);
    }
    $o{more}->($ev, \%id) if $o{more};

    my %latest = map { ($_->[0] => $_) } @events;
    my @state = grep { $latest{ $_->[0] } == $_ } @events;
    my @chain = ((grep { $latest{ $_->[0] } != $_ } @events), @events[0 .. 3]);
    my %seen;
    @chain = grep { !$seen{$_}++ } @chain;
    $rooms{$room} = { last => $last, depth => $depth, auth => [ @id{qw(create pl jr)} ],
                      answer => '{"auth_chain":[' . join(',', map { $_->[1] } @chain) . '],'
                              . '"members_omitted":false,"origin":"' . $resident . '",'
                              . '"state":[' . join(',', map { $_->[1] } @state) . ']}' };
    return $room;
}

my @members = ([resident => 'rosa'], [near => 'nina'], [dead => 'dora'], [slow => 'sam'], [gone => 'gus'],
               [dead => 'via', { join_authorised_via_users_server => user('anna', 'auth') }, 'auth']);
my $room1 = make_room('keys1', members => \@members);
my $room3 = make_room('keys3', members => \@members);

# power levels set by a user of gone: the join needs them
my $admin = user('admin', 'gone');
my $room2 = make_room('keys2', admins => [$admin], members => [[gone => 'admin']], more => sub {
    my ($ev, $id) = @_;
    $id->{pl} = $ev->('gone', 'm.room.power_levels', '', $admin,
                      { users => { user('creator', 'resident') => 100, $admin => 100 } },
                      [ @$id{qw(create pl)}, $id->{"member:$admin"} ]);
});
undef %signer;
write_json(rooms => \%rooms);

# what the fakes were asked since the last look: [tag, time, method, path,
# body]
my $seen = 0;
sub requests {
    my @lines = split /\n/, slurp("$dir/log") // '';
    my @new = @lines[$seen .. $#lines];
    $seen = @lines;
    return map { [ split / /, $_, 5 ] } @new;
}
sub asked { (eval { $json->decode($_[0][4]) } // {})->{server_keys} // {} }
sub queries { grep { $_->[0] eq 'resident' && $_->[3] eq '/_matrix/key/v2/query' } @_ }
# the servers the notary queries asked for
sub notary_asked { return sort map { keys %{ asked($_) } } queries(@_) }
sub key_fetches { my $tag = shift; scalar grep { $_->[0] eq $tag && $_->[3] eq '/_matrix/key/v2/server' } @_ }

my $bob = Test::Matrix::Client->new(server => $B);
my ($status, $body) = $bob->register('bob', 'secret-password-1');
is($status, 200, 'bob registers on B');

sub members_on_b {
    my ($room) = @_;
    my ($status, $body) = $bob->get("$api/rooms/" . esc($room) . '/joined_members');
    return $status == 200 ? $body->{joined} : {};
}

# --- a room of six servers ------------------------------------------------------------
my $t0 = time;
($status, $body) = $bob->post("$api/join/" . esc($room1) . '?server_name=' . esc($resident), {});
my $took = time - $t0;
is($status, 200, 'bob joins a room of six servers through the resident') or diag explain $body;
is($body->{room_id}, $room1, 'answered with the room ID');
ok($took < 12, sprintf('within the bound of the keys step (%.1f s)', $took));

my $joined = members_on_b($room1);
ok($joined->{ user($_->[1], $_->[0]) }, "$_->[0]'s member $_->[1] is a member on B")
    for grep { $_->[0] ne 'gone' } @members;
ok($joined->{ user('creator', 'resident') }, 'and the creator');
ok($joined->{ $bob->user_id }, 'and bob');
ok(!$joined->{ user('gus', 'gone') }, "gone's member is not: its join was dropped");
is(scalar keys %$joined, 7, 'seven in all');

my @req = requests();
is(key_fetches('resident', @req), 1, "the resident's key fetched from it");
is(key_fetches('near', @req), 1, "near's from it");
is(key_fetches('auth', @req), 1, "the authorising server's from it");
is_deeply([notary_asked(@req)], [sort map { $key{$_}{server} } qw(dead gone slow)],
          'the notary asked for those that could not be fetched: dead, gone, slow');
my ($q) = grep { asked($_)->{$slow} } queries(@req);
ok($q && $q->[1] - $t0 > 1.5 && $q->[1] - $t0 < 2.9,
   sprintf('slow asked of the notary after the grace, before its connection gave up (%.1f s)',
           $q ? $q->[1] - $t0 : -1));

my $stored = $fed->{server}->redis_cmd('FCALL', 'mx_serverkeys_get', 1, "mx:serverkeys:{$dead}", $dead);
is($stored->[3][1], $key{dead}{pk}, "dead's key in the cache, from the notary");
my $resp = $json->decode($stored->[2]);
is_deeply([keys %{ $resp->{signatures} }], [$dead], "its response kept as dead signed it");
$stored = $fed->{server}->redis_cmd('FCALL', 'mx_serverkeys_get', 1, "mx:serverkeys:{$slow}", $slow);
is($stored->[3][1], $key{slow}{pk}, "slow's too");

($status, $body) = $bob->get("$api/rooms/" . esc($room1) . '/state/m.room.member/' . esc(user('via', 'dead')));
is($status, 200, "the join authorised by a user of auth: in the room's state on B");
is($body->{join_authorised_via_users_server}, user('anna', 'auth'), 'as it was made');

# --- the power levels of a user whose server's keys cannot be had -----------------------
($status, $body) = $bob->post("$api/join/" . esc($room2) . '?server_name=' . esc($resident), {});
is($status, 502, 'a room whose power levels cannot be verified: 502') or diag explain $body;
like($body->{error} // '', qr/the join needs \S+ \(m\.room\.power_levels\).*cannot be verified/,
     'saying the join needs them');
($status, $body) = $bob->get("$api/joined_rooms");
is_deeply($body->{joined_rooms}, [$room1], 'bob is not in that room');
requests();

# --- the same servers again: the cache -------------------------------------------------
$t0 = time;
($status, $body) = $bob->post("$api/join/" . esc($room3) . '?server_name=' . esc($resident), {});
$took = time - $t0;
is($status, 200, 'a second room of the same servers: joined') or diag explain $body;
ok($took < 2.5, sprintf('at once (%.1f s): no grace waited', $took));
@req = requests();
is(key_fetches($_, @req), 0, "no key of $_ fetched again") for qw(resident near auth);
is_deeply([notary_asked(@req)], [$gone], 'the notary asked for gone only (its fetch failed a moment ago)');
$joined = members_on_b($room3);
is(scalar keys %$joined, 7, 'the same seven members');

done_testing();

# A since-token from before every daemon was killed and restarted yields
# exactly the events sent meanwhile: none missed, none twice.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $api = '/_matrix/client/v3';
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost'), timeout => 30);

my ($status, $json) = $alice->post("$api/createRoom", {});
my $r = $json->{room_id};
$alice->put("$api/rooms/$r/send/m.room.message/before", { body => 'before' });
($status, $json) = $alice->get("$api/sync");
my $since = $json->{next_batch};

for my $d (qw(roomserver syncer fedsender)) {
    my $pid = $srv->pid_of($d);
    kill 'KILL', $pid;
    ok(wait_for(sub { my $p = $srv->pid_of($d); $p && $p != $pid }, 10), "$d killed and back");
}

my @sent;
for my $i (1 .. 10) {
    ($status, $json) = $alice->put("$api/rooms/$r/send/m.room.message/after$i", { body => "after $i" });
    push @sent, $json->{event_id} if $status == 200;
}
is(scalar @sent, 10, 'sends after the restart succeed');

($status, $json) = $alice->get("$api/sync?since=$since");
is_deeply([map { $_->{event_id} } @{ $json->{rooms}{join}{$r}{timeline}{events} }], \@sent,
          'the old token gives exactly what was sent meanwhile');

($status, $json) = $alice->get("$api/sync?since=$json->{next_batch}");
is_deeply($json->{rooms}{join}, {}, 'and then nothing again');

done_testing();

# Presence: set and read, shared only with users who share a room, through
# /sync to them when it changes; /sync itself marks a user online.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $api = '/_matrix/client/v3';
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost'));
my $bob = client(token => $srv->make_token(user_id => '@bob:localhost'));
my $eve = client(token => $srv->make_token(user_id => '@eve:localhost'));

my ($status, $json) = $alice->post("$api/createRoom", { preset => 'public_chat' });
my $r = $json->{room_id};
$bob->post("$api/rooms/$r/join", {});

($status, $json) = $bob->get("$api/sync");
my $next = $json->{next_batch};

($status, $json) = $alice->put("$api/presence/\@alice:localhost/status",
                               { presence => 'unavailable', status_msg => 'at lunch' });
is($status, 200, 'alice sets her presence');

($status, $json) = $bob->get("$api/presence/\@alice:localhost/status");
is($status, 200, 'bob, in a room with her, reads it');
is($json->{presence}, 'unavailable', 'unavailable');
is($json->{status_msg}, 'at lunch', 'with her message');
ok(defined $json->{last_active_ago} && $json->{last_active_ago} < 60000, 'and how long ago she was active');

($status, $json) = $eve->get("$api/presence/\@alice:localhost/status");
is($status, 403, 'eve, in no room with her, may not');

($status, $json) = $bob->get("$api/sync?since=$next");
my ($p) = grep { $_->{sender} eq '@alice:localhost' } @{ $json->{presence}{events} };
is($p->{type}, 'm.presence', 'bob\'s sync carries her presence');
is($p->{content}{presence}, 'unavailable', 'as it is now');
$next = $json->{next_batch};

($status, $json) = $bob->get("$api/sync?since=$next");
ok(!(grep { $_->{sender} eq '@alice:localhost' } @{ $json->{presence}{events} }), 'once');

# a sync of alice's marks her online again
$alice->get("$api/sync");
($status, $json) = $bob->get("$api/presence/\@alice:localhost/status");
is($json->{presence}, 'online', 'her /sync made her online');
ok($json->{currently_active}, 'and currently active');

($status, $json) = $alice->get("$api/sync?set_presence=sleepy");
is($status, 400, 'an unknown set_presence: 400');
($status, $json) = $alice->put("$api/presence/\@alice:localhost/status", { presence => 'away' });
is($status, 400, 'an unknown presence: 400');
($status, $json) = $alice->put("$api/presence/\@bob:localhost/status", { presence => 'online' });
is($status, 403, "nobody sets another's presence");
($status, $json) = $alice->get("$api/presence/nobody/status");
is($status, 400, 'not a user ID: 400');

done_testing();

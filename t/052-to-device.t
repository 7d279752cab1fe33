# To-device messages: to one device or all of a user's, delivered through
# /sync until the device syncs past them, once per transaction; a parked
# sync wakes for one; bad bodies.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Time::HiRes qw(sleep time);

my $srv = server();
my $api = '/_matrix/client/v3';
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost', device_id => 'ADEV'));
my $b1 = client(timeout => 40);
my ($status, $json) = $b1->register('bob', 'bob-password-1');
is($status, 200, 'bob registered');
my $b2 = client(timeout => 40);
($status, $json) = $b2->login('bob', 'bob-password-1');
is($status, 200, 'and logged in on a second device');
my ($d1, $d2) = ($b1->{device_id}, $b2->{device_id});

sub todev {
    my ($c, $since) = @_;
    my ($s, $j) = $c->get("$api/sync" . ($since ? "?since=$since" : ''));
    return ($j->{to_device}{events}, $j->{next_batch});
}

my (undef, $n1) = todev($b1);
my (undef, $n2) = todev($b2);

($status, $json) = $alice->put("$api/sendToDevice/org.example.ping/tx1",
    { messages => { '@bob:localhost' => { $d1 => { n => 1 } } } });
is($status, 200, 'a message to one of bob\'s devices');
($status, $json) = $alice->put("$api/sendToDevice/org.example.ping/tx2",
    { messages => { '@bob:localhost' => { '*' => { n => 2 } } } });
is($status, 200, 'and one to all of them');

my ($ev, $n1b) = todev($b1, $n1);
is_deeply([map { $_->{content}{n} } @$ev], [1, 2], 'device 1 gets both, in order');
is($ev->[0]{sender}, '@alice:localhost', 'with the sender');
is($ev->[0]{type}, 'org.example.ping', 'and the type');
($ev) = todev($b2, $n2);
is_deeply([map { $_->{content}{n} } @$ev], [2], 'device 2 only the one to all');

($ev) = todev($b1, $n1);
is(scalar @$ev, 2, 'not synced past yet: given again');
($ev, my $n1c) = todev($b1, $n1b);
is_deeply($ev, [], 'once synced past: gone');
ok(!$srv->redis_cmd('ZCARD', "mx:{\@bob:localhost}:todevice:$d1"), 'and deleted');

($status, $json) = $alice->put("$api/sendToDevice/org.example.ping/tx1",
    { messages => { '@bob:localhost' => { $d1 => { n => 1 } } } });
is($status, 200, 'the same transaction again: 200');
($ev) = todev($b1, $n1c);
is_deeply($ev, [], 'but nothing sent twice');

if (my $pid = fork // die) {
    sleep 0.5;
    $alice->put("$api/sendToDevice/org.example.ping/tx3", { messages => { '@bob:localhost' => { $d1 => { n => 3 } } } });
    waitpid $pid, 0;
    is($? >> 8, 0, "bob's parked sync wakes for a to-device message");
} else {
    my $c = client(token => $b1->token, timeout => 40);
    my ($s, $j) = $c->get("$api/sync?since=$n1c&timeout=20000");
    exit((($j->{to_device}{events}[0]{content}{n} // 0) == 3) ? 0 : 1);
}

($status, $json) = $alice->put("$api/sendToDevice/org.example.ping/tx4", { messages => 5 });
is($status, 400, 'messages that are no object: 400');
($status, $json) = $alice->put("$api/sendToDevice/org.example.ping/tx5", { messages => { 'bob' => {} } });
is($status, 400, 'a key that is no user ID: 400');
($status, $json) = $alice->put("$api/sendToDevice/org.example.ping/tx6",
    { messages => { '@bob:localhost' => { $d1 => 'text' } } });
is($status, 400, 'a content that is no object: 400');
($status, $json) = $alice->put("$api/sendToDevice/org.example.ping/tx7",
    { messages => { '@carol:elsewhere.org' => { X => { n => 1 } } } });
is($status, 200, 'users of other servers are left for federation');

done_testing();

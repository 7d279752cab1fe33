# Ignoring users (m.ignored_user_list): the ignored user's messages leave
# the ignorer's /sync, /messages and /context, state events stay; their
# invites and to-device messages are not shown; they notify the ignorer of
# nothing; unignored, their later messages come again.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $api = '/_matrix/client/v3';
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost', device_id => 'ADEV'));
my $bob = client(token => $srv->make_token(user_id => '@bob:localhost', device_id => 'BDEV'));
my $carol = client(token => $srv->make_token(user_id => '@carol:localhost'));

my ($status, $json) = $alice->post("$api/createRoom", { preset => 'public_chat',
    power_level_content_override => { users => { '@bob:localhost' => 50 } } });
my $r = $json->{room_id};
is(($bob->post("$api/rooms/$r/join", {}))[0], 200, 'bob joins');
is(($carol->post("$api/rooms/$r/join", {}))[0], 200, 'carol joins');

my $n = 0;
sub say {
    my ($c, $body) = @_;
    my ($s, $j) = $c->put("$api/rooms/$r/send/m.room.message/i" . ++$n, { msgtype => 'm.text', body => $body });
    is($s, 200, "sent '$body'");
    return $j->{event_id};
}

sub bodies {
    my ($events) = @_;
    return [ map { $_->{content}{body} // "<$_->{type}>" } @{ $events // [] } ];
}

($status, $json) = $alice->get("$api/sync");
my $since = $json->{next_batch};

# --- ignoring ---------------------------------------------------------------------

($status, $json) = $alice->put("$api/user/\@alice:localhost/account_data/m.ignored_user_list",
                               { ignored_users => { '@bob:localhost' => {} } });
is($status, 200, 'alice ignores bob');
is_deeply($srv->redis_cmd('SMEMBERS', 'mx:{@alice:localhost}:ignored'), ['@bob:localhost'], 'recorded');

($status, $json) = $alice->get("$api/sync?since=$since");
$since = $json->{next_batch};
ok((grep { $_->{type} eq 'm.ignored_user_list' } @{ $json->{account_data}{events} }),
   'the list comes back as account data');

say($bob, 'from bob');
say($carol, 'from carol');
($status, $json) = $bob->put("$api/rooms/$r/state/m.room.topic", { topic => 'bob set this' });
is($status, 200, 'bob sets the topic');

($status, $json) = $alice->get("$api/sync?since=$since");
my $tl = $json->{rooms}{join}{$r}{timeline}{events};
is_deeply(bodies($tl), ['from carol', '<m.room.topic>'], "bob's message is not in alice's sync, his state event is");
is($json->{rooms}{join}{$r}{unread_notifications}{notification_count}, 1, "only carol's message notifies alice");
$since = $json->{next_batch};

($status, $json) = $carol->get("$api/sync");
my @ctl = grep { ($_->{content}{body} // '') eq 'from bob' } @{ $json->{rooms}{join}{$r}{timeline}{events} };
is(scalar @ctl, 1, 'carol, who ignores nobody, sees it');

($status, $json) = $alice->get("$api/rooms/$r/messages?dir=b&limit=10");
is($status, 200, '/messages');
my @b = grep { ($_->{content}{body} // '') =~ /^from / } @{ $json->{chunk} };
is_deeply(bodies(\@b), ['from carol'], "/messages leaves bob's message out");

($status, $json) = $alice->get("/_matrix/client/v3/notifications");
ok(!(grep { $_->{event}{sender} eq '@bob:localhost' } @{ $json->{notifications} }),
   'no notification from bob');

# --- invites and to-device from the ignored --------------------------------------------

($status, $json) = $bob->post("$api/createRoom", { name => "bob's room" });
my $br = $json->{room_id};
($status, $json) = $bob->post("$api/rooms/$br/invite", { user_id => '@alice:localhost' });
is($status, 200, 'bob invites alice');
($status, $json) = $bob->put("$api/sendToDevice/m.test/t1",
                             { messages => { '@alice:localhost' => { ADEV => { hello => 'from bob' } } } });
is($status, 200, 'bob sends alice a to-device message');
($status, $json) = $carol->put("$api/sendToDevice/m.test/t1",
                               { messages => { '@alice:localhost' => { ADEV => { hello => 'from carol' } } } });

($status, $json) = $alice->get("$api/sync?since=$since");
ok(!$json->{rooms}{invite}{$br}, "bob's invite is not shown");
is_deeply([ map { $_->{content}{hello} } @{ $json->{to_device}{events} } ], ['from carol'],
          "bob's to-device message is not delivered, carol's is");
$since = $json->{next_batch};

# --- unignoring ---------------------------------------------------------------------------

($status, $json) = $alice->put("$api/user/\@alice:localhost/account_data/m.ignored_user_list",
                               { ignored_users => {} });
is($status, 200, 'alice ignores nobody');
is($srv->redis_cmd('EXISTS', 'mx:{@alice:localhost}:ignored'), 0, 'the set is gone');
is($srv->redis_cmd('SISMEMBER', 'mx:ignorers', '@alice:localhost'), 0, 'and alice is no ignorer');
say($bob, 'bob again');
($status, $json) = $alice->get("$api/sync?since=$since");
is_deeply(bodies($json->{rooms}{join}{$r}{timeline}{events}), ['bob again'], "bob's later message comes");

# --- bad content is stored as given, and ignores nobody ---------------------------------------

($status, $json) = $alice->put("$api/user/\@alice:localhost/account_data/m.ignored_user_list",
                               { ignored_users => 'everyone' });
ok($status == 200 || $status == 400, 'an ignored_users that is no object: accepted as data or refused');
is($srv->redis_cmd('EXISTS', 'mx:{@alice:localhost}:ignored'), 0, 'nobody is ignored by it');

done_testing();

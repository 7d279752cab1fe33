# Push rules: the spec's server-default rules for every user, the user's own
# rules of every kind placed as the spec says (before/after included), the
# changes to enabled and actions of any rule, and every refusal.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;

my $T = JSON::PP::true;
my $F = JSON::PP::false;
my $P = '/_matrix/client/v3/pushrules';

my $srv = server();
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost'));
my $bob = client(token => $srv->make_token(user_id => '@bob:localhost'));

my @override = qw(.m.rule.master .m.rule.suppress_notices .m.rule.invite_for_me
                  .m.rule.member_event .m.rule.is_user_mention
                  .m.rule.contains_display_name .m.rule.is_room_mention
                  .m.rule.roomnotif .m.rule.tombstone .m.rule.reaction
                  .m.rule.room.server_acl .m.rule.suppress_edits);
my @defaults_override = @override[1 .. $#override];
my @underride = qw(.m.rule.call .m.rule.encrypted_room_one_to_one
                   .m.rule.room_one_to_one .m.rule.message .m.rule.encrypted);

sub ids { [ map { $_->{rule_id} } @{ $_[0] } ] }

sub global {
    my ($c) = @_;
    my ($status, $json) = $c->get("$P/");
    is($status, 200, 'GET /pushrules/') or diag(explain($json));
    return $json->{global};
}

# --- the server defaults ------------------------------------------------------

my ($status, $json) = $alice->get("$P/");
is($status, 200, 'a new user has push rules');
is_deeply([ sort keys %$json ], [ 'global' ], 'one scope, global');
my $g = $json->{global};
is_deeply([ sort keys %$g ], [ qw(content override room sender underride) ], 'five kinds');
is_deeply(ids($g->{override}), \@override, 'every default override rule, in the spec\'s order');
is_deeply(ids($g->{content}), [ '.m.rule.contains_user_name' ], 'the default content rule');
is_deeply($g->{room}, [], 'no room rules');
is_deeply($g->{sender}, [], 'no sender rules');
is_deeply(ids($g->{underride}), \@underride, 'every default underride rule, in order');

is_deeply($g->{content}[0], {
    rule_id => '.m.rule.contains_user_name', default => $T, enabled => $T,
    pattern => 'alice',
    actions => [ 'notify', { set_tweak => 'sound', value => 'default' }, { set_tweak => 'highlight' } ],
}, 'contains_user_name matches the localpart');
is_deeply($g->{override}[0], { rule_id => '.m.rule.master', default => $T, enabled => $F,
                               conditions => [], actions => [] }, 'the master rule, off');
is($g->{override}[2]{conditions}[2]{pattern}, '@alice:localhost', 'invite_for_me names the user');
is($g->{override}[4]{conditions}[0]{value}, '@alice:localhost', 'is_user_mention too');
is($g->{override}[4]{conditions}[0]{key}, 'content.m\\.mentions.user_ids', 'with the escaped dot');
my $bad = grep { !(ref $_->{actions} eq 'ARRAY' && $_->{default} && defined $_->{enabled}) }
          map { @{ $g->{$_} } } keys %$g;
is($bad, 0, 'every rule has actions, default and enabled');

($status, $json) = $alice->get("$P/global/");
is($status, 200, '/pushrules/global/');
is_deeply($json, $g, 'is the global ruleset itself');
($status, $json) = $alice->get('/_matrix/client/r0/pushrules/');
is_deeply($json->{global}, $g, 'the r0 path too');

is_deeply(ids(global($bob)->{override}), \@override, 'another user has the same rules');
is(global($bob)->{content}[0]{pattern}, 'bob', 'with their own localpart');

($status, $json) = $alice->get("$P/global/override/.m.rule.message");
is($status, 404, 'a default of another kind: 404');
($status, $json) = $alice->get("$P/global/underride/.m.rule.message");
is($status, 200, 'one rule');
is_deeply($json, { rule_id => '.m.rule.message', default => $T, enabled => $T, actions => [ 'notify' ],
                   conditions => [ { kind => 'event_match', key => 'type', pattern => 'm.room.message' } ] },
          'as the spec defines it');
($status, $json) = $alice->get("$P/global/underride/");
is($status, 200, 'one kind');
is_deeply(ids($json), \@underride, 'all its rules');

# --- refusals of the path -------------------------------------------------------

($status, $json) = $alice->get("$P/global/override/nocake");
is($status, 404, 'an unknown rule: 404');
is($json->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');
($status, $json) = $alice->get("$P/device/");
is($status, 400, 'another scope: 400');
is($json->{errcode}, 'M_INVALID_PARAM', 'M_INVALID_PARAM');
($status, $json) = $alice->get("$P/device/override/.m.rule.master");
is($json->{errcode}, 'M_INVALID_PARAM', 'for a rule too');
($status, $json) = $alice->put("$P/device/override/x", { actions => [] });
is($json->{errcode}, 'M_INVALID_PARAM', 'and for a PUT');
($status, $json) = $alice->get("$P/global/overide/.m.rule.master");
is($status, 400, 'an unknown kind: 400');
is($json->{errcode}, 'M_INVALID_PARAM', 'M_INVALID_PARAM');
($status, $json) = $alice->get("$P/global/override/.m.rule.master/colour");
is($status, 404, 'an unknown attribute: 404');
is($json->{errcode}, 'M_UNRECOGNIZED', 'M_UNRECOGNIZED');
($status, $json) = client()->get("$P/");
is($status, 401, 'no token: 401');
($status, $json) = $alice->post("$P/global/override/x", { actions => [] });
is($status, 405, 'POST: 405');

# --- the user's override rules: place and order ----------------------------------

my $cond = [ { kind => 'event_match', key => 'content.body', pattern => 'beer' },
             { kind => 'room_member_count', is => '<=10' } ];
($status, $json) = $alice->put("$P/global/override/a", { conditions => $cond,
                               actions => [ 'notify', { set_tweak => 'sound', value => 'beeroclock.wav' } ] });
is($status, 200, 'a new override rule');
is_deeply($json, {}, 'answers {}');
($status, $json) = $alice->get("$P/global/override/a");
is_deeply($json, { rule_id => 'a', default => $F, enabled => $T, conditions => $cond,
                   actions => [ 'notify', { set_tweak => 'sound', value => 'beeroclock.wav' } ] },
          'reads back, enabled, not default');
is_deeply(ids(global($alice)->{override}), [ '.m.rule.master', 'a', @defaults_override ],
          'below the master rule, above the other defaults');

sub put_rule {
    my ($kind, $id, $query, $body, $name) = @_;
    my ($s, $j) = $alice->put("$P/global/$kind/$id$query", $body // { actions => [] });
    is($s, 200, $name) or diag(explain($j));
}

sub order_is {
    my ($kind, $want, $name) = @_;
    my @got = grep { !/^\./ } @{ ids(global($alice)->{$kind}) };
    is_deeply(\@got, $want, $name);
}

put_rule('override', 'b', '', undef, 'a second rule');
order_is('override', [ qw(b a) ], 'a new rule is the most important of the user\'s');
put_rule('override', 'c', '?after=b', undef, 'after=b');
order_is('override', [ qw(b c a) ], 'goes just below b');
put_rule('override', 'd', '?before=a', undef, 'before=a');
order_is('override', [ qw(b c d a) ], 'goes just above a');
put_rule('override', 'e', '?before=b&after=a', undef, 'both before and after');
order_is('override', [ qw(e b c d a) ], 'before wins');
put_rule('override', 'z', '?after=a', undef, 'after the last');
order_is('override', [ qw(e b c d a z) ], 'is last');

($status, $json) = $alice->put("$P/global/override/a/enabled", { enabled => JSON::PP::false });
is($status, 200, 'disable a');
put_rule('override', 'a', '?before=e', { actions => [ 'notify' ], conditions => [] }, 'move a to the top');
order_is('override', [ qw(a e b c d z) ], 'moved');
($status, $json) = $alice->get("$P/global/override/a");
is_deeply($json, { rule_id => 'a', default => $F, enabled => $F, conditions => [], actions => [ 'notify' ] },
          'replaced, still disabled');
put_rule('override', 'd', '', { actions => [ 'dont_notify' ] }, 'replace d without before/after');
order_is('override', [ qw(a e b c d z) ], 'keeps its place');
($status, $json) = $alice->get("$P/global/override/d");
is_deeply($json->{actions}, [], 'historical dont_notify is dropped');
is_deeply($json->{conditions}, [], 'no conditions: []');
put_rule('override', 'd', '?before=d', undef, 'before itself');
order_is('override', [ qw(a e b c d z) ], 'stays');

($status, $json) = $alice->put("$P/global/override/y?before=nosuch", { actions => [] });
is($status, 400, 'before an unknown rule: 400');
is($json->{errcode}, 'M_UNKNOWN', 'M_UNKNOWN');
like($json->{error}, qr/nosuch/, 'naming it');
($status, $json) = $alice->put("$P/global/override/y?after=nosuch", { actions => [] });
is($json->{errcode}, 'M_UNKNOWN', 'after an unknown rule too');
($status, $json) = $alice->put("$P/global/override/y?before=.m.rule.suppress_notices", { actions => [] });
is($status, 400, 'relative to a server default: 400');
is($json->{errcode}, 'M_INVALID_PARAM', 'M_INVALID_PARAM');
($status, $json) = $alice->put("$P/global/override/y?after=.m.rule.master", { actions => [] });
is($json->{errcode}, 'M_INVALID_PARAM', 'after one too');
($status, $json) = $alice->put("$P/global/underride/y?before=a", { actions => [] });
is($json->{errcode}, 'M_UNKNOWN', 'before/after name a rule of the same kind');
($status, $json) = $alice->get("$P/global/override/y");
is($status, 404, 'none of those was created');
order_is('override', [ qw(a e b c d z) ], 'the order is unchanged');

# --- rules of the other kinds --------------------------------------------------

put_rule('content', 'cake', '', { pattern => 'cake', actions => [ 'notify', { set_tweak => 'sound', value => 'cakealarm.wav' } ] },
         'a content rule');
put_rule('content', 'lie', '?before=cake', { pattern => 'cake*lie', actions => [ 'notify' ] }, 'another before it');
$g = global($alice);
is_deeply(ids($g->{content}), [ qw(lie cake .m.rule.contains_user_name) ], 'above the default content rule');
is_deeply($g->{content}[1], { rule_id => 'cake', default => $F, enabled => $T, pattern => 'cake',
                              actions => [ 'notify', { set_tweak => 'sound', value => 'cakealarm.wav' } ] },
          'a content rule has a pattern and no conditions');

put_rule('room', '%21dj234r78wl45Gh4D%3Amatrix.org', '', { actions => [] }, 'a room rule');
put_rule('sender', '@spambot:matrix.org', '', { actions => [] }, 'a sender rule');
put_rule('underride', 'u1', '', { actions => [ 'notify' ], conditions => [ { kind => 'contains_display_name' } ] },
         'an underride rule');
$g = global($alice);
is_deeply($g->{room}, [ { rule_id => '!dj234r78wl45Gh4D:matrix.org', default => $F, enabled => $T, actions => [] } ],
          'the room rule, named by its room');
is_deeply(ids($g->{sender}), [ '@spambot:matrix.org' ], 'the sender rule');
is_deeply(ids($g->{underride}), [ 'u1', @underride ], 'underride: the user\'s above the defaults');
is_deeply(ids($g->{override}), [ '.m.rule.master', qw(a e b c d z), @defaults_override ], 'override unchanged');

is_deeply(ids(global($bob)->{override}), \@override, 'the other user sees none of them');
($status, $json) = $bob->get("$P/global/override/a");
is($status, 404, 'not even by name');
($status, $json) = $bob->delete("$P/global/override/a");
is($status, 404, 'nor delete them');

# --- bodies and IDs refused ---------------------------------------------------

sub refused {
    my ($path, $body, $code, $name) = @_;
    my ($s, $j) = $alice->put("$P/global/$path", $body);
    is($s, 400, "$name: 400");
    is($j->{errcode}, $code, "$name: $code") or diag(explain($j));
}

refused('override/.m.rule.master', { actions => [] }, 'M_INVALID_PARAM', 'replacing a server default');
refused('override/.mine', { actions => [] }, 'M_INVALID_PARAM', 'an ID starting with a dot');
refused('override/a%2Fb', { actions => [] }, 'M_INVALID_PARAM', 'an ID with a slash');
refused('override/a%5Cb', { actions => [] }, 'M_INVALID_PARAM', 'an ID with a backslash');
refused('override/x', {}, 'M_MISSING_PARAM', 'no actions');
refused('override/x', { actions => 'notify' }, 'M_BAD_JSON', 'actions not an array');
refused('override/x', { actions => [ 'ring' ] }, 'M_INVALID_PARAM', 'an unknown action');
refused('override/x', { actions => [ 5 ] }, 'M_BAD_JSON', 'an action that is a number');
refused('override/x', { actions => [ { value => 'x' } ] }, 'M_BAD_JSON', 'a tweak without set_tweak');
refused('override/x', { actions => [], conditions => {} }, 'M_BAD_JSON', 'conditions not an array');
refused('underride/x', { actions => [], conditions => [ { key => 'type' } ] }, 'M_BAD_JSON', 'a condition without kind');
refused('underride/x', { actions => [], conditions => [ { kind => 'event_match', key => 'type' } ] },
        'M_BAD_JSON', 'event_match without pattern');
refused('underride/x', { actions => [], conditions => [ { kind => 'room_member_count', is => 'two' } ] },
        'M_BAD_JSON', 'a member count that is no number');
refused('content/x', { actions => [] }, 'M_MISSING_PARAM', 'a content rule without pattern');
refused('content/x', { actions => [], pattern => [ 'x' ] }, 'M_BAD_JSON', 'a pattern that is no string');
refused('room/notaroom', { actions => [] }, 'M_INVALID_PARAM', 'a room rule not named by a room ID');
refused('sender/notauser', { actions => [] }, 'M_INVALID_PARAM', 'a sender rule not named by a user ID');
refused('override/x', '{"actions": [', 'M_NOT_JSON', 'a body that is not JSON');
refused('override/x', '["notify"]', 'M_BAD_JSON', 'a body that is no object');
refused('override/x', '', 'M_NOT_JSON', 'no body');
($status, $json) = $alice->put("$P/global/override/x", { actions => [], conditions => [ { kind => 'org.example.future' } ] });
is($status, 200, 'an unknown condition kind is kept (it never matches)');
($status, $json) = $alice->delete("$P/global/override/x");
is($status, 200, 'and deleted again');

# --- enabled -------------------------------------------------------------------

($status, $json) = $alice->get("$P/global/override/.m.rule.master/enabled");
is($status, 200, 'enabled of a default');
is_deeply($json, { enabled => $F }, 'the master rule is off');
($status, $json) = $alice->put("$P/global/override/.m.rule.master/enabled", { enabled => $T });
is($status, 200, 'turn it on');
is_deeply($json, {}, 'answers {}');
is_deeply(($alice->get("$P/global/override/.m.rule.master/enabled"))[1], { enabled => $T }, 'it is on');
$g = global($alice);
is($g->{override}[0]{enabled}, $T, 'in the ruleset too');
is($g->{override}[0]{rule_id}, '.m.rule.master', 'still first');
is(global($bob)->{override}[0]{enabled}, $F, 'not for anyone else');
($status, $json) = $alice->put("$P/global/override/.m.rule.master/enabled", { enabled => $F });
is_deeply(($alice->get("$P/global/override/.m.rule.master"))[1],
          { rule_id => '.m.rule.master', default => $T, enabled => $F, conditions => [], actions => [] },
          'and off again: as it was');

($status, $json) = $alice->put("$P/global/underride/.m.rule.message/enabled", { enabled => $F });
is($status, 200, 'disable a default underride rule');
is(($alice->get("$P/global/underride/.m.rule.message"))[1]{enabled}, $F, 'disabled');
($status, $json) = $alice->put("$P/global/underride/.m.rule.message/enabled", { enabled => $T });
is(($alice->get("$P/global/underride/.m.rule.message"))[1]{enabled}, $T, 're-enabled');

is_deeply(($alice->get("$P/global/override/a/enabled"))[1], { enabled => $F }, 'a rule of the user\'s, disabled above');
($status, $json) = $alice->put("$P/global/override/a/enabled", { enabled => $T });
is_deeply(($alice->get("$P/global/override/a/enabled"))[1], { enabled => $T }, 're-enabled');

($status, $json) = $alice->put("$P/global/override/.m.rule.master/enabled", {});
is($json->{errcode}, 'M_MISSING_PARAM', 'no enabled: M_MISSING_PARAM');
($status, $json) = $alice->put("$P/global/override/.m.rule.master/enabled", { enabled => 'yes' });
is($json->{errcode}, 'M_BAD_JSON', 'enabled not a boolean: M_BAD_JSON');
($status, $json) = $alice->put("$P/global/override/nosuch/enabled", { enabled => $T });
is($status, 404, 'enabled of an unknown rule: 404');
is($json->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');
($status, $json) = $alice->put("$P/global/override/.m.rule.nosuch/enabled", { enabled => $T });
is($status, 404, 'of an unknown default: 404');
($status, $json) = $alice->put("$P/global/content/.m.rule.master/enabled", { enabled => $T });
is($status, 404, 'of a default under another kind: 404');
($status, $json) = $alice->get("$P/global/override/nosuch/enabled");
is($status, 404, 'GET of an unknown rule: 404');

# --- actions -------------------------------------------------------------------

($status, $json) = $alice->get("$P/global/underride/.m.rule.message/actions");
is_deeply($json, { actions => [ 'notify' ] }, 'actions of a default');
my $bing = [ 'notify', { set_tweak => 'sound', value => 'bing' }, { set_tweak => 'highlight', value => $F } ];
($status, $json) = $alice->put("$P/global/underride/.m.rule.message/actions", { actions => [ @$bing, 'coalesce' ] });
is($status, 200, 'change them');
is_deeply(($alice->get("$P/global/underride/.m.rule.message/actions"))[1], { actions => $bing },
          'changed (and coalesce dropped)');
is_deeply(($alice->get("$P/global/underride/.m.rule.message"))[1]{actions}, $bing, 'in the rule');
is_deeply(global($alice)->{underride}[4]{actions}, $bing, 'and the ruleset');
is_deeply(global($bob)->{underride}[3]{actions}, [ 'notify' ], 'only for this user');
($status, $json) = $alice->put("$P/global/underride/.m.rule.message/actions", { actions => [ 'notify' ] });
is_deeply(($alice->get("$P/global/underride/.m.rule.message"))[1]{actions}, [ 'notify' ], 'and back');

($status, $json) = $alice->put("$P/global/content/cake/actions", { actions => [] });
is($status, 200, 'actions of a rule of the user\'s');
is_deeply(($alice->get("$P/global/content/cake"))[1]{actions}, [], 'changed');
put_rule('content', 'cake', '', { pattern => 'cakes', actions => [ 'notify' ] }, 'replace the rule');
is_deeply(($alice->get("$P/global/content/cake"))[1], { rule_id => 'cake', default => $F, enabled => $T,
                                                         pattern => 'cakes', actions => [ 'notify' ] },
          'a replaced rule takes the new actions');

($status, $json) = $alice->put("$P/global/underride/.m.rule.message/actions", {});
is($json->{errcode}, 'M_MISSING_PARAM', 'no actions: M_MISSING_PARAM');
($status, $json) = $alice->put("$P/global/underride/.m.rule.message/actions", { actions => {} });
is($json->{errcode}, 'M_BAD_JSON', 'actions not an array: M_BAD_JSON');
($status, $json) = $alice->put("$P/global/underride/.m.rule.message/actions", { actions => [ 'explode' ] });
is($json->{errcode}, 'M_INVALID_PARAM', 'an unknown action: M_INVALID_PARAM');
($status, $json) = $alice->put("$P/global/underride/nosuch/actions", { actions => [] });
is($status, 404, 'actions of an unknown rule: 404');

# --- delete --------------------------------------------------------------------

($status, $json) = $alice->delete("$P/global/override/.m.rule.master");
is($status, 400, 'a server default cannot be deleted');
is($json->{errcode}, 'M_INVALID_PARAM', 'M_INVALID_PARAM');
is(ids(global($alice)->{override})->[0], '.m.rule.master', 'it is still there');
($status, $json) = $alice->delete("$P/global/override/.m.rule.nosuch");
is($status, 404, 'an unknown dotted rule: 404');
($status, $json) = $alice->delete("$P/global/override/nosuch");
is($status, 404, 'an unknown rule: 404');
is($json->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');

($status, $json) = $alice->delete("$P/global/override/b");
is($status, 200, 'delete a rule of the user\'s');
is_deeply($json, {}, 'answers {}');
order_is('override', [ qw(a e c d z) ], 'it is gone from the order');
($status, $json) = $alice->get("$P/global/override/b");
is($status, 404, 'and from the rules');
($status, $json) = $alice->delete("$P/global/override/b");
is($status, 404, 'a second time: 404');
put_rule('override', 'b', '', undef, 'the same ID again');
($status, $json) = $alice->get("$P/global/override/b");
is($json->{enabled}, $T, 'a new rule, enabled');
order_is('override', [ qw(b a e c d z) ], 'at the top');

for my $id (qw(a b c d e z)) {
    $alice->delete("$P/global/override/$id");
}
$alice->delete("$P/global/content/cake");
$alice->delete("$P/global/content/lie");
$alice->delete("$P/global/room/%21dj234r78wl45Gh4D%3Amatrix.org");
$alice->delete("$P/global/sender/\@spambot:matrix.org");
$alice->delete("$P/global/underride/u1");
my $want = global($bob);
$want->{content}[0]{pattern} = 'alice';
$want->{override}[2]{conditions}[2]{pattern} = '@alice:localhost';
$want->{override}[4]{conditions}[0]{value} = '@alice:localhost';
is_deeply(global($alice), $want, 'all deleted: the defaults again');
my $keys = $srv->redis_cmd('KEYS', 'mx:{@alice:localhost}:pushrules*');
is_deeply([ sort @$keys ], [ 'mx:{@alice:localhost}:pushrules' ], 'no order lists left');
my $fields = $srv->redis_cmd('HKEYS', 'mx:{@alice:localhost}:pushrules');
is_deeply([ sort @$fields ], [ sort 'enabled:override/.m.rule.master', 'enabled:underride/.m.rule.message',
                                    'actions:underride/.m.rule.message' ],
          'only the changes to the defaults are kept');

done_testing();

# Filters: POST /user/{userId}/filter checks the filter against the spec's
# schema (M_BAD_JSON with the field named), stores it, and gives the same ID
# for the same filter; GET gives it back; only one's own filters.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $alice = client(token => $srv->make_token(user_id => '@alice:localhost'));
my $bob = client(token => $srv->make_token(user_id => '@bob:localhost'));
my $base = '/_matrix/client/v3/user/@alice:localhost/filter';

my $filter = {
    room => {
        state    => { types => ['m.room.*'], not_rooms => ['!726s6s6q:example.com'], lazy_load_members => JSON::PP::true },
        timeline => { limit => 10, types => ['m.room.message'], not_senders => ['@spam:example.com'] },
        ephemeral => { types => ['m.receipt', 'm.typing'] },
    },
    presence     => { types => ['m.presence'], not_senders => ['@alice:example.com'] },
    event_format => 'client',
    event_fields => ['type', 'content', 'sender'],
};

my ($status, $json) = $alice->post($base, $filter);
is($status, 200, 'a filter from the spec example is stored');
like($json->{filter_id} // '', qr/^[0-9]+$/, 'its ID is a string of digits');
my $id = $json->{filter_id};

($status, $json) = $alice->get("$base/$id");
is($status, 200, 'GET gives it back');
is_deeply($json, $filter, 'the same filter') or diag explain $json;

($status, $json) = $alice->post($base, $filter);
is($json->{filter_id}, $id, 'the same filter uploaded again keeps its ID');

($status, $json) = $alice->post($base, { room => { timeline => { limit => 5 } } });
is($status, 200, 'another filter');
isnt($json->{filter_id}, $id, 'gets another ID');
my $id2 = $json->{filter_id};
($status, $json) = $alice->get("$base/$id2");
is_deeply($json, { room => { timeline => { limit => 5 } } }, 'and reads back as itself');

($status, $json) = $alice->post($base, {});
is($status, 200, 'the empty filter is a filter');

# --- what the schema refuses ---------------------------------------------

my @bad = (
    [ { room => { timeline => { limit => 'ten' } } },      'limit',        'a limit that is not a number' ],
    [ { room => { timeline => { limit => 0 } } },          'limit',        'a limit below 1' ],
    [ { room => { timeline => { types => 'm.room.*' } } }, 'types',        'types that are not a list' ],
    [ { room => { timeline => { types => [1] } } },        'types',        'types that are not strings' ],
    [ { room => { rooms => ['not a room'] } },             'rooms',        'rooms that are not room IDs' ],
    [ { room => { state => { senders => ['alice'] } } },   'senders',      'senders that are not user IDs' ],
    [ { event_format => 'xml' },                           'event_format', 'an unknown event_format' ],
    [ { event_fields => 'type' },                          'event_fields', 'event_fields not a list' ],
    [ { room => 5 },                                       'room',         'room that is not an object' ],
    [ { room => { state => { lazy_load_members => 'yes' } } }, 'lazy_load_members', 'a flag that is not a boolean' ],
);

for my $b (@bad) {
    my ($body, $field, $what) = @$b;
    ($status, $json) = $alice->post($base, $body);
    is($status, 400, "$what: 400");
    is($json->{errcode}, 'M_BAD_JSON', "$what: M_BAD_JSON");
    like($json->{error} // '', qr/\Q$field\E/, "$what: names $field");
}

($status, $json) = $alice->post($base, '{"room":');
is($status, 400, 'malformed JSON: 400');
is($json->{errcode}, 'M_NOT_JSON', 'malformed JSON: M_NOT_JSON');

($status, $json) = $alice->post($base, '[1,2]');
is($status, 400, 'a JSON array: 400');
like($json->{errcode}, qr/^M_(BAD|NOT)_JSON$/, 'a JSON array: a JSON error');

# --- whose filters -----------------------------------------------------------

($status, $json) = $bob->post($base, $filter);
is($status, 403, "bob may not create alice's filters");
is($json->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');

($status, $json) = $bob->get("$base/$id");
is($status, 403, "bob may not read alice's filters");

($status, $json) = $bob->get("/_matrix/client/v3/user/\@bob:localhost/filter/$id");
is($status, 404, "alice's filter ID is not bob's");
is($json->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');

for my $odd ('999999', 'next', 'sha:abc', 'x' x 300) {
    ($status, $json) = $alice->get("$base/$odd");
    is($status, 404, "filter ID '" . substr($odd, 0, 12) . "': 404");
}

($status, $json) = client()->post($base, $filter);
is($status, 401, 'without a token: 401');
is($json->{errcode}, 'M_MISSING_TOKEN', 'M_MISSING_TOKEN');

# stored once per distinct filter, in the user's hash
my $n = $srv->redis_cmd('HLEN', 'mx:{@alice:localhost}:filters');
is($n, 1 + 3 * 2, 'three distinct filters: an entry and a hash each, and the counter');

done_testing();

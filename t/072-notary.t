# The notary: /_matrix/key/v2/query answers with servers' own key
# responses, each signed by this server as well.  This server's own keys
# come from the module; others' from the key cache, fetched through a keys
# job on mx:fedjobs when nothing stored will do (the fedsender is played by
# a fake); a server that cannot be fetched is left out.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use Time::HiRes qw(time);

my ($srv, $fed, $http) = Test::Matrix::Fed->without_fedsender;
my $json = JSON::PP->new->canonical;

my ($id, $pk) = split ' ', scalar $fed->ctl('', 'public-key', '-k', $srv->dir . '/signing.key');

sub verifies {
    my ($obj, $server, $key_id, $pub) = @_;
    my $o = { %$obj };
    my (undef, $status) = $fed->ctl($json->encode($o), 'verify', '-s', $server, '-p', $pub,
                                    '-i', $key_id);
    return $status == 0;
}

sub by_name {
    my ($body) = @_;
    return { map { $_->{server_name} => $_ } @{ $body->{server_keys} // [] } };
}

my $now = int(time * 1000);

# --- this server's own keys --------------------------------------------------
my ($status, $body) = $http->get('/_matrix/key/v2/query/localhost');
is($status, 200, 'GET our own keys: 200');
is(scalar @{ $body->{server_keys} }, 1, 'one response');
my $own = $body->{server_keys}[0];
is($own->{server_name}, 'localhost', 'ours');
is($own->{verify_keys}{$id}{key}, $pk, 'with our key');
ok($own->{valid_until_ts} > $now, 'valid');
ok(verifies($own, 'localhost', $id, $pk), 'signed by us (server and notary alike)');

($status, $body) = $http->post('/_matrix/key/v2/query', { server_keys => { localhost => {} } });
is($status, 200, 'POST our own keys: 200');
is(by_name($body)->{localhost}{verify_keys}{$id}{key}, $pk, 'the same key');
ok(verifies(by_name($body)->{localhost}, 'localhost', $id, $pk), 'signed');

# --- a stored response of another server ------------------------------------
my $remote = $fed->key('remote.example');
my $stored = $fed->key_response($remote, $now + 3600000);
$fed->store($remote, response => $stored, until => $now + 3600000);

($status, $body) = $http->get('/_matrix/key/v2/query/remote.example');
is($status, 200, 'GET a stored server: 200');
my $got = $body->{server_keys}[0];
ok(verifies($got, 'remote.example', $remote->{id}, $remote->{pk}), "the server's own signature");
ok(verifies($got, 'localhost', $id, $pk), "and the notary's");
delete $got->{signatures}{localhost};
json_is($got, $stored, 'otherwise the response as stored');

($status, $body) = $http->get('/_matrix/key/v2/query/remote.example?minimum_valid_until_ts=' . ($now + 60000));
ok(by_name($body)->{'remote.example'}, 'valid long enough: from the cache');
is(scalar(() = $fed->jobs), 0, 'with no job for the fedsender');

($status, $body) = $http->get('/_matrix/key/v2/query/remote.example?minimum_valid_until_ts=soon');
is($status, 400, 'a minimum that is no number: 400');

# --- fetched through the fedsender ------------------------------------------
my $fresh = $fed->key('fresh.example');
$fed->fake_fedsender(fresh => [$fresh, $remote], broken => ['broken.example', 'old.example']);

my $min = $now + 2 * 3600000;
($status, $body) = $http->post('/_matrix/key/v2/query', { server_keys => {
    'fresh.example'  => {},
    'remote.example' => { $remote->{id} => { minimum_valid_until_ts => $min } },
    'broken.example' => {},
    'localhost'      => {},
    'not a server'   => {},
} });
is($status, 200, 'POST several: 200');
my $s = by_name($body);
is_deeply([sort keys %$s], [qw(fresh.example localhost remote.example)],
          'those that cannot be fetched are left out');
ok(verifies($s->{'fresh.example'}, 'fresh.example', $fresh->{id}, $fresh->{pk}),
   'a server not stored, fetched: its signature');
ok(verifies($s->{'fresh.example'}, 'localhost', $id, $pk), 'and ours');
ok($s->{'remote.example'}{valid_until_ts} >= $min, 'a response not valid long enough, fetched again');
ok(verifies($s->{'remote.example'}, 'localhost', $id, $pk), 'signed by us');

my %jobs = map { $_->{server} => $_ } $fed->jobs;
is($jobs{'fresh.example'}{kind}, 'keys', 'a keys job for the server not stored');
is($jobs{'fresh.example'}{key_ids}, '', 'for its current keys');
is($jobs{'remote.example'}{key_ids}, $remote->{id}, 'one for the key asked');
is($jobs{'remote.example'}{valid_at}, $min, 'valid at the minimum asked');
ok($jobs{'broken.example'}, 'and one for the server that fails');
ok(!$jobs{localhost}, 'none for this server');

# a server that never answers: left out once the wait is over
my $t0 = time;
($status, $body) = $http->get('/_matrix/key/v2/query/silent.example');
my $took = time - $t0;
is($status, 200, 'a server the fedsender never answers for: 200');
json_is($body, { server_keys => [] }, 'left out');
ok($took > 9 && $took < 13, sprintf('after the wait (%.1f s)', $took));

# a stale copy is better than nothing when the server cannot be reached
my $old = $fed->key('old.example');
$fed->store($old, until => $now - 1000);
($status, $body) = $http->get('/_matrix/key/v2/query/old.example');
$fed->stop_fake;
is($status, 200, 'a stored response out of date, the fetch failing: 200');
ok(by_name($body)->{'old.example'}, 'the stale one is served');

# --- bodies ------------------------------------------------------------------
($status, $body) = $http->post('/_matrix/key/v2/query', { server_keys => {} });
json_is([$status, $body], [200, { server_keys => [] }], 'no servers: an empty list');

for my $case (
    [ 'not JSON', '{"server_keys":', 'M_NOT_JSON' ],
    [ 'not an object', '[]', 'M_BAD_JSON' ],
    [ 'no server_keys', '{}', 'M_BAD_JSON' ],
    [ 'server_keys a list', '{"server_keys":["a.example"]}', 'M_BAD_JSON' ],
    [ 'criteria not an object', '{"server_keys":{"a.example":1}}', 'M_BAD_JSON' ],
    [ 'key criteria not an object', '{"server_keys":{"a.example":{"ed25519:a":true}}}',
      'M_BAD_JSON' ],
    [ 'minimum_valid_until_ts a string',
      '{"server_keys":{"a.example":{"ed25519:a":{"minimum_valid_until_ts":"1"}}}}', 'M_BAD_JSON' ],
) {
    my ($name, $text, $errcode) = @$case;
    ($status, $body) = $http->post('/_matrix/key/v2/query', $text);
    is($status, 400, "$name: 400");
    is($body->{errcode}, $errcode, "$name: $errcode");
}

done_testing();

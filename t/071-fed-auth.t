# Requests of other servers: every /_matrix/federation endpoint but version
# wants an X-Matrix signature of {method, uri, origin, destination,
# content} by a key of the origin that is valid now.  Keys come from the
# cache mx:serverkeys:{<origin>}; one not there (or expired) is asked of
# the fedsender with a `keys` job on mx:fedjobs, played here by a fake.
# Any failure is 401 M_UNAUTHORIZED.  The endpoint exercised is
# /query/profile.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use Time::HiRes qw(time);

# no real fedsender: the fake below plays it
sub uri_escape { my $s = shift; $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge; $s }

my $b = Test::Matrix::Server::daemon_build();
%Test::Matrix::ServerOptions = (daemons => "$b/bin/roomserver $b/bin/syncer");

my $srv = server();
my $fed = Test::Matrix::Fed->new(server => $srv);
my $http = client(base => $srv->fed_url);

# a local user with a display name
my $alice = client();
my ($status, $body) = $alice->register('alice', 'secret-password-1');
is($status, 200, 'alice registers');
is(($alice->put('/_matrix/client/v3/profile/@alice:localhost/displayname',
                { displayname => 'Alice' }))[0], 200, 'and names herself');

my $remote = $fed->key('remote.example');
$fed->store($remote);

my $path = '/_matrix/federation/v1/query/profile';
my $uri = "$path?user_id=" . uri_escape('@alice:localhost');

sub fed_get {
    my ($uri, $auth, $content) = @_;
    my %h = defined $auth ? (headers => { Authorization => $auth }) : (no_auth => 1);
    return $http->request('GET', $uri, $content, %h);
}

sub unauthorized {
    my ($name, $uri, $auth, $content, $why) = @_;
    my ($status, $body) = fed_get($uri, $auth, $content);
    is($status, 401, "$name: 401");
    is($body->{errcode}, 'M_UNAUTHORIZED', "$name: M_UNAUTHORIZED");
    like($body->{error} // '', $why, "$name: says why") if $why;
}

# --- a good signature with the key in the cache ------------------------------
($status, $body) = fed_get($uri, $fed->xmatrix($remote, GET => $uri));
is($status, 200, 'signed by a known key: 200');
json_is($body, { displayname => 'Alice' }, 'the profile');

($status, $body) = fed_get($uri, $fed->xmatrix($remote, GET => $uri, undef, hide_destination => 1));
is($status, 200, 'without destination (older servers): 200, signed for us');

my $furi = "$uri&field=displayname";
($status, $body) = fed_get($furi, $fed->xmatrix($remote, GET => $furi));
json_is([$status, $body], [200, { displayname => 'Alice' }], 'one field');

$furi = "$uri&field=avatar_url";
($status, $body) = fed_get($furi, $fed->xmatrix($remote, GET => $furi));
json_is([$status, $body], [200, {}], 'a field not set: left out');

my $u = "$path?user_id=" . uri_escape('@nobody:localhost');
($status, $body) = fed_get($u, $fed->xmatrix($remote, GET => $u));
is($status, 404, 'an unknown user: 404');
is($body->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');

$u = "$path?user_id=" . uri_escape('@bob:remote.example');
($status, $body) = fed_get($u, $fed->xmatrix($remote, GET => $u));
is($status, 400, 'a user of another server: 400');

($status, $body) = fed_get($path, $fed->xmatrix($remote, GET => $path));
is($status, 400, 'no user_id: 400');
is($body->{errcode}, 'M_MISSING_PARAM', 'M_MISSING_PARAM');

# the body is signed as content
my $content = { ask => 'kindly' };
($status, $body) = fed_get($uri, $fed->xmatrix($remote, GET => $uri, $content), $content);
is($status, 200, 'a body signed as content: 200');

# --- refusals ----------------------------------------------------------------
unauthorized('no Authorization header', $uri, undef, undef, qr/Missing Authorization/);
unauthorized('an access token instead', $uri, 'Bearer ' . $srv->make_token, undef, qr/X-Matrix/);
unauthorized('a header without sig', $uri, qq{X-Matrix origin="remote.example",key="$remote->{id}"},
             undef, qr/lacks/);
unauthorized('a header that does not parse', $uri, 'X-Matrix origin="remote.example', undef,
             qr/not closed/);
unauthorized('addressed to another server', $uri,
             $fed->xmatrix($remote, GET => $uri, undef, destination => 'other.example'),
             undef, qr/other\.example/);

my $imposter = $fed->key('remote.example', substr($remote->{id}, 8));
unauthorized('signed by another key under the same ID', $uri, $fed->xmatrix($imposter, GET => $uri),
             undef, qr/Invalid signature/);

my $other = "$path?user_id=" . uri_escape('@nobody:localhost');
unauthorized('signed for another URI', $uri, $fed->xmatrix($remote, GET => $other), undef,
             qr/Invalid signature/);
unauthorized('signed with PUT, sent with GET', $uri, $fed->xmatrix($remote, PUT => $uri), undef,
             qr/Invalid signature/);
unauthorized('a tampered body', $uri, $fed->xmatrix($remote, GET => $uri, $content),
             { ask => 'rudely' }, qr/Invalid signature/);
unauthorized('a body that was not signed', $uri, $fed->xmatrix($remote, GET => $uri),
             $content, qr/Invalid signature/);

# speaking as this server, with a key that even is in the cache under its name
my $self_key = $fed->key('localhost');
$fed->store($self_key);
unauthorized('origin is this server', $uri, $fed->xmatrix($self_key, GET => $uri), undef,
             qr/own name/);

($status, $body) = fed_get($uri, $fed->xmatrix($remote, GET => $uri), 'not json');
is($status, 400, 'a body that is not JSON: 400');
is($body->{errcode}, 'M_NOT_JSON', 'M_NOT_JSON');

is((fed_get('/_matrix/federation/v1/version'))[0], 200, 'version needs no signature');

# --- keys the cache does not have: a keys job for the fedsender ---------------
my $fresh = $fed->key('fresh.example');
my $stale = $fed->key('stale.example');
$fed->store($stale, until => int(time * 1000) - 1000);
$fed->fake_fedsender(fresh => [$fresh, $stale], broken => ['broken.example']);

($status, $body) = fed_get($uri, $fed->xmatrix($fresh, GET => $uri));
is($status, 200, 'an unknown key, fetched by the fedsender: 200');
json_is($body, { displayname => 'Alice' }, 'with the profile');

my ($job) = grep { $_->{server} eq 'fresh.example' } $fed->jobs;
ok($job, 'a keys job on mx:fedjobs');
is($job->{kind}, 'keys', 'kind keys');
is($job->{key_ids}, $fresh->{id}, 'naming the key');
is($job->{valid_at}, '0', 'valid now');
like($job->{reply}, qr/^mx:w:/, 'with the reply channel');
like($job->{req}, qr/^\d+$/, 'and the request');

my $n = () = $fed->jobs;
($status) = fed_get($uri, $fed->xmatrix($fresh, GET => $uri));
is($status, 200, 'again: 200');
is(scalar(() = $fed->jobs), $n, 'from the cache, no new job');

($status, $body) = fed_get($uri, $fed->xmatrix($stale, GET => $uri));
is($status, 200, 'an expired key, renewed by the fedsender: 200');
ok((grep { $_->{server} eq 'stale.example' } $fed->jobs), 'after a job');

my $broken = $fed->key('broken.example');
unauthorized('the fedsender cannot fetch the key', $uri, $fed->xmatrix($broken, GET => $uri),
             undef, qr/connection refused/);

# the fedsender fetches keys, but not the one that signed
my $liar = $fed->key('fresh.example', 'unknown');
unauthorized('a key the origin does not have', $uri, $fed->xmatrix($liar, GET => $uri), undef,
             qr/no valid key/);

my $silent = $fed->key('silent.example');
my $t0 = time;
my $r = $http->request('GET', $uri, undef, headers => { Authorization => $fed->xmatrix($silent, GET => $uri) });
my $took = time - $t0;
is($r->{status}, 401, 'no answer from the fedsender: 401');
is($r->{json}{errcode}, 'M_UNAUTHORIZED', 'M_UNAUTHORIZED');
like($r->{json}{error}, qr/no answer/, 'saying so');
ok($took > 9 && $took < 13, sprintf('after the timeout, not a hang (%.1f s)', $took));

$fed->stop_fake;

done_testing();

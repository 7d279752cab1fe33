# Logging in and out: GET /login, password login with m.id.user and the
# legacy user field (full ID or localpart), one response for a wrong
# password and an unknown user, device reuse, refresh tokens, logout and
# logout/all, tokens that stop working.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;

my $srv = server();
my $path = '/_matrix/client/v3/login';

my $alice = client();
is(($alice->register('alice', 'correct horse'))[0], 200, 'alice registered');
my $first_token = $alice->token;

my $c = client();
my ($status, $json) = $c->get($path);
is_deeply($json, { flows => [ { type => 'm.login.password' } ] }, 'GET /login lists the password flow');

# --- ways to name the user -------------------------------------------------------------

for my $id ({ identifier => { type => 'm.id.user', user => 'alice' } },
            { identifier => { type => 'm.id.user', user => '@alice:localhost' } },
            { identifier => { type => 'm.id.user', user => 'ALICE' } },
            { user => 'alice' },
            { user => '@alice:localhost' })
{
    ($status, $json) = $c->post($path, { type => 'm.login.password', password => 'correct horse', %$id },
                                no_auth => 1);
    is($status, 200, 'login with ' . JSON::PP->new->canonical->encode($id));
    is($json->{user_id}, '@alice:localhost', 'as alice');
}

# --- refusals: one answer for all of them -----------------------------------------------------

my %refusal;
for my $case ([ 'wrong password', 'alice', 'battery staple' ],
              [ 'unknown user', 'nobody', 'correct horse' ],
              [ 'another server', '@alice:elsewhere.org', 'correct horse' ],
              [ 'invalid name', 'Not A Name!', 'x' ])
{
    my ($name, $user, $pw) = @$case;
    ($status, $json) = $c->post($path, { type => 'm.login.password', password => $pw,
                                         identifier => { type => 'm.id.user', user => $user } },
                                no_auth => 1);
    is($status, 403, "$name: 403");
    $refusal{JSON::PP->new->canonical->encode($json)}++;
}
is_deeply([ keys %refusal ], [ '{"errcode":"M_FORBIDDEN","error":"Invalid username or password"}' ],
          'every refusal is the same M_FORBIDDEN');

($status, $json) = $c->post($path, { type => 'm.login.password', password => 'x',
                                     identifier => { type => 'm.id.thirdparty', medium => 'email', address => 'a@b.c' } },
                            no_auth => 1);
is($status, 403, 'a third-party identifier: 403');

($status, $json) = $c->post($path, { type => 'm.login.token', token => 'x' }, no_auth => 1);
is($status, 400, 'an unsupported login type: 400');
is($json->{errcode}, 'M_UNKNOWN', 'M_UNKNOWN');
($status, $json) = $c->post($path, { identifier => { type => 'm.id.user', user => 'alice' }, password => 'x' },
                            no_auth => 1);
is($json->{errcode}, 'M_MISSING_PARAM', 'no type: M_MISSING_PARAM');
($status, $json) = $c->post($path, { type => 'm.login.password', identifier => { type => 'm.id.user', user => 'alice' } },
                            no_auth => 1);
is($json->{errcode}, 'M_MISSING_PARAM', 'no password: M_MISSING_PARAM');
($status, $json) = $c->post($path, { type => 'm.login.password', identifier => 'alice', password => 'x' },
                            no_auth => 1);
is($json->{errcode}, 'M_BAD_JSON', 'an identifier that is no object: M_BAD_JSON');
($status, $json) = $c->post($path, 'not json', no_auth => 1);
is($json->{errcode}, 'M_NOT_JSON', 'a body that is not JSON: M_NOT_JSON');

# --- two logins, two devices; reusing a device ---------------------------------------------------

my $p1 = client();
my $p2 = client();
$p1->login('alice', 'correct horse');
$p2->login('alice', 'correct horse');
isnt($p1->device_id, $p2->device_id, 'two logins give two devices');
isnt($p1->token, $p2->token, 'and two tokens');
is(($p1->get('/_matrix/client/v3/account/whoami'))[1]{device_id}, $p1->device_id, 'each token is its own device');

my $p3 = client();
($status, $json) = $p3->login('alice', 'correct horse', device_id => $p1->device_id,
                              initial_device_display_name => 'ignored for a known device');
is($json->{device_id}, $p1->device_id, 'a login may reuse a device ID');
($status) = $p1->get('/_matrix/client/v3/account/whoami');
is($status, 401, 'the device\'s old token stops working');
($status) = $p3->get('/_matrix/client/v3/account/whoami');
is($status, 200, 'the new one works');

# --- refresh tokens ------------------------------------------------------------------------

my $r = client();
($status, $json) = $r->login('alice', 'correct horse', refresh_token => JSON::PP::true);
my ($access1, $refresh1) = @$json{qw(access_token refresh_token)};
like($refresh1, qr/^mxr_/, 'login with refresh_token: true gives a refresh token');
cmp_ok($json->{expires_in_ms}, '>', 10_000, 'and expires_in_ms');

($status, $json) = $r->post('/_matrix/client/v3/refresh', { refresh_token => $refresh1 }, no_auth => 1);
is($status, 200, 'refresh');
my ($access2, $refresh2) = @$json{qw(access_token refresh_token)};
ok($access2 && $access2 ne $access1 && $refresh2 ne $refresh1, 'new access and refresh tokens');
is((client(token => $access1)->get('/_matrix/client/v3/account/whoami'))[0], 401,
   'the old access token stops working');

# until the new tokens are used the old refresh token still works (the client may not have
# received the answer) ...
($status, $json) = $r->post('/_matrix/client/v3/refresh', { refresh_token => $refresh1 }, no_auth => 1);
is($status, 200, 'the old refresh token can be used again before the new ones are');
my ($access3, $refresh3) = @$json{qw(access_token refresh_token)};
is((client(token => $access2)->get('/_matrix/client/v3/account/whoami'))[0], 401,
   'and that retires the unused pair it replaced');

# ... and once the new access token is used, the old refresh token is gone
is((client(token => $access3)->get('/_matrix/client/v3/account/whoami'))[0], 200, 'the new access token works');
($status, $json) = $r->post('/_matrix/client/v3/refresh', { refresh_token => $refresh1 }, no_auth => 1);
is($status, 401, 'then the old refresh token is refused');
is($json->{errcode}, 'M_UNKNOWN_TOKEN', 'as an unknown token');
($status, $json) = $r->post('/_matrix/client/v3/refresh', { refresh_token => $refresh3 }, no_auth => 1);
is($status, 200, 'the current refresh token works');
my $access4 = $json->{access_token};

($status, $json) = $r->post('/_matrix/client/v3/refresh', { refresh_token => 'mxr_garbage' }, no_auth => 1);
is($json->{errcode}, 'M_UNKNOWN_TOKEN', 'a malformed refresh token is unknown');
($status, $json) = $r->post('/_matrix/client/v3/refresh', { refresh_token => $first_token }, no_auth => 1);
is($json->{errcode}, 'M_UNKNOWN_TOKEN', 'an access token is not a refresh token');
($status, $json) = $r->post('/_matrix/client/v3/refresh', {}, no_auth => 1);
is($json->{errcode}, 'M_MISSING_PARAM', 'no refresh token: M_MISSING_PARAM');

# an access token past its expiry asks for a refresh (soft logout)
my $key = 'mx:{@alice:localhost}:token:' . Test::Matrix::Server::token_hash($access4);
is($srv->redis_cmd('HSET', $key, 'expires', 1000), 0, 'made the current token expire');
($status, $json) = client(token => $access4)->get('/_matrix/client/v3/account/whoami');
is($status, 401, 'an expired access token: 401');
is_deeply($json, { errcode => 'M_UNKNOWN_TOKEN', error => 'Access token has expired', soft_logout => JSON::PP::true },
          'M_UNKNOWN_TOKEN with soft_logout');

# --- logout ------------------------------------------------------------------------------------

($status, $json) = $p2->post('/_matrix/client/v3/logout');
is($status, 200, 'logout (no body)');
is_deeply($json, {}, 'answers {}');
is(($p2->get('/_matrix/client/v3/account/whoami'))[0], 401, 'the token stops working after logout');
($status, $json) = $p3->get('/_matrix/client/v3/devices');
ok(!grep({ $_->{device_id} eq $p2->device_id } @{ $json->{devices} }), 'and its device is gone');

my @all = map { my $k = client(); $k->login('alice', 'correct horse'); $k } 1 .. 3;
($status) = $all[0]->post('/_matrix/client/v3/logout/all', {});
is($status, 200, 'logout/all');
is(scalar(grep { ($_->get('/_matrix/client/v3/account/whoami'))[0] == 401 } @all, $p3, $alice),
   5, 'every token of the user stops working');
($status, $json) = client()->login('alice', 'correct horse');
is($status, 200, 'and the user can log in again');

my $tokens = $srv->redis_cmd('KEYS', 'mx:{@alice:localhost}:token:*');
is(scalar @$tokens, 1, 'only that one token is stored');

done_testing();

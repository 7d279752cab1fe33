# The access-token layer, through whoami: the Authorization header and the
# deprecated access_token query parameter, missing and unknown tokens,
# expired tokens (soft logout), guests.  Tokens are stored by hash only.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

run_tests();

# the token is never stored in clear
my $srv = server();
my $token = $srv->make_token(user_id => '@carol:localhost');
my $secret = substr($token, -43);
my $keys = $srv->redis_cmd('KEYS', '*');
ok(!grep({ index($_, $secret) >= 0 } @$keys), 'no key names the token');
my $dump = $srv->redis_cmd('HGETALL', 'mx:{@carol:localhost}:token:' . Test::Matrix::Server::token_hash($token));
ok(@$dump && !grep({ index($_, $secret) >= 0 } @$dump), 'the stored record does not hold the token');

# a token naming another user than the one it was issued to is unknown
(my $forged = $token) =~ s/^mxa_[^_]+_/'mxa_' . Test::Matrix::Server::b64url('@alice:localhost') . '_'/e;
my ($st, $js) = client(token => $forged)->get('/_matrix/client/v3/account/whoami');
is($st, 401, 'a token edited to name another user is refused');
is($js->{errcode}, 'M_UNKNOWN_TOKEN', 'as an unknown token');

done_testing();

__DATA__

=== TEST 1: whoami with a Bearer token
--- token: @alice:localhost ALICEDEV
--- request
GET /_matrix/client/v3/account/whoami
--- error_code: 200
--- response_json
{"user_id":"@alice:localhost","device_id":"ALICEDEV","is_guest":false}

=== TEST 2: the r0 path is the same endpoint
--- token: @alice:localhost ALICEDEV
--- request
GET /_matrix/client/r0/account/whoami
--- error_code: 200
--- response_json
{"user_id":"@alice:localhost","device_id":"ALICEDEV","is_guest":false}

=== TEST 3: the scheme is case-insensitive
--- token: @alice:localhost ALICEDEV
--- request
GET /_matrix/client/v3/account/whoami
--- more_headers
Authorization: bearer @TOKEN@
--- error_code: 200
--- response_body_like: "user_id":"@alice:localhost"

=== TEST 4: the deprecated access_token query parameter
--- token: @alice:localhost ALICEDEV
--- request
GET /_matrix/client/v3/account/whoami?access_token=@TOKEN@
--- error_code: 200
--- response_body_like: "user_id":"@alice:localhost"

=== TEST 5: no token: 401 M_MISSING_TOKEN
--- request
GET /_matrix/client/v3/account/whoami
--- error_code: 401
--- response_json
{"errcode":"M_MISSING_TOKEN","error":"Missing access token"}

=== TEST 6: an Authorization header of another scheme is no token
--- request
GET /_matrix/client/v3/account/whoami
--- more_headers
Authorization: Basic YWxpY2U6c2VjcmV0
--- error_code: 401
--- response_body_like: M_MISSING_TOKEN

=== TEST 7: an unknown token: 401 M_UNKNOWN_TOKEN
--- request
GET /_matrix/client/v3/account/whoami
--- more_headers
Authorization: Bearer no-such-token
--- error_code: 401
--- response_json
{"errcode":"M_UNKNOWN_TOKEN","error":"Unrecognised access token","soft_logout":false}

=== TEST 8: an unknown token in the query string too
--- request
GET /_matrix/client/v3/account/whoami?access_token=no-such-token
--- error_code: 401
--- response_body_like: M_UNKNOWN_TOKEN

=== TEST 9: header and query parameter together are refused
--- token: @alice:localhost ALICEDEV
--- request
GET /_matrix/client/v3/account/whoami?access_token=@TOKEN@
--- more_headers
Authorization: Bearer @TOKEN@
--- error_code: 401
--- response_body_like: "errcode":"M_MISSING_TOKEN","error":"Mixing

=== TEST 10: an expired token asks for a refresh (soft logout)
--- token: @alice:localhost ALICEDEV expired
--- request
GET /_matrix/client/v3/account/whoami
--- error_code: 401
--- response_json
{"errcode":"M_UNKNOWN_TOKEN","error":"Access token has expired","soft_logout":true}

=== TEST 11: a guest is a guest
--- token: @guest1:localhost GUESTDEV guest
--- request
GET /_matrix/client/v3/account/whoami
--- error_code: 200
--- response_json
{"user_id":"@guest1:localhost","device_id":"GUESTDEV","is_guest":true}

=== TEST 12: a token given where none is needed does not matter
--- request
GET /_matrix/federation/v1/version
--- more_headers
Authorization: Bearer no-such-token
--- error_code: 200

=== TEST 13: a very long token is just unknown
--- request eval
"GET /_matrix/client/v3/account/whoami?access_token=" . ("a" x 4000)
--- error_code: 401
--- response_body_like: M_UNKNOWN_TOKEN

# Discovery and identity: versions, .well-known, federation version, and the
# server's signing keys, self-signed as the spec says.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

run_tests();
done_testing();

__DATA__

=== TEST 1: versions lists the spec versions up to v1.19
--- request
GET /_matrix/client/versions
--- error_code: 200
--- response_body_like: ^\{"unstable_features":\{\},"versions":\[.*"v1\.1",.*"v1\.18","v1\.19"\]\}$
--- response_headers
Content-Type: application/json
Access-Control-Allow-Origin: *

=== TEST 2: versions needs no token, and ignores a bad one
--- request
GET /_matrix/client/versions
--- more_headers
Authorization: Bearer not-a-token
--- error_code: 200
--- response_body_like: "v1\.19"

=== TEST 3: HEAD is answered like GET, without a body
--- request
HEAD /_matrix/client/versions
--- error_code: 200
--- response_body:

=== TEST 4: .well-known/matrix/client points at this server
--- request
GET /.well-known/matrix/client
--- more_headers
Host: matrix.example.org:8008
--- error_code: 200
--- response_json
{"m.homeserver":{"base_url":"http://matrix.example.org:8008"}}

=== TEST 5: .well-known/matrix/server delegates federation to the TLS port
--- request
GET /.well-known/matrix/server
--- error_code: 200
--- response_body_like: ^\{"m\.server":"localhost:\d+"\}$

=== TEST 6: federation version
--- request
GET /_matrix/federation/v1/version
--- error_code: 200
--- response_json
{"server":{"name":"ngx_matrix","version":"0.1.0"}}

=== TEST 7: the key server answers on the client port too
--- request
GET /_matrix/key/v2/server
--- error_code: 200
--- response_body_like: ^\{"old_verify_keys":\{\},"server_name":"localhost","signatures":\{"localhost":\{"ed25519:a_\w{4}":"[A-Za-z0-9+/]{86}"\}\},"valid_until_ts":\d{13},"verify_keys":\{"ed25519:a_\w{4}":\{"key":"[A-Za-z0-9+/]{43}"\}\}\}$

=== TEST 8: POST to a GET endpoint is 405 M_UNRECOGNIZED
--- request
POST /_matrix/federation/v1/version
{}
--- error_code: 405
--- response_json
{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}

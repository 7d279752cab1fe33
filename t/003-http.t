# HTTP conventions every endpoint shares: unknown endpoints and methods,
# CORS and preflight, JSON bodies (M_NOT_JSON, M_BAD_JSON), the body size
# limit (413 M_TOO_LARGE), one error format everywhere.  Account data is the
# endpoint under test where a body is needed.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

run_tests();
done_testing();

__DATA__

=== TEST 1: an unknown endpoint is 404 M_UNRECOGNIZED
--- request
GET /_matrix/client/v3/no/such/thing
--- error_code: 404
--- response_json
{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}
--- response_headers
Content-Type: application/json
Access-Control-Allow-Origin: *

=== TEST 2: a path outside the API is a JSON 404 too
--- request
GET /index.html
--- error_code: 404
--- response_json
{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}

=== TEST 3: a known path with a wrong method is 405 M_UNRECOGNIZED
--- request
DELETE /_matrix/client/versions
--- error_code: 405
--- response_json
{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}

=== TEST 4: an unknown API version of a known endpoint is 404
--- request
GET /_matrix/client/v9/account/whoami
--- error_code: 404
--- response_body_like: M_UNRECOGNIZED

=== TEST 5: OPTIONS preflight: CORS headers, no endpoint logic (no token needed)
--- request
OPTIONS /_matrix/client/v3/account/whoami
--- more_headers
Origin: https://app.element.io
Access-Control-Request-Method: GET
Access-Control-Request-Headers: authorization
--- error_code: 200
--- response_body: {}
--- response_headers
Access-Control-Allow-Origin: *
Access-Control-Allow-Methods: GET, POST, PUT, DELETE, OPTIONS
Access-Control-Allow-Headers: X-Requested-With, Content-Type, Authorization

=== TEST 6: OPTIONS on a path no endpoint has still answers the preflight
--- request
OPTIONS /_matrix/client/v3/no/such/thing
--- error_code: 200
--- response_headers
Access-Control-Allow-Origin: *

=== TEST 7: errors carry the CORS headers too
--- request
GET /_matrix/client/v3/account/whoami
--- error_code: 401
--- response_headers
Access-Control-Allow-Origin: *
Access-Control-Allow-Methods: GET, POST, PUT, DELETE, OPTIONS
Content-Type: application/json

=== TEST 8: account data: store and read back
--- token: @alice:localhost
--- request
PUT /_matrix/client/v3/user/@alice:localhost/account_data/org.example.config
{"theme": "dark", "n": 1, "nested": {"b": [1, 2, {"c": null}], "a": "\u00e9"}}
--- error_code: 200
--- response_body: {}

=== TEST 9: account data: read back, canonical
--- token: @alice:localhost
--- request
GET /_matrix/client/v3/user/%40alice%3Alocalhost/account_data/org.example.config
--- error_code: 200
--- response_body: {"n":1,"nested":{"a":"é","b":[1,2,{"c":null}]},"theme":"dark"}

=== TEST 10: account data: malformed JSON is 400 M_NOT_JSON and stores nothing
--- token: @alice:localhost
--- request
PUT /_matrix/client/v3/user/@alice:localhost/account_data/org.example.config
{"theme": "light",
--- error_code: 400
--- response_body_like: ^\{"errcode":"M_NOT_JSON","error":"Content not JSON: [^"]+"\}$

=== TEST 11: the value stored before is untouched
--- token: @alice:localhost
--- request
GET /_matrix/client/v3/user/@alice:localhost/account_data/org.example.config
--- error_code: 200
--- response_body_like: "theme":"dark"

=== TEST 12: a JSON array is not an object: 400 M_BAD_JSON
--- token: @alice:localhost
--- request
PUT /_matrix/client/v3/user/@alice:localhost/account_data/org.example.config
[1, 2]
--- error_code: 400
--- response_json
{"errcode":"M_BAD_JSON","error":"The request body must be a JSON object, not array"}

=== TEST 13: an empty body is 400 M_NOT_JSON
--- token: @alice:localhost
--- request
PUT /_matrix/client/v3/user/@alice:localhost/account_data/org.example.config
--- error_code: 400
--- response_body_like: M_NOT_JSON

=== TEST 14: duplicate keys are refused
--- token: @alice:localhost
--- request
PUT /_matrix/client/v3/user/@alice:localhost/account_data/org.example.config
{"a": 1, "a": 2}
--- error_code: 400
--- response_body_like: "M_NOT_JSON".*duplicate key

=== TEST 15: invalid UTF-8 is refused
--- token: @alice:localhost
--- request eval
"PUT /_matrix/client/v3/user/\@alice:localhost/account_data/x.y\n{\"a\": \"\xff\xfe\"}"
--- error_code: 400
--- response_body_like: "M_NOT_JSON".*UTF-8

=== TEST 16: an unpaired surrogate escape is refused
--- token: @alice:localhost
--- request
PUT /_matrix/client/v3/user/@alice:localhost/account_data/org.example.config
{"a": "\ud800x"}
--- error_code: 400
--- response_body_like: "M_NOT_JSON".*surrogate

=== TEST 17: JSON nested 200 deep is refused
--- token: @alice:localhost
--- request eval
"PUT /_matrix/client/v3/user/\@alice:localhost/account_data/deep\n" . ('{"a":' x 200) . '1' . ('}' x 200)
--- error_code: 400
--- response_body_like: "M_NOT_JSON".*nested too deeply

=== TEST 18: a chunked body is read whole
--- token: @alice:localhost
--- raw_request eval
"PUT /_matrix/client/v3/user/\@alice:localhost/account_data/org.example.chunked HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \@TOKEN\@\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{\"k\": \r\n4\r\n\"v\"}\r\n0\r\n\r\n"
--- error_code: 200
--- response_body: {}

=== TEST 19: a body over the limit is 413 M_TOO_LARGE
--- token: @alice:localhost
--- request eval
"PUT /_matrix/client/v3/user/\@alice:localhost/account_data/big\n{\"a\":\"" . ("x" x 1100000) . "\"}"
--- error_code: 413
--- response_json
{"errcode":"M_TOO_LARGE","error":"The request body is too large"}
--- response_headers
Access-Control-Allow-Origin: *

=== TEST 20: a chunked body over the limit is 413 M_TOO_LARGE as well
--- token: @alice:localhost
--- raw_request eval
"PUT /_matrix/client/v3/user/\@alice:localhost/account_data/big HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \@TOKEN\@\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n" . CORE::join('', map { "10000\r\n" . ("x" x 65536) . "\r\n" } 1 .. 20) . "0\r\n\r\n"
--- error_code: 413
--- response_body_like: M_TOO_LARGE

=== TEST 21: nothing over the limit was stored
--- token: @alice:localhost
--- request
GET /_matrix/client/v3/user/@alice:localhost/account_data/big
--- error_code: 404
--- response_json
{"errcode":"M_NOT_FOUND","error":"Account data not found."}

=== TEST 22: someone else's account data is 403 M_FORBIDDEN
--- token: @bob:localhost
--- request
PUT /_matrix/client/v3/user/@alice:localhost/account_data/org.example.config
{"theme": "evil"}
--- error_code: 403
--- response_json
{"errcode":"M_FORBIDDEN","error":"Cannot add account data for other users."}

=== TEST 23: nor can it be read
--- token: @bob:localhost
--- request
GET /_matrix/client/v3/user/@alice:localhost/account_data/org.example.config
--- error_code: 403
--- response_body_like: M_FORBIDDEN

=== TEST 24: m.fully_read is the server's: 405 M_BAD_JSON
--- token: @alice:localhost
--- request
PUT /_matrix/client/v3/user/@alice:localhost/account_data/m.fully_read
{"event_id": "$x"}
--- error_code: 405
--- response_json
{"errcode":"M_BAD_JSON","error":"Cannot set m.fully_read through this API."}

=== TEST 25: so is m.push_rules, in a room too
--- token: @alice:localhost
--- request
PUT /_matrix/client/v3/user/@alice:localhost/rooms/!room:localhost/account_data/m.push_rules
{}
--- error_code: 405
--- response_body_like: M_BAD_JSON

=== TEST 26: room account data is kept apart from global
--- token: @alice:localhost
--- request
PUT /_matrix/client/v3/user/@alice:localhost/rooms/!room:localhost/account_data/org.example.config
{"room": true}
--- error_code: 200

=== TEST 27: room account data reads back
--- token: @alice:localhost
--- request
GET /_matrix/client/v3/user/@alice:localhost/rooms/!room:localhost/account_data/org.example.config
--- error_code: 200
--- response_body: {"room":true}

=== TEST 28: in another room it is not found
--- token: @alice:localhost
--- request
GET /_matrix/client/v3/user/@alice:localhost/rooms/!other:localhost/account_data/org.example.config
--- error_code: 404
--- response_json
{"errcode":"M_NOT_FOUND","error":"Room account data not found."}

=== TEST 29: a room ID that is not one is 400 M_INVALID_PARAM
--- token: @alice:localhost
--- request
GET /_matrix/client/v3/user/@alice:localhost/rooms/@notaroomid:example.org/account_data/x
--- error_code: 400
--- response_json
{"errcode":"M_INVALID_PARAM","error":"@notaroomid:example.org is not a valid room ID."}

=== TEST 30: an encoded slash stays inside its path segment
--- token: @alice:localhost
--- request
PUT /_matrix/client/v3/user/@alice:localhost/account_data/a%2Fb
{"slash": 1}
--- error_code: 200

=== TEST 31: and reads back under the same type
--- token: @alice:localhost
--- request
GET /_matrix/client/v3/user/@alice:localhost/account_data/a%2Fb
--- error_code: 200
--- response_body: {"slash":1}

=== TEST 32: a malformed escape in the path is a JSON 400
--- raw_request eval
"GET /_matrix/client/v3/%zz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- response_json
{"errcode":"M_UNKNOWN","error":"Bad request"}
--- response_headers
Access-Control-Allow-Origin: *

=== TEST 33: a request line too long is a JSON 414 M_TOO_LARGE
--- request eval
"GET /_matrix/client/versions?x=" . ("a" x 20000)
--- error_code: 414
--- response_body_like: "errcode":"M_TOO_LARGE"

=== TEST 34: the error location is not reachable from outside
--- request
GET /_matrix_error
--- error_code: 404
--- response_json
{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}

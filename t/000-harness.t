# The harness itself: per-block nginx configuration (config, http_config)
# with a reload, response headers present and absent, error_log and
# no_error_log, timeout and abort.  Everything else relies on these.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

run_tests();
done_testing();

__DATA__

=== TEST 1: config adds a location to the client-server block
--- config
location = /t/hello { default_type text/plain; return 200 "hello"; }
--- request
GET /t/hello
--- error_code: 200
--- response_body: hello
--- response_headers
Content-Type: text/plain
!X-Missing

=== TEST 2: the same config again needs no reload, and the API still works
--- config
location = /t/hello { default_type text/plain; return 200 "hello"; }
--- request
GET /_matrix/client/versions
--- error_code: 200
--- response_body_like: v1\.19

=== TEST 3: http_config reaches the http block
--- http_config
map $uri $t_answer { default "mapped"; }
--- config
location = /t/map { default_type text/plain; return 200 $t_answer; }
--- request
GET /t/map
--- error_code: 200
--- response_body: mapped

=== TEST 4: without config the location is gone again
--- request
GET /t/hello
--- error_code: 404
--- response_body_like: M_UNRECOGNIZED

=== TEST 5: error_log sees this block's log lines
--- request
GET /_matrix/client/v3/account/whoami
--- more_headers
Authorization: Bearer unknown-token-for-the-log
--- error_code: 401
--- no_error_log
\[alert\]
\[emerg\]

=== TEST 6: a client that sends half its body and gives up
--- raw_request eval
"PUT /_matrix/client/v3/user/\@a:localhost/account_data/x HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer whatever\r\nContent-Length: 100\r\n\r\n{\"a\":"
--- timeout: 1
--- abort
--- wait: 0.2
--- no_error_log
\[alert\]
\[crit\]

=== TEST 7: the server is fine afterwards
--- request
GET /_matrix/client/versions
--- error_code: 200

=== TEST 8: error_log finds what nginx logged for this block; a bad request is JSON too
--- raw_request eval
"G\x01T / HTTP/1.1\r\nHost: localhost\r\n\r\n"
--- error_code: 400
--- response_json
{"errcode":"M_UNKNOWN","error":"Bad request"}
--- error_log
client sent invalid method

# A real client with end-to-end encryption: matrix-js-sdk and its Rust
# crypto (pinned in package.json, installed by make test into
# node_modules/) chat in an encrypted room: device keys through
# /keys/upload and /keys/query, one-time keys claimed, room keys sent to
# devices, messages decrypted both ways; a new device found through
# device_lists.changed decrypts the next message (t/js/e2ee.mjs).  Each
# step the script reports is a test here.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::JsSdk;

js_sdk_scenario(script => 't/js/e2ee.mjs', name => 'js-sdk e2ee', steps => 9,
                timeout => 180,
                modules => ['matrix-js-sdk', '@matrix-org/matrix-sdk-crypto-wasm']);

done_testing();

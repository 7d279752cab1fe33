# A real client: matrix-js-sdk (pinned in package.json, installed by make
# test into node_modules/) drives two people through registering, a room,
# an invite, a join, messages and read receipts, over the SDK's own /sync
# loop (t/js/chat.mjs).  Each step the script reports is a test here.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::JsSdk;

js_sdk_scenario(script => 't/js/chat.mjs', name => 'js-sdk', steps => 9,
                timeout => 120, modules => ['matrix-js-sdk']);

done_testing();

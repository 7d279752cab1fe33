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

use Test::More;
use Test::Matrix;

my $repo = $Test::Matrix::Server::Repo;

unless (-d "$repo/node_modules/matrix-js-sdk"
        && -d "$repo/node_modules/\@matrix-org/matrix-sdk-crypto-wasm") {
    plan skip_all => 'matrix-js-sdk and its crypto are not installed (make'
                   . ' test runs npm ci; it needs node and the npm registry)';
}
system('node --version > /dev/null 2>&1') == 0
    or plan skip_all => 'node is not installed';

my $srv = server();
my $url = $srv->url;
my @out = qx{cd $repo && timeout 180 node t/js/e2ee.mjs $url 2>/dev/null};
my $rc = $? >> 8;

my $steps = 0;
for (@out) {
    if (/^ok (.*)$/) { pass("js-sdk e2ee: $1"); $steps++ }
    elsif (/^not ok (.*)$/) { fail("js-sdk e2ee: $1") }
}
is($steps, 9, 'every step of the scenario ran');
is($rc, 0, 'the script ended well');

done_testing();

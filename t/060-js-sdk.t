# A real client: matrix-js-sdk (pinned in package.json, installed by make
# test into node_modules/) drives two people through registering, a room,
# an invite, a join, messages and read receipts, over the SDK's own /sync
# loop (t/js/chat.mjs).  Each step the script reports is a test here.

use strict;
use warnings;
use lib 't/lib';

use Test::More;
use Test::Matrix;

my $repo = $Test::Matrix::Server::Repo;

unless (-d "$repo/node_modules/matrix-js-sdk") {
    plan skip_all => 'matrix-js-sdk is not installed (make test runs npm ci; '
                   . 'it needs node and the npm registry)';
}
system('node --version > /dev/null 2>&1') == 0
    or plan skip_all => 'node is not installed';

my $srv = server();
my $url = $srv->url;
my @out = qx{cd $repo && timeout 120 node t/js/chat.mjs $url 2>/dev/null};
my $rc = $? >> 8;

my $steps = 0;
for (@out) {
    if (/^ok (.*)$/) { pass("js-sdk: $1"); $steps++ }
    elsif (/^not ok (.*)$/) { fail("js-sdk: $1") }
}
is($steps, 9, 'every step of the scenario ran');
is($rc, 0, 'the script ended well');

done_testing();

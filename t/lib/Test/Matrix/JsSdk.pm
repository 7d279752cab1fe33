package Test::Matrix::JsSdk;

# Running a matrix-js-sdk scenario (t/js/*.mjs) against this test file's
# server: each step the script reports ("ok <step>", "not ok <step>: <why>")
# is a test, then two more: every step ran, and the script ended well.
#
#   js_sdk_scenario(script  => 't/js/chat.mjs', name => 'js-sdk',
#                   steps   => 9, timeout => 120,
#                   modules => ['matrix-js-sdk']);
#
# The whole file is skipped when node or one of the modules (installed by
# make test into node_modules/ from package.json) is missing.

use strict;
use warnings;

use Test::More;
use Test::Matrix ();

use Exporter 'import';
our @EXPORT = qw(js_sdk_scenario);

sub js_sdk_scenario {
    my %o = @_;
    my $repo = $Test::Matrix::Server::Repo;

    my @missing = grep { !-d "$repo/node_modules/$_" } @{ $o{modules} };
    if (@missing) {
        plan skip_all => join(' and ', @missing) . ' not installed (make test'
                       . ' runs npm ci; it needs node and the npm registry)';
    }
    system('node --version > /dev/null 2>&1') == 0
        or plan skip_all => 'node is not installed';

    my $url = Test::Matrix::server()->url;
    my @out = qx{cd $repo && timeout $o{timeout} node $o{script} $url 2>/dev/null};
    my $rc = $? >> 8;

    my $steps = 0;
    for (@out) {
        if (/^ok (.*)$/) { pass("$o{name}: $1"); $steps++ }
        elsif (/^not ok (.*)$/) { fail("$o{name}: $1") }
    }
    is($steps, $o{steps}, 'every step of the scenario ran');
    is($rc, 0, 'the script ended well');
}

1;

package Test::Matrix::Blocks;

# Test::Base, for its block parser only.  Its -Base mode rewrites the subs
# of the package that uses it, so it is kept to this shim; Test::Matrix is
# plain Perl.

use Test::Base -Base;

our @EXPORT = qw(matrix_blocks);

sub matrix_blocks () { blocks() }

1;

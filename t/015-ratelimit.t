# Rate limits: login, registration and refresh are limited per client
# address by nginx's limit_req, answered 429 M_LIMIT_EXCEEDED with
# retry_after_ms and Retry-After; other endpoints are not; the limit can be
# switched off (every other test file runs with it off).

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Time::HiRes qw(sleep);

$Test::Matrix::ServerOptions{env} = { MATRIX_RATE_LIMIT => 'on', MATRIX_RATE => '2r/s',
                                      MATRIX_RATE_BURST => 3 };
my $srv = server();
my $c = client();

my %seen;
my $limited;
for (1 .. 12) {
    my ($status, $json, $res) = $c->post('/_matrix/client/v3/login',
        { type => 'm.login.password', identifier => { type => 'm.id.user', user => 'nobody' },
          password => 'x' }, no_auth => 1);
    $seen{$status}++;
    $limited //= [ $json, $res ] if $status == 429;
}
ok($seen{403}, 'the first attempts are answered');
ok($seen{429}, 'then 429');
is($limited->[0]{errcode}, 'M_LIMIT_EXCEEDED', 'M_LIMIT_EXCEEDED');
is($limited->[0]{retry_after_ms}, 1000, 'with retry_after_ms');
is($limited->[1]{headers}{'retry-after'}, '1', 'and Retry-After');
is($limited->[1]{headers}{'access-control-allow-origin'}, '*', 'with CORS headers');

my ($status) = $c->post('/_matrix/client/v3/register', { username => 'x', password => 'y' }, no_auth => 1);
is($status, 429, 'registration shares the limit');

my @other = map { ($c->get('/_matrix/client/versions'))[0] } 1 .. 20;
is(scalar(grep { $_ == 200 } @other), 20, 'other endpoints are not limited');

sleep 2.5;
($status) = $c->post('/_matrix/client/v3/login',
    { type => 'm.login.password', identifier => { type => 'm.id.user', user => 'nobody' }, password => 'x' },
    no_auth => 1);
is($status, 403, 'after a wait, logins are answered again');

done_testing();

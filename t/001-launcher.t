# make run's launcher (scripts/mx-run): first start makes the signing key and
# TLS certificate; it runs Redis, the daemons and nginx; it restarts a child
# that dies; SIGTERM or SIGINT stops every process it started; a restart
# keeps all data; several instances run side by side; `nginx -t` refuses a
# bad configuration with a clear message.

use strict;
use warnings;
use lib 't/lib';

use Test::More;
use Test::Matrix::Server;
use Test::Matrix::Client;
use File::Path qw(make_path remove_tree);
use Time::HiRes qw(sleep);

my $repo = $Test::Matrix::Server::Repo;
sub wait_for { Test::Matrix::Server::wait_for(@_) }
sub alive    { Test::Matrix::Server::alive(@_) }
sub slurp    { Test::Matrix::Server::slurp(@_) }

my $srv = Test::Matrix::Server->new(name => 'launcher-a')->start;
my $dir = $srv->dir;

# --- first start ---------------------------------------------------------------

my $key = slurp("$dir/signing.key");
like($key, qr/^ed25519 a_\w{4} [A-Za-z0-9+\/]{43}\n\z/, 'a signing key was generated');
is((stat "$dir/signing.key")[2] & 0777, 0600, 'readable by its owner only');
ok(-s "$dir/tls/server.crt" && -s "$dir/tls/server.key", 'a TLS certificate was generated');
like(slurp("$dir/redis.conf"), qr/^appendonly yes$/m, 'Redis keeps an append-only file');
like(slurp("$dir/redis.conf"), qr/^unixsocket \Q$dir\E\/run\/redis.sock$/m, 'data and socket under the data folder');

my %pids = map { $_ => $srv->pid_of($_) } qw(redis nginx roomserver syncer fedsender);
for my $name (sort keys %pids) {
    ok(alive($pids{$name}), "$name is running");
}
my @workers = $srv->nginx_worker_pids;
is(scalar @workers, 2, 'nginx runs 2 workers');

my $c = Test::Matrix::Client->new(server => $srv);
my ($status, $json) = $c->get('/_matrix/key/v2/server');
my ($version) = $key =~ /^ed25519 (\S+)/;
is_deeply([ keys %{ $json->{verify_keys} } ], [ "ed25519:$version" ], 'the key server serves that key');

# federation over TLS
($status, $json) = $c->get($srv->fed_url . '/_matrix/federation/v1/version');
is($status, 200, 'the federation API answers over TLS');

# --- supervision -----------------------------------------------------------------

kill 'KILL', $pids{roomserver};
ok(wait_for(sub { my $p = $srv->pid_of('roomserver'); $p && $p != $pids{roomserver} && alive($p) }, 10),
   'a daemon killed with SIGKILL is restarted');
like($srv->launcher_log, qr/roomserver exited with status 137/, 'and the launcher says so');
$pids{roomserver} = $srv->pid_of('roomserver');

# --- SIGTERM stops everything; the data is kept -------------------------------------

is($srv->redis_cmd('SET', 'mx:test:persist', 'kept'), 'OK', 'wrote a value');
my @all = (values %pids, $srv->nginx_worker_pids);

is($srv->stop(signal => 'TERM'), 0, 'SIGTERM: the launcher exits with status 0');
ok(wait_for(sub { !grep { alive($_) } @all }, 10), 'every process it started is gone')
    or diag('still alive: ' . join(' ', grep { alive($_) } @all));
ok(!-e "$dir/run/nginx.pid" && !-e "$dir/run/redis.pid", 'pid files removed');

$srv->start(keep => 1);
is(slurp("$dir/signing.key"), $key, 'a second start keeps the signing key');
is($srv->redis_cmd('GET', 'mx:test:persist'), 'kept', 'and the data');
($status, $json) = $c->get('/_matrix/key/v2/server');
is_deeply([ keys %{ $json->{verify_keys} } ], [ "ed25519:$version" ], 'and serves the same key');

# --- starting twice on one data folder is refused -------------------------------------

my $out = qx{MATRIX_DATA='$dir' MATRIX_CLIENT_PORT=1 MATRIX_FED_PORT=2 $repo/scripts/mx-run 2>&1};
isnt($?, 0, 'a second launcher on the same data folder refuses to start');
like($out, qr/already running/, 'saying it is already running');

# --- SIGINT (Ctrl-C) stops everything too -----------------------------------------------

%pids = map { $_ => $srv->pid_of($_) } qw(redis nginx roomserver syncer fedsender);
@all = (values %pids, $srv->nginx_worker_pids);
is($srv->stop(signal => 'INT'), 0, 'SIGINT: the launcher exits with status 0');
ok(wait_for(sub { !grep { alive($_) } @all }, 10), 'every process it started is gone');

# --- two instances side by side ------------------------------------------------------------

my $a = Test::Matrix::Server->new(name => 'launcher-b', server_name => 'localhost:1')->start;
my $b = Test::Matrix::Server->new(name => 'launcher-c', server_name => 'localhost:2')->start;
my ($sa, $ja) = Test::Matrix::Client->new(server => $a)->get('/_matrix/key/v2/server');
my ($sb, $jb) = Test::Matrix::Client->new(server => $b)->get('/_matrix/key/v2/server');
is($ja->{server_name}, 'localhost:1', 'instance one answers as its own server');
is($jb->{server_name}, 'localhost:2', 'instance two answers as its own server');
isnt(slurp($a->dir . '/signing.key'), slurp($b->dir . '/signing.key'), 'each has its own key');
$a->stop;
$b->stop;

# --- nginx -t refuses bad settings with a clear message --------------------------------------

my $tdir = "$repo/t/servroot/launcher-conf-$$";
remove_tree($tdir);
make_path("$tdir/logs");
system("$Test::Matrix::Server::Build/bin/matrixctl keygen > $tdir/good.key");
open my $f, '>', "$tdir/bad.key"; print {$f} "ed25519 x notbase64!\n"; close $f;

sub nginx_t {
    my (%o) = @_;
    my $http = join '', map { "    $_;\n" } @{ $o{directives} };
    open my $fh, '>', "$tdir/nginx.conf" or die;
    print {$fh} <<"CONF";
load_module $Test::Matrix::Server::Build/nginx/objs/ngx_matrix_module.so;
pid $tdir/nginx.pid;
error_log $tdir/logs/error.log;
events { }
http {
$http    server { listen 127.0.0.1:1; location /_matrix { matrix; } }
}
CONF
    close $fh;
    my $out = qx{nginx -t -p $tdir -c $tdir/nginx.conf -e $tdir/logs/error.log 2>&1};
    return ($? == 0, $out);
}

my ($ok, $msg) = nginx_t(directives => [ 'matrix_server_name example.org',
                                        "matrix_signing_key $tdir/good.key",
                                        'matrix_redis unix:/tmp/redis.sock' ]);
ok($ok, 'a good configuration passes nginx -t') or diag $msg;

($ok, $msg) = nginx_t(directives => [ 'matrix_server_name example.org',
                                     "matrix_signing_key $tdir/missing.key" ]);
ok(!$ok, 'a missing key file fails nginx -t');
like($msg, qr/cannot open the signing key "\Q$tdir\E\/missing.key".*No such file/, 'saying which file and why');

($ok, $msg) = nginx_t(directives => [ 'matrix_server_name example.org',
                                     "matrix_signing_key $tdir/bad.key" ]);
ok(!$ok, 'a malformed key file fails nginx -t');
like($msg, qr/invalid signing key/, 'saying the key is invalid');

for my $bad ('"bad name"', 'exa_mple.org', 'example.org:123456', '[::1', 'host:port') {
    ($ok, $msg) = nginx_t(directives => [ "matrix_server_name $bad",
                                         "matrix_signing_key $tdir/good.key" ]);
    ok(!$ok, "server name $bad fails nginx -t");
    like($msg, qr/invalid server name/, 'saying the server name is invalid');
}

for my $good ('example.org', 'example.org:8448', '1.2.3.4', '[1234:5678::abcd]:8448', 'localhost') {
    ($ok, $msg) = nginx_t(directives => [ "matrix_server_name $good",
                                         "matrix_signing_key $tdir/good.key" ]);
    ok($ok, "server name $good passes");
}

for my $bad ('127.0.0.1:99999', 'no-such-host.invalid:6379', 'redis://127.0.0.1/0') {
    ($ok, $msg) = nginx_t(directives => [ 'matrix_server_name example.org',
                                         "matrix_signing_key $tdir/good.key",
                                         "matrix_redis $bad" ]);
    ok(!$ok, "redis address $bad fails nginx -t");
    like($msg, qr/invalid redis address/, 'saying the redis address is invalid');
}

($ok, $msg) = nginx_t(directives => [ "matrix_signing_key $tdir/good.key" ]);
ok(!$ok, 'no server name fails nginx -t');
like($msg, qr/"matrix_server_name" is not set/, 'saying it is not set');

($ok, $msg) = nginx_t(directives => [ 'matrix_server_name example.org' ]);
ok(!$ok, 'no signing key fails nginx -t');
like($msg, qr/"matrix_signing_key" is not set/, 'saying it is not set');

remove_tree($tdir);
done_testing();

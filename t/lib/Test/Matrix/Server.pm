package Test::Matrix::Server;

# One complete homeserver for a test file: scripts/mx-run (the same launcher
# `make run` uses) started on free ports with its own data folder under
# t/servroot/, so test files can run side by side.  The object gives the
# tests what they need to poke at it: URLs, a Redis client, the pids of the
# children, their logs, maintenance holds, and a way to add nginx
# configuration and reload.

use strict;
use warnings;

use Carp qw(croak);
use Cwd qw(abs_path);
use Digest::SHA qw(sha256);
use File::Basename qw(basename dirname);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep time);
use HTTP::Tiny;

use Test::Matrix::Redis;

our $Repo = abs_path(dirname(__FILE__) . '/../../../..');

# the build under test: MATRIX_BUILD, as scripts/mx-run reads it
our $Build = $ENV{MATRIX_BUILD} // "$Repo/build";
$ENV{MATRIX_BUILD} = $Build;

my %Used_ports;

sub free_port {
    for (1 .. 50) {
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                      Proto => 'tcp', Listen => 1, ReuseAddr => 1)
            or next;
        my $port = $s->sockport;
        close $s;
        next if $Used_ports{$port}++;
        return $port;
    }
    croak "no free port";
}

sub new {
    my ($class, %o) = @_;
    my $name = $o{name} // basename($0, '.t');
    my $self = bless {
        name         => $name,
        client_port  => $o{client_port} // free_port(),
        fed_port     => $o{fed_port} // free_port(),
        server_name  => $o{server_name} // 'localhost',
        redis_timeout => $o{redis_timeout} // '2s',
        workers      => $o{workers} // 2,
        daemons      => $o{daemons},
        max_body     => $o{max_body} // '1m',
        env          => $o{env} // {},
        federation   => $o{federation} // 0,
        fed_allow_private => $o{fed_allow_private} // 'on',
        fed_self_signed   => $o{fed_self_signed} // 0,
    }, $class;

    # a federating server: named by its federation port, so that others
    # find it with no look-up, with a certificate of the run's test CA
    $self->{server_name} = "localhost:$self->{fed_port}"
        if $self->{federation} && !$o{server_name};

    $self->{dir} = $o{dir} // "$Repo/t/servroot/$name-$$";
    $self->{owner} = $$;
    return $self;
}

# start a fresh server (or, with keep => 1, one on the existing data)
sub start {
    my ($self, %o) = @_;

    remove_tree($self->{dir}) if !$o{keep} && -d $self->{dir};
    make_path($self->{dir});

    my %env = (
        MATRIX_DATA          => $self->{dir},
        MATRIX_CLIENT_PORT   => $self->{client_port},
        MATRIX_FED_PORT      => $self->{fed_port},
        MATRIX_SERVER_NAME   => $self->{server_name},
        MATRIX_WORKERS       => $self->{workers},
        MATRIX_REDIS_TIMEOUT => $self->{redis_timeout},
        MATRIX_MAX_BODY      => $self->{max_body},
        MATRIX_LOG_LEVEL     => $ENV{TEST_LOG_LEVEL} // 'info',
        MATRIX_RATE_LIMIT    => 'off',
        MATRIX_REGISTRATION  => 'open',
        MATRIX_SHARED_SECRET => 'test-shared-secret',
        %{ $self->{env} },
    );
    $env{MATRIX_DAEMONS} = $self->{daemons} // default_daemons();

    if ($self->{federation}) {
        $env{MATRIX_FED_CA_FILE} = test_ca()->{cert};
        $env{MATRIX_FED_ALLOW_PRIVATE} = $self->{fed_allow_private};

        # fed_self_signed: mx-run's own self-signed certificate, which
        # the others do not trust
        unless ($self->{fed_self_signed}) {
            my ($crt, $key) = $self->issue_cert;
            $env{MATRIX_TLS_CERT} = $crt;
            $env{MATRIX_TLS_KEY} = $key;
        }
    }

    my $log = "$self->{dir}/mx-run.out";
    my $pid = fork;
    croak "fork: $!" unless defined $pid;

    if ($pid == 0) {
        @ENV{keys %env} = values %env;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $log;
        open STDERR, '>&', \*STDOUT;
        exec "$Repo/scripts/mx-run" or POSIX::_exit(127);
    }

    $self->{pid} = $pid;
    $self->wait_ready($o{timeout} // 30);
    return $self;
}

# The test CA of this test process: made once, under t/servroot, with
# openssl; every federating server's certificate is issued by it, and every
# one trusts it (matrix_federation_ca_file), so servers of one test file
# trust each other and nothing else.
my $Test_ca;
my $Test_ca_owner;

sub openssl {
    my (@args) = @_;
    my $out = qx{openssl @args 2>&1};
    croak "openssl @args: $out" if $?;
}

sub test_ca {
    return $Test_ca if $Test_ca;
    my $dir = "$Repo/t/servroot/ca-$$";
    remove_tree($dir) if -d $dir;
    make_path($dir);
    openssl("req -x509 -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
            "-days 30 -subj '/CN=Test Matrix CA $$'",
            "-addext basicConstraints=critical,CA:TRUE",
            "-addext keyUsage=critical,keyCertSign,cRLSign",
            "-keyout $dir/ca.key -out $dir/ca.crt");
    $Test_ca_owner = $$;
    $Test_ca = { dir => $dir, cert => "$dir/ca.crt", key => "$dir/ca.key" };
    return $Test_ca;
}

END {
    remove_tree($Test_ca->{dir})
        if $Test_ca && $Test_ca_owner == $$ && !$ENV{TEST_KEEP};
}

# a certificate for localhost and 127.0.0.1 issued by the test CA, into
# the server's data folder; returns the paths of the certificate and key
sub issue_cert {
    my ($self) = @_;
    my $ca = test_ca();
    my $dir = "$self->{dir}/tls";
    make_path($dir);
    write_file("$dir/ext.cnf", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
               . "basicConstraints=CA:FALSE\n"
               . "keyUsage=critical,digitalSignature\n"
               . "extendedKeyUsage=serverAuth\n");
    openssl("req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
            "-subj /CN=localhost -keyout $dir/server.key -out $dir/server.csr");
    openssl("x509 -req -in $dir/server.csr -CA $ca->{cert} -CAkey $ca->{key}",
            "-set_serial " . (1000 + int rand 1_000_000_000),
            "-days 30 -extfile $dir/ext.cnf -out $dir/server.crt");
    return ("$dir/server.crt", "$dir/server.key");
}

# the daemons of the build under test: TEST_DAEMON_BUILD=build/san runs
# the sanitizer build of them
sub daemon_build { $ENV{TEST_DAEMON_BUILD} // $Build }

sub default_daemons {
    my $b = daemon_build();
    return join ' ', map { "$b/bin/$_" } qw(roomserver syncer fedsender);
}

# sanitizer reports in the logs of the daemons (empty when there are none)
sub sanitizer_reports {
    my ($self) = @_;
    my @found;
    for my $log (glob "$self->{dir}/log/*.log") {
        my $text = slurp($log) // next;
        push @found, "$log: $1" while $text =~ /((?:ERROR: \w+Sanitizer|runtime error:)[^\n]*)/g;
    }
    return @found;
}

sub running {
    my ($self) = @_;
    return 0 unless $self->{pid};
    return waitpid($self->{pid}, WNOHANG) == 0;
}

# ready: nginx answers, and Redis (with the function library) answers it:
# a well-formed unknown token is only refused after asking Redis
sub wait_ready {
    my ($self, $timeout) = @_;
    my $until = time + $timeout;
    my $probe = 'mxa_' . b64url('@probe:localhost') . '_' . ('A' x 43);
    my ($r, $ok);

    # every worker must answer from Redis (401 for an unknown token, not
    # 503): several answers in a row, each on a new connection, so that
    # the workers' turns come up
    $ok = 0;
    while (time < $until) {
        croak "mx-run exited:\n" . $self->launcher_log unless $self->running;

        my $http = HTTP::Tiny->new(timeout => 2, keep_alive => 0);
        $r = $http->get($self->url . '/_matrix/client/v3/account/whoami',
                        { headers => { Authorization => "Bearer $probe" } });

        if ($r->{status} == 401 && ++$ok >= 4 * $self->{workers}) {
            # and every worker hears its reply channel
            my $ch = eval { $self->redis_cmd('PUBSUB', 'CHANNELS', 'mx:w:*') };
            return 1 if ref $ch eq 'ARRAY' && @$ch >= $self->{workers};
            $ok = 0;
        }

        next if $r->{status} == 401;

        $ok = 0;
        sleep 0.1;
    }

    croak "server not ready after ${timeout}s (last answer: $r->{status}"
        . " $r->{content}):\n" . $self->launcher_log;
}

sub launcher_log {
    my ($self) = @_;
    return slurp("$self->{dir}/mx-run.out") // '';
}

# stop with a signal to the launcher; returns its exit status
sub stop {
    my ($self, %o) = @_;
    return unless $self->{pid};

    delete $self->{redis};
    kill $o{signal} // 'TERM', $self->{pid};

    my $until = time + ($o{timeout} // 30);
    while (time < $until) {
        my $r = waitpid($self->{pid}, WNOHANG);
        if ($r == $self->{pid}) {
            my $status = $?;
            delete $self->{pid};
            return $status;
        }
        sleep 0.05;
    }

    kill 'KILL', $self->{pid};
    waitpid($self->{pid}, 0);
    delete $self->{pid};
    croak "mx-run did not stop in time";
}

sub DESTROY {
    my ($self) = @_;
    return if $self->{owner} != $$;     # a forked child: not ours to stop
    local ($?, $!, $@);
    eval { $self->stop(timeout => 20) } if $self->{pid};
    if (!$ENV{TEST_KEEP} && $self->{dir} && -d $self->{dir} && !$self->{keep_dir}) {
        remove_tree($self->{dir});
    }
}

sub url          { "http://127.0.0.1:$_[0]{client_port}" }
sub fed_url      { "https://127.0.0.1:$_[0]{fed_port}" }
sub dir          { $_[0]{dir} }
sub server_name  { $_[0]{server_name} }
sub socket_path  { "$_[0]{dir}/run/redis.sock" }
sub log_path     { "$_[0]{dir}/log/$_[1].log" }

sub pid_of {
    my ($self, $name) = @_;
    my $pid = slurp("$self->{dir}/run/$name.pid");
    return undef unless defined $pid;
    $pid =~ s/\s+//g;
    return $pid || undef;
}

# the pids of nginx's workers, children of its master
sub nginx_worker_pids {
    my ($self) = @_;
    my $master = $self->pid_of('nginx') or return ();
    my @pids;
    for my $status (glob '/proc/[0-9]*/status') {
        my $s = slurp($status) // next;
        push @pids, $1 if $s =~ /^PPid:\s*$master$/m && $s =~ /^Pid:\s*(\d+)/m;
    }
    return @pids;
}

sub redis {
    my ($self) = @_;
    $self->{redis} //= Test::Matrix::Redis->new(path => $self->socket_path);
    return $self->{redis};
}

# a command on a fresh connection (the cached one may be dead after a restart)
sub redis_cmd {
    my ($self, @cmd) = @_;
    my $r = eval { $self->redis->command(@cmd) };
    return $r unless $@;
    delete $self->{redis};
    return $self->redis->command(@cmd);
}

sub hold   { my ($s, $n) = @_; open my $f, '>', "$s->{dir}/run/hold.$n" or die; close $f }
sub unhold { my ($s, $n) = @_; unlink "$s->{dir}/run/hold.$n" }

# wait until $cond->() is true; returns false after $timeout seconds
sub wait_for {
    my ($cond, $timeout, $step) = @_;
    my $until = time + ($timeout // 10);
    while (time < $until) {
        return 1 if $cond->();
        sleep $step // 0.05;
    }
    return $cond->() ? 1 : 0;
}

sub alive { my $pid = shift; return $pid && kill(0, $pid) }

sub b64url {
    my $s = encode_base64(shift, '');
    $s =~ tr{+/}{-_};
    $s =~ s/=+\z//;
    return $s;
}

# an access token in the server's format (core/mx_token.h), stored the way
# the server stores them: by hash only, under its user
sub make_token {
    my ($self, %o) = @_;
    my $user = $o{user_id} // '@alice:' . $self->server_name;
    my $token = 'mxa_' . b64url($user) . '_'
                . b64url(join '', map { chr int rand 256 } 1 .. 32);
    my $key = "mx:{$user}:token:" . token_hash($token);
    $self->redis_cmd('HSET', $key,
        user_id   => $user,
        device_id => $o{device_id} // 'DEVICE',
        guest     => $o{guest} ? 1 : 0,
        expires   => $o{expires} // 0);
    return $token;
}

sub token_hash {
    my $h = encode_base64(sha256(shift), '');
    $h =~ s/=+\z//;
    return $h;
}

# extra nginx configuration (http or client-server block), then a reload
# that is complete when the new workers answer with the new marker
sub configure {
    my ($self, %o) = @_;
    my $id = ++$self->{config_id};
    my $http = $o{http} // '';
    my $client = ($o{client} // '') . "\nlocation = /_t/config { return 200 \"config $id\"; }\n";

    write_file("$self->{dir}/conf.d/http/test.conf", $http);
    write_file("$self->{dir}/conf.d/client/test.conf", $client);

    my $master = $self->pid_of('nginx') or croak "nginx is not running";
    my $t = qx{nginx -t -q -p '$self->{dir}/nginx' -c '$self->{dir}/nginx.conf' 2>&1};
    croak "nginx rejects the test configuration: $t" if $?;
    kill 'HUP', $master;

    my $http_c = HTTP::Tiny->new(timeout => 2);
    wait_for(sub {
        my $r = $http_c->get($self->url . '/_t/config');
        $r->{status} == 200 && $r->{content} eq "config $id";
    }, 10) or croak "nginx did not reload";

    # the old workers may still hold connections; let them go
    sleep 0.2;
}

sub slurp {
    my ($path) = @_;
    open my $f, '<', $path or return undef;
    local $/;
    my $s = <$f>;
    close $f;
    return $s;
}

sub write_file {
    my ($path, $s) = @_;
    open my $f, '>', $path or croak "$path: $!";
    print {$f} $s;
    close $f;
}

1;

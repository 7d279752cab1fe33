package Test::Matrix;

# The test harness: the block format of Test::Nginx on Debian's Test::Base,
# run against a complete server (Test::Matrix::Server) that each test file
# gets to itself.
#
#   use Test::Matrix;
#   plan tests => blocks() * 2;
#   run_tests();
#
#   __DATA__
#
#   === TEST 1: versions
#   --- request
#   GET /_matrix/client/versions
#   --- error_code: 200
#   --- response_body_like: "v1\.19"
#
# Sections (each adds one assertion where it checks something):
#
#   request          "METHOD /path" then the body on the following lines
#   raw_request      bytes sent as they are (\r\n line ends added)
#   more_headers     "Name: value" lines; @TOKEN@ is replaced by the
#                    block's token (see "token")
#   token            "user_id [device_id] [guest] [expired]": make an access
#                    token for the block; sent as Authorization: Bearer
#                    unless more_headers or the request uses @TOKEN@
#   redis            commands run before the request, one per line
#   config           nginx configuration for the client-server block
#   http_config      nginx configuration for the http block
#   error_code       expected status
#   response_body    expected body, exactly
#   response_body_like   regex the body must match (may be several lines)
#   response_json    expected body as JSON, compared as data
#   response_headers "Name: value" lines, exact; "!Name" for absent
#   error_log        regexes that must appear in nginx's log for this block
#   no_error_log     regexes that must not
#   timeout          seconds to wait for the response (default 10)
#   abort            with timeout: a response that does not come in time is
#                    expected, and the client goes away
#   wait             seconds to wait after the response before the logs

use strict;
use warnings;

use Test::Matrix::Blocks;
use Test::More;
use JSON::PP;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(sleep time);

use File::Basename ();
use Test::Matrix::Server;
use Test::Matrix::Client;

use Exporter 'import';
our @EXPORT = (qw(run_tests blocks server new_server json_is
                  decode_json_safe wait_for client done_testing esc),
               grep { $_ ne 'done_testing' } @Test::More::EXPORT);

my $Server;
our %ServerOptions;

# the server of this test file, started on first use
sub server {
    $Server //= Test::Matrix::Server->new(%ServerOptions)->start;
    return $Server;
}

# another server for the same test file (federation tests start two or
# three): started at once, stopped at the end like the first
my @Servers;

sub new_server {
    my (%o) = @_;
    my $name = File::Basename::basename($0, '.t') . '-' . (@Servers + 2);
    my $s = Test::Matrix::Server->new(name => $name, %o)->start;
    push @Servers, $s;
    return $s;
}

sub client { Test::Matrix::Client->new(server => server(), @_) }

sub wait_for { Test::Matrix::Server::wait_for(@_) }

# a path segment or query value: everything but the unreserved characters
# percent-encoded (room IDs, aliases, user IDs in URLs)
sub esc { my $s = shift; $s =~ s/([^A-Za-z0-9\-._~])/sprintf('%%%02X', ord $1)/ge; $s }

# every test file ends with this check of the server's nginx log: no alert,
# no crash, no response sent twice, whatever the tests looked at
no warnings 'redefine';
sub done_testing {
    for my $srv (grep { defined } $Server, @Servers) {
        my $log = Test::Matrix::Server::slurp($srv->log_path('nginx')) // '';
        my @bad = grep { /\[(alert|emerg|crit)\]|exited on signal/ } split /\n/, $log;
        is(scalar @bad, 0, 'nothing alarming in the nginx log')
            or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);
    }
    Test::More::done_testing(@_);
}

END {
    undef $Server;
    @Servers = ();
}

my $JSON = JSON::PP->new->canonical->allow_nonref;

sub decode_json_safe {
    my ($s) = @_;
    my $v = eval { $JSON->decode($s) };
    return $v;
}

sub json_is {
    my ($got, $expected, $name) = @_;
    is_deeply($got, $expected, $name)
        or diag('got: ' . $JSON->encode($got // 'undef'));
}

sub _lines {
    my ($s) = @_;
    return () unless defined $s;
    return grep { length } map { s/^\s+|\s+$//gr } split /\n/, $s;
}

sub _section {
    my ($block, $name) = @_;
    my $v = $block->$name;
    return undef unless defined $v;
    chomp $v;
    return $v;
}

# send one HTTP/1.1 request on a fresh connection, read it all
sub http_request {
    my (%o) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $o{port},
                                     Proto => 'tcp', Timeout => 5)
        or return { error => "connect: $!" };
    binmode $sock;

    my $req = $o{raw};
    unless (defined $req) {
        my $body = $o{body} // '';
        $req = "$o{method} $o{uri} HTTP/1.1\r\n";
        my %have;
        for my $h (@{ $o{headers} // [] }) {
            $req .= "$h\r\n";
            $have{lc $1} = 1 if $h =~ /^([^:]+):/;
        }
        $req .= "Host: localhost\r\n" unless $have{host};
        $req .= "Connection: close\r\n" unless $have{connection};
        $req .= "Content-Length: " . length($body) . "\r\n"
            if length($body) && !$have{'content-length'} && !$have{'transfer-encoding'};
        $req .= "\r\n$body";
    }

    print {$sock} $req;

    my $sel = IO::Select->new($sock);
    my $buf = '';
    my $until = time + ($o{timeout} // 10);

    while (1) {
        my $left = $until - time;
        last if $left <= 0;
        last unless $sel->can_read($left);
        my $n = sysread($sock, $buf, 65536, length $buf);
        last unless $n;
    }

    my $timed_out = time >= $until;
    close $sock;

    return { timed_out => 1, raw => $buf } if $timed_out && $buf !~ /\r\n\r\n/;

    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    my @lines = split /\r\n/, $head // '';
    my $status_line = shift @lines // '';
    my ($status) = $status_line =~ m{^HTTP/\d\.\d (\d+)};
    my %headers;
    for (@lines) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        push @{ $headers{lc $k} }, $v;
    }

    $body //= '';
    if (($headers{'transfer-encoding'}[0] // '') =~ /chunked/i) {
        my $out = '';
        while ($body =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $len = hex $1;
            last if $len == 0;
            $out .= substr($body, 0, $len, '');
            $body =~ s/^\r\n//;
        }
        $body = $out;
    }

    return { status => $status, headers => \%headers, body => $body,
             timed_out => $timed_out };
}

sub _log_size {
    my ($path) = @_;
    return -s $path // 0;
}

sub _log_since {
    my ($path, $offset) = @_;
    open my $f, '<', $path or return '';
    seek $f, $offset, 0;
    local $/;
    my $s = <$f> // '';
    close $f;
    return $s;
}

sub run_tests {
    my $srv = server();
    my $cur_config = '';

    for my $block (matrix_blocks()) {
        my $name = $block->name;

        # configuration: reload only when it changes
        my $conf = join("\0", _section($block, 'config') // '',
                              _section($block, 'http_config') // '');
        if ($conf ne $cur_config) {
            $srv->configure(client => _section($block, 'config'),
                            http => _section($block, 'http_config'));
            $cur_config = $conf;
        }

        for my $cmd (_lines(_section($block, 'redis'))) {
            my @args = ($cmd =~ /("[^"]*"|\S+)/g);
            s/^"(.*)"$/$1/ for @args;
            my $r = $srv->redis_cmd(@args);
            BAIL_OUT("$name: redis $cmd: $r->{error}") if ref $r eq 'HASH';
        }

        my $token;
        if (defined(my $t = _section($block, 'token'))) {
            my ($user, $device, @flags) = split ' ', $t;
            my %flags = map { $_ => 1 } @flags;
            $token = $srv->make_token(user_id => $user, device_id => $device // 'DEVICE',
                                      guest => $flags{guest},
                                      expires => $flags{expired} ? 1000 : 0);
        }

        my @headers = _lines(_section($block, 'more_headers'));
        my $request = _section($block, 'request');
        my $raw = $block->raw_request;      # byte-exact: not chomped

        if (defined $token) {
            my $uses = grep { /\@TOKEN\@/ } @headers, $request // '', $raw // '';
            push @headers, 'Authorization: Bearer @TOKEN@' unless $uses;
            s/\@TOKEN\@/$token/g for @headers;
            $request =~ s/\@TOKEN\@/$token/g if defined $request;
            $raw =~ s/\@TOKEN\@/$token/g if defined $raw;
        }

        my $log = $srv->log_path('nginx');
        my $offset = _log_size($log);

        my %req = (port => $srv->{client_port}, headers => \@headers,
                   timeout => _section($block, 'timeout') // 10);

        if (defined $raw) {
            $raw =~ s/\n/\r\n/g unless $raw =~ /\r\n/;
            $req{raw} = $raw;
        } else {
            BAIL_OUT("$name: no request") unless defined $request;
            my ($line, $body) = split /\n/, $request, 2;
            my ($method, $uri) = split ' ', $line;
            $req{method} = $method;
            $req{uri} = $uri;
            $req{body} = $body // '';
        }

        my $res = http_request(%req);

        if (defined $block->abort) {
            ok($res->{timed_out}, "$name - no response before the timeout, client aborts");
        } elsif ($res->{error} || $res->{timed_out}) {
            fail("$name - request failed: " . ($res->{error} // 'timed out'));
            next;
        }

        if (defined(my $code = _section($block, 'error_code'))) {
            is($res->{status}, $code, "$name - status code");
        }

        if (defined(my $body = $block->response_body)) {
            is($res->{body}, $body, "$name - response body");
        }

        if (defined(my $like = _section($block, 'response_body_like'))) {
            like($res->{body}, qr/$like/s, "$name - response body like");
        }

        if (defined(my $json = _section($block, 'response_json'))) {
            my $expected = $JSON->decode($json);
            json_is(decode_json_safe($res->{body}), $expected, "$name - response json");
        }

        for my $h (_lines(_section($block, 'response_headers'))) {
            if ($h =~ /^!\s*(.+)$/) {
                ok(!exists $res->{headers}{lc $1}, "$name - header $1 absent");
                next;
            }
            my ($k, $v) = $h =~ /^([^:]+):\s*(.*)$/;
            is($res->{headers}{lc $k}[0], $v, "$name - header $k");
        }

        if (my $w = _section($block, 'wait')) {
            sleep $w;
        }

        my $text = _log_since($log, $offset);

        for my $re (_lines(_section($block, 'error_log'))) {
            like($text, qr/$re/, "$name - error_log has $re");
        }

        for my $re (_lines(_section($block, 'no_error_log'))) {
            unlike($text, qr/$re/, "$name - no_error_log $re");
        }
    }
}

1;

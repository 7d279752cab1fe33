package Test::Matrix::Bench;

# What the bench scripts (scripts/bench-*.pl) share:
#
#   my $http = Test::Matrix::Bench::http(verify_SSL => 0);
#       an HTTP::Tiny whose sockets have TCP_NODELAY: HTTP::Tiny writes a
#       request's head and body apart, and without it Nagle's algorithm
#       and the server's delayed ACK hold each body 40 ms
#   my $token = Test::Matrix::Bench::token($redis_cmd, '@u:localhost');
#       an access token in the server's format (core/mx_token.h), put
#       straight in Redis; $redis_cmd runs one command (a code ref)
#   my $srv = Test::Matrix::Bench::server($redis_socket, 'localhost');
#       what Test::Matrix::Fed needs of a server: its name and Redis

use strict;
use warnings;

use Digest::SHA qw(sha256);
use HTTP::Tiny;
use MIME::Base64 qw(encode_base64);
use Socket qw(IPPROTO_TCP TCP_NODELAY);

use Test::Matrix::Redis;

{
    no warnings 'redefine';
    my $connect = \&HTTP::Tiny::Handle::connect;
    *HTTP::Tiny::Handle::connect = sub {
        my $h = $connect->(@_);
        setsockopt($h->{fh}, IPPROTO_TCP, TCP_NODELAY, 1) if $h && $h->{fh};
        return $h;
    };
}

sub http { HTTP::Tiny->new(keep_alive => 1, timeout => 60, @_) }

sub b64url { my $s = encode_base64(shift, ''); $s =~ tr{+/}{-_}; $s =~ s/=+$//; $s }

sub token {
    my ($redis_cmd, $user) = @_;
    my $t = 'mxa_' . b64url($user) . '_' . b64url(join '', map { chr int rand 256 } 1 .. 32);
    (my $h = encode_base64(sha256($t), '')) =~ s/=+$//;
    $redis_cmd->('HSET', "mx:{$user}:token:$h", 'user_id', $user, 'device_id', 'BENCH', 'guest', '0');
    return $t;
}

package Test::Matrix::Bench::Server {
    sub new { my ($c, %o) = @_; bless { %o, r => Test::Matrix::Redis->new(path => $o{sock}) }, $c }
    sub redis_cmd { my $s = shift; $s->{r}->command(@_) }
    sub server_name { $_[0]{name} }
}

sub server { Test::Matrix::Bench::Server->new(sock => $_[0], name => $_[1]) }

# the median and the largest of a list of numbers
sub median_max {
    my @v = sort { $a <=> $b } @_;
    return (undef, undef) unless @v;
    my $m = @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
    return ($m, $v[-1]);
}

1;

package Test::Matrix::Redis;

# A minimal RESP client for the tests: one command at a time over the
# server's unix socket (or TCP), replies as Perl values.  Errors come back as
# { error => 'MESSAGE' }, so tests can assert on them.

use strict;
use warnings;

use IO::Socket::UNIX;
use IO::Socket::INET;
use Carp qw(croak);

# a write to a connection Redis closed must fail, not kill the test
$SIG{PIPE} = 'IGNORE';

sub new {
    my ($class, %o) = @_;
    my $self = bless { %o }, $class;
    $self->connect;
    return $self;
}

sub connect {
    my ($self) = @_;
    my $sock;

    if ($self->{path}) {
        $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $self->{path});
    } else {
        $sock = IO::Socket::INET->new(PeerAddr => $self->{host} // '127.0.0.1',
                                      PeerPort => $self->{port}, Proto => 'tcp');
    }

    croak "redis: cannot connect: $!" unless $sock;
    $sock->autoflush(1);
    $self->{sock} = $sock;
}

sub command {
    my ($self, @args) = @_;
    my $req = '*' . scalar(@args) . "\r\n";

    for my $a (@args) {
        my $s = defined $a ? "$a" : '';
        utf8::encode($s) if utf8::is_utf8($s);
        $req .= '$' . length($s) . "\r\n$s\r\n";
    }

    $self->connect unless $self->{sock};
    my $sock = $self->{sock};

    unless (print {$sock} $req) {
        delete $self->{sock};
        croak "redis: write failed: $!";
    }

    return $self->_read;
}

sub _line {
    my ($self) = @_;
    my $line = readline($self->{sock});

    unless (defined $line) {
        delete $self->{sock};
        croak "redis: connection closed";
    }

    $line =~ s/\r\n\z//;
    return $line;
}

sub _read {
    my ($self) = @_;
    my $line = $self->_line;
    my ($t, $rest) = (substr($line, 0, 1), substr($line, 1));

    return $rest if $t eq '+';
    return { error => $rest } if $t eq '-';
    return 0 + $rest if $t eq ':';

    if ($t eq '$') {
        return undef if $rest < 0;
        my $buf = '';
        while (length($buf) < $rest + 2) {
            my $n = read($self->{sock}, $buf, $rest + 2 - length($buf), length($buf));
            croak "redis: short read" unless $n;
        }
        return substr($buf, 0, $rest);
    }

    if ($t eq '*') {
        return undef if $rest < 0;
        return [ map { $self->_read } 1 .. $rest ];
    }

    croak "redis: unexpected reply '$line'";
}

# the next reply or message (after SUBSCRIBE, say), or undef after $timeout
# seconds; a connection that timed out mid-reply is dropped
sub next_reply {
    my ($self, $timeout) = @_;
    my $r;
    my $ok = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm($timeout // 10);
        $r = $self->_read;
        alarm(0);
        1;
    };
    alarm(0);
    return $r if $ok;
    die $@ unless $@ eq "timeout\n";
    return undef;
}

sub close {
    my ($self) = @_;
    close($self->{sock}) if $self->{sock};
    delete $self->{sock};
}

1;

package Test::Matrix::Fed;

# Other servers, as far as the server under test can tell: signing keys
# made with matrixctl, their key responses, requests signed with X-Matrix,
# and a fake fedsender that answers the module's `keys` jobs on mx:fedjobs
# the way the real one will (see /work/notes/fed-contract.md):
#
#   my $fed = Test::Matrix::Fed->new(server => $srv);
#   my $k = $fed->key('remote.example');           # a key of that server
#   my $b = $fed->key_of_file($B->server_name, $B->dir . '/signing.key');
#   $fed->store($k);                               # in the key cache
#   my $h = $fed->xmatrix($k, GET => $uri, $content, destination => ...);
#   $fed->fake_fedsender(fresh => [$k2], broken => ['x.example'],
#                        request => sub { my ($job) = @_; ... })
#   my $ev = $fed->sign_event($k, $event, '10');    # a signed PDU
#   my ($pdu, $id) = $fed->room_event($k, $room, sender => ..., ...);
#   my $id = $fed->event_id($ev, '10');
#   my $name = $fed->fake_remote(sub { my ($req) = @_; (200, '{}') });
#   my $sign = $fed->signer($k, '10');              # many, one process
#   my ($id, $text) = $sign->($event);              # its ID, the PDU as JSON
#
# The fake runs in a child process; it stores the keys of the servers
# given in `fresh` and answers {"ok":true}, answers an error for those in
# `broken`, and nothing at all for any other.  `request` jobs go to the
# code given (with the job and a Redis connection), which returns the answer ({status, body} or {errcode,
# error}, a Perl structure) or undef for none.

use strict;
use warnings;

use Carp qw(croak);
use File::Temp qw(tempdir);
use IO::Socket::SSL;
use IPC::Open2;
use IPC::Open3;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time);

use Test::Matrix::Redis;
use Test::Matrix::Server;

my $JSON = JSON::PP->new->canonical;

sub new {
    my ($class, %o) = @_;
    my $self = bless { %o }, $class;
    $self->{dir} = tempdir(CLEANUP => 1);
    $self->{ctl} = "$Test::Matrix::Server::Build/bin/matrixctl";
    return $self;
}

# The server under test without a fedsender (a test puts the keys it needs
# in the cache, or answers the jobs with fake_fedsender): the server, a
# Test::Matrix::Fed of it, and a client of its federation port
sub without_fedsender {
    my ($class) = @_;
    my $b = Test::Matrix::Server::daemon_build();
    %Test::Matrix::ServerOptions = (daemons => "$b/bin/roomserver $b/bin/syncer");
    my $srv = Test::Matrix::server();
    return ($srv, $class->new(server => $srv), Test::Matrix::client(base => $srv->fed_url));
}

sub ctl {
    my ($self, $input, @args) = @_;
    my $pid = open3(my $in, my $out, undef, $self->{ctl}, @args);
    print {$in} $input // '';
    close $in;
    local $/;
    my $text = <$out>;
    waitpid $pid, 0;
    my $status = $? >> 8;
    croak "matrixctl @args: exit $status" if $status > 1;
    $text =~ s/\s+\z//;
    return wantarray ? ($text, $status) : $text;
}

my $Seq = 0;

# a new signing key of $server: {server, file, id, pk}
sub key {
    my ($self, $server, $version) = @_;
    my $n = ++$Seq;
    $version //= "k$n";
    my $file = "$self->{dir}/key$n";       # one file per key, named or not
    open my $f, '>', $file or croak "$file: $!";
    print {$f} scalar($self->ctl('', 'keygen', $version)), "\n";
    close $f;
    my ($id, $pk) = split ' ', $self->ctl('', 'public-key', '-k', $file);
    return { server => $server, file => $file, id => $id, pk => $pk };
}

# the key of a real server from its signing key file (a server's data
# folder has it as signing.key): events and requests signed with it are
# that server's as far as anyone can tell
sub key_of_file {
    my ($self, $server, $file) = @_;
    my ($id, $pk) = split ' ', $self->ctl('', 'public-key', '-k', $file);
    return { server => $server, file => $file, id => $id, pk => $pk };
}

# sign a JSON object (a Perl structure) as $key's server; returns it signed
sub sign {
    my ($self, $key, $obj) = @_;
    return $JSON->decode($self->ctl($JSON->encode($obj), 'sign', '-k', $key->{file},
                                    '-s', $key->{server}));
}

# a PDU signed (hashes and signature) as $key's server, for a room version
sub sign_event {
    my ($self, $key, $ev, $version) = @_;
    return $JSON->decode($self->ctl($JSON->encode($ev), 'sign', '-k', $key->{file},
                                    '-s', $key->{server}, '--room-version', $version // '10'));
}

# a PDU of $key's server in $room of the server under test, on the room's
# forward extremities and current state there, signed (room version 10):
# a message unless the fields given say otherwise; auth_events the create
# event, the power levels, the join rules for a join, the sender's
# membership.  Returns (the PDU, its event ID).
sub room_event {
    my ($self, $key, $room, %o) = @_;
    my $srv = $self->{server};
    my $state = { @{ $srv->redis_cmd('HGETALL', "mx:{$room}:state") } };
    my $sid = sub { $state->{"$_[0]\x1f" . ($_[1] // '')} };
    $self->{ts} //= int(time * 1000);
    my $ev = { room_id => $room, origin_server_ts => $self->{ts}++, type => 'm.room.message',
               prev_events => $srv->redis_cmd('SMEMBERS', "mx:{$room}:extrem"),
               depth => $srv->redis_cmd('HGET', "mx:{$room}:room", 'depth') + 1,
               content => { msgtype => 'm.text', body => 'hello' }, %o };
    my $join = $ev->{type} eq 'm.room.member' && ($ev->{content}{membership} // '') eq 'join';
    $ev->{auth_events} //= [ grep { defined } $sid->('m.room.create'), $sid->('m.room.power_levels'),
                             $join ? $sid->('m.room.join_rules') : (),
                             $sid->('m.room.member', $ev->{sender}) ];
    my $signed = $self->sign_event($key, $ev, '10');
    return ($signed, $self->event_id($signed, '10'));
}

# PDUs signed by one matrixctl process (sign-events) as $key's server: a
# code ref taking an event and giving its ID and the signed PDU as JSON
# text; the process ends with the code ref
sub signer {
    my ($self, $key, $version) = @_;
    my $pid = open2(my $from, my $to, $self->{ctl}, 'sign-events', '-k', $key->{file},
                    '-s', $key->{server}, '--room-version', $version // '10');
    my $end = Test::Matrix::Fed::Reaper->new(sub { close $to; waitpid $pid, 0 });
    return sub {
        my ($ev) = @_;
        croak 'the signer ended' unless $end;     # held while the code ref lives
        print {$to} $JSON->encode($ev), "\n";
        my $line = <$from> // croak 'matrixctl sign-events stopped';
        chomp $line;
        return split / /, $line, 2;
    };
}

package Test::Matrix::Fed::Reaper {
    sub new { bless { run => $_[1] }, $_[0] }
    sub DESTROY { local ($?, $!, $@); $_[0]{run}->() }
}
package Test::Matrix::Fed;

# the ID of a PDU (its reference hash from room version 3)
sub event_id {
    my ($self, $ev, $version) = @_;
    return scalar $self->ctl($JSON->encode($ev), 'event-id', '--room-version', $version // '10');
}

# the server's own /_matrix/key/v2/server response, self-signed
sub key_response {
    my ($self, $key, $until) = @_;
    return $self->sign($key, {
        server_name => $key->{server},
        valid_until_ts => $until,
        verify_keys => { $key->{id} => { key => $key->{pk} } },
        old_verify_keys => {},
    });
}

# what the fedsender does with a fetched response: the cache
sub store {
    my ($self, $key, %o) = @_;
    my $until = $o{until} // int(time * 1000) + 86400000;
    my $resp = $o{response} // $self->key_response($key, $until);
    my $s = $key->{server};
    return $self->{server}->redis_cmd('FCALL', 'mx_serverkeys_put', 1, "mx:serverkeys:{$s}", $s,
                                      $o{no_json} ? '' : $JSON->encode($resp),
                                      int(time * 1000), $key->{id}, $key->{pk}, $until);
}

# an Authorization header: $key's server signs {method, uri, origin,
# destination, content}; options override what is signed or sent
sub xmatrix {
    my ($self, $key, $method, $uri, $content, %o) = @_;
    my $origin = $o{origin} // $key->{server};
    my $dest = exists $o{destination} ? $o{destination} : $self->{server}->server_name;
    my $req = { method => $method, uri => $uri, origin => $origin };
    $req->{destination} = $dest if defined $dest;
    $req->{content} = $content if defined $content;
    my $signed = $self->sign({ %$key, server => $origin }, $req);
    my $sig = $signed->{signatures}{$origin}{$key->{id}} or croak 'no signature';
    my $h = qq{X-Matrix origin="$origin",key="$key->{id}",sig="$sig"};
    $h .= qq{,destination="$dest"} if defined $dest && !$o{hide_destination};
    return $h;
}

# the fake fedsender: a child reading mx:fedjobs from its end; returns
# its pid (stop it with stop_fake)
sub fake_fedsender {
    my ($self, %o) = @_;
    my %fresh = map { $_->{server} => $_ } @{ $o{fresh} // [] };
    my %broken = map { $_ => 1 } @{ $o{broken} // [] };
    my $path = $self->{server}->socket_path;

    # the jobs from now on, read from here: a child that starts late must
    # not miss the ones put meanwhile (XREAD from '$' would)
    my $top = $self->{server}->redis_cmd('XREVRANGE', 'mx:fedjobs', '+', '-', 'COUNT', 1);
    my $last = ref $top eq 'ARRAY' && @$top ? $top->[0][0] : '0-0';

    my $pid = fork;
    croak "fork: $!" unless defined $pid;
    if ($pid) {
        $self->{fake} = $pid;
        return $pid;
    }

    delete $self->{server}{redis};      # the parent's connection
    my $r = Test::Matrix::Redis->new(path => $path);
    while (1) {
        my $res = $r->command('XREAD', 'BLOCK', 1000, 'STREAMS', 'mx:fedjobs', $last);
        next unless ref $res eq 'ARRAY';
        for my $entry (@{ $res->[0][1] }) {
            $last = $entry->[0];
            my %f = @{ $entry->[1] };
            my $answer;
            if (($f{kind} // '') eq 'request') {
                my $a = $o{request} ? $o{request}->(\%f, $r) : undef;
                $r->command('PUBLISH', $f{reply}, "$f{req} " . $JSON->encode($a)) if $a;
                next;
            }
            next unless ($f{kind} // '') eq 'keys';
            if (my $k = $fresh{$f{server}}) {
                $self->store($k);
                $answer = '{"ok":true}';
            } elsif ($broken{$f{server}}) {
                $r->command('FCALL', 'mx_serverkeys_failed', 1, "mx:serverkeys:{$f{server}}",
                            $f{server}, int(time * 1000));
                $answer = '{"errcode":"M_UNKNOWN","error":"connection refused"}';
            }
            $r->command('PUBLISH', $f{reply}, "$f{req} $answer") if defined $answer;
        }
    }
    POSIX::_exit(0);
}

sub stop_fake {
    my ($self) = @_;
    my $pid = delete $self->{fake} or return;
    kill 'TERM', $pid;
    waitpid $pid, 0;
}

# the keys jobs the module appended, as hashes
sub jobs {
    my ($self) = @_;
    return map { { @{ $_->[1] } } } @{ $self->{server}->redis_cmd('XRANGE', 'mx:fedjobs', '-', '+') };
}

# A fake remote server: HTTPS with a certificate of the test CA (which the
# servers under test trust), on 127.0.0.1 and named localhost:<port>, so
# that they reach it with no look-up.  Each request, {method, path, head,
# body, auth (the Authorization header)}, goes to $handler in a child
# process, which returns the status and the text of the body.  Returns the
# server name; the child ends with the test.
my @Fakes;

sub fake_remote {
    my ($self, $handler) = @_;
    my ($crt, $key) = Test::Matrix::Server::issue_cert({ dir => tempdir(DIR => $self->{dir}) });
    my $listen = IO::Socket::SSL->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 16,
                                      ReuseAddr => 1, SSL_server => 1, SSL_cert_file => $crt,
                                      SSL_key_file => $key)
        or croak "listen: $IO::Socket::SSL::SSL_ERROR";
    my $name = 'localhost:' . $listen->sockport;

    my $pid = fork;
    croak "fork: $!" unless defined $pid;
    if ($pid) {
        push @Fakes, [$pid, $$];
        return $name;
    }

    while (1) {
        my $c = $listen->accept or next;
        my ($head, $body) = ('', '');
        while (defined(my $l = <$c>)) { $head .= $l; last if $l eq "\r\n" }
        my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
        my $got = 0;
        while ($len && $got < $len) {
            my $n = read($c, $body, $len - $got, $got) or last;
            $got += $n;
        }
        my ($method, $path) = $head =~ /^(\S+) (\S+)/;
        my ($auth) = $head =~ /^Authorization: (.*?)\r$/mi;
        my ($status, $text) = $handler->({ method => $method, path => $path, head => $head,
                                           body => $body, auth => $auth });
        print {$c} "HTTP/1.1 $status X\r\nContent-Type: application/json\r\n"
                 . 'Content-Length: ' . length($text) . "\r\nConnection: close\r\n\r\n$text";
        close $c;
    }
    POSIX::_exit(0);
}

END {
    for my $f (@Fakes) {
        my ($pid, $owner) = @$f;
        next unless $$ == $owner;
        local $?;
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop_fake if $self->{fake} && $$ != $self->{fake};
}

1;

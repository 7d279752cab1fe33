package Test::Matrix::Client;

# A small Matrix client for multi-step flows:
#
#   my $c = client(token => $t);            # or Test::Matrix::Client->new(...)
#   my ($status, $json) = $c->get('/_matrix/client/v3/account/whoami');
#   my $r = $c->put($path, { key => 'value' });   # $r->{status}, ->{json}
#
# In list context a call returns (status, decoded JSON, HTTP::Tiny response);
# in scalar context a hash with status, json, headers and body.

use strict;
use warnings;

use HTTP::Tiny;
use Socket ();
use JSON::PP;

my $JSON = JSON::PP->new->canonical->allow_nonref->utf8;

# HTTP::Tiny writes a request's head and body with two writes; with Nagle's
# algorithm on, the body waits for the ACK of the head, which the server
# delays (40 ms on Linux).  Real clients turn Nagle off; so do we.
{
    no warnings 'redefine';
    my $connect = \&HTTP::Tiny::Handle::connect;
    *HTTP::Tiny::Handle::connect = sub {
        my $h = $connect->(@_);
        setsockopt($h->{fh}, Socket::IPPROTO_TCP(), Socket::TCP_NODELAY(), 1)
            if $h && $h->{fh};
        return $h;
    };
}

sub new {
    my ($class, %o) = @_;
    my $self = bless { %o }, $class;
    $self->{base} //= $self->{server}->url;
    $self->{http} = HTTP::Tiny->new(timeout => $o{timeout} // 30,
                                    keep_alive => 1,
                                    verify_SSL => 0);
    return $self;
}

sub token { my $s = shift; $s->{token} = shift if @_; $s->{token} }

sub request {
    my ($self, $method, $path, $body, %o) = @_;
    my %headers = %{ $o{headers} // {} };

    $headers{Authorization} = "Bearer $self->{token}"
        if defined $self->{token} && !exists $headers{Authorization} && !$o{no_auth};

    my %args = (headers => \%headers);
    if (defined $body) {
        $args{content} = ref $body ? $JSON->encode($body) : $body;
        $headers{'Content-Type'} //= 'application/json';
    }

    my $url = $path =~ m{^https?://} ? $path : $self->{base} . $path;
    my $res = $self->{http}->request($method, $url, \%args);
    my $json = eval { $JSON->decode($res->{content}) } if length($res->{content} // '');

    my $r = { status => $res->{status}, json => $json, body => $res->{content},
              headers => $res->{headers} };

    return wantarray ? ($res->{status}, $json, $res) : $r;
}

# register through user-interactive auth (m.login.dummy); on success the
# client holds the new token.  Returns the final (status, json).
sub register {
    my ($self, $username, $password, %body) = @_;
    my $path = '/_matrix/client/v3/register';
    my %req = (username => $username, password => $password, %body);

    my ($status, $json) = $self->request('POST', $path, \%req, no_auth => 1);
    return ($status, $json) unless $status == 401 && $json->{session};

    $req{auth} = { type => 'm.login.dummy', session => $json->{session} };
    ($status, $json) = $self->request('POST', $path, \%req, no_auth => 1);

    if ($status == 200 && $json->{access_token}) {
        $self->{token} = $json->{access_token};
        $self->{user_id} = $json->{user_id};
        $self->{device_id} = $json->{device_id};
    }

    return ($status, $json);
}

sub login {
    my ($self, $user, $password, %body) = @_;
    my ($status, $json) = $self->request('POST', '/_matrix/client/v3/login', {
        type => 'm.login.password',
        identifier => { type => 'm.id.user', user => $user },
        password => $password, %body }, no_auth => 1);

    if ($status == 200) {
        $self->{token} = $json->{access_token};
        $self->{user_id} = $json->{user_id};
        $self->{device_id} = $json->{device_id};
    }

    return ($status, $json);
}

# a request behind user-interactive auth with the password stage
sub with_password {
    my ($self, $method, $path, $body, $password) = @_;
    my ($status, $json) = $self->request($method, $path, $body);
    return ($status, $json) unless $status == 401 && $json->{session};

    my %b = %{ $body // {} };
    $b{auth} = { type => 'm.login.password', session => $json->{session},
                 identifier => { type => 'm.id.user', user => $self->{user_id} },
                 password => $password };
    return $self->request($method, $path, \%b);
}

sub user_id   { $_[0]{user_id} }
sub device_id { $_[0]{device_id} }

sub get    { my $s = shift; $s->request('GET', @_) }
sub post   { my $s = shift; $s->request('POST', @_) }
sub put    { my $s = shift; $s->request('PUT', @_) }
sub delete { my $s = shift; $s->request('DELETE', @_) }

1;

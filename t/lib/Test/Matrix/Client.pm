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
use JSON::PP;

my $JSON = JSON::PP->new->canonical->allow_nonref->utf8;

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

sub get    { my $s = shift; $s->request('GET', @_) }
sub post   { my $s = shift; $s->request('POST', @_) }
sub put    { my $s = shift; $s->request('PUT', @_) }
sub delete { my $s = shift; $s->request('DELETE', @_) }

1;

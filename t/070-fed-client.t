# The fedsender's outbound federation client, through the job stream
# mx:fedjobs (the module's side of it): servers A and B of one test CA trust
# each other; C has a self-signed certificate nobody trusts and refuses
# private addresses.
#
#   keys     A fetches B's keys: checked, stored with their validity, the
#            same as B serves; a name that does not resolve is an error at
#            once, and again within 60 s without trying; C's certificate is
#            refused; C refuses to connect to loopback at all
#   request  a signed GET to B: status and body; the X-Matrix header a
#            small TLS server of the test receives verifies with A's key
#   cap      keys that server says are valid for a year are kept for 7
#            days after the fetch (the spec's cap on valid_until_ts)

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use JSON::PP;
use File::Temp qw(tempdir);
use MIME::Base64 qw(decode_base64);
use Time::HiRes qw(time);

%Test::Matrix::ServerOptions = (federation => 1);

my $A = server();
my $B = new_server(federation => 1);
my $C = new_server(federation => 1, fed_allow_private => 'off',
                   fed_self_signed => 1);

like($A->server_name, qr/^localhost:\d+$/, 'a federating server is named localhost:<port>');

my $json = JSON::PP->new->canonical;
my $n = 0;

# each server's answers, heard on a channel of our own
my %sub;
for my $srv ($A, $C) {
    my $s = Test::Matrix::Redis->new(path => $srv->socket_path);
    $s->command('SUBSCRIBE', 'mx:test:fed');
    $sub{$srv} = $s;
}

sub job {
    my ($srv, %f) = @_;
    my $req = 'req' . ++$n;
    my $id = $srv->redis_cmd('XADD', 'mx:fedjobs', '*', reply => 'mx:test:fed',
                             req => $req, %f);
    die "XADD: $id->{error}" if ref $id;
    return $req;
}

# answers come in any order: those of other jobs are kept for later
my %stash;

sub answer {
    my ($srv, $req, $timeout) = @_;
    my $until = time + ($timeout // 15);
    return $json->decode(delete $stash{$req}) if exists $stash{$req};
    while (time < $until) {
        my $m = $sub{$srv}->next_reply($until - time) // last;
        next unless ref $m eq 'ARRAY' && $m->[0] eq 'message';
        my ($r, $body) = split / /, $m->[2], 2;
        return $json->decode($body) if $r eq $req;
        $stash{$r} = $body;
    }
    return undef;
}

sub pending {
    my ($srv) = @_;
    my $p = $srv->redis_cmd('XPENDING', 'mx:fedjobs', 'fedsender');
    return ref $p eq 'ARRAY' ? $p->[0] : -1;
}

# --- keys: A fetches B's --------------------------------------------------------

my $http = HTTP::Tiny->new(timeout => 5);
my $r = $http->get($B->url . '/_matrix/key/v2/server');
is($r->{status}, 200, "B serves its keys");
my $bkeys = $json->decode($r->{content});
my ($bkid) = keys %{ $bkeys->{verify_keys} };

my $bname = $B->server_name;
my $req = job($A, kind => 'keys', server => $bname, key_ids => $bkid, valid_at => 0);
my $ans = answer($A, $req);
is_deeply($ans, { ok => JSON::PP::true }, 'keys of B: ok') or diag explain $ans;

my $stored = $A->redis_cmd('HGETALL', "mx:serverkeys:{$bname}");
is_deeply({ @$stored }, { $bkid => $bkeys->{verify_keys}{$bkid}{key} },
          "A holds B's public key as B serves it");
my $raw = $A->redis_cmd('GET', "mx:serverkeys:{$bname}:json");
my $fetched_keys = $json->decode($raw // '{}');
is_deeply($fetched_keys->{verify_keys}, $bkeys->{verify_keys},
          'the response is kept for the notary');
my $until = $A->redis_cmd('HGET', "mx:serverkeys:{$bname}:until", $bkid);
is($until, $fetched_keys->{valid_until_ts}, 'until: its valid_until_ts');
ok(abs($until - $bkeys->{valid_until_ts}) < 60_000, '... what B says now, give or take');
ok(wait_for(sub { pending($A) == 0 }, 5), 'the job is acknowledged');

# asked again: answered from the cache, no fetch
my $fetched = $A->redis_cmd('GET', "mx:serverkeys:{$bname}:fetched");
$req = job($A, kind => 'keys', server => $bname, key_ids => '', valid_at => 0);
is_deeply(answer($A, $req), { ok => JSON::PP::true }, 'current keys of B: ok');
is($A->redis_cmd('GET', "mx:serverkeys:{$bname}:fetched"), $fetched,
   'from the cache');

# two jobs at once for keys not cached: one fetch answers both
sub stored_lines {
    my $log = Test::Matrix::Server::slurp($A->log_path('fedsender')) // '';
    my @l = $log =~ /stored the keys of \Q$bname\E/g;
    return scalar @l;
}
my $before = stored_lines();
$A->redis_cmd('DEL', "mx:serverkeys:{$bname}", "mx:serverkeys:{$bname}:until");
$A->redis_cmd('MULTI');
$A->redis_cmd('XADD', 'mx:fedjobs', '*', reply => 'mx:test:fed', req => 'both1',
              kind => 'keys', server => $bname, key_ids => $bkid);
$A->redis_cmd('XADD', 'mx:fedjobs', '*', reply => 'mx:test:fed', req => 'both2',
              kind => 'keys', server => $bname, key_ids => '');
$A->redis_cmd('EXEC');
is_deeply(answer($A, 'both1'), { ok => JSON::PP::true }, 'two jobs at once: the first ok');
is_deeply(answer($A, 'both2'), { ok => JSON::PP::true }, '... the second ok');
is(stored_lines() - $before, 1, '... from one fetch');

# a key B does not have
$req = job($A, kind => 'keys', server => $bname, key_ids => 'ed25519:nope', valid_at => 0);
$ans = answer($A, $req);
is($ans->{errcode}, 'M_NOT_FOUND', 'a key B does not have: M_NOT_FOUND')
    or diag explain $ans;

# --- keys: failures -------------------------------------------------------------

my $t0 = time;
$req = job($A, kind => 'keys', server => 'nothing.invalid:8448', key_ids => '');
$ans = answer($A, $req, 15);
is($ans->{errcode}, 'M_UNKNOWN', 'a name that does not resolve: an error');
like($ans->{error}, qr/resolve/i, '... saying so') or diag explain $ans;
ok(time - $t0 < 10, 'promptly');
ok($A->redis_cmd('GET', 'mx:serverkeys:{nothing.invalid:8448}:failed'),
   'the failure is recorded');

$t0 = time;
$req = job($A, kind => 'keys', server => 'nothing.invalid:8448', key_ids => '');
$ans = answer($A, $req, 5);
like($ans->{error} // '', qr/failed \d+ ms ago/, 'again within 60 s: the same answer at once')
    or diag explain $ans;
ok(time - $t0 < 1, 'at once');

my $cname = $C->server_name;
$req = job($A, kind => 'keys', server => $cname, key_ids => '');
$ans = answer($A, $req);
is($ans->{errcode}, 'M_UNKNOWN', 'a certificate of no trusted CA: an error');
like($ans->{error} // '', qr/certificate/i, '... a TLS one') or diag explain $ans;
is($A->redis_cmd('HLEN', "mx:serverkeys:{$cname}"), 0, 'nothing stored');

# C: matrix_federation_allow_private off
$req = job($C, kind => 'keys', server => $bname, key_ids => '');
$ans = answer($C, $req);
like($ans->{error} // '', qr/private address/, 'allow_private off: loopback refused')
    or diag explain $ans;

# --- request -------------------------------------------------------------------

$req = job($A, kind => 'request', destination => $bname, method => 'GET',
           path => '/_matrix/federation/v1/version', body => '');
$ans = answer($A, $req);
is($ans->{status}, 200, 'GET /version of B: 200');
ok($ans->{body}{server}{name}, '... with the body as JSON') or diag explain $ans;

$req = job($A, kind => 'request', destination => $bname, method => 'GET',
           path => '/_matrix/federation/v1/nothing', body => '');
$ans = answer($A, $req);
is($ans->{status}, 404, 'an unknown path: its status');
is($ans->{body}{errcode}, 'M_UNRECOGNIZED', '... and its body');

$req = job($A, kind => 'request', destination => 'bad name', method => 'GET',
           path => '/x');
$ans = answer($A, $req, 5);
like($ans->{error} // '', qr/not a server name/, 'a bad destination: an error');

ok(wait_for(sub { pending($A) == 0 }, 5), 'every job acknowledged');

# The request as a server receives it: a TLS server of the test CA that
# writes down what it was sent.
my $dir = tempdir(CLEANUP => 1);
# Its keys, which it says are valid for a year, and an old key too,
# "expired" a year from now, are written once its name is known.
my $dest = Test::Matrix::Fed->new(server => $A)->fake_remote(sub {
    my ($r) = @_;
    return (200, Test::Matrix::Server::slurp("$dir/keys.json"))
        if $r->{method} eq 'GET' && $r->{path} eq '/_matrix/key/v2/server';
    Test::Matrix::Server::write_file("$dir/req.txt", $r->{head} . $r->{body});
    return (200, qq({"seen":1}\n));
});
my $fed = Test::Matrix::Fed->new(server => $A);
my $yk = $fed->key($dest);
my $old = $fed->key($dest);
my $year = int(time * 1000) + 365 * 86400_000;
my $yresp = $fed->sign($yk, { server_name => $dest, valid_until_ts => $year,
                              verify_keys => { $yk->{id} => { key => $yk->{pk} } },
                              old_verify_keys => { $old->{id} => { key => $old->{pk},
                                                                   expired_ts => $year } } });
Test::Matrix::Server::write_file("$dir/keys.json", $json->encode($yresp));

my $body = '{"b":[1,2],"a":"x"}';
$req = job($A, kind => 'request', destination => $dest, method => 'PUT',
           path => '/_matrix/federation/v1/send/t1?x=1', body => $body);
$ans = answer($A, $req);
is_deeply($ans, { status => 200, body => { seen => 1 } }, 'PUT to a server of our own: its answer')
    or diag explain $ans;

my $got = Test::Matrix::Server::slurp("$dir/req.txt") // '';
like($got, qr{^PUT /_matrix/federation/v1/send/t1\?x=1 HTTP/1\.1\r\n}, 'the method and path');
like($got, qr{^Host: \Q$dest\E\r$}mi, 'Host: the server name');
like($got, qr{\r\n\r\n\Q$body\E\z}, 'the body');
my ($auth) = $got =~ /^Authorization: X-Matrix (.*)\r$/mi;
my %x = ($auth // '') =~ /(\w+)="?([^",]*)"?/g;
is($x{origin}, $A->server_name, 'X-Matrix origin');
is($x{destination}, $dest, 'X-Matrix destination');

# the signature, checked with A's public key by openssl
my $akeys = $json->decode($http->get($A->url . '/_matrix/key/v2/server')->{content});
my $apk = decode_base64($akeys->{verify_keys}{$x{key} // ''}{key} // '');
my $signed = $json->encode({ method => 'PUT', uri => '/_matrix/federation/v1/send/t1?x=1',
                             origin => $A->server_name, destination => $dest,
                             content => $json->decode($body) });
Test::Matrix::Server::write_file("$dir/msg", $signed);
Test::Matrix::Server::write_file("$dir/sig", decode_base64($x{sig} // ''));
Test::Matrix::Server::write_file("$dir/pk.der",
    pack('H*', '302a300506032b6570032100') . $apk);
my $v = qx{openssl pkeyutl -verify -pubin -keyform DER -inkey $dir/pk.der -rawin -in $dir/msg -sigfile $dir/sig 2>&1};
like($v, qr/Signature Verified Successfully/, 'the X-Matrix signature verifies with A\'s key');

# --- the 7-day cap on fetched keys --------------------------------------------------
my $week = 7 * 86400_000;
$t0 = int(time * 1000);
$req = job($A, kind => 'keys', server => $dest, key_ids => $yk->{id}, valid_at => 0);
is_deeply(answer($A, $req), { ok => JSON::PP::true }, 'keys said to be valid for a year: ok');
my $t1 = int(time * 1000);
my %yuntil = @{ $A->redis_cmd('HGETALL', "mx:serverkeys:{$dest}:until") };
my $fetched_at = $A->redis_cmd('GET', "mx:serverkeys:{$dest}:fetched");
ok($fetched_at >= $t0 && $fetched_at <= $t1, 'fetched now');
is($yuntil{$yk->{id}}, $fetched_at + $week, 'the verify key: valid 7 days after the fetch, not a year');
is($yuntil{$old->{id}}, $fetched_at + $week, 'the old key "expiring" in a year: the same cap');
is($json->decode($A->redis_cmd('GET', "mx:serverkeys:{$dest}:json"))->{valid_until_ts}, $year,
   'the response is kept as the server signed it (the notary serves it so)');

# 7 days later, as far as the cache can tell: the key is fetched again
$A->redis_cmd('HSET', "mx:serverkeys:{$dest}:until", $yk->{id}, $t0 - 1);
$req = job($A, kind => 'keys', server => $dest, key_ids => $yk->{id}, valid_at => 0);
is_deeply(answer($A, $req), { ok => JSON::PP::true }, 'past the cap: asked again, ok');
ok($A->redis_cmd('GET', "mx:serverkeys:{$dest}:fetched") > $fetched_at, '... by a new fetch');
ok($A->redis_cmd('HGET', "mx:serverkeys:{$dest}:until", $yk->{id}) > $t1,
   '... valid again, for 7 days from then');

for my $srv ($A, $B, $C) {
    my @bad = $srv->sanitizer_reports;
    is(scalar @bad, 0, 'no sanitizer report') or diag join "\n", @bad;
}

done_testing();

# GET /_matrix/key/v2/server: the server's verify key, self-signed exactly as
# the spec says (checked here with OpenSSL, independently of our code), with
# a valid_until_ts in the future, over the federation TLS port.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use File::Temp qw(tempdir);

my $srv = server();
my $c = client();

my ($status, $key, $res) = $c->get($srv->fed_url . '/_matrix/key/v2/server');
is($status, 200, 'the key server answers over TLS');
is($res->{headers}{'content-type'}, 'application/json', 'as JSON');

is($key->{server_name}, 'localhost', 'server_name is ours');
is_deeply($key->{old_verify_keys}, {}, 'no old keys');

my ($key_id) = keys %{ $key->{verify_keys} };
my $disk = Test::Matrix::Server::slurp($srv->dir . '/signing.key');
my ($version) = $disk =~ /^ed25519 (\S+)/;
is($key_id, "ed25519:$version", 'the key ID is the key file\'s');

my $now = time * 1000;
my $valid = $key->{valid_until_ts};
cmp_ok($valid, '>', $now + 86400_000 - 120_000, 'valid for about a day');
cmp_ok($valid, '<', $now + 86400_000 + 120_000, 'and not much longer');

# the signature, checked with OpenSSL over canonical JSON
my $sig_b64 = $key->{signatures}{localhost}{$key_id};
ok($sig_b64, 'signed by localhost with that key');

my %unsigned = %$key;
delete $unsigned{signatures};
my $canonical = JSON::PP->new->canonical->utf8->encode(\%unsigned);

sub unb64 { my $s = shift; $s .= '=' x ((4 - length($s) % 4) % 4); decode_base64($s) }

my $pub = unb64($key->{verify_keys}{$key_id}{key});
is(length $pub, 32, 'a 32-byte ed25519 public key');
my $sig = unb64($sig_b64);
is(length $sig, 64, 'a 64-byte signature');

my $tmp = tempdir(CLEANUP => 1);
sub write_bin { my ($p, $d) = @_; open my $f, '>:raw', $p or die; print {$f} $d; close $f }
write_bin("$tmp/pub.der", pack('H*', '302a300506032b6570032100') . $pub);
write_bin("$tmp/msg", $canonical);
write_bin("$tmp/sig", $sig);

my $out = qx{openssl pkeyutl -verify -pubin -keyform DER -inkey $tmp/pub.der -rawin -in $tmp/msg -sigfile $tmp/sig 2>&1};
like($out, qr/Signature Verified Successfully/, 'OpenSSL verifies the signature over the canonical JSON');

write_bin("$tmp/msg", $canonical . ' ');
$out = qx{openssl pkeyutl -verify -pubin -keyform DER -inkey $tmp/pub.der -rawin -in $tmp/msg -sigfile $tmp/sig 2>&1};
unlike($out, qr/Signature Verified Successfully/, 'and would not verify other bytes');

# the body is canonical JSON itself
is($res->{content}, JSON::PP->new->canonical->utf8->encode($key), 'the response is canonical JSON');

# the deprecated form with a key ID answers the same
my ($s2, $k2) = $c->get($srv->url . "/_matrix/key/v2/server/$key_id");
is($s2, 200, 'the deprecated /server/{keyId} form answers');
is_deeply($k2->{verify_keys}, $key->{verify_keys}, 'with the same keys');

done_testing();

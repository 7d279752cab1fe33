# Device lists served to other servers: GET /_matrix/federation/v1/user/
# devices/{userId}, signed with X-Matrix by a fake remote server.  A local
# user with two devices that uploaded keys (signed with keys made by
# matrixctl) and cross-signing keys: both devices with their keys as
# uploaded plus the signatures of the user's own keys, display names
# beside the keys, stream_id the user's device list sequence, the master
# and self-signing keys (never the user-signing key).  An unknown local
# user has no devices; a user of another server is refused; an unsigned
# request is 401.  /user/keys/query gives the same keys (local users only,
# no user-signing key, no display name); /user/keys/claim takes one-time
# keys oldest first, then the fallback key.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use Test::Matrix::Fed;
use JSON::PP;

my $srv = server();
my $fed = Test::Matrix::Fed->new(server => $srv);
my $http = client(base => $srv->fed_url);
my $api = '/_matrix/client/v3';
my $F = '/_matrix/federation/v1';

my $remote = $fed->key('remote.example');
$fed->store($remote);

sub fed {
    my ($method, $uri, $body) = @_;
    my $auth = $fed->xmatrix($remote, $method => $uri, ref $body ? $body : undef);
    return $http->request($method, $uri, $body, headers => { Authorization => $auth }, no_auth => 1);
}


# a signing key of a user whose key ID is ed25519:<id> (id: a device ID,
# or the public key itself when not given, as cross-signing keys are;
# matrixctl takes key versions of letters and digits only, so such a key
# is made again until its public key is one)
sub user_key {
    my ($user, $id) = @_;
    return $fed->key($user, $id) if defined $id;
    for (1 .. 200) {
        my $k = $fed->key($user, 'tmp');
        next unless $k->{pk} =~ /\A[A-Za-z0-9]+\z/;
        open my $f, '<', $k->{file} or die;
        my ($alg, undef, $seed) = split ' ', scalar <$f>;
        close $f;
        open $f, '>', $k->{file} or die;
        print {$f} "$alg $k->{pk} $seed\n";
        close $f;
        return { %$k, id => "ed25519:$k->{pk}" };
    }
    die 'no key of letters and digits';
}

my $alice = client();
my ($status, $json) = $alice->register('alice', 'alice-password-1');
is($status, 200, 'alice registered');
my $A = $alice->user_id;
my $alice2 = client();
($status, $json) = $alice2->login('alice', 'alice-password-1');
is($status, 200, 'alice logs in on a second device');
my @devs = ($alice->device_id, $alice2->device_id);
$alice->put("$api/devices/$devs[0]", { display_name => 'Alice phone' });

my %uploaded;
for my $c ($alice, $alice2) {
    my $d = $c->device_id;
    my $k = user_key($A, $d);
    my $dk = $fed->sign($k, { user_id => $A, device_id => $d,
                              algorithms => ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
                              keys => { "curve25519:$d" => "curve-of-$d", "ed25519:$d" => $k->{pk} } });
    ($status, $json) = $c->post("$api/keys/upload", { device_keys => $dk });
    is($status, 200, "device $d uploads its keys");
    $uploaded{$d} = $dk;
}

my $mk = user_key($A);
my $sk = user_key($A);
my $uk = user_key($A);
my $master = { user_id => $A, usage => ['master'], keys => { $mk->{id} => $mk->{pk} } };
my $self = $fed->sign($mk, { user_id => $A, usage => ['self_signing'], keys => { $sk->{id} => $sk->{pk} } });
my $usk = $fed->sign($mk, { user_id => $A, usage => ['user_signing'], keys => { $uk->{id} => $uk->{pk} } });
($status, $json) = $alice->post("$api/keys/device_signing/upload",
                                { master_key => $master, self_signing_key => $self, user_signing_key => $usk });
is($status, 200, 'alice uploads cross-signing keys');

# her self-signing key signs her first device: the signature is served too
my $signed = $fed->sign($sk, $uploaded{$devs[0]});
($status, $json) = $alice->post("$api/keys/signatures/upload", { $A => { $devs[0] => $signed } });
is_deeply([$status, $json], [200, { failures => {} }], 'her self-signing key signs her first device');

# --- the device list ----------------------------------------------------------------

my $seq = $srv->redis_cmd('GET', "mx:{$A}:devlist_seq");
ok($seq >= 2, "her device list sequence is $seq");

($status, $json) = fed(GET => "$F/user/devices/" . esc($A));
is($status, 200, 'user/devices: 200');
is($json->{user_id}, $A, 'user_id');
is($json->{stream_id}, $seq, 'stream_id: her device list sequence');
my %got = map { $_->{device_id} => $_ } @{ $json->{devices} // [] };
is_deeply([sort keys %got], [sort @devs], 'both devices');
is_deeply($got{$devs[0]}{keys}, $signed, 'the first device\'s keys with her self-signing signature');
is_deeply($got{$devs[1]}{keys}, $uploaded{$devs[1]}, 'the second device\'s keys as uploaded');
is($got{$devs[0]}{device_display_name}, 'Alice phone', 'a display name beside the keys');
ok(!exists $got{$devs[0]}{keys}{unsigned}, 'not in the keys\' unsigned');
is_deeply($json->{master_key}, $master, 'master_key');
is_deeply($json->{self_signing_key}, $self, 'self_signing_key');
ok(!exists $json->{user_signing_key}, 'no user-signing key');

# a new device key upload moves the stream on
my $k3 = user_key($A, $devs[1]);
my %dk3 = %{ $uploaded{$devs[1]} };
delete $dk3{signatures};
my $dk3 = $fed->sign($k3, { %dk3, keys => { "curve25519:$devs[1]" => 'new-curve', "ed25519:$devs[1]" => $k3->{pk} } });
($status, $json) = $alice2->post("$api/keys/upload", { device_keys => $dk3 });
is($status, 200, 'the second device uploads new keys');
($status, $json) = fed(GET => "$F/user/devices/" . esc($A));
is($json->{stream_id}, $seq + 1, 'stream_id one on');
%got = map { $_->{device_id} => $_ } @{ $json->{devices} // [] };
is($got{$devs[1]}{keys}{keys}{"curve25519:$devs[1]"}, 'new-curve', 'the new keys');

# --- other users, bad requests --------------------------------------------------------

($status, $json) = fed(GET => "$F/user/devices/" . esc('@nobody:' . $srv->server_name));
is($status, 200, 'an unknown local user: 200');
is_deeply($json, { user_id => '@nobody:' . $srv->server_name, stream_id => 0, devices => [] },
          'no devices, stream_id 0');

($status, $json) = fed(GET => "$F/user/devices/" . esc('@bob:remote.example'));
is_deeply([$status, $json->{errcode}], [400, 'M_INVALID_PARAM'], 'a user of another server: 400 M_INVALID_PARAM');

($status, $json) = fed(GET => "$F/user/devices/" . esc('not-a-user'));
is_deeply([$status, $json->{errcode}], [400, 'M_INVALID_PARAM'], 'not a user ID: 400 M_INVALID_PARAM');

($status, $json) = $http->request(GET => "$F/user/devices/" . esc($A), undef, no_auth => 1);
is_deeply([$status, $json->{errcode}], [401, 'M_UNAUTHORIZED'], 'unsigned: 401 M_UNAUTHORIZED');

# --- /user/keys/query -----------------------------------------------------------------

($status, $json) = fed(POST => "$F/user/keys/query",
                       { device_keys => { $A => [], '@bob:remote.example' => [] } });
is($status, 200, 'user/keys/query: 200');
is_deeply([sort keys %$json], [qw(device_keys master_keys self_signing_keys)],
          'device_keys, master_keys, self_signing_keys only');
is_deeply([sort keys %{ $json->{device_keys} }], [$A], 'local users only');
is_deeply($json->{device_keys}{$A}{$devs[0]}, $signed, 'the first device\'s keys and signature, no display name');
is_deeply($json->{device_keys}{$A}{$devs[1]}, $dk3, 'the second device\'s new keys');
is_deeply($json->{master_keys}, { $A => $master }, 'her master key');
is_deeply($json->{self_signing_keys}, { $A => $self }, 'her self-signing key');

($status, $json) = fed(POST => "$F/user/keys/query", { device_keys => { $A => [$devs[1], 'NOSUCH'] } });
is_deeply([keys %{ $json->{device_keys}{$A} }], [$devs[1]], 'one device asked for: that one');

($status, $json) = fed(POST => "$F/user/keys/query", { device_keys => { '@bob:remote.example' => [] } });
is_deeply([$status, $json], [200, { device_keys => {}, master_keys => {}, self_signing_keys => {} }],
          'no local user: nothing');

($status, $json) = fed(POST => "$F/user/keys/query", { device_keys => [] });
is_deeply([$status, $json->{errcode}], [400, 'M_BAD_JSON'], 'device_keys not an object: 400 M_BAD_JSON');

($status, $json) = $http->request(POST => "$F/user/keys/query", { device_keys => { $A => [] } }, no_auth => 1);
is($status, 401, 'user/keys/query unsigned: 401');

# --- /user/keys/claim -----------------------------------------------------------------

my %otk = map { ("signed_curve25519:AAAA$_" => { key => "otk-$_" }) } 1 .. 2;
my $fb = { key => 'fallback-1', fallback => JSON::PP::true };
($status, $json) = $alice->post("$api/keys/upload", { one_time_keys => \%otk,
                                                       fallback_keys => { 'signed_curve25519:FB1' => $fb } });
is($status, 200, 'her first device uploads two one-time keys and a fallback key');

for my $n (1 .. 2) {
    ($status, $json) = fed(POST => "$F/user/keys/claim",
                           { one_time_keys => { $A => { $devs[0] => 'signed_curve25519' },
                                                '@bob:remote.example' => { BDEV => 'signed_curve25519' } } });
    is_deeply([$status, $json], [200, { one_time_keys => { $A => { $devs[0] => { "signed_curve25519:AAAA$n" => $otk{"signed_curve25519:AAAA$n"} } } } }],
              "claim $n: one-time key $n, nothing of the remote user, no failures");
}
is($srv->redis_cmd('HLEN', "mx:{$A}:otk:$devs[0]"), 0, 'both one-time keys gone');
($status, $json) = fed(POST => "$F/user/keys/claim", { one_time_keys => { $A => { $devs[0] => 'signed_curve25519' } } });
is_deeply($json, { one_time_keys => { $A => { $devs[0] => { 'signed_curve25519:FB1' => $fb } } } }, 'then the fallback key');
($status, $json) = fed(POST => "$F/user/keys/claim", { one_time_keys => { $A => { $devs[1] => 'signed_curve25519' } } });
is_deeply([$status, $json], [200, { one_time_keys => {} }], 'a device without keys: none');
($status, $json) = fed(POST => "$F/user/keys/claim", { one_time_keys => { $A => [] } });
is_deeply([$status, $json->{errcode}], [400, 'M_BAD_JSON'], 'bad one_time_keys: 400 M_BAD_JSON');

done_testing();

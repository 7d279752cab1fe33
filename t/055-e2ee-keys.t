# End-to-end encryption keys: upload (device, one-time and fallback keys),
# query (by a room-mate and by a stranger), claim until the one-time keys
# run out and the fallback key comes, the counts in /sync; device list
# changes in incremental /sync (a parked one wakes for them), after joins
# and leaves, and through /keys/changes; device deletion; cross-signing
# keys (first upload free, replacement behind user-interactive auth) and
# signatures; bad bodies.  Signatures are made with the openssl command.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;
use MIME::Base64;
use File::Temp qw(tempdir);
use Time::HiRes qw(time sleep);

my $srv = server();
my $api = '/_matrix/client/v3';

my $alice = client(timeout => 40);
my ($status, $json) = $alice->register('alice', 'alice-password-1');
is($status, 200, 'alice registered');
my $bob = client(timeout => 40);
($status, $json) = $bob->register('bob', 'bob-password-1');
is($status, 200, 'bob registered');
my $carol = client(timeout => 40);
($status, $json) = $carol->register('carol', 'carol-password-1');
is($status, 200, 'carol registered');
my ($A, $B, $C) = map { $_->user_id } $alice, $bob, $carol;
my $adev = $alice->device_id;

# --- signing with openssl -------------------------------------------------------------

my $tmp = tempdir(CLEANUP => 1);
my $CJ = JSON::PP->new->canonical->utf8;
my $nkeys = 0;

sub b64 { my $s = encode_base64(shift, ''); $s =~ s/=+\z//; $s }

sub keypair {
    my $f = "$tmp/key" . ++$nkeys . '.pem';
    system("openssl genpkey -algorithm ed25519 -out $f 2>/dev/null") == 0
        or die 'openssl genpkey';
    my $der = qx{openssl pkey -in $f -pubout -outform DER 2>/dev/null};
    return { file => $f, pub => b64(substr($der, -32)) };
}

# sign a copy of obj (without signatures and unsigned) as user with key_id
sub sign_json {
    my ($obj, $user, $key_id, $kp) = @_;
    my %copy = %$obj;
    delete @copy{qw(signatures unsigned)};
    open my $f, '>:raw', "$tmp/msg" or die;
    print {$f} $CJ->encode(\%copy);
    close $f;
    my $sig = qx{openssl pkeyutl -sign -inkey $kp->{file} -rawin -in $tmp/msg 2>/dev/null};
    die 'openssl pkeyutl' unless length $sig == 64;
    $obj->{signatures}{$user}{$key_id} = b64($sig);
    return $obj;
}

sub xs_key {
    my ($user, $usage, $kp) = @_;
    return { user_id => $user, usage => [$usage],
             keys => { "ed25519:$kp->{pub}" => $kp->{pub} } };
}

sub clone { $CJ->decode($CJ->encode(shift)) }

sub sync {
    my ($c, $since, $extra) = @_;
    my ($s, $j) = $c->get("$api/sync?timeout=0" . ($since ? "&since=$since" : '') . ($extra // ''));
    return ($j, $j->{next_batch});
}

sub changed { my $j = shift; [sort @{ $j->{device_lists}{changed} // [] }] }
sub left    { my $j = shift; [sort @{ $j->{device_lists}{left} // [] }] }
sub has     { my ($list, $u) = @_; scalar grep { $_ eq $u } @$list }

# --- upload ----------------------------------------------------------------------------

my $adev_kp = keypair();
$alice->put("$api/devices/$adev", { display_name => 'Alice phone' });

my $adk = sign_json({ user_id => $A, device_id => $adev,
                      algorithms => ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
                      keys => { "curve25519:$adev" => 'Y3VydmUyNTUxOSBrZXkgb2YgYWxpY2UncyBkZXZpY2U',
                                "ed25519:$adev" => $adev_kp->{pub} } },
                    $A, "ed25519:$adev", $adev_kp);
my %otk = map { ("signed_curve25519:AAAAA$_" => { key => "otk-$_", signatures => { $A => { "ed25519:$adev" => "sig-$_" } } }) } 1 .. 3;
my $fallback = { key => 'fallback-1', fallback => JSON::PP::true,
                 signatures => { $A => { "ed25519:$adev" => 'sig-f' } } };

($status, $json) = $alice->post("$api/keys/upload", { device_keys => $adk, one_time_keys => \%otk,
                                                     fallback_keys => { 'signed_curve25519:FFFFF1' => $fallback } });
is($status, 200, 'keys/upload: device, one-time and fallback keys');
is_deeply($json, { one_time_key_counts => { signed_curve25519 => 3 } }, 'three one-time keys counted');
is($srv->redis_cmd('HLEN', "mx:{$A}:otk:$adev"), 3, 'and held');
is_deeply($CJ->decode($srv->redis_cmd('HGET', "mx:{$A}:devkeys", $adev)), $adk, 'the device keys held as sent');

($status, $json) = $alice->post("$api/keys/upload", { one_time_keys => { 'signed_curve25519:AAAAA1' => $otk{'signed_curve25519:AAAAA1'} } });
is($status, 200, 'the same one-time key again: 200');
is($json->{one_time_key_counts}{signed_curve25519}, 3, 'still three');

($status, $json) = $alice->post("$api/keys/upload", { one_time_keys => { 'signed_curve25519:AAAAA1' => { key => 'other' },
                                                                         'signed_curve25519:AAAAA9' => { key => 'new' } } });
is($status, 400, 'a held one-time key ID with other content: 400');
is($json->{errcode}, 'M_INVALID_PARAM', 'M_INVALID_PARAM');
($status, $json) = $alice->post("$api/keys/upload", {});
is_deeply($json, { one_time_key_counts => { signed_curve25519 => 3 } }, 'nothing of that request was stored');

($status, $json) = $bob->post("$api/keys/upload", {});
is($status, 200, 'an empty upload');
is_deeply($json, { one_time_key_counts => { signed_curve25519 => 0 } }, 'signed_curve25519 counted even at 0');

# --- bad uploads -------------------------------------------------------------------------

my %other = (%$adk, device_id => 'OTHERDEV');
($status, $json) = $alice->post("$api/keys/upload", { device_keys => \%other });
is($status, 400, 'device_keys of another device: 400');
is($json->{errcode}, 'M_INVALID_PARAM', 'M_INVALID_PARAM');
%other = (%$adk, user_id => $B);
($status, $json) = $alice->post("$api/keys/upload", { device_keys => \%other });
is($json->{errcode}, 'M_INVALID_PARAM', 'device_keys of another user: M_INVALID_PARAM');
is_deeply($CJ->decode($srv->redis_cmd('HGET', "mx:{$A}:devkeys", $adev)), $adk, 'the keys held unchanged');
is($srv->redis_cmd('HGET', "mx:{$A}:devkeys", 'OTHERDEV'), undef, 'nothing stored for the other device');

($status, $json) = $alice->post("$api/keys/upload", '{"device_keys": ');
is($status, 400, 'malformed JSON: 400');
is($json->{errcode}, 'M_NOT_JSON', 'M_NOT_JSON');
($status, $json) = $alice->post("$api/keys/upload", { one_time_keys => 'keys' });
is_deeply([$status, $json->{errcode}], [400, 'M_BAD_JSON'], 'one_time_keys not an object: 400 M_BAD_JSON');
($status, $json) = $alice->post("$api/keys/upload", { one_time_keys => { 'signed_curve25519:X' => 5 } });
is_deeply([$status, $json->{errcode}], [400, 'M_BAD_JSON'], 'a key that is a number: 400 M_BAD_JSON');
($status, $json) = $alice->post("$api/keys/upload", { one_time_keys => { 'nocolon' => 'k' } });
is_deeply([$status, $json->{errcode}], [400, 'M_INVALID_PARAM'], 'a key ID without algorithm: 400 M_INVALID_PARAM');
($status, $json) = $alice->post("$api/keys/upload", { device_keys => { %$adk, algorithms => 'all' } });
is_deeply([$status, $json->{errcode}], [400, 'M_BAD_JSON'], 'algorithms not a list: 400 M_BAD_JSON');
($status, $json) = $alice->post("$api/keys/upload", { fallback_keys => { 'signed_curve25519:F1' => 'a', 'signed_curve25519:F2' => 'b' } });
is_deeply([$status, $json->{errcode}], [400, 'M_INVALID_PARAM'], 'two fallback keys of one algorithm: 400 M_INVALID_PARAM');
is($srv->redis_cmd('HLEN', "mx:{$A}:otk:$adev"), 3, 'none of these stored anything');

# --- a room: alice and bob; carol elsewhere ----------------------------------------------

($status, $json) = $alice->post("$api/createRoom", { name => 'e2ee', preset => 'public_chat' });
my $r = $json->{room_id};
($status, $json) = $bob->post("$api/join/$r", {});
is($status, 200, 'bob joins alice\'s room');

# --- query ------------------------------------------------------------------------------

my $expect = clone($adk);
$expect->{unsigned} = { device_display_name => 'Alice phone' };

($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => [] }, timeout => 10000 });
is($status, 200, 'keys/query by a room-mate');
is_deeply($json->{device_keys}, { $A => { $adev => $expect } }, 'alice\'s device keys, with the display name in unsigned');
is_deeply($json->{failures}, {}, 'no failures');

($status, $json) = $carol->post("$api/keys/query", { device_keys => { $A => [$adev], '@nobody:localhost' => [],
                                                                      '@dan:elsewhere.example' => [] } });
is($status, 200, 'keys/query by a user sharing no room');
is_deeply($json->{device_keys}, { $A => { $adev => $expect } }, 'the same keys; an unknown user is absent');
ok($json->{failures}{'elsewhere.example'}, 'another server in failures');

($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => ['NOSUCHDEV'] } });
is_deeply($json->{device_keys}, { $A => {} }, 'an unknown device is absent');

($status, $json) = $bob->post("$api/keys/query", {});
is_deeply([$status, $json->{errcode}], [400, 'M_MISSING_PARAM'], 'query without device_keys: 400 M_MISSING_PARAM');
is($json->{error}, 'device_keys is required', 'the error names device_keys');
($status, $json) = $bob->post("$api/keys/query", { device_keys => [$A] });
is_deeply([$status, $json->{errcode}], [400, 'M_BAD_JSON'], 'device_keys a list: 400 M_BAD_JSON');
is($json->{error}, 'device_keys must be an object', 'the error says what it must be');
($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => 'all' } });
is_deeply([$status, $json->{errcode}], [400, 'M_BAD_JSON'], 'devices not a list: 400 M_BAD_JSON');
($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => [] }, timeout => 'soon' });
is_deeply([$status, $json->{errcode}], [400, 'M_BAD_JSON'], 'timeout not a number: 400 M_BAD_JSON');
($status, $json) = $bob->post("$api/keys/query", { device_keys => { 'alice' => [] } });
is_deeply([$status, $json->{errcode}], [400, 'M_INVALID_PARAM'], 'not a user ID: 400 M_INVALID_PARAM');
($status, $json) = $bob->post("$api/keys/query", '{]');
is_deeply([$status, $json->{errcode}], [400, 'M_NOT_JSON'], 'malformed JSON: 400 M_NOT_JSON');

# --- claim ------------------------------------------------------------------------------

my ($as, $anext) = sync($alice);
is_deeply($as->{device_one_time_keys_count}, { signed_curve25519 => 3 }, '/sync: three one-time keys');
is_deeply($as->{device_unused_fallback_key_types}, ['signed_curve25519'], 'and an unused fallback key');
ok(!exists $as->{device_lists}, 'an initial sync has no device_lists');

my @claimed;
for my $i (1 .. 3) {
    ($status, $json) = $bob->post("$api/keys/claim", { one_time_keys => { $A => { $adev => 'signed_curve25519' } } });
    push @claimed, keys %{ $json->{one_time_keys}{$A}{$adev} // {} };
    if ($i == 1) {
        is($status, 200, 'keys/claim');
        is_deeply($json->{one_time_keys}, { $A => { $adev => { 'signed_curve25519:AAAAA1' => $otk{'signed_curve25519:AAAAA1'} } } },
                  'the oldest one-time key, as uploaded');
        is_deeply($json->{failures}, {}, 'no failures');
        ($as) = sync($alice, $anext);
        is_deeply($as->{device_one_time_keys_count}, { signed_curve25519 => 2 }, '/sync: the count drops after a claim');
    }
}
is_deeply(\@claimed, [map { "signed_curve25519:AAAAA$_" } 1 .. 3], 'each key given once, in upload order');
is($srv->redis_cmd('HLEN', "mx:{$A}:otk:$adev"), 0, 'and gone');

($status, $json) = $bob->post("$api/keys/claim", { one_time_keys => { $A => { $adev => 'signed_curve25519' } } });
is_deeply($json->{one_time_keys}, { $A => { $adev => { 'signed_curve25519:FFFFF1' => $fallback } } },
          'none left: the fallback key');
($status, $json) = $carol->post("$api/keys/claim", { one_time_keys => { $A => { $adev => 'signed_curve25519' } },
                                                     timeout => 10000 });
is_deeply($json->{one_time_keys}, { $A => { $adev => { 'signed_curve25519:FFFFF1' => $fallback } } },
          'and again: it is not removed');
($as, $anext) = sync($alice, $anext);
is_deeply($as->{device_one_time_keys_count}, { signed_curve25519 => 0 }, '/sync: no one-time keys');
is_deeply($as->{device_unused_fallback_key_types}, [], 'and the fallback key used');

($status, $json) = $bob->post("$api/keys/claim", { one_time_keys => { $A => { NOSUCHDEV => 'signed_curve25519' },
                                                                      '@dan:elsewhere.example' => { D => 'signed_curve25519' } } });
is($status, 200, 'claims of an unknown device and a remote user');
is_deeply($json->{one_time_keys}, {}, 'give nothing');
ok($json->{failures}{'elsewhere.example'}, 'the other server in failures');
($status, $json) = $bob->post("$api/keys/claim", { one_time_keys => { $A => [$adev] } });
is_deeply([$status, $json->{errcode}], [400, 'M_BAD_JSON'], 'claim of a list: 400 M_BAD_JSON');
($status, $json) = $bob->post("$api/keys/claim", {});
is_deeply([$status, $json->{errcode}], [400, 'M_MISSING_PARAM'], 'claim without one_time_keys: 400 M_MISSING_PARAM');
is($json->{error}, 'one_time_keys is required', 'the error names one_time_keys');
($status, $json) = $bob->post("$api/keys/claim", { one_time_keys => 'all' });
is_deeply([$status, $json->{errcode}, $json->{error}], [400, 'M_BAD_JSON', 'one_time_keys must be an object'],
          'one_time_keys not an object: 400 M_BAD_JSON');

($status, $json) = $alice->post("$api/keys/upload", { fallback_keys => { 'signed_curve25519:FFFFF2' => { key => 'fallback-2', fallback => JSON::PP::true } } });
($as, $anext) = sync($alice, $anext);
is_deeply($as->{device_unused_fallback_key_types}, ['signed_curve25519'], 'a new fallback key: unused again');

# --- device lists in /sync ----------------------------------------------------------------

my ($bs, $bnext) = sync($bob);
my ($cs, $cnext) = sync($carol);
my $before_change = $bnext;

my $adk2 = clone($adk);
$adk2->{algorithms} = ['m.olm.v1.curve25519-aes-sha2'];
delete $adk2->{signatures};
sign_json($adk2, $A, "ed25519:$adev", $adev_kp);
($status, $json) = $alice->post("$api/keys/upload", { device_keys => $adk2 });
is($status, 200, 'alice uploads new device keys');

($bs, $bnext) = sync($bob, $bnext);
ok(has(changed($bs), $A), 'bob\'s incremental sync: alice in device_lists.changed');
is_deeply(left($bs), [], 'nobody left');
($as, $anext) = sync($alice, $anext);
ok(has(changed($as), $A), 'alice\'s own sync: alice changed too');
($cs, $cnext) = sync($carol, $cnext);
ok(!has(changed($cs), $A), 'carol, sharing no room, is not told');
($bs) = sync($bob, $bnext);
is_deeply(changed($bs), [], 'once synced past: not again');

# a parked sync wakes for a device list change
my $adk3 = clone($adk2);
$adk3->{algorithms} = ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'];
delete $adk3->{signatures};
sign_json($adk3, $A, "ed25519:$adev", $adev_kp);
my $woke = "$tmp/woke";
if (my $pid = fork // die) {
    sleep 0.5;
    my $sent = time;
    $alice->post("$api/keys/upload", { device_keys => $adk3 });
    waitpid $pid, 0;
    is($? >> 8, 0, 'bob\'s parked sync wakes for alice\'s key upload, with her in changed');
    open my $f, '<', $woke or die;
    my $ms = (<$f> - $sent) * 1000;
    ok($ms < 2000, sprintf('promptly (%.0f ms)', $ms));
} else {
    my $c = client(token => $bob->token, timeout => 40);
    my ($s, $j) = $c->get("$api/sync?since=$bnext&timeout=20000");
    open my $f, '>', $woke or die;
    print {$f} time;
    close $f;
    exit(($s == 200 && grep { $_ eq $A } @{ $j->{device_lists}{changed} // [] }) ? 0 : 1);
}
($bs, $bnext) = sync($bob, $bnext);
$adk2 = $adk3;

$alice->put("$api/devices/$adev", { display_name => 'Alice tablet' });
($bs, $bnext) = sync($bob, $bnext);
ok(has(changed($bs), $A), 'a new device name is a change');
($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => [] } });
is($json->{device_keys}{$A}{$adev}{unsigned}{device_display_name}, 'Alice tablet', 'the new name in keys/query');

# carol joins: she and the others now share a room
($status, $json) = $carol->post("$api/join/$r", {});
is($status, 200, 'carol joins');
($cs, $cnext) = sync($carol, $cnext);
ok(has(changed($cs), $A) && has(changed($cs), $B), 'carol\'s sync: alice and bob, newly sharing a room, in changed');
($bs, $bnext) = sync($bob, $bnext);
ok(has(changed($bs), $C), 'bob\'s sync: carol, who joined, in changed');
my $before_leave = $bnext;

# carol leaves the only room she shares with them
($status, $json) = $carol->post("$api/rooms/$r/leave", {});
is($status, 200, 'carol leaves');
($bs, $bnext) = sync($bob, $bnext);
is_deeply(left($bs), [$C], 'bob\'s sync: carol in device_lists.left');
ok(!has(changed($bs), $C), 'and not in changed');
($cs, $cnext) = sync($carol, $cnext);
is_deeply(left($cs), [sort $A, $B], 'carol\'s sync: alice and bob left');

# --- /keys/changes ------------------------------------------------------------------------

($status, $json) = $bob->get("$api/keys/changes?from=$before_change&to=$bnext");
is($status, 200, 'keys/changes');
ok(has($json->{changed}, $A), 'alice changed since then');
($status, $json) = $bob->get("$api/keys/changes?from=$before_leave&to=$bnext");
is_deeply($json->{left}, [$C], 'carol left since then');
($status, $json) = $bob->get("$api/keys/changes?from=$bnext&to=$bnext");
is_deeply($json, { changed => [], left => [] }, 'nothing since now');
($status, $json) = $bob->get("$api/keys/changes?to=$bnext");
is_deeply([$status, $json->{errcode}], [400, 'M_MISSING_PARAM'], 'without from: 400 M_MISSING_PARAM');
($status, $json) = $bob->get("$api/keys/changes?from=yesterday&to=$bnext");
is_deeply([$status, $json->{errcode}], [400, 'M_INVALID_PARAM'], 'from not a token: 400 M_INVALID_PARAM');

# --- deleting a device ----------------------------------------------------------------------

my $a2 = client(timeout => 40);
($status, $json) = $a2->login('alice', 'alice-password-1');
my $a2dev = $a2->device_id;
$a2->post("$api/keys/upload", { device_keys => { user_id => $A, device_id => $a2dev, algorithms => [],
                                                 keys => { "ed25519:$a2dev" => 'x' }, signatures => {} },
                                one_time_keys => { 'signed_curve25519:B1' => { key => 'b1' } } });
($bs, $bnext) = sync($bob, $bnext);
ok(has(changed($bs), $A), 'alice\'s second device: a change');
($status, $json) = $alice->with_password('DELETE', "$api/devices/$a2dev", {}, 'alice-password-1');
is($status, 200, 'alice deletes it');
($bs, $bnext) = sync($bob, $bnext);
ok(has(changed($bs), $A), 'its deletion: a change too');
($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => [] } });
is_deeply([sort keys %{ $json->{device_keys}{$A} }], [$adev], 'its keys are gone from keys/query');
is($srv->redis_cmd('EXISTS', "mx:{$A}:otk:$a2dev"), 0, 'and its one-time keys from Redis');

my $a3 = client(timeout => 40);
$a3->login('alice', 'alice-password-1');
my $a3dev = $a3->device_id;
$a3->post("$api/keys/upload", { device_keys => { user_id => $A, device_id => $a3dev, algorithms => [],
                                                 keys => { "ed25519:$a3dev" => 'y' }, signatures => {} },
                                fallback_keys => { 'signed_curve25519:F3' => { key => 'f3' } } });
($bs, $bnext) = sync($bob, $bnext);
($status, $json) = $a3->post("$api/logout", {});
is($status, 200, 'a third device logs out');
($bs, $bnext) = sync($bob, $bnext);
ok(has(changed($bs), $A), 'a change for bob');
($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => [$a3dev] } });
is_deeply($json->{device_keys}{$A}, {}, 'its keys are gone');
is($srv->redis_cmd('EXISTS', "mx:{$A}:fallback:$a3dev"), 0, 'its fallback key too');

# --- cross-signing ------------------------------------------------------------------------

my ($amk, $ask, $auk) = (keypair(), keypair(), keypair());
my $amaster = xs_key($A, 'master', $amk);
my $aself = sign_json(xs_key($A, 'self_signing', $ask), $A, "ed25519:$amk->{pub}", $amk);
my $auser = sign_json(xs_key($A, 'user_signing', $auk), $A, "ed25519:$amk->{pub}", $amk);

my $bad = sign_json(xs_key($A, 'self_signing', $ask), $A, "ed25519:$amk->{pub}", $ask);
($status, $json) = $alice->post("$api/keys/device_signing/upload", { master_key => $amaster, self_signing_key => $bad });
is_deeply([$status, $json->{errcode}], [400, 'M_INVALID_SIGNATURE'], 'a self-signing key not signed by the master key: 400 M_INVALID_SIGNATURE');
($status, $json) = $alice->post("$api/keys/device_signing/upload", { master_key => xs_key($A, 'self_signing', $amk) });
is_deeply([$status, $json->{errcode}], [400, 'M_INVALID_PARAM'], 'a master key without usage master: 400 M_INVALID_PARAM');
($status, $json) = $alice->post("$api/keys/device_signing/upload", { master_key => xs_key($B, 'master', $amk) });
is_deeply([$status, $json->{errcode}], [400, 'M_INVALID_PARAM'], 'a master key of another user: 400 M_INVALID_PARAM');
($status, $json) = $alice->post("$api/keys/device_signing/upload", { master_key => { %$amaster, keys => {} } });
is_deeply([$status, $json->{errcode}], [400, 'M_INVALID_PARAM'], 'no key in keys: 400 M_INVALID_PARAM');
($status, $json) = $alice->post("$api/keys/device_signing/upload", { self_signing_key => $aself });
is_deeply([$status, $json->{errcode}], [400, 'M_MISSING_PARAM'], 'a self-signing key and no master key anywhere: 400 M_MISSING_PARAM');
is($srv->redis_cmd('EXISTS', "mx:{$A}:xsign"), 0, 'nothing stored');

($status, $json) = $alice->post("$api/keys/device_signing/upload",
                                { master_key => $amaster, self_signing_key => $aself, user_signing_key => $auser });
is($status, 200, 'the first cross-signing keys need no user-interactive auth');
is_deeply($json, {}, 'answer {}');
($bs, $bnext) = sync($bob, $bnext);
ok(has(changed($bs), $A), 'bob\'s sync: alice changed');

($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => [] } });
is_deeply($json->{master_keys}, { $A => $amaster }, 'bob sees alice\'s master key');
is_deeply($json->{self_signing_keys}, { $A => $aself }, 'and her self-signing key');
is_deeply($json->{user_signing_keys}, {}, 'not her user-signing key');
($status, $json) = $alice->post("$api/keys/query", { device_keys => { $A => [] } });
is_deeply($json->{user_signing_keys}, { $A => $auser }, 'alice sees her own user-signing key');

($status, $json) = $alice->post("$api/keys/device_signing/upload", { master_key => $amaster, self_signing_key => $aself });
is($status, 200, 'the same keys again: 200 without auth');

my $amk2 = keypair();
my $amaster2 = xs_key($A, 'master', $amk2);
my $aself2 = sign_json(xs_key($A, 'self_signing', $ask), $A, "ed25519:$amk2->{pub}", $amk2);
($status, $json) = $alice->post("$api/keys/device_signing/upload", { master_key => $amaster2, self_signing_key => $aself2 });
is($status, 401, 'replacing the master key: 401');
ok($json->{session} && (grep { grep { $_ eq 'm.login.password' } @{ $_->{stages} } } @{ $json->{flows} }),
   'with a password flow and a session');
($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => [] } });
is_deeply($json->{master_keys}{$A}, $amaster, 'the old master key still held');
($status, $json) = $alice->with_password('POST', "$api/keys/device_signing/upload",
                                         { master_key => $amaster2, self_signing_key => $aself2 }, 'alice-password-1');
is($status, 200, 'with the password: replaced');
($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => [] } });
is_deeply($json->{master_keys}{$A}, $amaster2, 'the new master key');

($status, $json) = $alice->post("$api/keys/device_signing/upload",
                                { master_key => xs_key($A, 'master', { pub => b64('x' x 31) }) });
is_deeply([$status, $json->{errcode}], [400, 'M_INVALID_PARAM'], 'a public key that is not 32 bytes: 400 M_INVALID_PARAM');

# --- signatures ---------------------------------------------------------------------------

# alice's self-signing key signs her device
my $signed_dev = sign_json(clone($adk2), $A, "ed25519:$ask->{pub}", $ask);
($status, $json) = $alice->post("$api/keys/signatures/upload", { $A => { $adev => $signed_dev } });
is($status, 200, 'signatures/upload of alice\'s device');
is_deeply($json, { failures => {} }, 'no failures');
($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => [$adev] } });
is($json->{device_keys}{$A}{$adev}{signatures}{$A}{"ed25519:$ask->{pub}"}, $signed_dev->{signatures}{$A}{"ed25519:$ask->{pub}"},
   'the signature is on the device in keys/query');
is($json->{device_keys}{$A}{$adev}{signatures}{$A}{"ed25519:$adev"}, $adk2->{signatures}{$A}{"ed25519:$adev"},
   'beside the device\'s own');

($status, $json) = $alice->post("$api/keys/upload", { device_keys => $adk2 });
($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => [$adev] } });
ok($json->{device_keys}{$A}{$adev}{signatures}{$A}{"ed25519:$ask->{pub}"}, 'the same device keys again keep it');

my $forged = clone($adk2);
$forged->{signatures}{$A}{"ed25519:$ask->{pub}"} = b64('f' x 64);
($status, $json) = $alice->post("$api/keys/signatures/upload", { $A => { $adev => $forged, NOSUCHDEV => $forged } });
is($status, 200, 'a bad signature and an unknown device: 200');
is($json->{failures}{$A}{$adev}{errcode}, 'M_INVALID_SIGNATURE', 'the bad signature: M_INVALID_SIGNATURE');
is($json->{failures}{$A}{NOSUCHDEV}{errcode}, 'M_NOT_FOUND', 'the unknown device: M_NOT_FOUND');

my $adk4 = clone($adk2);
$adk4->{keys}{"curve25519:$adev"} = 'bmV3IGN1cnZlMjU1MTkga2V5IG9mIGFsaWNlJ3MgZGV2aWNl';
delete $adk4->{signatures};
sign_json($adk4, $A, "ed25519:$adev", $adev_kp);
($status, $json) = $alice->post("$api/keys/upload", { device_keys => $adk4 });
($status, $json) = $bob->post("$api/keys/query", { device_keys => { $A => [$adev] } });
is_deeply($json->{device_keys}{$A}{$adev}{signatures}, $adk4->{signatures},
          'other device keys: the signature of the old ones is gone');

# alice's device signs her master key
my $msigned = sign_json(clone($amaster2), $A, "ed25519:$adev", $adev_kp);
($status, $json) = $alice->post("$api/keys/signatures/upload", { $A => { $amk2->{pub} => $msigned } });
is_deeply($json, { failures => {} }, 'alice\'s device signs her master key');
($status, $json) = $carol->post("$api/keys/query", { device_keys => { $A => [] } });
is($json->{master_keys}{$A}{signatures}{$A}{"ed25519:$adev"}, $msigned->{signatures}{$A}{"ed25519:$adev"},
   'everyone sees that signature');

# bob's cross-signing keys; alice's user-signing key signs bob's master key
my $bmk = keypair();
my $bmaster = xs_key($B, 'master', $bmk);
($status, $json) = $bob->post("$api/keys/device_signing/upload", { master_key => $bmaster });
is($status, 200, 'bob uploads a master key');
($as, $anext) = sync($alice, $anext);
my $usig = sign_json(clone($bmaster), $A, "ed25519:$auk->{pub}", $auk);
($status, $json) = $alice->post("$api/keys/signatures/upload", { $B => { $bmk->{pub} => $usig } });
is_deeply($json, { failures => {} }, 'alice signs bob\'s master key with her user-signing key');
($status, $json) = $alice->post("$api/keys/query", { device_keys => { $B => [] } });
is($json->{master_keys}{$B}{signatures}{$A}{"ed25519:$auk->{pub}"}, $usig->{signatures}{$A}{"ed25519:$auk->{pub}"},
   'alice sees her signature on bob\'s master key');
($status, $json) = $carol->post("$api/keys/query", { device_keys => { $B => [] } });
is_deeply($json->{master_keys}{$B}, $bmaster, 'carol does not');
($as, $anext) = sync($alice, $anext);
ok(has(changed($as), $B), 'alice\'s sync: bob in changed after her signature');

my $wrong = clone($bmaster);
$wrong->{usage} = ['master', 'extra'];
sign_json($wrong, $A, "ed25519:$auk->{pub}", $auk);
($status, $json) = $alice->post("$api/keys/signatures/upload", { $B => { $bmk->{pub} => $wrong } });
is($json->{failures}{$B}{$bmk->{pub}}{errcode}, 'M_INVALID_PARAM', 'a signed object that is not the key held: M_INVALID_PARAM');
($status, $json) = $alice->post("$api/keys/signatures/upload", { $B => 'x' });
is_deeply([$status, $json->{errcode}], [400, 'M_BAD_JSON'], 'signatures/upload of a string: 400 M_BAD_JSON');

done_testing();

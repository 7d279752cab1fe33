# matrixctl's wire-format commands, as an operator runs them: the spec's
# vectors through canonical, sign, verify, hash, redact and event-id, and a
# clear message with a non-zero exit on bad input.  No server is started.

use strict;
use warnings;
use lib 't/lib';

use Test::More;
use JSON::PP;
use File::Temp qw(tempdir);
use Test::Matrix::Server;

my $ctl = "$Test::Matrix::Server::Build/bin/matrixctl";
my $spec = $ENV{MX_SPEC_DIR} || '../shared/spec';
my $dir = tempdir(CLEANUP => 1);
my $json = JSON::PP->new->canonical;

# run(args, stdin) -> (exit status, stdout, stderr)
sub run {
    my ($args, $in) = @_;
    open my $f, '>', "$dir/in" or die;
    print {$f} $in;
    close $f;
    system("$ctl $args < $dir/in > $dir/out 2> $dir/err");
    my $rc = $? >> 8;
    local $/;
    open my $o, '<', "$dir/out"; my $out = <$o>;
    open my $e, '<', "$dir/err"; my $err = <$e>;
    return ($rc, $out, $err);
}

sub slurp_json {
    my ($path) = @_;
    open my $f, '<', $path or return;
    local $/;
    return decode_json(<$f>);
}

# --- without the vectors: behaviour on bad input -------------------------

my ($rc, $out, $err) = run('canonical', '{"b":1e10,"a":-0,"c":"\u00e9\u0001"}');
is($rc, 0, 'canonical: exit 0');
is($out, qq({"a":0,"b":10000000000,"c":"\xc3\xa9\\u0001"}\n), 'canonical: sorted, integers, escapes');

($rc, $out, $err) = run('canonical', '{"a":1.5}');
is($rc, 2, 'canonical: a float is refused in strict form');
like($err, qr/canonical JSON.*floats/, 'canonical: says why');
($rc, $out) = run('canonical --room-version 3', '{"a":1.5}');
is($out, qq({"a":1.5}\n), 'canonical: room version 3 is lenient');

($rc, $out, $err) = run('canonical', '{"a":1,"a":2}');
is($rc, 2, 'duplicate keys: exit 2');
like($err, qr/stdin is not valid JSON: .*twice|duplicate/i, 'duplicate keys: says so');

($rc, $out, $err) = run('hash', '{}');
is($rc, 2, 'hash without a room version: exit 2');
like($err, qr/--room-version N is required/, 'hash: says what is missing');

($rc, $out, $err) = run('redact --room-version 13', '{}');
is($rc, 2, 'unknown room version: exit 2');
like($err, qr/unknown room version "13"/, 'unknown room version: named');

($rc, $out, $err) = run('event-id --room-version 10', '[]');
is($rc, 2, 'an event that is no object: exit 2');
like($err, qr/JSON object/, 'says it must be an object');

($rc, $out, $err) = run('sign -s a.org', '{}');
is($rc, 2, 'sign without a key: exit 2');
($rc, $out, $err) = run("sign -k $dir/none -s a.org", '{}');
like($err, qr/cannot open/, 'sign with a missing key file: says so');

($rc, $out, $err) = run('event-id --room-version 1', '{"type":"x"}');
is($rc, 2, 'v1 event without event_id: exit 2');

($rc, $out, $err) = run('canonical extra', '{}');
is($rc, 2, 'a stray argument: exit 2');

# sign-events: one event a line, each answered with its ID and the event
# signed, the same as sign and event-id give one at a time
system("$ctl keygen > $dir/ev.key") == 0 or die;
my @evs = map { $json->encode({ type => 'm.room.message', room_id => '!r:a.org', sender => '@u:a.org',
                                content => { body => "m$_" }, origin_server_ts => $_, depth => $_,
                                prev_events => [], auth_events => [] }) } 1 .. 3;
($rc, $out, $err) = run("sign-events -k $dir/ev.key -s a.org --room-version 10", join("\n", @evs) . "\n");
is($rc, 0, 'sign-events: exit 0');
my @lines = split /\n/, $out;
is(scalar @lines, 3, 'a line for each event');
for my $i (0 .. 2) {
    my (undef, $signed) = run("sign -k $dir/ev.key -s a.org --room-version 10", $evs[$i]);
    my (undef, $id) = run('event-id --room-version 10', $signed);
    chomp $signed;
    chomp $id;
    is($lines[$i], "$id $signed", "event $i: its ID, a space, the event as sign signs it");
}
($rc, $out, $err) = run("sign-events -k $dir/ev.key -s a.org --room-version 10", "$evs[0]\n[1]\n$evs[1]\n");
is($rc, 2, 'sign-events: a line that is no event: exit 2');
is(scalar(() = $out =~ /\n/g), 1, 'after answering the lines before it');
like($err, qr/line 2: not a JSON object/, 'naming the line');
($rc, $out, $err) = run("sign-events -k $dir/ev.key -s a.org", "$evs[0]\n");
is($rc, 2, 'sign-events without a room version: exit 2');
like($err, qr/usage: sign-events/, 'says how it is used');

# --- with the spec's vectors -----------------------------------------------

SKIP: {
    my $key = slurp_json("$spec/vectors/signing_key.json");
    skip "the spec vectors are not at $spec/vectors (set MX_SPEC_DIR)", 1 unless $key;

    open my $kf, '>', "$dir/spec.key" or die;
    print {$kf} "ed25519 1 $key->{seed_unpadded_base64}\n";
    close $kf;

    ($rc, $out) = run("public-key -k $dir/spec.key", '');
    is($out, "ed25519:1 $key->{derived_public_key_unpadded_base64}\n", 'public-key of the spec key');
    my $pk = $key->{derived_public_key_unpadded_base64};

    my $cj = slurp_json("$spec/vectors/canonical_json.json");
    for my $c (@{ $cj->{cases} }) {
        ($rc, $out) = run('canonical', $c->{input_text});
        my $want = pack('H*', $c->{expected_canonical_utf8_hex}) . "\n";
        is($out, $want, "canonical $c->{id}");
    }

    my $js = slurp_json("$spec/vectors/json_signing.json");
    for my $c (@{ $js->{cases} }) {
        ($rc, $out) = run("sign -k $dir/spec.key -s domain", encode_json($c->{input}));
        is_deeply(decode_json($out), $c->{expected_signed}, "sign $c->{id}");
        ($rc, $out) = run("verify -s domain -p $pk", encode_json($c->{expected_signed}));
        is("$rc $out", "0 ok\n", "verify $c->{id}");
        my $bad = { %{ $c->{expected_signed} }, extra => 1 };
        ($rc, $out) = run("verify -s domain -p $pk", encode_json($bad));
        is($rc, 1, "verify $c->{id} changed: exit 1");
    }

    my $es = slurp_json("$spec/vectors/event_signing.json");
    for my $c (@{ $es->{cases} }) {
        ($rc, $out) = run("sign -k $dir/spec.key -s domain --room-version 1", encode_json($c->{input}));
        is_deeply(decode_json($out), $c->{expected_signed}, "sign event $c->{id}");
        ($rc, $out) = run("hash --room-version 1", encode_json($c->{expected_signed}));
        is(decode_json($out)->{content_hash}, $c->{expected_content_hash_sha256}, "hash $c->{id}");
        ($rc, $out) = run("verify -s domain -p $pk --room-version 1", encode_json($c->{expected_signed}));
        is("$rc $out", "0 ok\n", "verify event $c->{id}");

        my $changed = decode_json(encode_json($c->{expected_signed}));
        $changed->{content}{extra} = 'x';
        ($rc, $out) = run("verify -s domain -p $pk --room-version 1", encode_json($changed));
        like("$rc $out", qr/^1 redact: /, "verify $c->{id} with changed content: redact");
        $changed->{origin_server_ts}++;
        ($rc, $out) = run("verify -s domain -p $pk --room-version 1", encode_json($changed));
        like("$rc $out", qr/^1 reject: /, "verify $c->{id} with a changed signed field: reject");
    }

    my $d = slurp_json("$spec/vectors/derived/event_signing_v1_redaction_and_reference_hash.json");
    for my $c (@{ $d->{cases} }) {
        my $ev = encode_json($c->{signed_event});
        ($rc, $out) = run('redact --room-version 4', $ev);
        my $want = { %{ $c->{redacted_copy_that_is_signed} } };
        $want->{signatures} = $c->{signed_event}{signatures};
        is_deeply(decode_json($out), $want, "redact $c->{case}");
        ($rc, $out) = run('event-id --room-version 3', $ev);
        is($out, "$c->{event_id_if_room_v3}\n", "event-id v3 $c->{case}");
        ($rc, $out) = run('event-id --room-version 4', $ev);
        is($out, "$c->{event_id_if_room_v4_plus}\n", "event-id v4 $c->{case}");
        ($rc, $out) = run('hash --room-version 4', $ev);
        is(decode_json($out)->{reference_hash}, $c->{reference_hash_sha256_unpadded_base64}, "reference hash $c->{case}");
    }

    # a v12 create event names its room
    my $create = '{"type":"m.room.create","state_key":"","sender":"@u:domain",'
               . '"content":{"room_version":"12"},"origin_server_ts":1,"depth":1,'
               . '"prev_events":[],"auth_events":[]}';
    ($rc, $out) = run("sign -k $dir/spec.key -s domain --room-version 12", $create);
    is($rc, 0, 'sign a v12 create event');
    ($rc, $out) = run('event-id --room-version 12', $out);
    like($out, qr/^\$([A-Za-z0-9_-]{43})\n!\1\n$/, 'event-id of a v12 create: the event ID and the room ID');
}

done_testing();

# Events from another server reach the roomserver with their origin, and it
# checks them on receipt as the spec says: hashes and signatures first.  A
# good signature with a known key: on to the auth rules (here refused, the
# sender never joined, but stored as refused); a signature that does not
# verify, or by a key nobody knows: dropped, never stored, dead-lettered
# with the reason; a content hash that does not match: kept redacted.
# Keys of other servers come from mx:serverkeys:{<server>}.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;
use JSON::PP;
use IPC::Open3;
use File::Temp qw(tempdir);

my $srv = server();
my $api = '/_matrix/client/v3';
my $ctl = "$Test::Matrix::Server::Build/bin/matrixctl";
my $json = JSON::PP->new->canonical;
my $dir = tempdir(CLEANUP => 1);

sub ctl {
    my ($input, @args) = @_;
    my $pid = open3(my $in, my $out, undef, $ctl, @args);
    print {$in} $input // '';
    close $in;
    local $/;
    my $text = <$out>;
    waitpid $pid, 0;
    die "matrixctl @args: $?" if $?;
    $text =~ s/\s+\z//;
    return $text;
}

my $alice = client(token => $srv->make_token(user_id => '@alice:localhost', device_id => 'ADEV'));
my ($status, $body) = $alice->post("$api/createRoom", { preset => 'public_chat', room_version => '10' });
is($status, 200, 'a room');
my $room = $body->{room_id};
my $extrem = $srv->redis_cmd('SMEMBERS', "mx:{$room}:extrem");
my $state = { @{ $srv->redis_cmd('HGETALL', "mx:{$room}:state") } };
my @auth = map { $state->{$_} } grep { /^m\.room\.(create|power_levels|join_rules)\x1f$/ } keys %$state;

# a remote server's key, known; another, unknown
for my $k (qw(good bad)) {
    open my $f, '>', "$dir/$k" or die;
    print {$f} ctl('', 'keygen', $k), "\n";
    close $f;
}
my ($kid, $pk) = split ' ', ctl('', 'public-key', '-k', "$dir/good");
$srv->redis_cmd('HSET', 'mx:serverkeys:{remote.example}', $kid, $pk);
# valid for an hour: room versions 5 and later check it against the event's time
$srv->redis_cmd('HSET', 'mx:serverkeys:{remote.example}:until', $kid, int(time * 1000) + 3600_000);

my $shards = 4;
my $shard = ctl('', 'shard', $room, $shards);

sub event {
    my ($key, $body) = @_;
    my $ev = { type => 'm.room.message', room_id => $room, sender => '@bob:remote.example',
               content => { msgtype => 'm.text', body => $body }, prev_events => $extrem,
               auth_events => \@auth, depth => 100, origin_server_ts => time * 1000 };
    my $signed = $json->decode(ctl($json->encode($ev), 'sign', '-k', "$dir/$key", '-s', 'remote.example',
                                   '--room-version', '10'));
    return $signed;
}

sub submit {
    my ($ev) = @_;
    my $text = $json->encode($ev);
    my $id = ctl($text, 'event-id', '--room-version', '10');
    my $entry = $srv->redis_cmd('XADD', "mx:input:$shard", '*', kind => 'event', room => $room,
                                event_id => $id, event => $text, origin => 'remote.example');
    return ($id, $entry);
}

sub dead_for {
    my ($entry) = @_;
    for my $d (@{ $srv->redis_cmd('XRANGE', 'mx:dead', '-', '+') }) {
        my %f = @{ $d->[1] };
        return \%f if ($f{entry} // '') eq $entry;
    }
    return undef;
}

# a good signature: checked by the auth rules next, and stored
my ($good) = submit(event('good', 'signed well'));
ok(wait_for(sub { $srv->redis_cmd('HEXISTS', "mx:{$room}:meta", $good) }, 10),
   'a well-signed remote event gets past the signature check and is stored');
like($srv->redis_cmd('HGET', "mx:{$room}:meta", $good), qr/ r$/,
     'refused by the auth rules (its sender never joined)');

# signed by a key nobody knows: dropped
my ($unknown, $e1) = submit(event('bad', 'who signed this'));
ok(wait_for(sub { dead_for($e1) }, 10), 'an event signed by an unknown key is dead-lettered');
like(dead_for($e1)->{reason}, qr/signatures/, 'with the reason');
ok(!$srv->redis_cmd('HEXISTS', "mx:{$room}:meta", $unknown), 'and never stored');

# signed by a known key, but after it stopped being valid (room versions 5 and later)
my $lt = { type => 'm.room.message', room_id => $room, sender => '@bob:remote.example',
           content => { msgtype => 'm.text', body => 'after the key ran out' }, prev_events => $extrem,
           auth_events => \@auth, depth => 100, origin_server_ts => int(time * 1000) + 7200_000 };
$lt = $json->decode(ctl($json->encode($lt), 'sign', '-k', "$dir/good", '-s', 'remote.example',
                        '--room-version', '10'));
my ($ltid, $e0) = submit($lt);
ok(wait_for(sub { dead_for($e0) }, 10), 'an event made after its key\'s valid_until_ts is dead-lettered');
ok(!$srv->redis_cmd('HEXISTS', "mx:{$room}:meta", $ltid), 'and never stored');

# a signature that does not verify: dropped
my $forged = event('good', 'genuine');
$forged->{origin_server_ts} += 1;   # covered by the signature
my ($fid, $e2) = submit($forged);
ok(wait_for(sub { dead_for($e2) }, 10), 'an event changed after signing is dead-lettered');
ok(!$srv->redis_cmd('HEXISTS', "mx:{$room}:meta", $fid), 'and never stored');

# an entry whose event ID is not the event's hash: dropped
my $text = $json->encode(event('good', 'under a false name'));
my $fake = '$' . ('A' x 43);
my $e3 = $srv->redis_cmd('XADD', "mx:input:$shard", '*', kind => 'event', room => $room,
                         event_id => $fake, event => $text, origin => 'remote.example');
ok(wait_for(sub { dead_for($e3) }, 10), 'an event under another ID is dead-lettered');
like(dead_for($e3)->{reason}, qr/event ID/, 'saying why');
ok(!$srv->redis_cmd('HEXISTS', "mx:{$room}:meta", $fake), 'and never stored');

# a content hash that does not match: kept redacted
my $tampered = event('good', 'the original');
$tampered->{content}{body} = 'changed in transit';  # not covered by the signature
my ($tid) = submit($tampered);
ok(wait_for(sub { $srv->redis_cmd('HEXISTS', "mx:{$room}:meta", $tid) }, 10),
   'an event whose content hash does not match is stored');
my $stored = $json->decode($srv->redis_cmd('HGET', "mx:{$room}:pdu", $tid));
is_deeply($stored->{content}, {}, 'redacted: its content is gone');
is($stored->{sender}, '@bob:remote.example', 'the rest kept');

done_testing();

# Profiles: read anyone's, write one's own; displayname, avatar_url and
# custom fields; 404 for unknown users and fields, 403 for another's.

use strict;
use warnings;
use lib 't/lib';

use Test::Matrix;

my $srv = server();
my $alice = client();
$alice->register('alice', 'pw');
my $bob = client();
$bob->register('bob', 'pw');
my $anon = client();
my $p = '/_matrix/client/v3/profile';

my ($status, $json) = $anon->get("$p/\@alice:localhost");
is($status, 200, 'a profile can be read without a token');
is_deeply($json, { displayname => 'alice' }, 'the displayname starts as the localpart');

($status, $json) = $alice->put("$p/\@alice:localhost/displayname", { displayname => 'Alice Liddell' });
is($status, 200, 'set one\'s displayname');
($status, $json) = $alice->put("$p/\@alice:localhost/avatar_url", { avatar_url => 'mxc://localhost/abc' });
is($status, 200, 'set one\'s avatar_url');
($status, $json) = $anon->get("$p/\@alice:localhost");
is_deeply($json, { displayname => 'Alice Liddell', avatar_url => 'mxc://localhost/abc' }, 'both show');
($status, $json) = $anon->get("$p/\@alice:localhost/displayname");
is_deeply($json, { displayname => 'Alice Liddell' }, 'one field');

($status, $json) = $bob->put("$p/\@alice:localhost/displayname", { displayname => 'Mallory' });
is($status, 403, 'another user\'s profile: 403');
is($json->{errcode}, 'M_FORBIDDEN', 'M_FORBIDDEN');
is(($anon->get("$p/\@alice:localhost/displayname"))[1]{displayname}, 'Alice Liddell', 'unchanged');
($status, $json) = $anon->put("$p/\@alice:localhost/displayname", { displayname => 'x' });
is($status, 401, 'no token: 401');

($status, $json) = $anon->get("$p/\@nobody:localhost");
is($status, 404, 'an unknown user: 404');
is($json->{errcode}, 'M_NOT_FOUND', 'M_NOT_FOUND');
($status, $json) = $anon->get("$p/\@someone:elsewhere.org");
is($status, 404, 'a remote user (no federation yet): 404');
($status, $json) = $anon->get("$p/notauser");
is($json->{errcode}, 'M_INVALID_PARAM', 'no user ID: M_INVALID_PARAM');
($status, $json) = $anon->get("$p/\@bob:localhost/avatar_url");
is($status, 404, 'a field not set: 404');

($status, $json) = $alice->put("$p/\@alice:localhost/displayname", { displayname => 42 });
is($json->{errcode}, 'M_INVALID_PARAM', 'a displayname that is no string');
($status, $json) = $alice->put("$p/\@alice:localhost/displayname", { displayname => 'x' x 300 });
is($json->{errcode}, 'M_TOO_LARGE', 'a displayname over 256 bytes');
($status, $json) = $alice->put("$p/\@alice:localhost/displayname", { other => 'x' });
is($json->{errcode}, 'M_MISSING_PARAM', 'a body without the field');
($status, $json) = $alice->put("$p/\@alice:localhost/displayname", '[]');
is($json->{errcode}, 'M_BAD_JSON', 'a body that is no object');

# custom fields (extended profiles)
($status, $json) = $alice->put("$p/\@alice:localhost/m.tz", { 'm.tz' => 'Europe/London' });
is($status, 200, 'a custom field');
($status, $json) = $alice->put("$p/\@alice:localhost/org.example.pets", { 'org.example.pets' => [ 'cat', { name => 'Dinah' } ] });
is($status, 200, 'of any JSON');
($status, $json) = $anon->get("$p/\@alice:localhost");
is_deeply($json->{'org.example.pets'}, [ 'cat', { name => 'Dinah' } ], 'read back as JSON');
($status, $json) = $alice->request('DELETE', "$p/\@alice:localhost/m.tz");
is($status, 200, 'delete a field');
ok(!exists +($anon->get("$p/\@alice:localhost"))[1]{'m.tz'}, 'it is gone');
($status, $json) = $alice->put("$p/\@alice:localhost/org.example.big", { 'org.example.big' => 'x' x 70000 });
is($json->{errcode}, 'M_PROFILE_TOO_LARGE', 'a profile over 64 KiB is refused');
($status, $json) = $alice->put("$p/\@alice:localhost/" . ('k' x 300), { ('k' x 300) => 1 });
is($json->{errcode}, 'M_KEY_TOO_LARGE', 'a field name over 255 bytes');

# null clears a field
($status, $json) = $alice->put("$p/\@alice:localhost/avatar_url", { avatar_url => undef });
is($status, 200, 'avatar_url null');
ok(!exists +($anon->get("$p/\@alice:localhost"))[1]{avatar_url}, 'clears it');

done_testing();

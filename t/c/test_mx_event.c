/*
 * core/ wire format against the spec's own vectors (../shared/spec/vectors,
 * or $MX_SPEC_DIR/vectors): unpadded base64, canonical JSON, JSON signing,
 * event hashing and signing, and the derived redactions, reference hashes
 * and event IDs.  Then our own cases: every redaction rule set mapped to
 * every room version, identifiers, PDU shapes, verification verdicts, v12
 * room IDs and the X-Matrix header.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <sodium.h>

#include <mx_base64.h>
#include <mx_event.h>
#include <mx_ids.h>
#include <mx_json.h>
#include <mx_room_version.h>
#include <mx_sign.h>
#include <mx_xmatrix.h>

#include "mx_test_spec.h"
#include "mx_test_json.h"


static mx_pool_t         *pool;
static mx_signing_key_t   spec_key;     /* the appendices' test key */


static int
setup(void **state)
{
    (void) state;
    pool = mx_pool_create(16384);
    return pool ? 0 : -1;
}


static int
teardown(void **state)
{
    (void) state;
    mx_pool_destroy(pool);
    return 0;
}


/* inline JSON into the tests' pool */
#define J(text)  mx_test_json(pool, text)


static const char *
enc(const mx_json_t *v, unsigned flags)
{
    const char  *s;

    s = mx_json_encode(pool, v, flags, NULL);
    assert_non_null(s);

    return s;
}


static const mx_room_version_t *
RV(const char *id)
{
    const mx_room_version_t  *rv;

    rv = mx_room_version(id, strlen(id));
    assert_non_null(rv);

    return rv;
}


static const char *
str(const mx_json_t *obj, const char *key)
{
    const char  *s;

    s = mx_json_get_str(obj, key, NULL);
    if (s == NULL) {
        fail_msg("vector lacks the string %s", key);
    }

    return s;
}


static void
b64(const unsigned char *in, size_t n, char *out)
{
    mx_base64_encode(in, n, out, MX_BASE64_STD);
}


#define SKIP_WITHOUT(file)                                                   \
    if (!mx_test_spec_has("vectors/" file, "spec vectors")) {                \
        skip();                                                              \
    }


/* --- official vectors ------------------------------------------------- */

static void
test_base64_vectors(void **state)
{
    mx_json_t      *doc, *cases, *c;
    const char     *in, *want;
    char            out[64];
    unsigned char   back[64];
    ssize_t         n;
    size_t          i;

    (void) state;
    SKIP_WITHOUT("unpadded_base64.json");

    doc = mx_test_spec_json(pool, "vectors/unpadded_base64.json");
    assert_non_null(doc);
    cases = mx_json_get_arr(doc, "cases");
    assert_true(cases != NULL && cases->u.a.n == 7);

    for (i = 0; i < cases->u.a.n; i++) {
        c = cases->u.a.v[i];
        in = str(c, "input_ascii");
        want = str(c, "expected");

        mx_base64_encode((const unsigned char *) in, strlen(in), out,
                         MX_BASE64_STD);
        assert_string_equal(out, want);

        n = mx_base64_decode(want, strlen(want), back, MX_BASE64_STD);
        assert_int_equal(n, strlen(in));
        assert_memory_equal(back, in, strlen(in));
    }

    /* padded input is accepted too; garbage is not */
    assert_int_equal(mx_base64_decode("Zm8=", 4, back, MX_BASE64_STD), 2);
    assert_int_equal(mx_base64_decode("Zm9v!", 5, back, MX_BASE64_STD), -1);
    assert_int_equal(mx_base64_decode("Z", 1, back, MX_BASE64_STD), -1);

    /* the URL-safe alphabet: '-' and '_' for '+' and '/' */
    back[0] = 0xfb; back[1] = 0xff;
    mx_base64_encode(back, 2, out, MX_BASE64_URLSAFE);
    assert_string_equal(out, "-_8");
    mx_base64_encode(back, 2, out, MX_BASE64_STD);
    assert_string_equal(out, "+/8");
    assert_int_equal(mx_base64_decode("-_8", 3, back, MX_BASE64_URLSAFE), 2);
    assert_int_equal(mx_base64_decode("-_8", 3, back, MX_BASE64_STD), -1);
}


static void
test_signing_key_vector(void **state)
{
    mx_json_t      *doc;
    const char     *seed, *hex;
    unsigned char   raw[48], want[32];
    char            line[256];
    ssize_t         n;
    size_t          i;

    (void) state;
    SKIP_WITHOUT("signing_key.json");

    doc = mx_test_spec_json(pool, "vectors/signing_key.json");
    assert_non_null(doc);

    /* the printed seed has non-zero padding bits: decoded leniently */
    seed = str(doc, "seed_unpadded_base64");
    n = mx_base64_decode(seed, strlen(seed), raw, MX_BASE64_STD);
    assert_int_equal(n, 32);

    hex = str(doc, "seed_hex");
    for (i = 0; i < 32; i++) {
        sscanf(hex + 2 * i, "%2hhx", &want[i]);
    }
    assert_memory_equal(raw, want, 32);

    assert_int_equal(mx_key_from_seed(&spec_key, "1", raw), 0);
    assert_string_equal(spec_key.key_id, "ed25519:1");
    assert_string_equal(spec_key.pk_b64,
                        str(doc, "derived_public_key_unpadded_base64"));

    /* the key file line round-trips, with the canonical seed */
    mx_key_format(&spec_key, line, sizeof(line));
    assert_non_null(strstr(line, str(doc, "seed_canonical_unpadded_base64")));
}


static void
load_spec_key(void)
{
    unsigned char  seed[32];

    assert_int_equal(mx_base64_decode(
        "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1", 43, seed,
        MX_BASE64_STD), 32);
    assert_int_equal(mx_key_from_seed(&spec_key, "1", seed), 0);
}


static void
canonical_cases(const char *file, size_t expect_n)
{
    mx_json_t        *doc, *cases, *c;
    const char       *hex, *out;
    char              bytes[4096];
    size_t            i, k, len;
    mx_json_error_t   err;

    doc = mx_test_spec_json(pool, file);
    assert_non_null(doc);
    cases = mx_json_get_arr(doc, "cases");
    assert_non_null(cases);
    assert_true(cases->u.a.n >= expect_n);

    for (i = 0; i < cases->u.a.n; i++) {
        c = cases->u.a.v[i];
        hex = str(c, "expected_canonical_utf8_hex");

        for (k = 0; hex[2 * k]; k++) {
            sscanf(hex + 2 * k, "%2hhx", (unsigned char *) &bytes[k]);
        }

        /* strict and lenient writers agree on integers */
        out = mx_json_canonicalize(pool, str(c, "input_text"),
                                   strlen(str(c, "input_text")),
                                   MX_JSON_STRICT, &len, &err);
        if (out == NULL) {
            fail_msg("%s: %s", str(c, "id"), err.msg);
        }

        if (len != k || memcmp(out, bytes, k) != 0) {
            fail_msg("%s: got %.*s", str(c, "id"), (int) len, out);
        }

        assert_string_equal(out, str(c, "expected_canonical"));
    }
}


static void
test_canonical_json_vectors(void **state)
{
    mx_json_t        *doc, *rej, *c;
    const char       *in;
    size_t            i, len;
    mx_json_error_t   err;

    (void) state;
    SKIP_WITHOUT("canonical_json.json");

    canonical_cases("vectors/canonical_json.json", 10);
    canonical_cases("vectors/derived/canonical_json_grammar_cases.json", 9);

    /* floats and integers beyond 2^53-1: refused by the strict writer */
    doc = mx_test_spec_json(pool,
                            "vectors/derived/canonical_json_grammar_cases.json");
    rej = mx_json_get_arr(doc, "reject_cases");
    assert_true(rej != NULL && rej->u.a.n == 3);

    for (i = 0; i < rej->u.a.n; i++) {
        c = rej->u.a.v[i];
        in = str(c, "input_text");
        assert_null(mx_json_canonicalize(pool, in, strlen(in), MX_JSON_STRICT,
                                         &len, &err));
        /* the lenient writer of room versions 1 to 5 keeps them */
        assert_non_null(mx_json_canonicalize(pool, in, strlen(in), 0, &len,
                                             &err));
    }
}


static void
test_parser_refusals(void **state)
{
    static const struct {
        const char     *text;
        mx_json_err_t   code;
    } bad[] = {
        { "{\"a\":1,\"a\":2}", MX_JSON_EDUPKEY },
        { "{\"a\":\"\xc3\x28\"}", MX_JSON_EUTF8 },
        { "{\"a\":\"\xed\xa0\x80\"}", MX_JSON_EUTF8 },     /* surrogate */
        { "{\"a\":\"\\ud800\"}", MX_JSON_EUTF8 },          /* unpaired */
        { "{\"a\":", MX_JSON_ESYNTAX },
        { "{'a':1}", MX_JSON_ESYNTAX },
        { "[1,]", MX_JSON_ESYNTAX },
        { "{\"a\":1} x", MX_JSON_ESYNTAX },
    };
    mx_json_error_t   err;
    char              deep[512];
    size_t            i;
    mx_json_t        *v;

    (void) state;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = mx_json_parse(pool, bad[i].text, strlen(bad[i].text), &err);
        if (v != NULL || err.code != bad[i].code) {
            fail_msg("%s: got %d", bad[i].text, (int) err.code);
        }
        assert_true(err.msg[0] != '\0');
    }

    memset(deep, '[', MX_JSON_MAX_DEPTH + 1);
    memset(deep + MX_JSON_MAX_DEPTH + 1, ']', MX_JSON_MAX_DEPTH + 1);
    assert_null(mx_json_parse(pool, deep, 2 * (MX_JSON_MAX_DEPTH + 1), &err));
    assert_int_equal(err.code, MX_JSON_EDEPTH);
    assert_non_null(mx_json_parse(pool, deep + 1, 2 * MX_JSON_MAX_DEPTH,
                                  &err));

    /* integers stay exact, -0 is 0, integral exponents are integers */
    v = J("{\"a\":9007199254740991,\"b\":-0,\"c\":1e10,\"d\":2.5e1,"
          "\"e\":-9223372036854775808}");
    assert_string_equal(enc(v, 0),
        "{\"a\":9007199254740991,\"b\":0,\"c\":10000000000,\"d\":25,"
        "\"e\":-9223372036854775808}");
    assert_null(mx_json_encode(pool, v, MX_JSON_STRICT, NULL));
}


static void
test_json_signing_vectors(void **state)
{
    mx_json_t    *doc, *cases, *c, *in, *copy;
    const char   *sig;
    size_t        i;

    (void) state;
    SKIP_WITHOUT("json_signing.json");
    load_spec_key();

    doc = mx_test_spec_json(pool, "vectors/json_signing.json");
    cases = mx_json_get_arr(doc, "cases");
    assert_true(cases != NULL && cases->u.a.n == 2);

    for (i = 0; i < cases->u.a.n; i++) {
        c = cases->u.a.v[i];
        in = mx_json_clone(pool, mx_json_get(c, "input"));

        assert_int_equal(mx_sign_json(pool, in, "domain", &spec_key,
                                      MX_JSON_STRICT), 0);
        sig = mx_json_get_str(mx_json_get_obj(mx_json_get_obj(in,
                              "signatures"), "domain"), "ed25519:1", NULL);
        assert_non_null(sig);
        assert_string_equal(sig, str(c, "expected_signature"));
        assert_true(mx_json_equal(in, mx_json_get(c, "expected_signed")));

        assert_int_equal(mx_verify_json(pool, in, "domain", "ed25519:1",
                                        spec_key.pk, MX_JSON_STRICT), 0);

        /* unsigned is not signed; anything else is */
        copy = mx_json_clone(pool, in);
        mx_json_set(pool, copy, "unsigned", J("{\"age\":5}"));
        assert_int_equal(mx_verify_json(pool, copy, "domain", "ed25519:1",
                                        spec_key.pk, MX_JSON_STRICT), 0);
        mx_json_set_int(pool, copy, "extra", 1);
        assert_int_equal(mx_verify_json(pool, copy, "domain", "ed25519:1",
                                        spec_key.pk, MX_JSON_STRICT), -1);
        assert_int_equal(mx_verify_json(pool, in, "other", "ed25519:1",
                                        spec_key.pk, MX_JSON_STRICT), -1);
    }
}


static void
test_event_signing_vectors(void **state)
{
    static const char  *versions[] = { "1", "2", "3", "4", "5", "6", "7",
                                       "8", "9", "10" };
    mx_json_t          *doc, *cases, *c, *ev;
    unsigned char       hash[32];
    char                out[64];
    const char         *sig;
    size_t              i, v;

    (void) state;
    SKIP_WITHOUT("event_signing.json");
    load_spec_key();

    doc = mx_test_spec_json(pool, "vectors/event_signing.json");
    cases = mx_json_get_arr(doc, "cases");
    assert_true(cases != NULL && cases->u.a.n == 2);

    for (i = 0; i < cases->u.a.n; i++) {
        c = cases->u.a.v[i];

        /* a plain event: every version with the v1-v10 rules agrees */
        for (v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
            ev = mx_json_clone(pool, mx_json_get(c, "input"));

            assert_int_equal(mx_event_content_hash(pool, ev, RV(versions[v]),
                                                   hash), 0);
            b64(hash, 32, out);
            assert_string_equal(out, str(c, "expected_content_hash_sha256"));

            assert_int_equal(mx_event_sign(pool, ev, RV(versions[v]),
                                           "domain", &spec_key), 0);
            sig = mx_json_get_str(mx_json_get_obj(mx_json_get_obj(ev,
                                  "signatures"), "domain"), "ed25519:1", NULL);
            assert_non_null(sig);
            assert_string_equal(sig, str(c, "expected_signature"));
            assert_true(mx_json_equal(ev, mx_json_get(c, "expected_signed")));
        }
    }
}


static void
derived_cases(const char *file, const char *version, int v3_ids)
{
    mx_json_t      *doc, *cases, *c, *ev, *red;
    unsigned char   hash[32];
    char            out[64];
    const char     *sig, *id;
    size_t          i;

    doc = mx_test_spec_json(pool, file);
    cases = mx_json_get_arr(doc, "cases");
    assert_true(cases != NULL && cases->u.a.n == 2);

    for (i = 0; i < cases->u.a.n; i++) {
        c = cases->u.a.v[i];
        ev = mx_json_clone(pool, mx_json_get(c, "input"));

        assert_int_equal(mx_event_sign(pool, ev, RV(version), "domain",
                                       &spec_key), 0);

        red = mx_event_redact(pool, ev, RV(version));
        mx_json_set(pool, red, "signatures", J("{}"));
        assert_true(mx_json_equal(red,
                    mx_json_get(c, "redacted_copy_that_is_signed")));

        sig = mx_json_get_str(mx_json_get_obj(mx_json_get_obj(ev,
                              "signatures"), "domain"), "ed25519:1", NULL);
        assert_string_equal(sig, str(c, "signature"));
        assert_true(mx_json_equal(ev, mx_json_get(c, "signed_event")));

        assert_int_equal(mx_event_reference_hash(pool, ev, RV(version),
                                                 hash), 0);
        b64(hash, 32, out);
        assert_string_equal(out,
                            str(c, "reference_hash_sha256_unpadded_base64"));

        if (v3_ids) {
            id = mx_event_id(pool, ev, RV("3"));
            assert_string_equal(id, str(c, "event_id_if_room_v3"));
        }

        id = mx_event_id(pool, ev, RV(version));
        assert_string_equal(id, str(c, "event_id_if_room_v4_plus"));
    }
}


static void
test_derived_vectors(void **state)
{
    (void) state;
    SKIP_WITHOUT("derived/event_signing_v11.json");
    load_spec_key();

    derived_cases(
        "vectors/derived/event_signing_v1_redaction_and_reference_hash.json",
        "4", 1);
    derived_cases("vectors/derived/event_signing_v11.json", "11", 0);
    derived_cases("vectors/derived/event_signing_v11.json", "12", 0);
}


/* --- redaction: every rule set of redaction_rules.json, every version --- */

static const char  *all_top[] = {
    "event_id", "type", "room_id", "sender", "state_key", "content",
    "hashes", "signatures", "depth", "prev_events", "prev_state",
    "auth_events", "origin", "origin_server_ts", "membership", "unsigned",
    "redacts", "extra", NULL
};

static const char  *all_types[] = {
    "m.room.member", "m.room.create", "m.room.join_rules",
    "m.room.power_levels", "m.room.aliases", "m.room.history_visibility",
    "m.room.redaction", "m.room.message", "m.room.topic", NULL
};

static const char  *all_content[] = {
    "membership", "join_authorised_via_users_server", "third_party_invite",
    "creator", "room_version", "additional_creators", "predecessor",
    "join_rule", "allow", "ban", "events", "events_default", "invite",
    "kick", "redact", "state_default", "users", "users_default",
    "notifications", "aliases", "history_visibility", "redacts", "body",
    "displayname", "m.federate", NULL
};


static int
in_list(const mx_json_t *list, const char *s)
{
    size_t  i;

    for (i = 0; list && i < list->u.a.n; i++) {
        if (mx_json_is(list->u.a.v[i], MX_JSON_STRING)
            && strcmp(list->u.a.v[i]->u.s.p, s) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static void
check_rule_set(const char *version, const mx_json_t *rules)
{
    mx_json_t    *top, *by_type, *spec, *keys, *ev, *content, *red, *rc, *tpi;
    const char  **t, **k, **type;
    int           keep_all;

    top = mx_json_get_arr(rules, "top_level_keys_kept");
    by_type = mx_json_get_obj(rules, "content_keys_kept_by_type");
    assert_non_null(top);
    assert_non_null(by_type);

    for (type = all_types; *type; type++) {
        content = mx_json_object(pool);
        for (k = all_content; *k; k++) {
            if (strcmp(*k, "third_party_invite") == 0) {
                mx_json_set(pool, content, *k,
                            J("{\"display_name\":\"x\",\"signed\":{\"a\":1}}"));
            } else {
                mx_json_set_str(pool, content, *k, "v");
            }
        }

        ev = mx_json_object(pool);
        for (t = all_top; *t; t++) {
            mx_json_set_str(pool, ev, *t, "v");
        }
        mx_json_set_str(pool, ev, "type", *type);
        mx_json_set(pool, ev, "content", content);

        red = mx_event_redact(pool, ev, RV(version));
        assert_non_null(red);

        for (t = all_top; *t; t++) {
            if ((mx_json_get(red, *t) != NULL) != in_list(top, *t)) {
                fail_msg("v%s %s: top-level %s", version, *type, *t);
            }
        }

        spec = mx_json_get_obj(by_type, *type);
        keys = mx_json_get_arr(spec, "keys");
        keep_all = mx_json_is(mx_json_get(spec, "keep_all"), MX_JSON_TRUE);
        rc = mx_json_get_obj(red, "content");
        assert_non_null(rc);

        for (k = all_content; *k; k++) {
            if ((mx_json_get(rc, *k) != NULL)
                != (keep_all || in_list(keys, *k)
                    || mx_json_get(mx_json_get_obj(spec, "nested"), *k)))
            {
                fail_msg("v%s %s: content.%s", version, *type, *k);
            }
        }

        /* nested: of third_party_invite only "signed" */
        tpi = mx_json_get_obj(rc, "third_party_invite");
        if (tpi != NULL && !keep_all) {
            assert_true(mx_json_get_obj(spec, "nested") != NULL);
            assert_string_equal(enc(tpi, 0), "{\"signed\":{\"a\":1}}");
        }

        /* the original is untouched */
        assert_non_null(mx_json_get(ev, "unsigned"));
        assert_non_null(mx_json_get(content, "body"));
    }
}


static void
test_redaction_rule_sets(void **state)
{
    mx_json_t    *doc, *map, *sets, *rules;
    const char   *name;
    char          v[16];
    int           i;

    (void) state;
    SKIP_WITHOUT("redaction_rules.json");

    doc = mx_test_spec_json(pool, "vectors/redaction_rules.json");
    map = mx_json_get_obj(doc, "room_version_to_rule_set");
    sets = mx_json_get_obj(doc, "rule_sets");
    assert_non_null(map);
    assert_non_null(sets);

    for (i = 1; i <= 12; i++) {
        snprintf(v, sizeof(v), "%d", i);
        name = str(map, v);
        rules = mx_json_get_obj(sets, name);
        assert_non_null(rules);
        check_rule_set(v, rules);
    }
}


static void
test_redaction_edges(void **state)
{
    mx_json_t  *red;

    (void) state;

    /* content that is not an object becomes {} */
    red = mx_event_redact(pool, J("{\"type\":\"m.room.member\","
                                  "\"content\":[1]}"), RV("10"));
    assert_string_equal(enc(red, 0),
                        "{\"content\":{},\"type\":\"m.room.member\"}");

    /* v11: a third_party_invite that is not an object goes */
    red = mx_event_redact(pool, J("{\"type\":\"m.room.member\",\"content\":"
                                  "{\"membership\":\"invite\","
                                  "\"third_party_invite\":5}}"), RV("11"));
    assert_string_equal(enc(red, 0), "{\"content\":{\"membership\":\"invite\"},"
                                     "\"type\":\"m.room.member\"}");

    /* not an object at all */
    assert_null(mx_event_redact(pool, J("[]"), RV("1")));
}


/* --- identifiers --------------------------------------------------------- */

#define VALID(f, s)    assert_true(f(s, strlen(s)))
#define INVALID(f, s)  if (f(s, strlen(s))) fail_msg(#f " accepts %s", s)


static void
test_identifiers(void **state)
{
    mx_json_t  *doc, *cases;
    char        long_id[300];
    size_t      i;

    (void) state;

    if (mx_test_spec_has("vectors/identifiers.json", "spec vectors")) {
        doc = mx_test_spec_json(pool, "vectors/identifiers.json");
        cases = mx_json_get_arr(mx_json_get_obj(doc, "valid_server_names"),
                                "cases");
        assert_true(cases != NULL && cases->u.a.n == 6);

        for (i = 0; i < cases->u.a.n; i++) {
            assert_true(mx_server_name_valid(cases->u.a.v[i]->u.s.p,
                                             cases->u.a.v[i]->u.s.len));
        }
    }

    VALID(mx_server_name_valid, "localhost");
    VALID(mx_server_name_valid, "[::1]:8448");
    INVALID(mx_server_name_valid, "");
    INVALID(mx_server_name_valid, "a b");
    INVALID(mx_server_name_valid, "matrix.org:");
    INVALID(mx_server_name_valid, "matrix.org:123456");
    INVALID(mx_server_name_valid, "matrix.org:8a");
    INVALID(mx_server_name_valid, "[1234:5678::abcd");
    INVALID(mx_server_name_valid, "[g::1]");
    INVALID(mx_server_name_valid, "under_score.org");

    VALID(mx_user_id_valid, "@alice:example.org");
    VALID(mx_user_id_valid, "@a.b_c=d-e/f+g:example.org:8448");
    VALID(mx_user_id_valid, "@user:MATRIX.ORG");
    INVALID(mx_user_id_valid, "@Alice:example.org");
    INVALID(mx_user_id_valid, "@:example.org");
    INVALID(mx_user_id_valid, "alice:example.org");
    INVALID(mx_user_id_valid, "@alice");
    INVALID(mx_user_id_valid, "@alice:");
    INVALID(mx_user_id_valid, "@al ice:example.org");

    VALID(mx_user_id_historical_valid, "@Alice!~:example.org");
    INVALID(mx_user_id_historical_valid, "@al ice:example.org");
    INVALID(mx_user_id_historical_valid, "@al\x7f:example.org");

    /* 255 bytes in all, sigil and server name included */
    memset(long_id, 'a', sizeof(long_id));
    long_id[0] = '@';
    memcpy(long_id + 255 - 4, ":b.c", 4);
    assert_true(mx_user_id_valid(long_id, 255));
    long_id[0] = 'x';
    memset(long_id, 'a', 256);
    long_id[0] = '@';
    memcpy(long_id + 256 - 4, ":b.c", 4);
    assert_false(mx_user_id_valid(long_id, 256));

    VALID(mx_localpart_valid, "a.b_c=d-e/f+g");
    INVALID(mx_localpart_valid, "");
    INVALID(mx_localpart_valid, "A");
    assert_false(mx_localpart_valid("a\0b", 3));

    VALID(mx_room_id_valid, "!abc:example.org");
    VALID(mx_room_id_valid, "!abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO-_");
    INVALID(mx_room_id_valid, "!abc");
    INVALID(mx_room_id_valid, "#abc:example.org");
    INVALID(mx_room_id_valid, "!:example.org");
    VALID(mx_room_id_is_hash, "!abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO-_");
    INVALID(mx_room_id_is_hash, "!abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNO+/");
    INVALID(mx_room_id_is_hash, "!abc:example.org");

    VALID(mx_room_alias_valid, "#room:example.org");
    VALID(mx_room_alias_valid, "#日本語:example.org");
    INVALID(mx_room_alias_valid, "#:example.org");
    INVALID(mx_room_alias_valid, "#room");
    INVALID(mx_room_alias_valid, "!room:example.org");
    assert_false(mx_room_alias_valid("#r\0m:example.org", 16));

    assert_true(mx_event_id_valid("$abc:example.org", 16, MX_EVENT_ID_OPAQUE));
    assert_false(mx_event_id_valid("$abc", 4, MX_EVENT_ID_OPAQUE));
    assert_true(mx_event_id_valid(
        "$8yif6p8EqgoSten2BLje9ntKm720NyFLWQv9tn8memc", 44, MX_EVENT_ID_HASH));
    assert_true(mx_event_id_valid(
        "$8yif6p8EqgoSten2BLje9ntKm720NyFLWQv9tn8memc", 44,
        MX_EVENT_ID_HASH_URLSAFE));
    assert_false(mx_event_id_valid(
        "$8yif6p8Eqgo+ten2BLje9ntKm720NyFLWQv9tn8memc", 44,
        MX_EVENT_ID_HASH_URLSAFE));
    assert_false(mx_event_id_valid(
        "$8yif6p8Eqgo-ten2BLje9ntKm720NyFLWQv9tn8memc", 44, MX_EVENT_ID_HASH));
    assert_false(mx_event_id_valid(
        "$8yif6p8EqgoSten2BLje9ntKm720NyFLWQv9tn8mem", 43,
        MX_EVENT_ID_HASH_URLSAFE));
    assert_false(mx_event_id_valid("$abc:example.org", 16,
                                   MX_EVENT_ID_HASH_URLSAFE));
}


/* --- PDU shape ------------------------------------------------------------ */

#define PREV_V4  "$8yif6p8EqgoSten2BLje9ntKm720NyFLWQv9tn8memc"
#define ROOM_V12 "!8yif6p8EqgoSten2BLje9ntKm720NyFLWQv9tn8memc"

static mx_json_t *
pdu(const char *room_id, const char *extra)
{
    char  text[2048];

    snprintf(text, sizeof(text),
             "{\"type\":\"m.room.message\",\"room_id\":\"%s\","
             "\"sender\":\"@a:x.org\",\"content\":{\"body\":\"hi\"},"
             "\"origin_server_ts\":1,\"depth\":5,"
             "\"prev_events\":[\"" PREV_V4 "\"],"
             "\"auth_events\":[\"" PREV_V4 "\"],"
             "\"hashes\":{\"sha256\":\"x\"},\"signatures\":{}%s}",
             room_id, extra);

    return J(text);
}


static void
pdu_refused(const mx_json_t *ev, const char *v, const char *why_has)
{
    const char  *why = NULL;

    if (mx_event_check_pdu(pool, ev, RV(v), &why) != -1) {
        fail_msg("v%s accepts %s", v, enc(ev, 0));
    }

    if (strstr(why, why_has) == NULL) {
        fail_msg("v%s: \"%s\" does not mention %s", v, why, why_has);
    }
}


static void
pdu_accepted(const mx_json_t *ev, const char *v)
{
    const char  *why = NULL;

    if (mx_event_check_pdu(pool, ev, RV(v), &why) != 0) {
        fail_msg("v%s refuses (%s) %s", v, why, enc(ev, 0));
    }
}


static void
test_pdu_shape(void **state)
{
    mx_json_t  *ev, *list;
    char        big[70000];
    int         i;

    (void) state;

    pdu_accepted(pdu("!r:x.org", ""), "10");
    pdu_accepted(pdu(ROOM_V12, ""), "12");
    pdu_refused(pdu("!r:x.org", ""), "12", "room_id");
    pdu_refused(pdu("r:x.org", ""), "10", "room_id");

    /* every required field */
    static const char  *required[] = {
        "type", "sender", "room_id", "content", "origin_server_ts", "depth",
        "prev_events", "auth_events", "hashes", "signatures", NULL
    };
    for (i = 0; required[i]; i++) {
        ev = pdu("!r:x.org", "");
        mx_json_remove(ev, required[i]);
        pdu_refused(ev, "10", required[i]);
    }

    pdu_refused(pdu("!r:x.org", ",\"state_key\":5"), "10", "state_key");
    pdu_refused(pdu("!r:x.org", ",\"unsigned\":5"), "10", "unsigned");
    ev = pdu("!r:x.org", "");
    mx_json_set_str(pool, ev, "sender", "alice");
    pdu_refused(ev, "10", "sender");
    ev = pdu("!r:x.org", "");
    mx_json_set_int(pool, ev, "depth", -1);
    pdu_refused(ev, "10", "depth");
    ev = pdu("!r:x.org", "");
    mx_json_set_str(pool, ev, "depth", "5");
    pdu_refused(ev, "10", "depth");
    ev = pdu("!r:x.org", "");
    mx_json_set(pool, ev, "signatures", J("{\"x.org\":{\"ed25519:1\":5}}"));
    pdu_refused(ev, "10", "signature");
    ev = pdu("!r:x.org", "");
    mx_json_set(pool, ev, "hashes", J("{}"));
    pdu_refused(ev, "10", "hashes");

    /* field lengths: 255 bytes */
    memset(big, 'a', 256);
    big[256] = '\0';
    ev = pdu("!r:x.org", "");
    mx_json_set_str(pool, ev, "type", big);
    pdu_refused(ev, "10", "type");
    big[255] = '\0';
    mx_json_set_str(pool, ev, "type", big);
    pdu_accepted(ev, "10");
    mx_json_set_str(pool, ev, "state_key", big);
    pdu_accepted(ev, "10");

    /* 65,536 bytes in all */
    memset(big, 'a', sizeof(big) - 1);
    big[65536 - 400] = '\0';
    ev = pdu("!r:x.org", "");
    mx_json_set_str(pool, mx_json_get(ev, "content"), "body", big);
    pdu_accepted(ev, "10");
    big[65536 - 400] = 'a';
    big[65536] = '\0';
    mx_json_set_str(pool, mx_json_get(ev, "content"), "body", big);
    pdu_refused(ev, "10", "65536");

    /* event lists: IDs of the version's format, at most 20 and 10 */
    ev = pdu("!r:x.org", "");
    mx_json_set(pool, ev, "prev_events",
                J("[\"$8yif6p8Eqgo-ten2BLje9ntKm720NyFLWQv9tn8memc\"]"));
    pdu_accepted(ev, "4");
    pdu_refused(ev, "3", "prev_events");
    list = mx_json_array(pool);
    for (i = 0; i < 21; i++) {
        mx_json_append(pool, list, mx_json_str(pool, PREV_V4));
    }
    ev = pdu("!r:x.org", "");
    mx_json_set(pool, ev, "prev_events", list);
    pdu_refused(ev, "10", "prev_events");
    ev = pdu("!r:x.org", "");
    mx_json_set(pool, ev, "auth_events", list);
    pdu_refused(ev, "10", "auth_events");

    /* v1, v2: [ID, hashes] pairs and an event_id */
    ev = pdu("!r:x.org", ",\"event_id\":\"$e:x.org\"");
    pdu_refused(ev, "1", "prev_events");
    mx_json_set(pool, ev, "prev_events", J("[[\"$p:x.org\",{}]]"));
    mx_json_set(pool, ev, "auth_events", J("[[\"$a:x.org\",{\"sha256\":\"x\"}]]"));
    pdu_accepted(ev, "1");
    pdu_accepted(ev, "2");
    mx_json_remove(ev, "event_id");
    pdu_refused(ev, "2", "event_id");

    /* floats: lenient canonical JSON before v6, refused after */
    ev = pdu("!r:x.org", "");
    mx_json_set(pool, mx_json_get(ev, "content"), "f", J("1.5"));
    pdu_accepted(ev, "4");
    ev = pdu(ROOM_V12, "");
    mx_json_set(pool, mx_json_get(ev, "content"), "f", J("1.5"));
    pdu_refused(ev, "12", "float");
    mx_json_set(pool, mx_json_get(ev, "content"), "f",
                J("9007199254740992"));
    pdu_refused(ev, "12", "float");

    /* v12 create: no room_id */
    ev = pdu(ROOM_V12, ",\"state_key\":\"\"");
    mx_json_set_str(pool, ev, "type", "m.room.create");
    pdu_refused(ev, "12", "room_id");
    mx_json_remove(ev, "room_id");
    pdu_accepted(ev, "12");
    pdu_refused(ev, "11", "room_id");

    /* redacts: top level before v11, in content after */
    ev = pdu("!r:x.org", ",\"redacts\":\"nope\"");
    mx_json_set_str(pool, ev, "type", "m.room.redaction");
    pdu_refused(ev, "10", "redacts");
    mx_json_set_str(pool, ev, "redacts", PREV_V4);
    pdu_accepted(ev, "10");
    ev = pdu(ROOM_V12, "");
    mx_json_set_str(pool, ev, "type", "m.room.redaction");
    mx_json_set_int(pool, mx_json_get(ev, "content"), "redacts", 3);
    pdu_refused(ev, "12", "redacts");

    pdu_refused(J("[]"), "10", "object");
}


/* --- signing and verification ------------------------------------------- */

typedef struct {
    const char           *server;
    const char           *key_id;
    const unsigned char  *pk;
    int                   calls;
} keyring_t;


static const unsigned char *
ring_lookup(void *ctx, const char *server, const char *key_id, int64_t ts)
{
    keyring_t  *ring;

    ring = ctx;

    for ( /* void */ ; ring->server; ring++) {
        ring->calls++;

        if (strcmp(ring->server, server) == 0
            && strcmp(ring->key_id, key_id) == 0)
        {
            assert_true(ts == 1234);
            return ring->pk;
        }
    }

    return NULL;
}


static mx_json_t *
signed_event(const char *v, const char *json, mx_signing_key_t *key,
    const char *origin)
{
    mx_json_t  *ev;

    ev = J(json);
    assert_int_equal(mx_event_sign(pool, ev, RV(v), origin, key), 0);
    pdu_accepted(ev, v);

    return ev;
}


static void
test_verify(void **state)
{
    mx_signing_key_t   a, b;
    mx_json_t         *ev, *copy;
    const char        *why, *signers[3];
    keyring_t          ring[3];

    (void) state;

    assert_int_equal(mx_key_generate(&a, "a1"), 0);
    assert_int_equal(mx_key_generate(&b, "b1"), 0);

    memset(ring, 0, sizeof(ring));
    ring[0].server = "a.org"; ring[0].key_id = a.key_id; ring[0].pk = a.pk;
    ring[1].server = "b.org"; ring[1].key_id = b.key_id; ring[1].pk = b.pk;

    ev = signed_event("12",
        "{\"type\":\"m.room.message\",\"room_id\":\"" ROOM_V12 "\","
        "\"sender\":\"@u:a.org\",\"content\":{\"body\":\"hi\"},"
        "\"origin_server_ts\":1234,\"depth\":5,"
        "\"prev_events\":[\"" PREV_V4 "\"],\"auth_events\":[],"
        "\"unsigned\":{\"age\":3}}", &a, "a.org");

    assert_int_equal(mx_event_verify(pool, ev, RV("12"), ring_lookup, ring,
                                     &why), MX_EVENT_OK);

    /* content changed: the signature still holds, the hash does not */
    copy = mx_json_clone(pool, ev);
    mx_json_set_str(pool, mx_json_get(copy, "content"), "body", "bye");
    assert_int_equal(mx_event_verify(pool, copy, RV("12"), ring_lookup, ring,
                                     &why), MX_EVENT_REDACT);
    assert_non_null(strstr(why, "hash"));

    /* unsigned may change freely */
    copy = mx_json_clone(pool, ev);
    mx_json_set(pool, copy, "unsigned", J("{\"age\":99}"));
    assert_int_equal(mx_event_verify(pool, copy, RV("12"), ring_lookup, ring,
                                     &why), MX_EVENT_OK);

    /* a signed field changed: rejected */
    copy = mx_json_clone(pool, ev);
    mx_json_set_int(pool, copy, "depth", 6);
    assert_int_equal(mx_event_verify(pool, copy, RV("12"), ring_lookup, ring,
                                     &why), MX_EVENT_REJECT);

    /* signed by another server than the sender's */
    copy = mx_json_clone(pool, ev);
    mx_json_set_str(pool, copy, "sender", "@u:b.org");
    mx_json_remove(copy, "signatures");
    assert_int_equal(mx_event_sign(pool, copy, RV("12"), "a.org", &a), 0);
    assert_int_equal(mx_event_verify(pool, copy, RV("12"), ring_lookup, ring,
                                     &why), MX_EVENT_REJECT);

    /* one server's signature on its own: an invite's countersignature */
    assert_int_equal(mx_event_signed(pool, ev, RV("12"), "a.org",
                                     ring_lookup, ring), 1);
    assert_int_equal(mx_event_signed(pool, ev, RV("12"), "b.org",
                                     ring_lookup, ring), 0);
    copy = mx_json_clone(pool, ev);
    assert_int_equal(mx_event_sign(pool, copy, RV("12"), "b.org", &b), 0);
    assert_int_equal(mx_event_signed(pool, copy, RV("12"), "b.org",
                                     ring_lookup, ring), 1);
    assert_string_equal(mx_event_id(pool, copy, RV("12")),
                        mx_event_id(pool, ev, RV("12")));
    mx_json_set_int(pool, copy, "depth", 6);
    assert_int_equal(mx_event_signed(pool, copy, RV("12"), "b.org",
                                     ring_lookup, ring), 0);

    /* an unknown key */
    ring[0].pk = b.pk;
    assert_int_equal(mx_event_verify(pool, ev, RV("12"), ring_lookup, ring,
                                     &why), MX_EVENT_REJECT);
    ring[0].pk = a.pk;

    /* a restricted join needs the authorising server's signature too */
    ev = signed_event("10",
        "{\"type\":\"m.room.member\",\"room_id\":\"!r:a.org\","
        "\"sender\":\"@u:a.org\",\"state_key\":\"@u:a.org\","
        "\"content\":{\"membership\":\"join\","
        "\"join_authorised_via_users_server\":\"@v:b.org\"},"
        "\"origin_server_ts\":1234,\"depth\":5,"
        "\"prev_events\":[],\"auth_events\":[]}", &a, "a.org");
    assert_int_equal(mx_event_signers(pool, ev, RV("10"), signers), 2);
    assert_string_equal(signers[1], "b.org");
    assert_int_equal(mx_event_signers(pool, ev, RV("7"), signers), 1);
    assert_int_equal(mx_event_verify(pool, ev, RV("10"), ring_lookup, ring,
                                     &why), MX_EVENT_REJECT);
    assert_int_equal(mx_event_sign(pool, ev, RV("10"), "b.org", &b), 0);
    assert_int_equal(mx_event_verify(pool, ev, RV("10"), ring_lookup, ring,
                                     &why), MX_EVENT_OK);
    /* v7 redaction drops the authoriser, so the signed bytes differ */
    assert_int_equal(mx_event_verify(pool, ev, RV("7"), ring_lookup, ring,
                                     &why), MX_EVENT_REJECT);

    /* v1: the event ID's server signs as well */
    ev = signed_event("1",
        "{\"type\":\"m.room.message\",\"room_id\":\"!r:a.org\","
        "\"event_id\":\"$e:b.org\",\"sender\":\"@u:a.org\","
        "\"content\":{},\"origin_server_ts\":1234,\"depth\":5,"
        "\"prev_events\":[],\"auth_events\":[]}", &a, "a.org");
    assert_int_equal(mx_event_verify(pool, ev, RV("1"), ring_lookup, ring,
                                     &why), MX_EVENT_REJECT);
    assert_int_equal(mx_event_sign(pool, ev, RV("1"), "b.org", &b), 0);
    assert_int_equal(mx_event_verify(pool, ev, RV("1"), ring_lookup, ring,
                                     &why), MX_EVENT_OK);
    assert_string_equal(mx_event_id(pool, ev, RV("1")), "$e:b.org");

    /* v12: no floats can be signed */
    ev = J("{\"type\":\"x\",\"content\":{\"f\":0.5}}");
    assert_int_equal(mx_event_sign(pool, ev, RV("12"), "a.org", &a), -1);
    assert_int_equal(mx_event_sign(pool, ev, RV("5"), "a.org", &a), 0);
}


static void
test_room_id_v12(void **state)
{
    mx_signing_key_t   a;
    mx_json_t         *create;
    const char        *event_id, *room_id;

    (void) state;

    assert_int_equal(mx_key_generate(&a, NULL), 0);

    create = signed_event("12",
        "{\"type\":\"m.room.create\",\"state_key\":\"\","
        "\"sender\":\"@u:a.org\",\"content\":{\"room_version\":\"12\"},"
        "\"origin_server_ts\":1234,\"depth\":1,"
        "\"prev_events\":[],\"auth_events\":[]}", &a, "a.org");

    event_id = mx_event_id(pool, create, RV("12"));
    room_id = mx_event_room_id(pool, create, RV("12"));

    assert_int_equal(strlen(room_id), 44);
    assert_int_equal(room_id[0], '!');
    assert_string_equal(room_id + 1, event_id + 1);
    assert_true(mx_room_id_is_hash(room_id, 44));
    assert_true(mx_event_id_valid(event_id, 44, MX_EVENT_ID_HASH_URLSAFE));

    /* v3 IDs use the standard alphabet for the same hash */
    assert_true(mx_event_id_valid(mx_event_id(pool, create, RV("3")), 44,
                                  MX_EVENT_ID_HASH));
}


/* --- X-Matrix ------------------------------------------------------------ */

static void
test_xmatrix(void **state)
{
    mx_signing_key_t   a;
    mx_xmatrix_t       x;
    mx_json_t         *body;
    const char        *hdr, *why;
    char               buf[512];

    (void) state;

    assert_int_equal(mx_key_generate(&a, "k1"), 0);
    body = J("{\"pdus\":[],\"edus\":[]}");

    hdr = mx_xmatrix_sign(pool, &a, "PUT", "/_matrix/federation/v1/send/1",
                          "a.org", "b.org", body);
    assert_non_null(hdr);
    assert_memory_equal(hdr, "X-Matrix origin=\"a.org\",destination="
                        "\"b.org\",key=\"ed25519:k1\",sig=\"", 58);

    assert_int_equal(mx_xmatrix_parse(pool, hdr, strlen(hdr), &x, &why), 0);
    assert_string_equal(x.origin, "a.org");
    assert_string_equal(x.destination, "b.org");
    assert_string_equal(x.key_id, "ed25519:k1");

    assert_int_equal(mx_xmatrix_verify(pool, &x, "PUT",
        "/_matrix/federation/v1/send/1", "b.org", body, a.pk, &why), 0);
    assert_int_equal(mx_xmatrix_verify(pool, &x, "PUT",
        "/_matrix/federation/v1/send/1", "c.org", body, a.pk, &why), -1);
    assert_non_null(strstr(why, "another server"));
    assert_int_equal(mx_xmatrix_verify(pool, &x, "PUT",
        "/_matrix/federation/v1/send/2", "b.org", body, a.pk, &why), -1);
    assert_int_equal(mx_xmatrix_verify(pool, &x, "GET",
        "/_matrix/federation/v1/send/1", "b.org", body, a.pk, &why), -1);
    assert_int_equal(mx_xmatrix_verify(pool, &x, "PUT",
        "/_matrix/federation/v1/send/1", "b.org", NULL, a.pk, &why), -1);

    /* without a body, and without destination on the wire */
    hdr = mx_xmatrix_sign(pool, &a, "GET", "/_matrix/federation/v1/version",
                          "a.org", NULL, NULL);
    assert_int_equal(mx_xmatrix_parse(pool, hdr, strlen(hdr), &x, &why), 0);
    assert_null(x.destination);
    assert_int_equal(mx_xmatrix_verify(pool, &x, "GET",
        "/_matrix/federation/v1/version", NULL, NULL, a.pk, &why), 0);

    /* the header grammar: tokens, case, spaces, escapes, unknown names */
    snprintf(buf, sizeof(buf), "x-matrix  Origin=a.org , KEY=\"ed25519:k1\","
             "sig=\"a\\\"b\",extra=1");
    assert_int_equal(mx_xmatrix_parse(pool, buf, strlen(buf), &x, &why), 0);
    assert_string_equal(x.origin, "a.org");
    assert_string_equal(x.sig, "a\"b");
    assert_int_equal(mx_xmatrix_verify(pool, &x, "GET", "/", NULL, NULL,
                                       a.pk, &why), -1);

    static const char  *bad[] = {
        "Bearer abc",
        "X-Matrix",
        "X-Matrix origin=a.org,key=\"ed25519:k1\"",
        "X-Matrix origin=a.org,key=k,sig=s,origin=b.org",
        "X-Matrix origin=\"a.org,key=k,sig=s",
        "X-Matrix origin=a..b c,key=k,sig=s",
        "X-Matrix origin=a_b,key=k,sig=s",
        "X-Matrix origin,key=k,sig=s",
        NULL
    };
    for (int i = 0; bad[i]; i++) {
        if (mx_xmatrix_parse(pool, bad[i], strlen(bad[i]), &x, &why) != -1) {
            fail_msg("accepted: %s", bad[i]);
        }
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_base64_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signing_key_vector, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_canonical_json_vectors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_parser_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_signing_vectors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_event_signing_vectors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_derived_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redaction_rule_sets, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redaction_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identifiers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pdu_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_room_id_v12, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xmatrix, setup, teardown),
    };

    if (mx_sign_init() != 0) {
        return 1;
    }

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * core/mx_pushrules: the server-default rules are the spec's, complete and
 * in its order, filled in for the user; the merge puts the user's rules
 * where the spec says and applies their changes; what clients send is
 * checked.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <mx_pushrules.h>

#include "mx_test_json.h"


#define ALICE  "@alice:example.org"


#define json(pool, text)  mx_test_json(pool, text)


static const char *
enc(mx_pool_t *pool, const mx_json_t *v)
{
    size_t  len;

    return mx_json_encode(pool, v, 0, &len);
}


/* the rule IDs of one kind of a ruleset, joined by spaces */

static const char *
ids(mx_pool_t *pool, const mx_json_t *set, const char *kind)
{
    static char  buf[2048];
    mx_json_t   *arr;
    size_t       i, n;
    const char  *s;

    (void) pool;

    buf[0] = '\0';
    arr = mx_json_get_arr(set, kind);
    assert_non_null(arr);

    for (i = 0; i < arr->u.a.n; i++) {
        s = mx_json_get_str(arr->u.a.v[i], "rule_id", &n);
        assert_non_null(s);
        if (i) {
            strcat(buf, " ");
        }
        strncat(buf, s, n);
    }

    return buf;
}


static const char  *spec_override =
    ".m.rule.master .m.rule.suppress_notices .m.rule.invite_for_me"
    " .m.rule.member_event .m.rule.is_user_mention"
    " .m.rule.contains_display_name .m.rule.is_room_mention"
    " .m.rule.roomnotif .m.rule.tombstone .m.rule.reaction"
    " .m.rule.room.server_acl .m.rule.suppress_edits";

static const char  *spec_underride =
    ".m.rule.call .m.rule.encrypted_room_one_to_one .m.rule.room_one_to_one"
    " .m.rule.message .m.rule.encrypted";


static void
test_kinds(void **state)
{
    (void) state;

    assert_string_equal(mx_push_kind_name(MX_PUSH_OVERRIDE), "override");
    assert_string_equal(mx_push_kind_name(MX_PUSH_UNDERRIDE), "underride");
    assert_null(mx_push_kind_name(MX_PUSH_KINDS));
    assert_int_equal(mx_push_kind("content", 7), MX_PUSH_CONTENT);
    assert_int_equal(mx_push_kind("room", 4), MX_PUSH_ROOM);
    assert_int_equal(mx_push_kind("sender", 6), MX_PUSH_SENDER);
    assert_int_equal(mx_push_kind("rooms", 5), -1);
    assert_int_equal(mx_push_kind("roo", 3), -1);
    assert_int_equal(mx_push_kind("", 0), -1);
    assert_int_equal(mx_push_kind("global", 6), -1);
}


static void
test_defaults_complete(void **state)
{
    mx_pool_t       *pool;
    mx_json_t       *set, *arr;
    size_t           i, n;
    mx_push_kind_t   kind;
    const char      *id;

    (void) state;

    pool = mx_pool_create(4096);
    set = mx_push_defaults(pool, ALICE, strlen(ALICE));
    assert_non_null(set);

    assert_int_equal(set->u.o.n, 5);
    assert_string_equal(ids(pool, set, "override"), spec_override);
    assert_string_equal(ids(pool, set, "content"),
                        ".m.rule.contains_user_name");
    assert_string_equal(ids(pool, set, "room"), "");
    assert_string_equal(ids(pool, set, "sender"), "");
    assert_string_equal(ids(pool, set, "underride"), spec_underride);

    /* every default: default true, enabled a boolean, actions an array */
    for (i = 0; (id = mx_push_default_id(i, &kind)) != NULL; i++) {
        mx_json_t *r = mx_push_find(set, kind, id, strlen(id));

        assert_non_null(r);
        assert_true(mx_push_is_default(kind, id, strlen(id)));
        assert_int_equal(mx_json_get(r, "default")->type, MX_JSON_TRUE);
        assert_true(mx_json_is_bool(mx_json_get(r, "enabled")));
        assert_non_null(mx_json_get_arr(r, "actions"));

        if (kind == MX_PUSH_CONTENT) {
            assert_non_null(mx_json_get_str(r, "pattern", &n));
            assert_null(mx_json_get(r, "conditions"));
        } else {
            assert_non_null(mx_json_get_arr(r, "conditions"));
            assert_null(mx_json_get(r, "pattern"));
        }
    }

    assert_int_equal(i, 18);

    /* only the master rule is off */
    arr = mx_json_get_arr(set, "override");
    assert_int_equal(mx_json_get(arr->u.a.v[0], "enabled")->type,
                     MX_JSON_FALSE);
    assert_int_equal(mx_json_get(arr->u.a.v[1], "enabled")->type,
                     MX_JSON_TRUE);

    assert_false(mx_push_is_default(MX_PUSH_UNDERRIDE, ".m.rule.master", 14));
    assert_false(mx_push_is_default(MX_PUSH_OVERRIDE, ".m.rule.mast", 12));
    assert_false(mx_push_is_default(MX_PUSH_OVERRIDE, ".m.rule.server_acl",
                                    18));

    mx_pool_destroy(pool);
}


/* the spec's definitions, exactly (canonical JSON of ours) */

static void
test_defaults_exact(void **state)
{
    mx_pool_t  *pool;
    mx_json_t  *set;

    (void) state;

    pool = mx_pool_create(4096);
    set = mx_push_defaults(pool, ALICE, strlen(ALICE));

    assert_string_equal(enc(pool, mx_push_find(set, MX_PUSH_OVERRIDE,
                                               ".m.rule.master", 14)),
        "{\"actions\":[],\"conditions\":[],\"default\":true,"
        "\"enabled\":false,\"rule_id\":\".m.rule.master\"}");

    assert_string_equal(enc(pool, mx_push_find(set, MX_PUSH_OVERRIDE,
                                               ".m.rule.invite_for_me", 21)),
        "{\"actions\":[\"notify\",{\"set_tweak\":\"sound\","
        "\"value\":\"default\"}],\"conditions\":["
        "{\"key\":\"type\",\"kind\":\"event_match\","
        "\"pattern\":\"m.room.member\"},"
        "{\"key\":\"content.membership\",\"kind\":\"event_match\","
        "\"pattern\":\"invite\"},"
        "{\"key\":\"state_key\",\"kind\":\"event_match\","
        "\"pattern\":\"@alice:example.org\"}],"
        "\"default\":true,\"enabled\":true,"
        "\"rule_id\":\".m.rule.invite_for_me\"}");

    assert_string_equal(enc(pool, mx_push_find(set, MX_PUSH_OVERRIDE,
                                               ".m.rule.is_user_mention", 23)),
        "{\"actions\":[\"notify\",{\"set_tweak\":\"sound\","
        "\"value\":\"default\"},{\"set_tweak\":\"highlight\"}],"
        "\"conditions\":[{\"key\":\"content.m\\\\.mentions.user_ids\","
        "\"kind\":\"event_property_contains\","
        "\"value\":\"@alice:example.org\"}],"
        "\"default\":true,\"enabled\":true,"
        "\"rule_id\":\".m.rule.is_user_mention\"}");

    assert_string_equal(enc(pool, mx_push_find(set, MX_PUSH_OVERRIDE,
                                               ".m.rule.is_room_mention", 23)),
        "{\"actions\":[\"notify\",{\"set_tweak\":\"highlight\"}],"
        "\"conditions\":[{\"key\":\"content.m\\\\.mentions.room\","
        "\"kind\":\"event_property_is\",\"value\":true},"
        "{\"key\":\"room\",\"kind\":\"sender_notification_permission\"}],"
        "\"default\":true,\"enabled\":true,"
        "\"rule_id\":\".m.rule.is_room_mention\"}");

    assert_string_equal(enc(pool, mx_push_find(set, MX_PUSH_OVERRIDE,
                                               ".m.rule.tombstone", 17)),
        "{\"actions\":[\"notify\",{\"set_tweak\":\"highlight\"}],"
        "\"conditions\":[{\"key\":\"type\",\"kind\":\"event_match\","
        "\"pattern\":\"m.room.tombstone\"},{\"key\":\"state_key\","
        "\"kind\":\"event_match\",\"pattern\":\"\"}],"
        "\"default\":true,\"enabled\":true,"
        "\"rule_id\":\".m.rule.tombstone\"}");

    assert_string_equal(enc(pool, mx_push_find(set, MX_PUSH_OVERRIDE,
                                               ".m.rule.suppress_edits", 22)),
        "{\"actions\":[],\"conditions\":[{\"key\":"
        "\"content.m\\\\.relates_to.rel_type\","
        "\"kind\":\"event_property_is\",\"value\":\"m.replace\"}],"
        "\"default\":true,\"enabled\":true,"
        "\"rule_id\":\".m.rule.suppress_edits\"}");

    assert_string_equal(enc(pool, mx_push_find(set, MX_PUSH_CONTENT,
                                               ".m.rule.contains_user_name",
                                               26)),
        "{\"actions\":[\"notify\",{\"set_tweak\":\"sound\","
        "\"value\":\"default\"},{\"set_tweak\":\"highlight\"}],"
        "\"default\":true,\"enabled\":true,\"pattern\":\"alice\","
        "\"rule_id\":\".m.rule.contains_user_name\"}");

    assert_string_equal(enc(pool, mx_push_find(set, MX_PUSH_UNDERRIDE,
                                               ".m.rule.call", 12)),
        "{\"actions\":[\"notify\",{\"set_tweak\":\"sound\","
        "\"value\":\"ring\"}],\"conditions\":[{\"key\":\"type\","
        "\"kind\":\"event_match\",\"pattern\":\"m.call.invite\"}],"
        "\"default\":true,\"enabled\":true,\"rule_id\":\".m.rule.call\"}");

    assert_string_equal(enc(pool, mx_push_find(set, MX_PUSH_UNDERRIDE,
                                  ".m.rule.encrypted_room_one_to_one", 33)),
        "{\"actions\":[\"notify\",{\"set_tweak\":\"sound\","
        "\"value\":\"default\"}],\"conditions\":[{\"is\":\"2\","
        "\"kind\":\"room_member_count\"},{\"key\":\"type\","
        "\"kind\":\"event_match\",\"pattern\":\"m.room.encrypted\"}],"
        "\"default\":true,\"enabled\":true,"
        "\"rule_id\":\".m.rule.encrypted_room_one_to_one\"}");

    assert_string_equal(enc(pool, mx_push_find(set, MX_PUSH_UNDERRIDE,
                                               ".m.rule.message", 15)),
        "{\"actions\":[\"notify\"],\"conditions\":[{\"key\":\"type\","
        "\"kind\":\"event_match\",\"pattern\":\"m.room.message\"}],"
        "\"default\":true,\"enabled\":true,"
        "\"rule_id\":\".m.rule.message\"}");

    mx_pool_destroy(pool);
}


/* the user ID is data, never JSON text: quotes and all */

static void
test_defaults_user(void **state)
{
    mx_pool_t   *pool;
    mx_json_t   *set, *r;
    const char  *s;
    size_t       n;
    const char   odd[] = "@b\"o\\b:hs.example:8448";

    (void) state;

    pool = mx_pool_create(4096);
    set = mx_push_defaults(pool, odd, strlen(odd));
    assert_non_null(set);

    r = mx_push_find(set, MX_PUSH_CONTENT, ".m.rule.contains_user_name", 26);
    s = mx_json_get_str(r, "pattern", &n);
    assert_int_equal(n, 5);
    assert_memory_equal(s, "b\"o\\b", 5);

    r = mx_push_find(set, MX_PUSH_OVERRIDE, ".m.rule.invite_for_me", 21);
    r = mx_json_get_arr(r, "conditions")->u.a.v[2];
    s = mx_json_get_str(r, "pattern", &n);
    assert_int_equal(n, strlen(odd));
    assert_memory_equal(s, odd, n);

    /* another user, another pattern, from the same table */
    set = mx_push_defaults(pool, "@bob:x", 6);
    r = mx_push_find(set, MX_PUSH_CONTENT, ".m.rule.contains_user_name", 26);
    assert_string_equal(mx_json_get_str(r, "pattern", &n), "bob");

    mx_pool_destroy(pool);
}


static void
test_merge(void **state)
{
    mx_pool_t       *pool;
    mx_json_t       *set, *r;
    mx_push_user_t   u;

    (void) state;

    pool = mx_pool_create(4096);
    memset(&u, 0, sizeof(u));

    u.rules[MX_PUSH_OVERRIDE] = json(pool,
        "[{\"rule_id\":\"o1\",\"default\":false,\"enabled\":true,"
        "\"actions\":[],\"conditions\":[]},"
        "{\"rule_id\":\"o2\",\"default\":false,\"enabled\":true,"
        "\"actions\":[\"notify\"],\"conditions\":[]}]");
    u.rules[MX_PUSH_CONTENT] = json(pool,
        "[{\"rule_id\":\"cake\",\"default\":false,\"enabled\":true,"
        "\"actions\":[\"notify\"],\"pattern\":\"cake\"}]");
    u.rules[MX_PUSH_ROOM] = json(pool,
        "[{\"rule_id\":\"!r:x\",\"default\":false,\"enabled\":true,"
        "\"actions\":[]}]");
    u.rules[MX_PUSH_SENDER] = json(pool,
        "[{\"rule_id\":\"@s:x\",\"default\":false,\"enabled\":true,"
        "\"actions\":[]}]");
    u.rules[MX_PUSH_UNDERRIDE] = json(pool,
        "[{\"rule_id\":\"u1\",\"default\":false,\"enabled\":true,"
        "\"actions\":[],\"conditions\":[]}]");
    u.changes = json(pool,
        "{\"override/.m.rule.master\":{\"enabled\":true},"
        "\"underride/.m.rule.message\":{\"actions\":[]},"
        "\"override/o2\":{\"enabled\":false,\"actions\":[]},"
        "\"content/.m.rule.master\":{\"enabled\":true}}");

    set = mx_push_ruleset(pool, ALICE, strlen(ALICE), &u);
    assert_non_null(set);

    /* master above the user's overrides, the other defaults below */
    assert_string_equal(ids(pool, set, "override"),
        ".m.rule.master o1 o2 .m.rule.suppress_notices .m.rule.invite_for_me"
        " .m.rule.member_event .m.rule.is_user_mention"
        " .m.rule.contains_display_name .m.rule.is_room_mention"
        " .m.rule.roomnotif .m.rule.tombstone .m.rule.reaction"
        " .m.rule.room.server_acl .m.rule.suppress_edits");
    assert_string_equal(ids(pool, set, "content"),
                        "cake .m.rule.contains_user_name");
    assert_string_equal(ids(pool, set, "room"), "!r:x");
    assert_string_equal(ids(pool, set, "sender"), "@s:x");
    assert_string_equal(ids(pool, set, "underride"),
        "u1 .m.rule.call .m.rule.encrypted_room_one_to_one"
        " .m.rule.room_one_to_one .m.rule.message .m.rule.encrypted");

    /* changes: to defaults and to the user's rules, by kind */
    r = mx_push_find(set, MX_PUSH_OVERRIDE, ".m.rule.master", 14);
    assert_int_equal(mx_json_get(r, "enabled")->type, MX_JSON_TRUE);

    r = mx_push_find(set, MX_PUSH_UNDERRIDE, ".m.rule.message", 15);
    assert_string_equal(enc(pool, mx_json_get(r, "actions")), "[]");
    assert_int_equal(mx_json_get(r, "enabled")->type, MX_JSON_TRUE);

    r = mx_push_find(set, MX_PUSH_OVERRIDE, "o2", 2);
    assert_string_equal(enc(pool, r),
        "{\"actions\":[],\"conditions\":[],\"default\":false,"
        "\"enabled\":false,\"rule_id\":\"o2\"}");

    /* the stored rule itself is left as it was */
    assert_int_equal(mx_json_get(u.rules[MX_PUSH_OVERRIDE]->u.a.v[1],
                                 "enabled")->type, MX_JSON_TRUE);

    assert_null(mx_push_find(set, MX_PUSH_UNDERRIDE, "o1", 2));
    assert_null(mx_push_find(set, MX_PUSH_OVERRIDE, "o", 1));
    assert_non_null(mx_push_find(set, MX_PUSH_ROOM, "!r:x", 4));

    mx_pool_destroy(pool);
}


/* what mx_pushrules_get stored, read back value by value */

#define S(lit)  lit, sizeof(lit) - 1

typedef struct {
    const char  *field;
    const char  *value;             /* NULL: not a string */
    int          rc;                /* what mx_push_user_change says */
} stored_change_t;


static void
test_user_stored(void **state)
{
    static const stored_change_t  changes[] = {
        { "enabled:override/o2", "false", 0 },
        { "actions:override/o2", "[]", 0 },
        { "enabled:override/.m.rule.master", "true", 0 },
        { "actions:underride/.m.rule.message", "[\"notify\"]", 0 },
        { "enabled:room/!r:x", "[]", 1 },
        { "actions:room/!r:x", "false", 1 },
        { "actions:room/!r:x", "[", 1 },
        { "rule:room/!r:x", "{}", 1 },
        { "enabled:", "true", 1 },
        { "enabled:room/!r:x", NULL, 1 },
    };

    mx_pool_t              *pool;
    mx_json_t              *set, *r;
    mx_push_user_t          u;
    size_t                  i;
    const stored_change_t  *c;

    (void) state;

    pool = mx_pool_create(4096);
    memset(&u, 0, sizeof(u));

    /* rules: JSON objects only, in the order given, per kind */
    assert_int_equal(mx_push_user_rule(pool, &u, MX_PUSH_OVERRIDE,
        S("{\"rule_id\":\"o1\",\"default\":false,\"enabled\":true,"
          "\"actions\":[],\"conditions\":[]}")), 0);
    assert_int_equal(mx_push_user_rule(pool, &u, MX_PUSH_OVERRIDE,
        S("[1]")), 1);
    assert_int_equal(mx_push_user_rule(pool, &u, MX_PUSH_OVERRIDE,
        S("{\"rule_id\":")), 1);
    assert_int_equal(mx_push_user_rule(pool, &u, MX_PUSH_OVERRIDE, NULL, 0),
                     1);
    assert_int_equal(mx_push_user_rule(pool, &u, MX_PUSH_KINDS, S("{}")), 1);
    assert_int_equal(mx_push_user_rule(pool, &u, MX_PUSH_OVERRIDE,
        S("{\"rule_id\":\"o2\",\"default\":false,\"enabled\":true,"
          "\"actions\":[\"notify\"],\"conditions\":[]}")), 0);
    assert_int_equal(mx_push_user_rule(pool, &u, MX_PUSH_ROOM,
        S("{\"rule_id\":\"!r:x\",\"default\":false,\"enabled\":true,"
          "\"actions\":[]}")), 0);

    assert_string_equal(enc(pool, u.rules[MX_PUSH_OVERRIDE]),
        "[{\"actions\":[],\"conditions\":[],\"default\":false,"
        "\"enabled\":true,\"rule_id\":\"o1\"},"
        "{\"actions\":[\"notify\"],\"conditions\":[],\"default\":false,"
        "\"enabled\":true,\"rule_id\":\"o2\"}]");
    assert_null(u.rules[MX_PUSH_CONTENT]);
    assert_null(u.changes);

    /* changes: "enabled:" a boolean, "actions:" an array, else skipped */
    for (i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        c = &changes[i];
        assert_int_equal(mx_push_user_change(pool, &u, c->field,
                                             strlen(c->field), c->value,
                                             c->value ? strlen(c->value) : 0),
                         c->rc);
    }

    assert_string_equal(enc(pool, u.changes),
        "{\"override/.m.rule.master\":{\"enabled\":true},"
        "\"override/o2\":{\"actions\":[],\"enabled\":false},"
        "\"underride/.m.rule.message\":{\"actions\":[\"notify\"]}}");

    /* and the merge applies them */
    set = mx_push_ruleset(pool, ALICE, strlen(ALICE), &u);
    assert_non_null(set);

    r = mx_push_find(set, MX_PUSH_OVERRIDE, "o2", 2);
    assert_string_equal(enc(pool, r),
        "{\"actions\":[],\"conditions\":[],\"default\":false,"
        "\"enabled\":false,\"rule_id\":\"o2\"}");
    r = mx_push_find(set, MX_PUSH_OVERRIDE, ".m.rule.master", 14);
    assert_int_equal(mx_json_get(r, "enabled")->type, MX_JSON_TRUE);
    r = mx_push_find(set, MX_PUSH_ROOM, "!r:x", 4);
    assert_int_equal(mx_json_get(r, "enabled")->type, MX_JSON_TRUE);

    mx_pool_destroy(pool);
}

#undef S


static void
test_rule_id(void **state)
{
    mx_push_err_t  err;

    (void) state;

    assert_int_equal(mx_push_rule_id_check(MX_PUSH_OVERRIDE, "nocake", 6,
                                           &err), 0);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_CONTENT, "caf\xc3\xa9", 5,
                                           &err), 0);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_ROOM, "!abc:hs", 7, &err),
                     0);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_ROOM, "!abc", 4, &err), 0);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_SENDER, "@a:hs", 5, &err),
                     0);

    assert_int_equal(mx_push_rule_id_check(MX_PUSH_OVERRIDE, ".m.rule.x", 9,
                                           &err), -1);
    assert_string_equal(err.errcode, "M_INVALID_PARAM");
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_OVERRIDE, ".mine", 5,
                                           &err), -1);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_OVERRIDE, "", 0, &err),
                     -1);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_OVERRIDE, "a/b", 3, &err),
                     -1);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_OVERRIDE, "a\\b", 3,
                                           &err), -1);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_OVERRIDE, "a\nb", 3,
                                           &err), -1);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_OVERRIDE, "\xff", 1, &err),
                     -1);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_ROOM, "abc:hs", 6, &err),
                     -1);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_ROOM, "!", 1, &err), -1);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_SENDER, "alice", 5, &err),
                     -1);
    assert_int_equal(mx_push_rule_id_check(MX_PUSH_SENDER, "@alice", 6,
                                           &err), -1);
    assert_string_equal(err.errcode, "M_INVALID_PARAM");
}


static void
test_actions(void **state)
{
    mx_pool_t      *pool;
    mx_json_t      *out;
    mx_push_err_t   err;

    (void) state;

    pool = mx_pool_create(4096);

    assert_int_equal(mx_push_actions_check(pool, json(pool,
        "[\"notify\",{\"set_tweak\":\"sound\",\"value\":\"bing\"},"
        "{\"set_tweak\":\"highlight\",\"value\":false},\"dont_notify\","
        "\"coalesce\"]"), &out, &err), 0);
    assert_string_equal(enc(pool, out),
        "[\"notify\",{\"set_tweak\":\"sound\",\"value\":\"bing\"},"
        "{\"set_tweak\":\"highlight\",\"value\":false}]");

    /* ["dont_notify"] is [] */
    assert_int_equal(mx_push_actions_check(pool, json(pool,
        "[\"dont_notify\"]"), &out, &err), 0);
    assert_string_equal(enc(pool, out), "[]");

    assert_int_equal(mx_push_actions_check(pool, NULL, &out, &err), -1);
    assert_string_equal(err.errcode, "M_MISSING_PARAM");

    assert_int_equal(mx_push_actions_check(pool, json(pool, "\"notify\""),
                                           &out, &err), -1);
    assert_string_equal(err.errcode, "M_BAD_JSON");

    assert_int_equal(mx_push_actions_check(pool, json(pool, "[\"ring\"]"),
                                           &out, &err), -1);
    assert_string_equal(err.errcode, "M_INVALID_PARAM");

    assert_int_equal(mx_push_actions_check(pool, json(pool, "[1]"),
                                           &out, &err), -1);
    assert_string_equal(err.errcode, "M_BAD_JSON");

    assert_int_equal(mx_push_actions_check(pool, json(pool,
        "[{\"value\":\"x\"}]"), &out, &err), -1);
    assert_string_equal(err.errcode, "M_BAD_JSON");

    assert_int_equal(mx_push_actions_check(pool, json(pool,
        "[{\"set_tweak\":1}]"), &out, &err), -1);

    mx_pool_destroy(pool);
}


static int
make(mx_pool_t *pool, mx_push_kind_t kind, const char *body,
    mx_json_t **rule, mx_push_err_t *err)
{
    return mx_push_rule_make(pool, kind, "r1", 2, json(pool, body), rule,
                             err);
}


static void
test_rule_make(void **state)
{
    mx_pool_t      *pool;
    mx_json_t      *rule;
    mx_push_err_t   err;
    size_t          i;
    const char     *good[] = {
        "{\"actions\":[],\"conditions\":[{\"kind\":\"event_match\","
        "\"key\":\"content.body\",\"pattern\":\"beer\"},"
        "{\"kind\":\"room_member_count\",\"is\":\"<=10\"}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":\"room_member_count\","
        "\"is\":\"2\"},{\"kind\":\"room_member_count\",\"is\":\"==2\"},"
        "{\"kind\":\"room_member_count\",\"is\":\">2\"},"
        "{\"kind\":\"room_member_count\",\"is\":\">=2\"},"
        "{\"kind\":\"room_member_count\",\"is\":\"<2\"}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":\"event_property_is\","
        "\"key\":\"content.x\",\"value\":null},"
        "{\"kind\":\"event_property_is\",\"key\":\"a\",\"value\":5},"
        "{\"kind\":\"event_property_contains\",\"key\":\"a\","
        "\"value\":\"s\"},{\"kind\":\"contains_display_name\"},"
        "{\"kind\":\"sender_notification_permission\",\"key\":\"room\"}]}",
        /* an unknown condition is kept: it never matches */
        "{\"actions\":[],\"conditions\":[{\"kind\":\"org.example.new\","
        "\"x\":[1]}]}",
        NULL
    };
    const char     *bad[] = {
        "{\"actions\":[],\"conditions\":{}}",
        "{\"actions\":[],\"conditions\":[1]}",
        "{\"actions\":[],\"conditions\":[{}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":5}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":\"event_match\","
        "\"key\":\"type\"}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":\"event_match\","
        "\"pattern\":\"x\"}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":\"event_property_is\","
        "\"key\":\"a\",\"value\":[1]}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":\"event_property_is\","
        "\"key\":\"a\",\"value\":1.5}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":\"event_property_is\","
        "\"key\":\"a\",\"value\":9007199254740992}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":"
        "\"event_property_contains\",\"key\":\"a\"}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":\"room_member_count\","
        "\"is\":2}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":\"room_member_count\","
        "\"is\":\"=2\"}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":\"room_member_count\","
        "\"is\":\"<\"}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":\"room_member_count\","
        "\"is\":\"2a\"}]}",
        "{\"actions\":[],\"conditions\":[{\"kind\":"
        "\"sender_notification_permission\"}]}",
        "{\"conditions\":[]}",
        NULL
    };

    (void) state;

    pool = mx_pool_create(4096);

    for (i = 0; good[i]; i++) {
        assert_int_equal(make(pool, MX_PUSH_OVERRIDE, good[i], &rule, &err),
                         0);
    }

    for (i = 0; bad[i]; i++) {
        assert_int_equal(make(pool, MX_PUSH_UNDERRIDE, bad[i], &rule, &err),
                         -1);
        assert_non_null(err.errcode);
    }

    /* conditions default to [], enabled, not default; extra keys dropped */
    assert_int_equal(make(pool, MX_PUSH_OVERRIDE,
                          "{\"actions\":[\"notify\"],\"pattern\":\"x\","
                          "\"enabled\":false,\"default\":true}",
                          &rule, &err), 0);
    assert_string_equal(enc(pool, rule),
        "{\"actions\":[\"notify\"],\"conditions\":[],\"default\":false,"
        "\"enabled\":true,\"rule_id\":\"r1\"}");

    /* content: a pattern, no conditions */
    assert_int_equal(make(pool, MX_PUSH_CONTENT,
                          "{\"actions\":[],\"pattern\":\"cake*lie\","
                          "\"conditions\":[]}", &rule, &err), 0);
    assert_string_equal(enc(pool, rule),
        "{\"actions\":[],\"default\":false,\"enabled\":true,"
        "\"pattern\":\"cake*lie\",\"rule_id\":\"r1\"}");

    assert_int_equal(make(pool, MX_PUSH_CONTENT, "{\"actions\":[]}", &rule,
                          &err), -1);
    assert_string_equal(err.errcode, "M_MISSING_PARAM");
    assert_int_equal(make(pool, MX_PUSH_CONTENT,
                          "{\"actions\":[],\"pattern\":1}", &rule, &err), -1);
    assert_string_equal(err.errcode, "M_BAD_JSON");

    /* room and sender: actions only */
    assert_int_equal(make(pool, MX_PUSH_ROOM,
                          "{\"actions\":[\"dont_notify\"],"
                          "\"conditions\":[5]}", &rule, &err), 0);
    assert_string_equal(enc(pool, rule),
        "{\"actions\":[],\"default\":false,\"enabled\":true,"
        "\"rule_id\":\"r1\"}");

    assert_int_equal(make(pool, MX_PUSH_SENDER, "{}", &rule, &err), -1);
    assert_string_equal(err.errcode, "M_MISSING_PARAM");

    assert_int_equal(mx_push_rule_make(pool, MX_PUSH_SENDER, "r1", 2,
                                       json(pool, "[]"), &rule, &err), -1);

    mx_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_defaults_complete),
        cmocka_unit_test(test_defaults_exact),
        cmocka_unit_test(test_defaults_user),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_user_stored),
        cmocka_unit_test(test_rule_id),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_rule_make),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

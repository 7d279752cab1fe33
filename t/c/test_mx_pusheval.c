/*
 * core/mx_pusheval: glob matching (whole values and words of a body, the
 * spec's examples), dot-separated paths, each condition kind, and the
 * server-default rules deciding for the usual events: messages, one to
 * one rooms, mentions by name, display name, m.mentions and @room, notices,
 * member events, reactions, edits (the same with the shared template,
 * its placeholders filled from the context); the user's own rules above
 * them.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <mx_pusheval.h>

#include "mx_test_json.h"


#define ALICE  "@alice:example.org"
#define BOB    "@bob:example.org"
#define ROOM   "!room:example.org"


#define json(pool, text)  mx_test_json(pool, text)


static int
glob(mx_pool_t *pool, const char *pattern, const char *s, unsigned flags)
{
    return mx_push_glob(pool, pattern, strlen(pattern), s, strlen(s), flags);
}


static void
test_glob(void **state)
{
    mx_pool_t  *pool;
    char        big[4001], pat[201];

    (void) state;

    pool = mx_pool_create(4096);

    /* the spec's event_match example */
    assert_int_equal(glob(pool, "lunc?*", "Lunch plans", MX_GLOB_WHOLE), 1);
    assert_int_equal(glob(pool, "lunc?*", "LUNCH", MX_GLOB_WHOLE), 1);
    assert_int_equal(glob(pool, "lunc?*", " lunch", MX_GLOB_WHOLE), 0);
    assert_int_equal(glob(pool, "lunc?*", "lunc", MX_GLOB_WHOLE), 0);
    assert_int_equal(glob(pool, "m.room.message", "m.room.message",
                          MX_GLOB_WHOLE), 1);
    assert_int_equal(glob(pool, "m.room.message", "m.room.messages",
                          MX_GLOB_WHOLE), 0);
    assert_int_equal(glob(pool, "", "", MX_GLOB_WHOLE), 1);
    assert_int_equal(glob(pool, "", "x", MX_GLOB_WHOLE), 0);
    assert_int_equal(glob(pool, "*", "", MX_GLOB_WHOLE), 1);
    assert_int_equal(glob(pool, "a**b", "ab", MX_GLOB_WHOLE), 1);

    /* and the content.body one: words */
    assert_int_equal(glob(pool, "ex*ple", "An example event.", MX_GLOB_WORDS),
                     1);
    assert_int_equal(glob(pool, "ex*ple", "exple", MX_GLOB_WORDS), 1);
    assert_int_equal(glob(pool, "ex*ple", "An exciting triple-whammy",
                          MX_GLOB_WORDS), 1);
    assert_int_equal(glob(pool, "ex*ple", "An examples", MX_GLOB_WORDS), 0);
    assert_int_equal(glob(pool, "ex*ple", "Texample", MX_GLOB_WORDS), 0);
    assert_int_equal(glob(pool, "alice", "hey @alice:example.org",
                          MX_GLOB_WORDS), 1);
    assert_int_equal(glob(pool, "alice", "Alice?", MX_GLOB_WORDS), 1);
    assert_int_equal(glob(pool, "alice", "malice", MX_GLOB_WORDS), 0);
    assert_int_equal(glob(pool, "alice", "alice_b", MX_GLOB_WORDS), 0);
    assert_int_equal(glob(pool, "@room", "hi @room!", MX_GLOB_WORDS), 1);
    assert_int_equal(glob(pool, "@room", "x@room", MX_GLOB_WORDS), 0);

    /* '?' is one character, not one byte */
    assert_int_equal(glob(pool, "caf?", "caf\xc3\xa9", MX_GLOB_WHOLE), 1);
    assert_int_equal(glob(pool, "caf??", "caf\xc3\xa9", MX_GLOB_WHOLE), 0);

    /* literal: a display name with glob characters in it */
    assert_int_equal(glob(pool, "A*b", "say a*B now",
                          MX_GLOB_WORDS | MX_GLOB_LITERAL), 1);
    assert_int_equal(glob(pool, "A*b", "say Axxb now",
                          MX_GLOB_WORDS | MX_GLOB_LITERAL), 0);
    assert_int_equal(glob(pool, "Alice Liddell", "hi Alice Liddell.",
                          MX_GLOB_WORDS | MX_GLOB_LITERAL), 1);

    /* many stars against a long value: no backtracking blow-up */
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memset(pat, '*', sizeof(pat) - 1);
    pat[sizeof(pat) - 1] = '\0';
    pat[sizeof(pat) - 2] = 'b';
    pat[0] = 'a';
    assert_int_equal(glob(pool, pat, big, MX_GLOB_WHOLE), 0);
    assert_int_equal(glob(pool, pat, big, MX_GLOB_WORDS), 0);
    big[sizeof(big) - 2] = 'b';
    assert_int_equal(glob(pool, pat, big, MX_GLOB_WHOLE), 1);

    mx_pool_destroy(pool);
}


static const mx_json_t *
path(const mx_json_t *ev, const char *p)
{
    return mx_push_path(ev, p, strlen(p));
}


static void
test_path(void **state)
{
    mx_pool_t         *pool;
    mx_json_t         *ev;
    const mx_json_t   *v;

    (void) state;

    pool = mx_pool_create(4096);
    ev = json(pool, "{\"content\":{\"m.relates_to\":{\"rel_type\":"
                    "\"m.thread\"},\"m\\\\foo\":1,\"a\":{\"b\":{\"c\":true}}},"
                    "\"type\":\"x\"}");

    v = path(ev, "type");
    assert_true(mx_json_is(v, MX_JSON_STRING));

    v = path(ev, "content.m\\.relates_to.rel_type");
    assert_non_null(v);
    assert_string_equal(v->u.s.p, "m.thread");

    v = path(ev, "content.m\\\\foo");
    assert_true(mx_json_is(v, MX_JSON_INT));

    assert_null(path(ev, "content.m.relates_to.rel_type"));
    assert_true(mx_json_is(path(ev, "content.a.b.c"), MX_JSON_TRUE));
    assert_null(path(ev, "content.a.b.c.d"));
    assert_null(path(ev, "nope"));

    mx_pool_destroy(pool);
}


/* the verdict of alice's rules on an event: "" (nothing), "notify" or
 * "highlight" */

static const char *
verdict(mx_pool_t *pool, const mx_json_t *set, const char *event,
    mx_push_ctx_t *ctx)
{
    mx_push_match_t  m;

    assert_int_equal(mx_push_eval(pool, set, json(pool, event), ctx, &m), 0);

    if (m.highlight && m.notify) {
        return "highlight";
    }

    return m.notify ? "notify" : "";
}


#define MSG(body)                                                            \
    "{\"type\":\"m.room.message\",\"sender\":\"" BOB "\",\"room_id\":\""     \
    ROOM "\",\"content\":{\"msgtype\":\"m.text\",\"body\":\"" body "\"}}"


static void
test_defaults(void **state)
{
    mx_pool_t       *pool;
    mx_json_t       *set;
    mx_push_ctx_t    ctx;
    mx_push_match_t  m;

    pool = mx_pool_create(4096);
    set = state && *state ? mx_push_template(pool)
                          : mx_push_defaults(pool, ALICE, strlen(ALICE));
    assert_non_null(set);

    memset(&ctx, 0, sizeof(ctx));
    ctx.user_id = ALICE;
    ctx.room_id = ROOM;
    ctx.display_name = "Alice Liddell";
    ctx.member_count = 3;
    ctx.sender_level = 0;

    assert_string_equal(verdict(pool, set, MSG("hello"), &ctx), "notify");

    /* which rule: .m.rule.message, with its actions */
    assert_int_equal(mx_push_eval(pool, set, json(pool, MSG("hello")), &ctx,
                                  &m), 0);
    assert_string_equal(mx_json_get_str(m.rule, "rule_id", NULL),
                        ".m.rule.message");

    ctx.member_count = 2;
    assert_int_equal(mx_push_eval(pool, set, json(pool, MSG("hello")), &ctx,
                                  &m), 0);
    assert_string_equal(mx_json_get_str(m.rule, "rule_id", NULL),
                        ".m.rule.room_one_to_one");
    ctx.member_count = 3;

    /* mentions: the localpart, the display name, m.mentions, @room */
    assert_string_equal(verdict(pool, set, MSG("ping alice!"), &ctx),
                        "highlight");
    assert_string_equal(verdict(pool, set, MSG("ping @alice:example.org"),
                                &ctx), "highlight");
    assert_string_equal(verdict(pool, set, MSG("malice"), &ctx), "notify");
    assert_string_equal(verdict(pool, set, MSG("hi alice liddell"), &ctx),
                        "highlight");
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"m.room.message\",\"sender\":\"" BOB "\",\"content\":{"
        "\"body\":\"hi Alice Liddell\",\"m.mentions\":{}}}", &ctx),
        "notify");
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"m.room.message\",\"sender\":\"" BOB "\",\"content\":{"
        "\"body\":\"hi\",\"m.mentions\":{\"user_ids\":[\"" ALICE "\"]}}}",
        &ctx), "highlight");

    assert_string_equal(verdict(pool, set, MSG("@room look"), &ctx),
                        "notify");
    ctx.sender_level = 50;
    assert_string_equal(verdict(pool, set, MSG("@room look"), &ctx),
                        "highlight");
    ctx.sender_level = 10;
    ctx.notifications = json(pool, "{\"room\":10}");
    assert_string_equal(verdict(pool, set, MSG("@room look"), &ctx),
                        "highlight");
    ctx.notifications = json(pool, "{\"room\":100}");
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"m.room.message\",\"sender\":\"" BOB "\",\"content\":{"
        "\"body\":\"hi\",\"m.mentions\":{\"room\":true}}}", &ctx), "notify");
    ctx.notifications = NULL;
    ctx.sender_level = 0;

    /* what the defaults keep quiet */
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"m.room.message\",\"sender\":\"" BOB "\",\"content\":{"
        "\"msgtype\":\"m.notice\",\"body\":\"alice\"}}", &ctx), "");
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"m.room.member\",\"sender\":\"" BOB "\",\"state_key\":\""
        BOB "\",\"content\":{\"membership\":\"join\"}}", &ctx), "");
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"m.room.member\",\"sender\":\"" BOB "\",\"state_key\":\""
        ALICE "\",\"content\":{\"membership\":\"invite\"}}", &ctx), "notify");
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"m.reaction\",\"sender\":\"" BOB "\",\"content\":{}}",
        &ctx), "");
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"m.room.message\",\"sender\":\"" BOB "\",\"content\":{"
        "\"body\":\"* fixed\",\"m.relates_to\":{\"rel_type\":\"m.replace\","
        "\"event_id\":\"$x\"}}}", &ctx), "");
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"org.example.custom\",\"sender\":\"" BOB "\","
        "\"content\":{}}", &ctx), "");
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"m.room.tombstone\",\"sender\":\"" BOB "\","
        "\"state_key\":\"\",\"content\":{}}", &ctx), "highlight");
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"m.room.encrypted\",\"sender\":\"" BOB "\","
        "\"content\":{}}", &ctx), "notify");

    mx_pool_destroy(pool);
}


static void
test_user_rules(void **state)
{
    mx_pool_t       *pool;
    mx_json_t       *set;
    mx_push_ctx_t    ctx;
    mx_push_user_t   u;

    (void) state;

    pool = mx_pool_create(4096);
    memset(&ctx, 0, sizeof(ctx));
    ctx.user_id = ALICE;
    ctx.room_id = ROOM;
    ctx.member_count = 3;

    /* a room rule: the room's messages are quiet, mentions still not */
    memset(&u, 0, sizeof(u));
    u.rules[MX_PUSH_ROOM] = json(pool,
        "[{\"rule_id\":\"" ROOM "\",\"default\":false,\"enabled\":true,"
        "\"actions\":[]}]");
    set = mx_push_ruleset(pool, ALICE, strlen(ALICE), &u);
    assert_string_equal(verdict(pool, set, MSG("hello"), &ctx), "");
    assert_string_equal(verdict(pool, set, MSG("hello alice"), &ctx),
                        "highlight");

    /* an override for the room: nothing at all */
    memset(&u, 0, sizeof(u));
    u.rules[MX_PUSH_OVERRIDE] = json(pool,
        "[{\"rule_id\":\"mute\",\"default\":false,\"enabled\":true,"
        "\"actions\":[],\"conditions\":[{\"kind\":\"event_match\","
        "\"key\":\"room_id\",\"pattern\":\"" ROOM "\"}]}]");
    set = mx_push_ruleset(pool, ALICE, strlen(ALICE), &u);
    assert_string_equal(verdict(pool, set, MSG("hello alice"), &ctx), "");
    ctx.room_id = "!other:example.org";
    assert_string_equal(verdict(pool, set,
        "{\"type\":\"m.room.message\",\"sender\":\"" BOB "\",\"room_id\":"
        "\"!other:example.org\",\"content\":{\"body\":\"hi\"}}", &ctx),
        "notify");
    ctx.room_id = ROOM;

    /* disabled, it decides nothing */
    u.changes = json(pool, "{\"override/mute\":{\"enabled\":false}}");
    set = mx_push_ruleset(pool, ALICE, strlen(ALICE), &u);
    assert_string_equal(verdict(pool, set, MSG("hello"), &ctx), "notify");

    /* a sender rule, a content rule with a sound, the master switch */
    memset(&u, 0, sizeof(u));
    u.rules[MX_PUSH_SENDER] = json(pool,
        "[{\"rule_id\":\"" BOB "\",\"default\":false,\"enabled\":true,"
        "\"actions\":[\"notify\",{\"set_tweak\":\"highlight\"}]}]");
    u.rules[MX_PUSH_CONTENT] = json(pool,
        "[{\"rule_id\":\"cake\",\"default\":false,\"enabled\":true,"
        "\"actions\":[],\"pattern\":\"cake*lie\"}]");
    set = mx_push_ruleset(pool, ALICE, strlen(ALICE), &u);
    assert_string_equal(verdict(pool, set, MSG("hello"), &ctx), "highlight");
    assert_string_equal(verdict(pool, set, MSG("the cake is a lie"), &ctx),
                        "");
    u.changes = json(pool, "{\"override/.m.rule.master\":{\"enabled\":true}}");
    set = mx_push_ruleset(pool, ALICE, strlen(ALICE), &u);
    assert_string_equal(verdict(pool, set, MSG("hello alice"), &ctx), "");

    /* highlight false is no highlight; an unknown condition never matches */
    memset(&u, 0, sizeof(u));
    u.rules[MX_PUSH_OVERRIDE] = json(pool,
        "[{\"rule_id\":\"x\",\"default\":false,\"enabled\":true,"
        "\"actions\":[\"notify\"],\"conditions\":[{\"kind\":\"org.nope\"}]},"
        "{\"rule_id\":\"y\",\"default\":false,\"enabled\":true,"
        "\"actions\":[\"notify\",{\"set_tweak\":\"highlight\","
        "\"value\":false}],\"conditions\":[{\"kind\":\"event_match\","
        "\"key\":\"content.body\",\"pattern\":\"tea\"}]}]");
    set = mx_push_ruleset(pool, ALICE, strlen(ALICE), &u);
    assert_string_equal(verdict(pool, set, MSG("time for tea, alice"), &ctx),
                        "notify");

    mx_pool_destroy(pool);
}


static void
test_conditions(void **state)
{
    mx_pool_t       *pool;
    mx_json_t       *set;
    mx_push_ctx_t    ctx;
    mx_push_user_t   u;
    size_t           i;
    int              got;

    static const struct {
        const char  *cond;
        const char  *event;
        int          match;
    } cases[] = {
        { "{\"kind\":\"room_member_count\",\"is\":\"3\"}", MSG("x"), 1 },
        { "{\"kind\":\"room_member_count\",\"is\":\"==3\"}", MSG("x"), 1 },
        { "{\"kind\":\"room_member_count\",\"is\":\"<3\"}", MSG("x"), 0 },
        { "{\"kind\":\"room_member_count\",\"is\":\"<=3\"}", MSG("x"), 1 },
        { "{\"kind\":\"room_member_count\",\"is\":\">2\"}", MSG("x"), 1 },
        { "{\"kind\":\"room_member_count\",\"is\":\">=4\"}", MSG("x"), 0 },
        { "{\"kind\":\"room_member_count\",\"is\":\"three\"}", MSG("x"), 0 },
        { "{\"kind\":\"room_member_count\",\"is\":\"<\"}", MSG("x"), 0 },
        { "{\"kind\":\"event_property_is\",\"key\":\"content.n\","
          "\"value\":1}", "{\"content\":{\"n\":1}}", 1 },
        { "{\"kind\":\"event_property_is\",\"key\":\"content.n\","
          "\"value\":1}", "{\"content\":{\"n\":\"1\"}}", 0 },
        { "{\"kind\":\"event_property_is\",\"key\":\"content.n\","
          "\"value\":null}", "{\"content\":{\"n\":null}}", 1 },
        { "{\"kind\":\"event_property_is\",\"key\":\"content.n\","
          "\"value\":null}", "{\"content\":{}}", 0 },
        { "{\"kind\":\"event_property_contains\",\"key\":\"content.a\","
          "\"value\":\"#r:x\"}", "{\"content\":{\"a\":[1,\"#r:x\"]}}", 1 },
        { "{\"kind\":\"event_property_contains\",\"key\":\"content.a\","
          "\"value\":\":x\"}", "{\"content\":{\"a\":[\"#r:x\"]}}", 0 },
        { "{\"kind\":\"event_property_contains\",\"key\":\"content.a\","
          "\"value\":\"x\"}", "{\"content\":{\"a\":\"x\"}}", 0 },
        { "{\"kind\":\"event_match\",\"key\":\"content.topic\","
          "\"pattern\":\"*\"}", "{\"content\":{\"topic\":null}}", 0 },
        { "{\"kind\":\"event_match\",\"key\":\"content.topic\","
          "\"pattern\":\"*\"}", "{\"content\":{}}", 0 },
        { "{\"kind\":\"event_match\",\"key\":\"content.topic\","
          "\"pattern\":\"lunch\"}", "{\"content\":{\"topic\":\"lunch x\"}}",
          0 },
        { "{\"kind\":\"contains_display_name\"}", MSG("Hi Alice L"), 0 },
        { "{\"kind\":\"contains_display_name\"}", MSG("Hi Alice L."), 1 },
    };

    (void) state;

    pool = mx_pool_create(4096);
    memset(&ctx, 0, sizeof(ctx));
    ctx.user_id = ALICE;
    ctx.room_id = ROOM;
    ctx.member_count = 3;
    ctx.display_name = "alice l.";

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char  rules[1024];

        snprintf(rules, sizeof(rules),
                 "[{\"rule_id\":\"c\",\"default\":false,\"enabled\":true,"
                 "\"actions\":[\"notify\",{\"set_tweak\":\"highlight\"}],"
                 "\"conditions\":[%s]}]", cases[i].cond);

        memset(&u, 0, sizeof(u));
        u.rules[MX_PUSH_OVERRIDE] = json(pool, rules);
        set = mx_push_ruleset(pool, "@zed:example.org", 16, &u);
        assert_non_null(set);

        got = strcmp(verdict(pool, set, cases[i].event, &ctx), "highlight")
              == 0;
        if (got != cases[i].match) {
            fail_msg("case %zu: %s should%s match", i, cases[i].cond,
                     cases[i].match ? "" : " not");
        }
    }

    mx_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test_prestate(test_defaults, (void *) "template"),
        cmocka_unit_test(test_user_rules),
        cmocka_unit_test(test_conditions),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

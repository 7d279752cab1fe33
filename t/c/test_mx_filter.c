/*
 * core/mx_filter: filters are checked field by field against the spec's
 * schema, read into the struct /sync uses, and the matchers say which
 * events pass (types with '*' wildcards, senders, rooms, contains_url).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <mx_filter.h>


static mx_pool_t  *pool;


static int
setup(void **state)
{
    (void) state;
    pool = mx_pool_create(4096);
    return pool ? 0 : -1;
}


static int
teardown(void **state)
{
    (void) state;
    mx_pool_destroy(pool);
    return 0;
}


static int
parse(const char *text, mx_filter_t *f, char *err)
{
    mx_json_error_t   jerr;
    mx_json_t        *v;

    v = mx_json_parse(pool, text, strlen(text), &jerr);
    assert_non_null(v);

    return mx_filter_parse(pool, v, f, err, 160);
}


#define MATCH(p, t)                                                          \
    mx_filter_type_match(p, strlen(p), t, strlen(t))


static void
test_spec_example(void **state)
{
    mx_filter_t  f;
    char         err[160];

    (void) state;

    assert_int_equal(parse(
        "{\"room\":{\"state\":{\"types\":[\"m.room.*\"],"
        "\"not_rooms\":[\"!726s6s6q:example.com\"]},"
        "\"timeline\":{\"limit\":10,\"types\":[\"m.room.message\"],"
        "\"not_rooms\":[\"!726s6s6q:example.com\"],"
        "\"not_senders\":[\"@spam:example.com\"]},"
        "\"ephemeral\":{\"types\":[\"m.receipt\",\"m.typing\"],"
        "\"not_rooms\":[\"!726s6s6q:example.com\"],"
        "\"not_senders\":[\"@spam:example.com\"]}},"
        "\"presence\":{\"types\":[\"m.presence\"],"
        "\"not_senders\":[\"@alice:example.com\"]},"
        "\"event_format\":\"client\","
        "\"event_fields\":[\"type\",\"content\",\"sender\"]}", &f, err), 0);

    assert_int_equal(f.event_format, MX_FILTER_CLIENT);
    assert_true(f.event_fields.set);
    assert_int_equal(f.event_fields.n, 3);
    assert_memory_equal(f.event_fields.v[2].p, "sender", 6);

    assert_int_equal(f.room.timeline.limit, 10);
    assert_int_equal(f.room.state.limit, 0);
    assert_true(f.room.state.types.set);
    assert_int_equal(f.room.state.not_rooms.n, 1);
    assert_int_equal(f.room.ephemeral.types.n, 2);
    assert_int_equal(f.room.timeline.contains_url, -1);
    assert_false(f.room.rooms.set);
    assert_false(f.room.include_leave);
    assert_false(f.room.account_data.types.set);
    assert_int_equal(f.presence.not_senders.n, 1);
    assert_false(f.account_data.types.set);

    /* what the example lets through */
    assert_true(mx_filter_allows_type(&f.room.state, "m.room.member", 13));
    assert_false(mx_filter_allows_type(&f.room.state, "m.space.child", 13));
    assert_true(mx_filter_allows_event(&f.room.timeline, "m.room.message",
                                       14, "@bob:example.com", 16,
                                       "!other:example.com", 18, 0));
    assert_false(mx_filter_allows_event(&f.room.timeline, "m.room.message",
                                        14, "@spam:example.com", 17,
                                        "!other:example.com", 18, 0));
    assert_false(mx_filter_allows_event(&f.room.timeline, "m.room.message",
                                        14, "@bob:example.com", 16,
                                        "!726s6s6q:example.com", 21, 0));
    assert_false(mx_filter_allows_event(&f.room.timeline, "m.room.topic",
                                        12, "@bob:example.com", 16,
                                        "!other:example.com", 18, 0));
}


static void
test_every_field(void **state)
{
    mx_filter_t  f;
    char         err[160];

    (void) state;

    assert_int_equal(parse(
        "{\"event_format\":\"federation\",\"event_fields\":[],"
        "\"account_data\":{\"limit\":1,\"types\":[],\"not_types\":[\"x\"],"
        "\"senders\":[\"@a:b\"]},"
        "\"room\":{\"rooms\":[\"!a:b\",\"!c\"],\"not_rooms\":[],"
        "\"include_leave\":true,"
        "\"state\":{\"lazy_load_members\":true,"
        "\"include_redundant_members\":true},"
        "\"timeline\":{\"contains_url\":false,"
        "\"unread_thread_notifications\":true,\"limit\":9007199254740991},"
        "\"account_data\":{\"contains_url\":true,\"rooms\":[\"!x\"]}},"
        "\"org.example.unknown\":{\"anything\":[1.5]}}", &f, err), 0);

    assert_int_equal(f.event_format, MX_FILTER_FEDERATION);
    assert_true(f.event_fields.set);
    assert_int_equal(f.event_fields.n, 0);
    assert_int_equal(f.account_data.limit, 1);
    assert_true(f.account_data.types.set);
    assert_int_equal(f.account_data.types.n, 0);
    assert_int_equal(f.room.rooms.n, 2);
    assert_true(f.room.not_rooms.set);
    assert_true(f.room.include_leave);
    assert_true(f.room.state.lazy_load_members);
    assert_true(f.room.state.include_redundant_members);
    assert_false(f.room.timeline.lazy_load_members);
    assert_int_equal(f.room.timeline.contains_url, 0);
    assert_true(f.room.timeline.unread_thread_notifications);
    assert_int_equal(f.room.timeline.limit, 9007199254740991LL);
    assert_int_equal(f.room.account_data.contains_url, 1);
    assert_int_equal(f.room.account_data.rooms.n, 1);

    /* "types": [] lets nothing through */
    assert_false(mx_filter_allows_type(&f.account_data, "m.direct", 8));

    /* {} and no filter at all mean the same */
    assert_int_equal(parse("{}", &f, err), 0);
    assert_int_equal(f.event_format, MX_FILTER_CLIENT);
    assert_false(f.event_fields.set);
    assert_int_equal(f.room.timeline.contains_url, -1);
    assert_true(mx_filter_allows_event(&f.room.timeline, "a", 1, "@s:x", 4,
                                       "!r", 2, 1));
}


static void
test_refused(void **state)
{
    mx_filter_t  f;
    char         err[160];
    size_t       i;
    static const struct {
        const char  *json;
        const char  *err;
    } bad[] = {
        { "[]", "The filter must be an object" },
        { "{\"event_fields\":\"type\"}",
          "event_fields must be an array of strings" },
        { "{\"event_fields\":[\"type\",1]}",
          "event_fields must be an array of strings" },
        { "{\"event_format\":\"raw\"}",
          "event_format must be \"client\" or \"federation\"" },
        { "{\"event_format\":null}",
          "event_format must be \"client\" or \"federation\"" },
        { "{\"presence\":[]}", "presence must be an object" },
        { "{\"presence\":{\"limit\":0}}",
          "presence.limit must be an integer greater than 0" },
        { "{\"presence\":{\"limit\":-5}}",
          "presence.limit must be an integer greater than 0" },
        { "{\"presence\":{\"limit\":2.5}}",
          "presence.limit must be an integer greater than 0" },
        { "{\"presence\":{\"limit\":\"10\"}}",
          "presence.limit must be an integer greater than 0" },
        { "{\"presence\":{\"types\":\"m.presence\"}}",
          "presence.types must be an array of strings" },
        { "{\"presence\":{\"not_types\":[null]}}",
          "presence.not_types must be an array of strings" },
        { "{\"presence\":{\"senders\":[\"alice\"]}}",
          "presence.senders must hold user IDs" },
        { "{\"presence\":{\"not_senders\":[\"@alice\"]}}",
          "presence.not_senders must hold user IDs" },
        { "{\"account_data\":{\"limit\":true}}",
          "account_data.limit must be an integer greater than 0" },
        { "{\"room\":true}", "room must be an object" },
        { "{\"room\":{\"rooms\":[\"#alias:hs\"]}}",
          "room.rooms must hold room IDs" },
        { "{\"room\":{\"not_rooms\":\"!a:b\"}}",
          "room.not_rooms must be an array of strings" },
        { "{\"room\":{\"include_leave\":\"yes\"}}",
          "room.include_leave must be a boolean" },
        { "{\"room\":{\"timeline\":5}}", "room.timeline must be an object" },
        { "{\"room\":{\"timeline\":{\"limit\":-1}}}",
          "room.timeline.limit must be an integer greater than 0" },
        { "{\"room\":{\"state\":{\"lazy_load_members\":1}}}",
          "room.state.lazy_load_members must be a boolean" },
        { "{\"room\":{\"state\":{\"include_redundant_members\":null}}}",
          "room.state.include_redundant_members must be a boolean" },
        { "{\"room\":{\"timeline\":{\"unread_thread_notifications\":\"t\"}}}",
          "room.timeline.unread_thread_notifications must be a boolean" },
        { "{\"room\":{\"ephemeral\":{\"contains_url\":0}}}",
          "room.ephemeral.contains_url must be a boolean" },
        { "{\"room\":{\"ephemeral\":{\"rooms\":[1]}}}",
          "room.ephemeral.rooms must be an array of strings" },
        { "{\"room\":{\"account_data\":{\"not_rooms\":[\"x\"]}}}",
          "room.account_data.not_rooms must hold room IDs" },
        { "{\"room\":{\"account_data\":{\"types\":{}}}}",
          "room.account_data.types must be an array of strings" },
        { "{\"room\":{\"state\":{\"senders\":[\"@a:b\", 2]}}}",
          "room.state.senders must be an array of strings" },
        { NULL, NULL }
    };

    (void) state;

    for (i = 0; bad[i].json; i++) {
        err[0] = '\0';
        assert_int_equal(parse(bad[i].json, &f, err), -1);
        assert_string_equal(err, bad[i].err);
    }
}


static void
test_wildcards(void **state)
{
    (void) state;

    assert_true(MATCH("m.room.message", "m.room.message"));
    assert_false(MATCH("m.room.message", "m.room.messages"));
    assert_false(MATCH("m.room.messages", "m.room.message"));
    assert_false(MATCH("m.room.message", "M.room.message"));
    assert_true(MATCH("*", "m.room.message"));
    assert_true(MATCH("*", ""));
    assert_true(MATCH("m.*", "m.room.member"));
    assert_true(MATCH("m.*", "m."));
    assert_false(MATCH("m.*", "m"));
    assert_false(MATCH("m.*", "org.m.x"));
    assert_true(MATCH("*.member", "m.room.member"));
    assert_false(MATCH("*.member", "m.room.members"));
    assert_true(MATCH("m.*.member", "m.room.member"));
    assert_true(MATCH("m.*.member", "m.a.b.member"));
    assert_false(MATCH("m.*.member", "m.member"));
    assert_true(MATCH("a*b*c", "abc"));
    assert_true(MATCH("a*b*c", "aXbYbZc"));
    assert_false(MATCH("a*b*c", "aXbYbZ"));
    assert_true(MATCH("**", "x"));
    assert_true(MATCH("*a", "aaaa"));
    assert_false(MATCH("*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
    assert_true(MATCH("", ""));
    assert_false(MATCH("", "x"));

    /* only '*' is special: '?' and '.' are themselves */
    assert_false(MATCH("m.room.?", "m.room.x"));
    assert_true(MATCH("m.room.?", "m.room.?"));
    assert_false(MATCH("m.room.member", "mXroomXmember"));
}


static void
test_lists(void **state)
{
    mx_filter_t  f;
    char         err[160];

    (void) state;

    assert_int_equal(parse(
        "{\"room\":{\"rooms\":[\"!a\",\"!b\"],\"not_rooms\":[\"!b\"],"
        "\"timeline\":{\"types\":[\"m.room.*\",\"m.reaction\"],"
        "\"not_types\":[\"m.room.member\",\"*.redaction\"],"
        "\"senders\":[\"@a:x\",\"@b:x\"],\"not_senders\":[\"@b:x\"],"
        "\"contains_url\":true}}}", &f, err), 0);

    /* types: wildcards; not_types wins */
    assert_true(mx_filter_allows_type(&f.room.timeline, "m.room.message",
                                      14));
    assert_true(mx_filter_allows_type(&f.room.timeline, "m.reaction", 10));
    assert_false(mx_filter_allows_type(&f.room.timeline, "m.room.member",
                                       13));
    assert_false(mx_filter_allows_type(&f.room.timeline, "m.room.redaction",
                                       16));
    assert_false(mx_filter_allows_type(&f.room.timeline, "m.typing", 8));
    assert_true(mx_filter_list_match_type(&f.room.timeline.not_types,
                                          "x.redaction", 11));

    /* senders: exact, no wildcards; not_senders wins */
    assert_true(mx_filter_allows_sender(&f.room.timeline, "@a:x", 4));
    assert_false(mx_filter_allows_sender(&f.room.timeline, "@b:x", 4));
    assert_false(mx_filter_allows_sender(&f.room.timeline, "@c:x", 4));
    assert_false(mx_filter_allows_sender(&f.room.timeline, "@a:xy", 5));
    assert_true(mx_filter_list_has(&f.room.timeline.senders, "@b:x", 4));

    /* rooms of the RoomFilter */
    assert_true(mx_filter_allows_room(&f.room.rooms, &f.room.not_rooms,
                                      "!a", 2));
    assert_false(mx_filter_allows_room(&f.room.rooms, &f.room.not_rooms,
                                       "!b", 2));
    assert_false(mx_filter_allows_room(&f.room.rooms, &f.room.not_rooms,
                                       "!c", 2));

    /* contains_url */
    assert_true(mx_filter_allows_event(&f.room.timeline, "m.room.message",
                                       14, "@a:x", 4, NULL, 0, 1));
    assert_false(mx_filter_allows_event(&f.room.timeline, "m.room.message",
                                        14, "@a:x", 4, NULL, 0, 0));
    f.room.timeline.contains_url = 0;
    assert_true(mx_filter_allows_event(&f.room.timeline, "m.room.message",
                                       14, "@a:x", 4, NULL, 0, 0));
    assert_false(mx_filter_allows_event(&f.room.timeline, "m.room.message",
                                        14, "@a:x", 4, NULL, 0, 1));

    /* no room or sender given: not checked */
    assert_true(mx_filter_allows_event(&f.room.timeline, "m.room.message",
                                       14, NULL, 0, NULL, 0, 0));
}


/* event_fields: the paths kept, nested objects rebuilt, escapes */

static void
test_event_fields(void **state)
{
    mx_filter_t       f;
    char              err[160];
    mx_json_error_t   jerr;
    const char       *text;
    mx_json_t        *ev, *out;
    size_t            len;

    (void) state;

    text = "{\"type\":\"m.room.message\",\"sender\":\"@a:x\","
           "\"event_id\":\"$e\",\"content\":{\"body\":\"hi\","
           "\"msgtype\":\"m.text\",\"m.new\":{\"a\":1}},"
           "\"unsigned\":{\"age\":5}}";
    ev = mx_json_parse(pool, text, strlen(text), &jerr);
    assert_non_null(ev);

    /* none given: the event itself */
    assert_int_equal(parse("{}", &f, err), 0);
    assert_ptr_equal(mx_filter_event_fields(pool, ev, &f.event_fields), ev);

    assert_int_equal(parse(
        "{\"event_fields\":[\"type\",\"content.body\",\"content.m\\\\.new.a\","
        "\"content.body.x\",\"nope\",\"unsigned.nope\"]}", &f, err), 0);
    out = mx_filter_event_fields(pool, ev, &f.event_fields);
    assert_non_null(out);
    assert_string_equal(mx_json_encode(pool, out, 0, &len),
        "{\"content\":{\"body\":\"hi\",\"m.new\":{\"a\":1}},"
        "\"type\":\"m.room.message\",\"unsigned\":{}}");

    /* an empty list keeps nothing */
    assert_int_equal(parse("{\"event_fields\":[]}", &f, err), 0);
    out = mx_filter_event_fields(pool, ev, &f.event_fields);
    assert_string_equal(mx_json_encode(pool, out, 0, &len), "{}");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_spec_example),
        cmocka_unit_test(test_every_field),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_event_fields),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

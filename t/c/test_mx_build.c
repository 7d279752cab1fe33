/*
 * core/mx_build: local events for every room version.  A room is built
 * from its create event on, each event on top of the last; each must pass
 * the PDU shape check, verify with the server's key, name the auth events
 * the rules select, and be refused when the rules refuse it.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <mx_auth.h>
#include <mx_build.h>
#include <mx_event.h>
#include <mx_ids.h>
#include <mx_json.h>
#include <mx_room_version.h>
#include <mx_sign.h>

#include "mx_test_json.h"


static mx_pool_t         *pool;
static mx_signing_key_t   key;


typedef struct {
    const mx_room_version_t  *rv;
    const char               *room_id;
    mx_state_t               *state;
    const mx_auth_event_t    *last;
    int64_t                   ts;
} room_t;


static int
setup(void **state)
{
    (void) state;
    pool = mx_pool_create(16384);
    return pool && mx_key_generate(&key, "t1") == 0 ? 0 : -1;
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


static const unsigned char *
our_key(void *ctx, const char *server, const char *key_id, int64_t ts)
{
    (void) ctx;
    (void) ts;

    return strcmp(server, "hs.test") == 0 && strcmp(key_id, key.key_id) == 0
           ? key.pk : NULL;
}


static mx_build_rc_t
send(room_t *room, const char *sender, const char *type,
    const char *state_key, const char *content, mx_json_t **pdu,
    const char **why)
{
    mx_build_t         b;
    mx_build_rc_t      rc;
    mx_auth_event_t   *view;
    char              *id;
    const char        *vwhy;

    memset(&b, 0, sizeof(b));
    b.rv = room->rv;
    b.room_id = room->room_id;
    b.sender = sender;
    b.type = type;
    b.state_key = state_key;
    b.content = J(content);
    b.prev = room->last ? &room->last : NULL;
    b.n_prev = room->last ? 1 : 0;
    b.lookup = mx_state_lookup;
    b.ctx = room->state;
    b.ts = ++room->ts;
    b.origin = "hs.test";
    b.key = &key;

    rc = mx_event_build(pool, &b, pdu, &id, &view, why);
    if (rc != MX_BUILD_OK) {
        if (getenv("TEST_VERBOSE")) {
            printf("v%s %s %s: %d %s\n", room->rv->id, sender, type, rc,
                   *why);
        }
        return rc;
    }

    /* what a receiving server would see */
    assert_int_equal(mx_event_check_pdu(pool, *pdu, room->rv, &vwhy), 0);
    assert_int_equal(mx_event_verify(pool, *pdu, room->rv, our_key, NULL,
                                     &vwhy), MX_EVENT_OK);
    assert_true(mx_event_id_valid(id, strlen(id), room->rv->event_id));
    assert_string_equal(view->event_id, id);

    if (room->room_id == NULL) {
        room->room_id = mx_event_room_id(pool, *pdu, room->rv);
    }

    room->last = view;
    if (state_key != NULL) {
        assert_int_equal(mx_state_put(room->state, view), 0);
    }

    return rc;
}


static void
build_room(room_t *room, const char *version)
{
    mx_json_t   *pdu;
    const char  *why;
    char         create[128], pl[256];

    memset(room, 0, sizeof(*room));
    room->rv = mx_room_version(version, strlen(version));
    assert_non_null(room->rv);
    room->state = mx_state_create(pool, 16);
    room->ts = 1000;

    if (!room->rv->room_id_from_create) {
        room->room_id = "!room:hs.test";
    }

    snprintf(create, sizeof(create), room->rv->creator_is_sender
             ? "{\"room_version\":\"%s\"}"
             : "{\"room_version\":\"%s\",\"creator\":\"@alice:hs.test\"}",
             version);

    assert_int_equal(send(room, "@alice:hs.test", "m.room.create", "",
                          create, &pdu, &why), MX_BUILD_OK);
    assert_int_equal(mx_json_get_arr(pdu, "auth_events")->u.a.n, 0);
    assert_int_equal(mx_json_get_arr(pdu, "prev_events")->u.a.n, 0);

    assert_int_equal(send(room, "@alice:hs.test", "m.room.member",
                          "@alice:hs.test", "{\"membership\":\"join\"}",
                          &pdu, &why), MX_BUILD_OK);
    /* v12: the creator has infinite power and may not be listed */
    snprintf(pl, sizeof(pl), "{\"users\":{%s\"@bob:hs.test\":50},"
             "\"users_default\":0,\"events_default\":0,"
             "\"state_default\":50,\"ban\":50,\"kick\":50}",
             room->rv->room_id_from_create ? "" : "\"@alice:hs.test\":100,");
    assert_int_equal(send(room, "@alice:hs.test", "m.room.power_levels", "",
                          pl, &pdu, &why), MX_BUILD_OK);
    assert_int_equal(send(room, "@alice:hs.test", "m.room.join_rules", "",
                          "{\"join_rule\":\"invite\"}", &pdu, &why),
                     MX_BUILD_OK);
}


static void
test_every_version(void **state)
{
    const mx_room_version_t  *rv;
    room_t                    room;
    mx_json_t                *pdu, *auth;
    const char               *why;
    int64_t                   depth;

    (void) state;

    for (rv = mx_room_versions; rv->id; rv++) {
        build_room(&room, rv->id);

        /* a message from the creator: allowed, depth 5 */
        assert_int_equal(send(&room, "@alice:hs.test", "m.room.message",
                              NULL, "{\"body\":\"hi\",\"msgtype\":\"m.text\"}",
                              &pdu, &why), MX_BUILD_OK);
        assert_int_equal(mx_json_get_int(pdu, "depth", &depth), 0);
        assert_int_equal(depth, 5);

        /* auth events: create (not in v12), power levels, alice's join */
        auth = mx_json_get_arr(pdu, "auth_events");
        assert_int_equal(auth->u.a.n, rv->room_id_from_create ? 2 : 3);

        /* v1, v2: references carry the referenced event's hash */
        if (rv->event_id == MX_EVENT_ID_OPAQUE) {
            assert_true(mx_json_is(auth->u.a.v[0], MX_JSON_ARRAY));
            assert_non_null(mx_json_get(auth->u.a.v[0]->u.a.v[1], "sha256"));
            assert_non_null(strstr(mx_json_get_str(pdu, "event_id", NULL),
                                   ":hs.test"));
        }

        /* bob is not in the room: refused, with the rule */
        assert_int_equal(send(&room, "@bob:hs.test", "m.room.message", NULL,
                              "{\"body\":\"hi\"}", &pdu, &why),
                         MX_BUILD_DENIED);
        assert_non_null(why);

        /* bob may not join an invite-only room ... */
        assert_int_equal(send(&room, "@bob:hs.test", "m.room.member",
                              "@bob:hs.test", "{\"membership\":\"join\"}",
                              &pdu, &why), MX_BUILD_DENIED);

        /* ... until alice invites him */
        assert_int_equal(send(&room, "@alice:hs.test", "m.room.member",
                              "@bob:hs.test", "{\"membership\":\"invite\"}",
                              &pdu, &why), MX_BUILD_OK);
        assert_int_equal(send(&room, "@bob:hs.test", "m.room.member",
                              "@bob:hs.test", "{\"membership\":\"join\"}",
                              &pdu, &why), MX_BUILD_OK);

        /* bob's join names join rules, his invite, power levels */
        auth = mx_json_get_arr(pdu, "auth_events");
        assert_int_equal(auth->u.a.n, rv->room_id_from_create ? 3 : 4);

        /* bob (50) may not ban alice (100) */
        assert_int_equal(send(&room, "@bob:hs.test", "m.room.member",
                              "@alice:hs.test", "{\"membership\":\"ban\"}",
                              &pdu, &why), MX_BUILD_DENIED);

        /* redactions: top level before v11, in content after */
        assert_int_equal(send(&room, "@alice:hs.test", "m.room.message",
                              NULL, "{\"body\":\"oops\"}", &pdu, &why),
                         MX_BUILD_OK);
    }
}


static void
test_redaction_and_limits(void **state)
{
    room_t        room;
    mx_build_t    b;
    mx_json_t    *pdu;
    mx_auth_event_t *view;
    char         *id, *big;
    const char   *why, *target;
    const char   *versions[] = { "10", "11" };
    size_t        i;

    (void) state;

    for (i = 0; i < 2; i++) {
        build_room(&room, versions[i]);
        target = room.last->event_id;

        memset(&b, 0, sizeof(b));
        b.rv = room.rv;
        b.room_id = room.room_id;
        b.sender = "@alice:hs.test";
        b.type = "m.room.redaction";
        b.content = J("{\"reason\":\"spam\"}");
        b.redacts = target;
        b.prev = &room.last;
        b.n_prev = 1;
        b.lookup = mx_state_lookup;
        b.ctx = room.state;
        b.ts = 5000;
        b.origin = "hs.test";
        b.key = &key;
        b.unsigned_ = J("{\"transaction_id\":\"t1\"}");

        assert_int_equal(mx_event_build(pool, &b, &pdu, &id, &view, &why),
                         MX_BUILD_OK);

        if (room.rv->redaction == MX_REDACT_V11) {
            assert_string_equal(mx_json_get_str(mx_json_get(pdu, "content"),
                                                "redacts", NULL), target);
            assert_null(mx_json_get(pdu, "redacts"));
            /* the caller's content is not changed */
            assert_null(mx_json_get(b.content, "redacts"));
        } else {
            assert_string_equal(mx_json_get_str(pdu, "redacts", NULL),
                                target);
        }

        assert_string_equal(view->redacts, target);
        assert_string_equal(mx_json_get_str(mx_json_get(pdu, "unsigned"),
                                            "transaction_id", NULL), "t1");
    }

    /* 65,536 bytes */
    big = mx_palloc(pool, 70000);
    memset(big, 'a', 70000);
    strcpy(big + 69000, "\"}");
    memcpy(big, "{\"body\":\"", 9);
    build_room(&room, "12");
    assert_int_equal(send(&room, "@alice:hs.test", "m.room.message", NULL,
                          big, &pdu, &why), MX_BUILD_TOO_LARGE);

    /* floats and big integers: only where canonical JSON is lenient */
    assert_int_equal(send(&room, "@alice:hs.test", "m.room.message", NULL,
                          "{\"n\":1.5}", &pdu, &why), MX_BUILD_BAD);
    assert_non_null(strstr(why, "float"));
    build_room(&room, "5");
    assert_int_equal(send(&room, "@alice:hs.test", "m.room.message", NULL,
                          "{\"n\":1.5}", &pdu, &why), MX_BUILD_OK);

    /* a bad state key for a member event: refused by the rules */
    build_room(&room, "12");
    assert_int_equal(send(&room, "@alice:hs.test", "m.room.member",
                          "not-a-user", "{\"membership\":\"join\"}", &pdu,
                          &why), MX_BUILD_DENIED);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_every_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redaction_and_limits, setup,
                                        teardown),
    };

    if (mx_sign_init() != 0) {
        return 1;
    }

    return cmocka_run_group_tests(tests, NULL, NULL);
}

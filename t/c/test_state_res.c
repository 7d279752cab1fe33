/*
 * core/mx_state_res: the scenarios of ../shared/spec/state-res/ (see its
 * README), each batch scenario three ways (PDU by PDU, batch by batch, all
 * at once), the MSC4297 state-map scenarios under state resolution v2.0
 * (room version 11) and v2.1 (room version 12); then room version 1's
 * algorithm and a few hostile inputs on rooms built here.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <mx_auth.h>
#include <mx_idmap.h>
#include <mx_json.h>
#include <mx_pool.h>
#include <mx_state_res.h>

#include "mx_test_spec.h"


#define SR_MAX_FILES  5

enum { WAY_PDU = 0, WAY_BATCH, WAY_ALL };

static const char  *way_names[] = { "PDU by PDU", "batch by batch",
                                    "all at once" };

typedef struct {
    const char  *expected;
    const char  *files[SR_MAX_FILES];
} scenario_t;

typedef struct {
    const scenario_t  *sc;
    int                way;
} scenario_case_t;

typedef struct {
    const char  *expected;
    const char  *dir;
    const char  *sets[2];
    const char  *pdus;
} msc_t;

/* the events of one test, by ID */
typedef struct {
    mx_pool_t                 *pool;
    mx_idmap_t                 byid;
    const mx_room_version_t   *rv;
    mx_auth_event_t          **pdus;
    size_t                     n;
    size_t                     batch_end[SR_MAX_FILES];
    size_t                     nbatches;
} room_t;


static const scenario_t  scenarios[] = {
    { "minimal_private_chat", { "bootstrap-private-chat" } },
    { "minimal_public_chat", { "bootstrap-public-chat" } },
    { "origin_server_ts_tiebreak",
      { "bootstrap-private-chat", "origin-server-ts-tiebreak" } },
    { "ban_vs_power_levels",
      { "bootstrap-public-chat", "ban-vs-power-levels-alice",
        "ban-vs-power-levels-bob" } },
    { "topic_vs_power_levels",
      { "bootstrap-public-chat", "topic-vs-power-levels-alice",
        "topic-vs-power-levels-bob" } },
    { "power_levels_admin_vs_mod",
      { "bootstrap-public-chat", "power-levels-admin-vs-mod-alice",
        "power-levels-admin-vs-mod-bob" } },
    { "topic_vs_ban",
      { "bootstrap-public-chat", "topic-vs-ban-common", "topic-vs-ban-alice",
        "topic-vs-ban-bob" } },
    { "join_rules_vs_join",
      { "bootstrap-public-chat", "join-rules-vs-join-common",
        "join-rules-vs-join-alice", "join-rules-vs-join-ella" } },
    { "concurrent_joins",
      { "bootstrap-public-chat", "concurrent-joins-charlie",
        "concurrent-joins-ella" } },
};

#define NSCENARIOS  (sizeof(scenarios) / sizeof(scenarios[0]))

static scenario_case_t  cases[NSCENARIOS * 3];
static char             names[NSCENARIOS * 3][96];

static const msc_t  mscs[] = {
    { "msc4297_problem_a_state_res_v2_0", "MSC4297-problem-A",
      { "state-bob", "state-charlie" }, "pdus-v11" },
    { "msc4297_problem_a_state_res_v2_1", "MSC4297-problem-A",
      { "state-bob", "state-charlie" }, "pdus-v12" },
    { "msc4297_problem_b_state_res_v2_0", "MSC4297-problem-B",
      { "state-eve", "state-zara" }, "pdus-v11" },
    { "msc4297_problem_b_state_res_v2_1", "MSC4297-problem-B",
      { "state-eve", "state-zara" }, "pdus-v12" },
};


static const mx_auth_event_t *
room_fetch(void *ctx, const char *id)
{
    return mx_idmap_get(&((room_t *) ctx)->byid, id);
}


/* append the PDUs of one fixture file; the first create names the version */
static void
room_load(room_t *room, const char *file)
{
    char              sub[512];
    mx_json_t        *arr;
    mx_auth_event_t  *ev, **pdus;
    const char       *err;
    size_t            i;

    snprintf(sub, sizeof(sub), "state-res/fixtures/%s.json", file);
    arr = mx_test_spec_json(room->pool, sub);
    assert_non_null(arr);
    assert_int_equal(arr->type, MX_JSON_ARRAY);

    pdus = mx_palloc(room->pool, (room->n + arr->u.a.n) * sizeof(*pdus));
    assert_non_null(pdus);

    if (room->n) {
        memcpy(pdus, room->pdus, room->n * sizeof(*pdus));
    }

    room->pdus = pdus;

    for (i = 0; i < arr->u.a.n; i++) {
        err = NULL;
        ev = mx_auth_event_from_json(room->pool, arr->u.a.v[i], NULL, &err);
        if (ev == NULL) {
            fail_msg("%s: PDU %zu: %s", file, i, err);
        }

        if (room->rv == NULL && strcmp(ev->type, "m.room.create") == 0) {
            room->rv = mx_auth_create_version(ev);
            assert_non_null(room->rv);
        }

        assert_int_equal(mx_idmap_put(&room->byid, ev->event_id, ev), 0);
        room->pdus[room->n++] = ev;
    }

    room->batch_end[room->nbatches++] = room->n;
}


static void
room_init(room_t *room)
{
    memset(room, 0, sizeof(*room));
    room->pool = mx_pool_create(0);
    assert_non_null(room->pool);
    assert_int_equal(mx_idmap_init(&room->byid, room->pool, 64), 0);
}


static mx_state_t *
resolve(room_t *room, const mx_state_t **sets, size_t n)
{
    mx_state_t  *out;

    out = NULL;
    assert_int_equal(mx_state_resolve(room->pool, room->rv, sets, n,
                                      room_fetch, room, &out), 0);
    assert_non_null(out);

    return out;
}


/*
 * Way 1: walk the PDUs in order.  The state before a PDU resolves the
 * states after its prev_events; the state after it adds the PDU when it
 * is authorized by the state before it.  The result resolves the states
 * after the PDUs nothing points at.
 */

static mx_state_t *
way_pdu_by_pdu(room_t *room)
{
    mx_idmap_t         after, referenced;
    const mx_state_t  *sets[64];
    mx_state_t        *before, *st;
    mx_auth_event_t   *ev;
    size_t             i, j, n;
    int                rc;

    assert_int_equal(mx_idmap_init(&after, room->pool, room->n), 0);
    assert_int_equal(mx_idmap_init(&referenced, room->pool, room->n), 0);

    for (i = 0; i < room->n; i++) {
        ev = room->pdus[i];
        assert_true(ev->n_prev < 64);

        for (j = 0; j < ev->n_prev; j++) {
            sets[j] = mx_idmap_get(&after, ev->prev_events[j]);
            assert_non_null(sets[j]);
            assert_int_equal(mx_idmap_put(&referenced, ev->prev_events[j],
                                          ev), 0);
        }

        if (ev->n_prev == 0) {
            before = mx_state_create(room->pool, 8);

        } else if (ev->n_prev == 1) {
            before = (mx_state_t *) sets[0];

        } else {
            before = resolve(room, sets, ev->n_prev);
        }

        st = mx_state_copy(room->pool, before);
        assert_non_null(st);

        rc = mx_auth_check(room->pool, room->rv, ev, before, NULL);
        if (ev->state_key && rc == MX_AUTH_ALLOW) {
            assert_int_equal(mx_state_put(st, ev), 0);
        }

        assert_int_equal(mx_idmap_put(&after, ev->event_id, st), 0);
    }

    n = 0;

    for (i = 0; i < room->n; i++) {
        if (mx_idmap_get(&referenced, room->pdus[i]->event_id) == NULL) {
            assert_true(n < 64);
            sets[n++] = mx_idmap_get(&after, room->pdus[i]->event_id);
        }
    }

    assert_true(n > 0);

    return n == 1 ? (mx_state_t *) sets[0] : resolve(room, sets, n);
}


/* a state map holding one event */
static const mx_state_t *
single(room_t *room, const mx_auth_event_t *ev)
{
    mx_state_t  *s;

    s = mx_state_create(room->pool, 1);
    assert_non_null(s);
    assert_int_equal(mx_state_put(s, ev), 0);

    return s;
}


/*
 * Ways 2 and 3: resolve the state after the previous batch (none at first)
 * together with one single-event state map per PDU of the batch; all at
 * once is one batch of every PDU.
 */

static mx_state_t *
way_batches(room_t *room, int all)
{
    const mx_state_t  **sets;
    mx_state_t         *prev;
    size_t              b, i, n, from, to;

    sets = mx_palloc(room->pool, (room->n + 1) * sizeof(*sets));
    assert_non_null(sets);
    prev = NULL;
    from = 0;

    for (b = 0; b < room->nbatches; b++) {
        to = all ? room->n : room->batch_end[b];
        n = 0;

        if (prev) {
            sets[n++] = prev;
        }

        for (i = from; i < to; i++) {
            sets[n++] = single(room, room->pdus[i]);
        }

        prev = resolve(room, sets, n);
        from = to;

        if (all) {
            break;
        }
    }

    return prev;
}


/* the state against expected/NAME.json: same keys, IDs and contents */
static void
compare_expected(room_t *room, const mx_state_t *st, const char *name,
    const char *how)
{
    char                     sub[512];
    mx_json_t               *exp, *item;
    const mx_auth_event_t  **got;
    size_t                   n, i;
    const char              *id;

    snprintf(sub, sizeof(sub), "state-res/expected/%s.json", name);
    exp = mx_test_spec_json(room->pool, sub);
    assert_non_null(exp);

    got = mx_state_sorted(room->pool, st, &n);
    assert_non_null(got);

    for (i = 0; i < n || i < exp->u.a.n; i++) {
        if (i >= n || i >= exp->u.a.n) {
            fail_msg("%s (%s): %zu entries, expected %zu", name, how, n,
                     exp->u.a.n);
        }

        item = exp->u.a.v[i];
        id = mx_json_get_str(item, "event_id", NULL);

        if (strcmp(mx_json_get_str(item, "type", NULL), got[i]->type) != 0
            || strcmp(mx_json_get_str(item, "state_key", NULL),
                      got[i]->state_key) != 0
            || strcmp(id, got[i]->event_id) != 0)
        {
            fail_msg("%s (%s): entry %zu is %s/%s %s, expected %s", name, how,
                     i, got[i]->type, got[i]->state_key, got[i]->event_id,
                     id);
        }

        assert_true(mx_json_equal(mx_json_get(item, "content"),
                                  got[i]->content));
    }
}


static void
test_scenario(void **state)
{
    const scenario_case_t  *c;
    room_t                  room;
    mx_state_t             *st;
    int                     f;

    c = *state;

    if (!mx_test_spec_has("state-res/fixtures", c->sc->expected)) {
        skip();
    }

    room_init(&room);

    for (f = 0; f < SR_MAX_FILES && c->sc->files[f]; f++) {
        room_load(&room, c->sc->files[f]);
    }

    switch (c->way) {
    case WAY_PDU:
        st = way_pdu_by_pdu(&room);
        break;
    case WAY_BATCH:
        st = way_batches(&room, 0);
        break;
    default:
        st = way_batches(&room, 1);
        break;
    }

    compare_expected(&room, st, c->sc->expected, way_names[c->way]);
    printf("  %s, %s: %zu state entries as expected\n", c->sc->expected,
           way_names[c->way], mx_state_count(st));

    mx_pool_destroy(room.pool);
}


static void
test_msc4297(void **state)
{
    const msc_t        *m;
    room_t              room;
    char                sub[512], file[256];
    mx_json_t          *ids;
    const mx_state_t   *sets[2];
    const char        **list, *missing;
    mx_state_t         *st;
    size_t              i, k;

    m = *state;

    if (!mx_test_spec_has("state-res/fixtures", m->expected)) {
        skip();
    }

    room_init(&room);
    snprintf(file, sizeof(file), "%s/%s", m->dir, m->pdus);
    room_load(&room, file);

    for (i = 0; i < 2; i++) {
        snprintf(sub, sizeof(sub), "state-res/fixtures/%s/%s.json", m->dir,
                 m->sets[i]);
        ids = mx_test_spec_json(room.pool, sub);
        assert_non_null(ids);

        list = mx_palloc(room.pool, ids->u.a.n * sizeof(char *));
        assert_non_null(list);

        for (k = 0; k < ids->u.a.n; k++) {
            list[k] = ids->u.a.v[k]->u.s.p;
        }

        sets[i] = mx_state_from_ids(room.pool, list, ids->u.a.n, room_fetch,
                                    &room, &missing);
        if (sets[i] == NULL) {
            fail_msg("%s: event %s missing", sub, missing);
        }
    }

    st = resolve(&room, sets, 2);
    compare_expected(&room, st, m->expected,
                   room.rv->state_res == MX_STATE_RES_V2_1 ? "v2.1" : "v2.0");
    printf("  %s: %zu state entries as expected\n", m->expected,
           mx_state_count(st));

    mx_pool_destroy(room.pool);
}


/* --- rooms built here ----------------------------------------------------------- */


static mx_auth_event_t *
mk(room_t *room, const char *json)
{
    mx_json_t        *v;
    mx_json_error_t   err;
    mx_auth_event_t  *ev;
    const char       *why;

    v = mx_json_parse(room->pool, json, strlen(json), &err);
    if (v == NULL) {
        fail_msg("bad test JSON: %s: %s", err.msg, json);
    }

    ev = mx_auth_event_from_json(room->pool, v, NULL, &why);
    assert_non_null(ev);
    assert_int_equal(mx_idmap_put(&room->byid, ev->event_id, ev), 0);

    return ev;
}


/*
 * Room version 1: power levels conflicts start from the lowest depth; the
 * later one is kept only when R allows it.  Other conflicts take the
 * deepest event that passes auth.
 */

static void
test_v1(void **state)
{
    room_t            room;
    mx_auth_event_t  *cr, *jo, *pl, *pla, *plb, *ta, *tb;
    mx_state_t       *a, *b, *st;
    const mx_state_t *sets[2];

    (void) state;

    room_init(&room);
    room.rv = mx_room_version("1", 1);

#define V1_HDR "\"room_id\":\"!r:a\",\"origin_server_ts\":0"

    cr = mk(&room, "{\"event_id\":\"$c:a\"," V1_HDR ",\"type\":\"m.room.create\","
            "\"state_key\":\"\",\"sender\":\"@a:a\",\"depth\":1,"
            "\"content\":{\"creator\":\"@a:a\"},\"prev_events\":[],"
            "\"auth_events\":[]}");
    jo = mk(&room, "{\"event_id\":\"$j:a\"," V1_HDR ",\"type\":\"m.room.member\","
            "\"state_key\":\"@a:a\",\"sender\":\"@a:a\",\"depth\":2,"
            "\"content\":{\"membership\":\"join\"},"
            "\"prev_events\":[[\"$c:a\",{}]],\"auth_events\":[[\"$c:a\",{}]]}");
    pl = mk(&room, "{\"event_id\":\"$p:a\"," V1_HDR ",\"type\":\"m.room.power_levels\","
            "\"state_key\":\"\",\"sender\":\"@a:a\",\"depth\":3,"
            "\"content\":{\"users\":{\"@a:a\":100,\"@b:b\":50}},"
            "\"prev_events\":[\"$j:a\"],\"auth_events\":[\"$c:a\",\"$j:a\"]}");
    /* a raises the state default; b (not joined) tries to make itself 100 */
    pla = mk(&room, "{\"event_id\":\"$pa:a\"," V1_HDR ",\"type\":\"m.room.power_levels\","
             "\"state_key\":\"\",\"sender\":\"@a:a\",\"depth\":4,"
             "\"content\":{\"users\":{\"@a:a\":100},\"state_default\":75},"
             "\"prev_events\":[\"$p:a\"],"
             "\"auth_events\":[\"$c:a\",\"$j:a\",\"$p:a\"]}");
    plb = mk(&room, "{\"event_id\":\"$pb:b\"," V1_HDR ",\"type\":\"m.room.power_levels\","
             "\"state_key\":\"\",\"sender\":\"@b:b\",\"depth\":4,"
             "\"content\":{\"users\":{\"@a:a\":100,\"@b:b\":100}},"
             "\"prev_events\":[\"$p:a\"],"
             "\"auth_events\":[\"$c:a\",\"$p:a\"]}");
    ta = mk(&room, "{\"event_id\":\"$ta:a\"," V1_HDR ",\"type\":\"m.room.topic\","
            "\"state_key\":\"\",\"sender\":\"@a:a\",\"depth\":5,"
            "\"content\":{\"topic\":\"a\"},\"prev_events\":[\"$pa:a\"],"
            "\"auth_events\":[\"$c:a\",\"$j:a\",\"$pa:a\"]}");
    tb = mk(&room, "{\"event_id\":\"$tb:b\"," V1_HDR ",\"type\":\"m.room.topic\","
            "\"state_key\":\"\",\"sender\":\"@a:a\",\"depth\":6,"
            "\"content\":{\"topic\":\"b\"},\"prev_events\":[\"$pb:b\"],"
            "\"auth_events\":[\"$c:a\",\"$j:a\",\"$pb:b\"]}");

#undef V1_HDR

    a = mx_state_create(room.pool, 8);
    b = mx_state_create(room.pool, 8);
    assert_int_equal(mx_state_put(a, cr), 0);
    assert_int_equal(mx_state_put(a, jo), 0);
    assert_int_equal(mx_state_put(a, pla), 0);
    assert_int_equal(mx_state_put(a, ta), 0);
    assert_int_equal(mx_state_put(b, cr), 0);
    assert_int_equal(mx_state_put(b, jo), 0);
    assert_int_equal(mx_state_put(b, plb), 0);
    assert_int_equal(mx_state_put(b, tb), 0);
    (void) pl;

    sets[0] = a;
    sets[1] = b;
    st = resolve(&room, sets, 2);

    /*
     * Same depth: the order is by sha1 of the IDs.  Whichever comes first
     * goes in; plb never passes auth (b is not joined), pla passes after
     * plb.  The topic: tb is deeper and a may send it under either levels.
     */
    assert_string_equal(mx_state_get(st, "m.room.create", "")->event_id,
                        "$c:a");
    assert_string_equal(mx_state_get(st, "m.room.topic", "")->event_id,
                        tb->event_id);
    assert_non_null(mx_state_get(st, "m.room.power_levels", ""));

    mx_pool_destroy(room.pool);
}


static const mx_auth_event_t *
fetch_none(void *ctx, const char *id)
{
    (void) ctx;
    (void) id;

    return NULL;
}


/*
 * State sets whose events name auth events nobody has: the resolver leaves
 * them out instead of failing, and still resolves what it can.
 */

static void
test_missing_events(void **state)
{
    room_t            room;
    mx_auth_event_t  *cr, *j1, *j2;
    mx_state_t       *a, *b, *st;
    const mx_state_t *sets[2];

    (void) state;

    room_init(&room);
    room.rv = mx_room_version("10", 2);

    cr = mk(&room, "{\"event_id\":\"$c\",\"room_id\":\"!r:a\","
            "\"type\":\"m.room.create\",\"state_key\":\"\",\"sender\":\"@a:a\","
            "\"content\":{\"creator\":\"@a:a\"},\"prev_events\":[],"
            "\"auth_events\":[]}");
    j1 = mk(&room, "{\"event_id\":\"$j1\",\"room_id\":\"!r:a\","
            "\"type\":\"m.room.member\",\"state_key\":\"@a:a\","
            "\"sender\":\"@a:a\",\"content\":{\"membership\":\"join\"},"
            "\"prev_events\":[\"$c\"],\"auth_events\":[\"$c\",\"$gone\"]}");
    j2 = mk(&room, "{\"event_id\":\"$j2\",\"room_id\":\"!r:a\","
            "\"type\":\"m.room.member\",\"state_key\":\"@a:a\","
            "\"sender\":\"@a:a\",\"content\":{\"membership\":\"leave\"},"
            "\"origin_server_ts\":5,\"prev_events\":[\"$j1\"],"
            "\"auth_events\":[\"$c\",\"$j1\",\"$gone2\"]}");

    a = mx_state_create(room.pool, 4);
    b = mx_state_create(room.pool, 4);
    mx_state_put(a, cr);
    mx_state_put(a, j1);
    mx_state_put(b, cr);
    mx_state_put(b, j2);
    sets[0] = a;
    sets[1] = b;

    st = resolve(&room, sets, 2);
    assert_string_equal(mx_state_get(st, "m.room.member", "@a:a")->event_id,
                        "$j2");

    /* a fetch that knows nothing: the state sets' own events still count */
    st = NULL;
    assert_int_equal(mx_state_resolve(room.pool, room.rv, sets, 2, fetch_none,
                                      NULL, &st), 0);
    assert_non_null(mx_state_get(st, "m.room.create", ""));

    /* nothing to resolve */
    assert_int_equal(mx_state_resolve(room.pool, room.rv, sets, 0, fetch_none,
                                      NULL, &st), 0);
    assert_int_equal(mx_state_count(st), 0);

    mx_pool_destroy(room.pool);
}


int
main(void)
{
    struct CMUnitTest  tests[NSCENARIOS * 3 + 4 + 2];
    size_t             i, n;

    n = 0;

    for (i = 0; i < NSCENARIOS * 3; i++) {
        cases[i].sc = &scenarios[i / 3];
        cases[i].way = (int) (i % 3);
        tests[n] = (struct CMUnitTest)
                   cmocka_unit_test_prestate(test_scenario, &cases[i]);
        tests[n++].name = NULL;
    }

    for (i = 0; i < 4; i++) {
        tests[n] = (struct CMUnitTest)
                   cmocka_unit_test_prestate(test_msc4297, (void *) &mscs[i]);
        tests[n++].name = NULL;
    }

    tests[n++] = (struct CMUnitTest) cmocka_unit_test(test_v1);
    tests[n++] = (struct CMUnitTest) cmocka_unit_test(test_missing_events);

    /* readable names: "scenario (way)" */
    for (i = 0; i < NSCENARIOS * 3; i++) {
        snprintf(names[i], sizeof(names[i]), "%s (%s)",
                 cases[i].sc->expected, way_names[cases[i].way]);
        tests[i].name = names[i];
    }

    for (i = 0; i < 4; i++) {
        tests[NSCENARIOS * 3 + i].name = mscs[i].expected;
    }

    return _cmocka_run_group_tests("state_res", tests, n, NULL, NULL);
}

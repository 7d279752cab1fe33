/*
 * mx_auth: authorization rules and auth events selection, room versions 1
 * to 12.  See mx_auth.h and the spec's content/rooms/v*.md.
 *
 * The rules are written once, in the order of the v12 text, with the room
 * version's flags deciding where versions differ:
 *
 *   rule (v12 numbering)                      versions
 *   1   m.room.create                         all; 1.2 and 1.4 differ in v12,
 *                                             1.4 "creator" only before v11
 *   2   room ID is the create event's ID      v12
 *   3   auth events (mx_auth_check_auth_events)
 *   4   m.federate                            all
 *   -   m.room.aliases                        v1 to v5
 *   5   m.room.member                         knock v7+, restricted v8+,
 *                                             knock_restricted v10+
 *   6   sender must be joined                 all
 *   7   m.room.third_party_invite             all
 *   8   required power level                  all
 *   9   state keys that are user IDs          all
 *   10  m.room.power_levels                   integers only v10+, strings
 *                                             before v10, floats before v6,
 *                                             notifications v6+, creators v12
 *   -   m.room.redaction                      v1, v2
 */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mx_auth.h"
#include "mx_base64.h"
#include "mx_idmap.h"
#include "mx_ids.h"
#include "mx_sign.h"


#define MX_T_CREATE    "m.room.create"
#define MX_T_MEMBER    "m.room.member"
#define MX_T_JOIN      "m.room.join_rules"
#define MX_T_PL        "m.room.power_levels"
#define MX_T_3PID      "m.room.third_party_invite"
#define MX_T_ALIASES   "m.room.aliases"
#define MX_T_REDACTION "m.room.redaction"

#define mx_streq(a, b)  ((a) != NULL && (b) != NULL && strcmp(a, b) == 0)


/* what the rules read of a power levels event */
typedef struct {
    const mx_auth_event_t  *event;          /* NULL: none in the room */
    const mx_json_t        *users;
    const mx_json_t        *events;
    const mx_json_t        *notifications;
    int64_t                 users_default;
    int64_t                 events_default;
    int64_t                 state_default;
    int64_t                 ban;
    int64_t                 kick;
    int64_t                 redact;
    int64_t                 invite;
} mx_pl_t;

/* everything one check needs, looked up once */
typedef struct {
    mx_pool_t                  *pool;
    const mx_room_version_t    *rv;
    const mx_auth_event_t      *ev;
    mx_auth_lookup_pt           lookup;
    void                       *ctx;
    const mx_auth_event_t      *create;
    mx_pl_t                     pl;
    int64_t                     sender_level;
    const char                 *sender_membership;
} mx_auth_run_t;


static const char *mx_pl_names[] = {
    "users_default", "events_default", "state_default",
    "ban", "redact", "kick", "invite", NULL
};


/* --- event views ----------------------------------------------------------- */


/*
 * A JSON string as a C string, refusing strings with NUL bytes in them: an
 * event type "m.room.power_levels\u0000x" must not compare equal to
 * "m.room.power_levels".
 */

static int
mx_auth_cstr(const mx_json_t *v, const char **out)
{
    if (!mx_json_is(v, MX_JSON_STRING) || strlen(v->u.s.p) != v->u.s.len) {
        return -1;
    }

    *out = v->u.s.p;

    return 0;
}


/*
 * prev_events / auth_events: ["$a", "$b"] from v3 on, [["$a:hs", {hashes}]]
 * in v1 and v2.  Absent means empty.
 */

static int
mx_auth_id_list(mx_pool_t *pool, const mx_json_t *arr, const char ***out,
    size_t *n)
{
    const mx_json_t  *item;
    const char      **ids;
    size_t            i;

    *out = NULL;
    *n = 0;

    if (arr == NULL) {
        return 0;
    }

    if (arr->type != MX_JSON_ARRAY) {
        return -1;
    }

    ids = mx_palloc(pool, (arr->u.a.n + 1) * sizeof(char *));
    if (ids == NULL) {
        return -1;
    }

    for (i = 0; i < arr->u.a.n; i++) {
        item = arr->u.a.v[i];

        if (item->type == MX_JSON_ARRAY && item->u.a.n >= 1) {
            item = item->u.a.v[0];
        }

        if (mx_auth_cstr(item, &ids[i]) != 0) {
            return -1;
        }
    }

    *out = ids;
    *n = arr->u.a.n;

    return 0;
}


mx_auth_event_t *
mx_auth_event_from_json(mx_pool_t *pool, const mx_json_t *json,
    const char *event_id, const char **err)
{
    mx_auth_event_t  *ev;
    const mx_json_t  *v;
    mx_json_t        *content;

#define MX_FAIL(why)  do { *err = why; return NULL; } while (0)

    if (!mx_json_is(json, MX_JSON_OBJECT)) {
        MX_FAIL("the event is not a JSON object");
    }

    ev = mx_pcalloc(pool, sizeof(mx_auth_event_t));
    if (ev == NULL) {
        MX_FAIL("out of memory");
    }

    ev->json = json;

    if (event_id) {
        ev->event_id = event_id;

    } else if (mx_auth_cstr(mx_json_get(json, "event_id"), &ev->event_id)
               != 0)
    {
        MX_FAIL("no event_id");
    }

    v = mx_json_get(json, "room_id");
    if (v && mx_auth_cstr(v, &ev->room_id) != 0) {
        MX_FAIL("room_id is not a string");
    }

    if (mx_auth_cstr(mx_json_get(json, "type"), &ev->type) != 0) {
        MX_FAIL("no type");
    }

    v = mx_json_get(json, "state_key");
    if (v && mx_auth_cstr(v, &ev->state_key) != 0) {
        MX_FAIL("state_key is not a string");
    }

    if (mx_auth_cstr(mx_json_get(json, "sender"), &ev->sender) != 0) {
        MX_FAIL("no sender");
    }

    v = mx_json_get(json, "content");
    if (v == NULL) {
        content = mx_json_object(pool);
        if (content == NULL) {
            MX_FAIL("out of memory");
        }

        v = content;

    } else if (v->type != MX_JSON_OBJECT) {
        MX_FAIL("content is not an object");
    }

    ev->content = v;

    v = mx_json_get(ev->content, "membership");
    if (v && mx_auth_cstr(v, &ev->membership) != 0) {
        ev->membership = NULL;
    }

    if (mx_auth_id_list(pool, mx_json_get(json, "prev_events"),
                        &ev->prev_events, &ev->n_prev) != 0)
    {
        MX_FAIL("prev_events is not a list of event IDs");
    }

    if (mx_auth_id_list(pool, mx_json_get(json, "auth_events"),
                        &ev->auth_events, &ev->n_auth) != 0)
    {
        MX_FAIL("auth_events is not a list of event IDs");
    }

    v = mx_json_get(json, "origin_server_ts");
    if (v && v->type == MX_JSON_INT) {
        ev->origin_server_ts = v->u.i;
    }

    v = mx_json_get(json, "depth");
    if (v && v->type == MX_JSON_INT) {
        ev->depth = v->u.i;
    }

    v = mx_json_get(json, "redacts");
    if (v == NULL) {
        v = mx_json_get(ev->content, "redacts");
    }

    if (v && mx_auth_cstr(v, &ev->redacts) != 0) {
        ev->redacts = NULL;
    }

#undef MX_FAIL

    return ev;
}


/* --- state maps ----------------------------------------------------------------- */

/*
 * Open addressing, each slot the event and the hash of its key, so that
 * probing and growing never touch the events themselves:
 *
 *   h = mix(fnv(type) ; 0xff ; fnv(state_key))
 *   slots[h & (cap-1)] = { h, ev }, then the next slots on collision
 */

typedef struct {
    uint64_t                  hash;
    const mx_auth_event_t    *ev;       /* NULL: free */
} mx_state_slot_t;

struct mx_state_s {
    mx_pool_t                *pool;
    mx_state_slot_t          *slots;
    size_t                    cap;
    size_t                    n;
};


static uint64_t
mx_state_hash(const char *type, const char *state_key)
{
    uint64_t  h;

    h = mx_idmap_hash(type, strlen(type), MX_IDMAP_HASH_INIT);
    h = mx_idmap_hash("\xff", 1, h);
    h = mx_idmap_hash(state_key, strlen(state_key), h);

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;

    return h;
}


mx_state_t *
mx_state_create(mx_pool_t *pool, size_t hint)
{
    mx_state_t  *s;

    s = mx_palloc(pool, sizeof(mx_state_t));
    if (s == NULL) {
        return NULL;
    }

    s->pool = pool;
    s->n = 0;
    s->cap = 16;

    while (s->cap / 10 * 7 < hint) {
        s->cap *= 2;
    }

    s->slots = mx_pcalloc(pool, s->cap * sizeof(mx_state_slot_t));
    if (s->slots == NULL) {
        return NULL;
    }

    return s;
}


static size_t
mx_state_find(const mx_state_t *s, const char *type, const char *state_key,
    uint64_t h)
{
    const mx_state_slot_t  *sl;
    size_t                  j;

    j = h & (s->cap - 1);

    for ( ;; ) {
        sl = &s->slots[j];

        if (sl->ev == NULL
            || (sl->hash == h
                && strcmp(sl->ev->type, type) == 0
                && strcmp(sl->ev->state_key, state_key) == 0))
        {
            return j;
        }

        j = (j + 1) & (s->cap - 1);
    }
}


const mx_auth_event_t *
mx_state_get(const mx_state_t *state, const char *type, const char *state_key)
{
    if (state == NULL || state->n == 0) {
        return NULL;
    }

    return state->slots[mx_state_find(state, type, state_key,
                                      mx_state_hash(type, state_key))].ev;
}


const mx_auth_event_t *
mx_state_lookup(void *ctx, const char *type, const char *state_key)
{
    return mx_state_get(ctx, type, state_key);
}


/* twice the slots; the stored hashes place every entry again */
static int
mx_state_grow(mx_state_t *s)
{
    mx_state_slot_t  *slots, *old;
    size_t            i, j, cap;

    cap = s->cap * 2;
    slots = mx_pcalloc(s->pool, cap * sizeof(mx_state_slot_t));
    if (slots == NULL) {
        return -1;
    }

    old = s->slots;

    for (i = 0; i < s->cap; i++) {
        if (old[i].ev == NULL) {
            continue;
        }

        j = old[i].hash & (cap - 1);

        while (slots[j].ev) {
            j = (j + 1) & (cap - 1);
        }

        slots[j] = old[i];
    }

    s->slots = slots;
    s->cap = cap;

    return 0;
}


int
mx_state_put(mx_state_t *s, const mx_auth_event_t *ev)
{
    uint64_t  h;
    size_t    j;

    if (ev->state_key == NULL) {
        return -1;
    }

    h = mx_state_hash(ev->type, ev->state_key);
    j = mx_state_find(s, ev->type, ev->state_key, h);

    if (s->slots[j].ev) {
        s->slots[j].ev = ev;
        return 0;
    }

    if (s->n + 1 > s->cap / 10 * 7) {
        if (mx_state_grow(s) != 0) {
            return -1;
        }

        j = mx_state_find(s, ev->type, ev->state_key, h);
    }

    s->slots[j].hash = h;
    s->slots[j].ev = ev;
    s->n++;

    return 0;
}


size_t
mx_state_count(const mx_state_t *state)
{
    return state ? state->n : 0;
}


const mx_auth_event_t *
mx_state_next(const mx_state_t *state, size_t *i)
{
    while (*i < state->cap) {
        if (state->slots[*i].ev) {
            return state->slots[(*i)++].ev;
        }

        (*i)++;
    }

    return NULL;
}


const mx_auth_event_t *
mx_state_next_hash(const mx_state_t *state, size_t *i, uint64_t *hash)
{
    while (*i < state->cap) {
        if (state->slots[*i].ev) {
            /* the caller reads the events: fetch a few ahead */
            if (*i + 8 < state->cap) {
                __builtin_prefetch(state->slots[*i + 8].ev);
            }

            *hash = state->slots[*i].hash;
            return state->slots[(*i)++].ev;
        }

        (*i)++;
    }

    return NULL;
}


const mx_auth_event_t *
mx_state_get_hash(const mx_state_t *state, const char *type,
    const char *state_key, uint64_t hash)
{
    if (state == NULL || state->n == 0) {
        return NULL;
    }

    return state->slots[mx_state_find(state, type, state_key, hash)].ev;
}


uint64_t
mx_state_key_hash(const char *type, const char *state_key)
{
    return mx_state_hash(type, state_key);
}


mx_state_t *
mx_state_copy(mx_pool_t *pool, const mx_state_t *state)
{
    mx_state_t  *s;

    s = mx_palloc(pool, sizeof(mx_state_t));
    if (s == NULL) {
        return NULL;
    }

    *s = *state;
    s->pool = pool;
    s->slots = mx_palloc(pool, s->cap * sizeof(mx_state_slot_t));
    if (s->slots == NULL) {
        return NULL;
    }

    memcpy(s->slots, state->slots, s->cap * sizeof(mx_state_slot_t));

    return s;
}


static int
mx_state_cmp(const void *a, const void *b)
{
    const mx_auth_event_t  *x, *y;
    int                     rc;

    x = *(const mx_auth_event_t **) a;
    y = *(const mx_auth_event_t **) b;

    rc = strcmp(x->type, y->type);

    return rc ? rc : strcmp(x->state_key, y->state_key);
}


const mx_auth_event_t **
mx_state_sorted(mx_pool_t *pool, const mx_state_t *state, size_t *n)
{
    const mx_auth_event_t  **out, *e;
    size_t                   i, k;

    out = mx_palloc(pool, (state->n + 1) * sizeof(mx_auth_event_t *));
    if (out == NULL) {
        return NULL;
    }

    i = 0;
    k = 0;

    while ((e = mx_state_next(state, &i)) != NULL) {
        out[k++] = e;
    }

    qsort(out, k, sizeof(mx_auth_event_t *), mx_state_cmp);
    *n = k;

    return out;
}


/* --- identifiers ------------------------------------------------------------ */


/* the server part of "@user:server", "!room:server" or "$event:server" */
static const char *
mx_auth_domain(const char *id)
{
    const char  *p;

    if (id == NULL) {
        return NULL;
    }

    p = strchr(id, ':');

    return p ? p + 1 : NULL;
}


static int
mx_auth_same_domain(const char *a, const char *b)
{
    a = mx_auth_domain(a);
    b = mx_auth_domain(b);

    return a != NULL && b != NULL && strcmp(a, b) == 0;
}


const mx_room_version_t *
mx_auth_create_version(const mx_auth_event_t *create)
{
    const mx_json_t  *v;

    v = mx_json_get(create->content, "room_version");
    if (v == NULL) {
        return mx_room_version("1", 1);
    }

    if (v->type != MX_JSON_STRING) {
        return NULL;
    }

    return mx_room_version(v->u.s.p, v->u.s.len);
}


/* --- power levels ------------------------------------------------------------ */


/*
 * The legacy string form (v1-stringy-power-levels): optional whitespace,
 * an optional single sign, base-10 digits with any leading zeroes, optional
 * whitespace; nothing else, no decimal point.
 */

static int
mx_pl_string(const char *p, size_t len, int64_t *out)
{
    const char  *end;
    uint64_t     v, lim;
    int          neg;

    end = p + len;
    neg = 0;
    v = 0;

#define mx_ws(c)  ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r' \
                   || (c) == '\f' || (c) == '\v')

    while (p < end && mx_ws(*p)) {
        p++;
    }

    if (p < end && (*p == '+' || *p == '-')) {
        neg = (*p == '-');
        p++;
    }

    if (p == end || *p < '0' || *p > '9') {
        return -1;
    }

    lim = neg ? (uint64_t) INT64_MAX + 1 : (uint64_t) INT64_MAX;

    while (p < end && *p >= '0' && *p <= '9') {
        if (v > (lim - (uint64_t) (*p - '0')) / 10) {
            return -1;
        }

        v = v * 10 + (uint64_t) (*p - '0');
        p++;
    }

    while (p < end && mx_ws(*p)) {
        p++;
    }

#undef mx_ws

    if (p != end) {
        return -1;
    }

    if (neg) {
        *out = v == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) v;

    } else {
        *out = (int64_t) v;
    }

    return 0;
}


int
mx_auth_pl_value(const mx_room_version_t *rv, const mx_json_t *v,
    int64_t *out)
{
    double  f;

    if (v == NULL) {
        return -1;
    }

    switch (v->type) {

    case MX_JSON_INT:
        *out = v->u.i;
        break;

    case MX_JSON_STRING:
        if (rv->integer_pl || strlen(v->u.s.p) != v->u.s.len
            || mx_pl_string(v->u.s.p, v->u.s.len, out) != 0)
        {
            return -1;
        }

        break;

    case MX_JSON_FLOAT:
        /* v1-floaty-power-levels: exponent applied, then truncated */
        if (!rv->float_pl || v->u.num.digits != NULL || !isfinite(v->u.num.f)) {
            return -1;
        }

        f = trunc(v->u.num.f);

        if (f < -9223372036854775808.0 || f >= 9223372036854775808.0) {
            return -1;
        }

        *out = (int64_t) f;
        break;

    default:
        return -1;
    }

    /* room creators alone are infinitely powerful */
    if (*out == MX_PL_INFINITE) {
        *out = MX_PL_INFINITE - 1;
    }

    return 0;
}


/*
 * Read a power levels event; NULL reads as the room without one.  A value
 * that is absent, or not a power level in this room version, keeps its
 * default (the rules refuse such events in v10 and later).
 */

static void
mx_pl_load(const mx_room_version_t *rv, const mx_auth_event_t *ev, mx_pl_t *pl)
{
    const mx_json_t  *c;
    int64_t          *fields[7];
    int64_t           v;
    int               i;

    pl->event = ev;
    pl->users = NULL;
    pl->events = NULL;
    pl->notifications = NULL;
    pl->users_default = 0;
    pl->events_default = 0;
    pl->state_default = ev ? 50 : 0;
    pl->ban = 50;
    pl->kick = 50;
    pl->redact = 50;
    pl->invite = 0;

    if (ev == NULL) {
        return;
    }

    c = ev->content;
    pl->users = mx_json_get_obj(c, "users");
    pl->events = mx_json_get_obj(c, "events");
    pl->notifications = mx_json_get_obj(c, "notifications");

    /* in the order of mx_pl_names */
    fields[0] = &pl->users_default;
    fields[1] = &pl->events_default;
    fields[2] = &pl->state_default;
    fields[3] = &pl->ban;
    fields[4] = &pl->redact;
    fields[5] = &pl->kick;
    fields[6] = &pl->invite;

    for (i = 0; mx_pl_names[i]; i++) {
        if (mx_auth_pl_value(rv, mx_json_get(c, mx_pl_names[i]), &v) == 0) {
            *fields[i] = v;
        }
    }
}


/*
 * Room creators: content.creator before v11, the create event's sender from
 * v11, and from v12 also content.additional_creators.
 */

static int
mx_auth_is_creator(const mx_room_version_t *rv, const mx_auth_event_t *create,
    const char *user)
{
    const mx_json_t  *arr, *v;
    size_t            i;

    if (create == NULL || user == NULL) {
        return 0;
    }

    if (!rv->creator_is_sender) {
        v = mx_json_get(create->content, "creator");
        return mx_json_is(v, MX_JSON_STRING) && strcmp(v->u.s.p, user) == 0;
    }

    if (strcmp(create->sender, user) == 0) {
        return 1;
    }

    if (!rv->room_id_from_create) {
        return 0;
    }

    arr = mx_json_get_arr(create->content, "additional_creators");

    for (i = 0; arr && i < arr->u.a.n; i++) {
        v = arr->u.a.v[i];

        if (mx_json_is(v, MX_JSON_STRING) && strcmp(v->u.s.p, user) == 0) {
            return 1;
        }
    }

    return 0;
}


static int64_t
mx_pl_user(const mx_room_version_t *rv, const mx_auth_event_t *create,
    const mx_pl_t *pl, const char *user)
{
    int64_t  v;

    if (rv->room_id_from_create && mx_auth_is_creator(rv, create, user)) {
        return MX_PL_INFINITE;
    }

    if (pl->event == NULL) {
        return mx_auth_is_creator(rv, create, user) ? 100 : 0;
    }

    if (mx_auth_pl_value(rv, mx_json_get(pl->users, user), &v) == 0) {
        return v;
    }

    return pl->users_default;
}


int64_t
mx_auth_user_level(const mx_room_version_t *rv, const mx_auth_event_t *create,
    const mx_auth_event_t *power_levels, const char *user)
{
    mx_pl_t  pl;

    mx_pl_load(rv, power_levels, &pl);

    return mx_pl_user(rv, create, &pl, user);
}


/* the level needed to send an event of this type (state or not) */
static int64_t
mx_pl_event(const mx_room_version_t *rv, const mx_pl_t *pl,
    const mx_auth_event_t *ev)
{
    int64_t  v;

    if (mx_auth_pl_value(rv, mx_json_get(pl->events, ev->type), &v) == 0) {
        return v;
    }

    return ev->state_key ? pl->state_default : pl->events_default;
}


/* --- auth events selection ---------------------------------------------------- */


size_t
mx_auth_keys(const mx_room_version_t *rv, const mx_auth_event_t *ev,
    mx_auth_key_t keys[MX_AUTH_KEYS_MAX])
{
    const mx_json_t  *tpi, *v;
    const char       *m;
    size_t            n;

#define MX_KEY(t, s)  do { keys[n].type = t; keys[n].state_key = s; n++; }   \
                      while (0)

    n = 0;

    if (strcmp(ev->type, MX_T_CREATE) == 0 && ev->n_prev == 0) {
        return 0;
    }

    if (!rv->room_id_from_create) {
        MX_KEY(MX_T_CREATE, "");
    }

    MX_KEY(MX_T_PL, "");
    MX_KEY(MX_T_MEMBER, ev->sender);

    if (strcmp(ev->type, MX_T_MEMBER) != 0 || ev->state_key == NULL) {
        return n;
    }

    if (strcmp(ev->state_key, ev->sender) != 0) {
        MX_KEY(MX_T_MEMBER, ev->state_key);
    }

    m = ev->membership;

    /* knock needs the join rule as much as join and invite do */
    if (mx_streq(m, "join") || mx_streq(m, "invite")
        || (rv->knock && mx_streq(m, "knock")))
    {
        MX_KEY(MX_T_JOIN, "");
    }

    if (mx_streq(m, "invite")) {
        tpi = mx_json_get_obj(ev->content, "third_party_invite");
        v = mx_json_get(mx_json_get_obj(tpi, "signed"), "token");

        if (mx_json_is(v, MX_JSON_STRING) && strlen(v->u.s.p) == v->u.s.len) {
            MX_KEY(MX_T_3PID, v->u.s.p);
        }
    }

    if (rv->restricted) {
        v = mx_json_get(ev->content, "join_authorised_via_users_server");

        if (mx_json_is(v, MX_JSON_STRING) && strlen(v->u.s.p) == v->u.s.len
            && strcmp(v->u.s.p, ev->sender) != 0
            && strcmp(v->u.s.p, ev->state_key) != 0)
        {
            MX_KEY(MX_T_MEMBER, v->u.s.p);
        }
    }

#undef MX_KEY

    return n;
}


size_t
mx_auth_select(const mx_room_version_t *rv, const mx_auth_event_t *ev,
    const mx_state_t *state, const mx_auth_event_t *out[MX_AUTH_KEYS_MAX])
{
    mx_auth_key_t           keys[MX_AUTH_KEYS_MAX];
    const mx_auth_event_t  *e;
    size_t                  i, n, k;

    n = mx_auth_keys(rv, ev, keys);
    k = 0;

    for (i = 0; i < n; i++) {
        e = mx_state_get(state, keys[i].type, keys[i].state_key);
        if (e) {
            out[k++] = e;
        }
    }

    return k;
}


/* --- the rules ---------------------------------------------------------------- */


static const char *
mx_auth_membership(mx_auth_run_t *r, const char *user)
{
    const mx_auth_event_t  *m;

    if (user == NULL) {
        return "leave";
    }

    m = r->lookup(r->ctx, MX_T_MEMBER, user);

    return (m && m->membership) ? m->membership : "leave";
}


static int64_t
mx_auth_level(mx_auth_run_t *r, const char *user)
{
    return mx_pl_user(r->rv, r->create, &r->pl, user);
}


/* the room's join rule: NULL when there is none, or it is not a string */

static const char *
mx_auth_join_rule(mx_auth_run_t *r)
{
    const mx_auth_event_t  *jr;
    const mx_json_t        *v;

    jr = r->lookup(r->ctx, MX_T_JOIN, "");
    v = jr ? mx_json_get(jr->content, "join_rule") : NULL;

    return mx_json_is(v, MX_JSON_STRING) ? v->u.s.p : NULL;
}


/*
 * Rule 1: the create event.
 */

static const char *
mx_auth_create(mx_auth_run_t *r)
{
    const mx_auth_event_t  *ev;
    const mx_json_t        *v, *arr;
    size_t                  i;

    ev = r->ev;

    if (ev->n_prev > 0) {
        return "create.prev_events";
    }

    if (r->rv->room_id_from_create) {
        if (mx_json_get(ev->json, "room_id") != NULL) {
            return "create.room_id";
        }

    } else if (!mx_auth_same_domain(ev->room_id, ev->sender)) {
        return "create.room_id_domain";
    }

    v = mx_json_get(ev->content, "room_version");
    if (v && (v->type != MX_JSON_STRING
              || mx_room_version(v->u.s.p, v->u.s.len) == NULL))
    {
        return "create.room_version";
    }

    if (!r->rv->creator_is_sender
        && mx_json_get(ev->content, "creator") == NULL)
    {
        return "create.no_creator";
    }

    if (r->rv->room_id_from_create) {
        v = mx_json_get(ev->content, "additional_creators");

        if (v) {
            if (v->type != MX_JSON_ARRAY) {
                return "create.additional_creators";
            }

            arr = v;

            for (i = 0; i < arr->u.a.n; i++) {
                v = arr->u.a.v[i];

                if (!mx_json_is(v, MX_JSON_STRING)
                    || !mx_user_id_historical_valid(v->u.s.p, v->u.s.len))
                {
                    return "create.additional_creators";
                }
            }
        }
    }

    return NULL;
}


/*
 * Does any signature in signed verify with a public key of the
 * m.room.third_party_invite event?  Keys are unpadded base64, standard or
 * URL-safe; a padded key is accepted too.
 */

static int
mx_auth_3pid_signed(mx_auth_run_t *r, const mx_json_t *signed_,
    const mx_auth_event_t *invite)
{
    const mx_json_t  *sigs, *keys, *arr, *k;
    const char       *b64[64];
    unsigned char     pk[mx_base64_decoded_max(64)];
    size_t            nk, i, j, s, len;
    ssize_t           n;

    sigs = mx_json_get_obj(signed_, "signatures");
    if (sigs == NULL) {
        return 0;
    }

    nk = 0;

    k = mx_json_get(invite->content, "public_key");
    if (mx_json_is(k, MX_JSON_STRING)) {
        b64[nk++] = k->u.s.p;
    }

    arr = mx_json_get_arr(invite->content, "public_keys");

    for (i = 0; arr && i < arr->u.a.n && nk < 64; i++) {
        k = mx_json_get(arr->u.a.v[i], "public_key");
        if (mx_json_is(k, MX_JSON_STRING)) {
            b64[nk++] = k->u.s.p;
        }
    }

    for (i = 0; i < nk; i++) {
        len = strlen(b64[i]);

        while (len > 0 && b64[i][len - 1] == '=') {
            len--;
        }

        if (len > 64) {
            continue;
        }

        n = mx_base64_decode(b64[i], len, pk, MX_BASE64_STD);
        if (n != 32) {
            n = mx_base64_decode(b64[i], len, pk, MX_BASE64_URLSAFE);
        }

        if (n != 32) {
            continue;
        }

        for (s = 0; s < sigs->u.o.n; s++) {
            keys = sigs->u.o.m[s].value;

            if (!mx_json_is(keys, MX_JSON_OBJECT)) {
                continue;
            }

            for (j = 0; j < keys->u.o.n; j++) {
                if (mx_verify_json(r->pool, signed_, sigs->u.o.m[s].key,
                                   keys->u.o.m[j].key, pk,
                                   r->rv->strict_canonical ? MX_JSON_STRICT
                                                           : 0)
                    == 0)
                {
                    return 1;
                }
            }
        }
    }

    return 0;
}


/*
 * Rule 5.4: an invite.  With third_party_invite, the invite is allowed on
 * the strength of the identity server's signature alone.
 */

static const char *
mx_auth_invite(mx_auth_run_t *r, const char *target_m)
{
    const mx_auth_event_t  *ev, *tpi_ev;
    const mx_json_t        *tpi, *signed_, *mxid, *token;

    ev = r->ev;
    tpi = mx_json_get(ev->content, "third_party_invite");

    if (tpi) {
        if (mx_streq(target_m, "ban")) {
            return "invite.3pid_target_banned";
        }

        signed_ = mx_json_get_obj(tpi, "signed");
        if (signed_ == NULL) {
            return "invite.3pid_no_signed";
        }

        mxid = mx_json_get(signed_, "mxid");
        token = mx_json_get(signed_, "token");

        if (!mx_json_is(mxid, MX_JSON_STRING)
            || !mx_json_is(token, MX_JSON_STRING)
            || strlen(token->u.s.p) != token->u.s.len)
        {
            return "invite.3pid_signed_fields";
        }

        if (strlen(mxid->u.s.p) != mxid->u.s.len
            || strcmp(mxid->u.s.p, ev->state_key) != 0)
        {
            return "invite.3pid_mxid";
        }

        tpi_ev = r->lookup(r->ctx, MX_T_3PID, token->u.s.p);
        if (tpi_ev == NULL) {
            return "invite.3pid_no_invite_event";
        }

        if (strcmp(tpi_ev->sender, ev->sender) != 0) {
            return "invite.3pid_sender";
        }

        if (mx_auth_3pid_signed(r, signed_, tpi_ev)) {
            return NULL;
        }

        return "invite.3pid_signature";
    }

    if (strcmp(r->sender_membership, "join") != 0) {
        return "invite.sender_not_joined";
    }

    if (strcmp(target_m, "join") == 0 || strcmp(target_m, "ban") == 0) {
        return "invite.target_joined_or_banned";
    }

    if (r->sender_level >= r->pl.invite) {
        return NULL;
    }

    return "invite.power";
}


/*
 * Rule 5.3: a join.  The join rule decides; restricted rooms (v8+) and
 * knock_restricted rooms (v10+) also admit a join authorised by a member
 * who may invite.
 */

static const char *
mx_auth_join(mx_auth_run_t *r)
{
    const mx_auth_event_t  *ev;
    const mx_json_t        *v;
    const char             *rule, *via, *m;
    int                     restricted;

    ev = r->ev;

    if (r->create && ev->n_prev == 1
        && strcmp(ev->prev_events[0], r->create->event_id) == 0
        && (r->rv->creator_is_sender
            ? strcmp(ev->state_key, r->create->sender) == 0
            : mx_auth_is_creator(r->rv, r->create, ev->state_key)))
    {
        return NULL;
    }

    if (strcmp(ev->sender, ev->state_key) != 0) {
        return "join.not_self";
    }

    m = r->sender_membership;

    if (strcmp(m, "ban") == 0) {
        return "join.banned";
    }

    rule = mx_auth_join_rule(r);

    if (rule == NULL) {
        return "join.not_allowed";
    }

    if (strcmp(rule, "invite") == 0
        || (r->rv->knock && strcmp(rule, "knock") == 0))
    {
        if (strcmp(m, "invite") == 0 || strcmp(m, "join") == 0) {
            return NULL;
        }

        return "join.not_invited";
    }

    restricted = (r->rv->restricted && strcmp(rule, "restricted") == 0)
                 || (r->rv->knock_restricted
                     && strcmp(rule, "knock_restricted") == 0);

    if (restricted) {
        if (strcmp(m, "join") == 0 || strcmp(m, "invite") == 0) {
            return NULL;
        }

        v = mx_json_get(ev->content, "join_authorised_via_users_server");
        if (!mx_json_is(v, MX_JSON_STRING)
            || strlen(v->u.s.p) != v->u.s.len)
        {
            return "join.restricted_no_authoriser";
        }

        via = v->u.s.p;

        /* may invite: joined, and at least the invite level */
        if (strcmp(mx_auth_membership(r, via), "join") != 0
            || mx_auth_level(r, via) < r->pl.invite)
        {
            return "join.restricted_authoriser";
        }

        return NULL;
    }

    if (strcmp(rule, "public") == 0) {
        return NULL;
    }

    return "join.not_allowed";
}


/*
 * Rule 5: m.room.member.
 */

static const char *
mx_auth_member(mx_auth_run_t *r)
{
    const mx_auth_event_t  *ev;
    const mx_json_t        *v, *sigs;
    const char             *m, *target_m, *via, *server, *rule;
    int64_t                 target_level;

    ev = r->ev;
    m = ev->membership;

    if (ev->state_key == NULL || m == NULL) {
        return "member.malformed";
    }

    if (r->rv->restricted) {
        v = mx_json_get(ev->content, "join_authorised_via_users_server");

        if (v) {
            if (!mx_json_is(v, MX_JSON_STRING)
                || !mx_user_id_historical_valid(v->u.s.p, v->u.s.len))
            {
                return "member.authoriser_signature";
            }

            via = v->u.s.p;
            server = mx_auth_domain(via);
            sigs = mx_json_get_obj(ev->json, "signatures");

            if (!mx_json_is(mx_json_get(sigs, server), MX_JSON_OBJECT)
                || mx_json_get(sigs, server)->u.o.n == 0)
            {
                return "member.authoriser_signature";
            }
        }
    }

    target_m = strcmp(ev->state_key, ev->sender) == 0
               ? r->sender_membership
               : mx_auth_membership(r, ev->state_key);

    if (strcmp(m, "join") == 0) {
        return mx_auth_join(r);
    }

    if (strcmp(m, "invite") == 0) {
        return mx_auth_invite(r, target_m);
    }

    if (strcmp(m, "leave") == 0) {
        if (strcmp(ev->sender, ev->state_key) == 0) {
            if (strcmp(target_m, "invite") == 0
                || strcmp(target_m, "join") == 0
                || (r->rv->knock && strcmp(target_m, "knock") == 0))
            {
                return NULL;
            }

            return "leave.not_member";
        }

        if (strcmp(r->sender_membership, "join") != 0) {
            return "leave.sender_not_joined";
        }

        target_level = mx_auth_level(r, ev->state_key);

        if (strcmp(target_m, "ban") == 0 && r->sender_level < r->pl.ban) {
            return "leave.unban_power";
        }

        if (r->sender_level >= r->pl.kick
            && target_level < r->sender_level)
        {
            return NULL;
        }

        return "leave.kick_power";
    }

    if (strcmp(m, "ban") == 0) {
        if (strcmp(r->sender_membership, "join") != 0) {
            return "ban.sender_not_joined";
        }

        target_level = mx_auth_level(r, ev->state_key);

        if (r->sender_level >= r->pl.ban && target_level < r->sender_level) {
            return NULL;
        }

        return "ban.power";
    }

    if (r->rv->knock && strcmp(m, "knock") == 0) {
        rule = mx_auth_join_rule(r);

        if (!mx_streq(rule, "knock")
            && !(r->rv->knock_restricted && mx_streq(rule, "knock_restricted")))
        {
            return "knock.join_rule";
        }

        if (strcmp(ev->sender, ev->state_key) != 0) {
            return "knock.not_self";
        }

        if (strcmp(r->sender_membership, "ban") != 0
            && strcmp(r->sender_membership, "invite") != 0
            && strcmp(r->sender_membership, "join") != 0)
        {
            return NULL;
        }

        return "knock.membership";
    }

    if (strcmp(m, "knock") == 0) {
        return "knock.room_version";        /* before version 7 */
    }

    return "member.unknown_membership";
}


/*
 * Rule 10.1 to 10.4 (v12 numbering): the shape of the new content.  Before
 * v10 only "users" is checked, and its values may be strings (and floats
 * before v6); from v10 every level must be an integer.
 */

static const char *
mx_auth_pl_shape(mx_auth_run_t *r)
{
    const mx_json_t  *c, *v, *obj;
    const char       *objs[] = { "events", "notifications", NULL };
    int64_t           x;
    size_t            i;
    int               k;

    c = r->ev->content;

    if (r->rv->integer_pl) {
        for (k = 0; mx_pl_names[k]; k++) {
            v = mx_json_get(c, mx_pl_names[k]);
            if (v && v->type != MX_JSON_INT) {
                return "power_levels.not_integer";
            }
        }

        for (k = 0; objs[k]; k++) {
            obj = mx_json_get(c, objs[k]);
            if (obj == NULL) {
                continue;
            }

            if (obj->type != MX_JSON_OBJECT) {
                return "power_levels.not_integer";
            }

            for (i = 0; i < obj->u.o.n; i++) {
                if (obj->u.o.m[i].value->type != MX_JSON_INT) {
                    return "power_levels.not_integer";
                }
            }
        }
    }

    obj = mx_json_get(c, "users");

    if (obj) {
        if (obj->type != MX_JSON_OBJECT) {
            return "power_levels.users";
        }

        for (i = 0; i < obj->u.o.n; i++) {
            if (!mx_user_id_historical_valid(obj->u.o.m[i].key,
                                       obj->u.o.m[i].key_len)
                || strlen(obj->u.o.m[i].key) != obj->u.o.m[i].key_len
                || mx_auth_pl_value(r->rv, obj->u.o.m[i].value, &x) != 0)
            {
                return "power_levels.users";
            }

            if (r->rv->room_id_from_create
                && mx_auth_is_creator(r->rv, r->create, obj->u.o.m[i].key))
            {
                return "power_levels.creator_in_users";
            }
        }
    }

    return NULL;
}


/*
 * Walk two objects' members in key order (they are kept sorted) and check
 * each entry added, changed or removed:
 *
 *   old  a:50  b:100        c:0
 *   new  a:50         b2:0  c:75
 *          =    removed added changed
 *
 * A value that is not a power level reads as absent.  For "users" the
 * sender's own entry is exempt from the check on the old value, and the
 * old value may not even equal the sender's level.
 */

static const char *
mx_auth_pl_diff(mx_auth_run_t *r, const mx_json_t *old, const mx_json_t *new,
    int users, const char *why_old, const char *why_new)
{
    const mx_json_member_t  *a, *b;
    const char              *key;
    size_t                   i, j, na, nb;
    int64_t                  ov, nv, lvl;
    int                      rc, has_o, has_n;

    na = mx_json_is(old, MX_JSON_OBJECT) ? old->u.o.n : 0;
    nb = mx_json_is(new, MX_JSON_OBJECT) ? new->u.o.n : 0;
    lvl = r->sender_level;
    i = 0;
    j = 0;

    while (i < na || j < nb) {
        a = i < na ? &old->u.o.m[i] : NULL;
        b = j < nb ? &new->u.o.m[j] : NULL;

        if (a && b) {
            rc = memcmp(a->key, b->key,
                        a->key_len < b->key_len ? a->key_len : b->key_len);
            if (rc == 0) {
                rc = (a->key_len > b->key_len) - (a->key_len < b->key_len);
            }

        } else {
            rc = a ? -1 : 1;
        }

        if (rc > 0) {
            a = NULL;
        } else if (rc < 0) {
            b = NULL;
        }

        i += (a != NULL);
        j += (b != NULL);
        key = a ? a->key : b->key;

        has_o = a && mx_auth_pl_value(r->rv, a->value, &ov) == 0;
        has_n = b && mx_auth_pl_value(r->rv, b->value, &nv) == 0;

        if (has_o == has_n && (!has_o || ov == nv)) {
            continue;
        }

        if (has_o) {
            if (users) {
                if (strcmp(key, r->ev->sender) != 0 && ov >= lvl) {
                    return why_old;
                }

            } else if (ov > lvl) {
                return why_old;
            }
        }

        if (has_n && nv > lvl) {
            return why_new;
        }
    }

    return NULL;
}


/*
 * Rule 10 (v12 numbering; 9 from v7, 10 in v1 to v5): m.room.power_levels.
 */

static const char *
mx_auth_power_levels(mx_auth_run_t *r)
{
    const mx_json_t  *oc, *nc;
    const char       *why;
    int64_t           ov, nv;
    int               k, has_o, has_n;

    why = mx_auth_pl_shape(r);
    if (why) {
        return why;
    }

    if (r->pl.event == NULL) {
        return NULL;
    }

    oc = r->pl.event->content;
    nc = r->ev->content;

    for (k = 0; mx_pl_names[k]; k++) {
        has_o = mx_auth_pl_value(r->rv, mx_json_get(oc, mx_pl_names[k]), &ov)
                == 0;
        has_n = mx_auth_pl_value(r->rv, mx_json_get(nc, mx_pl_names[k]), &nv)
                == 0;

        if (has_o == has_n && (!has_o || ov == nv)) {
            continue;
        }

        if (has_o && ov > r->sender_level) {
            return "power_levels.change_current";
        }

        if (has_n && nv > r->sender_level) {
            return "power_levels.change_new";
        }
    }

    why = mx_auth_pl_diff(r, mx_json_get(oc, "events"),
                          mx_json_get(nc, "events"), 0,
                          "power_levels.events_current",
                          "power_levels.events_new");
    if (why) {
        return why;
    }

    if (r->rv->notifications_pl) {
        why = mx_auth_pl_diff(r, mx_json_get(oc, "notifications"),
                              mx_json_get(nc, "notifications"), 0,
                              "power_levels.notifications_current",
                              "power_levels.notifications_new");
        if (why) {
            return why;
        }
    }

    return mx_auth_pl_diff(r, mx_json_get(oc, "users"),
                           mx_json_get(nc, "users"), 1,
                           "power_levels.users_current",
                           "power_levels.users_new");
}


static const char *
mx_auth_rules(mx_auth_run_t *r)
{
    const mx_auth_event_t  *ev;
    const mx_json_t        *fed;
    const char             *id;
    size_t                  n;

    ev = r->ev;

    /* 1 */
    if (strcmp(ev->type, MX_T_CREATE) == 0) {
        return mx_auth_create(r);
    }

    r->create = r->lookup(r->ctx, MX_T_CREATE, "");

    if (r->rv->room_id_from_create) {
        /* 2: the room ID is the create event's ID with "!" for "$" */
        if (r->create == NULL || r->create->rejected) {
            return "room_id.no_create";
        }

        id = r->create->event_id;
        n = strlen(id);

        if (ev->room_id == NULL || id[0] != '$' || ev->room_id[0] != '!'
            || strlen(ev->room_id) != n
            || memcmp(ev->room_id + 1, id + 1, n - 1) != 0)
        {
            return "room_id.not_create";
        }

    } else if (r->create == NULL) {
        return "auth_events.no_create";
    }

    /* 4 (3 before v12) */
    fed = mx_json_get(r->create->content, "m.federate");
    if (fed && fed->type == MX_JSON_FALSE
        && !mx_auth_same_domain(ev->sender, r->create->sender))
    {
        return "federate";
    }

    /* m.room.aliases, v1 to v5 */
    if (r->rv->aliases_rule && strcmp(ev->type, MX_T_ALIASES) == 0) {
        if (ev->state_key == NULL) {
            return "aliases.no_state_key";
        }

        id = mx_auth_domain(ev->sender);
        if (id == NULL || strcmp(id, ev->state_key) != 0) {
            return "aliases.domain";
        }

        return NULL;
    }

    mx_pl_load(r->rv, r->lookup(r->ctx, MX_T_PL, ""), &r->pl);
    r->sender_level = mx_auth_level(r, ev->sender);
    r->sender_membership = mx_auth_membership(r, ev->sender);

    /* 5 */
    if (strcmp(ev->type, MX_T_MEMBER) == 0) {
        return mx_auth_member(r);
    }

    /* 6 */
    if (strcmp(r->sender_membership, "join") != 0) {
        return "sender_not_joined";
    }

    /* 7 */
    if (strcmp(ev->type, MX_T_3PID) == 0) {
        return r->sender_level >= r->pl.invite ? NULL
                                               : "third_party_invite.power";
    }

    /* 8 */
    if (mx_pl_event(r->rv, &r->pl, ev) > r->sender_level) {
        return "event_power";
    }

    /* 9 */
    if (ev->state_key && ev->state_key[0] == '@'
        && strcmp(ev->state_key, ev->sender) != 0)
    {
        return "state_key_user";
    }

    /* 10 */
    if (strcmp(ev->type, MX_T_PL) == 0) {
        return mx_auth_power_levels(r);
    }

    /* m.room.redaction, v1 and v2 */
    if (r->rv->redaction_rule && strcmp(ev->type, MX_T_REDACTION) == 0) {
        if (r->sender_level >= r->pl.redact) {
            return NULL;
        }

        if (ev->redacts && mx_auth_same_domain(ev->redacts, ev->event_id)) {
            return NULL;
        }

        return "redaction.power";
    }

    return NULL;
}


int
mx_auth_check_lookup(mx_pool_t *pool, const mx_room_version_t *rv,
    const mx_auth_event_t *ev, mx_auth_lookup_pt lookup, void *ctx,
    const char **reason)
{
    mx_auth_run_t  r;
    const char    *why;

    memset(&r, 0, sizeof(r));
    r.pool = pool;
    r.rv = rv;
    r.ev = ev;
    r.lookup = lookup;
    r.ctx = ctx;

    why = mx_auth_rules(&r);

    if (reason) {
        *reason = why;
    }

    return why ? MX_AUTH_DENY : MX_AUTH_ALLOW;
}


int
mx_auth_check(mx_pool_t *pool, const mx_room_version_t *rv,
    const mx_auth_event_t *ev, const mx_state_t *state, const char **reason)
{
    return mx_auth_check_lookup(pool, rv, ev, mx_state_lookup,
                                (void *) state, reason);
}


/*
 * Rule 3 (2 before v12): the auth events themselves, then the rest against
 * a state made of them.
 */

int
mx_auth_check_auth_events(mx_pool_t *pool, const mx_room_version_t *rv,
    const mx_auth_event_t *ev, const mx_auth_event_t **auth, size_t n,
    const mx_auth_event_t *create, const char **reason)
{
    mx_auth_key_t   keys[MX_AUTH_KEYS_MAX];
    mx_state_t     *state;
    size_t          i, j, nk;
    int             found;

#define MX_DENY(why)  do { *reason = why; return MX_AUTH_DENY; } while (0)

    if (strcmp(ev->type, MX_T_CREATE) == 0 && ev->n_prev == 0) {
        return mx_auth_check_lookup(pool, rv, ev, mx_state_lookup, NULL,
                                    reason);
    }

    /* every listed auth event given, and only those */
    for (i = 0; i < ev->n_auth; i++) {
        for (j = 0; j < n; j++) {
            if (strcmp(auth[j]->event_id, ev->auth_events[i]) == 0) {
                break;
            }
        }

        if (j == n) {
            MX_DENY("auth_events.missing");
        }
    }

    for (j = 0; j < n; j++) {
        for (i = 0; i < ev->n_auth; i++) {
            if (strcmp(auth[j]->event_id, ev->auth_events[i]) == 0) {
                break;
            }
        }

        if (i == ev->n_auth) {
            MX_DENY("auth_events.unlisted");
        }
    }

    nk = mx_auth_keys(rv, ev, keys);
    found = 0;

    for (j = 0; j < n; j++) {
        if (auth[j]->state_key == NULL) {
            MX_DENY("auth_events.unexpected");
        }

        for (i = 0; i < j; i++) {
            if (strcmp(auth[i]->type, auth[j]->type) == 0
                && strcmp(auth[i]->state_key, auth[j]->state_key) == 0)
            {
                MX_DENY("auth_events.duplicate");
            }
        }
    }

    for (j = 0; j < n; j++) {
        for (i = 0; i < nk; i++) {
            if (strcmp(keys[i].type, auth[j]->type) == 0
                && strcmp(keys[i].state_key, auth[j]->state_key) == 0)
            {
                break;
            }
        }

        if (i == nk) {
            MX_DENY("auth_events.unexpected");
        }

        if (auth[j]->rejected) {
            MX_DENY("auth_events.rejected");
        }

        /* v12 rule 3.5; earlier versions cannot mean otherwise */
        if (!mx_streq(auth[j]->room_id, ev->room_id)) {
            MX_DENY("auth_events.wrong_room");
        }

        if (strcmp(auth[j]->type, MX_T_CREATE) == 0) {
            found = 1;
        }
    }

    if (!rv->room_id_from_create && !found) {
        MX_DENY("auth_events.no_create");
    }

#undef MX_DENY

    state = mx_state_create(pool, n + 1);
    if (state == NULL) {
        *reason = "internal.nomem";
        return MX_AUTH_ERROR;
    }

    for (j = 0; j < n; j++) {
        if (mx_state_put(state, auth[j]) != 0) {
            *reason = "internal.nomem";
            return MX_AUTH_ERROR;
        }
    }

    if (rv->room_id_from_create && create) {
        if (mx_state_put(state, create) != 0) {
            *reason = "internal.nomem";
            return MX_AUTH_ERROR;
        }
    }

    return mx_auth_check(pool, rv, ev, state, reason);
}


/* --- reasons -------------------------------------------------------------------- */

static const struct {
    const char  *reason;
    const char  *text;
} mx_auth_reasons[] = {
    { "create.prev_events", "a create event has prev_events" },
    { "create.room_id", "a v12 create event has a room_id" },
    { "create.room_id_domain",
      "the create event's room_id and sender have different domains" },
    { "create.room_version", "the create event names an unknown room version" },
    { "create.no_creator", "the create event has no creator" },
    { "create.additional_creators",
      "additional_creators is not a list of valid user IDs" },
    { "room_id.no_create", "no accepted create event for the room ID" },
    { "room_id.not_create",
      "the room ID is not the create event's ID with the ! sigil" },
    { "auth_events.missing", "an auth event is missing" },
    { "auth_events.unlisted", "an auth event given is not in auth_events" },
    { "auth_events.duplicate", "two auth events share a type and state key" },
    { "auth_events.unexpected",
      "an auth event is not one the auth events selection picks" },
    { "auth_events.rejected", "an auth event was itself rejected" },
    { "auth_events.wrong_room", "an auth event belongs to another room" },
    { "auth_events.no_create", "no create event among the auth events" },
    { "federate", "the room does not federate with the sender's server" },
    { "aliases.no_state_key", "an m.room.aliases event has no state key" },
    { "aliases.domain",
      "an m.room.aliases state key is not the sender's domain" },
    { "member.malformed", "a member event has no state key or membership" },
    { "member.authoriser_signature",
      "the join is not signed by the authorising user's server" },
    { "member.unknown_membership", "unknown membership" },
    { "join.not_self", "a join whose sender is not its state key" },
    { "join.banned", "the joining user is banned" },
    { "join.not_invited", "the room is invite-only and the user not invited" },
    { "join.restricted_no_authoriser",
      "a restricted join names no authorising user" },
    { "join.restricted_authoriser",
      "the authorising user may not invite" },
    { "join.not_allowed", "the join rule does not allow joining" },
    { "invite.3pid_target_banned", "the invited user is banned" },
    { "invite.3pid_no_signed", "third_party_invite has no signed object" },
    { "invite.3pid_signed_fields", "signed lacks mxid or token" },
    { "invite.3pid_mxid", "signed.mxid is not the state key" },
    { "invite.3pid_no_invite_event",
      "no m.room.third_party_invite event for the token" },
    { "invite.3pid_sender",
      "the sender did not send the m.room.third_party_invite event" },
    { "invite.3pid_signature",
      "no signature in signed matches the invite's public keys" },
    { "invite.sender_not_joined", "the inviter is not joined" },
    { "invite.target_joined_or_banned",
      "the invited user is joined or banned" },
    { "invite.power", "the inviter is below the invite level" },
    { "leave.not_member", "leaving a room the user is not in" },
    { "leave.sender_not_joined", "the kicker is not joined" },
    { "leave.unban_power", "unbanning needs the ban level" },
    { "leave.kick_power",
      "the kicker is below the kick level or the target's level" },
    { "ban.sender_not_joined", "the banner is not joined" },
    { "ban.power", "the banner is below the ban level or the target's level" },
    { "knock.join_rule", "the join rule does not allow knocking" },
    { "knock.room_version", "the room version does not support knocking" },
    { "knock.not_self", "a knock whose sender is not its state key" },
    { "knock.membership", "the knocking user is banned, invited or joined" },
    { "sender_not_joined", "the sender is not joined" },
    { "third_party_invite.power", "the sender is below the invite level" },
    { "event_power", "the sender is below the level this event type needs" },
    { "state_key_user", "a state key naming another user" },
    { "power_levels.not_integer", "a power level is not an integer" },
    { "power_levels.users",
      "users is not an object of valid user IDs to power levels" },
    { "power_levels.creator_in_users",
      "a room creator appears in the power levels' users" },
    { "power_levels.change_current",
      "changes a level above the sender's own" },
    { "power_levels.change_new", "sets a level above the sender's own" },
    { "power_levels.events_current",
      "changes an event level above the sender's own" },
    { "power_levels.events_new",
      "sets an event level above the sender's own" },
    { "power_levels.notifications_current",
      "changes a notification level above the sender's own" },
    { "power_levels.notifications_new",
      "sets a notification level above the sender's own" },
    { "power_levels.users_current",
      "changes a user whose level is not below the sender's" },
    { "power_levels.users_new", "gives a user more than the sender's level" },
    { "redaction.power",
      "the redacter is below the redact level and of another domain" },
    { "internal.nomem", "out of memory" },
    { NULL, NULL }
};


const char *
mx_auth_reason_text(const char *reason)
{
    int  i;

    if (reason == NULL) {
        return "allowed";
    }

    for (i = 0; mx_auth_reasons[i].reason; i++) {
        if (strcmp(mx_auth_reasons[i].reason, reason) == 0) {
            return mx_auth_reasons[i].text;
        }
    }

    return reason;
}

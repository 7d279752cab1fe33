/*
 * roomserver_room: the rooms the roomserver keeps in memory, and reading
 * what it does not have from Redis.  See roomserver.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roomserver.h"


#define RS_BUCKETS       4096
#define RS_IDLE_MS       (10 * 60 * 1000)
#define RS_POOL_MAX      (256 * 1024 * 1024)
#define RS_LOAD_BATCH    256


static rs_room_t  *rs_rooms[RS_BUCKETS];


static size_t
rs_bucket(const char *room_id)
{
    return (size_t) (mx_idmap_hash(room_id, strlen(room_id),
                                   MX_IDMAP_HASH_INIT) % RS_BUCKETS);
}


/*
 * State as IDs.
 */

rs_ids_t *
rs_ids_new(mx_pool_t *pool, size_t hint)
{
    rs_ids_t  *ids;

    ids = mx_palloc(pool, sizeof(rs_ids_t));
    if (ids == NULL || mx_idmap_init(&ids->map, pool, hint) != 0) {
        return NULL;
    }

    return ids;
}


/* "<type>\037<state_key>" into buf (or the pool when it does not fit) */

static char *
rs_ids_key(mx_pool_t *pool, char *buf, size_t size, const char *type,
    const char *state_key)
{
    size_t  tl, kl;
    char   *p;

    tl = strlen(type);
    kl = strlen(state_key);

    p = tl + kl + 2 <= size ? buf : mx_palloc(pool, tl + kl + 2);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, type, tl);
    p[tl] = RS_SEP;
    memcpy(p + tl + 1, state_key, kl + 1);

    return p;
}


const char *
rs_ids_get(rs_ids_t *ids, const char *type, const char *state_key)
{
    char   buf[600], *key;

    key = rs_ids_key(ids->map.pool, buf, sizeof(buf), type, state_key);
    if (key == NULL) {
        return NULL;
    }

    return mx_idmap_get(&ids->map, key);
}


int
rs_ids_set(mx_pool_t *pool, rs_ids_t *ids, const char *type,
    const char *state_key, const char *event_id)
{
    char  *key;

    key = rs_ids_key(pool, NULL, 0, type, state_key);
    if (key == NULL) {
        return -1;
    }

    return mx_idmap_put(&ids->map, key, (void *) event_id);
}


rs_ids_t *
rs_ids_copy(mx_pool_t *pool, rs_ids_t *ids)
{
    rs_ids_t  *c;
    size_t     i;
    char      *key;

    c = rs_ids_new(pool, ids->map.n);
    if (c == NULL) {
        return NULL;
    }

    /*
     * The keys are copied: a state resolved for one event lives in that
     * event's pool, and the copy may become the room's current state.
     */
    for (i = 0; i < ids->map.cap; i++) {
        if (ids->map.slots[i].key == NULL) {
            continue;
        }

        key = mx_pstrndup(pool, ids->map.slots[i].key,
                          strlen(ids->map.slots[i].key));
        if (key == NULL
            || mx_idmap_put(&c->map, key, ids->map.slots[i].value) != 0)
        {
            return NULL;
        }
    }

    return c;
}


/* a flat reply {key, id, key, id, ...} as IDs */

static rs_ids_t *
rs_ids_from_reply(mx_pool_t *pool, redisReply *r)
{
    rs_ids_t  *ids;
    size_t     i;
    char      *k, *v;

    ids = rs_ids_new(pool, r->elements / 2);
    if (ids == NULL) {
        return NULL;
    }

    for (i = 0; i + 1 < r->elements; i += 2) {
        k = mx_pstrndup(pool, r->element[i]->str, r->element[i]->len);
        v = mx_pstrndup(pool, r->element[i + 1]->str, r->element[i + 1]->len);
        if (k == NULL || v == NULL || mx_idmap_put(&ids->map, k, v) != 0) {
            return NULL;
        }
    }

    return ids;
}


/*
 * Events.
 */

rs_event_t *
rs_event_add(rs_room_t *room, const char *event_id, const char *pdu,
    size_t len, const char *meta, char *why, size_t wlen)
{
    return rs_event_add_json(room, event_id, pdu, len, NULL, meta, why, wlen);
}


rs_event_t *
rs_event_add_json(rs_room_t *room, const char *event_id, const char *pdu,
    size_t len, mx_json_t *json, const char *meta, char *why, size_t wlen)
{
    rs_event_t       *re;
    mx_json_error_t   err;
    const char       *bad;
    char             *id, *copy;
    long long         pos, sg, depth;
    char              flags[16];

    re = mx_idmap_get(&room->events, event_id);
    if (re) {
        return re;
    }

    id = mx_pstrndup(room->pool, event_id, strlen(event_id));
    copy = mx_pstrndup(room->pool, pdu, len);
    re = mx_pcalloc(room->pool, sizeof(rs_event_t));
    if (id == NULL || copy == NULL || re == NULL) {
        snprintf(why, wlen, "out of memory");
        return NULL;
    }

    if (json == NULL) {
        json = mx_json_parse(room->pool, copy, len, &err);
        if (json == NULL || json->type != MX_JSON_OBJECT) {
            snprintf(why, wlen, "not a JSON object: %s", err.msg);
            return NULL;
        }
    }

    re->ev = mx_auth_event_from_json(room->pool, json, id, &bad);
    if (re->ev == NULL) {
        snprintf(why, wlen, "malformed event: %s", bad ? bad : "?");
        return NULL;
    }

    re->pdu = copy;
    re->pdu_len = len;
    re->depth = re->ev->depth;

    if (meta && sscanf(meta, "%lld %lld %lld %15s", &pos, &sg, &depth, flags)
                == 4)
    {
        re->pos = pos;
        re->sg = sg;
        re->depth = depth;
        re->flags = (strchr(flags, 'r') ? RS_F_REJECTED : 0)
                    | (strchr(flags, 's') ? RS_F_SOFT : 0)
                    | (strchr(flags, 'o') ? RS_F_OUTLIER : 0);
        re->ev->rejected = (re->flags & RS_F_REJECTED) != 0;
    }

    if (mx_idmap_put(&room->events, id, re) != 0) {
        snprintf(why, wlen, "out of memory");
        return NULL;
    }

    return re;
}


int
rs_events_load(mxw_t *w, rs_room_t *room, const char **ids, size_t n)
{
    const char  **argv, **want;
    size_t       *lens, i, k, m;
    redisReply   *r, *item;
    char          key[600], why[256];
    int           argc, rc;

    argv = malloc((RS_LOAD_BATCH + 5) * sizeof(char *));
    lens = malloc((RS_LOAD_BATCH + 5) * sizeof(size_t));
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        return -1;
    }

    snprintf(key, sizeof(key), "mx:{%s}:room", room->room_id);
    rc = 0;

    /* only those not in the cache: a busy room's prev and auth events
     * nearly always are */
    want = malloc((n + 1) * sizeof(char *));
    if (want == NULL) {
        free(argv);
        free(lens);
        return -1;
    }

    for (i = 0, k = 0; i < n; i++) {
        if (mx_idmap_get(&room->events, ids[i]) == NULL) {
            want[k++] = ids[i];
        }
    }

    ids = want;
    n = k;

    for (i = 0; i < n; i += RS_LOAD_BATCH) {
        m = n - i < RS_LOAD_BATCH ? n - i : RS_LOAD_BATCH;

        argc = 0;
        argv[argc++] = "FCALL";
        argv[argc++] = "mx_room_events";
        argv[argc++] = "1";
        argv[argc++] = key;
        argv[argc++] = room->room_id;

        for (k = 0; k < m; k++) {
            argv[argc++] = ids[i + k];
        }

        for (k = 0; k < (size_t) argc; k++) {
            lens[k] = strlen(argv[k]);
        }

        r = mxw_commandv(w, argc, argv, lens);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != m) {
            if (r) {
                freeReplyObject(r);
            }
            rc = -1;
            break;
        }

        for (k = 0; k < m; k++) {
            item = r->element[k];
            if (item->elements != 2
                || item->element[0]->type != REDIS_REPLY_STRING)
            {
                continue;       /* we do not have it */
            }

            if (rs_event_add(room, ids[i + k], item->element[0]->str,
                             item->element[0]->len,
                             item->element[1]->type == REDIS_REPLY_STRING
                             ? item->element[1]->str : NULL,
                             why, sizeof(why)) == NULL)
            {
                mxw_warn(w, "room %s: event %s: %s", room->room_id,
                         ids[i + k], why);
            }
        }

        freeReplyObject(r);
    }

    free(want);
    free(argv);
    free(lens);

    return rc;
}


rs_event_t *
rs_event_get(mxw_t *w, rs_room_t *room, const char *event_id, int *failed)
{
    rs_event_t  *re;

    re = mx_idmap_get(&room->events, event_id);
    if (re) {
        return re;
    }

    if (rs_events_load(w, room, &event_id, 1) != 0) {
        if (failed) {
            *failed = 1;
        }
        return NULL;
    }

    return mx_idmap_get(&room->events, event_id);
}


/*
 * State groups.
 */

rs_ids_t *
rs_group_get(mxw_t *w, rs_room_t *room, int64_t sg)
{
    rs_ids_t    *ids;
    redisReply  *r;
    char         name[32], key[600], num[32], *k;

    if (sg == room->cur_sg && room->current) {
        return room->current;
    }

    snprintf(name, sizeof(name), "%lld", (long long) sg);

    ids = mx_idmap_get(&room->groups, name);
    if (ids) {
        return ids;
    }

    snprintf(key, sizeof(key), "mx:{%s}:room", room->room_id);
    snprintf(num, sizeof(num), "%lld", (long long) sg);

    r = mxw_command(w, "FCALL mx_room_sg 1 %s %s %s", key, room->room_id,
                    num);
    if (r == NULL) {
        return NULL;
    }

    if (r->type == REDIS_REPLY_ARRAY) {
        ids = rs_ids_from_reply(room->pool, r);
    } else {
        /* group 0: the empty state before the create event */
        ids = rs_ids_new(room->pool, 0);
    }

    freeReplyObject(r);

    k = mx_pstrndup(room->pool, name, strlen(name));
    if (ids == NULL || k == NULL || mx_idmap_put(&room->groups, k, ids) != 0)
    {
        return NULL;
    }

    return ids;
}


/* the events of a state, for state resolution and the full auth rules */

mx_state_t *
rs_ids_state(mxw_t *w, rs_room_t *room, mx_pool_t *pool, rs_ids_t *ids)
{
    mx_state_t   *st;
    const char  **missing;
    size_t        i, n;
    rs_event_t   *re;

    missing = malloc((ids->map.n + 1) * sizeof(char *));
    if (missing == NULL) {
        return NULL;
    }

    n = 0;
    for (i = 0; i < ids->map.cap; i++) {
        if (ids->map.slots[i].key
            && mx_idmap_get(&room->events, ids->map.slots[i].value) == NULL)
        {
            missing[n++] = ids->map.slots[i].value;
        }
    }

    if (n && rs_events_load(w, room, missing, n) != 0) {
        free(missing);
        return NULL;
    }

    free(missing);

    st = mx_state_create(pool, ids->map.n);
    if (st == NULL) {
        return NULL;
    }

    for (i = 0; i < ids->map.cap; i++) {
        if (ids->map.slots[i].key == NULL) {
            continue;
        }

        re = mx_idmap_get(&room->events, ids->map.slots[i].value);
        if (re && mx_state_put(st, re->ev) != 0) {
            return NULL;
        }
    }

    return st;
}


/*
 * The room cache.
 */

void
rs_room_drop(rs_room_t *room)
{
    rs_room_t  **pp;

    for (pp = &rs_rooms[rs_bucket(room->room_id)]; *pp; pp = &(*pp)->next) {
        if (*pp == room) {
            *pp = room->next;
            break;
        }
    }

    mx_pool_destroy(room->pool);
}


void
rs_rooms_drop_all(void)
{
    rs_room_t  *room, *next;
    size_t      b;

    for (b = 0; b < RS_BUCKETS; b++) {
        for (room = rs_rooms[b]; room; room = next) {
            next = room->next;
            mx_pool_destroy(room->pool);
        }
        rs_rooms[b] = NULL;
    }
}


/* drop rooms idle for long, and rooms grown too big to keep */

void
rs_rooms_trim(int64_t now)
{
    rs_room_t  *room, *next;
    size_t      b;

    for (b = 0; b < RS_BUCKETS; b++) {
        for (room = rs_rooms[b]; room; room = next) {
            next = room->next;

            if (now - room->used_ms > RS_IDLE_MS
                || mx_pool_used(room->pool) > RS_POOL_MAX)
            {
                rs_room_drop(room);
            }
        }
    }
}


static rs_room_t *
rs_room_load(mxw_t *w, const char *room_id, const char *version, char *why,
    size_t why_len)
{
    rs_room_t    *room;
    mx_pool_t    *pool;
    redisReply   *r, *ex;
    char          key[600];
    size_t        i;
    const char   *v;

    snprintf(key, sizeof(key), "mx:{%s}:room", room_id);

    r = mxw_command(w, "FCALL mx_room_head 1 %s %s", key, room_id);
    if (r == NULL) {
        snprintf(why, why_len, "redis");
        return NULL;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 8) {
        snprintf(why, why_len, "mx_room_head: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return NULL;
    }

    pool = mx_pool_create(65536);
    room = pool ? mx_pcalloc(pool, sizeof(rs_room_t)) : NULL;
    if (room == NULL
        || mx_idmap_init(&room->events, pool, 64) != 0
        || mx_idmap_init(&room->groups, pool, 8) != 0)
    {
        mx_pool_destroy(pool);
        freeReplyObject(r);
        snprintf(why, why_len, "out of memory");
        return NULL;
    }

    room->pool = pool;
    room->room_id = mx_pstrndup(pool, room_id, strlen(room_id));

    v = r->element[0]->len ? r->element[0]->str : version;
    room->rv = v ? mx_room_version(v, strlen(v)) : NULL;
    room->pos = r->element[1]->integer;
    room->cur_sg = r->element[2]->integer;
    room->depth = r->element[3]->integer;
    room->cur_n = r->element[6]->integer;
    room->sg_last = r->element[7]->integer;

    ex = r->element[4];
    room->nextrem = ex->elements;
    room->extrem = mx_palloc(pool, (ex->elements + 1) * sizeof(char *));
    room->current = rs_ids_from_reply(pool, r->element[5]);

    if (room->room_id == NULL || room->extrem == NULL
        || room->current == NULL)
    {
        mx_pool_destroy(pool);
        freeReplyObject(r);
        snprintf(why, why_len, "out of memory");
        return NULL;
    }

    for (i = 0; i < ex->elements; i++) {
        room->extrem[i] = mx_pstrndup(pool, ex->element[i]->str,
                                      ex->element[i]->len);
    }

    freeReplyObject(r);

    if (room->rv == NULL) {
        snprintf(why, why_len, "unknown room version \"%s\"", v ? v : "");
        mx_pool_destroy(pool);
        return NULL;
    }

    return room;
}


/*
 * The room, from the cache or from Redis.  version is the version of a
 * room being created (its first event), NULL otherwise.
 */

rs_room_t *
rs_room_get(mxw_t *w, const char *room_id, const char *version, char *why,
    size_t why_len)
{
    rs_room_t  *room;
    size_t      b;

    b = rs_bucket(room_id);

    for (room = rs_rooms[b]; room; room = room->next) {
        if (strcmp(room->room_id, room_id) == 0) {
            room->used_ms = mxw_now_ms();
            return room;
        }
    }

    room = rs_room_load(w, room_id, version, why, why_len);
    if (room == NULL) {
        return NULL;
    }

    room->used_ms = mxw_now_ms();
    room->next = rs_rooms[b];
    rs_rooms[b] = room;

    return room;
}

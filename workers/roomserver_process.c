/*
 * roomserver_process: one event from an input shard.
 *
 *   stored already? ──yes──► the same answer again (idempotent)
 *        │no
 *   the state before it: the current state when its prev_events are the
 *   forward extremities (a local event, nearly always), the state group
 *   after its one prev event, or state resolution over the groups after
 *   each of its prev events
 *        │
 *   the auth rules, against its auth events and against that state;
 *   refused: stored as rejected, answered, never in the output log
 *        │
 *   the state after it, a state group for it (a delta on the group before,
 *   or a full snapshot when the chain of deltas grows past a quarter of
 *   the state), the new forward extremities, the new current state and
 *   what changed in it
 *        │
 *   mx_room_store: one atomic call that stores it and appends its entry to
 *   mx:output with the event and the change of current state, which
 *   carries the reply address
 *   on to the syncer: the client hears "accepted" once the event is
 *   visible to /sync as well.
 *
 * Input entry fields: kind=event, room, event_id, event (the PDU), version
 * (for a room's create event), origin ("local" or the sending server),
 * reply and req (where to answer, optional), state (optional, another
 * server's event over a gap: {"pdus", "auth_chain"} at its missing prev
 * event, which is then the state before it; see rs_gap_state).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mx_state_res.h>

#include "roomserver.h"




typedef struct {
    mxw_t        *w;
    rs_room_t    *room;
    rs_ids_t     *ids;
    int           failed;
} rs_lookup_t;


typedef struct {
    char   *p;
    size_t  len;
    size_t  cap;
} rs_buf_t;


static int
rs_buf_add(rs_buf_t *b, const char *s, size_t n)
{
    char    *p;
    size_t   cap;

    if (b->len + n + 1 > b->cap) {
        cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (p == NULL) {
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }

    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';

    return 0;
}


/* "key\037id\036" for each entry */

static int
rs_buf_entry(rs_buf_t *b, const char *key, const char *id)
{
    if (b->len && rs_buf_add(b, "\036", 1) != 0) {
        return -1;
    }

    return rs_buf_add(b, key, strlen(key)) || rs_buf_add(b, "\037", 1)
           || rs_buf_add(b, id, strlen(id));
}


static const mx_auth_event_t *
rs_lookup(void *ctx, const char *type, const char *state_key)
{
    rs_lookup_t  *lc = ctx;
    const char   *id;
    rs_event_t   *re;

    id = rs_ids_get(lc->ids, type, state_key);
    if (id == NULL) {
        return NULL;
    }

    re = rs_event_get(lc->w, lc->room, id, &lc->failed);

    return re ? re->ev : NULL;
}


static const mx_auth_event_t *
rs_fetch(void *ctx, const char *event_id)
{
    rs_lookup_t  *lc = ctx;
    rs_event_t   *re;

    re = rs_event_get(lc->w, lc->room, event_id, &lc->failed);

    return re ? re->ev : NULL;
}


/* answer the request that sent the event, if any */

void
rs_answer(mxw_t *w, const mxw_entry_t *e, const char *json)
{
    const char  *reply, *req;
    size_t       rlen, qlen;
    redisReply  *r;
    char        *msg;

    reply = mxw_entry_get(e, "reply", &rlen);
    req = mxw_entry_get(e, "req", &qlen);

    if (reply == NULL || req == NULL || rlen == 0) {
        return;
    }

    msg = malloc(qlen + strlen(json) + 2);
    if (msg == NULL) {
        return;
    }

    memcpy(msg, req, qlen);
    msg[qlen] = ' ';
    strcpy(msg + qlen + 1, json);

    r = mxw_command(w, "PUBLISH %b %s", reply, rlen, msg);
    if (r) {
        freeReplyObject(r);
    }

    free(msg);
}


void
rs_answer_error(mxw_t *w, const mxw_entry_t *e, int status,
    const char *errcode, const char *error)
{
    char         json[1400];
    char         esc[600];
    const char  *id;
    size_t       i, n, idlen;

    /* a plain message: no quotes or backslashes, control characters out */
    for (i = 0, n = 0; error[i] && n < sizeof(esc) - 1; i++) {
        esc[n++] = (error[i] == '"' || error[i] == '\\'
                    || (unsigned char) error[i] < 0x20) ? ' ' : error[i];
    }
    esc[n] = '\0';

    /* which event: federation waits for several under one request */
    id = mxw_entry_get(e, "event_id", &idlen);
    for (i = 0; id && i < idlen; i++) {
        if (id[i] == '"' || id[i] == '\\' || (unsigned char) id[i] < 0x20) {
            id = NULL;
        }
    }

    if (id == NULL || idlen > 255) {
        id = "";
        idlen = 0;
    }

    snprintf(json, sizeof(json),
             "{\"status\":%d,\"errcode\":\"%s\",\"error\":\"%s\","
             "\"refused\":\"%.*s\"}", status, errcode, esc, (int) idlen, id);
    rs_answer(w, e, json);
}


/* states of IDs resolved into one (state resolution); NULL: failed */

static rs_ids_t *
rs_resolve_ids(mxw_t *w, rs_room_t *room, mx_pool_t *pool, rs_ids_t **from,
    size_t n)
{
    const mx_state_t      **sets;
    const mx_auth_event_t  *se;
    mx_state_t             *out;
    rs_ids_t               *ids;
    rs_lookup_t             lc;
    size_t                  i;

    sets = mx_palloc(pool, n * sizeof(mx_state_t *));
    if (sets == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        sets[i] = from[i] ? rs_ids_state(w, room, pool, from[i]) : NULL;
        if (sets[i] == NULL) {
            return NULL;
        }
    }

    lc.w = w;
    lc.room = room;
    lc.ids = NULL;
    lc.failed = 0;

    if (mx_state_resolve(pool, room->rv, sets, n, rs_fetch, &lc, &out) != 0
        || lc.failed)
    {
        return NULL;
    }

    ids = rs_ids_new(pool, mx_state_count(out));
    if (ids == NULL) {
        return NULL;
    }

    i = 0;
    while ((se = mx_state_next(out, &i)) != NULL) {
        if (rs_ids_set(pool, ids, se->type, se->state_key, se->event_id)) {
            return NULL;
        }
    }

    return ids;
}


/* the state before an event; *sg its group, or -1 when it has none yet */

static rs_ids_t *
rs_state_before(mxw_t *w, rs_room_t *room, mx_pool_t *pool, rs_event_t *re,
    int64_t *sg, int *failed)
{
    const mx_auth_event_t  *ev;
    rs_event_t             *prev, *se_prev;
    rs_ids_t               *ids, **groups;
    size_t                  i, k, same;

    ev = re->ev;

    if (ev->n_prev == 0) {
        *sg = 0;
        return rs_ids_new(pool, 0);
    }

    /* the forward extremities exactly: the current state */
    same = 0;
    if (ev->n_prev == room->nextrem) {
        for (i = 0; i < ev->n_prev; i++) {
            for (k = 0; k < room->nextrem; k++) {
                if (strcmp(ev->prev_events[i], room->extrem[k]) == 0) {
                    same++;
                    break;
                }
            }
        }
    }

    if (same == ev->n_prev && room->current) {
        *sg = room->cur_sg;
        return room->current;
    }

    /* prev events that all follow one state group: that state */
    prev = rs_event_get(w, room, ev->prev_events[0], failed);
    if (prev == NULL) {
        return NULL;
    }

    for (i = 1; i < ev->n_prev; i++) {
        se_prev = rs_event_get(w, room, ev->prev_events[i], failed);
        if (se_prev == NULL) {
            return NULL;
        }
        if (se_prev->sg != prev->sg) {
            break;
        }
    }

    if (i == ev->n_prev) {
        *sg = prev->sg;
        return rs_group_get(w, room, prev->sg);
    }

    /* a merge: resolve the states after each prev event */
    groups = mx_palloc(pool, ev->n_prev * sizeof(rs_ids_t *));
    if (groups == NULL) {
        return NULL;
    }

    for (i = 0; i < ev->n_prev; i++) {
        prev = rs_event_get(w, room, ev->prev_events[i], failed);
        if (prev == NULL) {
            return NULL;
        }

        groups[i] = rs_group_get(w, room, prev->sg);
    }

    ids = rs_resolve_ids(w, room, pool, groups, ev->n_prev);
    if (ids == NULL) {
        *failed = 1;
        return NULL;
    }

    *sg = -1;
    return ids;
}


/* the changes from one state of IDs to another, as store entries */

static int
rs_ids_diff(rs_ids_t *from, rs_ids_t *to, rs_buf_t *out)
{
    size_t       i;
    const char  *old;

    for (i = 0; i < to->map.cap; i++) {
        if (to->map.slots[i].key == NULL) {
            continue;
        }
        old = from ? mx_idmap_get(&from->map, to->map.slots[i].key) : NULL;
        if (old == NULL || strcmp(old, to->map.slots[i].value) != 0) {
            if (rs_buf_entry(out, to->map.slots[i].key,
                             to->map.slots[i].value) != 0)
            {
                return -1;
            }
        }
    }

    if (from == NULL) {
        return 0;
    }

    for (i = 0; i < from->map.cap; i++) {
        if (from->map.slots[i].key
            && mx_idmap_get(&to->map, from->map.slots[i].key) == NULL
            && rs_buf_entry(out, from->map.slots[i].key, "") != 0)
        {
            return -1;
        }
    }

    return 0;
}


static int
rs_state_key_ok(const mx_auth_event_t *ev)
{
    const char  *p;

    for (p = ev->type; *p; p++) {
        if (*p == '\036' || *p == '\037') {
            return 0;
        }
    }

    if (ev->state_key) {
        for (p = ev->state_key; *p; p++) {
            if (*p == '\036' || *p == '\037') {
                return 0;
            }
        }
    }

    return 1;
}


/* the output entry of an accepted event: on to the syncer and fedsender */

static int
rs_output(mxw_t *w, const mxw_entry_t *e, rs_room_t *room, rs_event_t *re,
    const char *changes)
{
    const char   *argv[24];
    size_t        lens[24];
    char          pos[32];
    const char   *reply, *req, *origin;
    size_t        rlen = 0, qlen = 0, olen = 0;
    redisReply   *r;
    int           argc, i, ok;

    snprintf(pos, sizeof(pos), "%lld", (long long) re->pos);
    reply = mxw_entry_get(e, "reply", &rlen);
    req = mxw_entry_get(e, "req", &qlen);
    origin = mxw_entry_get(e, "origin", &olen);

    argc = 0;
    argv[argc++] = "XADD";
    argv[argc++] = "mx:output";
    /* no MAXLEN: the consumers trim what every group has (mxw_trim), so
     * a consumer that is down loses nothing */
    argv[argc++] = "*";
    argv[argc++] = "kind";
    argv[argc++] = "event";
    argv[argc++] = "room";
    argv[argc++] = room->room_id;
    argv[argc++] = "event_id";
    argv[argc++] = re->ev->event_id;
    argv[argc++] = "pos";
    argv[argc++] = pos;
    argv[argc++] = "changes";
    argv[argc++] = changes;

    for (i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }

    argv[argc] = "event";
    lens[argc++] = 5;
    argv[argc] = re->pdu;
    lens[argc++] = re->pdu_len;

    if (origin) {
        argv[argc] = "origin";
        lens[argc++] = 6;
        argv[argc] = origin;
        lens[argc++] = olen;
    }

    if (reply && req) {
        argv[argc] = "reply";
        lens[argc++] = 5;
        argv[argc] = reply;
        lens[argc++] = rlen;
        argv[argc] = "req";
        lens[argc++] = 3;
        argv[argc] = req;
        lens[argc++] = qlen;
    }

    r = mxw_commandv(w, argc, argv, lens);
    if (r == NULL) {
        return -1;
    }

    ok = r->type != REDIS_REPLY_ERROR;
    if (!ok) {
        mxw_error(w, "XADD mx:output: %s", r->str);
    }

    freeReplyObject(r);
    return ok ? 0 : -1;
}


static const char *
rs_flags(unsigned flags, char *buf)
{
    char  *p = buf;

    if (flags & RS_F_REJECTED) {
        *p++ = 'r';
    }
    if (flags & RS_F_SOFT) {
        *p++ = 's';
    }
    if (flags & RS_F_OUTLIER) {
        *p++ = 'o';
    }
    if (p == buf) {
        *p++ = '-';
    }
    *p = '\0';

    return buf;
}


/* mx_room_store's reply: {pos, sg, 0}; 1 there says stored before */

static int
rs_store_check(redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 3
           && r->element[2]->type == REDIS_REPLY_INTEGER
           && r->element[2]->integer == 0 ? 0 : -1;
}


/* a batch failed: what the cache holds may be ahead of Redis */

void
rs_failed(mxw_t *w, void *data)
{
    (void) w;
    (void) data;

    rs_rooms_drop_all();
}


/*
 * An event whose prev_events nobody here has, with the state its origin
 * gave at one of them (the entry's state: /state's answer, {"pdus",
 * "auth_chain"}): those events checked (one whose signatures fail is
 * dropped) and stored as outliers, their state the state before the event.
 * Its prev events stay unknown; what builds on the event builds on its
 * group.  0: *before set; 1: refused (why); -1: retry.
 */

static int
rs_gap_state(mxw_t *w, const mxw_entry_t *e, rs_room_t *room,
    mx_pool_t *pool, rs_ids_t **before, char *why, size_t why_len)
{
    const char       *text, *version;
    size_t            len, n, i;
    mx_json_t        *v;
    mx_json_error_t   err;
    rs_given_t       *evs;
    mx_state_t       *state;
    rs_ids_t         *ids;
    const mx_auth_event_t *se;
    int               rc;

    text = mxw_entry_get(e, "state", &len);
    v = mx_json_parse(room->pool, text, len, &err);
    if (v == NULL || v->type != MX_JSON_OBJECT) {
        snprintf(why, why_len, "the state given is not a JSON object");
        return 1;
    }

    rc = rs_given_state(w, room, pool, mx_json_get(v, "pdus"),
                        mx_json_get(v, "auth_chain"), NULL, &evs, &n, &state,
                        why, why_len);
    /* refused: the caller's rs_room_drop forgets what the cache took */
    if (rc != 0) {
        return rc;
    }

    if (mx_state_get(state, "m.room.create", "") == NULL) {
        snprintf(why, why_len, "the state given has no m.room.create");
        return 1;
    }

    version = mxw_entry_get(e, "version", NULL);

    if (rs_given_outliers(w, pool, room, version ? version : "", evs, n,
                          room->pos + 1) != 0)
    {
        return -1;
    }

    room->pos += (int64_t) n;

    ids = rs_ids_new(pool, mx_state_count(state));
    if (ids == NULL) {
        return -1;
    }

    i = 0;
    while ((se = mx_state_next(state, &i)) != NULL) {
        if (rs_ids_set(pool, ids, se->type, se->state_key, se->event_id)) {
            return -1;
        }
    }

    mxw_info(w, "%s: %zu events of state given over a gap stored as"
             " outliers", room->room_id, n);

    *before = ids;

    return 0;
}


mxw_result_t
rs_process_event(mxw_t *w, const mxw_entry_t *e, void *data, char *why,
    size_t why_len)
{
    const char              *room_id, *event_id, *pdu, *version, *origin;
    size_t                   pdu_len;
    rs_room_t               *room;
    rs_event_t              *re, *old;
    mx_pool_t               *pool;
    rs_ids_t                *before, *after, *current;
    const mx_auth_event_t  **auth, *create;
    rs_lookup_t              lc;
    const char              *reason;
    int64_t                  sg_before;
    int                      failed, rc, is_state, local, sole, snapshot;
    int                      fresh, covers, gap;
    rs_ids_t                *pair[2];
    char                    *vpdu;
    size_t                   vlen;
    int                      resolved;
    int64_t                  chain_n;
    size_t                   i, k, n;
    rs_buf_t                 group = { NULL, 0, 0 }, changes = { NULL, 0, 0 };
    rs_buf_t                 extrem = { NULL, 0, 0 };
    const char              *argv[24];
    size_t                   lens[24];
    const char              *reply, *req;
    size_t                   rlen, qlen, olen, vl;
    const char              *v;
    char                     key[600], depth[32], sgs[32], parent[32];
    char                     count[32], flags[8], posbuf[32];
    mxw_result_t             result;
    const char             **new_extrem;
    size_t                   new_n;

    (void) data;

    room_id = mxw_entry_get(e, "room", NULL);
    event_id = mxw_entry_get(e, "event_id", NULL);
    pdu = mxw_entry_get(e, "event", &pdu_len);
    version = mxw_entry_get(e, "version", NULL);
    origin = mxw_entry_get(e, "origin", &olen);
    local = origin == NULL || (olen == 5 && memcmp(origin, "local", 5) == 0);

    if (room_id == NULL || event_id == NULL || pdu == NULL) {
        snprintf(why, why_len, "an event entry needs room, event_id and"
                 " event");
        rs_answer_error(w, e, 500, "M_UNKNOWN", why);
        return MXW_REJECT;
    }

    room = rs_room_get(w, room_id, version, why, why_len);
    if (room == NULL) {
        if (strcmp(why, "redis") == 0) {
            return MXW_RETRY;
        }
        rs_answer_error(w, e, 400, "M_UNKNOWN", why);
        return MXW_REJECT;
    }

    /*
     * Stored before: the same answer again.  A local event on its first
     * delivery was built a moment ago and cannot be stored yet; that saves
     * a round trip, and mx_room_store tells when the guess was wrong.
     */
    failed = 0;
    v = mxw_entry_get(e, "fresh", &vl);
    fresh = e->deliveries == 1
            && (local || (v != NULL && vl == 1 && v[0] == '1'));
    old = fresh ? mx_idmap_get(&room->events, event_id)
                : rs_event_get(w, room, event_id, &failed);
    if (failed) {
        return MXW_RETRY;
    }

    if (old) {
        if (old->flags & RS_F_REJECTED) {
            rs_answer_error(w, e, 403, "M_FORBIDDEN", "The event was"
                            " refused by the room's rules");
            return MXW_DONE;
        }

        /* the output entry may not have been written before a crash: the
         * syncer sees it twice at worst and keeps it once */
        return rs_output(w, e, room, old, "") == 0 ? MXW_DONE : MXW_RETRY;
    }

    /* another server's event: its hashes and signatures first */
    vpdu = NULL;

    if (!local) {
        switch (rs_verify(w, room->rv, event_id, pdu, pdu_len, &vpdu, &vlen,
                          why, why_len))
        {
        case RS_VERIFY_OK:
            break;

        case RS_VERIFY_DROP:
            mxw_info(w, "%s: %s dropped: %s", room_id, event_id, why);
            rs_answer_error(w, e, 403, "M_FORBIDDEN", why);
            return MXW_REJECT;

        default:
            return MXW_RETRY;
        }

        if (vpdu) {
            pdu = vpdu;
            pdu_len = vlen;
        }
    }

    re = rs_event_add(room, event_id, pdu, pdu_len, NULL, why, why_len);
    free(vpdu);
    pdu = re ? re->pdu : NULL;
    if (re == NULL) {
        rs_answer_error(w, e, 400, "M_BAD_JSON", why);
        return MXW_REJECT;
    }

    pool = mx_pool_create(16384);
    if (pool == NULL) {
        return MXW_RETRY;
    }

    result = MXW_RETRY;
    reason = NULL;

    if (!rs_state_key_ok(re->ev)) {
        reason = "format.control_characters";
    }

    if (reason == NULL && re->ev->room_id
        && strcmp(re->ev->room_id, room_id) != 0)
    {
        reason = "format.room_id";
    }

    /* the prev events: all known (missing ones are fetched by federation,
     * which gives them to us first) */
    if (reason == NULL
        && rs_events_load(w, room, re->ev->prev_events, re->ev->n_prev) != 0)
    {
        goto done;
    }

    for (i = 0; reason == NULL && i < re->ev->n_prev; i++) {
        if (mx_idmap_get(&room->events, re->ev->prev_events[i]) == NULL) {
            reason = "prev_events.unknown";
        }
    }

    /* the state before it */
    before = NULL;
    sg_before = 0;
    gap = 0;

    if (reason != NULL && strcmp(reason, "prev_events.unknown") == 0
        && !local && mxw_entry_get(e, "state", NULL) != NULL)
    {
        /* over a gap, with the state its origin gave for it */
        switch (rs_gap_state(w, e, room, pool, &before, why, why_len)) {
        case 0:
            reason = NULL;
            sg_before = -1;
            gap = 1;
            break;

        case 1:
            rs_answer_error(w, e, 403, "M_FORBIDDEN", why);
            result = MXW_REJECT;
            goto done;

        default:
            goto done;
        }
    }

    if (reason == NULL && before == NULL) {
        failed = 0;
        before = rs_state_before(w, room, pool, re, &sg_before, &failed);
        if (before == NULL) {
            goto done;
        }
    }

    /* the rules: against the auth events, then against that state */
    if (reason == NULL) {
        if (rs_events_load(w, room, re->ev->auth_events, re->ev->n_auth)
            != 0)
        {
            goto done;
        }

        auth = mx_palloc(pool, (re->ev->n_auth + 1) * sizeof(void *));
        if (auth == NULL) {
            goto done;
        }

        for (i = 0, n = 0; i < re->ev->n_auth; i++) {
            old = mx_idmap_get(&room->events, re->ev->auth_events[i]);
            if (old == NULL) {
                reason = "auth_events.missing";
                break;
            }
            auth[n++] = old->ev;
        }

        create = NULL;
        if (reason == NULL && room->rv->room_id_from_create) {
            lc.w = w;
            lc.room = room;
            lc.ids = before;
            lc.failed = 0;
            create = rs_lookup(&lc, "m.room.create", "");
            if (lc.failed) {
                goto done;
            }
        }

        if (reason == NULL
            && mx_auth_check_auth_events(pool, room->rv, re->ev, auth, n,
                                         create, &reason) == MX_AUTH_ERROR)
        {
            goto done;
        }
    }

    if (reason == NULL) {
        lc.w = w;
        lc.room = room;
        lc.ids = before;
        lc.failed = 0;

        rc = mx_auth_check_lookup(pool, room->rv, re->ev, rs_lookup, &lc,
                                  &reason);
        if (rc == MX_AUTH_ERROR || lc.failed) {
            reason = NULL;
            goto done;
        }
    }

    /*
     * Against the current state too, when the event was built on another
     * one.  A remote event it refuses is soft-failed: kept, but shown to
     * nobody and built on by nobody.  A local one was built on what this
     * server knew a moment before (two workers sending at once, a ban in
     * between): it is refused, and its sender hears so.  An event over a
     * gap is checked, as Synapse does, against the current state resolved
     * with its own (what it knew that we missed, a member who joined in
     * the gap, counts).
     */
    if (reason == NULL && before != room->current) {
        lc.w = w;
        lc.room = room;
        lc.ids = room->current;
        lc.failed = 0;

        if (gap) {
            pair[0] = room->current;
            pair[1] = before;
            lc.ids = rs_resolve_ids(w, room, pool, pair, 2);
            if (lc.ids == NULL) {
                goto done;
            }
        }

        const char *soft = NULL;

        rc = mx_auth_check_lookup(pool, room->rv, re->ev, rs_lookup, &lc,
                                  &soft);
        if (rc == MX_AUTH_ERROR || lc.failed) {
            goto done;
        }

        if (soft && local) {
            reason = soft;

        } else if (soft) {
            re->flags |= RS_F_SOFT;
        }
    }

    if (reason) {
        re->flags |= RS_F_REJECTED;
        re->ev->rejected = 1;
    }

    /* the state after it and its group */
    is_state = re->ev->state_key != NULL && !(re->flags & RS_F_REJECTED);
    after = before;
    snapshot = 0;
    chain_n = 0;
    parent[0] = '\0';
    count[0] = '0';
    count[1] = '\0';

    if (before == NULL) {
        /* refused before the state was known: it builds on nothing */
        before = rs_ids_new(pool, 0);
        after = before;
        sg_before = 0;
        if (before == NULL) {
            goto done;
        }
    }

    /*
     * Does the event follow every forward extremity?  Only then may the
     * current state be built on in place: an event on one branch of a
     * fork can find the current state as its state before (its prev
     * event's group is the current one), yet the other branches still
     * need that state as it is, for the resolution below.
     */
    covers = 1;
    for (k = 0; covers && k < room->nextrem; k++) {
        for (i = 0; i < re->ev->n_prev; i++) {
            if (strcmp(room->extrem[k], re->ev->prev_events[i]) == 0) {
                break;
            }
        }
        covers = i < re->ev->n_prev;
    }

    if (is_state || sg_before < 0) {
        if (before == room->current && covers
            && !(re->flags & RS_F_SOFT))
        {
            /* the common case: build on the current state in place */
            after = before;
        } else {
            after = rs_ids_copy(room->pool,
                                before ? before : rs_ids_new(pool, 0));
            if (after == NULL) {
                goto done;
            }
        }

        if (is_state
            && rs_ids_set(room->pool, after, re->ev->type, re->ev->state_key,
                          re->ev->event_id) != 0)
        {
            goto done;
        }

        /*
         * A delta on the group before when that group is the current one
         * and its chain of deltas stays under a quarter of the state (at
         * least 64 entries); else a full snapshot.  Snapshots cost the size
         * of the state once per quarter of it: O(1) amortised per event.
         */
        n = after->map.n / 4 > 64 ? after->map.n / 4 : 64;
        snapshot = !is_state || sg_before <= 0 || sg_before != room->cur_sg
                   || room->cur_n + 1 > (int64_t) n;

        if (snapshot) {
            for (i = 0; i < after->map.cap; i++) {
                if (after->map.slots[i].key
                    && rs_buf_entry(&group, after->map.slots[i].key,
                                    after->map.slots[i].value) != 0)
                {
                    goto done;
                }
            }
            chain_n = 0;

        } else {
            snprintf(parent, sizeof(parent), "%lld", (long long) sg_before);
            snprintf(key, sizeof(key), "%s%c%s", re->ev->type, RS_SEP,
                     re->ev->state_key);
            if (rs_buf_entry(&group, key, re->ev->event_id) != 0) {
                goto done;
            }
            chain_n = room->cur_n + 1;
        }

        /* the roomserver is the only writer: it numbers groups itself */
        snprintf(count, sizeof(count), "%lld", (long long) chain_n);
        snprintf(sgs, sizeof(sgs), "+%lld", (long long) room->sg_last + 1);

    } else {
        snprintf(sgs, sizeof(sgs), "%lld", (long long) sg_before);
    }

    /* forward extremities and the current state */
    new_extrem = room->extrem;
    new_n = room->nextrem;
    current = room->current;
    sole = 0;
    resolved = 0;

    if (!(re->flags & (RS_F_REJECTED | RS_F_SOFT))) {
        new_extrem = mx_palloc(room->pool,
                               (room->nextrem + 1) * sizeof(char *));
        if (new_extrem == NULL) {
            goto done;
        }

        new_n = 0;
        for (k = 0; k < room->nextrem; k++) {
            for (i = 0; i < re->ev->n_prev; i++) {
                if (strcmp(room->extrem[k], re->ev->prev_events[i]) == 0) {
                    break;
                }
            }
            if (i == re->ev->n_prev) {
                new_extrem[new_n++] = room->extrem[k];
            }
        }

        new_extrem[new_n++] = re->ev->event_id;
        sole = new_n == 1;

        /*
         * Extremities that all follow one state group (concurrent messages
         * in a busy room) agree on the state: nothing to resolve.
         */
        if (!sole && !is_state && sg_before >= 0) {
            for (k = 0; k + 1 < new_n; k++) {
                old = rs_event_get(w, room, new_extrem[k], &failed);
                if (old == NULL || old->sg != sg_before) {
                    break;
                }
            }
            sole = k + 1 == new_n;
        }

        if (sole) {
            current = after;

        } else {
            /* several forward extremities: their states resolved */
            const mx_state_t  **sets;
            mx_state_t         *out, *st;
            rs_ids_t           *g;
            const mx_auth_event_t *se;

            sets = mx_palloc(pool, new_n * sizeof(mx_state_t *));
            if (sets == NULL) {
                goto done;
            }

            for (k = 0; k < new_n; k++) {
                if (k == new_n - 1) {
                    g = after;
                } else {
                    old = rs_event_get(w, room, new_extrem[k], &failed);
                    g = old ? rs_group_get(w, room, old->sg) : NULL;
                }

                st = g ? rs_ids_state(w, room, pool, g) : NULL;
                if (st == NULL) {
                    goto done;
                }
                sets[k] = st;
            }

            lc.w = w;
            lc.room = room;
            lc.ids = NULL;
            lc.failed = 0;

            if (mx_state_resolve(pool, room->rv, sets, new_n, rs_fetch, &lc,
                                 &out) != 0 || lc.failed)
            {
                goto done;
            }

            current = rs_ids_new(room->pool, mx_state_count(out));
            resolved = 1;
            if (current == NULL) {
                goto done;
            }

            i = 0;
            while ((se = mx_state_next(out, &i)) != NULL) {
                if (rs_ids_set(room->pool, current, se->type, se->state_key,
                               se->event_id) != 0)
                {
                    goto done;
                }
            }
        }

        if (current == room->current && after == room->current && is_state) {
            /* in place: the one change is the event itself */
            snprintf(key, sizeof(key), "%s%c%s", re->ev->type, RS_SEP,
                     re->ev->state_key);
            if (rs_buf_entry(&changes, key, re->ev->event_id) != 0) {
                goto done;
            }

        } else if (current != room->current
                   && rs_ids_diff(room->current, current, &changes) != 0)
        {
            goto done;
        }

        /* stored as a change: the event in, the extremities it follows
         * out (the set stays as wide as the room's forks, which a busy room
         * keeps narrow, and the call costs the event's prev_events) */
        if (rs_buf_add(&extrem, re->ev->event_id, strlen(re->ev->event_id))
            != 0)
        {
            goto done;
        }

        for (k = 0; k < room->nextrem; k++) {
            for (i = 0; i < re->ev->n_prev; i++) {
                if (strcmp(room->extrem[k], re->ev->prev_events[i]) == 0) {
                    break;
                }
            }

            if (i < re->ev->n_prev
                && (rs_buf_add(&extrem, "\036", 1)
                    || rs_buf_add(&extrem, room->extrem[k],
                                  strlen(room->extrem[k]))))
            {
                goto done;
            }
        }
    }

    /* store it and append its output entry, in one call */
    snprintf(key, sizeof(key), "mx:{%s}:room", room->room_id);
    snprintf(depth, sizeof(depth), "%lld", (long long) re->ev->depth);

    argv[0] = "FCALL";
    argv[1] = "mx_room_store";
    argv[2] = "2";
    argv[3] = key;
    argv[4] = "mx:output";
    argv[5] = room->room_id;
    argv[6] = event_id;
    argv[7] = pdu;
    argv[8] = depth;
    argv[9] = rs_flags(re->flags, flags);
    argv[10] = sgs;
    argv[11] = snapshot ? "" : parent;
    argv[12] = count;
    argv[13] = group.p ? group.p : "";
    argv[14] = changes.p ? changes.p : "";
    argv[15] = extrem.p ? extrem.p : "";
    argv[16] = version && re->ev->n_prev == 0 ? version : "";
    argv[17] = re->ev->redacts && !(re->flags & RS_F_REJECTED)
               && strcmp(re->ev->type, "m.room.redaction") == 0
               ? re->ev->redacts : "";

    /* the group of the new current state: this event's, or none (-1) for
     * a state resolved over several extremities */
    argv[18] = !(re->flags & (RS_F_REJECTED | RS_F_SOFT)) && sole
               && (changes.len || room->cur_sg != sg_before) ? "="
               : resolved ? "-1" : "";

    for (i = 0; i < 19; i++) {
        lens[i] = strlen(argv[i]);
    }
    lens[7] = pdu_len;

    /* what the output entry carries on: where to answer */
    reply = mxw_entry_get(e, "reply", &rlen);
    req = mxw_entry_get(e, "req", &qlen);
    argv[19] = origin ? origin : "";
    lens[19] = origin ? olen : 0;
    argv[20] = reply && req ? reply : "";
    lens[20] = reply && req ? rlen : 0;
    argv[21] = reply && req ? req : "";
    lens[21] = reply && req ? qlen : 0;

    /* and its position in the room, numbered here too */
    snprintf(posbuf, sizeof(posbuf), "%lld", (long long) room->pos + 1);
    argv[22] = posbuf;
    lens[22] = strlen(posbuf);

    /*
     * Pipelined: the next event of the batch need not wait for this one's
     * reply, since the cache already knows what it will be.  A failure
     * (or an event stored before after all) fails the batch, which comes
     * again on an empty cache (rs_failed).
     */
    if (mxw_append(w, rs_store_check, 23, argv, lens) != 0) {
        goto done;
    }

    re->pos = room->pos + 1;
    re->sg = sgs[0] == '+' ? room->sg_last + 1 : sg_before;
    room->pos = re->pos;
    if (sgs[0] == '+') {
        room->sg_last++;
    }

    if (re->ev->depth > room->depth) {
        room->depth = re->ev->depth;
    }

    if (reason) {
        mxw_info(w, "%s: %s refused: %s", room->room_id, event_id,
                 mx_auth_reason_text(reason));
        rs_answer_error(w, e, 403, "M_FORBIDDEN",
                        mx_auth_reason_text(reason));
        result = MXW_DONE;
        goto done;
    }

    if (!(re->flags & RS_F_SOFT)) {
        /* the cache follows what is stored */
        room->current = current;

        if (room) {
            if (argv[18][0] == '=') {
                room->cur_sg = re->sg;
                room->cur_n = snapshot ? 0 : chain_n;
            } else if (resolved) {
                room->cur_sg = -1;
                room->cur_n = 0;
            }
            room->extrem = new_extrem;
            room->nextrem = new_n;
        }
    }

    result = MXW_DONE;

done:

    if (result != MXW_DONE && room) {
        /* the cache may be ahead of Redis now: start again from Redis */
        rs_room_drop(room);
    }

    free(group.p);
    free(changes.p);
    free(extrem.p);
    mx_pool_destroy(pool);

    return result;
}

/*
 * roomserver_join: a room this server joins through another server.
 *
 * The module made the join with the resident server (make_join,
 * send_join) and hands over what send_join answered, as one input entry:
 *
 *   kind=join_state room version event_id event (our join, as the
 *   resident returned it) state (JSON array of PDUs: the state before the
 *   join) auth_chain (JSON array) origin (the resident) reply req
 *
 *   every event of state and auth_chain: its ID from its hash, its
 *   signatures and hashes (rs_verify_json on the event as parsed, keys
 *   from mx:serverkeys, which the module's keys_many job filled), the
 *   auth rules against its own auth events (in order of depth)
 *        │ signatures that cannot be verified (its server's keys not to be
 *        │ had): the event is dropped, as the checks on receipt of a PDU
 *        │ say, and so is every event whose auth events name one dropped;
 *        │ the join fails only when it needs one (its auth events, the
 *        │ create event, power levels, join rules, the user's own
 *        │ membership of the state)
 *        │ any other failure of a state event: the join fails, nothing
 *        │ stored
 *   each stored as an outlier (mx_room_outliers, RS_JOIN_OUTLIERS a call:
 *   flag o, no output entry, no position, no timeline)
 *        │
 *   the join checked against that state, then stored as the room's first
 *   event here: a snapshot state group of the state and the join, the
 *   current state, the join the one forward extremity; its output entry
 *   carries the whole state as the change, so the syncer records every
 *   membership and the user's /sync shows the room
 *
 * The checks of the state and auth chain and their storing as outliers are
 * rs_given_state and rs_given_outliers, which an event over a gap uses too
 * (roomserver_process.c, rs_gap_state: lenient, see rs_given_state).
 *
 * Once stored, the history before the join is asked for
 * (roomserver_backfill.c).
 *
 * The room must be new here (no current state); a join_state entry
 * delivered again finds its join stored and answers the same, and one
 * cut short finds the outliers stored so far (stored once) and goes on
 * after the room's last position.  The room
 * leaves the cache afterwards and is read again from Redis by the next
 * event.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mx_event.h>

#include "roomserver.h"


/* an event dropped: why, and whether the join needs it */
typedef struct {
    const char   *why;
    const char   *type;
    const char   *state_key;
    unsigned      in_state:1;
} rs_join_drop_t;


int
rs_event_depth_cmp(const void *a, const void *b)
{
    const rs_event_t  *x = *(rs_event_t * const *) a;
    const rs_event_t  *y = *(rs_event_t * const *) b;

    if (x->ev->depth != y->ev->depth) {
        return x->ev->depth < y->ev->depth ? -1 : 1;
    }

    return strcmp(x->ev->event_id, y->ev->event_id);
}


/*
 * An event another server handed over (the state of a join, backfill),
 * its ID made from it: its signatures and hashes checked (rs_verify_json
 * on the event as parsed), then into the room's cache.  The event, or
 * NULL with *rc RS_VERIFY_DROP (why says why: refused) or RS_VERIFY_RETRY.
 */

rs_event_t *
rs_event_checked(mxw_t *w, rs_room_t *room, const char *id, mx_json_t *one,
    const char *enc, size_t len, rs_verify_t *rc, char *why, size_t why_len)
{
    rs_event_t  *re;
    char        *vpdu;
    size_t       vlen;

    *rc = rs_verify_json(w, room->rv, one, &vpdu, &vlen, why, why_len);
    if (*rc != RS_VERIFY_OK) {
        return NULL;
    }

    re = vpdu ? rs_event_add(room, id, vpdu, vlen, NULL, why, why_len)
              : rs_event_add_json(room, id, enc, len, one, NULL, why,
                                  why_len);
    free(vpdu);

    if (re == NULL) {
        *rc = RS_VERIFY_DROP;
    }

    return re;
}


/*
 * The auth rules on an event against its own auth events, from the cache
 * or Redis (one rejected counts as missing).  0 and *reason (NULL when
 * allowed), or -1 (Redis, memory).
 */

int
rs_event_auth_own(mxw_t *w, mx_pool_t *pool, rs_room_t *room,
    rs_event_t *re, const mx_auth_event_t *create, const char **reason)
{
    const mx_auth_event_t  *auth[MX_EVENT_MAX_AUTH + 1];
    rs_event_t             *a;
    size_t                  k, na;
    int                     failed;

    *reason = NULL;

    for (k = 0, na = 0; k < re->ev->n_auth && na < MX_EVENT_MAX_AUTH; k++) {
        failed = 0;
        a = rs_event_get(w, room, re->ev->auth_events[k], &failed);
        if (failed) {
            return -1;
        }

        if (a == NULL || (a->flags & RS_F_REJECTED)) {
            *reason = "auth_events.missing";
            return 0;
        }

        auth[na++] = a->ev;
    }

    if (mx_auth_check_auth_events(pool, room->rv, re->ev, auth, na, create,
                                  reason)
        == MX_AUTH_ERROR)
    {
        return -1;
    }

    return 0;
}


/* one "k\037v" entry, "\036"-separated, onto a growing buffer */

static int
rs_join_entry(char **buf, size_t *len, size_t *cap, const char *type,
    const char *state_key, const char *id)
{
    size_t  need;
    char   *p;

    need = strlen(type) + strlen(state_key) + strlen(id) + 4;

    if (*len + need > *cap) {
        *cap = (*len + need) * 2;
        p = realloc(*buf, *cap);
        if (p == NULL) {
            return -1;
        }
        *buf = p;
    }

    *len += snprintf(*buf + *len, *cap - *len, "%s%s%c%s%c%s",
                     *len ? "\036" : "", type, RS_SEP, state_key, RS_SEP, id);

    return 0;
}


/*
 * Outliers are stored RS_JOIN_OUTLIERS to a call of mx_room_outliers: a
 * call each cost a round trip and a function call, 130 ms of a join of
 * 1,000 members, where one call blocks Redis for a few milliseconds.
 */
#define RS_JOIN_OUTLIERS  200


/*
 * FCALL fn of the room (mx_room_outliers, mx_room_backfill): the room's
 * ID, arg when not NULL, then each event's ID, PDU, depth and position in
 * the room (pos, pos + 1, ...).  The integer answered, or -1.
 */

long long
rs_events_fcall(mxw_t *w, mx_pool_t *pool, rs_room_t *room, const char *fn,
    const char *arg, rs_event_t **evs, size_t n, int64_t pos)
{
    const char   **argv;
    size_t        *lens, i, k;
    char           key[600], *nums;
    redisReply    *r;
    long long      res;

    argv = mx_palloc(pool, (6 + 4 * n) * sizeof(char *));
    lens = mx_palloc(pool, (6 + 4 * n) * sizeof(size_t));
    nums = mx_palloc(pool, n * 48 + 1);
    if (argv == NULL || lens == NULL || nums == NULL) {
        return -1;
    }

    snprintf(key, sizeof(key), "mx:{%s}:room", room->room_id);

    k = 0;
    argv[k++] = "FCALL";
    argv[k++] = fn;
    argv[k++] = "1";
    argv[k++] = key;
    argv[k++] = room->room_id;
    if (arg) {
        argv[k++] = arg;
    }

    for (i = 0; i < k; i++) {
        lens[i] = strlen(argv[i]);
    }

    for (i = 0; i < n; i++, k += 4) {
        argv[k] = evs[i]->ev->event_id;
        lens[k] = strlen(argv[k]);
        argv[k + 1] = evs[i]->pdu;
        lens[k + 1] = evs[i]->pdu_len;
        argv[k + 2] = nums + i * 48;
        lens[k + 2] = snprintf(nums + i * 48, 24, "%lld",
                               (long long) evs[i]->ev->depth);
        argv[k + 3] = nums + i * 48 + 24;
        lens[k + 3] = snprintf(nums + i * 48 + 24, 24, "%lld",
                               (long long) (pos + (int64_t) i));
    }

    r = mxw_commandv(w, (int) k, argv, lens);
    if (r == NULL) {
        return -1;
    }

    res = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (res < 0) {
        mxw_info(w, "%s: %s: %s", room->room_id, fn,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }

    freeReplyObject(r);

    return res;
}


/* mx_room_store of one event; see lua/rooms.lua for the arguments */

static int
rs_join_store(mxw_t *w, rs_room_t *room, const char *version,
    const char *id, const char *pdu, size_t pdu_len, int64_t depth,
    const char *flags, const char *sg, const char *group,
    const char *cur_sg, const mxw_entry_t *e, int64_t pos)
{
    const char   *argv[23];
    size_t        lens[23];
    char          key[600], dbuf[32], pbuf[32];
    const char   *origin, *reply, *req;
    size_t        olen = 0, rlen = 0, qlen = 0;
    redisReply   *r;
    int           i, ok;

    snprintf(key, sizeof(key), "mx:{%s}:room", room->room_id);
    snprintf(dbuf, sizeof(dbuf), "%lld", (long long) depth);
    snprintf(pbuf, sizeof(pbuf), "%lld", (long long) pos);

    origin = mxw_entry_get(e, "origin", &olen);
    reply = mxw_entry_get(e, "reply", &rlen);
    req = mxw_entry_get(e, "req", &qlen);

    argv[0] = "FCALL";
    argv[1] = "mx_room_store";
    argv[2] = "2";
    argv[3] = key;
    argv[4] = "mx:output";
    argv[5] = room->room_id;
    argv[6] = id;
    argv[7] = pdu;
    argv[8] = dbuf;
    argv[9] = flags;
    argv[10] = sg;
    argv[11] = "";
    argv[12] = "0";
    argv[13] = group;
    argv[14] = cur_sg[0] ? group : "";        /* the change: all of it */
    argv[15] = cur_sg[0] ? id : "";           /* the one extremity */
    argv[16] = version;
    argv[17] = "";
    argv[18] = cur_sg;
    argv[19] = cur_sg[0] && origin ? origin : "";
    argv[20] = cur_sg[0] && reply && req ? reply : "";
    argv[21] = cur_sg[0] && reply && req ? req : "";
    argv[22] = pbuf;

    for (i = 0; i < 23; i++) {
        lens[i] = strlen(argv[i]);
    }

    lens[7] = pdu_len;
    if (argv[19][0]) {
        lens[19] = olen;
    }
    if (argv[20][0]) {
        lens[20] = rlen;
        lens[21] = qlen;
    }

    r = mxw_commandv(w, 23, argv, lens);
    if (r == NULL) {
        return -1;
    }

    ok = r->type == REDIS_REPLY_ARRAY;
    if (!ok) {
        mxw_info(w, "%s: mx_room_store %s: %s", room->room_id, id,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }

    freeReplyObject(r);

    return ok ? 0 : -1;
}


/*
 * Record an event dropped (its signatures, or an auth event dropped).  A
 * join (user not NULL) needs the state events the rules read for it (the
 * create event, power levels, join rules, the user's own membership):
 * 1 and why says so.  0: it goes on without it; -1: memory.
 */

static int
rs_join_drop(mx_pool_t *pool, mx_idmap_t *dropped, const char *id,
    const char *type, const char *state_key, int in_state, const char *user,
    const char *cause, char *why, size_t why_len)
{
    rs_join_drop_t  *d;
    char            *c;

    d = mx_palloc(pool, sizeof(rs_join_drop_t));
    c = mx_palloc(pool, strlen(cause) + 1);
    if (d == NULL || c == NULL) {
        return -1;
    }

    memcpy(c, cause, strlen(cause) + 1);
    d->why = c;
    d->type = type ? type : "";
    d->state_key = state_key;
    d->in_state = in_state ? 1 : 0;

    if (mx_idmap_put(dropped, id, d) != 0) {
        return -1;
    }

    if (user != NULL && in_state && state_key != NULL
        && ((state_key[0] == '\0'
             && (strcmp(d->type, "m.room.create") == 0
                 || strcmp(d->type, "m.room.power_levels") == 0
                 || strcmp(d->type, "m.room.join_rules") == 0))
            || (strcmp(d->type, "m.room.member") == 0
                && strcmp(state_key, user) == 0)))
    {
        snprintf(why, why_len, "the join needs %s (%s) of the room's"
                 " state, which cannot be verified: %s", id, d->type, c);
        return 1;
    }

    return 0;
}


/*
 * Another server's state and auth chain (JSON arrays of PDUs, parsed into
 * the room's pool): each event's ID from its hash, its signatures and
 * hashes, into the room's cache once, then the auth rules against its own
 * auth events, oldest first; *out the events to store (in_state: of the
 * first list), *state the state events of the first list.
 *
 * An event whose signatures do not verify (its server's keys not to be
 * had, say) is dropped, as the checks on receipt of a PDU say, and so is
 * every event whose auth events name one dropped.  For a join (join not
 * NULL) the room is new here: the join fails when it needs an event
 * dropped (its own auth events, or the create event, power levels, join
 * rules or the user's own membership of the state).  Without (an event
 * over a gap, lenient), one stored here before is taken as it is (in the
 * state unless it was rejected), neither checked nor stored again.  An
 * event the auth rules refuse refuses it all.
 *
 * 0: done; 1: refused, why says so; -1: Redis or memory failed.
 */

int
rs_given_state(mxw_t *w, rs_room_t *room, mx_pool_t *pool, mx_json_t *list,
    mx_json_t *chain, rs_event_t *join, rs_given_t **out, size_t *nout,
    mx_state_t **out_state, char *why, size_t why_len)
{
    mx_json_t               *lists[2], *one;
    rs_event_t             **evs, *re, *old;
    rs_given_t              *given;
    mx_state_t              *state;
    const mx_auth_event_t   *create;
    const char              *reason, *id, *user, *sk;
    char                    *enc, cause[512];
    size_t                   len, i, k, n, na, ndropped;
    rs_verify_t              rc;
    mx_idmap_t               dropped, of_state;
    rs_join_drop_t          *d;
    int                      failed, needed;

    lists[0] = list;
    lists[1] = chain;
    user = join ? join->ev->state_key : NULL;

    if (list == NULL || list->type != MX_JSON_ARRAY
        || chain == NULL || chain->type != MX_JSON_ARRAY)
    {
        snprintf(why, why_len, "state and auth_chain must be arrays");
        return 1;
    }

    na = list->u.a.n + chain->u.a.n;
    evs = mx_palloc(pool, (na + 1) * sizeof(rs_event_t *));
    state = mx_state_create(pool, list->u.a.n + 1);
    if (evs == NULL || state == NULL
        || mx_idmap_init(&dropped, pool, 16) != 0
        || mx_idmap_init(&of_state, pool, list->u.a.n + 1) != 0)
    {
        return -1;
    }

    n = 0;
    ndropped = 0;

    for (k = 0; k < 2; k++) {
        for (i = 0; i < lists[k]->u.a.n; i++) {
            one = lists[k]->u.a.v[i];
            id = mx_event_id(pool, one, room->rv);
            enc = mx_json_encode(pool, one, mx_event_json_flags(room->rv),
                                 &len);
            if (id == NULL || enc == NULL) {
                if (join == NULL) {
                    continue;
                }
                snprintf(why, why_len, "an event of the state has no ID");
                return 1;
            }

            if (mx_idmap_get(&dropped, id) != NULL) {
                continue;
            }

            failed = 0;
            old = join ? mx_idmap_get(&room->events, id)
                       : rs_event_get(w, room, id, &failed);
            if (failed) {
                return -1;
            }

            if (old != NULL) {
                /* in both lists (a join: the room is new here) */
                if (join == NULL && k == 0 && old->ev->state_key != NULL
                    && !(old->flags & RS_F_REJECTED)
                    && mx_state_put(state, old->ev) != 0)
                {
                    return -1;
                }
                continue;
            }

            /* the ID was made from this very event: verified as it is */
            re = rs_event_checked(w, room, id, one, enc, len, &rc, why,
                                  why_len);
            if (re == NULL) {
                if (rc != RS_VERIFY_DROP) {
                    return -1;
                }

                mxw_info(w, "%s: state %s of %s dropped: %s", room->room_id,
                         id, mx_json_get_str(one, "sender", NULL)
                             ? mx_json_get_str(one, "sender", NULL) : "?",
                         why);
                snprintf(cause, sizeof(cause), "%s", why);
                sk = mx_json_get_str(one, "state_key", NULL);

                needed = rs_join_drop(pool, &dropped, id,
                                      mx_json_get_str(one, "type", NULL), sk,
                                      k == 0, user, cause, why, why_len);
                if (needed != 0) {
                    return needed;
                }

                ndropped++;
                continue;
            }

            evs[n++] = re;

            if (k == 0 && mx_idmap_put(&of_state, id, re) != 0) {
                return -1;
            }
        }
    }

    /* the auth rules, each against its own auth events, oldest first */
    qsort(evs, n, sizeof(rs_event_t *), rs_event_depth_cmp);

    create = NULL;

    for (i = 0; i < n && create == NULL; i++) {
        re = evs[i];
        if (strcmp(re->ev->type, "m.room.create") == 0
            && re->ev->state_key != NULL && re->ev->state_key[0] == '\0'
            && mx_idmap_get(&of_state, re->ev->event_id) != NULL)
        {
            create = re->ev;
        }
    }

    if (create == NULL && join == NULL) {
        create = mx_state_get(state, "m.room.create", "");
    }

    for (i = 0; i < n; i++) {
        re = evs[i];

        /* on an event dropped: dropped too */
        d = NULL;
        for (k = 0; k < re->ev->n_auth && d == NULL; k++) {
            d = mx_idmap_get(&dropped, re->ev->auth_events[k]);
        }

        if (d != NULL) {
            snprintf(cause, sizeof(cause), "its auth event %s (%s) is"
                     " dropped: %s", re->ev->auth_events[k - 1], d->type,
                     d->why);
            mxw_info(w, "%s: state %s dropped: %s", room->room_id,
                     re->ev->event_id, cause);

            needed = rs_join_drop(pool, &dropped, re->ev->event_id,
                                  re->ev->type, re->ev->state_key,
                                  mx_idmap_get(&of_state, re->ev->event_id)
                                  != NULL, user, cause, why, why_len);
            if (needed != 0) {
                return needed;
            }

            ndropped++;
            continue;
        }

        if (rs_event_auth_own(w, pool, room, re, create, &reason) != 0) {
            return -1;
        }

        if (reason != NULL) {
            snprintf(why, why_len, "%s of the room's state is refused by"
                     " the auth rules: %s", re->ev->event_id,
                     mx_auth_reason_text(reason));
            return 1;
        }
    }

    /* what is left: the events stored, the state of those of the state */
    given = mx_palloc(pool, (n + 1) * sizeof(rs_given_t));
    if (given == NULL) {
        return -1;
    }

    for (i = 0, k = 0; i < n; i++) {
        re = evs[i];

        if (mx_idmap_get(&dropped, re->ev->event_id) != NULL) {
            continue;
        }

        given[k].re = re;
        given[k].in_state = re->ev->state_key != NULL
                            && mx_idmap_get(&of_state, re->ev->event_id)
                               != NULL;

        if (given[k].in_state && mx_state_put(state, re->ev) != 0) {
            return -1;
        }

        k++;
    }

    /* the join's own auth events: none may be one dropped */
    for (i = 0; join != NULL && i < join->ev->n_auth; i++) {
        d = mx_idmap_get(&dropped, join->ev->auth_events[i]);
        if (d != NULL) {
            snprintf(why, why_len, "the join needs %s (%s), which cannot"
                     " be verified: %s", join->ev->auth_events[i], d->type,
                     d->why);
            return 1;
        }
    }

    if (ndropped) {
        mxw_info(w, "%s: %zu events of the state given dropped",
                 room->room_id, ndropped);
    }

    *out = given;
    *nout = k;
    *out_state = state;

    return 0;
}


/* evs[0..n-1] stored as outliers, the first at position pos */

int
rs_given_outliers(mxw_t *w, mx_pool_t *pool, rs_room_t *room,
    const char *version, rs_given_t *evs, size_t n, int64_t pos)
{
    rs_event_t  **list;
    size_t        i, k;

    list = mx_palloc(pool, (n + 1) * sizeof(rs_event_t *));
    if (list == NULL) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        list[i] = evs[i].re;
    }

    for (i = 0; i < n; i += k) {
        k = n - i < RS_JOIN_OUTLIERS ? n - i : RS_JOIN_OUTLIERS;

        if (rs_events_fcall(w, pool, room, "mx_room_outliers", version,
                            list + i, k, pos + (int64_t) i)
            < 0)
        {
            return -1;
        }
    }

    for (i = 0; i < n; i++) {
        evs[i].re->flags |= RS_F_OUTLIER;
        evs[i].re->pos = pos + (int64_t) i;
        evs[i].re->sg = 0;
    }

    return 0;
}


mxw_result_t
rs_process_join_state(mxw_t *w, const mxw_entry_t *e, void *data, char *why,
    size_t why_len)
{
    const char              *room_id, *version, *event_id, *pdu, *text;
    size_t                   pdu_len, len, i, n, cap, glen;
    rs_room_t               *room;
    rs_event_t              *re, *join, *old;
    mx_pool_t               *pool;
    mx_json_t               *lists[2];
    mx_json_error_t          err;
    rs_given_t              *evs;
    mx_state_t              *state;
    const char              *reason;
    char                    *group, sgs[32];
    int                      failed, is_state, rc;
    mxw_result_t             result;

    (void) data;

    room_id = mxw_entry_get(e, "room", NULL);
    version = mxw_entry_get(e, "version", NULL);
    event_id = mxw_entry_get(e, "event_id", NULL);
    pdu = mxw_entry_get(e, "event", &pdu_len);

    if (room_id == NULL || version == NULL || event_id == NULL
        || pdu == NULL)
    {
        snprintf(why, why_len, "a join_state entry needs room, version,"
                 " event_id and event");
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

    /* delivered again: the join is stored, answer as for any event */
    failed = 0;
    old = rs_event_get(w, room, event_id, &failed);
    if (failed) {
        return MXW_RETRY;
    }

    if (old != NULL && !(old->flags & RS_F_OUTLIER)) {
        rs_room_drop(room);
        snprintf(why, why_len, "{\"event_id\":\"%s\"}", event_id);
        rs_answer(w, e, why);
        return MXW_DONE;
    }

    if (room->current->map.n > 0) {
        snprintf(why, why_len, "the room is known here already");
        rs_answer_error(w, e, 409, "M_UNKNOWN", why);
        return MXW_REJECT;
    }

    pool = mx_pool_create(65536);
    if (pool == NULL) {
        return MXW_RETRY;
    }

    result = MXW_RETRY;
    group = NULL;
    glen = 0;
    cap = 0;

    /* our user: the join's state key */
    join = rs_event_add(room, event_id, pdu, pdu_len, NULL, why, why_len);
    if (join == NULL || join->ev->state_key == NULL) {
        if (join != NULL) {
            snprintf(why, why_len, "the join has no state_key");
        }
        rs_answer_error(w, e, 400, "M_BAD_JSON", why);
        result = MXW_REJECT;
        goto done;
    }

    /* into the room's pool: each event's tree becomes its cache entry's
     * (the room is dropped at the end) */
    text = mxw_entry_get(e, "state", &len);
    lists[0] = text ? mx_json_parse(room->pool, text, len, &err) : NULL;
    text = mxw_entry_get(e, "auth_chain", &len);
    lists[1] = text ? mx_json_parse(room->pool, text, len, &err) : NULL;

    rc = rs_given_state(w, room, pool, lists[0], lists[1], join, &evs, &n,
                        &state, why, why_len);
    if (rc < 0) {
        goto done;
    }

    if (rc > 0) {
        rs_answer_error(w, e, 502, "M_UNKNOWN", why);
        result = MXW_REJECT;
        goto done;
    }

    /* our join, on that state */
    reason = NULL;
    if (mx_auth_check(pool, room->rv, join->ev, state, &reason)
        == MX_AUTH_ERROR)
    {
        goto done;
    }

    if (reason != NULL) {
        snprintf(why, why_len, "the join is refused by the room's state: %s",
                 mx_auth_reason_text(reason));
        rs_answer_error(w, e, 403, "M_FORBIDDEN", why);
        result = MXW_REJECT;
        goto done;
    }

    /* stored: the events as outliers, then the join with the state */
    for (i = 0; i < n; i++) {
        re = evs[i].re;
        is_state = re->ev->state_key != NULL
                   && mx_state_get(state, re->ev->type, re->ev->state_key)
                      == re->ev;

        if (is_state
            && rs_join_entry(&group, &glen, &cap, re->ev->type,
                             re->ev->state_key, re->ev->event_id) != 0)
        {
            goto done;
        }
    }

    if (rs_given_outliers(w, pool, room, version, evs, n, room->pos + 1)
        != 0)
    {
        goto done;
    }

    if (rs_join_entry(&group, &glen, &cap, join->ev->type,
                      join->ev->state_key, event_id) != 0)
    {
        goto done;
    }

    snprintf(sgs, sizeof(sgs), "+%lld", (long long) room->sg_last + 1);

    if (rs_join_store(w, room, version, event_id, pdu, pdu_len,
                      join->ev->depth, "-", sgs, group, "=", e,
                      room->pos + 1 + n) != 0)
    {
        goto done;
    }

    mxw_info(w, "%s: joined through %s with %zu events of state and auth"
             " chain", room_id, mxw_entry_get(e, "origin", NULL)
                                ? mxw_entry_get(e, "origin", NULL) : "?", n);

    /* the history before the join: fetched by the fedsender, the join
     * answered meanwhile (roomserver_backfill.c) */
    rs_backfill_request(w, room_id, mxw_entry_get(e, "origin", NULL),
                        join->ev);

    result = MXW_DONE;

done:

    /* read from Redis again by the next event */
    rs_room_drop(room);
    free(group);
    mx_pool_destroy(pool);

    return result;
}

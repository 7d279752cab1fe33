/*
 * GET /sync: what happened in a user's rooms since a token.
 *
 *   mx_sync (one call) ──► rooms with something new? ──yes──► answer
 *                                │no, and timeout > 0
 *                                ▼
 *   parked in this worker's list, with the user's rooms ──► a wakeup on
 *   mx:wake naming one of them (or the user) runs mx_sync again; the
 *   timeout answers with nothing new; a client that goes away takes its
 *   entry with it (pool cleanup)
 *
 * Tokens: next_batch is "s<N>", N the stream position the answer is
 * complete up to; every event placed later has a greater position, so no
 * event is missed or given twice.  A timeline's prev_batch is a /messages
 * token.
 *
 * Account data changes take stream positions too (mx:{<user_id>}:adpos),
 * so they come once, and wake the user's parked requests.
 *
 * Typing and receipts (ngx_matrix_ephemeral.c) take positions of the same
 * stream and come as the rooms' ephemeral events.
 *
 * To-device messages wait per device until it syncs past them.
 *
 * Filters (a stored filter's ID or inline JSON): rooms and not_rooms,
 * the timeline's and the state's event filters and limit here;
 * lazy_load_members, include_redundant_members and include_leave in
 * mx_sync; the ephemeral, account data and presence filters and
 * event_fields in ngx_matrix_sync_filter.c, which also writes the unread
 * notification counts.
 *
 * Presence: each /sync marks the user active (set_presence, online unless
 * said otherwise); m.presence events of the users sharing a room whose
 * presence changed since the token.
 *
 * End-to-end encryption (ngx_matrix_keys.c): device_lists (incremental
 * syncs), device_one_time_keys_count, device_unused_fallback_key_types.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_event.h>
#include <mx_filter.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"
#include "ngx_matrix_sync.h"


#define NGX_MATRIX_SYNC_LIMIT        20
#define NGX_MATRIX_SYNC_TIMEOUT_MAX  120000
#define NGX_MATRIX_SYNC_BATCH        64    /* woken syncs per mx_sync_many */


typedef struct ngx_matrix_sync_batch_s  ngx_matrix_sync_batch_t;

typedef struct {
    ngx_matrix_req_t     *mr;
    ngx_queue_t           queue;
    ngx_event_t           timer;
    ngx_str_t             since;        /* the position, digits; or empty */
    ngx_uint_t            full_state;
    ngx_msec_t            timeout;
    char                **rooms;        /* the user's rooms, for wakeups */
    size_t                nrooms;
    mx_filter_t          *filter;       /* NULL: none */
    ngx_matrix_sync_batch_t  *batch;    /* the mx_sync_many it waits on */
    ngx_uint_t            batch_i;
    unsigned              parked:1;
    unsigned              woken:1;
} ngx_matrix_sync_t;


/*
 * Woken requests are answered in batches: one mx_sync_many for up to
 * NGX_MATRIX_SYNC_BATCH of them, which reads what they share (the room's
 * new events, receipts, typing) once.  A request that goes away meanwhile
 * leaves a hole; a batch that fails is retried one request at a time.
 */
struct ngx_matrix_sync_batch_s {
    ngx_uint_t             n;
    ngx_matrix_sync_t     *sy[NGX_MATRIX_SYNC_BATCH];
};


static ngx_queue_t  ngx_matrix_sync_parked;
static ngx_uint_t   ngx_matrix_sync_ready;


static ngx_int_t ngx_matrix_sync_query(ngx_matrix_req_t *mr);
static void ngx_matrix_sync_batch_send(ngx_matrix_sync_batch_t *b);
static ngx_int_t ngx_matrix_sync_done(ngx_matrix_req_t *mr,
    redisReply *reply);


static void
ngx_matrix_sync_unpark(ngx_matrix_sync_t *sy)
{
    if (sy->parked) {
        ngx_queue_remove(&sy->queue);
        sy->parked = 0;
    }

    if (sy->timer.timer_set) {
        ngx_del_timer(&sy->timer);
    }
}


static void
ngx_matrix_sync_cleanup(void *data)
{
    ngx_matrix_sync_t  *sy = data;

    ngx_matrix_sync_unpark(sy);

    if (sy->batch) {
        sy->batch->sy[sy->batch_i] = NULL;
        sy->batch = NULL;
    }
}


/* the timeout: once more, then answer whatever there is */

static void
ngx_matrix_sync_timeout(ngx_event_t *ev)
{
    ngx_matrix_sync_t  *sy = ev->data;

    ngx_matrix_sync_unpark(sy);
    sy->timeout = 0;

    ngx_matrix_continue(sy->mr, ngx_matrix_sync_query(sy->mr));
}


/* does a wakeup "<room_id> <user_id> ..." concern this parked request? */

static ngx_uint_t
ngx_matrix_sync_concerns(ngx_matrix_sync_t *sy, ngx_str_t *room,
    u_char *users, u_char *end)
{
    u_char  *p, *sp;
    size_t   i, len;

    for (i = 0; i < sy->nrooms; i++) {
        if (ngx_strlen(sy->rooms[i]) == room->len
            && ngx_strncmp(sy->rooms[i], room->data, room->len) == 0)
        {
            return 1;
        }
    }

    /* the users whose membership changed: an invite to a new room, say */
    for (p = users; p < end; p = sp + 1) {
        sp = ngx_strlchr(p, end, ' ');
        if (sp == NULL) {
            sp = end;
        }

        len = sp - p;

        if (len == sy->mr->user_id.len
            && ngx_strncmp(p, sy->mr->user_id.data, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


void
ngx_matrix_sync_wake(ngx_str_t *message)
{
    ngx_queue_t              *q, *next;
    ngx_matrix_sync_t        *sy;
    ngx_matrix_sync_batch_t  *b;
    ngx_str_t                 room;
    u_char                   *end, *sp, *users;

    if (!ngx_matrix_sync_ready) {
        return;
    }

    end = message->data + message->len;
    sp = ngx_strlchr(message->data, end, ' ');

    room.data = message->data;
    room.len = (sp ? sp : end) - message->data;
    users = sp ? sp + 1 : end;
    b = NULL;

    for (q = ngx_queue_head(&ngx_matrix_sync_parked);
         q != ngx_queue_sentinel(&ngx_matrix_sync_parked);
         q = next)
    {
        next = ngx_queue_next(q);
        sy = ngx_queue_data(q, ngx_matrix_sync_t, queue);

        if (!ngx_matrix_sync_concerns(sy, &room, users, end)) {
            continue;
        }

        ngx_matrix_sync_unpark(sy);
        sy->woken = 1;

        if (b == NULL) {
            b = ngx_calloc(sizeof(ngx_matrix_sync_batch_t),
                           ngx_cycle->log);
            if (b == NULL) {
                ngx_matrix_continue(sy->mr, ngx_matrix_sync_query(sy->mr));
                continue;
            }
        }

        sy->batch = b;
        sy->batch_i = b->n;
        b->sy[b->n++] = sy;

        if (b->n == NGX_MATRIX_SYNC_BATCH) {
            ngx_matrix_sync_batch_send(b);
            b = NULL;
        }
    }

    if (b) {
        ngx_matrix_sync_batch_send(b);
    }
}


/*
 * What mx_sync and mx_sync_many take of a request: the key of the user's
 * rooms, the timeline limit and the filter's option letters.
 */

static ngx_int_t
ngx_matrix_sync_args(ngx_matrix_req_t *mr, ngx_str_t *key, ngx_str_t *limit,
    ngx_str_t *opts)
{
    ngx_matrix_sync_t  *sy;
    u_char             *p;

    sy = mr->data;

    if (ngx_matrix_user_key(mr, &mr->user_id, "rooms", key) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(mr->r->pool,
                    NGX_INT_T_LEN + NGX_MATRIX_SYNC_OPTIONS_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    limit->data = p;
    limit->len = ngx_sprintf(p, "%i",
                             sy->filter && sy->filter->room.timeline.limit > 0
                             ? ngx_min(sy->filter->room.timeline.limit, 100)
                             : NGX_MATRIX_SYNC_LIMIT)
                 - p;

    ngx_matrix_sync_options(sy->filter, p + NGX_INT_T_LEN, opts);

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_sync_query(ngx_matrix_req_t *mr)
{
    ngx_matrix_sync_t  *sy;
    ngx_matrix_cmd_t    c;
    ngx_str_t           key, limit, opts;

    sy = mr->data;

    if (ngx_matrix_sync_args(mr, &key, &limit, &opts) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_sync", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, &sy->since);
    ngx_matrix_cmd_str(&c, &limit);
    ngx_matrix_cmd_cstr(&c, sy->full_state ? "1" : "0");

    if (ngx_matrix_cmd_int(mr, &c, ngx_matrix_now_ms()) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_cmd_str(&c, &mr->device_id);
    ngx_matrix_cmd_str(&c, &opts);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_sync_done);
}


/* a batch's answer: each request's own, or each asks again alone */

static void
ngx_matrix_sync_batch_reply(void *data, redisReply *reply, ngx_uint_t status)
{
    ngx_matrix_sync_batch_t  *b = data;
    ngx_matrix_sync_t        *sy;
    ngx_uint_t                i, ok;
    ngx_int_t                 rc;

    ok = status == NGX_MATRIX_REDIS_OK && reply->type == REDIS_REPLY_ARRAY
         && reply->elements == b->n;

    for (i = 0; i < b->n; i++) {
        sy = b->sy[i];
        if (sy == NULL) {
            continue;
        }

        sy->batch = NULL;

        if (ok && reply->element[i]->type == REDIS_REPLY_ARRAY) {
            rc = ngx_matrix_sync_done(sy->mr, reply->element[i]);

        } else {
            rc = ngx_matrix_sync_query(sy->mr);
        }

        ngx_matrix_continue(sy->mr, rc);
    }

    ngx_free(b);
}


/* FCALL mx_sync_many n key... now (user since limit full device opts)... */

static void
ngx_matrix_sync_batch_send(ngx_matrix_sync_batch_t *b)
{
    size_t              n, k;
    ngx_uint_t          i;
    ngx_str_t           key, limit, opts;
    ngx_matrix_sync_t  *sy;
    ngx_matrix_req_t   *mr;
    const char         *argv[4 + 7 * NGX_MATRIX_SYNC_BATCH];
    size_t              lens[4 + 7 * NGX_MATRIX_SYNC_BATCH];
    u_char              nbuf[NGX_INT_T_LEN], now[NGX_INT64_LEN];

    n = b->n;
    k = 3 + n;

    argv[0] = "FCALL";
    argv[1] = "mx_sync_many";
    argv[2] = (char *) nbuf;
    lens[0] = 5;
    lens[1] = 12;
    lens[2] = ngx_sprintf(nbuf, "%uz", n) - nbuf;

    argv[k] = (char *) now;
    lens[k] = ngx_sprintf(now, "%L", (int64_t) ngx_matrix_now_ms()) - now;
    k++;

    for (i = 0; i < n; i++) {
        sy = b->sy[i];
        mr = sy->mr;

        if (ngx_matrix_sync_args(mr, &key, &limit, &opts) != NGX_OK) {
            goto one_by_one;
        }

        argv[3 + i] = (char *) key.data;
        lens[3 + i] = key.len;

        argv[k] = (char *) mr->user_id.data;
        lens[k++] = mr->user_id.len;
        argv[k] = (char *) sy->since.data;
        lens[k++] = sy->since.len;
        argv[k] = (char *) limit.data;
        lens[k++] = limit.len;
        argv[k] = sy->full_state ? "1" : "0";
        lens[k++] = 1;
        argv[k] = (char *) mr->device_id.data;
        lens[k++] = mr->device_id.len;
        argv[k] = (char *) opts.data;
        lens[k++] = opts.len;
    }

    if (ngx_matrix_redis_command(NULL, ngx_matrix_sync_batch_reply, b,
                                 (int) k, argv, lens)
        == NGX_OK)
    {
        return;
    }

one_by_one:

    /* Redis is away, or memory: each request on its own says so */
    ngx_matrix_sync_batch_reply(b, NULL, NGX_MATRIX_REDIS_DOWN);
}


/* {id, pdu, ...} as client events into arr (stripped: invite state) */

static ngx_int_t
ngx_matrix_sync_events(ngx_matrix_req_t *mr, redisReply *list,
    mx_json_t *arr, const char *room_id, ngx_uint_t stripped,
    const mx_event_filter_t *f)
{
    mx_pool_t        *pool;
    mx_json_t        *pdu, *ev, *out;
    mx_json_error_t   err;
    size_t            i;

    static const char  *keep[] = { "type", "state_key", "content", "sender",
                                   NULL };

    pool = ngx_matrix_pool(mr);

    for (i = 0; list->type == REDIS_REPLY_ARRAY && i + 1 < list->elements;
         i += 2)
    {
        pdu = mx_json_parse(pool, list->element[i + 1]->str,
                            list->element[i + 1]->len, &err);
        if (pdu == NULL) {
            continue;
        }

        if (f != NULL) {
            const char  *type, *sender;
            size_t       tlen, slen;

            type = mx_json_get_str(pdu, "type", &tlen);
            sender = mx_json_get_str(pdu, "sender", &slen);

            if (type == NULL || sender == NULL
                || !mx_filter_allows_event(f, type, tlen, sender, slen,
                        room_id, ngx_strlen(room_id),
                        mx_json_get(mx_json_get(pdu, "content"), "url")
                        != NULL))
            {
                continue;
            }
        }

        if (stripped) {
            const char  **k;

            out = mx_json_object(pool);
            if (out == NULL) {
                return NGX_ERROR;
            }

            for (k = keep; *k; k++) {
                ev = mx_json_get(pdu, *k);
                if (ev != NULL && mx_json_set(pool, out, *k, ev) != 0) {
                    return NGX_ERROR;
                }
            }

        } else {
            out = mx_event_client(pool, pdu, list->element[i]->str, room_id);
            if (out == NULL) {
                return NGX_ERROR;
            }
        }

        if (mx_json_append(pool, arr, out) != 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* an object {key: []} or {key: {}} */

static mx_json_t *
ngx_matrix_sync_wrap(mx_pool_t *pool, const char *key, mx_json_t *v)
{
    mx_json_t  *o;

    o = mx_json_object(pool);
    if (o == NULL || v == NULL || mx_json_set(pool, o, key, v) != 0) {
        return NULL;
    }

    return o;
}


/* {"events": [{type, content}, ...]} from {type, content JSON, ...} */

static mx_json_t *
ngx_matrix_sync_account_data(ngx_matrix_req_t *mr, redisReply *list)
{
    mx_pool_t        *pool;
    mx_json_t        *arr, *ev, *content;
    mx_json_error_t   err;
    size_t            i;

    pool = ngx_matrix_pool(mr);
    arr = mx_json_array(pool);
    if (arr == NULL) {
        return NULL;
    }

    for (i = 0; list->type == REDIS_REPLY_ARRAY && i + 1 < list->elements;
         i += 2)
    {
        content = mx_json_parse(pool, list->element[i + 1]->str,
                                list->element[i + 1]->len, &err);
        ev = mx_json_object(pool);

        if (content == NULL || ev == NULL
            || mx_json_set(pool, ev, "type",
                           mx_json_strn(pool, list->element[i]->str,
                                        list->element[i]->len)) != 0
            || mx_json_set(pool, ev, "content", content) != 0
            || mx_json_append(pool, arr, ev) != 0)
        {
            return NULL;
        }
    }

    return ngx_matrix_sync_wrap(pool, "events", arr);
}


/*
 * {"events": [m.typing, m.receipt]} from {typing changed, {user_id, ...},
 * {type, user_id, thread, {"event_id","ts"}, ...}}
 */

static mx_json_t *
ngx_matrix_sync_ephemeral(ngx_matrix_req_t *mr, redisReply *eph)
{
    mx_pool_t        *pool;
    mx_json_t        *arr, *ev, *content, *users, *rc, *byev, *bytype, *r;
    mx_json_t        *rec;
    mx_json_error_t   err;
    redisReply       *list;
    const char       *event_id;
    size_t            i, len;

    pool = ngx_matrix_pool(mr);
    arr = mx_json_array(pool);
    if (arr == NULL) {
        return NULL;
    }

    if (eph == NULL || eph->type != REDIS_REPLY_ARRAY || eph->elements != 3) {
        return ngx_matrix_sync_wrap(pool, "events", arr);
    }

    if (eph->element[0]->integer) {
        users = mx_json_array(pool);
        list = eph->element[1];

        for (i = 0; users && list->type == REDIS_REPLY_ARRAY
                    && i < list->elements; i++)
        {
            if (mx_json_append(pool, users,
                               mx_json_strn(pool, list->element[i]->str,
                                            list->element[i]->len)) != 0)
            {
                return NULL;
            }
        }

        ev = mx_json_object(pool);
        if (ev == NULL || users == NULL
            || mx_json_set_str(pool, ev, "type", "m.typing") != 0
            || mx_json_set(pool, ev, "content",
                           ngx_matrix_sync_wrap(pool, "user_ids", users)) != 0
            || mx_json_append(pool, arr, ev) != 0)
        {
            return NULL;
        }
    }

    list = eph->element[2];

    if (list->type == REDIS_REPLY_ARRAY && list->elements >= 4) {
        content = mx_json_object(pool);
        if (content == NULL) {
            return NULL;
        }

        for (i = 0; i + 3 < list->elements; i += 4) {
            rec = mx_json_parse(pool, list->element[i + 3]->str,
                                list->element[i + 3]->len, &err);
            event_id = mx_json_get_str(rec, "event_id", &len);
            if (event_id == NULL) {
                continue;
            }

            /* content.<event_id>.<type>.<user_id> = {ts, thread_id} */
            byev = mx_json_get(content, event_id);
            if (byev == NULL) {
                byev = mx_json_object(pool);
                if (byev == NULL
                    || mx_json_set(pool, content, event_id, byev) != 0)
                {
                    return NULL;
                }
            }

            bytype = mx_json_get(byev, list->element[i]->str);
            if (bytype == NULL) {
                bytype = mx_json_object(pool);
                if (bytype == NULL
                    || mx_json_set(pool, byev, list->element[i]->str, bytype)
                       != 0)
                {
                    return NULL;
                }
            }

            r = mx_json_object(pool);
            rc = mx_json_get(rec, "ts");

            if (r == NULL || (rc && mx_json_set(pool, r, "ts", rc) != 0)
                || (list->element[i + 2]->len
                    && mx_json_set(pool, r, "thread_id",
                                   mx_json_strn(pool,
                                                list->element[i + 2]->str,
                                                list->element[i + 2]->len))
                       != 0)
                || mx_json_set(pool, bytype, list->element[i + 1]->str, r)
                   != 0)
            {
                return NULL;
            }
        }

        ev = mx_json_object(pool);
        if (ev == NULL
            || mx_json_set_str(pool, ev, "type", "m.receipt") != 0
            || mx_json_set(pool, ev, "content", content) != 0
            || mx_json_append(pool, arr, ev) != 0)
        {
            return NULL;
        }
    }

    return ngx_matrix_sync_wrap(pool, "events", arr);
}


/* {"events": [m.presence...]} from {user, presence, msg, active_ts, ...} */

static mx_json_t *
ngx_matrix_sync_presence(ngx_matrix_req_t *mr, redisReply *list)
{
    mx_pool_t   *pool;
    mx_json_t   *arr, *ev, *content;
    redisReply **e;
    size_t       i;

    pool = ngx_matrix_pool(mr);
    arr = mx_json_array(pool);

    for (i = 0; arr && list->type == REDIS_REPLY_ARRAY
                && i + 3 < list->elements; i += 4)
    {
        e = &list->element[i];

        content = ngx_matrix_presence_content(pool, e[1]->str, e[1]->len,
                                              e[2]->str, e[2]->len,
                                              e[3]->str, e[3]->len);
        ev = mx_json_object(pool);

        if (content == NULL || ev == NULL
            || mx_json_set_str(pool, ev, "type", "m.presence") != 0
            || mx_json_set(pool, ev, "sender",
                           mx_json_strn(pool, e[0]->str, e[0]->len)) != 0
            || mx_json_set(pool, ev, "content", content) != 0
            || mx_json_append(pool, arr, ev) != 0)
        {
            return NULL;
        }
    }

    return ngx_matrix_sync_wrap(pool, "events", arr);
}


/* {"m.joined_member_count", "m.invited_member_count", "m.heroes"} */

static mx_json_t *
ngx_matrix_sync_summary(ngx_matrix_req_t *mr, redisReply *sum)
{
    mx_pool_t  *pool;
    mx_json_t  *out, *heroes;
    size_t      i;

    pool = ngx_matrix_pool(mr);
    out = mx_json_object(pool);
    heroes = mx_json_array(pool);

    if (out == NULL || heroes == NULL) {
        return NULL;
    }

    if (sum == NULL || sum->type != REDIS_REPLY_ARRAY || sum->elements < 2) {
        return out;
    }

    for (i = 2; i < sum->elements; i++) {
        if (mx_json_append(pool, heroes,
                           mx_json_strn(pool, sum->element[i]->str,
                                        sum->element[i]->len)) != 0)
        {
            return NULL;
        }
    }

    if (mx_json_set_int(pool, out, "m.joined_member_count",
                        sum->element[0]->integer) != 0
        || mx_json_set_int(pool, out, "m.invited_member_count",
                           sum->element[1]->integer) != 0
        || mx_json_set(pool, out, "m.heroes", heroes) != 0)
    {
        return NULL;
    }

    return out;
}


static void
ngx_matrix_sync_ignore(void *data, redisReply *reply, ngx_uint_t status)
{
    (void) data;
    (void) reply;
    (void) status;
}


/* {"events": [...]} from the to-device events' JSON */

static mx_json_t *
ngx_matrix_sync_todevice(ngx_matrix_req_t *mr, redisReply *list)
{
    mx_pool_t        *pool;
    mx_json_t        *arr, *ev;
    mx_json_error_t   err;
    size_t            i;

    pool = ngx_matrix_pool(mr);
    arr = mx_json_array(pool);

    for (i = 0; arr && list->type == REDIS_REPLY_ARRAY && i < list->elements;
         i++)
    {
        ev = mx_json_parse(pool, list->element[i]->str,
                           list->element[i]->len, &err);
        if (ev != NULL && mx_json_append(pool, arr, ev) != 0) {
            return NULL;
        }
    }

    return ngx_matrix_sync_wrap(pool, "events", arr);
}


static ngx_int_t
ngx_matrix_sync_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_sync_t  *sy;
    mx_pool_t          *pool;
    mx_json_t          *out, *rooms, *join, *invite, *leave, *knock, *room;
    mx_json_t          *tl;
    ngx_uint_t          knocked;
    mx_json_t          *events, *state, *sec;
    redisReply         *r, *all;
    const char         *room_id, *section;
    size_t              i, n;
    u_char              tok[NGX_INT64_LEN + 2];

    sy = mr->data;
    pool = ngx_matrix_pool(mr);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 6) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* nothing new: park, when the client is willing to wait */
    if (reply->elements == 6 && reply->element[2]->elements == 0
        && reply->element[3]->elements == 0
        && reply->element[4]->elements == 0
        && !ngx_matrix_sync_e2ee_news(reply->element[5])
        && sy->since.len && sy->timeout > 0 && !sy->woken)
    {
        all = reply->element[1];
        n = all->type == REDIS_REPLY_ARRAY ? all->elements : 0;

        sy->rooms = mx_palloc(pool, (n + 1) * sizeof(char *));
        if (sy->rooms == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (i = 0; i < n; i++) {
            sy->rooms[i] = mx_pstrndup(pool, all->element[i]->str,
                                       all->element[i]->len);
            if (sy->rooms[i] == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        sy->nrooms = n;
        sy->parked = 1;
        ngx_queue_insert_tail(&ngx_matrix_sync_parked, &sy->queue);
        ngx_add_timer(&sy->timer, sy->timeout);

        /* a client that goes away ends the request, and its entry, now */
        mr->r->read_event_handler = ngx_http_test_reading;
        (void) ngx_handle_read_event(mr->r->connection->read, 0);

        return NGX_DONE;
    }

    sy->woken = 0;

    out = mx_json_object(pool);
    rooms = mx_json_object(pool);
    join = mx_json_object(pool);
    invite = mx_json_object(pool);
    leave = mx_json_object(pool);
    knock = mx_json_object(pool);

    ngx_sprintf(tok, "s%L%Z", (int64_t) reply->element[0]->integer);

    if (out == NULL || rooms == NULL || join == NULL || invite == NULL
        || leave == NULL || knock == NULL
        || mx_json_set_str(pool, out, "next_batch", (char *) tok) != 0
        || mx_json_set(pool, rooms, "join", join) != 0
        || mx_json_set(pool, rooms, "invite", invite) != 0
        || mx_json_set(pool, rooms, "leave", leave) != 0
        || mx_json_set(pool, rooms, "knock", knock) != 0
        || mx_json_set(pool, out, "rooms", rooms) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 6; i < reply->elements; i++) {
        r = reply->element[i];

        if (r->type != REDIS_REPLY_ARRAY || r->elements < 7) {
            continue;
        }

        room_id = r->element[0]->str;
        section = r->element[1]->str;

        if (sy->filter != NULL
            && !mx_filter_allows_room(&sy->filter->room.rooms,
                                      &sy->filter->room.not_rooms, room_id,
                                      ngx_strlen(room_id)))
        {
            continue;
        }

        room = mx_json_object(pool);
        state = mx_json_array(pool);
        events = mx_json_array(pool);
        if (room == NULL || state == NULL || events == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_strcmp(section, "invite") == 0
            || ngx_strcmp(section, "knock") == 0)
        {
            knocked = section[0] == 'k';

            if (ngx_matrix_sync_events(mr, r->element[4], state, room_id, 1,
                                       NULL)
                != NGX_OK
                || mx_json_set(pool, room,
                               knocked ? "knock_state" : "invite_state",
                               ngx_matrix_sync_wrap(pool, "events", state))
                   != 0
                || mx_json_set(pool, knocked ? knock : invite, room_id, room)
                   != 0)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            continue;
        }

        tl = mx_json_object(pool);
        ngx_sprintf(tok, "p%L%Z", (int64_t) r->element[3]->integer);

        if (tl == NULL
            || ngx_matrix_sync_events(mr, r->element[4], state, room_id, 0,
                   sy->filter ? &sy->filter->room.state : NULL) != NGX_OK
            || ngx_matrix_sync_events(mr, r->element[5], events, room_id, 0,
                   sy->filter ? &sy->filter->room.timeline : NULL) != NGX_OK
            || mx_json_set(pool, tl, "events", events) != 0
            || mx_json_set(pool, tl, "limited",
                           mx_json_bool(pool, r->element[2]->integer)) != 0
            || mx_json_set_str(pool, tl, "prev_batch", (char *) tok) != 0
            || mx_json_set(pool, room, "timeline", tl) != 0
            || mx_json_set(pool, room, "state",
                           ngx_matrix_sync_wrap(pool, "events", state)) != 0
            || mx_json_set(pool, room, "account_data",
                           ngx_matrix_sync_account_data(mr, r->element[6]))
               != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        sec = ngx_strcmp(section, "join") == 0 ? join : leave;

        if (sec == join
            && (mx_json_set(pool, room, "ephemeral",
                            ngx_matrix_sync_ephemeral(mr,
                                r->elements > 7 ? r->element[7] : NULL))
                != 0
                || mx_json_set(pool, room, "unread_notifications",
                               mx_json_object(pool)) != 0
                || mx_json_set(pool, room, "summary",
                               ngx_matrix_sync_summary(mr,
                                   r->elements > 8 ? r->element[8] : NULL))
                   != 0))
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_matrix_sync_room_filter(mr, sy->filter, room, room_id,
                                        sec == join && r->elements > 9
                                        ? r->element[9] : NULL)
            != NGX_OK
            || mx_json_set(pool, sec, room_id, room) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* device lists, one-time key counts: ngx_matrix_keys.c */
    if (ngx_matrix_sync_e2ee(mr, out, reply->element[5], sy->since.len != 0)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mx_json_set(pool, out, "account_data",
                    ngx_matrix_sync_account_data(mr, reply->element[2]))
        != 0
        || mx_json_set(pool, out, "presence",
                       ngx_matrix_sync_presence(mr, reply->element[4])) != 0
        || mx_json_set(pool, out, "to_device",
                       ngx_matrix_sync_todevice(mr, reply->element[3])) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the global account data and presence filters */
    if (ngx_matrix_sync_top_filter(mr, sy->filter, out) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


/* GET /sync?since=&timeout=&full_state= */

static ngx_int_t
ngx_matrix_sync_filter(ngx_matrix_req_t *mr, const char *json, size_t len)
{
    ngx_matrix_sync_t  *sy;
    mx_pool_t          *pool;
    mx_json_t          *v;
    mx_json_error_t     jerr;
    char                err[160];

    sy = mr->data;
    pool = ngx_matrix_pool(mr);

    v = mx_json_parse(pool, json, len, &jerr);
    sy->filter = mx_palloc(pool, sizeof(mx_filter_t));

    if (sy->filter == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (v == NULL || mx_filter_parse(pool, v, sy->filter, err, sizeof(err))
                     != 0)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "Invalid filter: %s",
                                     v ? err : jerr.msg);
    }

    return ngx_matrix_sync_query(mr);
}


static ngx_int_t
ngx_matrix_sync_filter_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    if (reply->type != REDIS_REPLY_STRING) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "No such filter.");
    }

    return ngx_matrix_sync_filter(mr, reply->str, reply->len);
}


ngx_int_t
ngx_matrix_sync(ngx_matrix_req_t *mr)
{
    ngx_matrix_sync_t   *sy;
    ngx_pool_cleanup_t  *cln;
    ngx_str_t            since, timeout, full, filter, key, setp;
    ngx_matrix_cmd_t     c;
    u_char              *dec, *p;
    ngx_int_t            ms;
    int64_t              pos;
    size_t               i;

    if (!ngx_matrix_sync_ready) {
        ngx_queue_init(&ngx_matrix_sync_parked);
        ngx_matrix_sync_ready = 1;
    }

    sy = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_sync_t));
    cln = ngx_pool_cleanup_add(mr->r->pool, 0);
    if (sy == NULL || cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sy->mr = mr;
    sy->timer.handler = ngx_matrix_sync_timeout;
    sy->timer.data = sy;
    sy->timer.log = mr->r->connection->log;
    cln->handler = ngx_matrix_sync_cleanup;
    cln->data = sy;
    mr->data = sy;

    if (ngx_matrix_arg(mr->r, "since", &since) == NGX_OK && since.len) {
        pos = ngx_matrix_token_pos(&since);
        if (pos < 0 || since.data[0] != 's') {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM",
                                         "since is not a valid token.");
        }

        /* the digits after 's' */
        for (i = 1; i < since.len && since.data[i] >= '0'
                    && since.data[i] <= '9'; i++) { /* void */ }

        sy->since.data = since.data + 1;
        sy->since.len = i - 1;
    }

    if (ngx_matrix_arg(mr->r, "timeout", &timeout) == NGX_OK && timeout.len) {
        ms = ngx_atoi(timeout.data, timeout.len);
        if (ms == NGX_ERROR) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM",
                                         "timeout must be a number of ms.");
        }
        sy->timeout = (ngx_msec_t) ngx_min(ms, NGX_MATRIX_SYNC_TIMEOUT_MAX);
    }

    if (ngx_matrix_arg(mr->r, "full_state", &full) == NGX_OK
        && full.len == 4 && ngx_strncmp(full.data, "true", 4) == 0)
    {
        sy->full_state = 1;
    }

    /* set_presence (online unless said otherwise): the user is here */
    if (ngx_matrix_arg(mr->r, "set_presence", &setp) != NGX_OK
        || setp.len == 0)
    {
        ngx_str_set(&setp, "online");
    }

    if (!(setp.len == 11 && ngx_strncmp(setp.data, "unavailable", 11) == 0)
        && !(setp.len == 7 && ngx_strncmp(setp.data, "offline", 7) == 0)
        && !(setp.len == 6 && ngx_strncmp(setp.data, "online", 6) == 0))
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "set_presence must"
                                     " be online, unavailable or offline.");
    }

    if (!(setp.len == 7 && ngx_strncmp(setp.data, "offline", 7) == 0)
        && ngx_matrix_presence_cmd(mr, &c, &setp, NULL, 1) == NGX_OK)
    {
        /* ahead of mx_sync on the same connection: it sees it */
        (void) ngx_matrix_redis_command(NULL, ngx_matrix_sync_ignore, NULL,
                                        c.n, c.v, c.len);
    }

    /* filter: a stored filter's ID, or the filter itself as JSON */
    if (ngx_matrix_arg(mr->r, "filter", &filter) == NGX_OK && filter.len) {
        dec = ngx_pnalloc(mr->r->pool, filter.len);
        if (dec == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = dec;
        ngx_unescape_uri(&p, &filter.data, filter.len, 0);
        filter.data = dec;
        filter.len = p - dec;

        if (filter.len && filter.data[0] == '{') {
            return ngx_matrix_sync_filter(mr, (char *) filter.data,
                                          filter.len);
        }

        for (i = 0; i < filter.len; i++) {
            if (filter.data[i] < '0' || filter.data[i] > '9') {
                break;
            }
        }

        if (i != filter.len || filter.len > 20) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "filter is"
                                         " neither a filter ID nor JSON.");
        }

        if (ngx_matrix_user_key(mr, &mr->user_id, "filters", &key)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        c.n = 0;
        c.overflow = 0;
        ngx_matrix_cmd_cstr(&c, "HGET");
        ngx_matrix_cmd_str(&c, &key);
        ngx_matrix_cmd_str(&c, &filter);

        return ngx_matrix_cmd_send(mr, &c, ngx_matrix_sync_filter_got);
    }

    return ngx_matrix_sync_query(mr);
}

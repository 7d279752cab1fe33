/*
 * fedsender: transactions to the other servers.
 *
 *   mx:output (local events) ─┐   mx_fedq_put    mx:fedq:{<dest>}  list
 *   mx:edus (EDUs)  ──────────┴──────────────►   one per destination
 *                                                      │ mx_fedq_txn
 *   fs_txn_tick: each destination with items, no     ▼
 *   transaction in flight, not backing off ──► PUT /send/<txnId>
 *                                                      │
 *        200 ──► mx_fedq_done: the items go, the next transaction
 *        no answer, 5xx, 401, 408, 429 ──► mx_fedq_retry: backoff
 *        another 4xx ──► refused: logged, dropped (mx_fedq_done)
 *
 * The queues, the transaction in flight and the backoff live in Redis
 * (lua/fedq.lua), so a restart loses nothing and retries a transaction
 * with its ID and its content.  An entry of mx:output or mx:edus is
 * acknowledged once queued for every destination (the calls are
 * pipelined: one round trip a batch); queuing it twice (a redelivery)
 * queues nothing.  Here, in memory, only what saves reads:
 * which destinations may have something, which have a transaction out,
 * until when each backs off.
 *
 * Backoff: 2 s, doubling up to 1 h, each delay drawn within +-20 % so that
 * destinations failing together do not come back together.  The loop's
 * read blocks no longer than the next destination's wait.
 */

#include <stdlib.h>
#include <string.h>

#include <mx_ids.h>
#include <mx_server_name.h>

#include "fedsender.h"


#define FS_DESTS          "mx:fedq:dests"
#define FS_DELAY_MIN      2000
#define FS_DELAY_MAX      (3600 * 1000)
#define FS_EDU_MAX_AGE    (24 * 3600 * 1000LL)    /* droppable EDUs older
                                                     than this are not
                                                     sent */
#define FS_SEND_PATH      "/_matrix/federation/v1/send/"


typedef struct fs_dest_s  fs_dest_t;

struct fs_dest_s {
    fs_dest_t  *next;
    char       *name;
    int64_t     retry_at;       /* not before (ms); 0: now */
    int64_t     delay;          /* the last backoff (ms); 0: none */
    int         busy;           /* a transaction in flight */
    int         ready;          /* its queue may hold something */
};


static fs_dest_t  *fs_dests;
static int         fs_loaded;


static fs_dest_t *
fs_dest_get(const char *name, size_t len)
{
    fs_dest_t  *d;

    for (d = fs_dests; d; d = d->next) {
        if (strlen(d->name) == len && memcmp(d->name, name, len) == 0) {
            return d;
        }
    }

    d = calloc(1, sizeof(fs_dest_t));
    if (d == NULL) {
        return NULL;
    }

    d->name = strndup(name, len);
    if (d->name == NULL) {
        free(d);
        return NULL;
    }

    d->next = fs_dests;
    fs_dests = d;

    return d;
}


/* the queues as Redis has them: after a start, every one may be due */

int
fs_txn_init(void)
{
    redisReply  *r, *q;
    fs_dest_t   *d;
    size_t       i;

    r = mxw_command(fs_w, "FCALL mx_fedq_list 0");
    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        mxw_error(fs_w, "mx_fedq_list: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }

    for (i = 0; i < r->elements; i++) {
        q = r->element[i];
        if (q->type != REDIS_REPLY_ARRAY || q->elements < 5
            || q->element[0]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        d = fs_dest_get(q->element[0]->str, q->element[0]->len);
        if (d == NULL) {
            freeReplyObject(r);
            return -1;
        }

        d->ready = 1;
        d->retry_at = q->element[3]->type == REDIS_REPLY_INTEGER
                      ? q->element[3]->integer : 0;
        d->delay = q->element[4]->type == REDIS_REPLY_INTEGER
                   ? q->element[4]->integer : 0;
    }

    if (r->elements) {
        mxw_info(fs_w, "%zu destinations have something queued",
                 r->elements);
    }

    freeReplyObject(r);
    fs_loaded = 1;

    return 0;
}


void
fs_txn_fini(void)
{
    fs_dest_t  *d;

    while (fs_dests) {
        d = fs_dests;
        fs_dests = d->next;
        free(d->name);
        free(d);
    }
}


/* --- queuing -------------------------------------------------------------- */

/* the reply of mx_fedq_put: the destinations it went to are due */

static int
fs_queue_check(redisReply *r)
{
    redisReply  *x;
    fs_dest_t   *d;
    size_t       i;

    if (r->type != REDIS_REPLY_ARRAY) {
        mxw_error(fs_w, "mx_fedq_put: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        return -1;
    }

    for (i = 0; i < r->elements; i++) {
        x = r->element[i];
        if (x->type != REDIS_REPLY_STRING) {
            continue;
        }

        d = fs_dest_get(x->str, x->len);
        if (d == NULL) {
            return -1;              /* the batch again: queued twice is
                                       queued once */
        }

        d->ready = 1;
    }

    return 0;
}


/*
 * FCALL mx_fedq_put: the item for the room's servers and/or one more
 * destination.  Pipelined: a batch of entries costs one round trip, and
 * is acknowledged once every reply has been read and checked.
 */

static mxw_result_t
fs_queue(const mxw_entry_t *e, const char *item, size_t item_len,
    const char *room, const char *dest)
{
    const char  *argv[10];
    size_t       lens[10], i;
    int          argc;

    argc = 0;
    argv[argc++] = "FCALL";
    argv[argc++] = "mx_fedq_put";
    argv[argc++] = "1";
    argv[argc++] = FS_DESTS;
    argv[argc++] = fs_w->cf.server_name;
    argv[argc++] = e->stream;
    argv[argc++] = e->id;
    argv[argc++] = item;
    argv[argc++] = room ? room : "";

    if (dest) {
        argv[argc++] = dest;
    }

    for (i = 0; i < (size_t) argc; i++) {
        lens[i] = i == 7 ? item_len : strlen(argv[i]);
    }

    if (mxw_append(fs_w, fs_queue_check, argc, argv, lens) != 0) {
        return MXW_RETRY;
    }

    return MXW_DONE;
}


/*
 * An accepted event: one built here goes to the room's other servers; one
 * another server sent is theirs to send, never sent back.
 */

mxw_result_t
fs_event(mxw_t *w, const mxw_entry_t *e, void *data, char *why,
    size_t why_len)
{
    const char    *origin, *room, *event_id;
    char          *item;
    size_t         olen, len;
    mxw_result_t   rc;

    (void) w;
    (void) data;

    origin = mxw_entry_get(e, "origin", &olen);
    if (origin != NULL && !(olen == 5 && memcmp(origin, "local", 5) == 0)) {
        return MXW_DONE;
    }

    room = mxw_entry_get(e, "room", NULL);
    event_id = mxw_entry_get(e, "event_id", NULL);

    if (room == NULL || event_id == NULL || strchr(room, ' ')
        || strchr(event_id, ' '))
    {
        snprintf(why, why_len, "an event entry needs room and event_id");
        return MXW_REJECT;
    }

    len = 2 + strlen(event_id) + 1 + strlen(room);
    item = malloc(len + 1);
    if (item == NULL) {
        return MXW_RETRY;
    }

    snprintf(item, len + 1, "p %s %s", event_id, room);

    rc = fs_queue(e, item, len, room, NULL);
    free(item);

    return rc;
}


/*
 * An EDU of mx:edus: to the servers of a room (room) or to one (dest);
 * those the spec lets go after a long outage carry their time.
 */

mxw_result_t
fs_edu(mxw_t *w, const mxw_entry_t *e, void *data, char *why,
    size_t why_len)
{
    const char    *room, *dest, *edu, *keep;
    char          *item;
    size_t         elen, len;
    int            n;
    mxw_result_t   rc;

    (void) w;
    (void) data;

    room = mxw_entry_get(e, "room", NULL);
    dest = mxw_entry_get(e, "dest", NULL);
    edu = mxw_entry_get(e, "edu", &elen);
    keep = mxw_entry_get(e, "keep", NULL);

    if (edu == NULL || elen == 0 || (room == NULL && dest == NULL)) {
        snprintf(why, why_len, "an EDU entry needs edu, and room or dest");
        return MXW_REJECT;
    }

    if (dest && !mx_server_name_valid(dest, strlen(dest))) {
        snprintf(why, why_len, "dest is not a server name");
        return MXW_REJECT;
    }

    len = elen + 32;
    item = malloc(len);
    if (item == NULL) {
        return MXW_RETRY;
    }

    n = snprintf(item, len, "%c %lld ", keep && strcmp(keep, "1") == 0
                 ? 'k' : 'e', (long long) mxw_now_ms());
    memcpy(item + n, edu, elen);

    rc = fs_queue(e, item, n + elen, room, dest);
    free(item);

    return rc;
}


/* --- transactions --------------------------------------------------------- */

static void fs_txn_done(mxw_fed_t *fed, mxw_fed_req_t *rq);


/* the items of a transaction a destination answered leave its queue */

static int
fs_txn_finish(fs_dest_t *d, const char *txn_id)
{
    redisReply  *r;

    r = mxw_command(fs_w, "FCALL mx_fedq_done 1 mx:fedq:{%s} %s %s",
                    d->name, d->name, txn_id);
    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_INTEGER) {
        mxw_error(fs_w, "mx_fedq_done: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }

    d->ready = r->integer > 0;
    freeReplyObject(r);

    d->delay = 0;
    d->retry_at = 0;

    return 0;
}


/* not again before a while: the delay doubles, within +-20 % */

static void
fs_txn_backoff(fs_dest_t *d, const char *txn_id, const char *what)
{
    redisReply  *r;
    int64_t      now, wait;

    d->delay = d->delay ? d->delay * 2 : FS_DELAY_MIN;
    if (d->delay > FS_DELAY_MAX) {
        d->delay = FS_DELAY_MAX;
    }

    wait = d->delay - d->delay / 5 + random() % (2 * d->delay / 5 + 1);
    now = mxw_now_ms();

    r = mxw_command(fs_w, "FCALL mx_fedq_retry 1 mx:fedq:{%s} %lld %lld",
                    d->name, (long long) now, (long long) wait);
    if (r) {
        freeReplyObject(r);
    }

    d->retry_at = now + wait;

    mxw_warn(fs_w, "transaction %s to %s: %s; again in %lld ms", txn_id,
             d->name, what, (long long) wait);
}


static void
fs_txn_start(fs_dest_t *d, int64_t now)
{
    redisReply  *r;
    char        *path, key[MX_HOST_MAX + 16], now_s[24], cut_s[24];
    const char  *argv[7];
    size_t       lens[7], i;

    snprintf(key, sizeof(key), "mx:fedq:{%s}", d->name);
    snprintf(now_s, sizeof(now_s), "%lld", (long long) now);
    snprintf(cut_s, sizeof(cut_s), "%lld", (long long) (now - FS_EDU_MAX_AGE));

    argv[0] = "FCALL";
    argv[1] = "mx_fedq_txn";
    argv[2] = "1";
    argv[3] = key;
    argv[4] = fs_w->cf.server_name;
    argv[5] = now_s;
    argv[6] = cut_s;

    for (i = 0; i < 7; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = mxw_commandv(fs_w, 7, argv, lens);
    if (r == NULL) {
        return;                     /* Redis: the next tick tries again */
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        mxw_error(fs_w, "mx_fedq_txn: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return;
    }

    if (r->elements < 2) {
        d->ready = 0;               /* nothing queued */
        freeReplyObject(r);
        return;
    }

    path = malloc(sizeof(FS_SEND_PATH) + r->element[0]->len);
    if (path == NULL) {
        freeReplyObject(r);
        return;
    }

    memcpy(path, FS_SEND_PATH, sizeof(FS_SEND_PATH) - 1);
    memcpy(path + sizeof(FS_SEND_PATH) - 1, r->element[0]->str,
           r->element[0]->len + 1);

    if (mxw_fed_request(fs_fed, d->name, "PUT", path, r->element[1]->str,
                        r->element[1]->len, MXW_FED_SIGN, fs_txn_done, d)
        == 0)
    {
        d->busy = 1;
    }

    free(path);
    freeReplyObject(r);
}


static void
fs_txn_done(mxw_fed_t *fed, mxw_fed_req_t *rq)
{
    fs_dest_t   *d;
    const char  *txn_id;
    char         what[512];

    (void) fed;

    d = rq->data;
    d->busy = 0;

    if (fs_w->stop) {
        return;                     /* in flight at the end: kept, and sent
                                       again after the start */
    }

    txn_id = rq->path + sizeof(FS_SEND_PATH) - 1;

    if (rq->status == 200) {
        mxw_info(fs_w, "transaction %s to %s: 200", txn_id, d->name);

        if (fs_txn_finish(d, txn_id) != 0) {
            d->ready = 1;           /* the same again: the destination
                                       knows it by its ID */
        }
        return;
    }

    /* no answer, or one that says to come back: the same transaction,
     * later (the retry limiter of Synapse backs off on these too) */
    if (rq->status == 0) {
        fs_txn_backoff(d, txn_id, rq->error);
        return;
    }

    if (rq->status >= 500 || rq->status == 401 || rq->status == 408
        || rq->status == 429)
    {
        snprintf(what, sizeof(what), "HTTP %ld", rq->status);
        fs_txn_backoff(d, txn_id, what);
        return;
    }

    /* the destination refused the transaction itself: sending it again
     * would get the same answer (Synapse logs and moves on too) */
    mxw_warn(fs_w, "transaction %s to %s refused: HTTP %ld %.200s; dropped",
             txn_id, d->name, rq->status, rq->resp ? rq->resp : "");

    if (fs_txn_finish(d, txn_id) != 0) {
        d->ready = 1;
    }
}


int
fs_txn_tick(void)
{
    fs_dest_t  *d;
    int64_t     now, wait;

    if (!fs_loaded && fs_txn_init() != 0) {
        return 1000;
    }

    now = mxw_now_ms();
    wait = -1;

    for (d = fs_dests; d; d = d->next) {
        if (d->busy || !d->ready) {
            continue;
        }

        if (d->retry_at > now) {
            if (wait < 0 || d->retry_at - now < wait) {
                wait = d->retry_at - now;
            }
            continue;
        }

        fs_txn_start(d, now);
    }

    return wait > 1000 ? 1000 : (int) wait;
}

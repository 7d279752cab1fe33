/*
 * mxw_consumer: the Redis Streams consumer-group loop of every daemon.
 *
 *        start / reconnect / after a RETRY
 *                     │
 *                     ▼
 *   ┌──► own pending entries (XREADGROUP ... 0), oldest first ──┐
 *   │                                                            │ none left
 *   │    ┌───────────────────────────────────────────────────────┘
 *   │    ▼
 *   │   new entries (XREADGROUP ... BLOCK ... >)  ◄──┐
 *   │    │  every claim_every_ms: XAUTOCLAIM entries │
 *   │    │  idle for claim_idle_ms (a dead consumer) │
 *   │    └───────────────────────────────────────────┘
 *   └── RETRY or connection lost
 *
 * Each entry goes to the handler; DONE is acknowledged (one XACK for the
 * batch read) after the handler returns, that is after its effects are in
 * Redis; REJECT, and an
 * entry already delivered more than max_deliveries times (one that crashes
 * its consumer, say), go to the dead-letter stream mx:dead with the reason,
 * atomically with their XACK.  Delivery is at least once: handlers are
 * idempotent.
 */

#include <stdlib.h>
#include <string.h>

#include "mxw.h"


typedef struct {
    mxw_t            *w;
    mxw_consumer_t   *cs;
    char            **cursors;      /* per stream, for the pending phase */

    /* entries handled, acknowledged together once the batch is through */
    const char      **ack_stream;
    char            **ack_id;
    size_t            nacks;
    size_t            ack_cap;
} mxw_loop_t;


const char *
mxw_entry_get(const mxw_entry_t *e, const char *name, size_t *len)
{
    size_t  n;
    int     i;

    n = strlen(name);

    for (i = 0; i < e->nfields; i++) {
        if (e->name_lens[i] == n && memcmp(e->names[i], name, n) == 0) {
            if (len) {
                *len = e->value_lens[i];
            }
            return e->values[i];
        }
    }

    return NULL;
}


static int
mxw_ensure_groups(mxw_t *w, mxw_consumer_t *cs)
{
    redisReply  *r;
    int          i;

    for (i = 0; i < cs->nstreams; i++) {
        r = mxw_command(w, "XGROUP CREATE %s %s 0 MKSTREAM", cs->streams[i],
                        cs->group);
        if (r == NULL) {
            return -1;
        }

        if (r->type == REDIS_REPLY_ERROR
            && strncmp(r->str, "BUSYGROUP", 9) != 0)
        {
            mxw_error(w, "XGROUP CREATE %s %s: %s", cs->streams[i],
                      cs->group, r->str);
            freeReplyObject(r);
            return -1;
        }

        freeReplyObject(r);
    }

    return 0;
}


/* how many times an entry has been delivered (XPENDING), -1 on error */

static long long
mxw_deliveries(mxw_t *w, mxw_consumer_t *cs, const char *stream,
    const char *id)
{
    redisReply  *r;
    long long    n;

    r = mxw_command(w, "XPENDING %s %s %s %s 1", stream, cs->group, id, id);
    if (r == NULL) {
        return -1;
    }

    n = 1;

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
        && r->element[0]->type == REDIS_REPLY_ARRAY
        && r->element[0]->elements == 4
        && r->element[0]->element[3]->type == REDIS_REPLY_INTEGER)
    {
        n = r->element[0]->element[3]->integer;
    }

    freeReplyObject(r);
    return n;
}


/*
 * An entry is done: its XACK waits for the end of the batch, one XACK per
 * stream for all of them (a crash before it redelivers them, which the
 * handlers allow).
 */
static int
mxw_ack(mxw_loop_t *lp, const char *stream, const char *id)
{
    void   *p;
    size_t  cap;

    if (lp->nacks == lp->ack_cap) {
        cap = lp->ack_cap ? lp->ack_cap * 2 : 64;

        p = realloc(lp->ack_stream, cap * sizeof(char *));
        if (p == NULL) {
            return -1;
        }
        lp->ack_stream = p;

        p = realloc(lp->ack_id, cap * sizeof(char *));
        if (p == NULL) {
            return -1;
        }
        lp->ack_id = p;

        lp->ack_cap = cap;
    }

    lp->ack_id[lp->nacks] = strdup(id);
    if (lp->ack_id[lp->nacks] == NULL) {
        return -1;
    }

    lp->ack_stream[lp->nacks++] = stream;

    return 0;
}


static int
mxw_ack_flush(mxw_loop_t *lp)
{
    const char   **argv;
    size_t        *lens, i, k;
    int            argc, rc;
    const char    *stream;

    /*
     * The commands the handlers pipelined first: when one failed, nothing
     * of the batch is acknowledged, and it is delivered again.
     */
    if (mxw_drain(lp->w) != 0) {
        for (i = 0; i < lp->nacks; i++) {
            free(lp->ack_id[i]);
        }
        lp->nacks = 0;

        mxw_warn(lp->w, "a pipelined command failed: the batch comes again");

        if (lp->cs->failed) {
            lp->cs->failed(lp->w, lp->cs->data);
        }

        return -1;
    }

    if (lp->nacks == 0) {
        return 0;
    }

    rc = 0;
    argv = malloc((lp->nacks + 3) * sizeof(char *));
    lens = malloc((lp->nacks + 3) * sizeof(size_t));

    for (i = 0; argv && lens && i < lp->nacks; i++) {
        stream = lp->ack_stream[i];
        if (stream == NULL) {
            continue;           /* in an XACK already */
        }

        argc = 0;
        argv[argc++] = "XACK";
        argv[argc++] = stream;
        argv[argc++] = lp->cs->group;

        for (k = i; k < lp->nacks; k++) {
            if (lp->ack_stream[k] == stream) {
                argv[argc++] = lp->ack_id[k];
                lp->ack_stream[k] = NULL;
            }
        }

        for (k = 0; k < (size_t) argc; k++) {
            lens[k] = strlen(argv[k]);
        }

        /* it leaves with the next read */
        if (mxw_append(lp->w, NULL, argc, argv, lens) != 0) {
            rc = -1;
            break;
        }
    }

    if (argv == NULL || lens == NULL) {
        rc = -1;
    }

    for (i = 0; i < lp->nacks; i++) {
        free(lp->ack_id[i]);
    }
    lp->nacks = 0;

    free(argv);
    free(lens);

    return rc;
}


/* XADD to mx:dead and XACK, in one transaction */

#define MXW_DEAD_ARGS  16     /* XADD mx:dead MAXLEN ~ N * and 5 pairs */

static int
mxw_dead_letter(mxw_t *w, mxw_consumer_t *cs, const mxw_entry_t *e,
    const char *why)
{
    const char  **argv;
    size_t       *lens;
    char          deliveries[32], *names;
    redisReply   *r;
    int           argc, i, ok;
    size_t        off;

    mxw_warn(w, "dead-lettering %s %s: %s", e->stream, e->id, why);

    argc = MXW_DEAD_ARGS + 2 * e->nfields;
    argv = malloc(argc * sizeof(char *));
    lens = malloc(argc * sizeof(size_t));
    names = NULL;

    off = 0;
    for (i = 0; i < e->nfields; i++) {
        off += e->name_lens[i] + 5;
    }
    names = malloc(off + 1);

    if (argv == NULL || lens == NULL || names == NULL) {
        free(argv);
        free(lens);
        free(names);
        return -1;
    }

    snprintf(deliveries, sizeof(deliveries), "%lld", e->deliveries);

    argc = 0;
#define MXW_ARG(s, n)  (argv[argc] = (s), lens[argc++] = (n))
    MXW_ARG("XADD", 4);
    MXW_ARG(MXW_DEAD_STREAM, sizeof(MXW_DEAD_STREAM) - 1);
    MXW_ARG("MAXLEN", 6);
    MXW_ARG("~", 1);
    MXW_ARG("100000", 6);
    MXW_ARG("*", 1);
    MXW_ARG("stream", 6);
    MXW_ARG(e->stream, strlen(e->stream));
    MXW_ARG("group", 5);
    MXW_ARG(cs->group, strlen(cs->group));
    MXW_ARG("entry", 5);
    MXW_ARG(e->id, strlen(e->id));
    MXW_ARG("deliveries", 10);
    MXW_ARG(deliveries, strlen(deliveries));
    MXW_ARG("reason", 6);
    MXW_ARG(why, strlen(why));

    /* the entry's own fields, as "f:<name>" */
    off = 0;
    for (i = 0; i < e->nfields; i++) {
        memcpy(names + off, "f:", 2);
        memcpy(names + off + 2, e->names[i], e->name_lens[i]);
        MXW_ARG(names + off, e->name_lens[i] + 2);
        MXW_ARG(e->values[i], e->value_lens[i]);
        off += e->name_lens[i] + 2;
    }
#undef MXW_ARG

    ok = 0;

    r = mxw_command(w, "MULTI");
    if (r) {
        freeReplyObject(r);
        r = mxw_commandv(w, argc, argv, lens);
    }
    if (r) {
        freeReplyObject(r);
        r = mxw_command(w, "XACK %s %s %s", e->stream, cs->group, e->id);
    }
    if (r) {
        freeReplyObject(r);
        r = mxw_command(w, "EXEC");
    }
    if (r) {
        ok = r->type == REDIS_REPLY_ARRAY;
        freeReplyObject(r);
    }

    free(argv);
    free(lens);
    free(names);

    return ok ? 0 : -1;
}


/* stream IDs "<ms>-<seq>": negative, zero or positive, as strcmp */
static int
mxw_id_cmp(const char *a, const char *b)
{
    unsigned long long  am, as, bm, bs;

    am = as = bm = bs = 0;
    sscanf(a, "%llu-%llu", &am, &as);
    sscanf(b, "%llu-%llu", &bm, &bs);

    if (am != bm) {
        return am < bm ? -1 : 1;
    }

    return as < bs ? -1 : (as > bs ? 1 : 0);
}


/*
 * Entries every group of a stream has been given and acknowledged are
 * needed by nobody: trim them (XTRIM MINID ~), keeping the oldest entry
 * some group still has pending or has not been given.  A group that is
 * behind (a daemon down) holds the stream back: nothing is lost.
 */
static void
mxw_trim(mxw_loop_t *lp)
{
    redisReply  *groups, *g, *pend;
    char         min[64], cand[64];
    const char  *name, *last;
    long long    pending;
    size_t       i, k;
    int          s, have;

    for (s = 0; s < lp->cs->nstreams; s++) {
        strcpy(min, "0-0");

        groups = mxw_command(lp->w, "XINFO GROUPS %s", lp->cs->streams[s]);
        if (groups == NULL) {
            return;
        }

        have = 0;

        for (i = 0; groups->type == REDIS_REPLY_ARRAY
                    && i < groups->elements; i++)
        {
            g = groups->element[i];
            name = last = NULL;
            pending = 0;

            for (k = 0; g->type == REDIS_REPLY_ARRAY && k + 1 < g->elements;
                 k += 2)
            {
                if (strcmp(g->element[k]->str, "name") == 0) {
                    name = g->element[k + 1]->str;
                } else if (strcmp(g->element[k]->str, "pending") == 0) {
                    pending = g->element[k + 1]->integer;
                } else if (strcmp(g->element[k]->str, "last-delivered-id")
                           == 0)
                {
                    last = g->element[k + 1]->str;
                }
            }

            if (name == NULL || last == NULL) {
                have = -1;
                break;
            }

            /* the oldest entry this group still needs */
            snprintf(cand, sizeof(cand), "%s", last);

            if (pending > 0) {
                pend = mxw_command(lp->w, "XPENDING %s %s",
                                   lp->cs->streams[s], name);
                if (pend == NULL) {
                    freeReplyObject(groups);
                    return;
                }

                if (pend->type == REDIS_REPLY_ARRAY && pend->elements == 4
                    && pend->element[1]->type == REDIS_REPLY_STRING)
                {
                    snprintf(cand, sizeof(cand), "%s", pend->element[1]->str);
                } else {
                    have = -1;
                }

                freeReplyObject(pend);
            }

            if (have == 0 || mxw_id_cmp(cand, min) < 0) {
                snprintf(min, sizeof(min), "%s", cand);
            }

            if (have >= 0) {
                have = 1;
            }
        }

        freeReplyObject(groups);

        if (have == 1 && strcmp(min, "0-0") != 0) {
            g = mxw_command(lp->w, "XTRIM %s MINID ~ %s", lp->cs->streams[s],
                            min);
            if (g == NULL) {
                return;
            }
            freeReplyObject(g);
        }
    }
}


/*
 * One entry: [id, [name, value, ...]] or, for an entry trimmed away while
 * pending, [id, nil].  Returns MXW_DONE, or MXW_RETRY to go back to the
 * pending phase.
 */

static mxw_result_t
mxw_process(mxw_loop_t *lp, const char *stream, redisReply *item,
    int history)
{
    mxw_t          *w;
    mxw_consumer_t *cs;
    mxw_entry_t     e;
    redisReply     *fields;
    mxw_result_t    rc;
    char            why[512];
    size_t          i, n;

    w = lp->w;
    cs = lp->cs;

    if (item->type != REDIS_REPLY_ARRAY || item->elements != 2
        || item->element[0]->type != REDIS_REPLY_STRING)
    {
        return MXW_DONE;
    }

    memset(&e, 0, sizeof(e));
    e.stream = stream;
    e.id = item->element[0]->str;
    e.deliveries = 1;

    fields = item->element[1];

    if (fields->type != REDIS_REPLY_ARRAY) {
        /* deleted from the stream while pending: nothing left to do */
        return mxw_ack(lp, stream, e.id) == 0 ? MXW_DONE : MXW_RETRY;
    }

    n = fields->elements / 2;
    e.nfields = (int) n;
    e.names = malloc((n + 1) * sizeof(char *));
    e.values = malloc((n + 1) * sizeof(char *));
    e.name_lens = malloc((n + 1) * sizeof(size_t));
    e.value_lens = malloc((n + 1) * sizeof(size_t));

    if (e.names == NULL || e.values == NULL || e.name_lens == NULL
        || e.value_lens == NULL)
    {
        rc = MXW_RETRY;
        goto done;
    }

    for (i = 0; i < n; i++) {
        e.names[i] = fields->element[2 * i]->str;
        e.name_lens[i] = fields->element[2 * i]->len;
        e.values[i] = fields->element[2 * i + 1]->str;
        e.value_lens[i] = fields->element[2 * i + 1]->len;
    }

    if (history) {
        e.deliveries = mxw_deliveries(w, cs, stream, e.id);
        if (e.deliveries < 0) {
            rc = MXW_RETRY;
            goto done;
        }

        /* one that keeps failing, or crashing its consumer, goes no further */
        if (e.deliveries > cs->max_deliveries) {
            snprintf(why, sizeof(why), "delivered %lld times without"
                     " success", e.deliveries);
            rc = mxw_dead_letter(w, cs, &e, why) == 0 ? MXW_DONE : MXW_RETRY;
            goto done;
        }
    }

    why[0] = '\0';
    rc = cs->handler(w, &e, cs->data, why, sizeof(why));

    switch (rc) {

    case MXW_DONE:
        rc = mxw_ack(lp, stream, e.id) == 0 ? MXW_DONE : MXW_RETRY;
        break;

    case MXW_LATER:
        rc = MXW_DONE;          /* the daemon acknowledges it itself */
        break;

    case MXW_REJECT:
        rc = mxw_dead_letter(w, cs, &e, why[0] ? why : "rejected") == 0
             ? MXW_DONE : MXW_RETRY;
        break;

    default:
        if (why[0]) {
            mxw_warn(w, "%s %s: will retry: %s", stream, e.id, why);
        }
        rc = MXW_RETRY;
        break;
    }

done:

    free(e.names);
    free(e.values);
    free(e.name_lens);
    free(e.value_lens);

    return rc;
}


int
mxw_xack(mxw_t *w, const char *stream, const char *group, const char *id)
{
    redisReply  *r;
    int          rc;

    r = mxw_command(w, "XACK %s %s %s", stream, group, id);
    if (r == NULL) {
        return -1;
    }

    rc = r->type == REDIS_REPLY_INTEGER ? 0 : -1;
    freeReplyObject(r);

    return rc;
}


/* process an XREADGROUP reply; *count receives the number of entries */

static mxw_result_t
mxw_process_read(mxw_loop_t *lp, redisReply *r, int history, size_t *count)
{
    redisReply    *s, *entries;
    size_t         i, j;
    int            k;
    mxw_result_t   rc;

    *count = 0;

    if (r->type != REDIS_REPLY_ARRAY) {
        return MXW_DONE;        /* nil: nothing arrived in time */
    }

    for (i = 0; i < r->elements && !lp->w->stop; i++) {
        s = r->element[i];

        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2) {
            continue;
        }

        for (k = 0; k < lp->cs->nstreams; k++) {
            if (strcmp(lp->cs->streams[k], s->element[0]->str) == 0) {
                break;
            }
        }

        if (k == lp->cs->nstreams) {
            continue;
        }

        entries = s->element[1];

        for (j = 0; j < entries->elements && !lp->w->stop; j++) {
            rc = mxw_process(lp, lp->cs->streams[k], entries->element[j],
                             history);
            if (rc != MXW_DONE) {
                return rc;
            }

            (*count)++;

            if (history && entries->element[j]->type == REDIS_REPLY_ARRAY) {
                free(lp->cursors[k]);
                lp->cursors[k] = strdup(entries->element[j]->element[0]->str);
                if (lp->cursors[k] == NULL) {
                    return MXW_RETRY;
                }
            }
        }
    }

    return MXW_DONE;
}


static redisReply *
mxw_read(mxw_loop_t *lp, int history, int block_ms)
{
    mxw_consumer_t  *cs;
    const char     **argv;
    size_t          *lens;
    redisReply      *r;
    char             count[16], block[16];
    int              argc, i;

    cs = lp->cs;

    argv = malloc((10 + 2 * cs->nstreams) * sizeof(char *));
    lens = malloc((10 + 2 * cs->nstreams) * sizeof(size_t));
    if (argv == NULL || lens == NULL) {
        free(argv);
        free(lens);
        return NULL;
    }

    snprintf(count, sizeof(count), "%d", cs->batch);
    snprintf(block, sizeof(block), "%d", block_ms);

    argc = 0;
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = cs->group;
    argv[argc++] = cs->consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = count;

    if (!history && block_ms > 0) {
        argv[argc++] = "BLOCK";
        argv[argc++] = block;
    }

    argv[argc++] = "STREAMS";

    for (i = 0; i < cs->nstreams; i++) {
        argv[argc++] = cs->streams[i];
    }

    for (i = 0; i < cs->nstreams; i++) {
        argv[argc++] = history ? lp->cursors[i] : ">";
    }

    for (i = 0; i < argc; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = mxw_commandv(lp->w, argc, argv, lens);

    free(argv);
    free(lens);

    if (r && r->type == REDIS_REPLY_ERROR) {
        mxw_error(lp->w, "XREADGROUP: %s", r->str);

        /* the group or stream vanished (FLUSHALL, say): recreate them */
        if (strncmp(r->str, "NOGROUP", 7) == 0) {
            mxw_ensure_groups(lp->w, cs);
        }

        freeReplyObject(r);
        return NULL;
    }

    return r;
}


/* take over entries a dead consumer left idle */

static mxw_result_t
mxw_claim(mxw_loop_t *lp)
{
    mxw_consumer_t  *cs;
    redisReply      *r, *entries;
    char             idle[16], count[16], start[64];
    size_t           j;
    int              i, rounds;
    mxw_result_t     rc;

    cs = lp->cs;
    snprintf(idle, sizeof(idle), "%d", cs->claim_idle_ms);
    snprintf(count, sizeof(count), "%d", cs->batch);

    for (i = 0; i < cs->nstreams; i++) {
        snprintf(start, sizeof(start), "0-0");

        for (rounds = 0; rounds < 16 && !lp->w->stop; rounds++) {
            r = mxw_command(lp->w, "XAUTOCLAIM %s %s %s %s %s COUNT %s",
                            cs->streams[i], cs->group, cs->consumer, idle,
                            start, count);
            if (r == NULL) {
                return MXW_RETRY;
            }

            if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
                freeReplyObject(r);
                break;
            }

            entries = r->element[1];

            if (entries->elements) {
                mxw_info(lp->w, "claimed %zu entries of %s left idle by"
                         " another consumer", entries->elements,
                         cs->streams[i]);
            }

            for (j = 0; j < entries->elements; j++) {
                rc = mxw_process(lp, cs->streams[i], entries->element[j], 1);
                if (rc != MXW_DONE) {
                    freeReplyObject(r);
                    return rc;
                }
            }

            snprintf(start, sizeof(start), "%s", r->element[0]->str);
            freeReplyObject(r);

            if (strcmp(start, "0-0") == 0) {
                break;
            }
        }
    }

    return MXW_DONE;
}


int
mxw_consume(mxw_t *w, mxw_consumer_t *cs)
{
    mxw_loop_t     lp;
    redisReply    *r;
    mxw_result_t   rc;
    size_t         count;
    int            i, history, backoff, block;
    int64_t        last_claim, last_trim;

    if (cs->batch <= 0) {
        cs->batch = 64;
    }
    if (cs->block_ms <= 0) {
        cs->block_ms = 1000;
    }
    if (cs->max_deliveries <= 0) {
        cs->max_deliveries = 5;
    }
    if (cs->claim_idle_ms <= 0) {
        cs->claim_idle_ms = 30000;
    }
    if (cs->claim_every_ms <= 0) {
        cs->claim_every_ms = 5000;
    }

    memset(&lp, 0, sizeof(lp));
    lp.w = w;
    lp.cs = cs;
    lp.cursors = calloc(cs->nstreams, sizeof(char *));
    if (lp.cursors == NULL) {
        return -1;
    }

    history = 1;
    backoff = 100;
    last_claim = 0;
    last_trim = 0;

    while (!w->stop) {

        if (w->redis == NULL) {
            if (mxw_connect(w) != 0) {
                break;
            }
            history = 1;
        }

        if (history) {
            if (mxw_ensure_groups(w, cs) != 0) {
                mxw_sleep_ms(w, backoff);
                continue;
            }

            for (i = 0; i < cs->nstreams; i++) {
                free(lp.cursors[i]);
                lp.cursors[i] = strdup("0");
            }
        }

        /* reads may block for block_ms: allow for it in the socket timeout */
        if (!history && w->redis) {
            struct timeval  tv;
            int             ms = cs->block_ms + w->cf.redis_timeout_ms;

            tv.tv_sec = ms / 1000;
            tv.tv_usec = (ms % 1000) * 1000;
            redisSetTimeout(w->redis, tv);
        }

        block = cs->block_ms;

        if (!history && cs->tick) {
            block = cs->tick(w, cs->data);
            block = block < 0 ? cs->block_ms : block;
        }

        r = mxw_read(&lp, history, block);

        if (r == NULL) {
            mxw_sleep_ms(w, backoff);
            backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
            history = 1;
            continue;
        }

        if (cs->begin && r->type == REDIS_REPLY_ARRAY && r->elements
            && cs->begin(w, cs->data) != 0)
        {
            rc = MXW_RETRY;
            count = 0;
        } else {
            rc = mxw_process_read(&lp, r, history, &count);
        }
        freeReplyObject(r);

        if (mxw_ack_flush(&lp) != 0) {
            rc = MXW_RETRY;
        }

        if (rc != MXW_DONE) {
            mxw_sleep_ms(w, backoff);
            backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
            history = 1;
            continue;
        }

        backoff = 100;

        /*
         * A consumer that may lag a little reads less often and more at a
         * time: each read and acknowledgement costs Redis as much as the
         * entries it carries.
         */
        if (!history && cs->gather_ms > 0 && count > 0
            && count < (size_t) cs->batch)
        {
            mxw_sleep_ms(w, cs->gather_ms);
        }

        if (history && count == 0) {
            history = 0;        /* own backlog done: on to new entries */
        }

        if (!history && mxw_now_ms() - last_claim >= cs->claim_every_ms) {
            last_claim = mxw_now_ms();

            if (mxw_claim(&lp) != MXW_DONE) {
                history = 1;
            }

            if (mxw_ack_flush(&lp) != 0) {
                history = 1;
            }
        }

        if (!history && mxw_now_ms() - last_trim >= 1000) {
            last_trim = mxw_now_ms();
            mxw_trim(&lp);
        }
    }

    (void) mxw_ack_flush(&lp);
    (void) mxw_drain(w);            /* the last XACK goes out */

    for (i = 0; i < cs->nstreams; i++) {
        free(lp.cursors[i]);
    }
    free(lp.cursors);
    free(lp.ack_stream);
    free(lp.ack_id);

    return 0;
}


int
mxw_run(mxw_t *w, mxw_consumer_t *cs)
{
    if (mxw_connect(w) != 0) {
        mxw_fini(w);
        return w->stop ? 0 : 1;
    }

    mxw_consume(w, cs);
    mxw_info(w, "stopped");
    mxw_fini(w);

    return 0;
}

/*
 * fedsender: outbound federation.
 *
 * One consumer loop (mxw_consume, group "fedsender") reads three streams:
 *
 *   mx:output   accepted events: those built here are queued for the other
 *               servers of their rooms and go as transactions
 *               (fedsender_txn.c)
 *   mx:edus     EDUs of local users (typing, to-device...), the same way
 *   mx:fedjobs  jobs of the module (docs/redis.md, notes of issue 8):
 *               "keys" and "keys_many" (servers' signing keys into the
 *               key cache, fedsender_keys.c) and "request" (a signed
 *               request on the module's behalf); the roomserver's
 *               "backfill" (fedsender_backfill.c)
 *
 * The HTTP transfers run on mxw_fed's curl multi handle, side by side.  A
 * job's handler only starts its transfer and answers MXW_LATER: the entry
 * stays pending, and is acknowledged once its answer is published, so a
 * job that a crash interrupts is done again after the restart.  Between
 * its Redis reads the loop calls fs_tick(): with transfers in flight it
 * waits up to FS_POLL_MS on their sockets, moves them on, and has the next
 * read not block; with none, the read blocks as usual.  A job arriving
 * while transfers run thus waits FS_POLL_MS at most, and the transfers
 * never wait for Redis.
 *
 * Every job is answered: PUBLISH <reply> "<req> <json>", with an error
 * object when no answer could be had.
 */

#include <stdlib.h>
#include <string.h>

#include <mx_json.h>
#include <mx_pool.h>

#include "fedsender.h"


#define FS_JOBS          "mx:fedjobs"
#define FS_GROUP         "fedsender"
#define FS_POLL_MS       20


mxw_t             *fs_w;
mxw_fed_t         *fs_fed;
static fs_job_t   *fs_jobs;


/* --- jobs: answers ------------------------------------------------------- */

static void
fs_job_free(fs_job_t *job)
{
    if (job->keys) {
        fs_keys_drop(job);
    }

    free(job->id);
    free(job->reply);
    free(job->req);
    free(job->server);
    free(job);
}


void
fs_job_forget(fs_job_t *job)
{
    fs_job_t  **pj;

    for (pj = &fs_jobs; *pj; pj = &(*pj)->next) {
        if (*pj == job) {
            *pj = job->next;
            break;
        }
    }

    fs_job_free(job);
}


/*
 * Publish "<req> <json>" to the job's reply channel, acknowledge the
 * entry, forget the job.  When Redis fails on the way, the entry stays
 * pending and comes again.
 */

void
fs_answer(fs_job_t *job, const mx_json_t *answer)
{
    mx_pool_t   *pool;
    redisReply  *r;
    const char  *argv[3];
    size_t       lens[3], jlen, rlen;
    char        *json, *msg;

    pool = mx_pool_create(4096);
    json = pool ? mx_json_encode(pool, answer, 0, &jlen) : NULL;

    if (json == NULL) {
        mxw_error(fs_w, "%s %s: cannot write the answer", FS_JOBS, job->id);
        goto done;
    }

    rlen = strlen(job->req);
    msg = mx_palloc(pool, rlen + 1 + jlen);
    if (msg == NULL) {
        goto done;
    }

    memcpy(msg, job->req, rlen);
    msg[rlen] = ' ';
    memcpy(msg + rlen + 1, json, jlen);

    argv[0] = "PUBLISH";
    argv[1] = job->reply;
    argv[2] = msg;
    lens[0] = 7;
    lens[1] = strlen(job->reply);
    lens[2] = rlen + 1 + jlen;

    r = mxw_commandv(fs_w, 3, argv, lens);
    if (r == NULL) {
        goto done;
    }

    freeReplyObject(r);

    (void) mxw_xack(fs_w, FS_JOBS, FS_GROUP, job->id);

done:

    if (pool) {
        mx_pool_destroy(pool);
    }

    fs_job_forget(job);
}


void
fs_answer_error(fs_job_t *job, const char *errcode, const char *error)
{
    mx_pool_t  *pool;
    mx_json_t  *o;

    pool = mx_pool_create(1024);
    o = pool ? mx_json_object(pool) : NULL;

    if (o == NULL || mx_json_set_str(pool, o, "errcode", errcode) != 0
        || mx_json_set_str(pool, o, "error", error) != 0)
    {
        if (pool) {
            mx_pool_destroy(pool);
        }
        fs_job_forget(job);         /* comes again */
        return;
    }

    mxw_info(fs_w, "%s %s: %s", FS_JOBS, job->id, error);

    fs_answer(job, o);
    mx_pool_destroy(pool);
}


void
fs_answer_ok(fs_job_t *job)
{
    mx_pool_t  *pool;
    mx_json_t  *o;

    pool = mx_pool_create(256);
    o = pool ? mx_json_object(pool) : NULL;

    if (o == NULL || mx_json_set(pool, o, "ok", mx_json_bool(pool, 1)) != 0) {
        if (pool) {
            mx_pool_destroy(pool);
        }
        fs_job_forget(job);
        return;
    }

    fs_answer(job, o);
    mx_pool_destroy(pool);
}


/* the request ended while stopping: the entry stays pending */

static int
fs_stopping(fs_job_t *job)
{
    if (fs_w->stop) {
        fs_job_forget(job);
        return 1;
    }

    return 0;
}


/* --- kind "request" ------------------------------------------------------ */

static void
fs_request_done(mxw_fed_t *fed, mxw_fed_req_t *rq)
{
    fs_job_t         *job;
    mx_pool_t        *pool;
    mx_json_t        *o, *body;
    mx_json_error_t   err;
    char              what[512];

    (void) fed;

    job = rq->data;

    if (fs_stopping(job)) {
        return;
    }

    if (rq->status == 0) {
        snprintf(what, sizeof(what), "%s %s %s: %s", rq->method,
                 job->server, rq->path, rq->error);
        fs_answer_error(job, "M_UNKNOWN", what);
        return;
    }

    pool = mx_pool_create(16384);
    if (pool == NULL) {
        fs_job_forget(job);
        return;
    }

    body = rq->resp ? mx_json_parse(pool, rq->resp, rq->resp_len, &err)
                    : NULL;

    o = mx_json_object(pool);

    if (o == NULL
        || mx_json_set_int(pool, o, "status", rq->status) != 0
        || mx_json_set(pool, o, "body", body ? body : mx_json_null(pool))
           != 0)
    {
        mx_pool_destroy(pool);
        fs_job_forget(job);
        return;
    }

    mxw_info(fs_w, "%s %s: %s %s %s: %ld", FS_JOBS, job->id, rq->method,
             job->server, rq->path, rq->status);

    fs_answer(job, o);
    mx_pool_destroy(pool);
}


static mxw_result_t
fs_request(fs_job_t *job, const mxw_entry_t *e)
{
    const char  *dest, *method, *path, *body;
    size_t       blen;

    dest = mxw_entry_get(e, "destination", NULL);
    method = mxw_entry_get(e, "method", NULL);
    path = mxw_entry_get(e, "path", NULL);
    body = mxw_entry_get(e, "body", &blen);

    if (dest == NULL || method == NULL || path == NULL) {
        fs_answer_error(job, "M_INVALID_PARAM", "a request job needs"
                        " destination, method and path");
        return MXW_LATER;
    }

    if (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0
        && strcmp(method, "POST") != 0 && strcmp(method, "DELETE") != 0)
    {
        fs_answer_error(job, "M_INVALID_PARAM", "method: GET, PUT, POST or"
                        " DELETE");
        return MXW_LATER;
    }

    job->server = strdup(dest);
    if (job->server == NULL) {
        fs_job_forget(job);
        return MXW_RETRY;
    }

    if (mxw_fed_request(fs_fed, dest, method, path, body && blen ? body : NULL,
                        body ? blen : 0, MXW_FED_SIGN, fs_request_done, job)
        != 0)
    {
        fs_job_forget(job);
        return MXW_RETRY;
    }

    return MXW_LATER;
}


/* --- the job stream ------------------------------------------------------ */

static mxw_result_t
fs_job(mxw_t *w, const mxw_entry_t *e, char *why, size_t why_len)
{
    fs_job_t    *job;
    const char  *kind, *reply, *req;

    /* an entry in hand, delivered again (a read of own pending entries,
     * a claim of one idle that long): it is being done */
    for (job = fs_jobs; job; job = job->next) {
        if (strcmp(job->id, e->id) == 0) {
            return MXW_LATER;
        }
    }

    kind = mxw_entry_get(e, "kind", NULL);
    reply = mxw_entry_get(e, "reply", NULL);
    req = mxw_entry_get(e, "req", NULL);

    /* nobody waits for it (fedsender_backfill.c) */
    if (kind != NULL && strcmp(kind, "backfill") == 0) {
        return fs_backfill(w, e, why, why_len);
    }

    if (reply == NULL || req == NULL || kind == NULL) {
        snprintf(why, why_len, "a job needs kind, reply and req");
        return MXW_REJECT;
    }

    job = calloc(1, sizeof(fs_job_t));
    if (job == NULL) {
        return MXW_RETRY;
    }

    job->id = strdup(e->id);
    job->reply = strdup(reply);
    job->req = strdup(req);
    job->next = fs_jobs;
    fs_jobs = job;

    if (job->id == NULL || job->reply == NULL || job->req == NULL) {
        fs_job_forget(job);
        return MXW_RETRY;
    }

    if (strcmp(kind, "keys") == 0) {
        return fs_keys(job, e);
    }

    if (strcmp(kind, "keys_many") == 0) {
        return fs_keys_many(job, e);
    }

    if (strcmp(kind, "request") == 0) {
        return fs_request(job, e);
    }

    /* answered, so nobody waits, and dead-lettered, so it is seen */
    fs_answer_error(job, "M_UNRECOGNIZED", "unknown job kind");
    snprintf(why, why_len, "unknown job kind \"%s\"", kind);

    return MXW_REJECT;
}


/* the output log's events and the EDUs: fedsender_txn.c */

static mxw_kind_t  kinds[] = {
    { "event", fs_event },
    { "edu", fs_edu },
    { NULL, NULL }
};


static mxw_result_t
fs_entry(mxw_t *w, const mxw_entry_t *e, void *data, char *why,
    size_t why_len)
{
    if (strcmp(e->stream, FS_JOBS) == 0) {
        return fs_job(w, e, why, why_len);
    }

    return mxw_dispatch(w, e, data, why, why_len);
}


/* between reads: move the transfers on, start the transactions due; the
 * next read blocks only when nothing is in flight, and no longer than
 * the next backoff lasts */

static int
fs_tick(mxw_t *w, void *data)
{
    int  wait;

    (void) w;
    (void) data;

    if (mxw_fed_active(fs_fed)) {
        mxw_fed_run(fs_fed, FS_POLL_MS);
    }

    fs_keys_tick();

    wait = fs_txn_tick();

    return mxw_fed_active(fs_fed) ? 0 : wait;
}


int
main(int argc, char **argv)
{
    mxw_t            w;
    mxw_consumer_t   cs;
    const char      *consumer;
    const char      *streams[] = { "mx:output", FS_JOBS, "mx:edus" };

    mxw_init(&w, "fedsender", argc, argv, &consumer, NULL, NULL);
    fs_w = &w;

    if (mxw_fed_init(&fs_fed, &w) != 0) {
        mxw_fini(&w);
        return 1;
    }

    memset(&cs, 0, sizeof(cs));
    cs.group = FS_GROUP;
    cs.consumer = consumer;
    cs.streams = streams;
    cs.nstreams = 3;
    cs.handler = fs_entry;
    cs.data = kinds;
    cs.tick = fs_tick;

    /* a few milliseconds on the way to another server matter little; a
     * read per event of a busy server would cost Redis a read per event */
    cs.batch = 256;
    cs.gather_ms = 5;

    mxw_info(&w, "consuming mx:output, %s and mx:edus as %s", FS_JOBS,
             consumer);

    if (mxw_connect(&w) != 0) {
        mxw_fed_fini(fs_fed);
        mxw_fini(&w);
        return w.stop ? 0 : 1;
    }

    mxw_consume(&w, &cs);

    /* transfers in flight end here; their entries stay pending */
    mxw_fed_fini(fs_fed);

    while (fs_jobs) {
        fs_job_forget(fs_jobs);
    }

    fs_backfill_fini();

    fs_txn_fini();

    mxw_info(&w, "stopped");
    mxw_fini(&w);

    return 0;
}

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
 *               "keys" (fetch a server's signing keys into the key cache)
 *               and "request" (a signed request on the module's behalf);
 *               the roomserver's "backfill" (fedsender_backfill.c)
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

#include <mx_base64.h>
#include <mx_ids.h>
#include <mx_json.h>
#include <mx_pool.h>
#include <mx_server_name.h>
#include <mx_sign.h>

#include "fedsender.h"


#define FS_JOBS          "mx:fedjobs"
#define FS_GROUP         "fedsender"
#define FS_POLL_MS       20
#define FS_RETRY_MS      60000      /* a failed key fetch is not retried
                                       sooner */
#define FS_KEY_IDS_MAX   32


typedef struct fs_job_s  fs_job_t;

struct fs_job_s {
    fs_job_t   *next;           /* jobs in hand */
    char       *id;             /* the entry */
    char       *reply;
    char       *req;
    char       *server;         /* keys: the server asked */
    char       *key_ids;        /* keys: space-separated, may be empty */
    int64_t     valid_at;
    int         fetching;       /* keys: this job's fetch is in flight */
    fs_job_t   *followers;      /* keys: jobs for the same server that
                                   wait for it (a chain through this) */
};


mxw_t             *fs_w;
mxw_fed_t         *fs_fed;
static fs_job_t   *fs_jobs;


/* --- jobs: answers ------------------------------------------------------- */

static void
fs_job_free(fs_job_t *job)
{
    free(job->id);
    free(job->reply);
    free(job->req);
    free(job->server);
    free(job->key_ids);
    free(job);
}


static void
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

static void
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


static void
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


static void
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


/* --- kind "keys" ----------------------------------------------------------- */

/* does the key cache hold what the job asks?  1 yes, 0 no, -1 Redis */

static int
fs_keys_cached(fs_job_t *job, int64_t now, int64_t *failed)
{
    redisReply  *r, *k;
    const char  *argv[4 + FS_KEY_IDS_MAX];
    size_t       lens[4 + FS_KEY_IDS_MAX];
    char         key[MX_HOST_MAX + 32], *ids, *p, *save;
    int64_t      at;
    size_t       i;
    int          argc, nids, good;

    snprintf(key, sizeof(key), "mx:serverkeys:{%s}", job->server);

    ids = strdup(job->key_ids);
    if (ids == NULL) {
        return -1;
    }

    argc = 0;
    argv[argc++] = "FCALL";
    argv[argc++] = "mx_serverkeys_get";
    argv[argc++] = "1";
    argv[argc++] = key;
    argv[argc++] = job->server;

    for (p = strtok_r(ids, " ", &save); p && argc < 4 + FS_KEY_IDS_MAX;
         p = strtok_r(NULL, " ", &save))
    {
        argv[argc++] = p;
    }

    nids = argc - 5;

    for (i = 0; i < (size_t) argc; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = mxw_commandv(fs_w, argc, argv, lens);
    free(ids);

    if (r == NULL) {
        return -1;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
        mxw_error(fs_w, "mx_serverkeys_get: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return -1;
    }

    *failed = r->element[1]->type == REDIS_REPLY_INTEGER
              ? r->element[1]->integer : 0;

    at = job->valid_at > 0 ? job->valid_at : now;
    good = 0;

    for (i = 3; i < r->elements; i++) {
        k = r->element[i];
        if (k->type == REDIS_REPLY_ARRAY && k->elements == 3
            && k->element[2]->type == REDIS_REPLY_INTEGER
            && k->element[2]->integer >= at)
        {
            good++;
        }
    }

    freeReplyObject(r);

    /* every key asked for, or (none asked) some current key */
    return nids ? good == nids : good > 0;
}


static int
fs_key_decode(const char *b64, size_t len, unsigned char pk[32])
{
    unsigned char  buf[mx_base64_decoded_max(64)];

    if (len > 64 || mx_base64_decode(b64, len, buf, MX_BASE64_STD) != 32) {
        return -1;
    }

    memcpy(pk, buf, 32);

    return 0;
}


/*
 * Check a key response: for this server, and every verify key's own
 * signature good; then store it.  NULL, or why it was refused.
 */

static const char *
fs_keys_store(fs_job_t *job, const char *body, size_t len, char *why,
    size_t why_len)
{
    mx_pool_t         *pool;
    mx_json_t         *obj, *vk, *old, *k;
    mx_json_error_t    err;
    mx_json_member_t  *m;
    redisReply        *r;
    const char        *name, *b64, **argv;
    size_t            *lens, nlen, blen, i, argc;
    unsigned char      pk[32];
    char               key[MX_HOST_MAX + 32], now_s[32], *nums;
    int64_t            valid_until, expired;
    const char        *res;

    pool = mx_pool_create(16384);
    if (pool == NULL) {
        return "out of memory";
    }

    res = NULL;

    obj = mx_json_parse(pool, body, len, &err);
    if (!mx_json_is(obj, MX_JSON_OBJECT)) {
        res = "the response is not a JSON object";
        goto done;
    }

    name = mx_json_get_str(obj, "server_name", &nlen);
    if (name == NULL || nlen != strlen(job->server)
        || memcmp(name, job->server, nlen) != 0)
    {
        res = "the response's server_name is not the server asked";
        goto done;
    }

    vk = mx_json_get_obj(obj, "verify_keys");
    old = mx_json_get_obj(obj, "old_verify_keys");

    if (vk == NULL || vk->u.o.n == 0
        || mx_json_get_int(obj, "valid_until_ts", &valid_until) != 0)
    {
        res = "no verify_keys or valid_until_ts in the response";
        goto done;
    }

    /* the command: FCALL put, key, server, json, fetched, triples */
    argc = 7 + 3 * (vk->u.o.n + (old ? old->u.o.n : 0));
    argv = mx_palloc(pool, argc * sizeof(char *));
    lens = mx_palloc(pool, argc * sizeof(size_t));
    nums = mx_palloc(pool, argc * 24);
    if (argv == NULL || lens == NULL || nums == NULL) {
        res = "out of memory";
        goto done;
    }

    snprintf(key, sizeof(key), "mx:serverkeys:{%s}", job->server);
    snprintf(now_s, sizeof(now_s), "%lld", (long long) mxw_now_ms());

    argc = 0;
    argv[argc++] = "FCALL";
    argv[argc++] = "mx_serverkeys_put";
    argv[argc++] = "1";
    argv[argc++] = key;
    argv[argc++] = job->server;
    argv[argc++] = body;
    argv[argc++] = now_s;

    for (i = 0; i < vk->u.o.n; i++) {
        m = &vk->u.o.m[i];
        b64 = mx_json_get_str(m->value, "key", &blen);

        if (b64 == NULL || fs_key_decode(b64, blen, pk) != 0) {
            snprintf(why, why_len, "verify key %s is not an ed25519 key",
                     m->key);
            res = why;
            goto done;
        }

        if (mx_verify_json(pool, obj, job->server, m->key, pk, 0) != 0) {
            snprintf(why, why_len, "the response is not signed with its"
                     " key %s", m->key);
            res = why;
            goto done;
        }

        argv[argc++] = m->key;
        argv[argc++] = b64;
        snprintf(nums + 24 * argc, 24, "%lld", (long long) valid_until);
        argv[argc] = nums + 24 * argc;
        argc++;
    }

    for (i = 0; old && i < old->u.o.n; i++) {
        m = &old->u.o.m[i];
        k = m->value;
        b64 = mx_json_get_str(k, "key", &blen);

        /* an old key that is not well formed is left out, not fatal: it
         * signs nothing in this response */
        if (b64 == NULL || fs_key_decode(b64, blen, pk) != 0
            || mx_json_get_int(k, "expired_ts", &expired) != 0)
        {
            continue;
        }

        argv[argc++] = m->key;
        argv[argc++] = b64;
        snprintf(nums + 24 * argc, 24, "%lld", (long long) expired);
        argv[argc] = nums + 24 * argc;
        argc++;
    }

    for (i = 0; i < argc; i++) {
        lens[i] = i == 5 ? len : strlen(argv[i]);
    }

    r = mxw_commandv(fs_w, (int) argc, argv, lens);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r) {
            mxw_error(fs_w, "mx_serverkeys_put: %s", r->str);
            freeReplyObject(r);
        }
        res = "cannot store the keys";
        goto done;
    }

    freeReplyObject(r);

done:

    mx_pool_destroy(pool);

    return res;
}


static void
fs_keys_failed(fs_job_t *job, const char *error)
{
    redisReply  *r;
    char         key[MX_HOST_MAX + 32];

    snprintf(key, sizeof(key), "mx:serverkeys:{%s}", job->server);

    r = mxw_command(fs_w, "FCALL mx_serverkeys_failed 1 %s %s %lld", key,
                    job->server, (long long) mxw_now_ms());
    if (r) {
        freeReplyObject(r);
    }

    fs_answer_error(job, "M_UNKNOWN", error);
}


/* answer a keys job from the cache just filled */

static void
fs_keys_answer(fs_job_t *job)
{
    char     what[1024];
    int64_t  failed;
    int      have;

    /* what was asked may still be missing from what the server has */
    have = fs_keys_cached(job, mxw_now_ms(), &failed);

    if (have == 1) {
        fs_answer_ok(job);

    } else if (have == 0) {
        snprintf(what, sizeof(what), "%s has no key %s valid at the time"
                 " asked", job->server, job->key_ids[0] ? job->key_ids
                                                        : "(current)");
        fs_answer_error(job, "M_NOT_FOUND", what);

    } else {
        fs_job_forget(job);         /* Redis failed: the entry comes again */
    }
}


static void
fs_keys_done(mxw_fed_t *fed, mxw_fed_req_t *rq)
{
    fs_job_t    *job, *f, *next;
    const char  *res;
    char         why[256], what[1024];

    (void) fed;

    job = rq->data;

    /* the jobs that waited for this fetch: answered with it */
    f = job->followers;
    job->followers = NULL;

    if (fs_stopping(job)) {
        return;                     /* followers are forgotten at the end */
    }

    res = NULL;

    if (rq->status == 0) {
        snprintf(what, sizeof(what), "fetching the keys of %s: %s",
                 job->server, rq->error);

    } else if (rq->status != 200) {
        snprintf(what, sizeof(what), "fetching the keys of %s: HTTP %ld",
                 job->server, rq->status);

    } else {
        res = fs_keys_store(job, rq->resp ? rq->resp : "", rq->resp_len,
                            why, sizeof(why));
        if (res != NULL) {
            snprintf(what, sizeof(what), "the keys of %s: %s", job->server,
                     res);
        }
    }

    if (rq->status != 200 || res != NULL) {
        fs_keys_failed(job, what);

        for ( /* void */ ; f; f = next) {
            next = f->followers;
            fs_answer_error(f, "M_UNKNOWN", what);
        }

        return;
    }

    mxw_info(fs_w, "%s %s: stored the keys of %s", FS_JOBS, job->id,
             job->server);

    fs_keys_answer(job);

    for ( /* void */ ; f; f = next) {
        next = f->followers;
        fs_keys_answer(f);
    }
}


static mxw_result_t
fs_keys(fs_job_t *job, const mxw_entry_t *e)
{
    fs_job_t    *lead;
    const char  *s;
    char         what[512];
    int64_t      now, failed;
    int          have;

    s = mxw_entry_get(e, "server", NULL);
    job->server = strdup(s ? s : "");
    s = mxw_entry_get(e, "key_ids", NULL);
    job->key_ids = strdup(s ? s : "");
    s = mxw_entry_get(e, "valid_at", NULL);
    job->valid_at = s ? strtoll(s, NULL, 10) : 0;

    if (job->server == NULL || job->key_ids == NULL) {
        fs_job_forget(job);
        return MXW_RETRY;
    }

    if (!mx_server_name_valid(job->server, strlen(job->server))) {
        fs_answer_error(job, "M_INVALID_PARAM", "not a server name");
        return MXW_LATER;
    }

    now = mxw_now_ms();
    failed = 0;

    have = fs_keys_cached(job, now, &failed);
    if (have < 0) {
        fs_job_forget(job);
        return MXW_RETRY;
    }

    if (have) {
        fs_answer_ok(job);
        return MXW_LATER;
    }

    if (failed && now - failed < FS_RETRY_MS) {
        snprintf(what, sizeof(what), "fetching the keys of %s failed %lld ms"
                 " ago: not again before %d s", job->server,
                 (long long) (now - failed), FS_RETRY_MS / 1000);
        fs_answer_error(job, "M_UNKNOWN", what);
        return MXW_LATER;
    }

    /* a fetch for this server on its way: wait for it rather than fetch
     * twice (many requests of one server come together) */
    for (lead = fs_jobs; lead; lead = lead->next) {
        if (lead->fetching && strcmp(lead->server, job->server) == 0) {
            job->followers = lead->followers;
            lead->followers = job;
            return MXW_LATER;
        }
    }

    if (mxw_fed_request(fs_fed, job->server, "GET", "/_matrix/key/v2/server",
                        NULL, 0, 0, fs_keys_done, job) != 0)
    {
        fs_job_forget(job);
        return MXW_RETRY;
    }

    job->fetching = 1;

    return MXW_LATER;
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

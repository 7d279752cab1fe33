/*
 * fedsender_keys: other servers' signing keys into the key cache
 * (lua/serverkeys.lua), for the module's jobs on mx:fedjobs:
 *
 *   keys       one server's keys (server, key_ids, valid_at): a request's
 *              signature, an invite; {"ok":true} or an error
 *   keys_many  many servers' at once (servers, key_ids, valid_at: one
 *              entry per server and key ID; notary; timeout): the state of
 *              a room joined through another server; {"ok":true,
 *              "failed":[<server>...]} once every server's keys are had or
 *              given up, or at the deadline
 *
 * Both come down to wants, one per server, each with the key IDs asked
 * and the time each must be valid at:
 *
 *   want ──► in the cache, valid then? ──yes──► had
 *              │ no
 *              ▼
 *   GET /_matrix/key/v2/server of the server: one fetch per server for
 *   every job that wants it, all side by side on mxw_fed; a server whose
 *   fetch failed less than FS_RETRY_MS ago is not asked again
 *              │ failed, no such key, or (keys_many) no answer within
 *              │ FS_GRACE_MS
 *              ▼
 *   POST /_matrix/key/v2/query to the job's notary (keys_many; the
 *   server the room is joined through): one request for the wants
 *   pending, once the notary's own keys are had; each response must be
 *   signed by the notary and by the server itself, as a fetched one
 *              │ nothing
 *              ▼
 *   given up ("failed"; the roomserver drops the events that needed it)
 *
 * The transfers of keys_many go with MXW_FED_QUICK, so that a server that
 * does not answer costs seconds, not a minute; the job's deadline
 * (timeout, at most FS_MANY_TIMEOUT_MAX) answers whatever is still open.
 * A fetch or notary request outlives a job that goes (answered at its
 * deadline): what it brings is stored all the same.
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


#define FS_RETRY_MS           60000     /* a failed fetch is not tried
                                           again sooner */
#define FS_GRACE_MS           2000      /* keys_many: a server silent that
                                           long is asked of the notary too */
#define FS_MANY_TIMEOUT       12000
#define FS_MANY_TIMEOUT_MAX   30000
#define FS_MANY_MAX           4096      /* entries of a keys_many job */
#define FS_KEY_IDS_MAX        32        /* of a keys job */


typedef struct fs_fetch_s   fs_fetch_t;
typedef struct fs_wait_s    fs_wait_t;
typedef struct fs_want_s    fs_want_t;
typedef struct fs_kjob_s    fs_kjob_t;
typedef struct fs_notary_s  fs_notary_t;


/* a job's want waiting for a fetch */
struct fs_wait_s {
    fs_wait_t     *next;
    fs_job_t      *job;             /* NULL: the job went */
    fs_want_t     *want;
};

/* GET /_matrix/key/v2/server of one server, in flight */
struct fs_fetch_s {
    fs_fetch_t    *next;
    char          *server;
    fs_wait_t     *waiters;
};

/* a key asked: NULL id, some current key */
typedef struct {
    char          *id;
    int64_t        at;              /* valid then (ms); 0: now */
} fs_key_t;

enum {
    FS_N_NONE = 0,                  /* the notary not asked */
    FS_N_PENDING,                   /* to be asked */
    FS_N_ASKED,                     /* asked, no answer yet */
    FS_N_DONE                       /* answered (or cannot be asked) */
};

struct fs_want_s {
    char          *server;
    fs_key_t      *keys;
    size_t         nkeys;
    int            have;            /* 1 had, -1 given up, 0 open */
    int            notary;          /* FS_N_* */
    fs_wait_t     *wait;            /* on the fetch, while it runs */
    const char    *errcode;
    char           why[512];
};

/* a keys or keys_many job's state (job->keys) */
struct fs_kjob_s {
    fs_kjob_t     *next;            /* keys_many jobs, for the tick */
    fs_kjob_t     *prev;
    fs_job_t      *job;
    int            many;
    fs_want_t     *wants;
    size_t         n;
    size_t         cap;
    size_t         open;
    fs_want_t     *notary;          /* the notary's own want, or NULL */
    fs_notary_t   *asking;          /* the notary request in flight */
    int64_t        start;
    int64_t        deadline;
    int            graced;
};

/* POST /_matrix/key/v2/query of a job, in flight */
struct fs_notary_s {
    fs_job_t      *job;             /* NULL: the job went */
    char          *notary;
    char         **servers;         /* asked */
    size_t         n;
};


static fs_fetch_t  *fs_fetches;
static fs_kjob_t   *fs_kjobs;       /* the keys_many ones */


static void fs_fetch_done(mxw_fed_t *fed, mxw_fed_req_t *rq);
static void fs_notary_done(mxw_fed_t *fed, mxw_fed_req_t *rq);
static void fs_progress(fs_kjob_t *kj);


/* --- the cache ----------------------------------------------------------- */

/* mx_serverkeys_get of server: {fetched, failed, json, {id, pk, until}...},
 * or NULL (Redis, logged) */

static redisReply *
fs_keys_get(const char *server)
{
    redisReply  *r;
    const char  *argv[5];
    size_t       lens[5], i;
    char         key[MX_HOST_MAX + 32];

    snprintf(key, sizeof(key), "mx:serverkeys:{%s}", server);

    argv[0] = "FCALL";
    argv[1] = "mx_serverkeys_get";
    argv[2] = "1";
    argv[3] = key;
    argv[4] = server;

    for (i = 0; i < 5; i++) {
        lens[i] = strlen(argv[i]);
    }

    r = mxw_commandv(fs_w, 5, argv, lens);
    if (r == NULL) {
        return NULL;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) {
        mxw_error(fs_w, "mx_serverkeys_get: %s",
                  r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return NULL;
    }

    return r;
}


/*
 * Does the cache hold what wt asks, each key valid at its time?  1 yes,
 * 0 no, -1 Redis.  *failed: when a fetch of the server last failed (0:
 * not since the last good one).
 */

static int
fs_cached(fs_want_t *wt, int64_t now, int64_t *failed)
{
    redisReply  *r, *k;
    size_t       i, j;
    int64_t      at;
    int          good, all;

    r = fs_keys_get(wt->server);
    if (r == NULL) {
        return -1;
    }

    *failed = r->element[1]->type == REDIS_REPLY_INTEGER
              ? r->element[1]->integer : 0;

    all = 1;

    for (j = 0; j < wt->nkeys && all; j++) {
        at = wt->keys[j].at > 0 ? wt->keys[j].at : now;
        good = 0;

        for (i = 3; i < r->elements && !good; i++) {
            k = r->element[i];

            good = k->type == REDIS_REPLY_ARRAY && k->elements == 3
                   && k->element[0]->type == REDIS_REPLY_STRING
                   && k->element[2]->type == REDIS_REPLY_INTEGER
                   && k->element[2]->integer >= at
                   && (wt->keys[j].id == NULL
                       || strcmp(k->element[0]->str, wt->keys[j].id) == 0);
        }

        all = good;
    }

    freeReplyObject(r);

    return all;
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
 * A key response of server (obj, parsed from raw): for this server, every
 * verify key's own signature good; then stored, raw as the response to
 * serve again.  NULL, or why it was refused.
 */

static const char *
fs_keys_put(mx_pool_t *pool, const char *server, mx_json_t *obj,
    const char *raw, size_t raw_len, char *why, size_t why_len)
{
    mx_json_t         *vk, *old, *k;
    mx_json_member_t  *m;
    redisReply        *r;
    const char        *name, *b64, **argv;
    size_t            *lens, nlen, blen, i, argc;
    unsigned char      pk[32];
    char               key[MX_HOST_MAX + 32], now_s[32], *nums;
    int64_t            valid_until, expired;

    if (!mx_json_is(obj, MX_JSON_OBJECT)) {
        return "the response is not a JSON object";
    }

    name = mx_json_get_str(obj, "server_name", &nlen);
    if (name == NULL || nlen != strlen(server)
        || memcmp(name, server, nlen) != 0)
    {
        return "the response's server_name is not the server asked";
    }

    vk = mx_json_get_obj(obj, "verify_keys");
    old = mx_json_get_obj(obj, "old_verify_keys");

    if (vk == NULL || vk->u.o.n == 0
        || mx_json_get_int(obj, "valid_until_ts", &valid_until) != 0)
    {
        return "no verify_keys or valid_until_ts in the response";
    }

    /* the command: FCALL put, key, server, json, fetched, triples */
    argc = 7 + 3 * (vk->u.o.n + (old ? old->u.o.n : 0));
    argv = mx_palloc(pool, argc * sizeof(char *));
    lens = mx_palloc(pool, argc * sizeof(size_t));
    nums = mx_palloc(pool, argc * 24);
    if (argv == NULL || lens == NULL || nums == NULL) {
        return "out of memory";
    }

    snprintf(key, sizeof(key), "mx:serverkeys:{%s}", server);
    snprintf(now_s, sizeof(now_s), "%lld", (long long) mxw_now_ms());

    argc = 0;
    argv[argc++] = "FCALL";
    argv[argc++] = "mx_serverkeys_put";
    argv[argc++] = "1";
    argv[argc++] = key;
    argv[argc++] = server;
    argv[argc++] = raw;
    argv[argc++] = now_s;

    for (i = 0; i < vk->u.o.n; i++) {
        m = &vk->u.o.m[i];
        b64 = mx_json_get_str(m->value, "key", &blen);

        if (b64 == NULL || fs_key_decode(b64, blen, pk) != 0) {
            snprintf(why, why_len, "verify key %s is not an ed25519 key",
                     m->key);
            return why;
        }

        if (mx_verify_json(pool, obj, server, m->key, pk, 0) != 0) {
            snprintf(why, why_len, "the response is not signed with its"
                     " key %s", m->key);
            return why;
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
        lens[i] = i == 5 ? raw_len : strlen(argv[i]);
    }

    r = mxw_commandv(fs_w, (int) argc, argv, lens);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r) {
            mxw_error(fs_w, "mx_serverkeys_put: %s", r->str);
            freeReplyObject(r);
        }
        return "cannot store the keys";
    }

    freeReplyObject(r);

    return NULL;
}


/* a server's own response, as fetched: checked and stored */

static const char *
fs_keys_store(const char *server, const char *body, size_t len, char *why,
    size_t why_len)
{
    mx_pool_t        *pool;
    mx_json_t        *obj;
    mx_json_error_t   err;
    const char       *res;

    pool = mx_pool_create(16384);
    if (pool == NULL) {
        return "out of memory";
    }

    obj = mx_json_parse(pool, body, len, &err);
    res = fs_keys_put(pool, server, obj, body, len, why, why_len);

    mx_pool_destroy(pool);

    return res;
}


static void
fs_keys_failed(const char *server)
{
    redisReply  *r;
    char         key[MX_HOST_MAX + 32];

    snprintf(key, sizeof(key), "mx:serverkeys:{%s}", server);

    r = mxw_command(fs_w, "FCALL mx_serverkeys_failed 1 %s %s %lld", key,
                    server, (long long) mxw_now_ms());
    if (r) {
        freeReplyObject(r);
    }
}


/* --- wants --------------------------------------------------------------- */

/* wt is had (1) or given up (-1): it waits for nothing more */

static void
fs_settle(fs_kjob_t *kj, fs_want_t *wt, int have)
{
    if (wt->have) {
        return;
    }

    wt->have = have;
    kj->open--;

    if (wt->notary == FS_N_PENDING) {
        wt->notary = FS_N_DONE;
    }

    if (wt->wait) {
        wt->wait->job = NULL;
        wt->wait = NULL;
    }
}


/*
 * The server itself did not give wt's keys (or is slow to): the notary
 * is asked if the job has one that can be, else wt is given up once its
 * fetch is over.
 */

static void
fs_route(fs_kjob_t *kj, fs_want_t *wt)
{
    if (wt->have) {
        return;
    }

    if (wt->notary == FS_N_NONE && kj->notary != NULL && wt != kj->notary
        && kj->notary->have != -1)
    {
        wt->notary = FS_N_PENDING;
        return;
    }

    if ((wt->notary == FS_N_NONE || wt->notary == FS_N_DONE)
        && wt->wait == NULL)
    {
        fs_settle(kj, wt, -1);
    }
}


/* the cache looked at again for wt; 1 had */

static int
fs_recheck(fs_kjob_t *kj, fs_want_t *wt)
{
    int64_t  failed;

    if (wt->have) {
        return wt->have == 1;
    }

    if (fs_cached(wt, mxw_now_ms(), &failed) == 1) {
        fs_settle(kj, wt, 1);
        return 1;
    }

    return 0;
}


/* a fetch of wt's server, the one in flight or a new one; 0 or -1 */

static int
fs_fetch(fs_kjob_t *kj, fs_want_t *wt)
{
    fs_fetch_t  *f;
    fs_wait_t   *w;

    w = calloc(1, sizeof(fs_wait_t));
    if (w == NULL) {
        return -1;
    }

    /* one fetch per server: the jobs that want it meanwhile wait for it */
    for (f = fs_fetches; f; f = f->next) {
        if (strcmp(f->server, wt->server) == 0) {
            break;
        }
    }

    if (f == NULL) {
        f = calloc(1, sizeof(fs_fetch_t));
        if (f == NULL || (f->server = strdup(wt->server)) == NULL) {
            free(f);
            free(w);
            return -1;
        }

        if (mxw_fed_request(fs_fed, wt->server, "GET",
                            "/_matrix/key/v2/server", NULL, 0,
                            kj->many ? MXW_FED_QUICK : 0, fs_fetch_done, f)
            != 0)
        {
            free(f->server);
            free(f);
            free(w);
            return -1;
        }

        f->next = fs_fetches;
        fs_fetches = f;
    }

    w->job = kj->job;
    w->want = wt;
    w->next = f->waiters;
    f->waiters = w;
    wt->wait = w;

    return 0;
}


/* the first look at a want: the cache, else its fetch; -1 Redis, memory */

static int
fs_want_start(fs_kjob_t *kj, fs_want_t *wt, int64_t now)
{
    int64_t  failed;
    int      have;

    if (!mx_server_name_valid(wt->server, strlen(wt->server))) {
        wt->errcode = "M_INVALID_PARAM";
        snprintf(wt->why, sizeof(wt->why), "not a server name");
        fs_settle(kj, wt, -1);
        return 0;
    }

    failed = 0;

    have = fs_cached(wt, now, &failed);
    if (have < 0) {
        return -1;
    }

    if (have) {
        fs_settle(kj, wt, 1);
        return 0;
    }

    if (failed && now - failed < FS_RETRY_MS) {
        wt->errcode = "M_UNKNOWN";
        snprintf(wt->why, sizeof(wt->why), "fetching the keys of %s failed"
                 " %lld ms ago: not again before %d s", wt->server,
                 (long long) (now - failed), FS_RETRY_MS / 1000);
        fs_route(kj, wt);
        return 0;
    }

    return fs_fetch(kj, wt);
}


/* --- fetches ------------------------------------------------------------- */

static void
fs_fetch_done(mxw_fed_t *fed, mxw_fed_req_t *rq)
{
    fs_fetch_t   *f, **pf;
    fs_wait_t    *w, *next;
    fs_kjob_t    *kj;
    fs_want_t    *wt;
    const char   *res;
    char          why[256], what[512];
    int           ok;

    (void) fed;

    f = rq->data;

    for (pf = &fs_fetches; *pf; pf = &(*pf)->next) {
        if (*pf == f) {
            *pf = f->next;
            break;
        }
    }

    ok = 0;

    if (fs_w->stop) {
        /* the jobs waiting stay pending */
        for (w = f->waiters; w; w = w->next) {
            if (w->job) {
                w->want->wait = NULL;
                fs_job_forget(w->job);
            }
        }

        goto done;
    }

    res = NULL;

    if (rq->status == 0) {
        snprintf(what, sizeof(what), "fetching the keys of %s: %s",
                 f->server, rq->error);

    } else if (rq->status != 200) {
        snprintf(what, sizeof(what), "fetching the keys of %s: HTTP %ld",
                 f->server, rq->status);

    } else {
        res = fs_keys_store(f->server, rq->resp ? rq->resp : "",
                            rq->resp_len, why, sizeof(why));
        if (res != NULL) {
            snprintf(what, sizeof(what), "the keys of %s: %s", f->server,
                     res);
        }
    }

    ok = rq->status == 200 && res == NULL;

    if (ok) {
        mxw_info(fs_w, "stored the keys of %s", f->server);

    } else {
        fs_keys_failed(f->server);
    }

    for (w = f->waiters; w; w = w->next) {
        if (w->job == NULL) {
            continue;
        }

        kj = w->job->keys;
        wt = w->want;
        wt->wait = NULL;
        w->job = NULL;

        if (fs_recheck(kj, wt)) {
            fs_progress(kj);
            continue;
        }

        if (ok) {
            wt->errcode = "M_NOT_FOUND";
            snprintf(wt->why, sizeof(wt->why), "%s has no key %s valid at"
                     " the time asked", wt->server,
                     wt->nkeys && wt->keys[0].id ? wt->keys[0].id
                                                 : "(current)");
        } else {
            wt->errcode = "M_UNKNOWN";
            snprintf(wt->why, sizeof(wt->why), "%s", what);
        }

        fs_route(kj, wt);
        fs_progress(kj);
    }

done:

    for (w = f->waiters; w; w = next) {
        next = w->next;
        free(w);
    }

    free(f->server);
    free(f);
}


/* --- the notary ---------------------------------------------------------- */

/*
 * The notary's signature on a response: one of its keys, valid now, from
 * the cache (its own want had them).  1 good, 0 not.
 */

static int
fs_notary_signed(mx_pool_t *pool, const char *notary, mx_json_t *obj)
{
    redisReply     *r, *k;
    mx_json_t      *sigs;
    unsigned char   pk[32];
    size_t          i;
    int64_t         now;
    int             good;

    sigs = mx_json_get_obj(mx_json_get_obj(obj, "signatures"), notary);
    if (sigs == NULL) {
        return 0;
    }

    r = fs_keys_get(notary);
    if (r == NULL) {
        return 0;
    }

    now = mxw_now_ms();
    good = 0;

    for (i = 3; i < r->elements && !good; i++) {
        k = r->element[i];

        if (k->type != REDIS_REPLY_ARRAY || k->elements != 3
            || k->element[0]->type != REDIS_REPLY_STRING
            || k->element[1]->type != REDIS_REPLY_STRING
            || k->element[2]->type != REDIS_REPLY_INTEGER
            || k->element[2]->integer < now
            || mx_json_get(sigs, k->element[0]->str) == NULL
            || fs_key_decode(k->element[1]->str, k->element[1]->len, pk)
               != 0)
        {
            continue;
        }

        good = mx_verify_json(pool, obj, notary, k->element[0]->str, pk, 0)
               == 0;
    }

    freeReplyObject(r);

    return good;
}


/*
 * One response of the notary's answer: for a server asked, signed by the
 * notary, then checked and stored as a fetched one would be (kept as the
 * server signed it, without the notary's signature).  NULL or why not.
 */

static const char *
fs_notary_one(mx_pool_t *pool, fs_notary_t *nt, mx_json_t *obj, char *why,
    size_t why_len)
{
    mx_json_t   *copy, *sigs, *mine;
    const char  *server;
    char        *raw;
    size_t       i, len;

    server = mx_json_get_str(obj, "server_name", NULL);
    if (server == NULL) {
        return "a response without server_name";
    }

    for (i = 0; i < nt->n && strcmp(nt->servers[i], server) != 0; i++) {
        /* void */
    }

    if (i == nt->n) {
        return "a response for a server not asked";
    }

    if (!fs_notary_signed(pool, nt->notary, obj)) {
        return "a response the notary did not sign";
    }

    mine = mx_json_get_obj(mx_json_get_obj(obj, "signatures"), server);
    copy = mx_json_object_copy(pool, obj);
    sigs = mx_json_object(pool);

    if (mine == NULL || copy == NULL || sigs == NULL
        || mx_json_set(pool, sigs, server, mine) != 0
        || mx_json_set(pool, copy, "signatures", sigs) != 0
        || (raw = mx_json_encode(pool, copy, 0, &len)) == NULL)
    {
        return "a response not signed by its server";
    }

    return fs_keys_put(pool, server, obj, raw, len, why, why_len);
}


static void
fs_notary_free(fs_notary_t *nt)
{
    size_t  i;

    for (i = 0; i < nt->n; i++) {
        free(nt->servers[i]);
    }

    free(nt->servers);
    free(nt->notary);
    free(nt);
}


static void
fs_notary_done(mxw_fed_t *fed, mxw_fed_req_t *rq)
{
    fs_notary_t      *nt;
    fs_kjob_t        *kj;
    fs_want_t        *wt;
    mx_pool_t        *pool;
    mx_json_t        *body, *list;
    mx_json_error_t   err;
    const char       *res;
    char              why[256], what[512];
    size_t            i, stored;

    (void) fed;

    nt = rq->data;

    if (fs_w->stop) {
        if (nt->job) {
            ((fs_kjob_t *) nt->job->keys)->asking = NULL;
            fs_job_forget(nt->job);
        }

        fs_notary_free(nt);
        return;
    }

    stored = 0;
    what[0] = '\0';

    pool = mx_pool_create(16384);
    body = pool && rq->status == 200 && rq->resp
           ? mx_json_parse(pool, rq->resp, rq->resp_len, &err) : NULL;
    list = mx_json_get_arr(body, "server_keys");

    if (rq->status == 0) {
        snprintf(what, sizeof(what), "%s", rq->error);

    } else if (list == NULL) {
        snprintf(what, sizeof(what), "HTTP %ld without server_keys",
                 rq->status);
    }

    for (i = 0; list && i < list->u.a.n; i++) {
        res = fs_notary_one(pool, nt, list->u.a.v[i], why, sizeof(why));

        if (res == NULL) {
            stored++;
            continue;
        }

        snprintf(what, sizeof(what), "%s", res);
        mxw_info(fs_w, "the notary %s: %s", nt->notary, res);
    }

    if (pool) {
        mx_pool_destroy(pool);
    }

    mxw_info(fs_w, "the notary %s: %zu responses stored for %zu servers"
             " asked%s%s", nt->notary, stored, nt->n, what[0] ? "; " : "",
             what);

    if (nt->job) {
        kj = nt->job->keys;
        kj->asking = NULL;

        for (i = 0; i < kj->n; i++) {
            wt = &kj->wants[i];

            if (wt->notary != FS_N_ASKED) {
                continue;
            }

            wt->notary = FS_N_DONE;

            if (!fs_recheck(kj, wt)) {
                snprintf(wt->why + strlen(wt->why),
                         sizeof(wt->why) - strlen(wt->why),
                         "; nor had the notary %s its keys", nt->notary);
                fs_route(kj, wt);
            }
        }

        fs_progress(kj);
    }

    fs_notary_free(nt);
}


/* POST /_matrix/key/v2/query to the job's notary, for the wants pending */

static void
fs_notary_ask(fs_kjob_t *kj)
{
    fs_notary_t  *nt;
    fs_want_t    *wt;
    mx_pool_t    *pool;
    mx_json_t    *body, *sk, *crit, *one;
    char         *text;
    size_t        i, j, n, len;

    pool = mx_pool_create(16384);
    nt = calloc(1, sizeof(fs_notary_t));
    body = pool ? mx_json_object(pool) : NULL;
    sk = pool ? mx_json_object(pool) : NULL;

    for (i = 0, n = 0; i < kj->n; i++) {
        n += kj->wants[i].notary == FS_N_PENDING;
    }

    if (nt == NULL || body == NULL || sk == NULL
        || (nt->servers = calloc(n, sizeof(char *))) == NULL
        || (nt->notary = strdup(kj->notary->server)) == NULL
        || mx_json_set(pool, body, "server_keys", sk) != 0)
    {
        goto failed;
    }

    for (i = 0; i < kj->n; i++) {
        wt = &kj->wants[i];

        if (wt->notary != FS_N_PENDING) {
            continue;
        }

        crit = mx_json_object(pool);
        if (crit == NULL || mx_json_set(pool, sk, wt->server, crit) != 0
            || (nt->servers[nt->n] = strdup(wt->server)) == NULL)
        {
            goto failed;
        }

        nt->n++;

        for (j = 0; j < wt->nkeys; j++) {
            if (wt->keys[j].id == NULL) {
                continue;           /* {}: every key the notary has */
            }

            one = mx_json_object(pool);
            if (one == NULL
                || mx_json_set_int(pool, one, "minimum_valid_until_ts",
                                   wt->keys[j].at) != 0
                || mx_json_set(pool, crit, wt->keys[j].id, one) != 0)
            {
                goto failed;
            }
        }
    }

    text = mx_json_encode(pool, body, 0, &len);

    if (text == NULL
        || mxw_fed_request(fs_fed, kj->notary->server, "POST",
                           "/_matrix/key/v2/query", text, len,
                           MXW_FED_SIGN | MXW_FED_QUICK, fs_notary_done, nt)
           != 0)
    {
        goto failed;
    }

    mx_pool_destroy(pool);

    nt->job = kj->job;
    kj->asking = nt;

    for (i = 0; i < kj->n; i++) {
        if (kj->wants[i].notary == FS_N_PENDING) {
            kj->wants[i].notary = FS_N_ASKED;
        }
    }

    mxw_info(fs_w, "%zu servers' keys asked of the notary %s", nt->n,
             nt->notary);

    return;

failed:

    /* out of memory: the notary cannot be asked */
    if (pool) {
        mx_pool_destroy(pool);
    }

    if (nt) {
        fs_notary_free(nt);
    }

    for (i = 0; i < kj->n; i++) {
        wt = &kj->wants[i];

        if (wt->notary == FS_N_PENDING) {
            wt->notary = FS_N_DONE;
            fs_route(kj, wt);
        }
    }
}


/* --- jobs ---------------------------------------------------------------- */

static void
fs_kjob_answer(fs_kjob_t *kj)
{
    fs_job_t   *job;
    fs_want_t  *wt;
    mx_pool_t  *pool;
    mx_json_t  *o, *failed;
    size_t      i;

    job = kj->job;

    if (!kj->many) {
        wt = &kj->wants[0];

        if (wt->have == 1) {
            fs_answer_ok(job);
        } else {
            fs_answer_error(job, wt->errcode ? wt->errcode : "M_UNKNOWN",
                            wt->why[0] ? wt->why : "no keys");
        }

        return;
    }

    pool = mx_pool_create(4096);
    o = pool ? mx_json_object(pool) : NULL;
    failed = pool ? mx_json_array(pool) : NULL;

    if (o == NULL || failed == NULL
        || mx_json_set(pool, o, "ok", mx_json_bool(pool, 1)) != 0
        || mx_json_set(pool, o, "failed", failed) != 0)
    {
        if (pool) {
            mx_pool_destroy(pool);
        }
        fs_job_forget(job);
        return;
    }

    for (i = 0; i < kj->n; i++) {
        wt = &kj->wants[i];

        if (wt->have == 1) {
            continue;
        }

        mxw_info(fs_w, "%s %s: no keys of %s: %s", "mx:fedjobs", job->id,
                 wt->server, wt->why[0] ? wt->why : "no answer in time");

        if (mx_json_append(pool, failed, mx_json_str(pool, wt->server))
            != 0)
        {
            mx_pool_destroy(pool);
            fs_job_forget(job);
            return;
        }
    }

    mxw_info(fs_w, "%s %s: the keys of %zu servers, %zu failed in %lld ms",
             "mx:fedjobs", job->id, kj->n, failed->u.a.n,
             (long long) (mxw_now_ms() - kj->start));

    fs_answer(job, o);
    mx_pool_destroy(pool);
}


/*
 * Move a job on: the notary asked for the wants pending once its own keys
 * are had (given up: so are they), the job answered once nothing is open.
 * kj may be gone when it returns.
 */

static void
fs_progress(fs_kjob_t *kj)
{
    fs_want_t  *wt;
    size_t      i, pending;

    if (kj->notary != NULL) {
        pending = 0;

        for (i = 0; i < kj->n; i++) {
            wt = &kj->wants[i];

            if (wt->notary != FS_N_PENDING) {
                continue;
            }

            if (kj->notary->have == -1) {
                wt->notary = FS_N_DONE;
                snprintf(wt->why + strlen(wt->why),
                         sizeof(wt->why) - strlen(wt->why), "; the"
                         " notary %s cannot be checked", kj->notary->server);
                fs_route(kj, wt);
                continue;
            }

            pending++;
        }

        if (pending && kj->notary->have == 1 && kj->asking == NULL) {
            fs_notary_ask(kj);
        }
    }

    if (kj->open == 0) {
        fs_kjob_answer(kj);
    }
}


static fs_kjob_t *
fs_kjob_new(fs_job_t *job, size_t n, int many)
{
    fs_kjob_t  *kj;

    kj = calloc(1, sizeof(fs_kjob_t));
    if (kj == NULL) {
        return NULL;
    }

    kj->wants = calloc(n, sizeof(fs_want_t));
    if (kj->wants == NULL) {
        free(kj);
        return NULL;
    }

    kj->cap = n;
    kj->job = job;
    kj->many = many;
    kj->start = mxw_now_ms();
    job->keys = kj;

    if (many) {
        kj->next = fs_kjobs;
        if (fs_kjobs) {
            fs_kjobs->prev = kj;
        }
        fs_kjobs = kj;
    }

    return kj;
}


/* server's want in kj, added when new; NULL out of memory */

static fs_want_t *
fs_want_get(fs_kjob_t *kj, const char *server)
{
    fs_want_t  *wt;
    size_t      i;

    for (i = 0; i < kj->n; i++) {
        if (strcmp(kj->wants[i].server, server) == 0) {
            return &kj->wants[i];
        }
    }

    if (kj->n == kj->cap) {
        return NULL;
    }

    wt = &kj->wants[kj->n];

    wt->server = strdup(server);
    if (wt->server == NULL) {
        return NULL;
    }

    kj->n++;
    kj->open++;

    return wt;
}


/* a key ID (NULL: a current key) wanted valid at at; -1 out of memory */

static int
fs_want_key(fs_want_t *wt, const char *id, int64_t at)
{
    fs_key_t  *keys;
    size_t     i;

    for (i = 0; i < wt->nkeys; i++) {
        if ((id == NULL && wt->keys[i].id == NULL)
            || (id && wt->keys[i].id && strcmp(id, wt->keys[i].id) == 0))
        {
            if (at > wt->keys[i].at) {
                wt->keys[i].at = at;
            }
            return 0;
        }
    }

    keys = realloc(wt->keys, (wt->nkeys + 1) * sizeof(fs_key_t));
    if (keys == NULL) {
        return -1;
    }

    wt->keys = keys;
    keys[wt->nkeys].id = id ? strdup(id) : NULL;
    keys[wt->nkeys].at = at;

    if (id && keys[wt->nkeys].id == NULL) {
        return -1;
    }

    wt->nkeys++;

    return 0;
}


void
fs_keys_drop(fs_job_t *job)
{
    fs_kjob_t  *kj;
    fs_want_t  *wt;
    size_t      i, j;

    kj = job->keys;
    job->keys = NULL;

    if (kj->asking) {
        kj->asking->job = NULL;
    }

    if (kj->many) {
        if (kj->prev) {
            kj->prev->next = kj->next;
        } else {
            fs_kjobs = kj->next;
        }

        if (kj->next) {
            kj->next->prev = kj->prev;
        }
    }

    for (i = 0; i < kj->n; i++) {
        wt = &kj->wants[i];

        if (wt->wait) {
            wt->wait->job = NULL;
        }

        for (j = 0; j < wt->nkeys; j++) {
            free(wt->keys[j].id);
        }

        free(wt->keys);
        free(wt->server);
    }

    free(kj->wants);
    free(kj);
}


/* the wants all made: each looked at, the job moved on; MXW_LATER */

static mxw_result_t
fs_kjob_start(fs_kjob_t *kj)
{
    size_t   i;
    int64_t  now;

    now = mxw_now_ms();

    for (i = 0; i < kj->n; i++) {
        if (fs_want_start(kj, &kj->wants[i], now) != 0) {
            fs_job_forget(kj->job);
            return MXW_RETRY;
        }
    }

    fs_progress(kj);

    return MXW_LATER;
}


/* kind "keys": server, key_ids (space-separated, may be empty), valid_at */

mxw_result_t
fs_keys(fs_job_t *job, const mxw_entry_t *e)
{
    fs_kjob_t   *kj;
    fs_want_t   *wt;
    const char  *server, *s;
    char        *ids, *p, *save;
    int64_t      at;
    int          n, rc;

    server = mxw_entry_get(e, "server", NULL);
    s = mxw_entry_get(e, "valid_at", NULL);
    at = s ? strtoll(s, NULL, 10) : 0;
    s = mxw_entry_get(e, "key_ids", NULL);
    ids = strdup(s ? s : "");

    kj = ids ? fs_kjob_new(job, 1, 0) : NULL;
    wt = kj ? fs_want_get(kj, server ? server : "") : NULL;

    if (wt == NULL) {
        free(ids);
        fs_job_forget(job);
        return MXW_RETRY;
    }

    n = 0;
    rc = 0;

    for (p = strtok_r(ids, " ", &save); p && n < FS_KEY_IDS_MAX && rc == 0;
         p = strtok_r(NULL, " ", &save), n++)
    {
        rc = fs_want_key(wt, p, at);
    }

    if (n == 0 && rc == 0) {
        rc = fs_want_key(wt, NULL, at);
    }

    free(ids);

    if (rc != 0) {
        fs_job_forget(job);
        return MXW_RETRY;
    }

    return fs_kjob_start(kj);
}


/*
 * kind "keys_many": servers, key_ids ("-": the current keys), valid_at,
 * space-separated, one entry per server and key; notary; timeout (ms)
 */

mxw_result_t
fs_keys_many(fs_job_t *job, const mxw_entry_t *e)
{
    fs_kjob_t   *kj;
    fs_want_t   *wt;
    const char  *s, *notary;
    char        *servers, *ids, *ats, *sv, *id, *at, *s1, *s2, *s3;
    size_t       n;
    int64_t      timeout;
    int          rc;

    s = mxw_entry_get(e, "servers", NULL);

    /* as many wants as entries at most, and the notary's */
    for (n = 1; s && *s; s++) {
        n += *s == ' ';
    }

    n = n > FS_MANY_MAX ? FS_MANY_MAX : n;

    s = mxw_entry_get(e, "servers", NULL);
    servers = strdup(s ? s : "");
    s = mxw_entry_get(e, "key_ids", NULL);
    ids = strdup(s ? s : "");
    s = mxw_entry_get(e, "valid_at", NULL);
    ats = strdup(s ? s : "");
    notary = mxw_entry_get(e, "notary", NULL);
    s = mxw_entry_get(e, "timeout", NULL);
    timeout = s ? strtoll(s, NULL, 10) : 0;

    if (timeout <= 0 || timeout > FS_MANY_TIMEOUT_MAX) {
        timeout = timeout <= 0 ? FS_MANY_TIMEOUT : FS_MANY_TIMEOUT_MAX;
    }

    kj = NULL;
    rc = -1;

    if (servers == NULL || ids == NULL || ats == NULL) {
        goto failed;
    }

    kj = fs_kjob_new(job, n + 1, 1);
    if (kj == NULL) {
        goto failed;
    }

    kj->deadline = kj->start + timeout;

    /* the notary's own keys first: its responses are checked with them */
    if (notary && notary[0] && strcmp(notary, fs_w->cf.server_name) != 0) {
        kj->notary = fs_want_get(kj, notary);
        if (kj->notary == NULL || fs_want_key(kj->notary, NULL, 0) != 0) {
            goto failed;
        }
    }

    sv = strtok_r(servers, " ", &s1);
    id = strtok_r(ids, " ", &s2);
    at = strtok_r(ats, " ", &s3);
    n = 0;
    rc = 0;

    for ( /* void */ ; sv && rc == 0;
         sv = strtok_r(NULL, " ", &s1), id = id ? strtok_r(NULL, " ", &s2)
                                                : NULL,
         at = at ? strtok_r(NULL, " ", &s3) : NULL)
    {
        /* this server's keys are its own */
        if (strcmp(sv, fs_w->cf.server_name) == 0) {
            continue;
        }

        if (++n > FS_MANY_MAX) {
            break;
        }

        wt = fs_want_get(kj, sv);
        rc = wt ? fs_want_key(wt, id == NULL || strcmp(id, "-") == 0
                                  ? NULL : id,
                              at ? strtoll(at, NULL, 10) : 0)
                : -1;
    }

    if (rc != 0) {
        goto failed;
    }

    free(servers);
    free(ids);
    free(ats);

    mxw_info(fs_w, "%s %s: the keys of %zu servers%s%s", "mx:fedjobs",
             job->id, kj->n, kj->notary ? ", notary " : "",
             kj->notary ? kj->notary->server : "");

    return fs_kjob_start(kj);

failed:

    free(servers);
    free(ids);
    free(ats);
    fs_job_forget(job);

    return MXW_RETRY;
}


/*
 * Between reads: a keys_many job past its deadline is answered with what
 * it has; servers silent for FS_GRACE_MS are asked of the notary as well
 * (a dead server's fetch may take the whole connect timeout).
 */

void
fs_keys_tick(void)
{
    fs_kjob_t  *kj, *next;
    fs_want_t  *wt;
    int64_t     now;
    size_t      i;

    if (fs_kjobs == NULL) {
        return;
    }

    now = mxw_now_ms();

    for (kj = fs_kjobs; kj; kj = next) {
        next = kj->next;

        if (now >= kj->deadline) {
            for (i = 0; i < kj->n; i++) {
                wt = &kj->wants[i];

                if (!wt->have && !wt->why[0]) {
                    snprintf(wt->why, sizeof(wt->why), "no keys within"
                             " %lld ms", (long long) (now - kj->start));
                }

                fs_settle(kj, wt, wt->have ? wt->have : -1);
            }

            fs_progress(kj);
            continue;
        }

        if (kj->graced || now - kj->start < FS_GRACE_MS) {
            continue;
        }

        kj->graced = 1;

        for (i = 0; i < kj->n; i++) {
            wt = &kj->wants[i];

            if (wt->wait != NULL && wt->notary == FS_N_NONE) {
                snprintf(wt->why, sizeof(wt->why), "%s did not answer"
                         " within %d ms", wt->server, FS_GRACE_MS);
                fs_route(kj, wt);
            }
        }

        fs_progress(kj);
    }
}

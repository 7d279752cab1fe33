/*
 * stream_worker: a daemon on the mxw runtime for the runtime's own tests
 * (t/006-worker.t).  It consumes MXW_TEST_STREAM (default mx:test:in) in the
 * group "test" and, for each entry:
 *
 *   n=<int>          adds n to mx:test:sum and records the entry in
 *                    mx:test:done and mx:test:order, once per entry ID
 *                    however often the entry is delivered (idempotent)
 *   sleep_ms=<ms>    first sleeps, uninterrupted even by SIGTERM: a window
 *                    to kill it in the middle of an entry
 *   crash=1          aborts: a poison entry
 *   reject=1         refuses the entry (it goes to mx:dead)
 *   pipe=1           applies n through a pipelined command (mxw_append)
 *   pipefail=1       the same, but the command fails the first time: the
 *                    batch fails, the failed hook counts it in
 *                    mx:test:failed, and the batch comes again
 *
 * Settings from the environment: MXW_TEST_STREAM, MXW_TEST_MAX_DELIVERIES,
 * MXW_TEST_CLAIM_IDLE_MS, MXW_TEST_CLAIM_EVERY_MS.
 */

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mxw.h"


static const char  *apply_script =
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then "
    "  redis.call('INCRBY', KEYS[2], ARGV[2]) "
    "  redis.call('RPUSH', KEYS[3], ARGV[1]) "
    "end "
    "return 1";


/* the pipelined apply: fails once per entry when asked to */
static const char  *pipe_script =
    "if ARGV[3] == '1' and redis.call('INCR', KEYS[4]) == 1 then "
    "  return redis.error_reply('asked to fail once') "
    "end "
    "if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then "
    "  redis.call('INCRBY', KEYS[2], ARGV[2]) "
    "  redis.call('RPUSH', KEYS[3], ARGV[1]) "
    "end "
    "return 1";


static int
pipe_check(redisReply *r)
{
    return r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? 0 : -1;
}


static void
failed(mxw_t *w, void *data)
{
    redisReply  *r;

    (void) data;

    r = mxw_command(w, "INCR mx:test:failed");
    if (r) {
        freeReplyObject(r);
    }
}


static mxw_result_t
handle(mxw_t *w, const mxw_entry_t *e, void *data, char *why, size_t len)
{
    const char       *v;
    char              n[32];
    size_t            vlen;
    long              ms;
    struct timespec   ts;
    redisReply       *r;

    (void) data;

    v = mxw_entry_get(e, "sleep_ms", &vlen);
    if (v) {
        ms = strtol(v, NULL, 10);
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (ms % 1000) * 1000000;
        while (nanosleep(&ts, &ts) != 0) {
            /* interrupted by a signal: finish the sleep anyway */
        }
    }

    if (mxw_entry_get(e, "crash", NULL)) {
        abort();
    }

    if (mxw_entry_get(e, "reject", NULL)) {
        snprintf(why, len, "asked to reject");
        return MXW_REJECT;
    }

    v = mxw_entry_get(e, "n", &vlen);
    if (v == NULL || vlen == 0 || vlen >= sizeof(n)) {
        snprintf(why, len, "no n");
        return MXW_REJECT;
    }

    memcpy(n, v, vlen);
    n[vlen] = '\0';

    if (mxw_entry_get(e, "pipe", NULL) || mxw_entry_get(e, "pipefail", NULL)) {
        const char  *argv[10];
        size_t       lens[10];
        char         once[64];
        int          i;

        snprintf(once, sizeof(once), "mx:test:once:%s", e->id);

        argv[0] = "EVAL";
        argv[1] = pipe_script;
        argv[2] = "4";
        argv[3] = "mx:test:done";
        argv[4] = "mx:test:sum";
        argv[5] = "mx:test:order";
        argv[6] = once;
        argv[7] = e->id;
        argv[8] = n;
        argv[9] = mxw_entry_get(e, "pipefail", NULL) ? "1" : "0";

        for (i = 0; i < 10; i++) {
            lens[i] = strlen(argv[i]);
        }

        return mxw_append(w, pipe_check, 10, argv, lens) == 0 ? MXW_DONE
                                                              : MXW_RETRY;
    }

    r = mxw_command(w, "EVAL %s 3 mx:test:done mx:test:sum mx:test:order"
                    " %s %s", apply_script, e->id, n);
    if (r == NULL) {
        return MXW_RETRY;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(why, len, "%s", r->str);
        freeReplyObject(r);
        return MXW_RETRY;
    }

    freeReplyObject(r);
    return MXW_DONE;
}


static int
env_int(const char *name, int dflt)
{
    const char  *v;

    v = getenv(name);
    return v ? atoi(v) : dflt;
}


int
main(int argc, char **argv)
{
    mxw_t            w;
    mxw_consumer_t   cs;
    const char      *consumer, *stream;

    mxw_init(&w, "stream_worker", argc, argv, &consumer, NULL, NULL);

    stream = getenv("MXW_TEST_STREAM");
    if (stream == NULL) {
        stream = "mx:test:in";
    }

    memset(&cs, 0, sizeof(cs));
    cs.group = "test";
    cs.consumer = consumer;
    cs.streams = &stream;
    cs.nstreams = 1;
    cs.handler = handle;
    cs.failed = failed;
    cs.max_deliveries = env_int("MXW_TEST_MAX_DELIVERIES", 3);
    cs.claim_idle_ms = env_int("MXW_TEST_CLAIM_IDLE_MS", 30000);
    cs.claim_every_ms = env_int("MXW_TEST_CLAIM_EVERY_MS", 5000);
    cs.block_ms = 200;
    cs.batch = 16;

    mxw_info(&w, "consuming %s as %s", stream, consumer);

    return mxw_run(&w, &cs);
}

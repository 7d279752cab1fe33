/*
 * mxw_redis: the daemons' Redis connection and the function library loader.
 *
 * Daemons are sequential: one synchronous hiredis context, with socket
 * timeouts, reconnected with backoff (100 ms doubling to 2 s) whenever a
 * command fails at the connection level.
 */

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>

#include "mxw.h"


void
mxw_disconnect(mxw_t *w)
{
    if (w->redis) {
        redisFree(w->redis);
        w->redis = NULL;
    }

    if (w->npending) {
        /* what was queued may or may not have run */
        w->npending = 0;
        w->failed = 1;
    }
}


static redisContext *
mxw_open(mxw_t *w, char *why, size_t why_len)
{
    redisContext    *c;
    struct timeval   tv;

    tv.tv_sec = w->cf.redis_timeout_ms / 1000;
    tv.tv_usec = (w->cf.redis_timeout_ms % 1000) * 1000;

    if (w->cf.redis_port) {
        c = redisConnectWithTimeout(w->cf.redis_host, w->cf.redis_port, tv);
    } else {
        c = redisConnectUnixWithTimeout(w->cf.redis_path, tv);
    }

    if (c == NULL) {
        snprintf(why, why_len, "out of memory");
        return NULL;
    }

    if (c->err) {
        snprintf(why, why_len, "%s", c->errstr);
        redisFree(c);
        return NULL;
    }

    redisSetTimeout(c, tv);

    return c;
}


int
mxw_connect(mxw_t *w)
{
    char   why[256], logged[256];
    int    backoff, loaded, tries;

    backoff = 100;
    logged[0] = '\0';

    for (tries = 1; !w->stop; tries++) {
        mxw_disconnect(w);

        w->redis = mxw_open(w, why, sizeof(why));

        if (w->redis && mxw_functions_ensure(w, &loaded) == 0) {
            w->connects++;
            if (logged[0] || w->connects > 1) {
                mxw_info(w, "redis connected");
            }
            if (loaded) {
                mxw_info(w, "loaded the function library, version %s",
                         mx_lua_lib_version);
            }
            return 0;
        }

        if (w->redis) {
            snprintf(why, sizeof(why), "function library: %s",
                     w->redis->err ? w->redis->errstr : "could not load it");
        }

        if (strcmp(why, logged) != 0) {
            mxw_error(w, "redis: %s; retrying", why);
            snprintf(logged, sizeof(logged), "%s", why);
        }

        mxw_disconnect(w);

        if (w->tries && tries >= w->tries) {
            break;
        }

        mxw_sleep_ms(w, backoff);
        backoff = backoff * 2 > 2000 ? 2000 : backoff * 2;
    }

    return -1;
}


static int mxw_read_pending(mxw_t *w);


static redisReply *
mxw_checked(mxw_t *w, redisReply *reply)
{
    if (reply == NULL) {
        mxw_error(w, "redis: %s", w->redis->errstr[0] ? w->redis->errstr
                                                         : "connection lost");
        mxw_disconnect(w);
    }

    return reply;
}


/* the replies of the queued commands, then the one just appended */

static redisReply *
mxw_after_pending(mxw_t *w)
{
    void  *reply;

    if (mxw_read_pending(w) != 0 || w->redis == NULL) {
        return NULL;
    }

    reply = NULL;
    if (redisGetReply(w->redis, &reply) != REDIS_OK) {
        reply = NULL;
    }

    return mxw_checked(w, reply);
}


redisReply *
mxw_command(mxw_t *w, const char *fmt, ...)
{
    va_list  args;
    void    *reply;
    int      rc;

    if (w->redis == NULL && mxw_connect(w) != 0) {
        return NULL;
    }

    va_start(args, fmt);

    if (w->npending) {
        /* one write for the queue and this command */
        rc = redisvAppendCommand(w->redis, fmt, args);
        va_end(args);
        return rc == REDIS_OK ? mxw_after_pending(w) : mxw_checked(w, NULL);
    }

    reply = redisvCommand(w->redis, fmt, args);
    va_end(args);

    return mxw_checked(w, reply);
}


redisReply *
mxw_commandv(mxw_t *w, int argc, const char **argv, const size_t *argvlen)
{
    if (w->redis == NULL && mxw_connect(w) != 0) {
        return NULL;
    }

    if (w->npending) {
        if (redisAppendCommandArgv(w->redis, argc, argv, argvlen)
            != REDIS_OK)
        {
            return mxw_checked(w, NULL);
        }
        return mxw_after_pending(w);
    }

    return mxw_checked(w, redisCommandArgv(w->redis, argc, argv, argvlen));
}


int
mxw_append(mxw_t *w, mxw_check_pt check, int argc, const char **argv,
    const size_t *argvlen)
{
    int  done;

    if (w->redis == NULL && mxw_connect(w) != 0) {
        return -1;
    }

    if (w->npending == MXW_PIPELINE_MAX && mxw_read_pending(w) != 0) {
        return -1;
    }

    if (redisAppendCommandArgv(w->redis, argc, argv, argvlen) != REDIS_OK) {
        mxw_error(w, "redis: %s", w->redis->errstr);
        mxw_disconnect(w);
        return -1;
    }

    w->pending[w->npending++] = check;

    /*
     * Sent now rather than with the next read: Redis runs it while this
     * daemon goes on with the next entry of its batch, and a consumer
     * downstream (the syncer after the roomserver's store) wakes that much
     * sooner.  On the blocking connection the write takes what the socket
     * buffer holds; the rest leaves with the next command.
     */
    if (redisBufferWrite(w->redis, &done) != REDIS_OK) {
        mxw_error(w, "redis: %s", w->redis->errstr);
        mxw_disconnect(w);
        return -1;
    }

    return 0;
}


/* read the queued replies; -1 when the connection was lost */

static int
mxw_read_pending(mxw_t *w)
{
    void        *reply;
    int          i, n;
    redisReply  *r;

    n = w->npending;
    w->npending = 0;

    for (i = 0; i < n; i++) {
        reply = NULL;

        if (w->redis == NULL || redisGetReply(w->redis, &reply) != REDIS_OK
            || reply == NULL)
        {
            mxw_error(w, "redis: %s", w->redis && w->redis->errstr[0]
                                      ? w->redis->errstr : "connection lost");
            mxw_disconnect(w);
            w->failed = 1;
            return -1;
        }

        r = reply;

        if (w->pending[i] ? w->pending[i](r) != 0
                          : r->type == REDIS_REPLY_ERROR)
        {
            if (r->type == REDIS_REPLY_ERROR) {
                mxw_error(w, "redis: pipelined command: %s", r->str);
            }
            w->failed = 1;
        }

        freeReplyObject(r);
    }

    return 0;
}


int
mxw_drain(mxw_t *w)
{
    int  failed;

    if (w->npending) {
        if (w->redis == NULL) {
            w->npending = 0;
            w->failed = 1;
        } else {
            (void) mxw_read_pending(w);
        }
    }

    failed = w->failed;
    w->failed = 0;

    return failed ? -1 : 0;
}


/*
 * FCALL mx_version 0 answers the version in Redis; anything else (an older
 * library, or none) is replaced by this build's.  Called on every connect.
 */

int
mxw_functions_ensure(mxw_t *w, int *loaded)
{
    redisReply  *r;
    int          same;

    *loaded = 0;

    r = redisCommand(w->redis, "FCALL mx_version 0");
    if (r == NULL) {
        return -1;
    }

    same = r->type == REDIS_REPLY_STRING
           && strcmp(r->str, mx_lua_lib_version) == 0;

    if (!same && r->type == REDIS_REPLY_STRING) {
        mxw_warn(w, "replacing function library %s with %s", r->str,
                 mx_lua_lib_version);
    }

    freeReplyObject(r);

    if (same) {
        return 0;
    }

    r = redisCommand(w->redis, "FUNCTION LOAD REPLACE %b", mx_lua_lib,
                     mx_lua_lib_len);
    if (r == NULL) {
        return -1;
    }

    if (r->type == REDIS_REPLY_ERROR) {
        mxw_error(w, "FUNCTION LOAD: %s", r->str);
        freeReplyObject(r);
        return -1;
    }

    freeReplyObject(r);
    *loaded = 1;

    return 0;
}

/*
 * Redis inside an nginx worker: the hiredis adapter, the two connections and
 * their reconnect state machine, and commands with timeouts.  See
 * ngx_matrix_redis.h.
 *
 * Each connection moves through:
 *
 *   IDLE ──connect──► CONNECTING ──connected──► HANDSHAKE ──ok──► READY
 *     ▲                    │                        │               │
 *     └──── retry timer ◄──┴── failed / timed out ──┴── lost ◄──────┘
 *
 * HANDSHAKE is the function library version check on the command connection
 * and the SUBSCRIBE on the subscriber.  A wrong library version keeps the
 * connection in HANDSHAKE and checks again every second.  A READY command
 * connection checks the version again every 5 s, and at once when a call
 * finds no such function, so a library replaced under a running server is
 * noticed.  The retry delay
 * doubles from 100 ms up to 2 s and goes back to 100 ms once READY.
 *
 * Events are level-triggered: hiredis reads at most 16 KiB per call, so an
 * edge-triggered read event could leave a reply sitting in the socket.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_matrix_redis.h"
#include "mx_lua_version.h"


#define NGX_MATRIX_REDIS_IDLE        0
#define NGX_MATRIX_REDIS_CONNECTING  1
#define NGX_MATRIX_REDIS_HANDSHAKE   2
#define NGX_MATRIX_REDIS_READY       3

#define NGX_MATRIX_REDIS_BACKOFF_MIN  100
#define NGX_MATRIX_REDIS_BACKOFF_MAX  2000
#define NGX_MATRIX_REDIS_RECHECK      1000
#define NGX_MATRIX_REDIS_VERIFY       5000


typedef struct {
    const char           *name;
    redisAsyncContext    *ac;
    ngx_uint_t            state;
    ngx_msec_t            backoff;
    ngx_event_t           retry;
    ngx_event_t           deadline;      /* connect + handshake */
    ngx_event_t           verify;        /* periodic version check */
    ngx_msec_t            last_reply;
    unsigned              subscriber:1;
    u_char                why[160];      /* why it is not READY */
    u_char                logged[160];   /* last reason logged */
} ngx_matrix_redis_conn_t;


struct ngx_matrix_redis_cmd_s {
    ngx_queue_t           queue;         /* in the free list */
    ngx_matrix_redis_pt   handler;
    void                 *data;
    ngx_event_t           timer;
    ngx_msec_t            sent;
    unsigned              done:1;        /* handler called or cancelled */
};


static struct {
    ngx_matrix_redis_conn_t   cmd;
    ngx_matrix_redis_conn_t   sub;
    ngx_str_t                 host;
    ngx_int_t                 port;
    ngx_str_t                 path;
    ngx_msec_t                timeout;
    ngx_str_t                 channel;
    ngx_matrix_redis_msg_pt   on_message;
    ngx_queue_t               free;
    ngx_log_t                *log;
    unsigned                  exiting:1;
} ngx_matrix_redis;


static void ngx_matrix_redis_connect(ngx_matrix_redis_conn_t *rc);
static void ngx_matrix_redis_drop(ngx_matrix_redis_conn_t *rc,
    const char *why);
static void ngx_matrix_redis_down(ngx_matrix_redis_conn_t *rc,
    const char *why, ngx_msec_t delay);
static void ngx_matrix_redis_handshake(ngx_matrix_redis_conn_t *rc);


/*
 * The adapter: hiredis asks for read and write interest through these hooks
 * and closes the socket itself after cleanup.
 */

static void
ngx_matrix_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c = ev->data;
    ngx_matrix_redis_conn_t  *rc = c->data;

    /* may free the context, and c with it */
    redisAsyncHandleRead(rc->ac);
}


static void
ngx_matrix_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c = ev->data;
    ngx_matrix_redis_conn_t  *rc = c->data;

    redisAsyncHandleWrite(rc->ac);
}


static void
ngx_matrix_redis_add_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->read->active) {
        if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "matrix: redis: could not add a read event");
        }
    }
}


static void
ngx_matrix_redis_del_read(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_matrix_redis_add_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (!c->write->active) {
        if (ngx_add_event(c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                          "matrix: redis: could not add a write event");
        }
    }
}


static void
ngx_matrix_redis_del_write(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis is about to close the socket: let go of it without closing */

static void
ngx_matrix_redis_cleanup(void *privdata)
{
    ngx_connection_t  *c = privdata;

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


static ngx_int_t
ngx_matrix_redis_attach(ngx_matrix_redis_conn_t *rc, redisAsyncContext *ac)
{
    ngx_connection_t  *c;

    c = ngx_get_connection(ac->c.fd, ngx_matrix_redis.log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = rc;
    c->log = ngx_matrix_redis.log;
    c->read->log = c->log;
    c->write->log = c->log;
    c->read->handler = ngx_matrix_redis_read_handler;
    c->write->handler = ngx_matrix_redis_write_handler;

    ac->ev.data = c;
    ac->ev.addRead = ngx_matrix_redis_add_read;
    ac->ev.delRead = ngx_matrix_redis_del_read;
    ac->ev.addWrite = ngx_matrix_redis_add_write;
    ac->ev.delWrite = ngx_matrix_redis_del_write;
    ac->ev.cleanup = ngx_matrix_redis_cleanup;
    ac->data = rc;

    return NGX_OK;
}


/*
 * Connection state machine.
 */

static void
ngx_matrix_redis_why(ngx_matrix_redis_conn_t *rc, const char *why)
{
    ngx_cpystrn(rc->why, (u_char *) why, sizeof(rc->why));
}


static void
ngx_matrix_redis_ready(ngx_matrix_redis_conn_t *rc)
{
    if (rc->deadline.timer_set) {
        ngx_del_timer(&rc->deadline);
    }

    rc->state = NGX_MATRIX_REDIS_READY;
    rc->backoff = NGX_MATRIX_REDIS_BACKOFF_MIN;
    rc->last_reply = ngx_current_msec;
    rc->why[0] = '\0';

    if (!rc->subscriber && !rc->verify.timer_set) {
        ngx_add_timer(&rc->verify, NGX_MATRIX_REDIS_VERIFY);
    }

    if (rc->logged[0]) {
        ngx_log_error(NGX_LOG_NOTICE, ngx_matrix_redis.log, 0,
                      "matrix: redis %s connection ready", rc->name);
        rc->logged[0] = '\0';
    }
}


/* not ready: remember why, log it once, and try again after delay */

static void
ngx_matrix_redis_down(ngx_matrix_redis_conn_t *rc, const char *why,
    ngx_msec_t delay)
{
    ngx_matrix_redis_why(rc, why);

    if (ngx_strcmp(rc->why, rc->logged) != 0) {
        ngx_log_error(NGX_LOG_ERR, ngx_matrix_redis.log, 0,
                      "matrix: redis %s connection: %s", rc->name, rc->why);
        ngx_cpystrn(rc->logged, rc->why, sizeof(rc->logged));
    }

    if (ngx_matrix_redis.exiting) {
        return;
    }

    if (rc->retry.timer_set) {
        ngx_del_timer(&rc->retry);
    }

    ngx_add_timer(&rc->retry, delay);
}


static void
ngx_matrix_redis_lost(ngx_matrix_redis_conn_t *rc, const char *why)
{
    if (rc->deadline.timer_set) {
        ngx_del_timer(&rc->deadline);
    }

    if (rc->verify.timer_set) {
        ngx_del_timer(&rc->verify);
    }

    rc->ac = NULL;
    rc->state = NGX_MATRIX_REDIS_IDLE;

    ngx_matrix_redis_down(rc, why, rc->backoff);

    rc->backoff = ngx_min(rc->backoff * 2, NGX_MATRIX_REDIS_BACKOFF_MAX);
}


/* close a live context from outside hiredis's callbacks, then retry */

static void
ngx_matrix_redis_drop(ngx_matrix_redis_conn_t *rc, const char *why)
{
    redisAsyncContext  *ac;

    ac = rc->ac;
    ngx_matrix_redis_lost(rc, why);

    if (ac) {
        ac->data = NULL;     /* its disconnect callback is not ours now */
        redisAsyncFree(ac);
    }
}


static void
ngx_matrix_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_matrix_redis_conn_t  *rc = ac->data;
    char                      why[160];

    if (rc == NULL) {
        return;
    }

    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns */
        ngx_snprintf((u_char *) why, sizeof(why) - 1, "connect failed: %s%Z",
                     ac->errstr);
        ngx_matrix_redis_lost(rc, why);
        return;
    }

    rc->state = NGX_MATRIX_REDIS_HANDSHAKE;
    ngx_matrix_redis_handshake(rc);
}


static void
ngx_matrix_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_matrix_redis_conn_t  *rc = ac->data;
    char                      why[160];

    if (rc == NULL || rc->ac != ac) {
        return;
    }

    ngx_snprintf((u_char *) why, sizeof(why) - 1, "lost: %s%Z",
                 ac->err ? ac->errstr : "closed by the server");
    ngx_matrix_redis_lost(rc, why);
}


static void
ngx_matrix_redis_connect(ngx_matrix_redis_conn_t *rc)
{
    redisAsyncContext  *ac;
    char                why[160];

    if (ngx_matrix_redis.port) {
        ac = redisAsyncConnect((char *) ngx_matrix_redis.host.data,
                               (int) ngx_matrix_redis.port);
    } else {
        ac = redisAsyncConnectUnix((char *) ngx_matrix_redis.path.data);
    }

    if (ac == NULL) {
        ngx_matrix_redis_lost(rc, "out of memory");
        return;
    }

    if (ac->err) {
        ngx_snprintf((u_char *) why, sizeof(why) - 1, "connect failed: %s%Z",
                     ac->errstr);
        redisAsyncFree(ac);
        ngx_matrix_redis_lost(rc, why);
        return;
    }

    if (ngx_matrix_redis_attach(rc, ac) != NGX_OK) {
        redisAsyncFree(ac);
        ngx_matrix_redis_lost(rc, "no free nginx connection for it");
        return;
    }

    rc->ac = ac;
    rc->state = NGX_MATRIX_REDIS_CONNECTING;

    redisAsyncSetConnectCallback(ac, ngx_matrix_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_matrix_redis_on_disconnect);

    ngx_add_timer(&rc->deadline, ngx_matrix_redis.timeout);
}


/* retry timer: reconnect, or check the library version again */

static void
ngx_matrix_redis_retry_handler(ngx_event_t *ev)
{
    ngx_matrix_redis_conn_t  *rc = ev->data;

    if (ngx_matrix_redis.exiting) {
        return;
    }

    if (rc->ac == NULL) {
        ngx_matrix_redis_connect(rc);
        return;
    }

    if (rc->state == NGX_MATRIX_REDIS_HANDSHAKE) {
        ngx_matrix_redis_handshake(rc);
    }
}


static void
ngx_matrix_redis_deadline_handler(ngx_event_t *ev)
{
    ngx_matrix_redis_conn_t  *rc = ev->data;

    if (rc->state == NGX_MATRIX_REDIS_CONNECTING
        || rc->state == NGX_MATRIX_REDIS_HANDSHAKE)
    {
        ngx_matrix_redis_drop(rc, "connect timed out");
    }
}


static void
ngx_matrix_redis_on_version(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_matrix_redis_conn_t  *rc = privdata;
    redisReply               *reply = r;
    char                      why[160];

    if (reply == NULL || rc->ac != ac) {
        return;     /* the disconnect callback takes it from here */
    }

    if (reply->type == REDIS_REPLY_STRING
        && reply->len == sizeof(MX_LUA_VERSION) - 1
        && ngx_strncmp(reply->str, MX_LUA_VERSION, reply->len) == 0)
    {
        ngx_matrix_redis_ready(rc);
        return;
    }

    if (reply->type == REDIS_REPLY_STRING) {
        ngx_snprintf((u_char *) why, sizeof(why) - 1,
                     "function library is version %*s, this build needs "
                     MX_LUA_VERSION " (run `matrixctl functions`)%Z",
                     (size_t) ngx_min(reply->len, 32), reply->str);
    } else {
        ngx_snprintf((u_char *) why, sizeof(why) - 1,
                     "function library " MX_LUA_VERSION " is not loaded"
                     " (run `matrixctl functions`): %*s%Z",
                     (size_t) ngx_min(reply->len, 60),
                     reply->str ? reply->str : "");
    }

    if (rc->deadline.timer_set) {
        ngx_del_timer(&rc->deadline);
    }

    if (rc->verify.timer_set) {
        ngx_del_timer(&rc->verify);
    }

    rc->state = NGX_MATRIX_REDIS_HANDSHAKE;
    ngx_matrix_redis_down(rc, why, NGX_MATRIX_REDIS_RECHECK);
}


/* the library version again, while ready: it may have been replaced */

static void
ngx_matrix_redis_verify_handler(ngx_event_t *ev)
{
    ngx_matrix_redis_conn_t  *rc = ev->data;

    if (ngx_matrix_redis.exiting || rc->state != NGX_MATRIX_REDIS_READY) {
        return;
    }

    if (redisAsyncCommand(rc->ac, ngx_matrix_redis_on_version, rc,
                          "FCALL mx_version 0")
        != REDIS_OK)
    {
        ngx_matrix_redis_drop(rc, "could not send the version check");
        return;
    }

    ngx_add_timer(&rc->verify, NGX_MATRIX_REDIS_VERIFY);
}


void
ngx_matrix_redis_recheck(void)
{
    ngx_matrix_redis_conn_t  *rc;

    rc = &ngx_matrix_redis.cmd;

    if (rc->state == NGX_MATRIX_REDIS_READY) {
        if (rc->verify.timer_set) {
            ngx_del_timer(&rc->verify);
        }
        ngx_matrix_redis_verify_handler(&rc->verify);
    }
}


static void
ngx_matrix_redis_on_sub(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_matrix_redis_conn_t  *rc = privdata;
    redisReply               *reply = r;
    ngx_str_t                 channel, message;

    if (reply == NULL || rc->ac != ac
        || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    rc->last_reply = ngx_current_msec;

    if (ngx_strcmp(reply->element[0]->str, "subscribe") == 0) {
        /* ready once both channels are subscribed */
        if (reply->element[2]->type == REDIS_REPLY_INTEGER
            && reply->element[2]->integer == 2)
        {
            ngx_matrix_redis_ready(rc);
        }
        return;
    }

    if (ngx_strcmp(reply->element[0]->str, "message") != 0
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    channel.data = (u_char *) reply->element[1]->str;
    channel.len = reply->element[1]->len;
    message.data = (u_char *) reply->element[2]->str;
    message.len = reply->element[2]->len;

    if (ngx_matrix_redis.on_message) {
        ngx_matrix_redis.on_message(&channel, &message);
    }
}


static void
ngx_matrix_redis_handshake(ngx_matrix_redis_conn_t *rc)
{
    const char  *argv[3];
    size_t       argvlen[3];
    int          rv;

    if (rc->subscriber) {
        /* this worker's own channel, and the wakeups every worker hears */
        argv[0] = "SUBSCRIBE";
        argvlen[0] = 9;
        argv[1] = (const char *) ngx_matrix_redis.channel.data;
        argvlen[1] = ngx_matrix_redis.channel.len;
        argv[2] = NGX_MATRIX_WAKE_CHANNEL;
        argvlen[2] = sizeof(NGX_MATRIX_WAKE_CHANNEL) - 1;

        rv = redisAsyncCommandArgv(rc->ac, ngx_matrix_redis_on_sub, rc,
                                   3, argv, argvlen);
    } else {
        rv = redisAsyncCommand(rc->ac, ngx_matrix_redis_on_version, rc,
                               "FCALL mx_version 0");
    }

    if (rv != REDIS_OK) {
        ngx_matrix_redis_drop(rc, "could not send the handshake");
    }
}


/*
 * Commands.
 */

static ngx_matrix_redis_cmd_t *
ngx_matrix_redis_cmd_alloc(void)
{
    ngx_queue_t             *q;
    ngx_matrix_redis_cmd_t  *cmd;

    if (!ngx_queue_empty(&ngx_matrix_redis.free)) {
        q = ngx_queue_head(&ngx_matrix_redis.free);
        ngx_queue_remove(q);
        cmd = ngx_queue_data(q, ngx_matrix_redis_cmd_t, queue);

    } else {
        cmd = ngx_alloc(sizeof(ngx_matrix_redis_cmd_t),
                        ngx_matrix_redis.log);
        if (cmd == NULL) {
            return NULL;
        }
    }

    ngx_memzero(cmd, sizeof(ngx_matrix_redis_cmd_t));
    return cmd;
}


static void
ngx_matrix_redis_cmd_free(ngx_matrix_redis_cmd_t *cmd)
{
    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }

    ngx_queue_insert_head(&ngx_matrix_redis.free, &cmd->queue);
}


static void
ngx_matrix_redis_on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    ngx_matrix_redis_cmd_t  *cmd = privdata;
    redisReply              *reply = r;

    if (reply) {
        ngx_matrix_redis.cmd.last_reply = ngx_current_msec;
    }

    if (!cmd->done) {
        cmd->done = 1;

        if (cmd->timer.timer_set) {
            ngx_del_timer(&cmd->timer);
        }

        cmd->handler(cmd->data, reply,
                     reply ? NGX_MATRIX_REDIS_OK : NGX_MATRIX_REDIS_DOWN);
    }

    /* hiredis calls back exactly once per command: the record is free now */
    ngx_matrix_redis_cmd_free(cmd);
}


/*
 * A command outlived its timeout.  Its caller hears so now; the record stays
 * until hiredis calls back.  If nothing at all has come back since it was
 * sent, the connection is presumed dead (a stopped or unreachable server
 * does not always close the socket) and is dropped, which answers every
 * other command in flight too.
 */

static void
ngx_matrix_redis_timeout_handler(ngx_event_t *ev)
{
    ngx_matrix_redis_cmd_t   *cmd = ev->data;
    ngx_matrix_redis_conn_t  *rc;
    ngx_msec_t                sent;

    rc = &ngx_matrix_redis.cmd;
    sent = cmd->sent;

    cmd->done = 1;
    cmd->handler(cmd->data, NULL, NGX_MATRIX_REDIS_TIMEOUT);

    /* cmd may be gone from here on */

    if (rc->state == NGX_MATRIX_REDIS_READY
        && (ngx_msec_int_t) (rc->last_reply - sent) < 0)
    {
        ngx_matrix_redis_drop(rc, "no reply within the timeout");
    }
}


ngx_int_t
ngx_matrix_redis_command(ngx_matrix_redis_cmd_t **cmdp,
    ngx_matrix_redis_pt handler, void *data, int argc, const char **argv,
    const size_t *argvlen)
{
    ngx_matrix_redis_cmd_t   *cmd;
    ngx_matrix_redis_conn_t  *rc;

    rc = &ngx_matrix_redis.cmd;

    if (rc->state != NGX_MATRIX_REDIS_READY) {
        return NGX_DECLINED;
    }

    cmd = ngx_matrix_redis_cmd_alloc();
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;
    cmd->sent = ngx_current_msec;

    if (redisAsyncCommandArgv(rc->ac, ngx_matrix_redis_on_reply, cmd,
                              argc, argv, argvlen)
        != REDIS_OK)
    {
        ngx_queue_insert_head(&ngx_matrix_redis.free, &cmd->queue);
        return NGX_DECLINED;
    }

    cmd->timer.handler = ngx_matrix_redis_timeout_handler;
    cmd->timer.data = cmd;
    cmd->timer.log = ngx_matrix_redis.log;
    ngx_add_timer(&cmd->timer, ngx_matrix_redis.timeout);

    if (cmdp) {
        *cmdp = cmd;
    }

    return NGX_OK;
}


void
ngx_matrix_redis_cancel(ngx_matrix_redis_cmd_t *cmd)
{
    cmd->done = 1;

    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }
}


const char *
ngx_matrix_redis_unavailable(void)
{
    ngx_matrix_redis_conn_t  *rc;

    rc = &ngx_matrix_redis.cmd;

    if (rc->state == NGX_MATRIX_REDIS_READY) {
        return NULL;
    }

    return rc->why[0] ? (const char *) rc->why : "connecting";
}


/*
 * Worker start and exit.
 */

static void
ngx_matrix_redis_conn_init(ngx_matrix_redis_conn_t *rc, const char *name,
    unsigned subscriber)
{
    ngx_memzero(rc, sizeof(ngx_matrix_redis_conn_t));

    rc->name = name;
    rc->subscriber = subscriber;
    rc->backoff = NGX_MATRIX_REDIS_BACKOFF_MIN;

    rc->retry.handler = ngx_matrix_redis_retry_handler;
    rc->retry.data = rc;
    rc->retry.log = ngx_matrix_redis.log;
    rc->retry.cancelable = 1;

    rc->deadline.handler = ngx_matrix_redis_deadline_handler;
    rc->deadline.data = rc;
    rc->deadline.log = ngx_matrix_redis.log;
    rc->deadline.cancelable = 1;

    rc->verify.handler = ngx_matrix_redis_verify_handler;
    rc->verify.data = rc;
    rc->verify.log = ngx_matrix_redis.log;
    rc->verify.cancelable = 1;

    ngx_matrix_redis_why(rc, "connecting");
}


ngx_int_t
ngx_matrix_redis_init_worker(ngx_cycle_t *cycle, ngx_str_t *host,
    ngx_int_t port, ngx_str_t *path, ngx_msec_t timeout, ngx_str_t *channel,
    ngx_matrix_redis_msg_pt on_message)
{
    ngx_matrix_redis.log = cycle->log;
    ngx_matrix_redis.host = *host;
    ngx_matrix_redis.port = port;
    ngx_matrix_redis.path = *path;
    ngx_matrix_redis.timeout = timeout;
    ngx_matrix_redis.channel = *channel;
    ngx_matrix_redis.on_message = on_message;
    ngx_matrix_redis.exiting = 0;
    ngx_queue_init(&ngx_matrix_redis.free);

    ngx_matrix_redis_conn_init(&ngx_matrix_redis.cmd, "command", 0);
    ngx_matrix_redis_conn_init(&ngx_matrix_redis.sub, "subscriber", 1);

    ngx_matrix_redis_connect(&ngx_matrix_redis.cmd);
    ngx_matrix_redis_connect(&ngx_matrix_redis.sub);

    return NGX_OK;
}


void
ngx_matrix_redis_exit_worker(void)
{
    ngx_matrix_redis_conn_t  *conns[2];
    ngx_uint_t                i;

    ngx_matrix_redis.exiting = 1;
    conns[0] = &ngx_matrix_redis.cmd;
    conns[1] = &ngx_matrix_redis.sub;

    for (i = 0; i < 2; i++) {
        if (conns[i]->retry.timer_set) {
            ngx_del_timer(&conns[i]->retry);
        }

        if (conns[i]->verify.timer_set) {
            ngx_del_timer(&conns[i]->verify);
        }

        if (conns[i]->ac) {
            ngx_matrix_redis_drop(conns[i], "worker exiting");
        }
    }
}

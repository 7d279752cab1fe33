/*
 * Redis inside an nginx worker.
 *
 * Every worker keeps two connections, opened in init_worker:
 *
 *   command     pipelined commands, each with its own timer; before it takes
 *               commands it checks the version of the function library
 *   subscriber  SUBSCRIBE to this worker's reply channel (and whatever else
 *               registers); messages are dispatched by channel
 *
 * hiredis's async context is driven by nginx's event loop through the five
 * hooks of redisAsyncContext.ev.  Both connections reconnect on their own
 * with exponential backoff.  A command issued while the command connection
 * is not ready fails at once (the caller answers 503); a command in flight
 * when the connection drops, or that outlives its timeout, is answered with
 * an error status, never left hanging.
 */

#ifndef NGX_MATRIX_REDIS_H_INCLUDED_
#define NGX_MATRIX_REDIS_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


/* the syncer's wakeups, "<room_id> <user_id> ...", heard by every worker */
#define NGX_MATRIX_WAKE_CHANNEL   "mx:wake"

#define NGX_MATRIX_REDIS_OK       0
#define NGX_MATRIX_REDIS_TIMEOUT  1   /* no reply within the timeout */
#define NGX_MATRIX_REDIS_DOWN     2   /* connection lost or not ready */


typedef struct ngx_matrix_redis_cmd_s  ngx_matrix_redis_cmd_t;

/* reply is NULL unless status is NGX_MATRIX_REDIS_OK; it is freed after */
typedef void (*ngx_matrix_redis_pt)(void *data, redisReply *reply,
    ngx_uint_t status);

/* a message published on a subscribed channel */
typedef void (*ngx_matrix_redis_msg_pt)(ngx_str_t *channel,
    ngx_str_t *message);


ngx_int_t ngx_matrix_redis_init_worker(ngx_cycle_t *cycle,
    ngx_str_t *host, ngx_int_t port, ngx_str_t *path, ngx_msec_t timeout,
    ngx_str_t *channel, ngx_matrix_redis_msg_pt on_message);
void ngx_matrix_redis_exit_worker(void);

/*
 * Queue a command.  NGX_OK: the handler will be called exactly once, later,
 * never from inside this call.  NGX_DECLINED: Redis is not available now;
 * the handler will not be called.  *cmdp (may be NULL) receives a handle for
 * ngx_matrix_redis_cancel().
 */
ngx_int_t ngx_matrix_redis_command(ngx_matrix_redis_cmd_t **cmdp,
    ngx_matrix_redis_pt handler, void *data, int argc, const char **argv,
    const size_t *argvlen);

/* the handler of a queued command will not be called */
void ngx_matrix_redis_cancel(ngx_matrix_redis_cmd_t *cmd);

/* check the function library version now (a call found no function) */
void ngx_matrix_redis_recheck(void);

/* why commands are refused now, for the 503 body; NULL when ready */
const char *ngx_matrix_redis_unavailable(void);

#endif /* NGX_MATRIX_REDIS_H_INCLUDED_ */

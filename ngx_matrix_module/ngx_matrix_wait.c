/*
 * Requests parked until a daemon answers.
 *
 * A request that hands work to a daemon (an event to the roomserver, say)
 * registers a waiter: a number unique in this worker, with a timer.  The
 * entry it appends to a stream carries this worker's reply channel and the
 * number; the daemon publishes "<number> <answer>" on the channel, the
 * subscriber connection hands it here, and the request carries on with the
 * answer.  A timeout carries on with no answer; a client that goes away
 * takes its waiter with it (pool cleanup).
 *
 *   module                          Redis                      daemon
 *   ngx_matrix_wait() ── XADD ... reply=<channel> req=<n> ──►  works
 *        (parked)      ◄── PUBLISH <channel> "<n> <answer>" ──  answers
 *   done(mr, answer)
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"


typedef struct {
    ngx_rbtree_node_t     node;        /* key: the waiter's number */
    ngx_matrix_req_t     *mr;
    ngx_matrix_wait_pt    done;
    ngx_event_t           timer;
    unsigned              linked:1;
    unsigned              many:1;      /* several answers: done() returns
                                          NGX_AGAIN while it wants more */
} ngx_matrix_waiter_t;


static ngx_rbtree_t       ngx_matrix_waiters;
static ngx_rbtree_node_t  ngx_matrix_waiters_sentinel;
static ngx_uint_t         ngx_matrix_waiters_ready;
static uint64_t           ngx_matrix_waiter_next;
static ngx_str_t          ngx_matrix_reply_channel;


void
ngx_matrix_wait_init(ngx_str_t *channel)
{
    ngx_rbtree_init(&ngx_matrix_waiters, &ngx_matrix_waiters_sentinel,
                    ngx_rbtree_insert_value);
    ngx_matrix_waiters_ready = 1;
    ngx_matrix_waiter_next = (uint64_t) ngx_time() << 20;
    ngx_matrix_reply_channel = *channel;
}


ngx_str_t *
ngx_matrix_wait_channel(void)
{
    return &ngx_matrix_reply_channel;
}


static void
ngx_matrix_wait_unlink(ngx_matrix_waiter_t *w)
{
    if (w->linked) {
        ngx_rbtree_delete(&ngx_matrix_waiters, &w->node);
        w->linked = 0;
    }

    if (w->timer.timer_set) {
        ngx_del_timer(&w->timer);
    }
}


static void
ngx_matrix_wait_cleanup(void *data)
{
    ngx_matrix_wait_unlink(data);
}


static void
ngx_matrix_wait_timeout(ngx_event_t *ev)
{
    ngx_matrix_waiter_t  *w = ev->data;
    ngx_int_t             rc;

    ngx_matrix_wait_unlink(w);

    rc = w->done(w->mr, NULL);
    ngx_matrix_continue(w->mr, rc);
}


/*
 * Park the request.  *id receives the number to put in the stream entry
 * (with ngx_matrix_wait_channel()).  Returns NGX_OK; the caller returns
 * NGX_DONE once the entry is appended.
 */

ngx_int_t
ngx_matrix_wait(ngx_matrix_req_t *mr, ngx_msec_t timeout,
    ngx_matrix_wait_pt done, ngx_str_t *id)
{
    return ngx_matrix_wait_many(mr, timeout, done, id, 0);
}


/*
 * The same, for work whose answers come in several messages under one
 * number (each event of a federation transaction): with many, done() is
 * called for every message and returns NGX_AGAIN while it waits for more;
 * the timer runs over all of them.
 */

ngx_int_t
ngx_matrix_wait_many(ngx_matrix_req_t *mr, ngx_msec_t timeout,
    ngx_matrix_wait_pt done, ngx_str_t *id, ngx_uint_t many)
{
    ngx_matrix_waiter_t  *w;
    ngx_pool_cleanup_t   *cln;

    if (!ngx_matrix_waiters_ready) {
        return NGX_ERROR;
    }

    w = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_waiter_t));
    cln = ngx_pool_cleanup_add(mr->r->pool, 0);
    id->data = ngx_pnalloc(mr->r->pool, NGX_INT64_LEN);
    if (w == NULL || cln == NULL || id->data == NULL) {
        return NGX_ERROR;
    }

    w->mr = mr;
    w->done = done;
    w->many = many ? 1 : 0;
    w->node.key = (ngx_rbtree_key_t) ++ngx_matrix_waiter_next;

    w->timer.handler = ngx_matrix_wait_timeout;
    w->timer.data = w;
    w->timer.log = mr->r->connection->log;

    cln->handler = ngx_matrix_wait_cleanup;
    cln->data = w;

    ngx_rbtree_insert(&ngx_matrix_waiters, &w->node);
    w->linked = 1;
    ngx_add_timer(&w->timer, timeout);

    id->len = ngx_sprintf(id->data, "%uL", (uint64_t) w->node.key) - id->data;

    return NGX_OK;
}


/* the waiter of that number, or NULL */

static ngx_matrix_waiter_t *
ngx_matrix_wait_find(ngx_rbtree_key_t key)
{
    ngx_rbtree_node_t  *node, *sentinel;

    node = ngx_matrix_waiters.root;
    sentinel = ngx_matrix_waiters.sentinel;

    while (node != sentinel) {
        if (key == node->key) {
            return (ngx_matrix_waiter_t *) node;
        }

        node = key < node->key ? node->left : node->right;
    }

    return NULL;
}


/* forget a waiter whose entry could not be appended */

void
ngx_matrix_wait_cancel(ngx_matrix_req_t *mr, ngx_str_t *id)
{
    ngx_matrix_waiter_t  *w;

    w = ngx_matrix_wait_find((ngx_rbtree_key_t) ngx_atoi(id->data, id->len));

    if (w != NULL && w->mr == mr) {
        ngx_matrix_wait_unlink(w);
    }
}


/* a message on this worker's reply channel: "<number> <answer>" */

void
ngx_matrix_wait_message(ngx_str_t *message)
{
    u_char               *sp;
    ngx_int_t             n, rc;
    ngx_str_t             answer;
    ngx_matrix_waiter_t  *w;

    if (!ngx_matrix_waiters_ready) {
        return;
    }

    sp = ngx_strlchr(message->data, message->data + message->len, ' ');
    if (sp == NULL) {
        return;
    }

    n = ngx_atoi(message->data, sp - message->data);
    if (n == NGX_ERROR) {
        return;
    }

    w = ngx_matrix_wait_find((ngx_rbtree_key_t) n);
    if (w == NULL) {
        /* nobody waits for it any more: the request timed out or went
         * away */
        return;
    }

    if (!w->many) {
        ngx_matrix_wait_unlink(w);
    }

    answer.data = sp + 1;
    answer.len = message->data + message->len - answer.data;

    rc = w->done(w->mr, &answer);

    if (w->many) {
        if (rc == NGX_AGAIN) {
            return;
        }

        ngx_matrix_wait_unlink(w);
    }

    ngx_matrix_continue(w->mr, rc);
}

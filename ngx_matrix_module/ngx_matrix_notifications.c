/*
 * GET /notifications?from=&limit=&only=highlight: the events that notified
 * the user, newest first, across their rooms.
 *
 * They are what the syncer stored for the unread counts (lua/notify.lua,
 * mx_notifications): each with the actions of the rule that decided, the
 * event, whether the user's receipts are past it, the room and the
 * event's time.  next_token is the stream position of the last one given;
 * the next page is what is older.  A room keeps its newest 1000
 * notifications; redacted events are left out.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_event.h>

#include "ngx_matrix_module.h"


#define NGX_MATRIX_NOTIFICATIONS_LIMIT  20
#define NGX_MATRIX_NOTIFICATIONS_MAX    100


static ngx_int_t ngx_matrix_notifications_done(ngx_matrix_req_t *mr,
    redisReply *reply);


ngx_int_t
ngx_matrix_notifications(ngx_matrix_req_t *mr)
{
    ngx_str_t          from, limit, only, key;
    ngx_int_t          n;
    ngx_matrix_cmd_t   c;
    size_t             i;

    ngx_str_null(&from);
    ngx_str_null(&only);
    n = NGX_MATRIX_NOTIFICATIONS_LIMIT;

    if (ngx_matrix_arg(mr->r, "from", &from) == NGX_OK && from.len) {
        for (i = 0; i < from.len; i++) {
            if (from.data[i] < '0' || from.data[i] > '9') {
                break;
            }
        }

        if (i != from.len || from.len > 18) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM",
                                         "from is not a valid token.");
        }
    }

    if (ngx_matrix_arg(mr->r, "limit", &limit) == NGX_OK && limit.len) {
        n = ngx_atoi(limit.data, limit.len);
        if (n == NGX_ERROR || n == 0) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM",
                                         "limit must be a positive number.");
        }

        n = ngx_min(n, NGX_MATRIX_NOTIFICATIONS_MAX);
    }

    if (ngx_matrix_arg(mr->r, "only", &only) != NGX_OK
        || !(only.len == sizeof("highlight") - 1
             && ngx_strncmp(only.data, "highlight", only.len) == 0))
    {
        ngx_str_null(&only);
    }

    if (ngx_matrix_user_key(mr, &mr->user_id, "rooms", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_notifications", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, &from);

    if (ngx_matrix_cmd_int(mr, &c, n) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_cmd_str(&c, &only);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_notifications_done);
}


/* one {room_id, event_id, pdu, actions, read} as a Notification */

static mx_json_t *
ngx_matrix_notification(mx_pool_t *pool, redisReply *n)
{
    mx_json_t        *out, *pdu, *ev, *actions;
    mx_json_error_t   err;
    int64_t           ts;

    if (n->type != REDIS_REPLY_ARRAY || n->elements != 5) {
        return NULL;
    }

    pdu = mx_json_parse(pool, n->element[2]->str, n->element[2]->len, &err);
    actions = mx_json_parse(pool, n->element[3]->str, n->element[3]->len,
                            &err);
    if (pdu == NULL || !mx_json_is(actions, MX_JSON_ARRAY)) {
        return NULL;
    }

    ev = mx_event_client(pool, pdu, n->element[1]->str, n->element[0]->str);
    out = mx_json_object(pool);

    if (mx_json_get_int(pdu, "origin_server_ts", &ts) != 0) {
        ts = 0;
    }

    if (ev == NULL || out == NULL
        || mx_json_set(pool, out, "actions", actions) != 0
        || mx_json_set(pool, out, "event", ev) != 0
        || mx_json_set(pool, out, "read",
                       mx_json_bool(pool, n->element[4]->integer != 0)) != 0
        || mx_json_set(pool, out, "room_id",
                       mx_json_strn(pool, n->element[0]->str,
                                    n->element[0]->len)) != 0
        || mx_json_set_int(pool, out, "ts", ts) != 0)
    {
        return NULL;
    }

    return out;
}


static ngx_int_t
ngx_matrix_notifications_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t   *pool;
    mx_json_t   *out, *list, *n;
    redisReply  *next;
    size_t       i;

    pool = ngx_matrix_pool(mr);

    if (pool == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 1)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    out = mx_json_object(pool);
    list = mx_json_array(pool);

    if (out == NULL || list == NULL
        || mx_json_set(pool, out, "notifications", list) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 1; i < reply->elements; i++) {
        n = ngx_matrix_notification(pool, reply->element[i]);
        if (n != NULL && mx_json_append(pool, list, n) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    next = reply->element[0];

    if (next->type == REDIS_REPLY_STRING && next->len
        && mx_json_set(pool, out, "next_token",
                       mx_json_strn(pool, next->str, next->len)) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}

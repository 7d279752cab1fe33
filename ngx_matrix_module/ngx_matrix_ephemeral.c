/*
 * Typing notifications and receipts (lua/ephemeral.lua), delivered through
 * /sync as the rooms' ephemeral events.
 *
 *   PUT /rooms/{roomId}/typing/{userId}   {typing, timeout}
 *   POST /rooms/{roomId}/receipt/{receiptType}/{eventId}   {thread_id}
 *   POST /rooms/{roomId}/read_markers   {m.fully_read, m.read,
 *                                        m.read.private}
 *
 * A typing notification ends at its timeout: the worker that took it sets
 * a timer for then, which stops the typing that has run out (if the
 * worker goes away first, /sync still leaves expired typists out).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_ids.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


#define NGX_MATRIX_TYPING_DEFAULT  30000
#define NGX_MATRIX_TYPING_MAX      120000


typedef struct {
    ngx_event_t    timer;
    ngx_str_t      room;         /* allocated with the timer */
} ngx_matrix_typing_timer_t;


static void
ngx_matrix_typing_ignore(void *data, redisReply *reply, ngx_uint_t status)
{
    (void) data;
    (void) reply;
    (void) status;
}


/* a typing notification's time is up: whoever's has run out stops */

static void
ngx_matrix_typing_expire(ngx_event_t *ev)
{
    ngx_matrix_typing_timer_t  *t = ev->data;
    ngx_matrix_cmd_t            c;
    ngx_str_t                   key;
    u_char                      buf[600], now[NGX_INT64_LEN];

    if (t->room.len + sizeof("mx:{}:typing") <= sizeof(buf)) {
        key.data = buf;
        key.len = ngx_sprintf(buf, "mx:{%V}:typing", &t->room) - buf;

        ngx_matrix_fcall_init(&c, "mx_typing_expire", 1);
        ngx_matrix_cmd_str(&c, &key);
        ngx_matrix_cmd_str(&c, &t->room);
        ngx_matrix_cmd_add(&c, now,
                           ngx_sprintf(now, "%L", ngx_matrix_now_ms()) - now);

        (void) ngx_matrix_redis_command(NULL, ngx_matrix_typing_ignore, NULL,
                                        c.n, c.v, c.len);
    }

    ngx_free(t);
}


static void
ngx_matrix_typing_timer(ngx_matrix_req_t *mr, ngx_str_t *room,
    ngx_msec_t after)
{
    ngx_matrix_typing_timer_t  *t;

    t = ngx_alloc(sizeof(ngx_matrix_typing_timer_t) + room->len,
                  mr->r->connection->log);
    if (t == NULL) {
        return;
    }

    ngx_memzero(t, sizeof(ngx_matrix_typing_timer_t));
    t->room.data = (u_char *) (t + 1);
    t->room.len = room->len;
    ngx_memcpy(t->room.data, room->data, room->len);

    t->timer.handler = ngx_matrix_typing_expire;
    t->timer.data = t;
    t->timer.log = ngx_cycle->log;
    t->timer.cancelable = 1;        /* a worker shutting down drops it */

    ngx_add_timer(&t->timer, after + 50);
}


static ngx_int_t
ngx_matrix_ephemeral_empty(ngx_matrix_req_t *mr, redisReply *reply)
{
    (void) reply;

    return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
}


/* PUT /rooms/{roomId}/typing/{userId} */

ngx_int_t
ngx_matrix_typing(ngx_matrix_req_t *mr)
{
    ngx_str_t          *room, key;
    ngx_int_t           rc;
    ngx_matrix_cmd_t    c;
    mx_json_t          *v;
    int64_t             timeout;

    room = &mr->params[0];

    rc = ngx_matrix_check_own_user(mr, &mr->params[1], "set typing");
    if (rc != NGX_OK) {
        return rc;
    }

    if (!ngx_matrix_room_id_valid(room)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%V is not a valid room ID.", room);
    }

    v = mx_json_get(mr->body, "typing");
    if (!mx_json_is_bool(v)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "typing must be a"
                                     " boolean.");
    }

    timeout = 0;

    if (v->type == MX_JSON_TRUE) {
        timeout = NGX_MATRIX_TYPING_DEFAULT;

        if (mx_json_get(mr->body, "timeout") != NULL
            && (mx_json_get_int(mr->body, "timeout", &timeout) != 0
                || timeout < 0))
        {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "timeout must be a"
                                         " number of ms.");
        }

        timeout = ngx_min(timeout, NGX_MATRIX_TYPING_MAX);
        if (timeout == 0) {
            timeout = 1;
        }
    }

    key.len = sizeof("mx:{}:typing") - 1 + room->len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%V}:typing", room);

    ngx_matrix_fcall_init(&c, "mx_typing_set", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, room);
    ngx_matrix_cmd_str(&c, &mr->user_id);

    if (ngx_matrix_cmd_int(mr, &c, ngx_matrix_now_ms()) != NGX_OK
        || ngx_matrix_cmd_int(mr, &c, timeout) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the room's other servers get an m.typing EDU (lua/ephemeral.lua) */
    ngx_matrix_cmd_str(&c, &mr->mcf->server_name);

    if (timeout > 0) {
        ngx_matrix_typing_timer(mr, room, (ngx_msec_t) timeout);
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_ephemeral_empty);
}


/* POST /rooms/{roomId}/receipt/{receiptType}/{eventId} */

ngx_int_t
ngx_matrix_receipt(ngx_matrix_req_t *mr)
{
    ngx_str_t          *room, *type, *event, key, thread;
    ngx_matrix_cmd_t    c;
    const char         *th;
    size_t              len;

    room = &mr->params[0];
    type = &mr->params[1];
    event = &mr->params[2];

    if (!ngx_matrix_room_id_valid(room)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%V is not a valid room ID.", room);
    }

    if (!((type->len == 6 && ngx_strncmp(type->data, "m.read", 6) == 0)
          || (type->len == 14
              && ngx_strncmp(type->data, "m.read.private", 14) == 0)))
    {
        /* m.fully_read is a read marker, set through /read_markers */
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "Unknown receipt"
                                     " type %V.", type);
    }

    if (event->len == 0 || event->data[0] != '$' || event->len > 255) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "%V is not an event"
                                     " ID.", event);
    }

    ngx_str_null(&thread);
    th = mx_json_get_str(mr->body, "thread_id", &len);

    if (mx_json_get(mr->body, "thread_id") != NULL) {
        if (th == NULL || len == 0) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "thread_id must"
                                         " be main or an event ID.");
        }

        thread.data = (u_char *) th;
        thread.len = len;
    }

    key.len = sizeof("mx:{}:receipts") - 1 + room->len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%V}:receipts", room);

    ngx_matrix_fcall_init(&c, "mx_receipt_put", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, room);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, type);
    ngx_matrix_cmd_str(&c, event);
    ngx_matrix_cmd_str(&c, &thread);

    if (ngx_matrix_cmd_int(mr, &c, ngx_matrix_now_ms()) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_ephemeral_empty);
}


/* POST /rooms/{roomId}/read_markers */

ngx_int_t
ngx_matrix_read_markers(ngx_matrix_req_t *mr)
{
    static const char  *names[] = { "m.fully_read", "m.read",
                                    "m.read.private" };
    ngx_str_t          *room, key, ids[3];
    ngx_matrix_cmd_t    c;
    const char         *id;
    size_t              len, i;

    room = &mr->params[0];

    if (!ngx_matrix_room_id_valid(room)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%V is not a valid room ID.", room);
    }

    for (i = 0; i < 3; i++) {
        ngx_str_null(&ids[i]);

        if (mx_json_get(mr->body, names[i]) == NULL) {
            continue;
        }

        id = mx_json_get_str(mr->body, names[i], &len);
        if (id == NULL || len == 0 || id[0] != '$' || len > 255) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "%s must be an event"
                                         " ID.", names[i]);
        }

        ids[i].data = (u_char *) id;
        ids[i].len = len;
    }

    key.len = sizeof("mx:{}:receipts") - 1 + room->len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%V}:receipts", room);

    ngx_matrix_fcall_init(&c, "mx_read_markers", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, room);
    ngx_matrix_cmd_str(&c, &mr->user_id);

    for (i = 0; i < 3; i++) {
        ngx_matrix_cmd_str(&c, &ids[i]);
    }

    if (ngx_matrix_cmd_int(mr, &c, ngx_matrix_now_ms()) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_ephemeral_empty);
}


/*
 * PUT /sendToDevice/{eventType}/{txnId}: {"messages": {user_id: {device_id
 * or "*": content}}}.  Messages to users of other servers leave with
 * federation: mx_todevice_send puts them on mx:edus for the fedsender.
 */

ngx_int_t
ngx_matrix_send_to_device(ngx_matrix_req_t *mr)
{
    ngx_str_t          key;
    ngx_matrix_cmd_t   c;
    mx_pool_t         *pool;
    mx_json_t         *msgs, *devs;
    char              *content;
    size_t             i, j, len;

    pool = ngx_matrix_pool(mr);

    if (mr->params[0].len == 0 || mr->params[0].len > 255
        || mr->params[1].len == 0 || mr->params[1].len > 255)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "The event type and"
                                     " transaction ID are 1 to 255 bytes.");
    }

    msgs = mx_json_get(mr->body, "messages");
    if (!mx_json_is(msgs, MX_JSON_OBJECT)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "messages must be an"
                                     " object.");
    }

    key.len = sizeof("mx:{}:todevice_txn:") - 1 + mr->user_id.len
              + mr->device_id.len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%V}:todevice_txn:%V", &mr->user_id,
                &mr->device_id);

    ngx_matrix_fcall_init(&c, "mx_todevice_send", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, &mr->params[0]);
    ngx_matrix_cmd_str(&c, &mr->params[1]);
    ngx_matrix_cmd_str(&c, &mr->mcf->server_name);

    for (i = 0; i < msgs->u.o.n; i++) {
        devs = msgs->u.o.m[i].value;

        if (!mx_user_id_historical_valid(msgs->u.o.m[i].key,
                                         msgs->u.o.m[i].key_len)
            || !mx_json_is(devs, MX_JSON_OBJECT))
        {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "messages maps user"
                                         " IDs to objects of devices.");
        }

        for (j = 0; j < devs->u.o.n; j++) {
            if (!mx_json_is(devs->u.o.m[j].value, MX_JSON_OBJECT)) {
                return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                             "M_BAD_JSON", "A message's"
                                             " content is an object.");
            }

            content = mx_json_encode(pool, devs->u.o.m[j].value, 0, &len);
            if (content == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_matrix_cmd_add(&c, msgs->u.o.m[i].key,
                               msgs->u.o.m[i].key_len);
            ngx_matrix_cmd_add(&c, devs->u.o.m[j].key,
                               devs->u.o.m[j].key_len);
            ngx_matrix_cmd_add(&c, content, len);
        }
    }

    if (c.overflow) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_TOO_LARGE", "Too many messages in"
                                     " one request.");
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_ephemeral_empty);
}


/* presence: {presence, last_active_ago, status_msg, currently_active} */

mx_json_t *
ngx_matrix_presence_content(mx_pool_t *pool, const char *presence,
    size_t plen, const char *msg, size_t mlen, const char *active,
    size_t alen)
{
    mx_json_t  *c;
    int64_t     ts, ago;

    c = mx_json_object(pool);
    if (c == NULL
        || mx_json_set(pool, c, "presence", mx_json_strn(pool, presence, plen))
           != 0)
    {
        return NULL;
    }

    if (mlen && mx_json_set(pool, c, "status_msg",
                            mx_json_strn(pool, msg, mlen)) != 0)
    {
        return NULL;
    }

    if (alen) {
        ts = ngx_atoof((u_char *) active, alen);
        ago = ts > 0 ? ngx_matrix_now_ms() - ts : 0;

        if (mx_json_set_int(pool, c, "last_active_ago", ago < 0 ? 0 : ago)
            != 0
            || mx_json_set(pool, c, "currently_active",
                           mx_json_bool(pool, ago < 300000 && plen == 6
                                        && ngx_strncmp(presence, "online", 6)
                                           == 0)) != 0)
        {
            return NULL;
        }
    }

    return c;
}


static ngx_int_t
ngx_matrix_presence_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_json_t  *c;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    c = ngx_matrix_presence_content(ngx_matrix_pool(mr),
            reply->element[0]->str, reply->element[0]->len,
            reply->element[1]->type == REDIS_REPLY_STRING
            ? reply->element[1]->str : "",
            reply->element[1]->type == REDIS_REPLY_STRING
            ? reply->element[1]->len : 0,
            reply->element[2]->type == REDIS_REPLY_STRING
            ? reply->element[2]->str : "",
            reply->element[2]->type == REDIS_REPLY_STRING
            ? reply->element[2]->len : 0);

    if (c == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, c);
}


/* set presence; active: the user is active now */

ngx_int_t
ngx_matrix_presence_cmd(ngx_matrix_req_t *mr, ngx_matrix_cmd_t *c,
    ngx_str_t *presence, ngx_str_t *msg, ngx_uint_t active)
{
    ngx_str_t  key;

    if (ngx_matrix_user_key(mr, &mr->user_id, "presence", &key) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_matrix_fcall_init(c, "mx_presence_set", 1);
    ngx_matrix_cmd_str(c, &key);
    ngx_matrix_cmd_str(c, &mr->user_id);
    ngx_matrix_cmd_str(c, presence);

    if (msg) {
        ngx_matrix_cmd_str(c, msg);
    } else {
        ngx_matrix_cmd_add(c, "\0", 1);
    }

    if (ngx_matrix_cmd_int(mr, c, ngx_matrix_now_ms()) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_matrix_cmd_cstr(c, active ? "1" : "0");

    return NGX_OK;
}


/* GET and PUT /presence/{userId}/status */

ngx_int_t
ngx_matrix_presence(ngx_matrix_req_t *mr)
{
    ngx_str_t          *user, key, presence, msg;
    ngx_int_t           rc;
    ngx_matrix_cmd_t    c;
    const char         *p;
    mx_json_t          *v;
    size_t              len;

    user = &mr->params[0];

    if (!mx_user_id_historical_valid((char *) user->data, user->len)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "%V is not a user"
                                     " ID.", user);
    }

    if (mr->r->method == NGX_HTTP_GET) {
        if (ngx_matrix_user_key(mr, user, "presence", &key) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_matrix_fcall_init(&c, "mx_presence_get", 1);
        ngx_matrix_cmd_str(&c, &key);
        ngx_matrix_cmd_str(&c, user);
        ngx_matrix_cmd_str(&c, &mr->user_id);

        return ngx_matrix_cmd_send(mr, &c, ngx_matrix_presence_got);
    }

    rc = ngx_matrix_check_own_user(mr, user, "set presence");
    if (rc != NGX_OK) {
        return rc;
    }

    p = mx_json_get_str(mr->body, "presence", &len);
    if (p == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "presence must be"
                                     " online, unavailable or offline.");
    }

    presence.data = (u_char *) p;
    presence.len = len;

    v = mx_json_get(mr->body, "status_msg");
    if (v != NULL && v->type != MX_JSON_STRING && v->type != MX_JSON_NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "status_msg must be a"
                                     " string.");
    }

    ngx_str_null(&msg);
    if (v != NULL && v->type == MX_JSON_STRING) {
        msg.data = (u_char *) v->u.s.p;
        msg.len = v->u.s.len;
    }

    if (ngx_matrix_presence_cmd(mr, &c, &presence, v ? &msg : NULL, 1)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_ephemeral_empty);
}

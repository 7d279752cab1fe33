/*
 * Sending events: the module's half of the central flow.
 *
 *   PUT /rooms/{id}/send/{type}/{txnId}     a message event
 *   PUT /rooms/{id}/state/{type}[/{key}]    a state event
 *   POST /rooms/{id}/invite|kick|ban|unban|leave|join, POST /join/{id}
 *                                           a membership event
 *
 *   mx_room_prepare, one round trip: a txnId seen before gives its event
 *   (503 while the roomserver has not stored it yet); else the version,
 *   extremities and the auth state
 *        │
 *   mx_event_build (core): auth events, the auth rules against current
 *   state (403 at once), hashes, signature, event ID, size
 *        │  (an invite of another server's user is countersigned by that
 *        │  server first: ngx_matrix_fedinvite_out.c)
 *   a waiter for the verdict, then mx_room_submit: the transaction
 *   remembered and the event appended to mx:input:<shard>, atomically
 *        │
 *   the syncer's {"event_id"} once the event is visible to /sync, or the
 *   roomserver's {"status","errcode","error"}; no verdict in time: 503
 *
 * The verdict may come before the reply to mx_room_submit: whichever comes
 * second finds the request answered (the waiter's answer cancels the
 * command in flight).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_auth.h>
#include <mx_build.h>
#include <mx_ids.h>
#include <mx_room_version.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


#define NGX_MATRIX_VERDICT_TIMEOUT  10000


static ngx_int_t ngx_matrix_send_prepare(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_send_prepared(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_send_submitted(ngx_matrix_req_t *mr,
    redisReply *reply);
static void ngx_matrix_send_failed(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_send_verdict(ngx_matrix_req_t *mr,
    ngx_str_t *answer);


/* a NUL-terminated copy of an nginx string, from the core pool */

char *
ngx_matrix_cstr(ngx_matrix_req_t *mr, ngx_str_t *s)
{
    mx_pool_t  *pool;

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NULL;
    }

    return mx_pstrndup(pool, (char *) s->data, s->len);
}


ngx_matrix_send_t *
ngx_matrix_send_new(ngx_matrix_req_t *mr)
{
    ngx_matrix_send_t  *s;

    s = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_send_t));
    if (s == NULL) {
        return NULL;
    }

    mr->data = s;

    return s;
}


/* the key of a user's transactions on this device */

static ngx_int_t
ngx_matrix_txn_key(ngx_matrix_req_t *mr, ngx_str_t *key)
{
    u_char  *p;

    key->len = sizeof("mx:{}:txn:") - 1 + mr->user_id.len
               + mr->device_id.len;
    key->data = ngx_pnalloc(mr->r->pool, key->len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(key->data, "mx:{%V}:txn:%V", &mr->user_id,
                    &mr->device_id);
    key->len = p - key->data;

    return NGX_OK;
}


/* {"event_id": id} */

static ngx_int_t
ngx_matrix_send_event_id(ngx_matrix_req_t *mr, const char *id, size_t len)
{
    mx_pool_t  *pool;
    mx_json_t  *body;

    pool = ngx_matrix_pool(mr);
    body = pool ? mx_json_object(pool) : NULL;

    if (body == NULL
        || mx_json_set(pool, body, "event_id", mx_json_strn(pool, id, len))
           != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/*
 * Start a send whose fields (room, type, state key, content, txn) are set.
 * With a transaction ID, look it up first.
 */

ngx_int_t
ngx_matrix_send_start(ngx_matrix_req_t *mr)
{
    ngx_matrix_send_t  *s;

    s = mr->data;

    if (!mx_room_id_valid(s->room_id, ngx_strlen(s->room_id))) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%s is not a valid room ID.",
                                     s->room_id);
    }

    if (s->type[0] == '\0' || ngx_strlen(s->type) > 255) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "The event type must be 1 to 255"
                                     " bytes.");
    }

    if (s->state_key && ngx_strlen(s->state_key) > 255) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "The state key must be at most 255"
                                     " bytes.");
    }

    if (s->state_key && ngx_strcmp(s->type, "m.room.member") == 0) {
        if (!mx_user_id_historical_valid(s->state_key,
                                         ngx_strlen(s->state_key)))
        {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "The state key of"
                                         " a member event is a user ID.");
        }

        if (mx_json_get_str(s->content, "membership", NULL) == NULL) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "A member event needs"
                                         " a membership.");
        }
    }

    if (s->txn_id.len && ngx_matrix_txn_key(mr, &s->txn_key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_prepare(mr);
}


/*
 * A transaction seen before: {'txn', "<event_id>\n<room_id>", meta}.  The
 * event's ID once the roomserver has it; a refusal when it refused it; and
 * while it is still on its way, 503 so the client asks again.
 */

static ngx_int_t
ngx_matrix_send_txn_seen(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_send_t  *s;
    redisReply         *rec, *meta;
    u_char             *p, *end, *nl;
    size_t              room_len;

    s = mr->data;
    rec = reply->element[1];
    meta = reply->element[2];

    p = (u_char *) rec->str;
    end = p + rec->len;

    nl = ngx_strlchr(p, end, '\n');
    if (nl == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    room_len = end - (nl + 1);

    /* the same txnId in another room is another request (as Synapse) */
    if (room_len != ngx_strlen(s->room_id)
        || ngx_strncmp(nl + 1, s->room_id, room_len) != 0)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "This transaction ID was used for"
                                     " another room.");
    }

    if (meta->type != REDIS_REPLY_STRING) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "M_UNKNOWN", "The event of this"
                                     " transaction is still being processed;"
                                     " try again.");
    }

    /* meta: "<pos> <sg> <depth> <flags>", flags with r when rejected */
    if (ngx_strlchr((u_char *) meta->str, (u_char *) meta->str + meta->len,
                    'r'))
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                     "The event was refused by the room's"
                                     " rules.");
    }

    return ngx_matrix_send_event_id(mr, (char *) p, nl - p);
}


/* read what the event needs: one call of mx_room_prepare */

static ngx_int_t
ngx_matrix_send_prepare(ngx_matrix_req_t *mr)
{
    ngx_matrix_send_t    *s;
    ngx_matrix_cmd_t      c;
    ngx_str_t             key;
    mx_pool_t            *pool;
    mx_json_t            *draft;
    mx_auth_event_t      *view;
    mx_auth_key_t         keys[MX_AUTH_KEYS_MAX];
    const char           *why;
    char                 *k;
    size_t                i, n, tlen, slen;

    s = mr->data;
    pool = ngx_matrix_pool(mr);

    /*
     * The auth state to read: the selection of room version 11, which
     * names every key any version may need (create included).
     */

    draft = mx_json_object(pool);
    if (draft == NULL
        || mx_json_set_str(pool, draft, "type", s->type) != 0
        || mx_json_set_str(pool, draft, "sender", s->sender) != 0
        || mx_json_set_str(pool, draft, "room_id", s->room_id) != 0
        || (s->state_key
            && mx_json_set_str(pool, draft, "state_key", s->state_key) != 0)
        || mx_json_set(pool, draft, "content", s->content) != 0
        || mx_json_set(pool, draft, "prev_events", mx_json_array(pool)) != 0
        || mx_json_set(pool, draft, "auth_events", mx_json_array(pool)) != 0
        || mx_json_set_int(pool, draft, "origin_server_ts", 0) != 0
        || mx_json_set_int(pool, draft, "depth", 0) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    view = mx_auth_event_from_json(pool, draft, "$", &why);
    if (view == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "%s", why);
    }

    n = mx_auth_keys(mx_room_version("11", 2), view, keys);

    key.len = sizeof("mx:{}:room") - 1 + ngx_strlen(s->room_id);
    key.data = ngx_pnalloc(mr->r->pool, key.len + 1);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%s}:room", s->room_id);

    ngx_matrix_fcall_init(&c, "mx_room_prepare", s->txn_id.len ? 2 : 1);
    ngx_matrix_cmd_str(&c, &key);
    if (s->txn_id.len) {
        ngx_matrix_cmd_str(&c, &s->txn_key);
    }
    ngx_matrix_cmd_cstr(&c, s->room_id);
    ngx_matrix_cmd_str(&c, &s->txn_id);

    for (i = 0; i < n; i++) {
        tlen = ngx_strlen(keys[i].type);
        slen = ngx_strlen(keys[i].state_key);

        k = mx_palloc(pool, tlen + 1 + slen);
        if (k == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(k, keys[i].type, tlen);
        k[tlen] = '\037';
        ngx_memcpy(k + tlen + 1, keys[i].state_key, slen);

        ngx_matrix_cmd_add(&c, k, tlen + 1 + slen);
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_send_prepared);
}


/* an event as Redis holds it: parsed, with its ID, as the rules see it */

const mx_auth_event_t *
ngx_matrix_room_event(ngx_matrix_req_t *mr, const mx_room_version_t *rv,
    const char *id, size_t id_len, const char *pdu, size_t pdu_len)
{
    mx_pool_t        *pool;
    mx_json_t        *json;
    mx_json_error_t   err;
    const char       *why;

    (void) rv;

    pool = ngx_matrix_pool(mr);

    json = mx_json_parse(pool, pdu, pdu_len, &err);
    if (json == NULL) {
        ngx_log_error(NGX_LOG_ERR, mr->r->connection->log, 0,
                      "matrix: stored event %*s is not JSON: %s",
                      id_len, id, err.msg);
        return NULL;
    }

    return mx_auth_event_from_json(pool, json, mx_pstrndup(pool, id, id_len),
                                   &why);
}


/*
 * {version, depth, {extremity_id, pdu, ...}, {key, event_id, pdu, ...}}
 * or nil for a room this server does not have.
 */

static ngx_int_t
ngx_matrix_send_prepared(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_send_t       *s;
    mx_pool_t               *pool;
    redisReply              *ex, *st;
    const mx_auth_event_t   *ev;
    size_t                   i;

    s = mr->data;
    pool = ngx_matrix_pool(mr);

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 3
        && reply->element[0]->type == REDIS_REPLY_STRING)
    {
        return ngx_matrix_send_txn_seen(mr, reply);
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        if (s->quiet) {
            return s->done(mr, NULL, 0);
        }

        if (s->unknown) {
            return s->unknown(mr);
        }

        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     "Unknown room %s.", s->room_id);
    }

    s->rv = mx_room_version(reply->element[0]->str, reply->element[0]->len);
    if (s->rv == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     "M_UNKNOWN", "The room's version is"
                                     " unknown to this server.");
    }

    ex = reply->element[2];
    st = reply->element[3];

    s->state = mx_state_create(pool, 8);
    s->prev = mx_palloc(pool, (ex->elements / 2 + 1) * sizeof(void *));
    if (s->state == NULL || s->prev == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->n_prev = 0;

    for (i = 0; i + 1 < ex->elements && s->n_prev < MX_EVENT_MAX_PREV;
         i += 2)
    {
        ev = ngx_matrix_room_event(mr, s->rv, ex->element[i]->str,
                                   ex->element[i]->len,
                                   ex->element[i + 1]->str,
                                   ex->element[i + 1]->len);
        if (ev != NULL) {
            s->prev[s->n_prev++] = ev;
        }
    }

    for (i = 0; i + 2 < st->elements; i += 3) {
        ev = ngx_matrix_room_event(mr, s->rv, st->element[i + 1]->str,
                                   st->element[i + 1]->len,
                                   st->element[i + 2]->str,
                                   st->element[i + 2]->len);
        if (ev != NULL && ev->state_key != NULL
            && mx_state_put(s->state, ev) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (s->prepared) {
        return s->prepared(mr);
    }

    ngx_matrix_lane_apply(mr, s);

    return ngx_matrix_send_build(mr);
}


/* build, check and sign the event on top of s->prev and s->state */

ngx_int_t
ngx_matrix_send_build(ngx_matrix_req_t *mr)
{
    ngx_matrix_send_t  *s;
    mx_build_t          b;
    mx_build_rc_t       rc;
    mx_pool_t          *pool;
    mx_auth_event_t    *view;
    ngx_int_t           sent;
    const char         *why;
    char               *id;

    s = mr->data;
    pool = ngx_matrix_pool(mr);

    if (s->n == NGX_MATRIX_SEND_MAX) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * Redacting another's event takes the "redact" power level (the auth
     * rules leave that check to whoever applies the redaction).
     */
    if (s->redacts_sender != NULL
        && ngx_strcmp(s->redacts_sender, s->sender) != 0)
    {
        const mx_auth_event_t  *create, *pl;
        int64_t                 need, have;

        create = mx_state_get(s->state, "m.room.create", "");
        pl = mx_state_get(s->state, "m.room.power_levels", "");

        need = 50;
        if (pl != NULL && mx_json_get(pl->content, "redact") != NULL
            && mx_auth_pl_value(s->rv, mx_json_get(pl->content, "redact"),
                                &need) != 0)
        {
            need = 50;
        }

        have = mx_auth_user_level(s->rv, create, pl, s->sender);

        if (have < need) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN,
                                         "M_FORBIDDEN", "You may not redact"
                                         " other users' events.");
        }
    }

    ngx_memzero(&b, sizeof(mx_build_t));
    b.rv = s->rv;
    b.room_id = s->room_id[0] ? s->room_id : NULL;
    b.sender = s->sender;
    b.type = s->type;
    b.state_key = s->state_key;
    b.content = s->content;
    b.redacts = s->redacts;
    b.prev = s->prev;
    b.n_prev = s->n_prev;
    b.lookup = mx_state_lookup;
    b.ctx = s->state;
    b.ts = ngx_matrix_now_ms();
    b.origin = (char *) mr->mcf->server_name.data;
    b.key = mr->mcf->signing_key;

    rc = mx_event_build(pool, &b, &s->pdus[s->n], &id, &view, &why);

    if (rc != MX_BUILD_OK && s->quiet) {
        return s->done(mr, NULL, 0);
    }

    switch (rc) {

    case MX_BUILD_OK:
        break;

    case MX_BUILD_DENIED:
        return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                     "%s", mx_auth_reason_text(why));

    case MX_BUILD_TOO_LARGE:
        return ngx_matrix_send_error(mr->r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                     "M_TOO_LARGE", "The event would be"
                                     " larger than 65536 bytes.");

    case MX_BUILD_BAD:
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "%s", why);

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->ids[s->n++] = id;

    /* an invite of another server's user: countersigned there first */
    sent = ngx_matrix_fed_invite_out(mr, view);
    if (sent != NGX_DECLINED) {
        return sent;
    }

    ngx_matrix_lane_built(s, view);

    /* the next event of a chain (createRoom) goes on top of this one */
    s->last = view;
    s->prev = &s->last;
    s->n_prev = 1;

    if (view->state_key != NULL && mx_state_put(s->state, view) != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (s->chain) {
        return NGX_OK;
    }

    return ngx_matrix_send_submit(mr);
}


/* park the request for the verdict, then append the events */

ngx_int_t
ngx_matrix_send_submit(ngx_matrix_req_t *mr)
{
    ngx_matrix_send_t  *s;
    ngx_matrix_cmd_t    c;
    ngx_str_t           input, req, record;
    mx_pool_t          *pool;
    ngx_uint_t          i;
    size_t              len, rlen;
    char               *pdu, *last_pdu;
    u_char             *p;
    const char         *room_id;

    s = mr->data;
    pool = ngx_matrix_pool(mr);

    /* v12: the room ID is known once the create event is built */
    room_id = s->room_id[0] ? s->room_id
                            : mx_event_room_id(pool, s->pdus[0], s->rv);
    if (room_id == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->room_id = room_id;

    if (ngx_matrix_input_key(mr, (u_char *) room_id, ngx_strlen(room_id),
                             &input)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_null(&req);

    if (!s->nowait
        && ngx_matrix_wait(mr, NGX_MATRIX_VERDICT_TIMEOUT,
                           ngx_matrix_send_verdict, &req)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->req = req;

    ngx_matrix_fcall_init(&c, "mx_room_submit", s->txn_id.len ? 2 : 1);
    ngx_matrix_cmd_str(&c, &input);
    if (s->txn_id.len) {
        ngx_matrix_cmd_str(&c, &s->txn_key);
    }

    ngx_matrix_cmd_cstr(&c, room_id);
    ngx_matrix_cmd_cstr(&c, s->rv->id);

    if (s->nowait) {
        ngx_matrix_cmd_cstr(&c, "");
    } else {
        ngx_matrix_cmd_str(&c, ngx_matrix_wait_channel());
    }

    ngx_matrix_cmd_str(&c, &req);
    ngx_matrix_cmd_str(&c, &s->txn_id);

    last_pdu = NULL;
    len = 0;

    for (i = 0; i < s->n; i++) {
        pdu = mx_json_encode(pool, s->pdus[i], mx_event_json_flags(s->rv),
                             &len);
        if (pdu == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (i == 0) {
            /* the record of the transaction: its event and room */
            rlen = ngx_strlen(s->ids[0]) + 1 + ngx_strlen(room_id);
            record.data = ngx_pnalloc(mr->r->pool, rlen);
            if (record.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            p = ngx_sprintf(record.data, "%s\n%s", s->ids[0], room_id);
            record.len = p - record.data;

            ngx_matrix_cmd_str(&c, &record);
        }

        ngx_matrix_cmd_cstr(&c, s->ids[i]);
        ngx_matrix_cmd_add(&c, pdu, len);
        last_pdu = pdu;
    }

    if (last_pdu == NULL || c.overflow) {
        if (!s->nowait) {
            ngx_matrix_wait_cancel(mr, &req);
        }
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->failed = ngx_matrix_send_failed;

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_send_submitted);
}


/* the append may not have happened: the room's lane ends here */

static void
ngx_matrix_send_failed(ngx_matrix_req_t *mr)
{
    ngx_matrix_send_t  *s;

    s = mr->data;

    ngx_matrix_lane_close(s->room_id);
}


static ngx_int_t
ngx_matrix_send_submitted(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_send_t  *s;

    (void) reply;

    s = mr->data;
    mr->failed = NULL;

    if (s->nowait) {
        return s->done(mr, s->ids[s->n - 1], ngx_strlen(s->ids[s->n - 1]));
    }

    /* appended: the request stays parked until the verdict */
    return NGX_DONE;
}


/* the roomserver's or the syncer's answer, or NULL on timeout */

static ngx_int_t
ngx_matrix_send_verdict(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_send_t  *s;
    mx_pool_t          *pool;
    mx_json_t          *v;
    mx_json_error_t     err;
    const char         *id, *errcode, *error;
    size_t              id_len;
    int64_t             status;

    s = mr->data;

    /* the submit's reply may still be on its way: it is not needed now */
    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    mr->failed = NULL;

    if (answer == NULL) {
        ngx_matrix_lane_close(s->room_id);
    }

    if (answer == NULL && s->quiet) {
        return s->done(mr, NULL, 0);
    }

    if (answer == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "M_UNKNOWN", "The room server did not"
                                     " answer in time; retry with the same"
                                     " transaction ID.");
    }

    pool = ngx_matrix_pool(mr);
    v = mx_json_parse(pool, (char *) answer->data, answer->len, &err);

    id = mx_json_get_str(v, "event_id", &id_len);

    if (id == NULL) {
        /* refused: the events built on it may be too */
        ngx_matrix_lane_close(s->room_id);
    }

    if (id == NULL && s->quiet) {
        return s->done(mr, NULL, 0);
    }

    if (id != NULL) {
        if (s->done) {
            return s->done(mr, id, id_len);
        }

        return ngx_matrix_send_event_id(mr, id, id_len);
    }

    if (mx_json_get_int(v, "status", &status) == 0
        && status >= 400 && status < 600
        && (errcode = mx_json_get_str(v, "errcode", NULL)) != NULL)
    {
        error = mx_json_get_str(v, "error", NULL);

        return ngx_matrix_send_error(mr->r, (ngx_uint_t) status, errcode,
                                     "%s", error ? error : "");
    }

    ngx_log_error(NGX_LOG_ERR, mr->r->connection->log, 0,
                  "matrix: unexpected verdict \"%V\"", answer);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* --- the endpoints ------------------------------------------------------ */

static ngx_int_t
ngx_matrix_send_common(ngx_matrix_req_t *mr, ngx_str_t *room_id,
    ngx_str_t *type, ngx_str_t *state_key)
{
    ngx_matrix_send_t  *s;

    s = ngx_matrix_send_new(mr);
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->room_id = ngx_matrix_cstr(mr, room_id);
    s->type = ngx_matrix_cstr(mr, type);
    s->state_key = state_key ? ngx_matrix_cstr(mr, state_key) : NULL;
    s->sender = ngx_matrix_cstr(mr, &mr->user_id);
    s->content = mr->body;

    if (s->room_id == NULL || s->type == NULL || s->sender == NULL
        || (state_key && s->state_key == NULL))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/* PUT /rooms/{roomId}/send/{eventType}/{txnId} */

ngx_int_t
ngx_matrix_room_send(ngx_matrix_req_t *mr)
{
    ngx_int_t           rc;
    ngx_matrix_send_t  *s;

    rc = ngx_matrix_send_common(mr, &mr->params[0], &mr->params[1], NULL);
    if (rc != NGX_OK) {
        return rc;
    }

    s = mr->data;

    if (mr->params[2].len == 0 || mr->params[2].len > 255) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "The transaction ID"
                                     " must be 1 to 255 bytes.");
    }

    s->txn_id = mr->params[2];

    return ngx_matrix_send_start(mr);
}


/* PUT /rooms/{roomId}/state/{eventType}[/{stateKey}] */

ngx_int_t
ngx_matrix_room_state_put(ngx_matrix_req_t *mr)
{
    ngx_str_t   empty = ngx_null_string;
    ngx_str_t  *state_key;
    ngx_int_t   rc;

    state_key = mr->nparams == 3 ? &mr->params[2] : &empty;

    rc = ngx_matrix_send_common(mr, &mr->params[0], &mr->params[1],
                                state_key);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_matrix_send_start(mr);
}

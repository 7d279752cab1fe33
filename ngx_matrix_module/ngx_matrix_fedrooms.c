/*
 * Serving rooms to other servers (lua/rooms_fed.lua does the reads, one
 * call per request):
 *
 *   GET  /_matrix/federation/v1/state/{roomId}?event_id=
 *   GET  /_matrix/federation/v1/state_ids/{roomId}?event_id=
 *   GET  /_matrix/federation/v1/event/{eventId}
 *   GET  /_matrix/federation/v1/event_auth/{roomId}/{eventId}
 *   GET  /_matrix/federation/v1/backfill/{roomId}?v=..&limit=
 *   POST /_matrix/federation/v1/get_missing_events/{roomId}
 *   GET  /_matrix/federation/v1/query/directory?room_alias=
 *
 * The requests are signed (NGX_MATRIX_FED): mr->origin is the server.
 * The room functions answer {acl, status, ...}; the room's server ACL is
 * checked here first (core/mx_acl), so a denied server hears 403 whatever
 * else is wrong, then the status the function chose (404 unknown room or
 * event, 403 a server that may not see it).  Events go out as stored, in
 * the federation format, redacted when the room redacted them or when the
 * server may not see them (backfill and get_missing_events keep them in
 * the answer so the graph stays whole, as Synapse does).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_acl.h>
#include <mx_event.h>
#include <mx_ids.h>
#include <mx_room_version.h>

#include "ngx_matrix_module.h"


#define NGX_MATRIX_FED_ID_MAX         255    /* bytes of an event ID */
#define NGX_MATRIX_BACKFILL_MAX       100    /* events of one backfill */
#define NGX_MATRIX_MISSING_MAX        20     /* of get_missing_events */
#define NGX_MATRIX_MISSING_DEFAULT    10
#define NGX_MATRIX_FED_FROM_MAX       100    /* v, latest_events */
#define NGX_MATRIX_FED_EARLIEST_MAX   1000   /* earliest_events */


static ngx_int_t ngx_matrix_fed_state_do(ngx_matrix_req_t *mr,
    ngx_uint_t ids);


/* an event ID as a request may name one; else the error is answered */

static ngx_int_t
ngx_matrix_fed_id_check(ngx_matrix_req_t *mr, ngx_str_t *id)
{
    if (id->len == 0 || id->len > NGX_MATRIX_FED_ID_MAX || id->data[0] != '$'
        || ngx_strlchr(id->data, id->data + id->len, '\n') != NULL)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%V is not a valid event ID.", id);
    }

    return NGX_OK;
}


/*
 * Does the room's server ACL let the origin in?  acl is the room's
 * m.room.server_acl PDU as stored (empty: the room has none).  An ACL
 * whose content is not an object allows nobody.  NGX_OK allowed,
 * NGX_DECLINED denied, NGX_ERROR.
 */

ngx_int_t
ngx_matrix_fed_acl_check(ngx_matrix_req_t *mr, const char *acl, size_t len)
{
    mx_pool_t        *pool;
    mx_json_t        *ev, *content;
    mx_json_error_t   err;
    int               ok;

    if (len == 0) {
        return NGX_OK;
    }

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    ev = mx_json_parse(pool, acl, len, &err);
    content = ev ? mx_json_get_obj(ev, "content") : NULL;
    if (content == NULL) {
        content = mx_json_object(pool);
        if (content == NULL) {
            return NGX_ERROR;
        }
    }

    ok = mx_acl_allowed(pool, content, (char *) mr->origin.data,
                        mr->origin.len);

    return ok < 0 ? NGX_ERROR : (ok ? NGX_OK : NGX_DECLINED);
}


/* the answer to a server the room's ACL denies */

ngx_int_t
ngx_matrix_fed_acl_denied(ngx_matrix_req_t *mr)
{
    return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                 "Server is banned from the room by its"
                                 " server ACL");
}


/* FCALL mx_fed_acl for one room (the endpoints of membership); a room ID
 * that is not one: 400 */

ngx_int_t
ngx_matrix_fed_acl_ask(ngx_matrix_req_t *mr, ngx_str_t *room,
    ngx_matrix_reply_pt handler)
{
    ngx_matrix_cmd_t  c;
    ngx_str_t         key;
    ngx_int_t         rc;

    rc = ngx_matrix_room_key(mr, room, &key);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_matrix_fcall_init(&c, "mx_fed_acl", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, room);

    return ngx_matrix_cmd_send(mr, &c, handler);
}


/*
 * Its reply, {{version or '', acl}}: NGX_OK with the room's version when
 * the room is here and its ACL lets the origin in; else NGX_ERROR, the
 * answer (404, 403) given and *rc what to return.  With room NULL, a room
 * that is not here is no error: NGX_DECLINED, nothing answered.
 */

ngx_int_t
ngx_matrix_fed_acl_reply(ngx_matrix_req_t *mr, redisReply *reply,
    ngx_str_t *room, const mx_room_version_t **rv, ngx_int_t *rc)
{
    redisReply  *one;
    ngx_int_t    ok;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 1
        || reply->element[0]->type != REDIS_REPLY_ARRAY
        || reply->element[0]->elements != 2
        || reply->element[0]->element[0]->type != REDIS_REPLY_STRING
        || reply->element[0]->element[1]->type != REDIS_REPLY_STRING)
    {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    one = reply->element[0];

    if (one->element[0]->len == 0) {
        if (room == NULL) {
            return NGX_DECLINED;
        }

        *rc = ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                    "Unknown room %V.", room);
        return NGX_ERROR;
    }

    ok = ngx_matrix_fed_acl_check(mr, one->element[1]->str,
                                  one->element[1]->len);
    if (ok != NGX_OK) {
        *rc = ok == NGX_DECLINED ? ngx_matrix_fed_acl_denied(mr)
                                 : NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    *rv = mx_room_version(one->element[0]->str, one->element[0]->len);
    if (*rv == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The head of a room function's reply: the server ACL, then the status.
 * NGX_OK to go on with the data, else what the answer returned.
 */

static ngx_int_t
ngx_matrix_fed_checked(ngx_matrix_req_t *mr, redisReply *reply)
{
    redisReply  *st;
    ngx_int_t    rc;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_INTEGER)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_matrix_fed_acl_check(mr, reply->element[0]->str,
                                  reply->element[0]->len);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_matrix_fed_acl_denied(mr);
    }

    st = reply->element[1];

    if (st->integer != 0) {
        if (reply->elements < 4 || st->integer < 400 || st->integer > 599
            || reply->element[2]->type != REDIS_REPLY_STRING
            || reply->element[3]->type != REDIS_REPLY_STRING)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_matrix_send_error(mr->r, (ngx_uint_t) st->integer,
                                     reply->element[2]->str, "%s",
                                     reply->element[3]->str);
    }

    return NGX_OK;
}


/* the room version of a reply's element */

static const mx_room_version_t *
ngx_matrix_fed_version(redisReply *v)
{
    if (v->type != REDIS_REPLY_STRING) {
        return mx_room_version("1", 1);
    }

    return mx_room_version(v->str, v->len);
}


/* a stored PDU as JSON, redacted when flag says "1"; NULL on failure */

static mx_json_t *
ngx_matrix_fed_pdu(mx_pool_t *pool, redisReply *pdu, redisReply *flag,
    const mx_room_version_t *rv)
{
    mx_json_t        *ev;
    mx_json_error_t   err;

    if (pdu->type != REDIS_REPLY_STRING) {
        return NULL;
    }

    ev = mx_json_parse(pool, pdu->str, pdu->len, &err);
    if (ev == NULL || ev->type != MX_JSON_OBJECT) {
        return NULL;
    }

    if (flag != NULL && flag->type == REDIS_REPLY_STRING && flag->len == 1
        && flag->str[0] == '1')
    {
        ev = mx_event_redact(pool, ev, rv);
    }

    return ev;
}


/*
 * (id, pdu, redact) triples into an array of PDUs; a PDU that does not
 * parse (none should) is left out.  NGX_ERROR without memory.
 */

static ngx_int_t
ngx_matrix_fed_pdus(mx_pool_t *pool, redisReply *list,
    const mx_room_version_t *rv, mx_json_t *arr)
{
    mx_json_t  *ev;
    size_t      i;

    if (list->type != REDIS_REPLY_ARRAY) {
        return NGX_ERROR;
    }

    for (i = 0; i + 2 < list->elements; i += 3) {
        ev = ngx_matrix_fed_pdu(pool, list->element[i + 1],
                                list->element[i + 2], rv);
        if (ev != NULL && mx_json_append(pool, arr, ev) != 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* a list of IDs as a JSON array */

static mx_json_t *
ngx_matrix_fed_ids(mx_pool_t *pool, redisReply *list)
{
    mx_json_t  *arr;
    size_t      i;

    arr = mx_json_array(pool);
    if (arr == NULL || list->type != REDIS_REPLY_ARRAY) {
        return NULL;
    }

    for (i = 0; i < list->elements; i++) {
        if (list->element[i]->type == REDIS_REPLY_STRING
            && mx_json_append(pool, arr,
                              mx_json_strn(pool, list->element[i]->str,
                                           list->element[i]->len)) != 0)
        {
            return NULL;
        }
    }

    return arr;
}


/* a transaction of PDUs: {origin, origin_server_ts, pdus} */

static ngx_int_t
ngx_matrix_fed_send_txn(ngx_matrix_req_t *mr, mx_json_t *pdus)
{
    mx_pool_t  *pool;
    mx_json_t  *body;

    pool = ngx_matrix_pool(mr);
    body = mx_json_object(pool);

    if (body == NULL
        || mx_json_set(pool, body, "origin",
                       mx_json_strn(pool, (char *) mr->mcf->server_name.data,
                                    mr->mcf->server_name.len)) != 0
        || mx_json_set_int(pool, body, "origin_server_ts",
                           ngx_matrix_now_ms()) != 0
        || mx_json_set(pool, body, "pdus", pdus) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/* GET /state/{roomId} and /state_ids/{roomId}: the state before an event */

ngx_int_t
ngx_matrix_fed_state(ngx_matrix_req_t *mr)
{
    return ngx_matrix_fed_state_do(mr, 0);
}


ngx_int_t
ngx_matrix_fed_state_ids(ngx_matrix_req_t *mr)
{
    return ngx_matrix_fed_state_do(mr, 1);
}


/* mx_fed_state: {acl, 0, version, {state}, {auth chain}} */

static ngx_int_t
ngx_matrix_fed_state_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_int_t                 rc;
    mx_pool_t                *pool;
    mx_json_t                *body, *state, *chain;
    const mx_room_version_t  *rv;

    rc = ngx_matrix_fed_checked(mr, reply);
    if (rc != NGX_OK) {
        return rc;
    }

    if (reply->elements != 5) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pool = ngx_matrix_pool(mr);
    body = mx_json_object(pool);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mr->data != NULL) {
        state = ngx_matrix_fed_ids(pool, reply->element[3]);
        chain = ngx_matrix_fed_ids(pool, reply->element[4]);

        if (state == NULL || chain == NULL
            || mx_json_set(pool, body, "pdu_ids", state) != 0
            || mx_json_set(pool, body, "auth_chain_ids", chain) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
    }

    rv = ngx_matrix_fed_version(reply->element[2]);
    state = mx_json_array(pool);
    chain = mx_json_array(pool);

    if (rv == NULL || state == NULL || chain == NULL
        || ngx_matrix_fed_pdus(pool, reply->element[3], rv, state) != NGX_OK
        || ngx_matrix_fed_pdus(pool, reply->element[4], rv, chain) != NGX_OK
        || mx_json_set(pool, body, "pdus", state) != 0
        || mx_json_set(pool, body, "auth_chain", chain) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


static ngx_int_t
ngx_matrix_fed_state_do(ngx_matrix_req_t *mr, ngx_uint_t ids)
{
    ngx_str_t          key, event_id;
    ngx_int_t          rc;
    ngx_matrix_cmd_t   c;

    rc = ngx_matrix_room_key(mr, &mr->params[0], &key);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_matrix_arg(mr->r, "event_id", &event_id);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED || event_id.len == 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_MISSING_PARAM", "Missing event_id");
    }

    rc = ngx_matrix_fed_id_check(mr, &event_id);
    if (rc != NGX_OK) {
        return rc;
    }

    mr->data = ids ? (void *) mr : NULL;

    ngx_matrix_fcall_init(&c, "mx_fed_state", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->params[0]);
    ngx_matrix_cmd_str(&c, &mr->origin);
    ngx_matrix_cmd_str(&c, &event_id);
    ngx_matrix_cmd_cstr(&c, ids ? "ids" : "pdus");

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_state_got);
}


/* GET /event/{eventId}: {acl, 0, version, room_id, pdu, redact} */

static ngx_int_t
ngx_matrix_fed_event_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_int_t                 rc;
    mx_pool_t                *pool;
    mx_json_t                *pdus, *ev;
    const mx_room_version_t  *rv;

    rc = ngx_matrix_fed_checked(mr, reply);
    if (rc != NGX_OK) {
        return rc;
    }

    if (reply->elements != 6) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pool = ngx_matrix_pool(mr);
    rv = ngx_matrix_fed_version(reply->element[2]);
    pdus = mx_json_array(pool);
    ev = rv ? ngx_matrix_fed_pdu(pool, reply->element[4], reply->element[5],
                                 rv)
            : NULL;

    if (pdus == NULL || ev == NULL || mx_json_append(pool, pdus, ev) != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_fed_send_txn(mr, pdus);
}


ngx_int_t
ngx_matrix_fed_event(ngx_matrix_req_t *mr)
{
    ngx_int_t          rc;
    ngx_matrix_cmd_t   c;

    rc = ngx_matrix_fed_id_check(mr, &mr->params[0]);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_matrix_fcall_init(&c, "mx_fed_event", 1);
    ngx_matrix_cmd_cstr(&c, "mx:eventroom");
    ngx_matrix_cmd_str(&c, &mr->params[0]);
    ngx_matrix_cmd_str(&c, &mr->origin);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_event_got);
}


/* GET /event_auth/{roomId}/{eventId}: {acl, 0, version, {chain}} */

static ngx_int_t
ngx_matrix_fed_event_auth_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_int_t                 rc;
    mx_pool_t                *pool;
    mx_json_t                *body, *chain;
    const mx_room_version_t  *rv;

    rc = ngx_matrix_fed_checked(mr, reply);
    if (rc != NGX_OK) {
        return rc;
    }

    if (reply->elements != 4) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pool = ngx_matrix_pool(mr);
    rv = ngx_matrix_fed_version(reply->element[2]);
    body = mx_json_object(pool);
    chain = mx_json_array(pool);

    if (rv == NULL || body == NULL || chain == NULL
        || ngx_matrix_fed_pdus(pool, reply->element[3], rv, chain) != NGX_OK
        || mx_json_set(pool, body, "auth_chain", chain) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


ngx_int_t
ngx_matrix_fed_event_auth(ngx_matrix_req_t *mr)
{
    ngx_str_t          key;
    ngx_int_t          rc;
    ngx_matrix_cmd_t   c;

    rc = ngx_matrix_room_key(mr, &mr->params[0], &key);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_matrix_fed_id_check(mr, &mr->params[1]);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_matrix_fcall_init(&c, "mx_fed_event_auth", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->params[0]);
    ngx_matrix_cmd_str(&c, &mr->origin);
    ngx_matrix_cmd_str(&c, &mr->params[1]);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_event_auth_got);
}


/* the answer of backfill and get_missing_events: {acl, 0, version, list} */

static ngx_int_t
ngx_matrix_fed_walk_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_int_t                 rc;
    mx_pool_t                *pool;
    mx_json_t                *pdus, *body;
    const mx_room_version_t  *rv;

    rc = ngx_matrix_fed_checked(mr, reply);
    if (rc != NGX_OK) {
        return rc;
    }

    if (reply->elements != 4) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pool = ngx_matrix_pool(mr);
    rv = ngx_matrix_fed_version(reply->element[2]);
    pdus = mx_json_array(pool);

    if (rv == NULL || pdus == NULL
        || ngx_matrix_fed_pdus(pool, reply->element[3], rv, pdus) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* backfill: a transaction; get_missing_events: {events} */
    if (mr->r->method != NGX_HTTP_POST) {
        return ngx_matrix_fed_send_txn(mr, pdus);
    }

    body = mx_json_object(pool);
    if (body == NULL || mx_json_set(pool, body, "events", pdus) != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/* IDs joined by "\n" for a function's argument, in the request pool */

static ngx_int_t
ngx_matrix_fed_join(ngx_matrix_req_t *mr, ngx_str_t *ids, ngx_uint_t n,
    ngx_str_t *out)
{
    ngx_uint_t   i;
    size_t       len;
    u_char      *p;

    len = 0;
    for (i = 0; i < n; i++) {
        len += ids[i].len + 1;
    }

    out->data = ngx_pnalloc(mr->r->pool, len ? len : 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    p = out->data;
    for (i = 0; i < n; i++) {
        if (i) {
            *p++ = '\n';
        }
        p = ngx_cpymem(p, ids[i].data, ids[i].len);
    }

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * A limit parameter: absent (NGX_DECLINED), a number clamped to
 * [1, max] (a negative one too), or not a number (NGX_ERROR)
 */

static ngx_int_t
ngx_matrix_fed_limit(ngx_str_t *s, ngx_int_t max)
{
    ngx_int_t   n;
    u_char     *p, *digits;

    if (s->len == 0) {
        return NGX_DECLINED;
    }

    digits = s->data[0] == '-' ? s->data + 1 : s->data;

    for (p = digits; p < s->data + s->len; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }
    }

    if (digits == s->data + s->len) {
        return NGX_ERROR;
    }

    if (digits != s->data) {
        return 1;
    }

    /* too large for an ngx_int_t: the most there is */
    n = ngx_atoi(s->data, s->len);

    return n == NGX_ERROR ? max : ngx_max(1, ngx_min(n, max));
}


/* GET /backfill/{roomId}?v=..[&v=..]&limit= (v may hold IDs split by ",") */

ngx_int_t
ngx_matrix_fed_backfill(ngx_matrix_req_t *mr)
{
    ngx_str_t          key, limit, list, raw[NGX_MATRIX_FED_FROM_MAX],
                       ids[NGX_MATRIX_FED_FROM_MAX];
    ngx_int_t          rc, n;
    ngx_uint_t         nraw, nids, i;
    ngx_matrix_cmd_t   c;
    u_char            *p, *end, *comma;

    rc = ngx_matrix_room_key(mr, &mr->params[0], &key);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_matrix_arg_all(mr->r, "v", raw, NGX_MATRIX_FED_FROM_MAX, &nraw);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nids = 0;

    for (i = 0; rc == NGX_OK && i < nraw; i++) {
        p = raw[i].data;
        end = p + raw[i].len;

        while (p < end) {
            comma = ngx_strlchr(p, end, ',');
            if (comma == NULL) {
                comma = end;
            }

            if (comma > p) {
                if (nids == NGX_MATRIX_FED_FROM_MAX) {
                    rc = NGX_DECLINED;
                    break;
                }

                ids[nids].data = p;
                ids[nids].len = comma - p;

                if (ngx_matrix_fed_id_check(mr, &ids[nids]) != NGX_OK) {
                    return NGX_MATRIX_ANSWERED;
                }

                nids++;
            }

            p = comma + 1;
        }
    }

    if (rc == NGX_DECLINED) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "At most %d events"
                                     " to backfill from",
                                     NGX_MATRIX_FED_FROM_MAX);
    }

    if (nids == 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_MISSING_PARAM", "Missing v");
    }

    rc = ngx_matrix_arg(mr->r, "limit", &limit);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = rc == NGX_OK ? ngx_matrix_fed_limit(&limit, NGX_MATRIX_BACKFILL_MAX)
                     : NGX_DECLINED;

    if (n == NGX_DECLINED) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_MISSING_PARAM", "Missing limit");
    }

    if (n == NGX_ERROR) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "limit must be a number");
    }

    if (ngx_matrix_fed_join(mr, ids, nids, &list) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_fed_backfill", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->params[0]);
    ngx_matrix_cmd_str(&c, &mr->origin);

    if (ngx_matrix_cmd_int(mr, &c, n) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_cmd_str(&c, &list);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_walk_got);
}


/*
 * A list of event IDs of the body, joined for a function: NGX_OK, or the
 * error answered (missing, not an array of event IDs, too long)
 */

static ngx_int_t
ngx_matrix_fed_body_ids(ngx_matrix_req_t *mr, const char *name,
    ngx_uint_t max, ngx_str_t *out)
{
    mx_json_t   *arr, *v;
    ngx_str_t   *ids;
    ngx_uint_t   i;

    arr = mx_json_get(mr->body, name);
    if (arr == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_MISSING_PARAM", "Missing %s", name);
    }

    if (arr->type != MX_JSON_ARRAY) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "%s must be an array of"
                                     " event IDs", name);
    }

    if (arr->u.a.n > max) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "At most %ui %s",
                                     max, name);
    }

    ids = ngx_palloc(mr->r->pool, (arr->u.a.n + 1) * sizeof(ngx_str_t));
    if (ids == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < arr->u.a.n; i++) {
        v = arr->u.a.v[i];
        if (v->type != MX_JSON_STRING) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "%s must be an array"
                                         " of event IDs", name);
        }

        ids[i].data = (u_char *) v->u.s.p;
        ids[i].len = v->u.s.len;

        if (ngx_matrix_fed_id_check(mr, &ids[i]) != NGX_OK) {
            return NGX_MATRIX_ANSWERED;
        }
    }

    if (ngx_matrix_fed_join(mr, ids, arr->u.a.n, out) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/* an integer of the body, or dflt when absent; NGX_ERROR: not an integer */

static ngx_int_t
ngx_matrix_fed_body_int(ngx_matrix_req_t *mr, const char *name,
    int64_t dflt, int64_t *out)
{
    if (mx_json_get(mr->body, name) == NULL) {
        *out = dflt;
        return NGX_OK;
    }

    return mx_json_get_int(mr->body, name, out) == 0 ? NGX_OK : NGX_ERROR;
}


/* POST /get_missing_events/{roomId} */

ngx_int_t
ngx_matrix_fed_missing_events(ngx_matrix_req_t *mr)
{
    ngx_str_t          key, earliest, latest;
    ngx_int_t          rc;
    ngx_matrix_cmd_t   c;
    int64_t            limit, min_depth;

    rc = ngx_matrix_room_key(mr, &mr->params[0], &key);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_matrix_fed_body_int(mr, "limit", NGX_MATRIX_MISSING_DEFAULT,
                                &limit) != NGX_OK)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "limit must be an"
                                     " integer");
    }

    if (ngx_matrix_fed_body_int(mr, "min_depth", 0, &min_depth) != NGX_OK) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "min_depth must be an"
                                     " integer");
    }

    rc = ngx_matrix_fed_body_ids(mr, "earliest_events",
                                 NGX_MATRIX_FED_EARLIEST_MAX, &earliest);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_matrix_fed_body_ids(mr, "latest_events", NGX_MATRIX_FED_FROM_MAX,
                                 &latest);
    if (rc != NGX_OK) {
        return rc;
    }

    limit = ngx_max(1, ngx_min(limit, NGX_MATRIX_MISSING_MAX));

    ngx_matrix_fcall_init(&c, "mx_fed_missing_events", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->params[0]);
    ngx_matrix_cmd_str(&c, &mr->origin);

    if (ngx_matrix_cmd_int(mr, &c, limit) != NGX_OK
        || ngx_matrix_cmd_int(mr, &c, min_depth) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_cmd_str(&c, &earliest);
    ngx_matrix_cmd_str(&c, &latest);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_walk_got);
}


/*
 * GET /query/directory?room_alias=: a local alias's room and the servers
 * in it (mx_alias_resolve, shared with the client API's alias lookup)
 */

ngx_int_t
ngx_matrix_fed_query_directory(ngx_matrix_req_t *mr)
{
    ngx_str_t          alias, key;
    ngx_int_t          rc;
    ngx_matrix_cmd_t   c;
    const char        *server;
    size_t             slen;

    rc = ngx_matrix_arg(mr->r, "room_alias", &alias);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED || alias.len == 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_MISSING_PARAM", "Missing room_alias");
    }

    if (!mx_room_alias_valid((char *) alias.data, alias.len)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "%V is not a valid"
                                     " room alias", &alias);
    }

    server = mx_id_server((char *) alias.data, alias.len, &slen);

    if (slen != mr->mcf->server_name.len
        || ngx_strncmp(server, mr->mcf->server_name.data, slen) != 0)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "Room alias is not"
                                     " hosted on this homeserver");
    }

    if (ngx_matrix_alias_key(mr, &alias, &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_alias_resolve", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->mcf->server_name);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_alias_got);
}

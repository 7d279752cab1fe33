/*
 * Reading rooms: current state, one event, members, the user's rooms.
 *
 *   GET /rooms/{id}/state                       [ClientEvent]
 *   GET /rooms/{id}/state/{type}[/{key}]        the content (format=event:
 *                                               the event)
 *   GET /rooms/{id}/event/{eventId}             ClientEvent
 *   GET /rooms/{id}/members                     {chunk}, membership and
 *                                               not_membership filters,
 *                                               at a token
 *   GET /rooms/{id}/joined_members              {joined: {user: profile}}
 *   GET /joined_rooms                           {joined_rooms}
 *
 * One call of mx_room_read each, which refuses (403, unknown rooms too)
 * users who may not read the room and answers {event_id, pdu, ...}.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_event.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


#define NGX_MATRIX_READ_STATE     0
#define NGX_MATRIX_READ_CONTENT   1
#define NGX_MATRIX_READ_EVENT     2
#define NGX_MATRIX_READ_MEMBERS   3
#define NGX_MATRIX_READ_JOINED    4


typedef struct {
    ngx_uint_t      what;
    char           *room_id;
    ngx_str_t       membership;      /* members: only these */
    ngx_str_t       not_membership;  /* members: not these */
    ngx_uint_t      whole;           /* state/{type}: format=event */
    const char     *version;         /* the room's, when known */
} ngx_matrix_read_t;


static ngx_int_t ngx_matrix_read_done(ngx_matrix_req_t *mr,
    redisReply *reply);


static ngx_int_t
ngx_matrix_read(ngx_matrix_req_t *mr, ngx_uint_t what, const char *how,
    ngx_str_t *arg)
{
    ngx_matrix_read_t  *rd;
    ngx_matrix_cmd_t    c;
    ngx_str_t           key, *room;

    room = &mr->params[0];

    if (!ngx_matrix_room_id_valid(room)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%V is not a valid room ID.", room);
    }

    rd = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_read_t));
    if (rd == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = rd;
    rd->what = what;
    rd->room_id = ngx_matrix_cstr(mr, room);

    key.len = sizeof("mx:{}:room") - 1 + room->len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL || rd->room_id == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%V}:room", room);

    ngx_matrix_fcall_init(&c, "mx_room_read", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, room);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_cstr(&c, how);

    if (arg != NULL) {
        ngx_matrix_cmd_str(&c, arg);
    } else {
        ngx_matrix_cmd_cstr(&c, "");
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_read_done);
}


/* ',' separated list contains value */

static ngx_uint_t
ngx_matrix_read_in(ngx_str_t *list, const char *value)
{
    size_t   len;
    u_char  *p, *end, *comma;

    len = ngx_strlen(value);
    p = list->data;
    end = p + list->len;

    while (p < end) {
        comma = ngx_strlchr(p, end, ',');
        if (comma == NULL) {
            comma = end;
        }

        if ((size_t) (comma - p) == len && ngx_strncmp(p, value, len) == 0) {
            return 1;
        }

        p = comma + 1;
    }

    return 0;
}


/* an event that has been redacted: served redacted, with the redaction */

static ngx_int_t
ngx_matrix_read_redacted(ngx_matrix_req_t *mr, mx_json_t *pdu,
    const char *id, redisReply *rid, redisReply *rpdu)
{
    ngx_matrix_read_t        *rd;
    mx_pool_t                *pool;
    mx_json_t                *red, *redev, *ev, *uns;
    mx_json_error_t           err;
    const mx_room_version_t  *rv;
    const char               *version;

    rd = mr->data;
    pool = ngx_matrix_pool(mr);

    /* the version: the room's create event says it; v1 when it names none */
    version = rd->version ? rd->version : "1";
    rv = mx_room_version(version, ngx_strlen(version));
    if (rv == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    red = mx_json_parse(pool, rpdu->str, rpdu->len, &err);
    redev = red ? mx_event_client(pool, red, rid->str, rd->room_id) : NULL;
    pdu = mx_event_redact(pool, pdu, rv);
    ev = pdu ? mx_event_client(pool, pdu, id, rd->room_id) : NULL;
    uns = mx_json_object(pool);

    if (ev == NULL || uns == NULL
        || (redev != NULL
            && (mx_json_set(pool, uns, "redacted_because", redev) != 0
                || mx_json_set(pool, ev, "unsigned", uns) != 0)))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, ev);
}


static ngx_int_t
ngx_matrix_read_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_read_t     *rd;
    mx_pool_t             *pool;
    mx_json_t             *out, *pdu, *ev, *profile, *v;
    mx_json_error_t        err;
    redisReply            *id, *raw;
    const char            *membership, *state_key;
    size_t                 i;

    rd = mr->data;
    pool = ngx_matrix_pool(mr);

    if (reply->type != REDIS_REPLY_ARRAY) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (rd->what) {

    case NGX_MATRIX_READ_MEMBERS:
        out = mx_json_object(pool);
        v = mx_json_array(pool);
        if (out == NULL || v == NULL
            || mx_json_set(pool, out, "chunk", v) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        break;

    case NGX_MATRIX_READ_JOINED:
        out = mx_json_object(pool);
        v = mx_json_object(pool);
        if (out == NULL || v == NULL
            || mx_json_set(pool, out, "joined", v) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        break;

    case NGX_MATRIX_READ_STATE:
        out = v = mx_json_array(pool);
        break;

    default:
        if (reply->elements < 2) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND,
                                         "M_NOT_FOUND",
                                         rd->what == NGX_MATRIX_READ_EVENT
                                         ? "Event not found."
                                         : "State event not found.");
        }
        out = v = NULL;
        break;
    }

    for (i = 0; i + 1 < reply->elements; i += 2) {
        id = reply->element[i];
        raw = reply->element[i + 1];

        pdu = mx_json_parse(pool, raw->str, raw->len, &err);
        ev = pdu ? mx_event_client(pool, pdu, id->str, rd->room_id) : NULL;
        if (ev == NULL) {
            ngx_log_error(NGX_LOG_ERR, mr->r->connection->log, 0,
                          "matrix: stored event %s of %s is unreadable",
                          id->str, rd->room_id);
            continue;
        }

        switch (rd->what) {

        case NGX_MATRIX_READ_CONTENT:
            return ngx_matrix_send_json(mr->r, NGX_HTTP_OK,
                                        rd->whole ? ev
                                                  : mx_json_get(ev,
                                                                "content"));

        case NGX_MATRIX_READ_EVENT:
            if (reply->elements >= 5 && reply->element[3]->len) {
                rd->version = reply->element[4]->str;
                return ngx_matrix_read_redacted(mr, pdu, id->str,
                                                reply->element[2],
                                                reply->element[3]);
            }
            return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, ev);

        case NGX_MATRIX_READ_MEMBERS:
            membership = mx_json_get_str(mx_json_get(ev, "content"),
                                         "membership", NULL);
            if (membership == NULL
                || (rd->membership.len
                    && !ngx_matrix_read_in(&rd->membership, membership))
                || (rd->not_membership.len
                    && ngx_matrix_read_in(&rd->not_membership, membership)))
            {
                continue;
            }
            break;

        case NGX_MATRIX_READ_JOINED:
            v = mx_json_get(ev, "content");
            membership = mx_json_get_str(v, "membership", NULL);
            state_key = mx_json_get_str(ev, "state_key", NULL);

            if (membership == NULL || state_key == NULL
                || ngx_strcmp(membership, "join") != 0)
            {
                continue;
            }

            profile = mx_json_object(pool);
            if (profile == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (mx_json_get_str(v, "displayname", NULL)) {
                mx_json_set(pool, profile, "display_name",
                            mx_json_get(v, "displayname"));
            }

            if (mx_json_get_str(v, "avatar_url", NULL)) {
                mx_json_set(pool, profile, "avatar_url",
                            mx_json_get(v, "avatar_url"));
            }

            if (mx_json_set(pool, mx_json_get(out, "joined"), state_key,
                            profile) != 0)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            continue;
        }

        if (mx_json_append(pool, rd->what == NGX_MATRIX_READ_MEMBERS
                                 ? mx_json_get(out, "chunk") : out, ev)
            != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (out == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     "Event not found.");
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


/* GET /rooms/{roomId}/state */

ngx_int_t
ngx_matrix_room_state_get(ngx_matrix_req_t *mr)
{
    ngx_str_t           key, format;
    ngx_int_t           rc;
    ngx_matrix_read_t  *rd;
    ngx_str_t          *type, *state_key, empty = ngx_null_string;

    if (mr->nparams == 1) {
        return ngx_matrix_read(mr, NGX_MATRIX_READ_STATE, "state", NULL);
    }

    type = &mr->params[1];
    state_key = mr->nparams == 3 ? &mr->params[2] : &empty;

    key.len = type->len + 1 + state_key->len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(key.data, "%V\037%V", type, state_key);

    rc = ngx_matrix_read(mr, NGX_MATRIX_READ_CONTENT, "key", &key);

    rd = mr->data;
    if (rd != NULL && ngx_matrix_arg(mr->r, "format", &format) == NGX_OK
        && format.len == 5 && ngx_strncmp(format.data, "event", 5) == 0)
    {
        rd->whole = 1;
    }

    return rc;
}


/* GET /rooms/{roomId}/event/{eventId} */

ngx_int_t
ngx_matrix_room_event_get(ngx_matrix_req_t *mr)
{
    return ngx_matrix_read(mr, NGX_MATRIX_READ_EVENT, "event",
                           &mr->params[1]);
}


/* GET /rooms/{roomId}/members and /joined_members */

ngx_int_t
ngx_matrix_room_members(ngx_matrix_req_t *mr)
{
    ngx_int_t           rc;
    ngx_str_t           type = ngx_string("m.room.member"), at;
    ngx_matrix_read_t  *rd;
    ngx_uint_t          joined;
    int64_t             pos;

    joined = mr->r->uri.len >= sizeof("joined_members") - 1
             && ngx_strncmp(mr->r->uri.data + mr->r->uri.len
                            - (sizeof("joined_members") - 1),
                            "joined_members", sizeof("joined_members") - 1)
                == 0;

    /* at: the members as they were at a point of the timeline */
    if (!joined && ngx_matrix_arg(mr->r, "at", &at) == NGX_OK && at.len) {
        pos = ngx_matrix_token_pos(&at);
        if (pos < 0) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM",
                                         "at is not a valid token.");
        }

        at.data = ngx_pnalloc(mr->r->pool, NGX_INT64_LEN);
        if (at.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        at.len = ngx_sprintf(at.data, "%L", pos) - at.data;

        rc = ngx_matrix_read(mr, NGX_MATRIX_READ_MEMBERS, "at", &at);

    } else {
        rc = ngx_matrix_read(mr, joined ? NGX_MATRIX_READ_JOINED
                                        : NGX_MATRIX_READ_MEMBERS,
                             "type", &type);
    }

    rd = mr->data;
    if (rd != NULL && !joined) {
        (void) ngx_matrix_arg(mr->r, "membership", &rd->membership);
        (void) ngx_matrix_arg(mr->r, "not_membership", &rd->not_membership);
    }

    return rc;
}


/* GET /joined_rooms */

static ngx_int_t
ngx_matrix_joined_rooms_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t  *pool;
    mx_json_t  *out, *list;
    size_t      i;

    pool = ngx_matrix_pool(mr);
    out = mx_json_object(pool);
    list = mx_json_array(pool);

    if (out == NULL || list == NULL
        || mx_json_set(pool, out, "joined_rooms", list) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
    {
        if (mx_json_append(pool, list,
                           mx_json_strn(pool, reply->element[i]->str,
                                        reply->element[i]->len))
            != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


ngx_int_t
ngx_matrix_joined_rooms(ngx_matrix_req_t *mr)
{
    ngx_str_t          key;
    ngx_matrix_cmd_t   c;

    if (ngx_matrix_user_key(mr, &mr->user_id, "rooms", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_joined_rooms", 1);
    ngx_matrix_cmd_str(&c, &key);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_joined_rooms_done);
}


/* the "mx:{<room_id>}:room" key, the room ID checked; else the error is
 * answered (the client and federation reads of a room) */

ngx_int_t
ngx_matrix_room_key(ngx_matrix_req_t *mr, ngx_str_t *room, ngx_str_t *key)
{
    if (!ngx_matrix_room_id_valid(room)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%V is not a valid room ID.", room);
    }

    key->len = sizeof("mx:{}:room") - 1 + room->len;
    key->data = ngx_pnalloc(mr->r->pool, key->len);
    if (key->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(key->data, "mx:{%V}:room", room);

    return NGX_OK;
}


/* n (id, pdu) pairs from element *i on, as client events, into arr */

static ngx_int_t
ngx_matrix_context_events(ngx_matrix_req_t *mr, redisReply *reply,
    size_t *i, mx_json_t *arr, const char *room_id)
{
    mx_pool_t        *pool;
    mx_json_t        *pdu, *ev;
    mx_json_error_t   err;
    long long         n;

    pool = ngx_matrix_pool(mr);

    if (*i >= reply->elements) {
        return NGX_ERROR;
    }

    n = reply->element[(*i)++]->integer;

    for ( /* void */ ; n > 0 && *i + 1 < reply->elements; n--, *i += 2) {
        pdu = mx_json_parse(pool, reply->element[*i + 1]->str,
                            reply->element[*i + 1]->len, &err);
        ev = pdu ? mx_event_client(pool, pdu, reply->element[*i]->str,
                                   room_id)
                 : NULL;

        if (ev != NULL && mx_json_append(pool, arr, ev) != 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_context_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t        *pool;
    mx_json_t        *out, *before, *after, *state, *pdu, *ev;
    mx_json_error_t   err;
    size_t            i;
    char             *room_id;
    u_char            tok[NGX_INT64_LEN + 2];

    pool = ngx_matrix_pool(mr);
    room_id = mr->data;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 5) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     "Event not found.");
    }

    out = mx_json_object(pool);
    before = mx_json_array(pool);
    after = mx_json_array(pool);
    state = mx_json_array(pool);

    pdu = mx_json_parse(pool, reply->element[4]->str, reply->element[4]->len,
                        &err);
    ev = pdu ? mx_event_client(pool, pdu, reply->element[3]->str, room_id)
             : NULL;

    if (out == NULL || before == NULL || after == NULL || state == NULL
        || ev == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    i = 5;

    if (ngx_matrix_context_events(mr, reply, &i, before, room_id) != NGX_OK
        || ngx_matrix_context_events(mr, reply, &i, after, room_id) != NGX_OK
        || ngx_matrix_context_events(mr, reply, &i, state, room_id) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(tok, "p%L%Z", (int64_t) reply->element[1]->integer);
    if (mx_json_set_str(pool, out, "start", (char *) tok) != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(tok, "p%L%Z", (int64_t) reply->element[2]->integer);
    if (mx_json_set_str(pool, out, "end", (char *) tok) != 0
        || mx_json_set(pool, out, "event", ev) != 0
        || mx_json_set(pool, out, "events_before", before) != 0
        || mx_json_set(pool, out, "events_after", after) != 0
        || mx_json_set(pool, out, "state", state) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


/* GET /rooms/{roomId}/context/{eventId}?limit=N */

ngx_int_t
ngx_matrix_room_context(ngx_matrix_req_t *mr)
{
    ngx_str_t          key, limit;
    ngx_int_t          rc, n;
    ngx_matrix_cmd_t   c;

    rc = ngx_matrix_room_key(mr, &mr->params[0], &key);
    if (rc != NGX_OK) {
        return rc;
    }

    n = 10;
    if (ngx_matrix_arg(mr->r, "limit", &limit) == NGX_OK && limit.len) {
        n = ngx_atoi(limit.data, limit.len);
        if (n == NGX_ERROR) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM",
                                         "limit must be a number.");
        }
        n = ngx_min(n, 100);
    }

    mr->data = ngx_matrix_cstr(mr, &mr->params[0]);
    if (mr->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_room_context", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->params[0]);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, &mr->params[1]);

    /* as Synapse: half before, the rest after */
    if (ngx_matrix_cmd_int(mr, &c, n / 2) != NGX_OK
        || ngx_matrix_cmd_int(mr, &c, n - n / 2) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_context_done);
}


static ngx_int_t
ngx_matrix_ts_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t  *pool;
    mx_json_t  *out;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     "No event found in that direction.");
    }

    pool = ngx_matrix_pool(mr);
    out = mx_json_object(pool);

    if (out == NULL
        || mx_json_set(pool, out, "event_id",
                       mx_json_strn(pool, reply->element[0]->str,
                                    reply->element[0]->len)) != 0
        || mx_json_set_int(pool, out, "origin_server_ts",
                           reply->element[1]->integer) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


/* GET /rooms/{roomId}/timestamp_to_event?ts=&dir= (v1 path) */

ngx_int_t
ngx_matrix_room_ts_event(ngx_matrix_req_t *mr)
{
    ngx_str_t          key, ts, dir;
    ngx_int_t          rc;
    ngx_matrix_cmd_t   c;
    size_t             i;

    rc = ngx_matrix_room_key(mr, &mr->params[0], &key);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_matrix_arg(mr->r, "ts", &ts) != NGX_OK || ts.len == 0
        || ts.len > 15)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "ts must be a timestamp in ms.");
    }

    for (i = 0; i < ts.len; i++) {
        if (ts.data[i] < '0' || ts.data[i] > '9') {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM",
                                         "ts must be a timestamp in ms.");
        }
    }

    if (ngx_matrix_arg(mr->r, "dir", &dir) != NGX_OK || dir.len != 1
        || (dir.data[0] != 'f' && dir.data[0] != 'b'))
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "dir must be f or b.");
    }

    ngx_matrix_fcall_init(&c, "mx_room_ts_event", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->params[0]);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, &ts);
    ngx_matrix_cmd_str(&c, &dir);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_ts_done);
}


static ngx_int_t
ngx_matrix_forget_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t  *pool;
    mx_json_t  *out;

    (void) reply;

    pool = ngx_matrix_pool(mr);
    out = pool ? mx_json_object(pool) : NULL;
    if (out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


/* POST /rooms/{roomId}/forget */

ngx_int_t
ngx_matrix_room_forget(ngx_matrix_req_t *mr)
{
    ngx_str_t          key;
    ngx_matrix_cmd_t   c;

    if (!ngx_matrix_room_id_valid(&mr->params[0])) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%V is not a valid room ID.",
                                     &mr->params[0]);
    }

    if (ngx_matrix_user_key(mr, &mr->user_id, "rooms", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_room_forget", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->params[0]);
    ngx_matrix_cmd_str(&c, &mr->user_id);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_forget_done);
}

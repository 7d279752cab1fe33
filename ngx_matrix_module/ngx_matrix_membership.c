/*
 * Membership: each endpoint is a member event sent the way every event is
 * (ngx_matrix_room.c); the auth rules decide who may do what.
 *
 *   POST /rooms/{id}/join, POST /join/{roomId}    join, with the profile
 *   POST /knock/{roomIdOrAlias}  {reason}         knock, with the profile
 *   POST /rooms/{id}/leave                        leave
 *   POST /rooms/{id}/invite  {user_id, reason}    invite
 *   POST /rooms/{id}/kick    {user_id, reason}    leave, for another
 *   POST /rooms/{id}/ban     {user_id, reason}    ban
 *   POST /rooms/{id}/unban   {user_id, reason}    leave, for a banned user
 *   PUT  /rooms/{id}/redact/{eventId}/{txnId}     m.room.redaction
 *
 * Joining or knocking on a room this server does not have goes through a
 * server in it (make_join/send_join, make_knock/send_knock,
 * ngx_matrix_fedjoin_out.c); an alias of another server is asked of that
 * server first (ngx_matrix_alias_remote).  A knock is a join's way with
 * another membership: the route (ngx_matrix_knock) tells them apart.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_ids.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


static ngx_int_t
ngx_matrix_membership_empty(ngx_matrix_req_t *mr, const char *event_id,
    size_t len)
{
    (void) event_id;
    (void) len;

    return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
}


/*
 * A send's end that answers {"room_id": ...}: a join or a knock, and
 * createRoom once the creator is in.
 */

ngx_int_t
ngx_matrix_membership_joined(ngx_matrix_req_t *mr, const char *event_id,
    size_t len)
{
    ngx_matrix_send_t  *s;
    mx_pool_t          *pool;
    mx_json_t          *body;

    (void) event_id;
    (void) len;

    s = mr->data;
    pool = ngx_matrix_pool(mr);
    body = pool ? mx_json_object(pool) : NULL;

    if (body == NULL
        || mx_json_set_str(pool, body, "room_id", s->room_id) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/* the send of a member event: room, sender, target, membership, reason */

static ngx_int_t
ngx_matrix_membership_send(ngx_matrix_req_t *mr, ngx_str_t *room_id,
    const char *target, const char *membership)
{
    ngx_matrix_send_t  *s;
    mx_pool_t          *pool;
    mx_json_t          *reason;

    pool = ngx_matrix_pool(mr);
    s = ngx_matrix_send_new(mr);
    if (s == NULL || pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->room_id = ngx_matrix_cstr(mr, room_id);
    s->sender = ngx_matrix_cstr(mr, &mr->user_id);
    s->type = "m.room.member";
    s->state_key = target ? target : s->sender;
    s->content = mx_json_object(pool);
    s->done = ngx_strcmp(membership, "join") == 0
              || ngx_strcmp(membership, "knock") == 0
              ? ngx_matrix_membership_joined : ngx_matrix_membership_empty;

    if (s->room_id == NULL || s->sender == NULL || s->content == NULL
        || mx_json_set_str(pool, s->content, "membership", membership) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    reason = mx_json_get(mr->body, "reason");
    if (reason != NULL) {
        if (reason->type != MX_JSON_STRING) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON",
                                         "reason must be a string.");
        }

        if (mx_json_set(pool, s->content, "reason", reason) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return NGX_OK;
}


/* a join (and a knock) carries the user's displayname and avatar_url */

static ngx_int_t
ngx_matrix_membership_profile(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_send_t  *s;

    s = mr->data;

    if (ngx_matrix_profile_member(mr, reply, s->content) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_start(mr);
}


/*
 * servers: those to join (or knock) through first when the room is not
 * here
 */

static ngx_int_t
ngx_matrix_membership_join_room(ngx_matrix_req_t *mr, ngx_str_t *room,
    ngx_array_t *servers)
{
    ngx_matrix_send_t  *s;
    ngx_int_t           rc;
    ngx_uint_t          knock;

    knock = mr->route->handler == ngx_matrix_knock;

    rc = ngx_matrix_membership_send(mr, room, NULL, knock ? "knock" : "join");
    if (rc != NGX_OK) {
        return rc;
    }

    /* a room this server does not have: through another server */
    s = mr->data;
    s->unknown = knock ? ngx_matrix_fed_knock_remote
                       : ngx_matrix_fed_join_remote;
    s->servers = servers;

    return ngx_matrix_profile_own(mr, ngx_matrix_membership_profile);
}


static ngx_int_t
ngx_matrix_membership_alias_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_str_t  room;

    if (reply->type != REDIS_REPLY_STRING) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     "Room alias %V not found.",
                                     &mr->params[0]);
    }

    room.len = reply->len;
    room.data = ngx_pnalloc(mr->r->pool, room.len);
    if (room.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(room.data, reply->str, room.len);

    return ngx_matrix_membership_join_room(mr, &room, NULL);
}


/*
 * An alias of another server, resolved by its server: the room is joined
 * (knocked on) here if this server has it, else through the servers the
 * directory named, then the alias's server.
 */

static ngx_int_t
ngx_matrix_membership_alias_remote(ngx_matrix_req_t *mr, ngx_str_t *room_id,
    ngx_array_t *servers)
{
    ngx_str_t  *server;
    size_t      len;

    server = ngx_array_push(servers);
    if (server == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    server->data = (u_char *) mx_id_server((char *) mr->params[0].data,
                                           mr->params[0].len, &len);
    server->len = len;

    return ngx_matrix_membership_join_room(mr, room_id, servers);
}


/* a room ID, or an alias resolved first */

static ngx_int_t
ngx_matrix_membership_join(ngx_matrix_req_t *mr, ngx_str_t *room)
{
    ngx_int_t          rc;
    ngx_str_t          key;
    ngx_matrix_cmd_t   c;

    if (room->len == 0 || room->data[0] != '#') {
        return ngx_matrix_membership_join_room(mr, room, NULL);
    }

    rc = ngx_matrix_alias_check(mr, room, 0);

    if (rc == NGX_DECLINED) {
        return ngx_matrix_alias_remote(mr, room,
                                       ngx_matrix_membership_alias_remote);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_matrix_alias_key(mr, room, &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_alias_get", 1);
    ngx_matrix_cmd_str(&c, &key);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_membership_alias_got);
}


/* POST /join/{roomIdOrAlias} */

ngx_int_t
ngx_matrix_join(ngx_matrix_req_t *mr)
{
    return ngx_matrix_membership_join(mr, &mr->params[0]);
}


/*
 * POST /knock/{roomIdOrAlias} {reason}: the auth rules refuse a room whose
 * join rule is not knock (knock_restricted), a version before 7, a user
 * banned, invited or joined (403)
 */

ngx_int_t
ngx_matrix_knock(ngx_matrix_req_t *mr)
{
    return ngx_matrix_membership_join(mr, &mr->params[0]);
}


/* POST /rooms/{roomId}/<action>, the action is the last path segment */

ngx_int_t
ngx_matrix_membership(ngx_matrix_req_t *mr)
{
    ngx_str_t    *room, *uri;
    ngx_int_t     rc;
    const char   *action, *membership, *target;
    size_t        len;
    u_char       *p;

    room = &mr->params[0];
    uri = &mr->r->uri;

    p = uri->data + uri->len;
    while (p > uri->data && p[-1] != '/') {
        p--;
    }

    action = (char *) p;
    len = uri->data + uri->len - p;

#define ngx_matrix_is(s)  (len == sizeof(s) - 1 && ngx_strncmp(action, s, len) == 0)

    if (ngx_matrix_is("join")) {
        return ngx_matrix_membership_join(mr, room);
    }

    if (ngx_matrix_is("leave")) {
        rc = ngx_matrix_membership_send(mr, room, NULL, "leave");
        if (rc != NGX_OK) {
            return rc;
        }

        /* an invite to a room of another server: rejected there; a knock
         * on one: rescinded there */
        ((ngx_matrix_send_t *) mr->data)->unknown =
                                              ngx_matrix_fed_leave_remote;

        return ngx_matrix_send_start(mr);
    }

    if (ngx_matrix_is("invite")) {
        membership = "invite";

    } else if (ngx_matrix_is("kick") || ngx_matrix_is("unban")) {
        membership = "leave";

    } else if (ngx_matrix_is("ban")) {
        membership = "ban";

    } else {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND,
                                     "M_UNRECOGNIZED", "Unrecognized"
                                     " request");
    }

#undef ngx_matrix_is

    target = mx_json_get_str(mr->body, "user_id", &len);
    if (target == NULL || !mx_user_id_historical_valid(target, len)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "user_id must be a user"
                                     " ID.");
    }

    rc = ngx_matrix_membership_send(mr, room, target, membership);

    return rc == NGX_OK ? ngx_matrix_send_start(mr) : rc;
}


/* PUT /rooms/{roomId}/redact/{eventId}/{txnId} */

static ngx_int_t ngx_matrix_redact_target(ngx_matrix_req_t *mr,
    redisReply *reply);


ngx_int_t
ngx_matrix_redact(ngx_matrix_req_t *mr)
{
    ngx_matrix_send_t  *s;
    ngx_matrix_cmd_t    c;
    ngx_str_t           key;
    mx_pool_t          *pool;
    mx_json_t          *content, *reason;

    pool = ngx_matrix_pool(mr);
    s = ngx_matrix_send_new(mr);
    if (s == NULL || pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mr->params[1].len == 0 || mr->params[1].data[0] != '$'
        || mr->params[1].len > 255)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "%V is not an event"
                                     " ID.", &mr->params[1]);
    }

    if (mr->params[2].len == 0 || mr->params[2].len > 255) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "The transaction ID"
                                     " must be 1 to 255 bytes.");
    }

    content = mx_json_object(pool);
    reason = mx_json_get(mr->body, "reason");

    if (reason != NULL && reason->type != MX_JSON_STRING) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "reason must be a string.");
    }

    s->room_id = ngx_matrix_cstr(mr, &mr->params[0]);
    s->sender = ngx_matrix_cstr(mr, &mr->user_id);
    s->redacts = ngx_matrix_cstr(mr, &mr->params[1]);
    s->type = "m.room.redaction";
    s->content = content;
    s->txn_id = mr->params[2];

    if (s->room_id == NULL || s->sender == NULL || s->redacts == NULL
        || content == NULL
        || (reason && mx_json_set(pool, content, "reason", reason) != 0))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ngx_matrix_room_id_valid(&mr->params[0])) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%V is not a valid room ID.",
                                     &mr->params[0]);
    }

    /* the target first: it must be there, and whose it is matters */

    key.len = sizeof("mx:{}:room") - 1 + mr->params[0].len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%V}:room", &mr->params[0]);

    ngx_matrix_fcall_init(&c, "mx_room_read", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->params[0]);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_cstr(&c, "event");
    ngx_matrix_cmd_str(&c, &mr->params[1]);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_redact_target);
}


static ngx_int_t
ngx_matrix_redact_target(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_send_t  *s;
    mx_pool_t          *pool;
    mx_json_t          *pdu;
    mx_json_error_t     err;
    const char         *sender;

    s = mr->data;
    pool = ngx_matrix_pool(mr);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     "Event not found.");
    }

    pdu = mx_json_parse(pool, reply->element[1]->str, reply->element[1]->len,
                        &err);
    sender = mx_json_get_str(pdu, "sender", NULL);
    if (sender == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->redacts_sender = sender;

    return ngx_matrix_send_start(mr);
}

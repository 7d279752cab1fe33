/*
 * Membership over federation, the resident side: another server's user
 * joins, leaves or knocks on a room of this server, or invites one of
 * its users.
 *
 *   GET /_matrix/federation/v1/make_join/{roomId}/{userId}?ver=..
 *   GET /_matrix/federation/v1/make_leave/{roomId}/{userId}
 *   GET /_matrix/federation/v1/make_knock/{roomId}/{userId}?ver=..
 *        the user must be of the origin; the room's current state read as
 *        for a local send (mx_room_prepare), the event built by core/mx_build
 *        with the auth rules checked (403 when they refuse), and answered
 *        unsigned as a template: {event, room_version}
 *
 *   PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}
 *   PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}
 *   PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}
 *        the event's shape and ID checked here; appended to the room's
 *        input shard with origin = the joining server, so the roomserver
 *        checks its hashes and signatures (roomserver_verify.c) and the
 *        auth rules as for every remote event; the request waits for the
 *        verdict.  A join is answered with the state before it and the
 *        auth chain (mx_room_fed_join_state), a leave with {}, a knock
 *        with the stripped state of the room.
 *
 *   Each of them, and an invite into a room this server has, first asks
 *   mx_fed_acl: a server the room's m.room.server_acl denies hears 403.
 *
 *        origin ──► X-Matrix ──► ACL, shape, ID ──► XADD mx:input:<n>
 *             kind=event origin=<server> reply req       │
 *                                              roomserver: signatures,
 *                                              auth, store ─► syncer
 *             200 {origin, state, auth_chain, event,  ◄── {"event_id"}
 *                  members_omitted, servers_in_room}      or a refusal
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_base64.h>
#include <mx_build.h>
#include <mx_event.h>
#include <mx_ids.h>
#include <mx_room_version.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


#define NGX_MATRIX_FEDJOIN_TIMEOUT  10000


typedef struct {
    const char                 *membership;
    ngx_str_t                   room_id;
    ngx_str_t                   event_id;
    const mx_room_version_t    *rv;
    mx_json_t                  *event;
    ngx_str_t                   req;
} ngx_matrix_fedjoin_t;


static ngx_int_t ngx_matrix_fed_make_acl(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fed_template(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fed_restricted_ask(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fed_restricted(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fed_template_build(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fed_send_version(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fed_send_queued(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fed_send_verdict(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static ngx_int_t ngx_matrix_fed_send_state(ngx_matrix_req_t *mr,
    redisReply *reply);


/* the server name of a user ID: what follows its first ':' */

static ngx_int_t
ngx_matrix_fed_user_server(const char *user_id, size_t len, ngx_str_t *out)
{
    u_char  *colon;

    colon = ngx_strlchr((u_char *) user_id, (u_char *) user_id + len, ':');
    if (colon == NULL) {
        return NGX_ERROR;
    }

    out->data = colon + 1;
    out->len = (u_char *) user_id + len - (colon + 1);

    return NGX_OK;
}


/* is one of the "ver" arguments the room's version?  None given: "1" */

static ngx_uint_t
ngx_matrix_fed_ver_ok(ngx_http_request_t *r, const char *version)
{
    u_char      *p, *end, *amp, *dst;
    u_char       buf[64];
    ngx_uint_t   any;
    size_t       len;

    any = 0;
    p = r->args.data;
    end = p + r->args.len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        if (amp - p > 4 && ngx_strncmp(p, "ver=", 4) == 0
            && (size_t) (amp - p - 4) < sizeof(buf))
        {
            any = 1;
            dst = buf;
            len = amp - p - 4;
            ngx_memcpy(buf, p + 4, len);
            p = buf;
            ngx_unescape_uri(&dst, &p, len, NGX_UNESCAPE_URI);
            len = dst - buf;

            if (len == ngx_strlen(version)
                && ngx_strncmp(buf, version, len) == 0)
            {
                return 1;
            }
        }

        p = amp + 1;
    }

    return !any && ngx_strcmp(version, "1") == 0;
}


/* make_join, make_leave: params room, user */

static ngx_int_t
ngx_matrix_fed_make(ngx_matrix_req_t *mr, const char *membership)
{
    ngx_matrix_send_t  *s;
    mx_pool_t          *pool;
    ngx_str_t          *user, server;

    user = &mr->params[1];

    if (!mx_user_id_historical_valid((char *) user->data, user->len)
        || ngx_matrix_fed_user_server((char *) user->data, user->len,
                                      &server)
           != NGX_OK)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "%V is not a user"
                                     " ID.", user);
    }

    if (server.len != mr->origin.len
        || ngx_strncmp(server.data, mr->origin.data, server.len) != 0)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN,
                                     "M_FORBIDDEN", "%V may not ask for a"
                                     " member event of %V.", &mr->origin,
                                     user);
    }

    pool = ngx_matrix_pool(mr);
    s = ngx_matrix_send_new(mr);
    if (s == NULL || pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->room_id = ngx_matrix_cstr(mr, &mr->params[0]);
    s->sender = ngx_matrix_cstr(mr, user);
    s->type = "m.room.member";
    s->state_key = s->sender;
    s->content = mx_json_object(pool);
    s->chain = 1;                       /* built, never submitted */
    s->prepared = ngx_matrix_fed_template;
    s->data = (void *) membership;

    if (s->room_id == NULL || s->sender == NULL || s->content == NULL
        || mx_json_set_str(pool, s->content, "membership", membership) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the room's server ACL first: a denied server is told so */
    return ngx_matrix_fed_acl_ask(mr, &mr->params[0], ngx_matrix_fed_make_acl);
}


static ngx_int_t
ngx_matrix_fed_make_acl(ngx_matrix_req_t *mr, redisReply *reply)
{
    const mx_room_version_t  *rv;
    ngx_int_t                 rc;

    if (ngx_matrix_fed_acl_reply(mr, reply, &mr->params[0], &rv, &rc)
        != NGX_OK)
    {
        return rc;
    }

    return ngx_matrix_send_start(mr);
}


ngx_int_t
ngx_matrix_fed_make_join(ngx_matrix_req_t *mr)
{
    return ngx_matrix_fed_make(mr, "join");
}


ngx_int_t
ngx_matrix_fed_make_leave(ngx_matrix_req_t *mr)
{
    return ngx_matrix_fed_make(mr, "leave");
}


ngx_int_t
ngx_matrix_fed_make_knock(ngx_matrix_req_t *mr)
{
    return ngx_matrix_fed_make(mr, "knock");
}


/*
 * The room is read: the version asked for, then the event built and
 * checked by the auth rules as a local send would be, and answered without
 * what the joining server adds itself (hashes, signatures, the v1/v2 ID).
 */

static ngx_int_t
ngx_matrix_fed_template(ngx_matrix_req_t *mr)
{
    ngx_matrix_send_t  *s;
    ngx_int_t           rc;
    u_char              extra[64];

    s = mr->data;

    if (ngx_strcmp((char *) s->data, "leave") != 0
        && !ngx_matrix_fed_ver_ok(mr->r, s->rv->id))
    {
        ngx_snprintf(extra, sizeof(extra), "\"room_version\":\"%s\"%Z",
                     s->rv->id);

        return ngx_matrix_send_error_extra(mr->r, NGX_HTTP_BAD_REQUEST,
                                           "M_INCOMPATIBLE_ROOM_VERSION",
                                           (char *) extra, "Your homeserver"
                                           " does not support the room's"
                                           " version %s.", s->rv->id);
    }

    if (ngx_strcmp((char *) s->data, "join") == 0) {
        rc = ngx_matrix_fed_restricted_ask(mr);
        if (rc != NGX_DECLINED) {
            return rc;                  /* on in _restricted() */
        }
    }

    return ngx_matrix_fed_template_build(mr);
}


/*
 * A restricted join (v8+, knock_restricted v10+) of a user not yet invited
 * or joined: the user must be joined to a room of the allow rules, and a
 * local member with the power to invite authorises it
 * (join_authorised_via_users_server, and this server's signature at
 * send_join).  NGX_DECLINED when the room is not restricted for this
 * user; else mx_room_restricted is asked (or the error answered).
 */

static ngx_int_t
ngx_matrix_fed_restricted_ask(ngx_matrix_req_t *mr)
{
    ngx_matrix_send_t        *s;
    ngx_matrix_cmd_t          c;
    ngx_str_t                 key, server;
    const mx_auth_event_t    *jr, *me, *create, *pl;
    const char               *rule, *m, *id;
    mx_json_t                *allow, *one, *users;
    int64_t                   need, have;
    size_t                    i, k, n, len;

    s = mr->data;

    jr = mx_state_get(s->state, "m.room.join_rules", "");
    rule = jr ? mx_json_get_str(jr->content, "join_rule", NULL) : NULL;

    if (rule == NULL
        || !((s->rv->restricted && ngx_strcmp(rule, "restricted") == 0)
             || (s->rv->knock_restricted
                 && ngx_strcmp(rule, "knock_restricted") == 0)))
    {
        return NGX_DECLINED;
    }

    me = mx_state_get(s->state, "m.room.member", s->sender);
    m = me ? mx_json_get_str(me->content, "membership", NULL) : NULL;
    if (m && (ngx_strcmp(m, "join") == 0 || ngx_strcmp(m, "invite") == 0)) {
        return NGX_DECLINED;
    }

    key.len = sizeof("mx:{}:room") - 1 + ngx_strlen(s->room_id);
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%s}:room", s->room_id);

    ngx_matrix_fcall_init(&c, "mx_room_restricted", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_cstr(&c, s->room_id);
    ngx_matrix_cmd_cstr(&c, s->sender);

    /* the allowed rooms, counted first */
    allow = mx_json_get_arr(jr->content, "allow");

    for (k = 0; k < 2; k++) {
        n = 0;

        for (i = 0; allow && i < allow->u.a.n; i++) {
            one = allow->u.a.v[i];
            m = mx_json_get_str(one, "type", NULL);
            id = mx_json_get_str(one, "room_id", NULL);

            if (m && id && ngx_strcmp(m, "m.room_membership") == 0) {
                if (k == 1) {
                    ngx_matrix_cmd_cstr(&c, id);
                }
                n++;
            }
        }

        if (k == 0 && ngx_matrix_cmd_int(mr, &c, (int64_t) n) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* the local users who may invite: the creator (v12), the users of the
     * power levels */
    create = mx_state_get(s->state, "m.room.create", "");
    pl = mx_state_get(s->state, "m.room.power_levels", "");

    need = 0;
    if (pl != NULL && mx_json_get(pl->content, "invite") != NULL
        && mx_auth_pl_value(s->rv, mx_json_get(pl->content, "invite"),
                            &need) != 0)
    {
        need = 0;
    }

    if (create != NULL && create->sender != NULL) {
        len = ngx_strlen(create->sender);
        if (ngx_matrix_fed_user_server(create->sender, len, &server)
            == NGX_OK
            && server.len == mr->mcf->server_name.len
            && ngx_strncmp(server.data, mr->mcf->server_name.data,
                           server.len) == 0
            && mx_auth_user_level(s->rv, create, pl, create->sender) >= need)
        {
            ngx_matrix_cmd_cstr(&c, create->sender);
        }
    }

    users = pl ? mx_json_get_obj(pl->content, "users") : NULL;

    for (i = 0; users && i < users->u.o.n; i++) {
        id = users->u.o.m[i].key;
        len = ngx_strlen(id);
        have = mx_auth_user_level(s->rv, create, pl, id);

        if (have >= need
            && ngx_matrix_fed_user_server(id, len, &server) == NGX_OK
            && server.len == mr->mcf->server_name.len
            && ngx_strncmp(server.data, mr->mcf->server_name.data,
                           server.len) == 0)
        {
            ngx_matrix_cmd_cstr(&c, id);
        }
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_restricted);
}


/* {joined to an allowed room, the authorising member or ''} */

static ngx_int_t
ngx_matrix_fed_restricted(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_send_t      *s;
    mx_pool_t              *pool;
    const mx_auth_event_t  *by;

    s = mr->data;
    pool = ngx_matrix_pool(mr);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (reply->element[0]->integer != 1) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                     "%s is not a member of a room the"
                                     " join rules allow.", s->sender);
    }

    if (reply->element[1]->len == 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_UNABLE_TO_AUTHORISE_JOIN", "No user"
                                     " of this server may authorise the"
                                     " join.");
    }

    /* the authoriser's member event: the rules look at it */
    by = ngx_matrix_room_event(mr, s->rv, reply->element[2]->str,
                               reply->element[2]->len, reply->element[3]->str,
                               reply->element[3]->len);
    if (by == NULL || mx_state_put(s->state, by) != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mx_json_set(pool, s->content, "join_authorised_via_users_server",
                    mx_json_strn(pool, reply->element[1]->str,
                                 reply->element[1]->len))
        != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_fed_template_build(mr);
}


/* build the template; the auth rules refuse it at once (403) */

static ngx_int_t
ngx_matrix_fed_template_build(ngx_matrix_req_t *mr)
{
    ngx_matrix_send_t  *s;
    mx_pool_t          *pool;
    mx_json_t          *body, *ev;
    ngx_int_t           rc;

    s = mr->data;
    pool = ngx_matrix_pool(mr);

    rc = ngx_matrix_send_build(mr);
    if (s->n == 0) {
        return rc;                      /* refused, answered */
    }

    ev = s->pdus[0];
    mx_json_remove(ev, "signatures");
    mx_json_remove(ev, "hashes");
    mx_json_remove(ev, "unsigned");
    mx_json_remove(ev, "event_id");

    if (mx_json_set_str(pool, ev, "origin", ngx_matrix_cstr(mr, &mr->origin))
        != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = mx_json_object(pool);
    if (body == NULL
        || mx_json_set(pool, body, "event", ev) != 0
        || mx_json_set_str(pool, body, "room_version", s->rv->id) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/* send_join, send_leave: params room, event ID; the body is the event */

static ngx_int_t
ngx_matrix_fed_send_member(ngx_matrix_req_t *mr, const char *membership)
{
    ngx_matrix_fedjoin_t  *j;

    if (!ngx_matrix_room_id_valid(&mr->params[0])) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "%V is not a room"
                                     " ID.", &mr->params[0]);
    }

    if (mr->body == NULL || mr->body->type != MX_JSON_OBJECT) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "The body must be the"
                                     " event.");
    }

    j = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_fedjoin_t));
    if (j == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    j->membership = membership;
    j->room_id = mr->params[0];
    j->event_id = mr->params[1];
    j->event = mr->body;
    mr->data = j;

    /* the room's version and server ACL (a denied server: 403) */
    return ngx_matrix_fed_acl_ask(mr, &j->room_id,
                                  ngx_matrix_fed_send_version);
}


ngx_int_t
ngx_matrix_fed_send_join(ngx_matrix_req_t *mr)
{
    return ngx_matrix_fed_send_member(mr, "join");
}


ngx_int_t
ngx_matrix_fed_send_leave(ngx_matrix_req_t *mr)
{
    return ngx_matrix_fed_send_member(mr, "leave");
}


ngx_int_t
ngx_matrix_fed_send_knock(ngx_matrix_req_t *mr)
{
    return ngx_matrix_fed_send_member(mr, "knock");
}


/* the event against what it claims to be; NULL when it is what it says */

static const char *
ngx_matrix_fed_event_wrong(ngx_matrix_req_t *mr, ngx_matrix_fedjoin_t *j)
{
    mx_pool_t   *pool;
    mx_json_t   *content;
    const char  *why, *v, *sender, *id;
    size_t       len, slen;
    ngx_str_t    server;

    pool = ngx_matrix_pool(mr);

    if (mx_event_check_pdu(pool, j->event, j->rv, &why) != 0) {
        return why;
    }

    v = mx_json_get_str(j->event, "room_id", &len);
    if (v == NULL || len != j->room_id.len
        || ngx_strncmp(v, j->room_id.data, len) != 0)
    {
        return "room_id is not the room of the path";
    }

    v = mx_json_get_str(j->event, "type", NULL);
    if (v == NULL || ngx_strcmp(v, "m.room.member") != 0) {
        return "not a member event";
    }

    sender = mx_json_get_str(j->event, "sender", &slen);
    v = mx_json_get_str(j->event, "state_key", &len);
    if (sender == NULL || v == NULL || len != slen
        || ngx_strncmp(v, sender, len) != 0)
    {
        return "state_key is not the sender";
    }

    content = mx_json_get_obj(j->event, "content");
    v = mx_json_get_str(content, "membership", NULL);
    if (v == NULL || ngx_strcmp(v, j->membership) != 0) {
        return "the membership is not the one of the endpoint";
    }

    if (ngx_matrix_fed_user_server(sender, slen, &server) != NGX_OK
        || server.len != mr->origin.len
        || ngx_strncmp(server.data, mr->origin.data, server.len) != 0)
    {
        return "the sender is not of the origin server";
    }

    id = mx_event_id(pool, j->event, j->rv);
    if (id == NULL || ngx_strlen(id) != j->event_id.len
        || ngx_strncmp(id, j->event_id.data, j->event_id.len) != 0)
    {
        return "the event ID of the path is not the event's";
    }

    return NULL;
}


static ngx_int_t
ngx_matrix_fed_send_version(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedjoin_t  *j;
    ngx_matrix_cmd_t       c;
    ngx_str_t              input, server;
    mx_pool_t             *pool;
    const char            *why, *via;
    char                  *pdu;
    size_t                 len;
    ngx_int_t              rc;

    j = mr->data;
    pool = ngx_matrix_pool(mr);

    if (ngx_matrix_fed_acl_reply(mr, reply, &j->room_id, &j->rv, &rc)
        != NGX_OK)
    {
        return rc;
    }

    why = ngx_matrix_fed_event_wrong(mr, j);
    if (why != NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "%s", why);
    }

    /*
     * A restricted join one of our users authorises: our signature too
     * (the rules want it; the hash it sets is the one the sender signed,
     * or the sender's signature fails at the roomserver)
     */
    via = mx_json_get_str(mx_json_get_obj(j->event, "content"),
                          "join_authorised_via_users_server", &len);

    if (via != NULL && ngx_strcmp(j->membership, "join") == 0
        && ngx_matrix_fed_user_server(via, len, &server) == NGX_OK
        && server.len == mr->mcf->server_name.len
        && ngx_strncmp(server.data, mr->mcf->server_name.data, server.len)
           == 0
        && mx_event_sign(pool, j->event, j->rv,
                         (char *) mr->mcf->server_name.data,
                         mr->mcf->signing_key) != 0)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "The event cannot be"
                                     " signed.");
    }

    pdu = mx_json_encode(pool, j->event, mx_event_json_flags(j->rv), &len);
    if (pdu == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_matrix_input_key(mr, j->room_id.data, j->room_id.len, &input)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_matrix_wait(mr, NGX_MATRIX_FEDJOIN_TIMEOUT,
                        ngx_matrix_fed_send_verdict, &j->req)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* an entry as federation's: the roomserver checks it on receipt */
    c.n = 0;
    c.overflow = 0;
    ngx_matrix_cmd_cstr(&c, "XADD");
    ngx_matrix_cmd_str(&c, &input);
    ngx_matrix_cmd_cstr(&c, "*");
    ngx_matrix_cmd_cstr(&c, "kind");
    ngx_matrix_cmd_cstr(&c, "event");
    ngx_matrix_cmd_cstr(&c, "room");
    ngx_matrix_cmd_str(&c, &j->room_id);
    ngx_matrix_cmd_cstr(&c, "event_id");
    ngx_matrix_cmd_str(&c, &j->event_id);
    ngx_matrix_cmd_cstr(&c, "event");
    ngx_matrix_cmd_add(&c, pdu, len);
    ngx_matrix_cmd_cstr(&c, "origin");
    ngx_matrix_cmd_str(&c, &mr->origin);
    ngx_matrix_cmd_cstr(&c, "reply");
    ngx_matrix_cmd_str(&c, ngx_matrix_wait_channel());
    ngx_matrix_cmd_cstr(&c, "req");
    ngx_matrix_cmd_str(&c, &j->req);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_send_queued);
}


static ngx_int_t
ngx_matrix_fed_send_queued(ngx_matrix_req_t *mr, redisReply *reply)
{
    (void) mr;
    (void) reply;

    /* parked until the verdict */
    return NGX_DONE;
}


/* the syncer's {"event_id"} once stored, or the roomserver's refusal */

static ngx_int_t
ngx_matrix_fed_send_verdict(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_fedjoin_t  *j;
    ngx_matrix_cmd_t       c;
    ngx_str_t              key;
    mx_pool_t             *pool;
    mx_json_t             *v;
    mx_json_error_t        err;
    const char            *errcode, *error;
    int64_t                status;

    j = mr->data;

    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    if (answer == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "M_UNKNOWN", "The room server did not"
                                     " answer in time; send the event"
                                     " again.");
    }

    pool = ngx_matrix_pool(mr);
    v = mx_json_parse(pool, (char *) answer->data, answer->len, &err);

    if (mx_json_get_str(v, "event_id", NULL) == NULL) {
        if (mx_json_get_int(v, "status", &status) == 0
            && status >= 400 && status < 600
            && (errcode = mx_json_get_str(v, "errcode", NULL)) != NULL)
        {
            error = mx_json_get_str(v, "error", NULL);

            return ngx_matrix_send_error(mr->r, (ngx_uint_t) status,
                                         errcode, "%s", error ? error : "");
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_strcmp(j->membership, "leave") == 0) {
        return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, (u_char *) "{}", 2);
    }

    key.len = sizeof("mx:{}:room") - 1 + j->room_id.len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%V}:room", &j->room_id);

    ngx_matrix_fcall_init(&c, "mx_room_fed_join_state", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &j->room_id);
    ngx_matrix_cmd_str(&c, &j->event_id);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_send_state);
}


/* an array of the PDUs of a reply's array element */

static mx_json_t *
ngx_matrix_fed_pdus(ngx_matrix_req_t *mr, redisReply *list)
{
    mx_pool_t        *pool;
    mx_json_t        *arr, *ev;
    mx_json_error_t   err;
    size_t            i;

    pool = ngx_matrix_pool(mr);
    arr = mx_json_array(pool);
    if (arr == NULL || list->type != REDIS_REPLY_ARRAY) {
        return arr;
    }

    for (i = 0; i < list->elements; i++) {
        ev = mx_json_parse(pool, list->element[i]->str, list->element[i]->len,
                           &err);
        if (ev != NULL && mx_json_append(pool, arr, ev) != 0) {
            return NULL;
        }
    }

    return arr;
}


/*
 * send_knock's answer: {knock_room_state}, the stripped state that lets
 * the knocking user tell the room (as an invite's), from the state before
 * the knock
 */

static ngx_int_t
ngx_matrix_fed_knock_state(ngx_matrix_req_t *mr, mx_json_t *state)
{
    mx_pool_t   *pool;
    mx_json_t   *out, *ev, *one, *v, *body;
    const char  *type;
    size_t       i, k;

    static const char  *types[] = { "m.room.create", "m.room.join_rules",
                                    "m.room.name", "m.room.avatar",
                                    "m.room.canonical_alias",
                                    "m.room.encryption", "m.room.topic",
                                    NULL };
    static const char  *keep[] = { "type", "state_key", "content", "sender",
                                   NULL };

    pool = ngx_matrix_pool(mr);
    out = mx_json_array(pool);
    body = mx_json_object(pool);
    if (out == NULL || body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < state->u.a.n; i++) {
        ev = state->u.a.v[i];
        type = mx_json_get_str(ev, "type", NULL);

        for (k = 0; type && types[k]; k++) {
            if (ngx_strcmp(type, types[k]) == 0) {
                break;
            }
        }

        if (type == NULL || types[k] == NULL) {
            continue;
        }

        one = mx_json_object(pool);
        if (one == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (k = 0; keep[k]; k++) {
            v = mx_json_get(ev, keep[k]);
            if (v != NULL && mx_json_set(pool, one, keep[k], v) != 0) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        if (mx_json_append(pool, out, one) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (mx_json_set(pool, body, "knock_room_state", out) != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/* {pdu, {state}, {auth chain}, {servers}} */

static ngx_int_t
ngx_matrix_fed_send_state(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedjoin_t  *j;
    mx_pool_t             *pool;
    mx_json_t             *body, *ev, *state, *chain, *servers;
    mx_json_error_t        err;
    redisReply            *sv;
    size_t                 i;

    pool = ngx_matrix_pool(mr);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                     "The event was not accepted.");
    }

    ev = mx_json_parse(pool, reply->element[0]->str, reply->element[0]->len,
                       &err);
    state = ngx_matrix_fed_pdus(mr, reply->element[1]);
    chain = ngx_matrix_fed_pdus(mr, reply->element[2]);
    servers = mx_json_array(pool);
    body = mx_json_object(pool);

    if (ev == NULL || state == NULL || chain == NULL || servers == NULL
        || body == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    j = mr->data;

    if (ngx_strcmp(j->membership, "knock") == 0) {
        return ngx_matrix_fed_knock_state(mr, state);
    }

    sv = reply->element[3];

    for (i = 0; sv->type == REDIS_REPLY_ARRAY && i < sv->elements; i++) {
        if (mx_json_append(pool, servers,
                           mx_json_strn(pool, sv->element[i]->str,
                                        sv->element[i]->len))
            != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (mx_json_set_str(pool, body, "origin",
                        (char *) mr->mcf->server_name.data) != 0
        || mx_json_set(pool, body, "event", ev) != 0
        || mx_json_set(pool, body, "state", state) != 0
        || mx_json_set(pool, body, "auth_chain", chain) != 0
        || mx_json_set(pool, body, "servers_in_room", servers) != 0
        || mx_json_set(pool, body, "members_omitted", mx_json_bool(pool, 0))
           != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/*
 * PUT /_matrix/federation/v2/invite/{roomId}/{eventId}
 *   {room_version, event, invite_room_state}: another server invites a
 *   local user to one of its rooms.  The event is checked (shape, ID, the
 *   sender of the origin, signed by it: the key from the cache, where the
 *   request's own signature put it), countersigned with this server's key,
 *   kept with the stripped state for the user's /sync (mx_remote_invite),
 *   and answered {event}.
 *
 *   An invite into a room this server has is countersigned and answered
 *   the same, but not kept: the room's own copy comes through /send.
 */

typedef struct {
    ngx_str_t                   user_id;
    const mx_room_version_t    *rv;
    mx_json_t                  *event;
    mx_json_t                  *stripped;
    ngx_matrix_fed_ring_t       ring;       /* the origin's keys */
} ngx_matrix_fedinvite_t;


static ngx_int_t ngx_matrix_fed_invite_keys(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fed_invite_room(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fed_invite_stored(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fed_invite_signed(ngx_matrix_req_t *mr);


ngx_int_t
ngx_matrix_fed_invite(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedinvite_t  *inv;
    ngx_str_t                local, server;
    mx_pool_t               *pool;
    mx_json_t               *ev;
    const char              *v, *sender, *why, *id, *target;
    size_t                   len, slen, tlen;
    u_char                   extra[64];

    pool = ngx_matrix_pool(mr);

    inv = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_fedinvite_t));
    if (inv == NULL || pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = inv;

    v = mx_json_get_str(mr->body, "room_version", &len);
    inv->rv = v ? mx_room_version(v, len) : NULL;
    if (inv->rv == NULL) {
        ngx_snprintf(extra, sizeof(extra), "\"room_version\":\"%*s\"%Z",
                     v ? ngx_min(len, 32) : 0, v ? v : "");

        return ngx_matrix_send_error_extra(mr->r, NGX_HTTP_BAD_REQUEST,
                                           "M_INCOMPATIBLE_ROOM_VERSION",
                                           (char *) extra, "This server does"
                                           " not support the room's"
                                           " version.");
    }

    ev = mx_json_get_obj(mr->body, "event");
    inv->event = ev;
    inv->stripped = mx_json_get_arr(mr->body, "invite_room_state");

    if (ev == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "event must be an"
                                     " object.");
    }

    why = NULL;

    if (mx_event_check_pdu(pool, ev, inv->rv, &why) != 0) {
        /* why is set */

    } else if ((v = mx_json_get_str(ev, "room_id", &len)) == NULL
               || len != mr->params[0].len
               || ngx_strncmp(v, mr->params[0].data, len) != 0)
    {
        why = "room_id is not the room of the path";

    } else if ((v = mx_json_get_str(ev, "type", NULL)) == NULL
               || ngx_strcmp(v, "m.room.member") != 0
               || (v = mx_json_get_str(mx_json_get_obj(ev, "content"),
                                       "membership", NULL)) == NULL
               || ngx_strcmp(v, "invite") != 0)
    {
        why = "not an invite";

    } else if ((sender = mx_json_get_str(ev, "sender", &slen)) == NULL
               || ngx_matrix_fed_user_server(sender, slen, &server) != NGX_OK
               || server.len != mr->origin.len
               || ngx_strncmp(server.data, mr->origin.data, server.len) != 0)
    {
        why = "the sender is not of the origin server";

    } else if ((id = mx_event_id(pool, ev, inv->rv)) == NULL
               || ngx_strlen(id) != mr->params[1].len
               || ngx_strncmp(id, mr->params[1].data, mr->params[1].len)
                  != 0)
    {
        why = "the event ID of the path is not the event's";
    }

    if (why != NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "%s", why);
    }

    target = mx_json_get_str(ev, "state_key", &tlen);
    inv->user_id.data = (u_char *) target;
    inv->user_id.len = tlen;

    if (ngx_matrix_user_id_local(mr, &inv->user_id, &local) != NGX_OK) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "The invitee is not"
                                     " a user of this server.");
    }

    /* the sender's server's keys, from the cache */
    return ngx_matrix_fed_ring_read(mr, &mr->origin,
                                    ngx_matrix_fed_invite_keys);
}


/* a server's keys from the cache, for a ring: next(mr, the HGETALL) */

ngx_int_t
ngx_matrix_fed_ring_read(ngx_matrix_req_t *mr, ngx_str_t *server,
    ngx_matrix_reply_pt next)
{
    ngx_matrix_cmd_t  c;
    ngx_str_t         key;

    key.len = sizeof("mx:serverkeys:{}") - 1 + server->len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:serverkeys:{%V}", server);

    c.n = 0;
    c.overflow = 0;
    ngx_matrix_cmd_cstr(&c, "HGETALL");
    ngx_matrix_cmd_str(&c, &key);

    return ngx_matrix_cmd_send(mr, &c, next);
}


/*
 * The key of the ring's server with that ID, whenever it was valid (the
 * fedsender has just fetched what a keys job asked; an inbound request's
 * signature has just been checked with the same cache).
 */

const unsigned char *
ngx_matrix_fed_ring_key(void *ctx, const char *server, const char *key_id,
    int64_t ts)
{
    ngx_matrix_fed_ring_t  *ring = ctx;
    redisReply             *r;
    unsigned char          *pk;
    mx_pool_t              *pool;
    size_t                  i;
    ssize_t                 n;

    (void) ts;

    r = ring->keys;
    pool = ngx_matrix_pool(ring->mr);

    if (r == NULL || r->type != REDIS_REPLY_ARRAY
        || ngx_strlen(server) != ring->server.len
        || ngx_strncmp(server, ring->server.data, ring->server.len) != 0)
    {
        return NULL;
    }

    for (i = 0; i + 1 < r->elements; i += 2) {
        if (ngx_strlen(key_id) != r->element[i]->len
            || ngx_strncmp(key_id, r->element[i]->str, r->element[i]->len)
               != 0)
        {
            continue;
        }

        pk = mx_palloc(pool, mx_base64_decoded_max(r->element[i + 1]->len));
        n = pk ? mx_base64_decode(r->element[i + 1]->str,
                                  r->element[i + 1]->len, pk, MX_BASE64_STD)
               : -1;

        return n == 32 ? pk : NULL;
    }

    return NULL;
}


static ngx_int_t
ngx_matrix_fed_invite_keys(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedinvite_t  *inv;
    mx_pool_t               *pool;
    const char              *why;

    inv = mr->data;
    pool = ngx_matrix_pool(mr);

    if (reply->type != REDIS_REPLY_ARRAY) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    inv->ring.mr = mr;
    inv->ring.server = mr->origin;
    inv->ring.keys = reply;
    why = NULL;

    if (mx_event_verify(pool, inv->event, inv->rv, ngx_matrix_fed_ring_key,
                        &inv->ring, &why)
        != MX_EVENT_OK)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                     "The invite's signature or hash does"
                                     " not verify: %s",
                                     why ? why : "invalid");
    }

    inv->ring.keys = NULL;              /* the reply goes with this call */

    if (mx_event_sign(pool, inv->event, inv->rv,
                      (char *) mr->mcf->server_name.data,
                      mr->mcf->signing_key)
        != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a room this server has: its copy comes by /send (see above); a
     * server its ACL denies is refused */
    return ngx_matrix_fed_acl_ask(mr, &mr->params[0],
                                  ngx_matrix_fed_invite_room);
}


/*
 * The stripped state events another server gave (invite_room_state,
 * knock_room_state), each as canonical JSON, joined by \x1e: as
 * mx_remote_invite and mx_remote_knock keep them.  Entries that are not
 * objects are left out; no array is no state.
 */

char *
ngx_matrix_fed_stripped(ngx_matrix_req_t *mr, mx_json_t *arr, size_t *len)
{
    mx_pool_t  *pool;
    mx_json_t  *s;
    char       *one, *all;
    size_t      i, n, total;
    u_char     *p;

    pool = ngx_matrix_pool(mr);
    all = "";
    total = 0;

    for (i = 0; arr && arr->type == MX_JSON_ARRAY && i < arr->u.a.n; i++) {
        s = arr->u.a.v[i];
        if (s == NULL || s->type != MX_JSON_OBJECT) {
            continue;
        }

        one = mx_json_encode(pool, s, 0, &n);
        p = one ? (u_char *) mx_palloc(pool, total + 1 + n + 1) : NULL;
        if (p == NULL) {
            return NULL;
        }

        ngx_memcpy(p, all, total);
        if (total) {
            p[total++] = '\036';
        }
        ngx_memcpy(p + total, one, n);
        total += n;
        p[total] = '\0';
        all = (char *) p;
    }

    *len = total;

    return all;
}


static ngx_int_t
ngx_matrix_fed_invite_room(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedinvite_t  *inv;
    ngx_matrix_cmd_t         c;
    ngx_str_t                key;
    mx_pool_t               *pool;
    char                    *pdu, *all;
    size_t                   len, total;
    ngx_int_t                rc;
    const mx_room_version_t *rv;

    inv = mr->data;
    pool = ngx_matrix_pool(mr);

    switch (ngx_matrix_fed_acl_reply(mr, reply, NULL, &rv, &rc)) {

    case NGX_DECLINED:
        break;                          /* not here: the invite is kept */

    case NGX_OK:
        return ngx_matrix_fed_invite_signed(mr);

    default:
        return rc;                      /* denied by its ACL: answered */
    }

    pdu = mx_json_encode(pool, inv->event, mx_event_json_flags(inv->rv),
                         &len);
    all = ngx_matrix_fed_stripped(mr, inv->stripped, &total);
    if (pdu == NULL || all == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    key.len = sizeof("mx:{}:invited:") - 1 + mr->params[0].len
              + inv->user_id.len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%V}:invited:%V", &mr->params[0],
                &inv->user_id);

    ngx_matrix_fcall_init(&c, "mx_remote_invite", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->params[0]);
    ngx_matrix_cmd_str(&c, &inv->user_id);
    ngx_matrix_cmd_str(&c, &mr->params[1]);
    ngx_matrix_cmd_add(&c, pdu, len);
    ngx_matrix_cmd_add(&c, all, total);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_invite_stored);
}


static ngx_int_t
ngx_matrix_fed_invite_stored(ngx_matrix_req_t *mr, redisReply *reply)
{
    if (reply->type != REDIS_REPLY_INTEGER) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_fed_invite_signed(mr);
}


/* {event}: the invite with this server's signature added */

static ngx_int_t
ngx_matrix_fed_invite_signed(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedinvite_t  *inv;
    mx_pool_t               *pool;
    mx_json_t               *body;

    inv = mr->data;
    pool = ngx_matrix_pool(mr);

    body = mx_json_object(pool);
    if (body == NULL || mx_json_set(pool, body, "event", inv->event) != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}

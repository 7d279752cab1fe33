/*
 * Inviting another server's user: the inviting side (server-server API,
 * "Inviting to a room").  A local invite of a user of another server
 * (POST /rooms/{id}/invite, or the member event by PUT .../state) is built
 * and checked as every local event (ngx_matrix_room.c: the auth rules
 * against the room's current state refuse at once, 403: an inviter
 * without the power, a banned invitee), and then held: the invitee's
 * server countersigns it before the room has it.
 *
 *   FCALL mx_room_invite_state ─► the stripped state and the inviter's
 *        │  member event, full PDUs
 *   request PUT v2/invite/{room}/{event_id} {room_version, event,
 *        │  invite_room_state} ─► {event}: the same event (its ID), with
 *        │  the invitee's server's signature
 *   keys job for that server, the key IDs it signed with
 *        │
 *   HGETALL mx:serverkeys:{<server>}: its signature verified on our copy
 *        │  of the event (mx_event_signed); nothing else of the answer used
 *        ▼
 *   ngx_matrix_send_submit: the countersigned event to the roomserver as
 *   any local event; the verdict answers the client ({} or {"event_id"})
 *
 * The remote's refusal (403 M_FORBIDDEN ...) is the client's; no answer in
 * time is 504, a server that cannot be reached 502, an answer that is not
 * the event countersigned 502.  Then the room never has the invite.
 *
 * createRoom's invites of other servers' users take the same way, one send
 * each in the room just made (ngx_matrix_fed_invite_remote): quiet, so a
 * failure is a line in the log and done() with NULL, not the client's
 * answer; the invitee's server is waited for at most what createRoom has
 * left.
 *
 * The held invite is not the tip of the room's lane (ngx_matrix_lane.c):
 * sends meanwhile do not build on an event that may never be stored.
 * Room versions 1 and 2 (v1 /invite) are not offered.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_event.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


#define NGX_MATRIX_INVOUT_KEYS  4       /* key IDs of one signature */


typedef struct {
    ngx_matrix_send_t          *send;
    ngx_str_t                   server;     /* the invitee's */
    const char                 *server_name;
    ngx_str_t                   req;
    mx_json_t                  *event;      /* ours: s->pdus[s->n - 1] */
    const char                 *event_id;
    ngx_matrix_fed_ring_t       ring;
} ngx_matrix_invout_t;


static ngx_int_t ngx_matrix_invout_fail(ngx_matrix_req_t *mr,
    const char *why, ngx_str_t *answer);
static ngx_int_t ngx_matrix_invout_state(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_invout_answered(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static ngx_int_t ngx_matrix_invout_keys(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static ngx_int_t ngx_matrix_invout_verify(ngx_matrix_req_t *mr,
    redisReply *reply);


/*
 * createRoom's invite of user_id, of another server, into the room of the
 * send in progress (mr->data, its verdict in): a fresh send of the same
 * request with the same room, sender and data, quiet, which ends in
 * done(mr, event_id or NULL).  content: the invite's ({"membership":
 * "invite", "is_direct": true}, say).
 */

ngx_int_t
ngx_matrix_fed_invite_remote(ngx_matrix_req_t *mr, const char *user_id,
    mx_json_t *content, ngx_msec_t timeout, ngx_matrix_sent_pt done)
{
    ngx_matrix_send_t  *prev, *s;

    prev = mr->data;

    s = ngx_matrix_send_new(mr);
    if (s == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->room_id = prev->room_id;
    s->sender = prev->sender;
    s->data = prev->data;
    s->type = "m.room.member";
    s->state_key = user_id;
    s->content = content;
    s->quiet = 1;
    s->timeout = timeout;
    s->done = done;

    return ngx_matrix_send_start(mr);
}


/* a built event: an invite of another server's user is held here */

ngx_int_t
ngx_matrix_fed_invite_out(ngx_matrix_req_t *mr, const mx_auth_event_t *ev)
{
    ngx_matrix_send_t    *s;
    ngx_matrix_invout_t  *io;
    ngx_matrix_cmd_t      c;
    ngx_str_t             key, *self;
    const char           *colon;

    s = mr->data;

    if (s->chain || s->nowait || ev->state_key == NULL
        || ev->membership == NULL
        || ngx_strcmp(ev->type, "m.room.member") != 0
        || ngx_strcmp(ev->membership, "invite") != 0)
    {
        return NGX_DECLINED;
    }

    /* the state key is a valid user ID (ngx_matrix_send_start) */
    colon = ngx_strchr(ev->state_key, ':');
    self = &mr->mcf->server_name;

    if (colon == NULL
        || (ngx_strlen(colon + 1) == self->len
            && ngx_strncmp(colon + 1, self->data, self->len) == 0))
    {
        return NGX_DECLINED;
    }

    io = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_invout_t));
    if (io == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    io->send = s;
    io->server_name = colon + 1;
    io->server.data = (u_char *) colon + 1;
    io->server.len = ngx_strlen(colon + 1);
    io->event = s->pdus[s->n - 1];
    io->event_id = s->ids[s->n - 1];
    mr->data = io;

    key.len = sizeof("mx:{}:state") - 1 + ngx_strlen(s->room_id);
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%s}:state", s->room_id);

    ngx_matrix_fcall_init(&c, "mx_room_invite_state", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_cstr(&c, s->room_id);
    ngx_matrix_cmd_cstr(&c, s->sender);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_invout_state);
}


/*
 * The invite fails after the invitee's server was asked: a 502 for the
 * client, or for a quiet send a warning with what that server answered
 * (answer, or none) and done() with NULL.
 */

static ngx_int_t
ngx_matrix_invout_fail(ngx_matrix_req_t *mr, const char *why,
    ngx_str_t *answer)
{
    ngx_matrix_invout_t  *io;
    ngx_matrix_send_t    *s;
    ngx_str_t             said;

    io = mr->data;
    s = io->send;

    if (!s->quiet) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_GATEWAY, "M_UNKNOWN",
                                     "%V %s", &io->server, why);
    }

    ngx_str_set(&said, "");
    if (answer != NULL) {
        said.data = answer->data;
        said.len = ngx_min(answer->len, 256);
    }

    ngx_log_error(NGX_LOG_WARN, mr->r->connection->log, 0,
                  "matrix: %s not invited to %s: %V %s %V", s->state_key,
                  s->room_id, &io->server, why, &said);

    mr->data = s;

    return s->done(mr, NULL, 0);
}


/* {pdu, ...}: the request to the invitee's server */

static ngx_int_t
ngx_matrix_invout_state(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_invout_t  *io;
    ngx_matrix_send_t    *s;
    mx_pool_t            *pool;
    mx_json_t            *state, *ev, *body;
    mx_json_error_t       err;
    ngx_str_t             path, b;
    char                 *text;
    size_t                i, len;

    io = mr->data;
    s = io->send;
    pool = ngx_matrix_pool(mr);

    state = mx_json_array(pool);
    body = mx_json_object(pool);
    if (state == NULL || body == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < reply->elements; i++) {
        ev = mx_json_parse(pool, reply->element[i]->str,
                           reply->element[i]->len, &err);
        if (ev != NULL && mx_json_append(pool, state, ev) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (mx_json_set_str(pool, body, "room_version", s->rv->id) != 0
        || mx_json_set(pool, body, "event", io->event) != 0
        || mx_json_set(pool, body, "invite_room_state", state) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    text = mx_json_encode(pool, body, mx_event_json_flags(s->rv), &len);

    if (text == NULL
        || ngx_matrix_fed_path(mr, &path, "/_matrix/federation/v2/invite",
                               s->room_id, io->event_id, "")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (s->timeout == 0) {
        return ngx_matrix_fed_request(mr, &io->server, &io->req, "PUT", &path,
                                      text, len, ngx_matrix_invout_answered);
    }

    b.data = (u_char *) text;
    b.len = len;

    return ngx_matrix_job_request(mr, &io->server, "PUT", &path, &b,
                                  s->timeout, ngx_matrix_invout_answered,
                                  &io->req);
}


/*
 * {event}: the invitee's server's signatures go on our copy, whose ID the
 * answer must have; then that server's keys.
 */

static ngx_int_t
ngx_matrix_invout_answered(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_invout_t  *io;
    mx_pool_t            *pool;
    mx_json_t            *body, *ev, *sigs, *mine;
    ngx_int_t             rc;
    const char           *id, *k;
    u_char               *ids, *p;
    size_t                i, n, len;

    io = mr->data;
    pool = ngx_matrix_pool(mr);

    /* quiet: a failure is not answered there (as if not the last) */
    body = ngx_matrix_fed_answer(mr, answer, &io->server, "invite",
                                 !io->send->quiet, &rc);
    if (body == NULL && !io->send->quiet) {
        return rc;
    }

    if (body == NULL) {
        return ngx_matrix_invout_fail(mr, answer ? "did not take the invite:"
                                                 : "did not answer in time.",
                                      answer);
    }

    ev = mx_json_get_obj(body, "event");
    id = ev ? mx_event_id(pool, ev, io->send->rv) : NULL;
    sigs = mx_json_get_obj(mx_json_get_obj(ev, "signatures"),
                           io->server_name);

    if (id == NULL || ngx_strcmp(id, io->event_id) != 0
        || sigs == NULL || sigs->u.o.n == 0)
    {
        return ngx_matrix_invout_fail(mr, "did not answer the invite with"
                                      " the event and its signature.",
                                      NULL);
    }

    mine = mx_json_get_obj(io->event, "signatures");
    if (mine == NULL
        || mx_json_set(pool, mine, io->server_name, sigs) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the key IDs it signed with, space-separated, for the keys job */
    len = 0;
    for (i = 0; i < sigs->u.o.n && i < NGX_MATRIX_INVOUT_KEYS; i++) {
        len += ngx_strlen(sigs->u.o.m[i].key) + 1;
    }

    ids = ngx_pnalloc(mr->r->pool, len + 1);
    if (ids == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ids;
    for (i = 0; i < sigs->u.o.n && i < NGX_MATRIX_INVOUT_KEYS; i++) {
        k = sigs->u.o.m[i].key;
        n = ngx_strlen(k);

        if (ngx_strncmp(k, "ed25519:", 8) != 0 || n > 255
            || ngx_strlchr((u_char *) k, (u_char *) k + n, ' '))
        {
            continue;
        }

        if (p != ids) {
            *p++ = ' ';
        }
        p = ngx_cpymem(p, k, n);
    }
    *p = '\0';

    return ngx_matrix_fed_keys(mr, &io->server, (char *) ids, &io->req,
                               ngx_matrix_invout_keys);
}


/* the keys job's answer does not matter: the cache says */

static ngx_int_t
ngx_matrix_invout_keys(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_invout_t  *io;

    (void) answer;

    io = mr->data;

    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    return ngx_matrix_fed_ring_read(mr, &io->server,
                                    ngx_matrix_invout_verify);
}


/* its signature verified: the invite goes to the room */

static ngx_int_t
ngx_matrix_invout_verify(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_invout_t  *io;
    ngx_int_t             ok;

    io = mr->data;

    io->ring.mr = mr;
    io->ring.server = io->server;
    io->ring.keys = reply;

    ok = mx_event_signed(ngx_matrix_pool(mr), io->event, io->send->rv,
                         io->server_name, ngx_matrix_fed_ring_key, &io->ring);

    io->ring.keys = NULL;               /* the reply goes with this call */

    if (!ok) {
        return ngx_matrix_invout_fail(mr, "signed the invite with a"
                                      " signature that does not verify.",
                                      NULL);
    }

    mr->data = io->send;

    return ngx_matrix_send_submit(mr);
}

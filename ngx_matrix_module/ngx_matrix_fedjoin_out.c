/*
 * Joining a room of another server: the joining side.  A local join of a
 * room this server does not have (ngx_matrix_room.c's unknown hook) goes
 * through a server in the room (below, which).  The nginx worker does no outbound HTTP: each
 * step is a job for the fedsender on mx:fedjobs, the request parked in
 * between (ngx_matrix_wait).
 *
 *   request GET make_join/{room}/{user}?ver=3..12 ─► {event, room_version}
 *        │  the template checked (ours, this room), our profile in its
 *        │  content, timestamp, hashes and our signature, its ID
 *   request PUT v2/send_join/{room}/{id} ─► {state, auth_chain, event}
 *        │
 *   keys_many job: the keys of every server whose signature the state
 *        │ and auth chain need, the resident as notary
 *        │ (ngx_matrix_fedjoin_keys.c; the roomserver reads only the cache)
 *   XADD mx:input:<n> kind=join_state room version event_id event state
 *        auth_chain origin reply req ─► roomserver_join.c checks and
 *        stores them; the syncer answers {"event_id"} once the join is
 *        visible to /sync
 *        │
 *   200 {"room_id"}
 *
 * The servers asked, in order until one answers make_join: those a
 * remote alias's server named (s->servers, ngx_matrix_membership.c), those
 * the request names (server_name, via), the sender's of the user's invite
 * (mx:{<room>}:invited:<user>), the one that took the user's knock
 * (mx:{<room>}:knocked:<user>), the room ID's; at most 8, never this one.
 * The last one's error is the client's.
 *
 * A knock takes the same way with make_knock (ver=7..12) and send_knock
 * (v1), whose knock_room_state is kept for /sync with the knock
 * (mx_remote_knock); there is no state to store, the room stays unknown
 * here until the user is invited and joins.  A leave of such a room
 * (rejecting a remote invite, rescinding a knock) goes through the
 * invite's sender's server or the knock's with make_leave/send_leave, and
 * ends with mx_remote_invite_done.
 *
 * Room versions 1 and 2 (event IDs the sender makes up) are not offered.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_event.h>
#include <mx_room_version.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


#define NGX_MATRIX_RJOIN_TIMEOUT  30000
#define NGX_MATRIX_RJOIN_SERVERS  8

#define NGX_MATRIX_RJOIN_JOIN     0
#define NGX_MATRIX_RJOIN_LEAVE    1
#define NGX_MATRIX_RJOIN_KNOCK    2

#define NGX_MATRIX_FED_PATH       "/_matrix/federation/"


/* what differs between the three: the endpoints and the versions offered */

typedef struct {
    const char                 *make;       /* its name, for errors */
    const char                 *make_path;
    const char                 *ver;
    const char                 *send;
    const char                 *send_path;
} ngx_matrix_rjoin_kind_t;


static const ngx_matrix_rjoin_kind_t  ngx_matrix_rjoin_kinds[] = {
    { "make_join", NGX_MATRIX_FED_PATH "v1/make_join",
      "?ver=3&ver=4&ver=5&ver=6&ver=7&ver=8&ver=9&ver=10&ver=11&ver=12",
      "send_join", NGX_MATRIX_FED_PATH "v2/send_join" },
    { "make_leave", NGX_MATRIX_FED_PATH "v1/make_leave", "",
      "send_leave", NGX_MATRIX_FED_PATH "v2/send_leave" },
    { "make_knock", NGX_MATRIX_FED_PATH "v1/make_knock",
      "?ver=7&ver=8&ver=9&ver=10&ver=11&ver=12",
      "send_knock", NGX_MATRIX_FED_PATH "v1/send_knock" }
};


typedef struct {
    ngx_matrix_send_t          *send;
    ngx_str_t                   server;       /* the one asked now */
    ngx_str_t                   servers[NGX_MATRIX_RJOIN_SERVERS];
    ngx_uint_t                  nservers;
    ngx_uint_t                  next;         /* the next to ask */
    ngx_str_t                   req;
    const mx_room_version_t    *rv;
    mx_json_t                  *event;
    char                       *event_id;
    mx_json_t                  *answer;      /* send_<kind>'s body */
    ngx_uint_t                  kind;        /* NGX_MATRIX_RJOIN_* */
    const ngx_matrix_rjoin_kind_t
                               *k;           /* its endpoints */
} ngx_matrix_rjoin_t;


static ngx_int_t ngx_matrix_rjoin_start(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_rjoin_pending(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_rjoin_made(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static ngx_int_t ngx_matrix_rjoin_leave_done(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_rjoin_left(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_rjoin_knock_done(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_rjoin_knocked(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_rjoin_sent(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static ngx_int_t ngx_matrix_rjoin_keys(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static ngx_int_t ngx_matrix_fed_queued(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_rjoin_verdict(ngx_matrix_req_t *mr,
    ngx_str_t *answer);


/* a path segment, percent-encoded but for the unreserved characters */

static u_char *
ngx_matrix_rjoin_seg(u_char *p, const char *s, size_t len)
{
    static u_char  hex[] = "0123456789ABCDEF";
    u_char         c;

    while (len--) {
        c = (u_char) *s++;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~')
        {
            *p++ = c;
            continue;
        }

        *p++ = '%';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0xf];
    }

    return p;
}


/*
 * "<prefix>/<room>/<second>" with both segments encoded, then suffix: the
 * path of a request job (make_join, send_join, invite, ...)
 */

ngx_int_t
ngx_matrix_fed_path(ngx_matrix_req_t *mr, ngx_str_t *path,
    const char *prefix, const char *room, const char *second,
    const char *suffix)
{
    u_char  *p;

    path->data = ngx_pnalloc(mr->r->pool, ngx_strlen(prefix)
                             + 3 * (ngx_strlen(room) + ngx_strlen(second))
                             + ngx_strlen(suffix) + 2);
    if (path->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(path->data, prefix, ngx_strlen(prefix));
    *p++ = '/';
    p = ngx_matrix_rjoin_seg(p, room, ngx_strlen(room));
    *p++ = '/';
    p = ngx_matrix_rjoin_seg(p, second, ngx_strlen(second));
    p = ngx_cpymem(p, suffix, ngx_strlen(suffix));
    path->len = p - path->data;

    return NGX_OK;
}


/* a server to ask, once, never this one */

static void
ngx_matrix_rjoin_add(ngx_matrix_req_t *mr, ngx_matrix_rjoin_t *j,
    u_char *name, size_t len)
{
    ngx_uint_t  i;

    if (len == 0 || j->nservers == NGX_MATRIX_RJOIN_SERVERS
        || (len == mr->mcf->server_name.len
            && ngx_strncmp(name, mr->mcf->server_name.data, len) == 0))
    {
        return;
    }

    for (i = 0; i < j->nservers; i++) {
        if (j->servers[i].len == len
            && ngx_strncmp(j->servers[i].data, name, len) == 0)
        {
            return;
        }
    }

    j->servers[j->nservers].data = name;
    j->servers[j->nservers].len = len;
    j->nservers++;
}


/* the server of an ID (user, room), if it names one */

static void
ngx_matrix_rjoin_add_of(ngx_matrix_req_t *mr, ngx_matrix_rjoin_t *j,
    const char *id)
{
    u_char  *colon;
    size_t   len;

    if (id == NULL) {
        return;
    }

    len = ngx_strlen(id);
    colon = ngx_strlchr((u_char *) id, (u_char *) id + len, ':');
    if (colon != NULL) {
        ngx_matrix_rjoin_add(mr, j, colon + 1,
                             (u_char *) id + len - (colon + 1));
    }
}


/* every server_name and via argument, in order */

static void
ngx_matrix_rjoin_args(ngx_matrix_req_t *mr, ngx_matrix_rjoin_t *j)
{
    u_char  *p, *end, *amp, *eq, *dst, *src, *v;
    size_t   len;

    p = mr->r->args.data;
    end = p + mr->r->args.len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        eq = ngx_strlchr(p, amp, '=');

        if (eq != NULL
            && ((eq - p == 11 && ngx_strncmp(p, "server_name", 11) == 0)
                || (eq - p == 3 && ngx_strncmp(p, "via", 3) == 0)))
        {
            len = amp - (eq + 1);
            v = ngx_pnalloc(mr->r->pool, len);
            if (v != NULL) {
                dst = v;
                src = eq + 1;
                ngx_unescape_uri(&dst, &src, len, NGX_UNESCAPE_URI);
                ngx_matrix_rjoin_add(mr, j, v, dst - v);
            }
        }

        p = amp + 1;
    }
}


/* "mx:{<room>}:<what>:<user>" of the send's room and sender */

static ngx_int_t
ngx_matrix_rjoin_key(ngx_matrix_req_t *mr, ngx_str_t *key, const char *what)
{
    ngx_matrix_rjoin_t  *j;
    ngx_matrix_send_t   *s;

    j = mr->data;
    s = j->send;

    key->len = sizeof("mx:{}::") - 1 + ngx_strlen(s->room_id)
               + ngx_strlen(what) + ngx_strlen(s->sender);
    key->data = ngx_pnalloc(mr->r->pool, key->len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }
    ngx_sprintf(key->data, "mx:{%s}:%s:%s", s->room_id, what, s->sender);

    return NGX_OK;
}


/* the user's invite and knock held for the room: mx_remote_pending */

static ngx_int_t
ngx_matrix_rjoin_new(ngx_matrix_req_t *mr, ngx_uint_t kind)
{
    ngx_matrix_send_t   *s;
    ngx_matrix_rjoin_t  *j;
    ngx_matrix_cmd_t     c;
    ngx_str_t            invited, knocked, *server;
    ngx_uint_t           i;

    s = mr->data;

    j = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_rjoin_t));
    if (j == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    j->send = s;
    j->kind = kind;
    j->k = &ngx_matrix_rjoin_kinds[kind];
    mr->data = j;

    /* a remote alias's servers first, then those the client names
     * (server_name, via) */
    if (kind != NGX_MATRIX_RJOIN_LEAVE) {
        for (i = 0; s->servers && i < s->servers->nelts; i++) {
            server = (ngx_str_t *) s->servers->elts + i;
            ngx_matrix_rjoin_add(mr, j, server->data, server->len);
        }

        ngx_matrix_rjoin_args(mr, j);
    }

    if (ngx_matrix_rjoin_key(mr, &invited, "invited") != NGX_OK
        || ngx_matrix_rjoin_key(mr, &knocked, "knocked") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_remote_pending", 2);
    ngx_matrix_cmd_str(&c, &invited);
    ngx_matrix_cmd_str(&c, &knocked);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_rjoin_pending);
}


/* a local join of a room this server does not have */

ngx_int_t
ngx_matrix_fed_join_remote(ngx_matrix_req_t *mr)
{
    return ngx_matrix_rjoin_new(mr, NGX_MATRIX_RJOIN_JOIN);
}


/* a local knock on such a room */

ngx_int_t
ngx_matrix_fed_knock_remote(ngx_matrix_req_t *mr)
{
    return ngx_matrix_rjoin_new(mr, NGX_MATRIX_RJOIN_KNOCK);
}


/*
 * a local leave of such a room: the rejection of a remote invite, or the
 * knock rescinded
 */

ngx_int_t
ngx_matrix_fed_leave_remote(ngx_matrix_req_t *mr)
{
    return ngx_matrix_rjoin_new(mr, NGX_MATRIX_RJOIN_LEAVE);
}


/*
 * {invite PDU or '', knock's server or ''}: the invite's sender's server
 * is in the room, and so is the one that took the knock
 */

static ngx_int_t
ngx_matrix_rjoin_pending(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_rjoin_t  *j;
    ngx_matrix_send_t   *s;
    mx_json_t           *inv;
    mx_json_error_t      err;
    ngx_str_t            knock;
    const char          *sender;

    j = mr->data;
    s = j->send;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    inv = mx_json_parse(ngx_matrix_pool(mr), reply->element[0]->str,
                        reply->element[0]->len, &err);
    sender = mx_json_get_str(inv, "sender", NULL);

    /* the reply goes with this call: the server is kept */
    knock.len = reply->element[1]->len;
    knock.data = ngx_pnalloc(mr->r->pool, knock.len + 1);
    if (knock.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(knock.data, reply->element[1]->str, knock.len);

    if (j->kind == NGX_MATRIX_RJOIN_LEAVE && sender == NULL
        && knock.len == 0)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     "Unknown room %s.", s->room_id);
    }

    /* then the inviter's server, the knock's, the room ID's (v12 IDs name
     * none) */
    ngx_matrix_rjoin_add_of(mr, j, sender);
    ngx_matrix_rjoin_add(mr, j, knock.data, knock.len);
    ngx_matrix_rjoin_add_of(mr, j, s->room_id);

    if (j->nservers == 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND,
                                     "M_NOT_FOUND", "Unknown room %s;"
                                     " name a server in it with"
                                     " server_name.", s->room_id);
    }

    return ngx_matrix_rjoin_start(mr);
}


static ngx_int_t
ngx_matrix_rjoin_start(ngx_matrix_req_t *mr)
{
    ngx_matrix_rjoin_t  *j;
    ngx_matrix_send_t   *s;
    ngx_str_t            path;

    j = mr->data;
    s = j->send;

    j->server = j->servers[j->next++];

    if (ngx_matrix_fed_path(mr, &path, j->k->make_path, s->room_id, s->sender,
                            j->k->ver)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_fed_request(mr, &j->server, &j->req, "GET", &path, "",
                                  0, ngx_matrix_rjoin_made);
}


static ngx_int_t
ngx_matrix_fed_queued(ngx_matrix_req_t *mr, redisReply *reply)
{
    (void) mr;
    (void) reply;

    /* parked until the fedsender answers */
    return NGX_DONE;
}


/*
 * A request job for the fedsender, to server; the request parks until
 * next(mr, answer) with its answer (NULL: none in time).  req receives the
 * waiter's number.
 */

ngx_int_t
ngx_matrix_fed_request(ngx_matrix_req_t *mr, ngx_str_t *server,
    ngx_str_t *req, const char *method, ngx_str_t *path, char *body,
    size_t len, ngx_matrix_wait_pt next)
{
    ngx_str_t  b;

    b.data = (u_char *) body;
    b.len = len;

    return ngx_matrix_job_request(mr, server, method, path, &b,
                                  NGX_MATRIX_RJOIN_TIMEOUT, next, req);
}


/*
 * A keys job: server's keys (key_ids space-separated, "" for its current
 * ones) in the cache, valid now; next(mr, answer) as for a request.
 */

ngx_int_t
ngx_matrix_fed_keys(ngx_matrix_req_t *mr, ngx_str_t *server,
    const char *key_ids, ngx_str_t *req, ngx_matrix_wait_pt next)
{
    ngx_matrix_cmd_t  c;

    if (ngx_matrix_wait(mr, NGX_MATRIX_RJOIN_TIMEOUT, next, req) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_job_init(&c, "keys", req);
    ngx_matrix_cmd_cstr(&c, "server");
    ngx_matrix_cmd_str(&c, server);
    ngx_matrix_cmd_cstr(&c, "key_ids");
    ngx_matrix_cmd_cstr(&c, key_ids);
    ngx_matrix_cmd_cstr(&c, "valid_at");
    ngx_matrix_cmd_cstr(&c, "0");

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_queued);
}


/*
 * The fedsender's answer {"status","body"} to a request to server: the
 * body of a 200, else the error answered to the client (the remote's
 * errcode when it gave one; no answer: 504, a failure to reach it: 502).
 * Not the last server to ask (last 0): NULL and NGX_DECLINED instead of an
 * answer, the caller asks the next.
 */

mx_json_t *
ngx_matrix_fed_answer(ngx_matrix_req_t *mr, ngx_str_t *answer,
    ngx_str_t *server, const char *what, ngx_uint_t last, ngx_int_t *rc)
{
    mx_pool_t        *pool;
    mx_json_t        *v, *body;
    mx_json_error_t   err;
    const char       *errcode, *error;
    int64_t           status;

    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    if (!last) {
        /* a server that fails: the next one is asked instead */
        pool = ngx_matrix_pool(mr);
        v = answer ? mx_json_parse(pool, (char *) answer->data, answer->len,
                                   &err)
                   : NULL;
        body = mx_json_get_obj(v, "body");

        if (mx_json_get_int(v, "status", &status) == 0 && status == 200
            && body != NULL)
        {
            return body;
        }

        *rc = NGX_DECLINED;
        return NULL;
    }

    if (answer == NULL) {
        *rc = ngx_matrix_send_error(mr->r, NGX_HTTP_GATEWAY_TIME_OUT,
                                    "M_UNKNOWN", "%V did not answer %s in"
                                    " time.", server, what);
        return NULL;
    }

    pool = ngx_matrix_pool(mr);
    v = mx_json_parse(pool, (char *) answer->data, answer->len, &err);
    body = mx_json_get_obj(v, "body");

    if (mx_json_get_int(v, "status", &status) != 0) {
        error = mx_json_get_str(v, "error", NULL);
        *rc = ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_GATEWAY, "M_UNKNOWN",
                                    "%s to %V failed: %s", what, server,
                                    error ? error : "no answer");
        return NULL;
    }

    if (status == 200 && body != NULL) {
        return body;
    }

    errcode = mx_json_get_str(body, "errcode", NULL);
    error = mx_json_get_str(body, "error", NULL);

    if (errcode != NULL && status >= 400 && status < 500) {
        *rc = ngx_matrix_send_error(mr->r, (ngx_uint_t) status, errcode,
                                    "%V: %s", server, error ? error : "");
        return NULL;
    }

    *rc = ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_GATEWAY, "M_UNKNOWN",
                                "%s to %V: status %L", what, server,
                                status);
    return NULL;
}


/* make_join's template: ours to complete, sign and send */

static ngx_int_t
ngx_matrix_rjoin_made(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_rjoin_t  *j;
    ngx_matrix_send_t   *s;
    mx_pool_t           *pool;
    mx_json_t           *body, *ev, *content, *mine;
    ngx_str_t            path;
    ngx_int_t            rc;
    const char          *v;
    char                *text;
    size_t               len, i;

    j = mr->data;
    s = j->send;
    pool = ngx_matrix_pool(mr);

    body = ngx_matrix_fed_answer(mr, answer, &j->server, j->k->make,
                                 j->next == j->nservers, &rc);
    if (body == NULL) {
        return rc == NGX_DECLINED ? ngx_matrix_rjoin_start(mr) : rc;
    }

    v = mx_json_get_str(body, "room_version", &len);
    j->rv = v ? mx_room_version(v, len) : NULL;
    ev = mx_json_get_obj(body, "event");

    if (j->rv == NULL || j->rv->event_id == MX_EVENT_ID_OPAQUE || ev == NULL
        || (j->kind == NGX_MATRIX_RJOIN_KNOCK && !j->rv->knock)
        || (v = mx_json_get_str(ev, "type", NULL)) == NULL
        || ngx_strcmp(v, "m.room.member") != 0
        || (v = mx_json_get_str(ev, "sender", NULL)) == NULL
        || ngx_strcmp(v, s->sender) != 0
        || (v = mx_json_get_str(ev, "state_key", NULL)) == NULL
        || ngx_strcmp(v, s->sender) != 0
        || (v = mx_json_get_str(ev, "room_id", NULL)) == NULL
        || ngx_strcmp(v, s->room_id) != 0)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_GATEWAY, "M_UNKNOWN",
                                     "%V answered %s with an event this"
                                     " server cannot use.", &j->server,
                                     j->k->make);
    }

    /* the template's content (join_authorised_via_users_server, say) with
     * the membership and profile of ours */
    content = mx_json_get_obj(ev, "content");
    content = content ? mx_json_object_copy(pool, content)
                      : mx_json_object(pool);
    mine = s->content;

    for (i = 0; content && i < mine->u.o.n; i++) {
        if (mx_json_set(pool, content, mine->u.o.m[i].key,
                        mine->u.o.m[i].value) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    ev = mx_json_object_copy(pool, ev);
    if (ev == NULL || content == NULL
        || mx_json_set(pool, ev, "content", content) != 0
        || mx_json_set_int(pool, ev, "origin_server_ts",
                           ngx_matrix_now_ms()) != 0
        || mx_json_set_str(pool, ev, "origin",
                           (char *) mr->mcf->server_name.data) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mx_json_remove(ev, "signatures");
    mx_json_remove(ev, "hashes");
    mx_json_remove(ev, "unsigned");
    mx_json_remove(ev, "event_id");

    if (mx_event_sign(pool, ev, j->rv, (char *) mr->mcf->server_name.data,
                      mr->mcf->signing_key)
        != 0)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_GATEWAY, "M_UNKNOWN",
                                     "The event of %V's %s template cannot"
                                     " be signed.", &j->server, j->k->make);
    }

    j->event = ev;
    j->event_id = mx_event_id(pool, ev, j->rv);
    text = mx_json_encode(pool, ev, mx_event_json_flags(j->rv), &len);

    if (j->event_id == NULL || text == NULL
        || ngx_matrix_fed_path(mr, &path, j->k->send_path, s->room_id,
                               j->event_id, "")
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_fed_request(mr, &j->server, &j->req, "PUT", &path,
                                  text, len, ngx_matrix_rjoin_sent);
}


/*
 * the invite rejected (the knock rescinded) at the resident: the user's
 * membership here too
 */

static ngx_int_t
ngx_matrix_rjoin_leave_done(ngx_matrix_req_t *mr)
{
    ngx_matrix_rjoin_t  *j;
    ngx_matrix_send_t   *s;
    ngx_matrix_cmd_t     c;
    ngx_str_t            invited, knocked;

    j = mr->data;
    s = j->send;

    if (ngx_matrix_rjoin_key(mr, &invited, "invited") != NGX_OK
        || ngx_matrix_rjoin_key(mr, &knocked, "knocked") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_remote_invite_done", 2);
    ngx_matrix_cmd_str(&c, &invited);
    ngx_matrix_cmd_str(&c, &knocked);
    ngx_matrix_cmd_cstr(&c, s->room_id);
    ngx_matrix_cmd_cstr(&c, s->sender);
    ngx_matrix_cmd_cstr(&c, j->event_id);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_rjoin_left);
}


static ngx_int_t
ngx_matrix_rjoin_left(ngx_matrix_req_t *mr, redisReply *reply)
{
    (void) reply;

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, (u_char *) "{}", 2);
}


/*
 * The knock taken by the resident: kept with the knock_room_state it
 * answered (no array: none) and the server, for /sync and a later leave
 */

static ngx_int_t
ngx_matrix_rjoin_knock_done(ngx_matrix_req_t *mr)
{
    ngx_matrix_rjoin_t  *j;
    ngx_matrix_send_t   *s;
    ngx_matrix_cmd_t     c;
    ngx_str_t            key;
    char                *pdu, *state;
    size_t               plen, slen;

    j = mr->data;
    s = j->send;

    pdu = mx_json_encode(ngx_matrix_pool(mr), j->event,
                         mx_event_json_flags(j->rv), &plen);
    state = ngx_matrix_fed_stripped(mr, mx_json_get_arr(j->answer,
                                                        "knock_room_state"),
                                    &slen);

    if (pdu == NULL || state == NULL
        || ngx_matrix_rjoin_key(mr, &key, "knocked") != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_remote_knock", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_cstr(&c, s->room_id);
    ngx_matrix_cmd_cstr(&c, s->sender);
    ngx_matrix_cmd_cstr(&c, j->event_id);
    ngx_matrix_cmd_add(&c, pdu, plen);
    ngx_matrix_cmd_add(&c, state, slen);
    ngx_matrix_cmd_str(&c, &j->server);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_rjoin_knocked);
}


static ngx_int_t
ngx_matrix_rjoin_knocked(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_rjoin_t  *j;

    j = mr->data;

    if (reply->type != REDIS_REPLY_INTEGER) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = j->send;

    return ngx_matrix_membership_joined(mr, j->event_id,
                                        ngx_strlen(j->event_id));
}


/*
 * send_<kind>'s answer: a leave or a knock is kept here at once; for a
 * join, the keys its events need next
 */

static ngx_int_t
ngx_matrix_rjoin_sent(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_rjoin_t  *j;
    ngx_int_t            rc;
    mx_json_t           *ev;

    j = mr->data;

    j->answer = ngx_matrix_fed_answer(mr, answer, &j->server, j->k->send, 1,
                                      &rc);
    if (j->answer == NULL) {
        return rc;
    }

    if (j->kind == NGX_MATRIX_RJOIN_LEAVE) {
        return ngx_matrix_rjoin_leave_done(mr);
    }

    if (j->kind == NGX_MATRIX_RJOIN_KNOCK) {
        return ngx_matrix_rjoin_knock_done(mr);
    }

    if (mx_json_get_arr(j->answer, "state") == NULL
        || mx_json_get_arr(j->answer, "auth_chain") == NULL)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_GATEWAY, "M_UNKNOWN",
                                     "%V answered send_join without the"
                                     " room's state.", &j->server);
    }

    /* the event as the resident returns it: countersigned when restricted */
    ev = mx_json_get_obj(j->answer, "event");
    if (ev != NULL) {
        const char  *id;

        id = mx_event_id(ngx_matrix_pool(mr), ev, j->rv);
        if (id != NULL && ngx_strcmp(id, j->event_id) == 0) {
            j->event = ev;
        }
    }

    return ngx_matrix_fed_join_keys(mr, j->rv, j->answer, &j->server,
                                    &j->req, ngx_matrix_rjoin_keys);
}


/* the keys are in the cache (or not: the roomserver drops what it cannot
 * verify): submit */

static ngx_int_t
ngx_matrix_rjoin_keys(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_rjoin_t  *j;
    ngx_matrix_send_t   *s;
    ngx_matrix_cmd_t     c;
    ngx_str_t            input;
    mx_pool_t           *pool;
    char                *pdu, *state, *chain;
    size_t               plen, slen, clen;
    unsigned             flags;

    j = mr->data;
    s = j->send;
    pool = ngx_matrix_pool(mr);

    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    ngx_matrix_fed_join_keys_done(mr, answer, &j->server);

    flags = mx_event_json_flags(j->rv);
    pdu = mx_json_encode(pool, j->event, flags, &plen);
    state = mx_json_encode(pool, mx_json_get_arr(j->answer, "state"), 0,
                           &slen);
    chain = mx_json_encode(pool, mx_json_get_arr(j->answer, "auth_chain"), 0,
                           &clen);

    if (pdu == NULL || state == NULL || chain == NULL
        || ngx_matrix_input_key(mr, (u_char *) s->room_id,
                                ngx_strlen(s->room_id), &input)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_matrix_wait(mr, NGX_MATRIX_RJOIN_TIMEOUT,
                        ngx_matrix_rjoin_verdict, &j->req)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    c.n = 0;
    c.overflow = 0;
    ngx_matrix_cmd_cstr(&c, "XADD");
    ngx_matrix_cmd_str(&c, &input);
    ngx_matrix_cmd_cstr(&c, "*");
    ngx_matrix_cmd_cstr(&c, "kind");
    ngx_matrix_cmd_cstr(&c, "join_state");
    ngx_matrix_cmd_cstr(&c, "room");
    ngx_matrix_cmd_cstr(&c, s->room_id);
    ngx_matrix_cmd_cstr(&c, "version");
    ngx_matrix_cmd_cstr(&c, j->rv->id);
    ngx_matrix_cmd_cstr(&c, "event_id");
    ngx_matrix_cmd_cstr(&c, j->event_id);
    ngx_matrix_cmd_cstr(&c, "event");
    ngx_matrix_cmd_add(&c, pdu, plen);
    ngx_matrix_cmd_cstr(&c, "state");
    ngx_matrix_cmd_add(&c, state, slen);
    ngx_matrix_cmd_cstr(&c, "auth_chain");
    ngx_matrix_cmd_add(&c, chain, clen);
    ngx_matrix_cmd_cstr(&c, "origin");
    ngx_matrix_cmd_str(&c, &j->server);
    ngx_matrix_cmd_cstr(&c, "reply");
    ngx_matrix_cmd_str(&c, ngx_matrix_wait_channel());
    ngx_matrix_cmd_cstr(&c, "req");
    ngx_matrix_cmd_str(&c, &j->req);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_queued);
}


/* the syncer's {"event_id"}: the room is here now */

static ngx_int_t
ngx_matrix_rjoin_verdict(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_rjoin_t  *j;
    mx_pool_t           *pool;
    mx_json_t           *v;
    mx_json_error_t      err;
    const char          *errcode, *error;
    int64_t              status;

    j = mr->data;

    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    if (answer == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "M_UNKNOWN", "The room server did not"
                                     " answer in time.");
    }

    pool = ngx_matrix_pool(mr);
    v = mx_json_parse(pool, (char *) answer->data, answer->len, &err);

    if (mx_json_get_str(v, "event_id", NULL) != NULL) {
        mr->data = j->send;
        return ngx_matrix_membership_joined(mr, j->event_id,
                                            ngx_strlen(j->event_id));
    }

    if (mx_json_get_int(v, "status", &status) == 0
        && status >= 400 && status < 600
        && (errcode = mx_json_get_str(v, "errcode", NULL)) != NULL)
    {
        error = mx_json_get_str(v, "error", NULL);

        return ngx_matrix_send_error(mr->r, (ngx_uint_t) status, errcode,
                                     "%s", error ? error : "");
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

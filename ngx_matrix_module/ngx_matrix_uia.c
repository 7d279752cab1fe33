/*
 * User-interactive authentication, as the spec's "User-Interactive
 * Authentication API" section describes it.
 *
 * An endpoint calls ngx_matrix_uia(mr, flows, done) with its flows written
 * "stage,stage|stage" (flows by '|', their stages in order by ',').  Each
 * request is one attempt:
 *
 *   no "auth"            a new session: 401 {flows, params, session}
 *   auth.type = stage    the stage is checked here (a password, a
 *                        registration token, or nothing for m.login.dummy)
 *                        and recorded in the session by mx_uia_stage, which
 *                        checks the order and, when a flow is complete,
 *                        ends the session: done(mr) runs, once
 *   only auth.session    where the session stands
 *
 * A stage that fails (a wrong password) answers 401 with the session as it
 * is plus errcode and error.  Sessions live in Redis (mx:uia:<session>) for
 * ten minutes, belong to one method, path and user, and are used once.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include "ngx_matrix_module.h"


#define NGX_MATRIX_UIA_TTL      600000
#define NGX_MATRIX_UIA_ID_LEN   24


typedef struct {
    const char             *flows;
    ngx_matrix_handler_pt   done;
    ngx_str_t               session;
    ngx_str_t               key;
    const char             *stage;       /* being attempted, or "" */
    ngx_str_t               regtoken;
    const char             *errcode;     /* why an attempt failed */
    const char             *error;
    ngx_str_t               password;
    unsigned                attempt:1;   /* attempt right after creating */
} ngx_matrix_uia_t;


static ngx_int_t ngx_matrix_uia_attempt(ngx_matrix_req_t *mr,
    ngx_matrix_uia_t *u, const char *type);
static ngx_int_t ngx_matrix_uia_record(ngx_matrix_req_t *mr,
    ngx_matrix_uia_t *u);


static ngx_int_t
ngx_matrix_uia_flows_have(const char *flows, const char *stage)
{
    size_t       len;
    const char  *p;

    len = ngx_strlen(stage);

    for (p = flows; (p = ngx_strstr(p, stage)) != NULL; p += len) {
        if ((p == flows || p[-1] == ',' || p[-1] == '|')
            && (p[len] == '\0' || p[len] == ',' || p[len] == '|'))
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The 401 answer: the flows, the session, the stages completed so far
 * (reply elements from first on), and why the last attempt failed.
 */

static ngx_int_t
ngx_matrix_uia_challenge(ngx_matrix_req_t *mr, ngx_matrix_uia_t *u,
    redisReply *reply, size_t first)
{
    mx_pool_t   *pool;
    mx_json_t   *body, *flows, *flow, *stages, *done;
    const char  *p, *start;
    size_t       i;

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = mx_json_object(pool);
    flows = mx_json_array(pool);
    if (body == NULL || flows == NULL
        || mx_json_set(pool, body, "flows", flows) != 0
        || mx_json_set(pool, body, "params", mx_json_object(pool)) != 0
        || mx_json_set(pool, body, "session",
                       mx_json_strn(pool, (char *) u->session.data,
                                    u->session.len)) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    flow = NULL;
    stages = NULL;

    for (p = u->flows; *p; /* void */) {
        if (flow == NULL) {
            flow = mx_json_object(pool);
            stages = mx_json_array(pool);
            if (flow == NULL || stages == NULL
                || mx_json_set(pool, flow, "stages", stages) != 0
                || mx_json_append(pool, flows, flow) != 0)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        start = p;
        while (*p && *p != ',' && *p != '|') {
            p++;
        }

        if (mx_json_append(pool, stages,
                           mx_json_strn(pool, start, p - start)) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (*p == '|') {
            flow = NULL;
        }

        if (*p) {
            p++;
        }
    }

    if (reply && reply->elements > first) {
        done = mx_json_array(pool);
        if (done == NULL || mx_json_set(pool, body, "completed", done) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (i = first; i < reply->elements; i++) {
            if (mx_json_append(pool, done,
                               mx_json_strn(pool, reply->element[i]->str,
                                            reply->element[i]->len)) != 0)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    if (u->errcode
        && (mx_json_set_str(pool, body, "errcode", u->errcode) != 0
            || mx_json_set_str(pool, body, "error", u->error) != 0))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_UNAUTHORIZED, body);
}


static ngx_int_t
ngx_matrix_uia_stage_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_uia_t  *u = mr->uia;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_strcmp(reply->element[0]->str, "done") == 0) {
        if (reply->elements == 2 && reply->element[1]->len) {
            mr->uia_regtoken.len = reply->element[1]->len;
            mr->uia_regtoken.data = ngx_pstrdup(mr->r->pool,
                                                &(ngx_str_t) {
                                                    reply->element[1]->len,
                                                    (u_char *)
                                                    reply->element[1]->str });
            if (mr->uia_regtoken.data == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        return u->done(mr);
    }

    return ngx_matrix_uia_challenge(mr, u, reply, 1);
}


/* record the stage (or, with u->stage "", just look) in the session */

static ngx_int_t
ngx_matrix_uia_record(ngx_matrix_req_t *mr, ngx_matrix_uia_t *u)
{
    ngx_matrix_cmd_t  c;

    ngx_matrix_fcall_init(&c, "mx_uia_stage", 1);
    ngx_matrix_cmd_str(&c, &u->key);
    ngx_matrix_cmd_str(&c, &mr->r->method_name);
    ngx_matrix_cmd_str(&c, &mr->r->uri);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_cstr(&c, u->stage);
    ngx_matrix_cmd_cstr(&c, u->flows);
    ngx_matrix_cmd_str(&c, &u->regtoken);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_uia_stage_done);
}


/* a failed attempt: 401 with the session as it stands, and why */

static ngx_int_t
ngx_matrix_uia_fail(ngx_matrix_req_t *mr, ngx_matrix_uia_t *u,
    const char *errcode, const char *error)
{
    u->errcode = errcode;
    u->error = error;
    u->stage = "";
    u->regtoken.len = 0;

    return ngx_matrix_uia_record(mr, u);
}


static ngx_int_t
ngx_matrix_uia_password_checked(ngx_matrix_req_t *mr, ngx_int_t ok)
{
    ngx_matrix_uia_t  *u = mr->uia;

    if (!ok) {
        return ngx_matrix_uia_fail(mr, u, "M_FORBIDDEN", "Invalid password");
    }

    return ngx_matrix_uia_record(mr, u);
}


static ngx_int_t
ngx_matrix_uia_user_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_uia_t  *u = mr->uia;
    ngx_str_t          hash;

    hash.len = 0;
    hash.data = NULL;

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 4
        && reply->element[1]->type == REDIS_REPLY_STRING
        && !(reply->element[1]->len == 1 && reply->element[1]->str[0] == '1'))
    {
        hash.data = ngx_pnalloc(mr->r->pool, reply->element[0]->len + 1);
        if (hash.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        hash.len = reply->element[0]->len;
        ngx_memcpy(hash.data, reply->element[0]->str, hash.len);
    }

    return ngx_matrix_password_verify(mr, &hash, &u->password,
                                      ngx_matrix_uia_password_checked);
}


static ngx_int_t
ngx_matrix_uia_regtoken_checked(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_uia_t  *u = mr->uia;

    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        return ngx_matrix_uia_fail(mr, u, "M_UNAUTHORIZED",
                                   "Invalid registration token");
    }

    return ngx_matrix_uia_record(mr, u);
}


/*
 * One attempt at a stage.  Stages not offered, or unknown, are refused
 * before anything is recorded.
 */

static ngx_int_t
ngx_matrix_uia_attempt(ngx_matrix_req_t *mr, ngx_matrix_uia_t *u,
    const char *type)
{
    mx_json_t         *auth;
    const char        *s;
    size_t             len;
    ngx_int_t          rc;
    ngx_str_t          user, key;
    ngx_matrix_cmd_t   c;

    auth = mx_json_get(mr->body, "auth");

    if (type == NULL) {
        u->stage = "";
        return ngx_matrix_uia_record(mr, u);
    }

    if (!ngx_matrix_uia_flows_have(u->flows, type)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_UNRECOGNIZED",
                                     "Authentication type %s is not offered"
                                     " here", type);
    }

    u->stage = type;

    if (ngx_strcmp(type, "m.login.dummy") == 0) {
        return ngx_matrix_uia_record(mr, u);
    }

    if (ngx_strcmp(type, "m.login.password") == 0) {
        rc = ngx_matrix_login_user(mr, auth, &user);
        if (rc != NGX_OK) {
            return rc;
        }

        s = mx_json_get_str(auth, "password", &len);
        if (s == NULL) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_MISSING_PARAM",
                                         "auth.password is required");
        }

        u->password.data = (u_char *) s;
        u->password.len = len;

        /* only the account being acted on can authenticate here */
        if (user.len == 0
            || user.len != mr->user_id.len
            || ngx_strncmp(user.data, mr->user_id.data, user.len) != 0)
        {
            return ngx_matrix_uia_fail(mr, u, "M_FORBIDDEN",
                                       "Invalid username or password");
        }

        if (ngx_matrix_user_key(mr, &user, "user", &key) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_matrix_fcall_init(&c, "mx_user_get", 1);
        ngx_matrix_cmd_str(&c, &key);

        return ngx_matrix_cmd_send(mr, &c, ngx_matrix_uia_user_got);
    }

    if (ngx_strcmp(type, "m.login.registration_token") == 0) {
        s = mx_json_get_str(auth, "token", &len);

        if (s == NULL || !ngx_matrix_regtoken_valid((u_char *) s, len)) {
            return ngx_matrix_uia_fail(mr, u, "M_UNAUTHORIZED",
                                       "Invalid registration token");
        }

        u->regtoken.data = (u_char *) s;
        u->regtoken.len = len;

        return ngx_matrix_regtoken_call(mr, &u->regtoken, "reserve",
                                        ngx_matrix_uia_regtoken_checked);
    }

    return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                 "M_UNRECOGNIZED",
                                 "Unsupported authentication type %s", type);
}


static ngx_int_t
ngx_matrix_uia_started(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_uia_t  *u = mr->uia;
    const char        *type;

    if (!u->attempt) {
        return ngx_matrix_uia_challenge(mr, u, NULL, 0);
    }

    type = mx_json_get_str(mx_json_get(mr->body, "auth"), "type", NULL);

    return ngx_matrix_uia_attempt(mr, u, type);
}


static ngx_int_t
ngx_matrix_uia_key(ngx_matrix_req_t *mr, ngx_matrix_uia_t *u)
{
    u->key.len = sizeof("mx:uia:") - 1 + u->session.len;
    u->key.data = ngx_pnalloc(mr->r->pool, u->key.len);
    if (u->key.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(u->key.data, "mx:uia:%V", &u->session);

    return NGX_OK;
}


/* a new session, then the challenge (or, u->attempt, the first attempt) */

static ngx_int_t
ngx_matrix_uia_start(ngx_matrix_req_t *mr, ngx_matrix_uia_t *u)
{
    static const char   alnum[] = "abcdefghijklmnopqrstuvwxyz"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    ngx_matrix_cmd_t    c;
    ngx_uint_t          i;

    u->session.len = NGX_MATRIX_UIA_ID_LEN;
    u->session.data = ngx_pnalloc(mr->r->pool, NGX_MATRIX_UIA_ID_LEN);
    if (u->session.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < NGX_MATRIX_UIA_ID_LEN; i++) {
        u->session.data[i] = alnum[randombytes_uniform(sizeof(alnum) - 1)];
    }

    if (ngx_matrix_uia_key(mr, u) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_uia_start", 1);
    ngx_matrix_cmd_str(&c, &u->key);
    ngx_matrix_cmd_str(&c, &mr->r->method_name);
    ngx_matrix_cmd_str(&c, &mr->r->uri);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_cstr(&c, "600000");

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_uia_started);
}


ngx_int_t
ngx_matrix_uia(ngx_matrix_req_t *mr, const char *flows,
    ngx_matrix_handler_pt done)
{
    ngx_matrix_uia_t  *u;
    mx_json_t         *auth;
    const char        *session, *type;
    size_t             len;

    u = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_uia_t));
    if (u == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    u->flows = flows;
    u->done = done;
    mr->uia = u;

    auth = mr->body ? mx_json_get(mr->body, "auth") : NULL;

    if (auth == NULL) {
        return ngx_matrix_uia_start(mr, u);
    }

    if (auth->type != MX_JSON_OBJECT) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "auth must be an object");
    }

    if (mx_json_get(auth, "type")
        && mx_json_get_str(auth, "type", NULL) == NULL)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "auth.type must be a"
                                     " string");
    }

    type = mx_json_get_str(auth, "type", NULL);
    session = mx_json_get_str(auth, "session", &len);

    if (session == NULL) {
        if (mx_json_get(auth, "session")) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "auth.session must"
                                         " be a string");
        }

        /* an attempt without a session starts one */
        u->attempt = 1;
        return ngx_matrix_uia_start(mr, u);
    }

    if (len == 0 || len > 64) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_UNKNOWN", "Unknown session ID");
    }

    u->session.data = (u_char *) session;
    u->session.len = len;

    if (ngx_matrix_uia_key(mr, u) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_uia_attempt(mr, u, type);
}

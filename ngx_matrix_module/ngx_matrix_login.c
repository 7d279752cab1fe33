/*
 * Sessions: logging in with a password, refreshing tokens, logging out.
 *
 *   POST /login    mx_user_get ──► argon2id verify (thread pool) ──► mx_login
 *   POST /refresh  mx_refresh
 *   POST /logout   mx_logout (this device), /logout/all (every device)
 *
 * An unknown user is checked against a dummy hash, and a wrong password
 * and an unknown user get the same 403 M_FORBIDDEN, after the same time.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include <mx_token.h>

#include "ngx_matrix_module.h"


typedef struct {
    ngx_str_t             user_id;
    ngx_str_t             user_key;
    ngx_str_t             device_id;
    ngx_str_t             display_name;
    ngx_str_t             password;
    ngx_uint_t            refresh;
    ngx_matrix_tokens_t   tokens;
} ngx_matrix_login_t;


/*
 * The user a login (or a password stage) names: identifier {type m.id.user,
 * user} or the legacy "user", a full user ID or a localpart, case folded.
 * NGX_OK with user_id empty when it cannot be a user of this server (another
 * server, a third-party identifier): the caller answers as for a wrong
 * password.
 */

ngx_int_t
ngx_matrix_login_user(ngx_matrix_req_t *mr, mx_json_t *obj,
    ngx_str_t *user_id)
{
    mx_json_t   *id;
    const char  *type, *user;
    size_t       len;
    ngx_str_t    given, local;
    u_char      *p;

    user_id->len = 0;
    user_id->data = NULL;

    id = mx_json_get(obj, "identifier");

    if (id) {
        if (id->type != MX_JSON_OBJECT) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "identifier must be an"
                                         " object");
        }

        type = mx_json_get_str(id, "type", NULL);
        if (type == NULL) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "identifier.type must"
                                         " be a string");
        }

        if (ngx_strcmp(type, "m.id.user") != 0) {
            return NGX_OK;      /* no third-party identifiers here */
        }

        user = mx_json_get_str(id, "user", &len);

    } else {
        user = mx_json_get_str(obj, "user", &len);
        if (user == NULL && mx_json_get(obj, "user") == NULL) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_MISSING_PARAM",
                                         "identifier is required");
        }
    }

    if (user == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "the user must be a"
                                     " string");
    }

    given.data = (u_char *) user;
    given.len = len;

    if (len && user[0] == '@') {
        if (ngx_matrix_user_id_local(mr, &given, &local) != NGX_OK) {
            return NGX_OK;
        }
    } else {
        local = given;
    }

    if (local.len == 0 || local.len > 255) {
        return NGX_OK;
    }

    user_id->len = local.len + mr->mcf->server_name.len + 2;
    user_id->data = ngx_pnalloc(mr->r->pool, user_id->len);
    if (user_id->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = user_id->data;
    *p++ = '@';
    p = ngx_cpymem(p, local.data, local.len);
    ngx_strlow(user_id->data + 1, user_id->data + 1, local.len);
    *p++ = ':';
    ngx_memcpy(p, mr->mcf->server_name.data, mr->mcf->server_name.len);

    if (!ngx_matrix_localpart_valid(user_id->data + 1, local.len)
        || user_id->len > 255)
    {
        user_id->len = 0;
    }

    return NGX_OK;
}


/* a new access token (and refresh token) for a user */

static ngx_int_t
ngx_matrix_token_new(ngx_matrix_req_t *mr, ngx_str_t *user_id, int kind,
    ngx_str_t *token, u_char *hash)
{
    u_char  random[MX_TOKEN_RANDOM];

    token->data = ngx_pnalloc(mr->r->pool, MX_TOKEN_MAX + 1);
    if (token->data == NULL) {
        return NGX_ERROR;
    }

    randombytes_buf(random, sizeof(random));
    token->len = mx_token_make((char *) token->data, kind,
                               (char *) user_id->data, user_id->len, random);
    sodium_memzero(random, sizeof(random));

    if (token->len == 0) {
        return NGX_ERROR;
    }

    mx_token_hash((char *) hash, (char *) token->data, token->len);

    return NGX_OK;
}


ngx_int_t
ngx_matrix_tokens_new(ngx_matrix_req_t *mr, ngx_str_t *user_id,
    ngx_uint_t refresh, ngx_matrix_tokens_t *t)
{
    ngx_memzero(t, sizeof(ngx_matrix_tokens_t));

    if (ngx_matrix_token_new(mr, user_id, MX_TOKEN_ACCESS, &t->access,
                             t->access_hash) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (!refresh) {
        return NGX_OK;
    }

    t->expires = ngx_matrix_now_ms() + (int64_t) mr->mcf->refresh_lifetime;

    return ngx_matrix_token_new(mr, user_id, MX_TOKEN_REFRESH, &t->refresh,
                                t->refresh_hash);
}


/*
 * The device a login or registration is for: body.device_id if given (1 to
 * 255 printable characters), else ten new capital letters.
 */

ngx_int_t
ngx_matrix_device_id(ngx_matrix_req_t *mr, mx_json_t *body,
    ngx_str_t *device_id)
{
    mx_json_t   *v;
    size_t       i;
    ngx_uint_t   n;

    v = mx_json_get(body, "device_id");

    if (v && v->type != MX_JSON_NULL) {
        if (v->type != MX_JSON_STRING || v->u.s.len == 0
            || v->u.s.len > 255)
        {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "device_id must"
                                         " be a string of 1 to 255"
                                         " characters");
        }

        for (i = 0; i < v->u.s.len; i++) {
            if (v->u.s.p[i] < 0x21 || v->u.s.p[i] > 0x7e) {
                return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                             "M_INVALID_PARAM", "device_id"
                                             " must be printable ASCII");
            }
        }

        device_id->data = (u_char *) v->u.s.p;
        device_id->len = v->u.s.len;
        return NGX_OK;
    }

    device_id->len = 10;
    device_id->data = ngx_pnalloc(mr->r->pool, 10);
    if (device_id->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (n = 0; n < 10; n++) {
        device_id->data[n] = 'A' + randombytes_uniform(26);
    }

    return NGX_OK;
}


/* the answer of login and registration */

ngx_int_t
ngx_matrix_send_session(ngx_matrix_req_t *mr, ngx_str_t *user_id,
    ngx_str_t *device_id, ngx_matrix_tokens_t *t)
{
    mx_pool_t  *pool;
    mx_json_t  *body;

    pool = ngx_matrix_pool(mr);
    body = pool ? mx_json_object(pool) : NULL;

    if (body == NULL
        || mx_json_set(pool, body, "user_id",
                       mx_json_strn(pool, (char *) user_id->data,
                                    user_id->len)) != 0
        || mx_json_set(pool, body, "home_server",
                       mx_json_strn(pool, (char *) mr->mcf->server_name.data,
                                    mr->mcf->server_name.len)) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (t == NULL) {
        return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
    }

    if (mx_json_set(pool, body, "access_token",
                    mx_json_strn(pool, (char *) t->access.data,
                                 t->access.len)) != 0
        || mx_json_set(pool, body, "device_id",
                       mx_json_strn(pool, (char *) device_id->data,
                                    device_id->len)) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (t->refresh.len
        && (mx_json_set(pool, body, "refresh_token",
                        mx_json_strn(pool, (char *) t->refresh.data,
                                     t->refresh.len)) != 0
            || mx_json_set_int(pool, body, "expires_in_ms",
                               (int64_t) mr->mcf->refresh_lifetime) != 0))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/* GET /login */

ngx_int_t
ngx_matrix_login_get(ngx_matrix_req_t *mr)
{
    static u_char  flows[] = "{\"flows\":[{\"type\":\"m.login.password\"}]}";

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, flows, sizeof(flows) - 1);
}


static ngx_int_t
ngx_matrix_login_forbidden(ngx_matrix_req_t *mr)
{
    return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                 "Invalid username or password");
}


static ngx_int_t
ngx_matrix_login_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_login_t  *l = mr->data;

    return ngx_matrix_send_session(mr, &l->user_id, &l->device_id,
                                   &l->tokens);
}


static ngx_int_t
ngx_matrix_login_checked(ngx_matrix_req_t *mr, ngx_int_t ok)
{
    ngx_matrix_login_t  *l = mr->data;
    ngx_matrix_cmd_t     c;

    if (!ok || l->user_id.len == 0) {
        return ngx_matrix_login_forbidden(mr);
    }

    if (ngx_matrix_tokens_new(mr, &l->user_id, l->refresh, &l->tokens)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_login", 1);
    ngx_matrix_cmd_str(&c, &l->user_key);
    ngx_matrix_cmd_str(&c, &l->user_id);
    ngx_matrix_cmd_str(&c, &l->device_id);
    ngx_matrix_cmd_str(&c, &l->display_name);
    ngx_matrix_cmd_add(&c, l->tokens.access_hash, MX_TOKEN_HASH_LEN);
    ngx_matrix_cmd_add(&c, l->tokens.refresh_hash,
                       l->tokens.refresh.len ? MX_TOKEN_HASH_LEN : 0);

    if (ngx_matrix_cmd_int(mr, &c, l->tokens.expires) != NGX_OK
        || ngx_matrix_cmd_int(mr, &c, ngx_matrix_now_ms()) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_login_done);
}


static ngx_int_t
ngx_matrix_login_user_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_login_t  *l = mr->data;
    ngx_str_t            hash;

    hash.len = 0;
    hash.data = NULL;

    /* {password, deactivated, guest, admin}; a deactivated user has none */
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 4
        && reply->element[0]->type == REDIS_REPLY_STRING)
    {
        hash.len = reply->element[0]->len;
        hash.data = ngx_pnalloc(mr->r->pool, hash.len + 1);
        if (hash.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ngx_memcpy(hash.data, reply->element[0]->str, hash.len);
    }

    if (hash.len == 0) {
        l->user_id.len = 0;     /* checked against the dummy: refused */
    }

    return ngx_matrix_password_verify(mr, &hash, &l->password,
                                      ngx_matrix_login_checked);
}


/* POST /login */

ngx_int_t
ngx_matrix_login_post(ngx_matrix_req_t *mr)
{
    ngx_matrix_login_t  *l;
    mx_json_t           *body, *v;
    const char          *type, *s;
    size_t               len;
    ngx_int_t            rc;
    ngx_matrix_cmd_t     c;
    ngx_str_t            nobody = ngx_string("@:");

    body = mr->body;

    type = mx_json_get_str(body, "type", NULL);
    if (type == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     mx_json_get(body, "type")
                                     ? "M_BAD_JSON" : "M_MISSING_PARAM",
                                     "type must be a login type");
    }

    if (ngx_strcmp(type, "m.login.password") != 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_UNKNOWN", "Unknown login type %s",
                                     type);
    }

    l = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_login_t));
    if (l == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = l;

    rc = ngx_matrix_login_user(mr, body, &l->user_id);
    if (rc != NGX_OK) {
        return rc;
    }

    s = mx_json_get_str(body, "password", &len);
    if (s == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     mx_json_get(body, "password")
                                     ? "M_BAD_JSON" : "M_MISSING_PARAM",
                                     "password must be a string");
    }

    l->password.data = (u_char *) s;
    l->password.len = len;

    rc = ngx_matrix_device_id(mr, body, &l->device_id);
    if (rc != NGX_OK) {
        return rc;
    }

    v = mx_json_get(body, "initial_device_display_name");
    if (v && v->type == MX_JSON_STRING) {
        l->display_name.data = (u_char *) v->u.s.p;
        l->display_name.len = ngx_min(v->u.s.len, 255);

    } else if (v && v->type != MX_JSON_NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "initial_device_display_name"
                                     " must be a string");
    }

    v = mx_json_get(body, "refresh_token");
    if (v && !mx_json_is_bool(v)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "refresh_token must be a"
                                     " boolean");
    }

    l->refresh = mx_json_is(v, MX_JSON_TRUE);

    /* every login costs one hash check, whether the user exists or not */
    if (ngx_matrix_user_key(mr, l->user_id.len ? &l->user_id : &nobody,
                            "user", &l->user_key) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_user_get", 1);
    ngx_matrix_cmd_str(&c, &l->user_key);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_login_user_got);
}


/* POST /refresh */

static ngx_int_t
ngx_matrix_refresh_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_login_t  *l = mr->data;
    mx_pool_t           *pool;
    mx_json_t           *body;

    pool = ngx_matrix_pool(mr);
    body = pool ? mx_json_object(pool) : NULL;

    if (body == NULL
        || mx_json_set(pool, body, "access_token",
                       mx_json_strn(pool, (char *) l->tokens.access.data,
                                    l->tokens.access.len)) != 0
        || mx_json_set(pool, body, "refresh_token",
                       mx_json_strn(pool, (char *) l->tokens.refresh.data,
                                    l->tokens.refresh.len)) != 0
        || mx_json_set_int(pool, body, "expires_in_ms",
                           (int64_t) mr->mcf->refresh_lifetime) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


ngx_int_t
ngx_matrix_refresh(ngx_matrix_req_t *mr)
{
    ngx_matrix_login_t  *l;
    const char          *token;
    size_t               len, ulen;
    char                 user[MX_TOKEN_USER_MAX + 1];
    u_char               hash[MX_TOKEN_HASH_LEN + 1];
    ngx_str_t            key;
    ngx_matrix_cmd_t     c;

    token = mx_json_get_str(mr->body, "refresh_token", &len);
    if (token == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     mx_json_get(mr->body, "refresh_token")
                                     ? "M_BAD_JSON" : "M_MISSING_PARAM",
                                     "refresh_token must be a string");
    }

    ulen = mx_token_user(token, len, MX_TOKEN_REFRESH, user);
    if (ulen == 0) {
        return ngx_matrix_send_error_extra(mr->r, NGX_HTTP_UNAUTHORIZED,
                                           "M_UNKNOWN_TOKEN",
                                           "\"soft_logout\":false",
                                           "Unknown refresh token");
    }

    l = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_login_t));
    if (l == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = l;

    l->user_id.len = ulen;
    l->user_id.data = ngx_pnalloc(mr->r->pool, ulen);
    if (l->user_id.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_memcpy(l->user_id.data, user, ulen);

    mx_token_hash((char *) hash, token, len);

    if (ngx_matrix_tokens_new(mr, &l->user_id, 1, &l->tokens) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    key.data = ngx_pnalloc(mr->r->pool, MX_TOKEN_KEY_MAX);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    key.len = mx_token_key((char *) key.data, MX_TOKEN_REFRESH, user, ulen,
                           token, len);

    ngx_matrix_fcall_init(&c, "mx_refresh", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &l->user_id);
    ngx_matrix_cmd_add(&c, hash, MX_TOKEN_HASH_LEN);
    ngx_matrix_cmd_add(&c, l->tokens.access_hash, MX_TOKEN_HASH_LEN);
    ngx_matrix_cmd_add(&c, l->tokens.refresh_hash, MX_TOKEN_HASH_LEN);

    if (ngx_matrix_cmd_int(mr, &c, l->tokens.expires) != NGX_OK
        || ngx_matrix_cmd_int(mr, &c, ngx_matrix_now_ms()) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_refresh_done);
}


/* POST /logout and /logout/all */

static ngx_int_t
ngx_matrix_logout_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
}


static ngx_int_t
ngx_matrix_logout_devices(ngx_matrix_req_t *mr, ngx_str_t *device_id)
{
    ngx_str_t         key;
    ngx_matrix_cmd_t  c;

    if (ngx_matrix_user_key(mr, &mr->user_id, "user", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_logout", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, device_id);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_logout_done);
}


ngx_int_t
ngx_matrix_logout(ngx_matrix_req_t *mr)
{
    const char  *argv[2];
    size_t       argvlen[2];
    u_char      *key;

    if (mr->device_id.len) {
        return ngx_matrix_logout_devices(mr, &mr->device_id);
    }

    /* a token without a device: just the token */
    key = ngx_pnalloc(mr->r->pool, MX_TOKEN_KEY_MAX);
    if (key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv[0] = "DEL";
    argvlen[0] = 3;
    argv[1] = (char *) key;
    argvlen[1] = mx_token_key((char *) key, MX_TOKEN_ACCESS,
                              (char *) mr->user_id.data, mr->user_id.len,
                              (char *) mr->token.data, mr->token.len);

    return ngx_matrix_redis(mr, ngx_matrix_logout_done, 2, argv, argvlen);
}


ngx_int_t
ngx_matrix_logout_all(ngx_matrix_req_t *mr)
{
    ngx_str_t  all = ngx_null_string;

    return ngx_matrix_logout_devices(mr, &all);
}

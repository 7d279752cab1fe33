/*
 * Registration.
 *
 *   POST /register            checks, then user-interactive auth
 *                             (m.login.dummy when matrix_registration is
 *                             open, m.login.registration_token when it is
 *                             token), then argon2id in the thread pool,
 *                             then mx_register creates the user and logs
 *                             in a device unless inhibit_login
 *   POST /register?kind=guest a guest account (matrix_guest_access on)
 *   GET  /register/available  is a name free
 *   GET  /register/m.login.registration_token/validity
 *   GET/POST /_synapse/admin/v1/register
 *                             shared-secret registration, compatible with
 *                             Synapse's (nonce, HMAC-SHA1, admin flag)
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/crypto.h>
#include <sodium.h>

#include <mx_token.h>

#include "ngx_matrix_module.h"


#define NGX_MATRIX_NONCE_TTL  "60000"


typedef struct {
    ngx_str_t             user_id;
    ngx_str_t             user_key;
    ngx_str_t             password;
    ngx_str_t             hash;
    ngx_str_t             device_id;
    ngx_str_t             display_name;       /* of the device */
    ngx_str_t             displayname;        /* of the user, as JSON */
    ngx_matrix_tokens_t   tokens;
    unsigned              inhibit_login:1;
    unsigned              refresh:1;
    unsigned              guest:1;
    unsigned              admin:1;
} ngx_matrix_reg_t;


static ngx_int_t ngx_matrix_register_create(ngx_matrix_req_t *mr);


/* a registration token: 1 to 64 of [A-Za-z0-9._~-] */

ngx_uint_t
ngx_matrix_regtoken_valid(u_char *token, size_t len)
{
    size_t  i;
    u_char  c;

    if (len == 0 || len > 64) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = token[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~'
              || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* mx_regtoken: 'check', 'reserve' (a stage done) or 'complete' (an account) */

ngx_int_t
ngx_matrix_regtoken_call(ngx_matrix_req_t *mr, ngx_str_t *token,
    const char *action, ngx_matrix_reply_pt next)
{
    ngx_str_t         key;
    ngx_matrix_cmd_t  c;

    key.len = sizeof("mx:regtoken:") - 1 + token->len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(key.data, "mx:regtoken:%V", token);

    ngx_matrix_fcall_init(&c, "mx_regtoken", 1);
    ngx_matrix_cmd_str(&c, &key);

    if (ngx_matrix_cmd_int(mr, &c, ngx_matrix_now_ms()) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_cmd_cstr(&c, action);

    return ngx_matrix_cmd_send(mr, &c, next);
}


/*
 * The user ID for a requested name: case folded to lower case (a logical
 * mapping, as the spec allows), then checked: the localpart grammar, not
 * all digits (those are guests'), not starting with '_' (kept for
 * application services), at most 255 bytes in all.
 */

static ngx_int_t
ngx_matrix_username(ngx_matrix_req_t *mr, u_char *name, size_t len,
    ngx_str_t *user_id)
{
    size_t   i;
    u_char  *p;

    for (i = 0; i < len && name[i] >= '0' && name[i] <= '9'; i++) {
        /* void */
    }

    if (len && i == len) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_USERNAME", "Numeric user IDs"
                                     " are reserved for guest users.");
    }

    if (len && name[0] == '_') {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_USERNAME", "User ID may not"
                                     " begin with _");
    }

    user_id->len = len + mr->mcf->server_name.len + 2;
    user_id->data = ngx_pnalloc(mr->r->pool, user_id->len);
    if (user_id->data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = user_id->data;
    *p++ = '@';
    ngx_strlow(p, name, len);
    p += len;
    *p++ = ':';
    ngx_memcpy(p, mr->mcf->server_name.data, mr->mcf->server_name.len);

    if (!ngx_matrix_localpart_valid(user_id->data + 1, len)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_USERNAME", "User ID can only"
                                     " contain characters a-z, 0-9, or"
                                     " '=_-./+'");
    }

    if (user_id->len > 255) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_USERNAME", "User ID may not"
                                     " be longer than 255 characters");
    }

    return NGX_OK;
}


/* the user's displayname to start with, as JSON: their localpart */

static ngx_int_t
ngx_matrix_register_displayname(ngx_matrix_req_t *mr, ngx_matrix_reg_t *g,
    const char *name, size_t len)
{
    g->displayname.len = mx_json_write_str(name, len, NULL);
    g->displayname.data = ngx_pnalloc(mr->r->pool, g->displayname.len);
    if (g->displayname.data == NULL) {
        return NGX_ERROR;
    }

    mx_json_write_str(name, len, (char *) g->displayname.data);

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_register_answer(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_reg_t  *g = mr->data;

    return ngx_matrix_send_session(mr, &g->user_id, &g->device_id,
                                   g->inhibit_login ? NULL : &g->tokens);
}


static ngx_int_t
ngx_matrix_register_created(ngx_matrix_req_t *mr, redisReply *reply)
{
    /* the account exists: the registration token has been used once */
    if (mr->uia_regtoken.len) {
        return ngx_matrix_regtoken_call(mr, &mr->uia_regtoken, "complete",
                                        ngx_matrix_register_answer);
    }

    return ngx_matrix_register_answer(mr, reply);
}


static ngx_int_t
ngx_matrix_register_create(ngx_matrix_req_t *mr)
{
    ngx_matrix_reg_t  *g = mr->data;
    ngx_matrix_cmd_t   c;
    ngx_str_t          none = ngx_null_string;

    if (!g->inhibit_login
        && ngx_matrix_tokens_new(mr, &g->user_id, g->refresh, &g->tokens)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_register", 1);
    ngx_matrix_cmd_str(&c, &g->user_key);
    ngx_matrix_cmd_str(&c, &g->user_id);
    ngx_matrix_cmd_str(&c, &g->hash);

    if (ngx_matrix_cmd_int(mr, &c, ngx_matrix_now_ms()) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_cmd_cstr(&c, g->guest ? "1" : "0");
    ngx_matrix_cmd_cstr(&c, g->admin ? "1" : "0");
    ngx_matrix_cmd_str(&c, &g->displayname);
    ngx_matrix_cmd_str(&c, g->inhibit_login ? &none : &g->device_id);
    ngx_matrix_cmd_str(&c, &g->display_name);
    ngx_matrix_cmd_add(&c, g->tokens.access_hash,
                       g->inhibit_login ? 0 : MX_TOKEN_HASH_LEN);
    ngx_matrix_cmd_add(&c, g->tokens.refresh_hash,
                       g->tokens.refresh.len ? MX_TOKEN_HASH_LEN : 0);

    if (ngx_matrix_cmd_int(mr, &c, g->tokens.expires) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_register_created);
}


static ngx_int_t
ngx_matrix_register_hashed(ngx_matrix_req_t *mr, ngx_int_t ok)
{
    return ngx_matrix_register_create(mr);
}


/* user-interactive auth is complete: hash the password, then create */

static ngx_int_t
ngx_matrix_register_authed(ngx_matrix_req_t *mr)
{
    ngx_matrix_reg_t  *g = mr->data;

    return ngx_matrix_password_hash(mr, &g->password, &g->hash,
                                    ngx_matrix_register_hashed);
}


static ngx_int_t
ngx_matrix_register_checked(ngx_matrix_req_t *mr, redisReply *reply)
{
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_USER_IN_USE",
                                     "User ID already taken.");
    }

    return ngx_matrix_uia(mr, mr->mcf->registration == NGX_MATRIX_REG_TOKEN
                              ? "m.login.registration_token"
                              : "m.login.dummy",
                          ngx_matrix_register_authed);
}


static ngx_int_t
ngx_matrix_register_guest_numbered(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_reg_t  *g = mr->data;
    u_char             name[NGX_INT64_LEN];
    size_t             len;

    if (reply->type != REDIS_REPLY_INTEGER) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = ngx_sprintf(name, "%L", (int64_t) reply->integer) - name;

    g->user_id.len = len + mr->mcf->server_name.len + 2;
    g->user_id.data = ngx_pnalloc(mr->r->pool, g->user_id.len);
    if (g->user_id.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(g->user_id.data, "@%*s:%V", len, name,
                &mr->mcf->server_name);

    if (ngx_matrix_user_key(mr, &g->user_id, "user", &g->user_key) != NGX_OK
        || ngx_matrix_register_displayname(mr, g, (char *) name, len)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_register_create(mr);
}


/* the optional parts of a registration or login body, checked */

static ngx_int_t
ngx_matrix_register_options(ngx_matrix_req_t *mr, ngx_matrix_reg_t *g)
{
    mx_json_t  *v;

    v = mx_json_get(mr->body, "initial_device_display_name");
    if (v && v->type == MX_JSON_STRING) {
        g->display_name.data = (u_char *) v->u.s.p;
        g->display_name.len = ngx_min(v->u.s.len, 255);

    } else if (v && v->type != MX_JSON_NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "initial_device_display_name must be a"
                                     " string");
    }

    v = mx_json_get(mr->body, "inhibit_login");
    if (v && !mx_json_is_bool(v)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "inhibit_login must be a boolean");
    }
    g->inhibit_login = mx_json_is(v, MX_JSON_TRUE);

    v = mx_json_get(mr->body, "refresh_token");
    if (v && !mx_json_is_bool(v)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "refresh_token must be a boolean");
    }
    g->refresh = mx_json_is(v, MX_JSON_TRUE);

    return NGX_OK;
}


/* POST /register */

ngx_int_t
ngx_matrix_register(ngx_matrix_req_t *mr)
{
    ngx_matrix_reg_t  *g;
    ngx_str_t          kind, key = ngx_string("mx:guest:next");
    mx_json_t         *v;
    ngx_int_t          rc;
    u_char             name[12];
    ngx_uint_t         i;
    const char        *argv[2];
    size_t             argvlen[2];
    ngx_matrix_cmd_t   c;

    g = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_reg_t));
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = g;

    if (ngx_matrix_arg(mr->r, "kind", &kind) != NGX_OK) {
        ngx_str_set(&kind, "user");
    }

    if (kind.len == 5 && ngx_strncmp(kind.data, "guest", 5) == 0) {
        if (!mr->mcf->guest_access) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN,
                                         "M_GUEST_ACCESS_FORBIDDEN",
                                         "Guest access is disabled");
        }

        /* everything but initial_device_display_name is ignored */
        v = mx_json_get(mr->body, "initial_device_display_name");
        if (v && v->type == MX_JSON_STRING) {
            g->display_name.data = (u_char *) v->u.s.p;
            g->display_name.len = ngx_min(v->u.s.len, 255);
        }

        g->guest = 1;

        rc = ngx_matrix_device_id(mr, NULL, &g->device_id);
        if (rc != NGX_OK) {
            return rc;
        }

        argv[0] = "INCR";
        argvlen[0] = 4;
        argv[1] = (char *) key.data;
        argvlen[1] = key.len;

        return ngx_matrix_redis(mr, ngx_matrix_register_guest_numbered, 2,
                                argv, argvlen);
    }

    if (kind.len != 4 || ngx_strncmp(kind.data, "user", 4) != 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "kind must be user or"
                                     " guest");
    }

    if (mr->mcf->registration == NGX_MATRIX_REG_CLOSED) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                     "Registration is disabled");
    }

    rc = ngx_matrix_register_options(mr, g);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_matrix_device_id(mr, mr->body, &g->device_id);
    if (rc != NGX_OK) {
        return rc;
    }

    v = mx_json_get(mr->body, "password");
    if (v == NULL || v->type != MX_JSON_STRING) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     v ? "M_INVALID_PARAM" : "M_MISSING_PARAM",
                                     "password must be a string");
    }

    g->password.data = (u_char *) v->u.s.p;
    g->password.len = v->u.s.len;

    v = mx_json_get(mr->body, "username");

    if (v && v->type != MX_JSON_NULL) {
        if (v->type != MX_JSON_STRING) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM",
                                         "username must be a string");
        }

        rc = ngx_matrix_username(mr, (u_char *) v->u.s.p, v->u.s.len,
                                 &g->user_id);

    } else {
        /* no name asked for: one of twelve letters */
        for (i = 0; i < sizeof(name); i++) {
            name[i] = 'a' + randombytes_uniform(26);
        }

        rc = ngx_matrix_username(mr, name, sizeof(name), &g->user_id);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_matrix_user_key(mr, &g->user_id, "user", &g->user_key) != NGX_OK
        || ngx_matrix_register_displayname(mr, g, (char *) g->user_id.data + 1,
                                           g->user_id.len - 2
                                           - mr->mcf->server_name.len)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* a name in use is refused before user-interactive auth, as required */
    ngx_matrix_fcall_init(&c, "mx_user_get", 1);
    ngx_matrix_cmd_str(&c, &g->user_key);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_register_checked);
}


/* GET /register/available?username= */

static ngx_int_t
ngx_matrix_available_checked(ngx_matrix_req_t *mr, redisReply *reply)
{
    static u_char  yes[] = "{\"available\":true}";

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_USER_IN_USE",
                                     "User ID already taken.");
    }

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, yes, sizeof(yes) - 1);
}


ngx_int_t
ngx_matrix_register_available(ngx_matrix_req_t *mr)
{
    ngx_str_t         name, user_id, key;
    ngx_int_t         rc;
    ngx_matrix_cmd_t  c;

    if (ngx_matrix_arg(mr->r, "username", &name) != NGX_OK || name.len == 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_MISSING_PARAM",
                                     "username is required");
    }

    rc = ngx_matrix_username(mr, name.data, name.len, &user_id);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_matrix_user_key(mr, &user_id, "user", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_user_get", 1);
    ngx_matrix_cmd_str(&c, &key);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_available_checked);
}


/* GET /register/m.login.registration_token/validity?token= */

static ngx_int_t
ngx_matrix_validity_checked(ngx_matrix_req_t *mr, redisReply *reply)
{
    static u_char  yes[] = "{\"valid\":true}";
    static u_char  no[] = "{\"valid\":false}";

    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, yes, sizeof(yes) - 1);
    }

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, no, sizeof(no) - 1);
}


ngx_int_t
ngx_matrix_regtoken_validity(ngx_matrix_req_t *mr)
{
    ngx_str_t  token;

    if (mr->mcf->registration == NGX_MATRIX_REG_CLOSED) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                     "Registration is disabled");
    }

    if (ngx_matrix_arg(mr->r, "token", &token) != NGX_OK) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_MISSING_PARAM", "token is required");
    }

    if (!ngx_matrix_regtoken_valid(token.data, token.len)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "A registration"
                                     " token is 1 to 64 of [A-Za-z0-9._~-]");
    }

    return ngx_matrix_regtoken_call(mr, &token, "check",
                                    ngx_matrix_validity_checked);
}


/*
 * GET and POST /_synapse/admin/v1/register.
 *
 * GET hands out a nonce, valid once for a minute.  POST carries it with
 * mac = hex(HMAC-SHA1(shared secret,
 *                     nonce \0 username \0 password \0 admin|notadmin
 *                     [\0 user_type]))
 */

static ngx_int_t
ngx_matrix_admin_nonce_stored(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_str_t  *nonce = mr->data;
    u_char     *body;
    size_t      len;

    len = sizeof("{\"nonce\":\"\"}") - 1 + nonce->len;
    body = ngx_pnalloc(mr->r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(body, "{\"nonce\":\"%V\"}", nonce);

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, body, len);
}


static ngx_int_t
ngx_matrix_admin_nonce(ngx_matrix_req_t *mr)
{
    ngx_str_t    *nonce, key;
    u_char        random[16];
    const char   *argv[5];
    size_t        argvlen[5];

    nonce = ngx_palloc(mr->r->pool, sizeof(ngx_str_t));
    if (nonce == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nonce->len = 2 * sizeof(random);
    nonce->data = ngx_pnalloc(mr->r->pool, nonce->len);
    key.len = sizeof("mx:regnonce:") - 1 + nonce->len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (nonce->data == NULL || key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    randombytes_buf(random, sizeof(random));
    ngx_hex_dump(nonce->data, random, sizeof(random));
    ngx_sprintf(key.data, "mx:regnonce:%V", nonce);

    mr->data = nonce;

    argv[0] = "SET";
    argvlen[0] = 3;
    argv[1] = (char *) key.data;
    argvlen[1] = key.len;
    argv[2] = "1";
    argvlen[2] = 1;
    argv[3] = "PX";
    argvlen[3] = 2;
    argv[4] = NGX_MATRIX_NONCE_TTL;
    argvlen[4] = sizeof(NGX_MATRIX_NONCE_TTL) - 1;

    return ngx_matrix_redis(mr, ngx_matrix_admin_nonce_stored, 5, argv,
                            argvlen);
}


static ngx_int_t
ngx_matrix_admin_nonce_taken(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_reg_t  *g = mr->data;

    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_UNKNOWN", "unrecognised nonce");
    }

    return ngx_matrix_password_hash(mr, &g->password, &g->hash,
                                    ngx_matrix_register_hashed);
}


static ngx_int_t
ngx_matrix_admin_mac_ok(ngx_matrix_req_t *mr, ngx_str_t *nonce,
    ngx_str_t *username, ngx_str_t *password, ngx_uint_t admin,
    ngx_str_t *user_type, ngx_str_t *mac)
{
    u_char        md[EVP_MAX_MD_SIZE], hex[2 * EVP_MAX_MD_SIZE], *msg, *p;
    unsigned int  md_len;
    ngx_str_t    *secret;
    size_t        len;
    ngx_int_t     ok;

    secret = &mr->mcf->shared_secret;

    len = nonce->len + username->len + password->len + user_type->len + 12;
    msg = ngx_pnalloc(mr->r->pool, len);
    if (msg == NULL) {
        return 0;
    }

    p = ngx_cpymem(msg, nonce->data, nonce->len);
    *p++ = '\0';
    p = ngx_cpymem(p, username->data, username->len);
    *p++ = '\0';
    p = ngx_cpymem(p, password->data, password->len);
    *p++ = '\0';
    p = admin ? ngx_cpymem(p, "admin", 5) : ngx_cpymem(p, "notadmin", 8);

    if (user_type->len) {
        *p++ = '\0';
        p = ngx_cpymem(p, user_type->data, user_type->len);
    }

    ok = HMAC(EVP_sha1(), secret->data, (int) secret->len, msg, p - msg, md,
              &md_len) != NULL;

    ngx_explicit_memzero(msg, len);

    if (!ok || mac->len != 2 * md_len) {
        return 0;
    }

    ngx_hex_dump(hex, md, md_len);
    ngx_strlow(mac->data, mac->data, mac->len);

    return CRYPTO_memcmp(hex, mac->data, mac->len) == 0;
}


static ngx_int_t
ngx_matrix_admin_register_post(ngx_matrix_req_t *mr)
{
    ngx_matrix_reg_t  *g;
    mx_json_t         *body, *v;
    ngx_str_t          nonce, username, mac, user_type, key;
    const char        *argv[2];
    size_t             argvlen[2];
    const char        *name;
    size_t             len;
    ngx_int_t          rc;

    body = mr->body;

#define ngx_matrix_admin_str(field, out, required)                           \
    v = mx_json_get(body, field);                                            \
    if ((v == NULL && required)                                              \
        || (v && v->type != MX_JSON_STRING && v->type != MX_JSON_NULL))      \
    {                                                                        \
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,            \
                                     v ? "M_INVALID_PARAM" : "M_MISSING_PARAM",\
                                     "%s must be a string", field);          \
    }                                                                        \
    (out).data = mx_json_is(v, MX_JSON_STRING) ? (u_char *) v->u.s.p : NULL; \
    (out).len = mx_json_is(v, MX_JSON_STRING) ? v->u.s.len : 0

    g = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_reg_t));
    if (g == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = g;

    ngx_matrix_admin_str("nonce", nonce, 1);
    ngx_matrix_admin_str("username", username, 1);
    ngx_matrix_admin_str("password", g->password, 1);
    ngx_matrix_admin_str("mac", mac, 1);
    ngx_matrix_admin_str("user_type", user_type, 0);

#undef ngx_matrix_admin_str

    v = mx_json_get(body, "admin");
    if (v && !mx_json_is_bool(v)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "admin must be a boolean");
    }

    g->admin = mx_json_is(v, MX_JSON_TRUE);

    if (!ngx_matrix_admin_mac_ok(mr, &nonce, &username, &g->password,
                                 g->admin, &user_type, &mac))
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                     "HMAC incorrect");
    }

    rc = ngx_matrix_username(mr, username.data, username.len, &g->user_id);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_matrix_device_id(mr, NULL, &g->device_id);
    if (rc != NGX_OK) {
        return rc;
    }

    name = mx_json_get_str(body, "displayname", &len);
    if (name == NULL) {
        name = (char *) username.data;
        len = username.len;
    }

    if (ngx_matrix_user_key(mr, &g->user_id, "user", &g->user_key) != NGX_OK
        || ngx_matrix_register_displayname(mr, g, name, len) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    key.len = sizeof("mx:regnonce:") - 1 + nonce.len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(key.data, "mx:regnonce:%V", &nonce);

    /* the nonce can be used once */
    argv[0] = "DEL";
    argvlen[0] = 3;
    argv[1] = (char *) key.data;
    argvlen[1] = key.len;

    return ngx_matrix_redis(mr, ngx_matrix_admin_nonce_taken, 2, argv,
                            argvlen);
}


ngx_int_t
ngx_matrix_admin_register(ngx_matrix_req_t *mr)
{
    if (mr->mcf->shared_secret.len == 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST, "M_UNKNOWN",
                                     "Shared secret registration is not"
                                     " enabled");
    }

    if (mr->r->method == NGX_HTTP_POST) {
        return ngx_matrix_admin_register_post(mr);
    }

    return ngx_matrix_admin_nonce(mr);
}

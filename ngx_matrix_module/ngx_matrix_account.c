/*
 * Per-user data: account data, global and per room.
 *
 *   mx:{<user_id>}:account_data                   type -> content JSON
 *   mx:{<user_id>}:room_account_data:<room_id>    type -> content JSON
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"


static ngx_int_t ngx_matrix_account_data_put_done(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_account_data_get_done(ngx_matrix_req_t *mr,
    redisReply *reply);


/* the path names the authenticated user, or the request is refused */

ngx_int_t
ngx_matrix_check_own_user(ngx_matrix_req_t *mr, ngx_str_t *user_id,
    const char *what)
{
    if (user_id->len == mr->user_id.len
        && ngx_strncmp(user_id->data, mr->user_id.data, user_id->len) == 0)
    {
        return NGX_OK;
    }

    return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                 "Cannot %s for other users.", what);
}


/*
 * PUT and GET /user/{userId}/account_data/{type}
 *             /user/{userId}/rooms/{roomId}/account_data/{type}
 */

ngx_int_t
ngx_matrix_account_data(ngx_matrix_req_t *mr)
{
    ngx_http_request_t  *r;
    ngx_str_t           *user, *room, *type, key;
    ngx_int_t            rc;
    u_char              *p;
    char                *content;
    size_t               len;
    const char          *argv[6];
    size_t               argvlen[6];

    r = mr->r;
    user = &mr->params[0];
    room = mr->nparams == 3 ? &mr->params[1] : NULL;
    type = &mr->params[mr->nparams - 1];

    rc = ngx_matrix_check_own_user(mr, user, r->method == NGX_HTTP_PUT
                                             ? "add account data"
                                             : "get account data");
    if (rc != NGX_OK) {
        return rc;
    }

    if (room && !ngx_matrix_room_id_valid(room)) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%V is not a valid room ID.", room);
    }

    if (type->len == 0 || type->len > 255) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "The account data type must be 1 to"
                                     " 255 bytes");
    }

    key.len = sizeof("mx:{}:room_account_data:") - 1 + user->len
              + (room ? room->len : 0);
    key.data = ngx_pnalloc(r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (room) {
        p = ngx_sprintf(key.data, "mx:{%V}:room_account_data:%V", user, room);
    } else {
        p = ngx_sprintf(key.data, "mx:{%V}:account_data", user);
    }

    key.len = p - key.data;

    if (r->method != NGX_HTTP_PUT) {
        argv[0] = "HGET";
        argvlen[0] = 4;
        argv[1] = (char *) key.data;
        argvlen[1] = key.len;
        argv[2] = (char *) type->data;
        argvlen[2] = type->len;

        return ngx_matrix_redis(mr, ngx_matrix_account_data_get_done, 3,
                                argv, argvlen);
    }

    if ((type->len == sizeof("m.fully_read") - 1
         && ngx_strncmp(type->data, "m.fully_read", type->len) == 0)
        || (type->len == sizeof("m.push_rules") - 1
            && ngx_strncmp(type->data, "m.push_rules", type->len) == 0))
    {
        return ngx_matrix_send_error(r, NGX_HTTP_NOT_ALLOWED, "M_BAD_JSON",
                                     "Cannot set %V through this API.", type);
    }

    content = mx_json_encode(mr->pool, mr->body, 0, &len);
    if (content == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    argv[0] = "FCALL";
    argvlen[0] = 5;
    argv[1] = "mx_account_data_put";
    argvlen[1] = sizeof("mx_account_data_put") - 1;
    argv[2] = "1";
    argvlen[2] = 1;
    argv[3] = (char *) key.data;
    argvlen[3] = key.len;
    argv[4] = (char *) type->data;
    argvlen[4] = type->len;
    argv[5] = content;
    argvlen[5] = len;

    return ngx_matrix_redis(mr, ngx_matrix_account_data_put_done, 6,
                            argv, argvlen);
}


static ngx_int_t
ngx_matrix_account_data_put_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
}


static ngx_int_t
ngx_matrix_account_data_get_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    u_char  *body;

    if (reply->type != REDIS_REPLY_STRING) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     mr->nparams == 3
                                     ? "Room account data not found."
                                     : "Account data not found.");
    }

    body = ngx_pnalloc(mr->r->pool, reply->len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body, reply->str, reply->len);

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, body, reply->len);
}


/*
 * POST /account/password {new_password, logout_devices, auth}: the current
 * password by user-interactive auth, the new one hashed in the thread pool,
 * then mx_password_set (which logs out every other device unless
 * logout_devices is false).
 */

typedef struct {
    ngx_str_t   key;
    ngx_str_t   password;
    ngx_str_t   hash;
    ngx_uint_t  logout;
} ngx_matrix_password_change_t;


static ngx_int_t
ngx_matrix_password_changed(ngx_matrix_req_t *mr, redisReply *reply)
{
    return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
}


static ngx_int_t
ngx_matrix_password_hashed(ngx_matrix_req_t *mr, ngx_int_t ok)
{
    ngx_matrix_password_change_t  *pc = mr->data;
    ngx_matrix_cmd_t               c;

    ngx_matrix_fcall_init(&c, "mx_password_set", 1);
    ngx_matrix_cmd_str(&c, &pc->key);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, &pc->hash);
    ngx_matrix_cmd_cstr(&c, pc->logout ? "1" : "0");
    ngx_matrix_cmd_str(&c, &mr->device_id);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_password_changed);
}


static ngx_int_t
ngx_matrix_password_authed(ngx_matrix_req_t *mr)
{
    ngx_matrix_password_change_t  *pc = mr->data;

    return ngx_matrix_password_hash(mr, &pc->password, &pc->hash,
                                    ngx_matrix_password_hashed);
}


ngx_int_t
ngx_matrix_password_change(ngx_matrix_req_t *mr)
{
    ngx_matrix_password_change_t  *pc;
    mx_json_t                     *v;

    pc = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_password_change_t));
    if (pc == NULL
        || ngx_matrix_user_key(mr, &mr->user_id, "user", &pc->key) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = pc;

    v = mx_json_get(mr->body, "new_password");
    if (v == NULL || v->type != MX_JSON_STRING) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     v ? "M_BAD_JSON" : "M_MISSING_PARAM",
                                     "new_password must be a string");
    }

    pc->password.data = (u_char *) v->u.s.p;
    pc->password.len = v->u.s.len;

    v = mx_json_get(mr->body, "logout_devices");
    if (v && !mx_json_is_bool(v)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "logout_devices must be a"
                                     " boolean");
    }

    pc->logout = v == NULL || v->type == MX_JSON_TRUE;

    return ngx_matrix_uia(mr, "m.login.password", ngx_matrix_password_authed);
}


/*
 * POST /account/deactivate: after the password, the account can never log
 * in again, every token dies, and its name is never given out again.
 */

static ngx_int_t
ngx_matrix_deactivated(ngx_matrix_req_t *mr, redisReply *reply)
{
    static u_char  done[] = "{\"id_server_unbind_result\":\"success\"}";

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, done, sizeof(done) - 1);
}


static ngx_int_t
ngx_matrix_deactivate_authed(ngx_matrix_req_t *mr)
{
    ngx_str_t         key;
    ngx_matrix_cmd_t  c;

    if (ngx_matrix_user_key(mr, &mr->user_id, "user", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_deactivate", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->user_id);

    if (ngx_matrix_cmd_int(mr, &c, ngx_matrix_now_ms()) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_deactivated);
}


ngx_int_t
ngx_matrix_deactivate(ngx_matrix_req_t *mr)
{
    mx_json_t  *v;

    v = mx_json_get(mr->body, "id_server");
    if (v && v->type != MX_JSON_STRING) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "id_server must be a"
                                     " string");
    }

    v = mx_json_get(mr->body, "erase");
    if (v && !mx_json_is_bool(v)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "erase must be a boolean");
    }

    return ngx_matrix_uia(mr, "m.login.password",
                          ngx_matrix_deactivate_authed);
}

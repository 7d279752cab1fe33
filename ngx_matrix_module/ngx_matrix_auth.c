/*
 * The access-token layer every authenticated endpoint goes through, and
 * whoami, its simplest user.
 *
 * Tokens are never stored: Redis holds mx:{<user_id>}:token:<base64 sha256
 * of the token> (see core/mx_token.h for the format), so a copy of the
 * database gives nobody a working token.  A token not of our format is
 * refused without asking Redis; the others cost one call of mx_token_get.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include <mx_token.h>

#include "ngx_matrix_module.h"


/*
 * The token from "Authorization: Bearer <token>" or the deprecated
 * access_token query parameter.  NGX_DECLINED when both are given, which
 * is refused as ambiguous.
 */

ngx_int_t
ngx_matrix_token(ngx_http_request_t *r, ngx_str_t *token)
{
    ngx_table_elt_t  *h;
    ngx_str_t         value;
    ngx_int_t         has_arg;

    token->len = 0;
    token->data = NULL;

    has_arg = ngx_matrix_arg(r, "access_token", &value);
    if (has_arg == NGX_ERROR) {
        return NGX_ERROR;
    }

    h = r->headers_in.authorization;

    if (h && h->value.len > 7
        && ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) == 0)
    {
        if (has_arg == NGX_OK) {
            return NGX_DECLINED;
        }

        token->data = h->value.data + 7;
        token->len = h->value.len - 7;

        while (token->len && token->data[0] == ' ') {
            token->data++;
            token->len--;
        }

        return NGX_OK;
    }

    if (has_arg == NGX_OK) {
        *token = value;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_unknown_token(ngx_http_request_t *r)
{
    return ngx_matrix_send_error_extra(r, NGX_HTTP_UNAUTHORIZED,
                                       "M_UNKNOWN_TOKEN",
                                       "\"soft_logout\":false",
                                       "Unrecognised access token");
}


static ngx_int_t
ngx_matrix_auth_reply(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_http_request_t  *r;
    redisReply         **el;

    r = mr->r;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return ngx_matrix_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     "M_UNKNOWN", "Internal error");
    }

    el = reply->element;

    if (ngx_strcmp(el[0]->str, "expired") == 0) {
        return ngx_matrix_send_error_extra(r, NGX_HTTP_UNAUTHORIZED,
                                           "M_UNKNOWN_TOKEN",
                                           "\"soft_logout\":true",
                                           "Access token has expired");
    }

    if (ngx_strcmp(el[0]->str, "ok") != 0 || reply->elements != 4
        || el[1]->type != REDIS_REPLY_STRING
        || el[2]->type != REDIS_REPLY_STRING
        || el[3]->type != REDIS_REPLY_STRING)
    {
        return ngx_matrix_unknown_token(r);
    }

    mr->user_id.data = ngx_pstrdup(r->pool, &(ngx_str_t) {
                                       el[1]->len, (u_char *) el[1]->str });
    mr->user_id.len = el[1]->len;
    mr->device_id.data = ngx_pstrdup(r->pool, &(ngx_str_t) {
                                         el[2]->len, (u_char *) el[2]->str });
    mr->device_id.len = el[2]->len;
    mr->is_guest = (el[3]->len == 1 && el[3]->str[0] == '1');

    if (mr->user_id.data == NULL
        || (mr->device_id.len && mr->device_id.data == NULL))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mr->is_guest && !(mr->route->flags & NGX_MATRIX_GUEST)) {
        return ngx_matrix_send_error(r, NGX_HTTP_FORBIDDEN,
                                     "M_GUEST_ACCESS_FORBIDDEN",
                                     "Guest access is not allowed here");
    }

    return ngx_matrix_dispatch(mr);
}


ngx_int_t
ngx_matrix_authenticate(ngx_matrix_req_t *mr)
{
    u_char       *key, *now;
    char          user[MX_TOKEN_USER_MAX + 1];
    size_t        ulen, klen;
    const char   *argv[6];
    size_t        argvlen[6];

    ulen = mx_token_user((char *) mr->token.data, mr->token.len,
                         MX_TOKEN_ACCESS, user);
    if (ulen == 0) {
        return ngx_matrix_unknown_token(mr->r);
    }

    key = ngx_pnalloc(mr->r->pool, MX_TOKEN_KEY_MAX);
    now = ngx_pnalloc(mr->r->pool, NGX_INT64_LEN);
    if (key == NULL || now == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    klen = mx_token_key((char *) key, MX_TOKEN_ACCESS, user, ulen,
                        (char *) mr->token.data, mr->token.len);

    argv[0] = "FCALL";
    argvlen[0] = 5;
    argv[1] = "mx_token_get";
    argvlen[1] = 12;
    argv[2] = "1";
    argvlen[2] = 1;
    argv[3] = (const char *) key;
    argvlen[3] = klen;
    argv[4] = (const char *) now;
    argvlen[4] = ngx_sprintf(now, "%L", ngx_matrix_now_ms()) - now;
    argv[5] = (const char *) mr->r->connection->addr_text.data;
    argvlen[5] = mr->r->connection->addr_text.len;

    return ngx_matrix_redis(mr, ngx_matrix_auth_reply, 6, argv, argvlen);
}


/* GET /_matrix/client/v3/account/whoami */

ngx_int_t
ngx_matrix_whoami(ngx_matrix_req_t *mr)
{
    mx_pool_t  *pool;
    mx_json_t  *body;

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = mx_json_object(pool);
    if (body == NULL
        || mx_json_setn(pool, body, "user_id", 7,
                        mx_json_strn(pool, (char *) mr->user_id.data,
                                     mr->user_id.len)) != 0
        || mx_json_set(pool, body, "is_guest",
                       mx_json_bool(pool, mr->is_guest)) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mr->device_id.len
        && mx_json_set(pool, body, "device_id",
                       mx_json_strn(pool, (char *) mr->device_id.data,
                                    mr->device_id.len)) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}

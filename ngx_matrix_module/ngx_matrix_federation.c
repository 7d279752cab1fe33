/*
 * Endpoints of the server-server API that other servers call with a signed
 * request (see ngx_matrix_fedauth.c): mr->origin names the server.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"


typedef struct {
    ngx_str_t    user_id;
    ngx_str_t    field;              /* empty: the whole profile */
} ngx_matrix_fed_profile_t;


static ngx_int_t ngx_matrix_fed_profile_got(ngx_matrix_req_t *mr,
    redisReply *reply);


/*
 * GET /_matrix/federation/v1/query/profile?user_id=..[&field=..]: a local
 * user's public profile, or one field of it (an unset field is left out,
 * as the spec allows).  The profile is as public as the client API's.
 */

ngx_int_t
ngx_matrix_fed_query_profile(ngx_matrix_req_t *mr)
{
    ngx_http_request_t        *r;
    ngx_matrix_fed_profile_t  *q;
    ngx_str_t                  local, key;
    ngx_int_t                  rc;
    ngx_matrix_cmd_t           c;

    r = mr->r;

    q = ngx_pcalloc(r->pool, sizeof(ngx_matrix_fed_profile_t));
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_matrix_arg(r, "user_id", &q->user_id);
    if (rc == NGX_ERROR) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "user_id is not"
                                     " properly encoded");
    }

    if (rc == NGX_DECLINED || q->user_id.len == 0) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "M_MISSING_PARAM", "Missing user_id");
    }

    rc = ngx_matrix_arg(r, "field", &q->field);
    if (rc == NGX_ERROR) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "field is not"
                                     " properly encoded");
    }

    if (ngx_matrix_user_id_local(mr, &q->user_id, &local) != NGX_OK) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "User is not hosted"
                                     " on this homeserver");
    }

    if (ngx_matrix_user_key(mr, &q->user_id, "user", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = q;

    ngx_matrix_fcall_init(&c, "mx_profile_get", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &q->user_id);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_profile_got);
}


static ngx_int_t
ngx_matrix_fed_profile_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fed_profile_t  *q;
    mx_pool_t                 *pool;
    mx_json_t                 *body, *v, *one;

    q = mr->data;

    /* no such user, or deactivated */
    if (reply->type != REDIS_REPLY_ARRAY) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND,
                                     "M_NOT_FOUND", "Profile was not found");
    }

    body = ngx_matrix_profile_json(mr, reply);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (q->field.len == 0) {
        return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
    }

    pool = ngx_matrix_pool(mr);
    one = mx_json_object(pool);
    if (one == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    v = mx_json_getn(body, (char *) q->field.data, q->field.len);

    if (v != NULL
        && mx_json_setn(pool, one, (char *) q->field.data, q->field.len, v)
           != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, one);
}

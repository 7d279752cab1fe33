/*
 * Profiles: GET /profile/{userId}, and GET/PUT/DELETE
 * /profile/{userId}/{keyName} for displayname, avatar_url and the custom
 * fields of extended profiles.  Values are kept as JSON in
 * mx:{<user_id>}:profile; a whole profile is at most 64 KiB.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"


#define NGX_MATRIX_PROFILE_MAX      65536
#define NGX_MATRIX_DISPLAYNAME_MAX  256
#define NGX_MATRIX_AVATAR_URL_MAX   1000


static ngx_int_t
ngx_matrix_profile_not_found(ngx_matrix_req_t *mr)
{
    return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                 "Profile not found");
}


/*
 * {field: JSON value, ...} from the flat reply of mx_profile_get; the
 * federation's profile query reads it too
 */

mx_json_t *
ngx_matrix_profile_json(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t        *pool;
    mx_json_t        *body, *v;
    mx_json_error_t   err;
    size_t            i;

    pool = ngx_matrix_pool(mr);
    body = pool ? mx_json_object(pool) : NULL;
    if (body == NULL) {
        return NULL;
    }

    for (i = 0; i + 1 < reply->elements; i += 2) {
        v = mx_json_parse(pool, reply->element[i + 1]->str,
                          reply->element[i + 1]->len, &err);
        if (v == NULL
            || mx_json_setn(pool, body, reply->element[i]->str,
                            reply->element[i]->len, v) != 0)
        {
            return NULL;
        }
    }

    return body;
}


static ngx_int_t
ngx_matrix_profile_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_json_t  *body, *v, *one;
    mx_pool_t  *pool;
    ngx_str_t  *field;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return ngx_matrix_profile_not_found(mr);
    }

    body = ngx_matrix_profile_json(mr, reply);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mr->nparams == 1) {
        return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
    }

    field = &mr->params[1];
    v = mx_json_getn(body, (char *) field->data, field->len);

    if (v == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     "The profile has no %V", field);
    }

    pool = ngx_matrix_pool(mr);
    one = mx_json_object(pool);
    if (one == NULL
        || mx_json_setn(pool, one, (char *) field->data, field->len, v) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, one);
}


/* the user of the path: ours (NGX_OK), someone else's (404), no user ID */

static ngx_int_t
ngx_matrix_profile_user(ngx_matrix_req_t *mr, ngx_str_t *key)
{
    ngx_str_t  local;

    if (ngx_matrix_user_id_local(mr, &mr->params[0], &local) == NGX_OK) {
        return ngx_matrix_user_key(mr, &mr->params[0], "user", key) == NGX_OK
               ? NGX_OK : NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mr->params[0].len && mr->params[0].data[0] == '@'
        && ngx_strlchr(mr->params[0].data,
                       mr->params[0].data + mr->params[0].len, ':'))
    {
        /* a user of another server: asked over federation, later */
        return ngx_matrix_profile_not_found(mr);
    }

    return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                 "M_INVALID_PARAM", "%V is not a user ID",
                                 &mr->params[0]);
}


/* GET /profile/{userId} */

ngx_int_t
ngx_matrix_profile(ngx_matrix_req_t *mr)
{
    ngx_str_t         key;
    ngx_int_t         rc;
    ngx_matrix_cmd_t  c;

    rc = ngx_matrix_profile_user(mr, &key);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_matrix_fcall_init(&c, "mx_profile_get", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->params[0]);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_profile_got);
}


/*
 * The requesting user's own profile (mx_profile_get), for what a member
 * event of theirs carries: createRoom, a join, a profile change spread to
 * the rooms.  The reply goes to next.
 */

ngx_int_t
ngx_matrix_profile_own(ngx_matrix_req_t *mr, ngx_matrix_reply_pt next)
{
    ngx_str_t         key;
    ngx_matrix_cmd_t  c;

    if (ngx_matrix_user_key(mr, &mr->user_id, "user", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_profile_get", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->user_id);

    return ngx_matrix_cmd_send(mr, &c, next);
}


static ngx_int_t
ngx_matrix_profile_set_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_str_t  *field;

    field = &mr->params[1];

    /* what member events carry goes to every joined room */
    if ((field->len == 11 && ngx_strncmp(field->data, "displayname", 11) == 0)
        || (field->len == 10
            && ngx_strncmp(field->data, "avatar_url", 10) == 0))
    {
        return ngx_matrix_profile_propagate(mr);
    }

    return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
}


/*
 * PUT and DELETE /profile/{userId}/{keyName}: only one's own; displayname
 * and avatar_url are strings (null clears them), other fields any JSON.
 */

static ngx_int_t
ngx_matrix_profile_set(ngx_matrix_req_t *mr, ngx_str_t *key)
{
    ngx_str_t         *field, value;
    mx_json_t         *v;
    ngx_uint_t         remove;
    size_t             max;
    char              *json;
    ngx_matrix_cmd_t   c;

    field = &mr->params[1];

    if (field->len == 0 || field->len > 255) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_KEY_TOO_LARGE", "A profile field name"
                                     " is 1 to 255 bytes");
    }

    if (mr->is_guest
        && !(field->len == 11
             && ngx_strncmp(field->data, "displayname", 11) == 0))
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_FORBIDDEN,
                                     "M_GUEST_ACCESS_FORBIDDEN",
                                     "Guests may only set a displayname");
    }

    remove = 1;
    value.len = 0;
    value.data = NULL;

    if (mr->r->method == NGX_HTTP_PUT) {
        v = mx_json_getn(mr->body, (char *) field->data, field->len);

        if (v == NULL) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_MISSING_PARAM", "The body must"
                                         " hold %V", field);
        }

        max = 0;
        if (field->len == 11
            && ngx_strncmp(field->data, "displayname", 11) == 0)
        {
            max = NGX_MATRIX_DISPLAYNAME_MAX;
        } else if (field->len == 10
                   && ngx_strncmp(field->data, "avatar_url", 10) == 0)
        {
            max = NGX_MATRIX_AVATAR_URL_MAX;
        }

        if (max && v->type != MX_JSON_STRING && v->type != MX_JSON_NULL) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "%V must be a"
                                         " string", field);
        }

        if (max && v->type == MX_JSON_STRING && v->u.s.len > max) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_TOO_LARGE", "%V is longer than"
                                         " %uz bytes", field, max);
        }

        if (v->type != MX_JSON_NULL) {
            json = mx_json_encode(mr->pool, v, 0, &value.len);
            if (json == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            value.data = (u_char *) json;
            remove = 0;
        }
    }

    ngx_matrix_fcall_init(&c, "mx_profile_set", 1);
    ngx_matrix_cmd_str(&c, key);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, field);
    ngx_matrix_cmd_str(&c, &value);
    ngx_matrix_cmd_cstr(&c, remove ? "1" : "0");

    if (ngx_matrix_cmd_int(mr, &c, NGX_MATRIX_PROFILE_MAX) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_profile_set_done);
}


/* GET, PUT, DELETE /profile/{userId}/{keyName} */

ngx_int_t
ngx_matrix_profile_field(ngx_matrix_req_t *mr)
{
    ngx_str_t  key;
    ngx_int_t  rc;

    if (mr->r->method == NGX_HTTP_GET || mr->r->method == NGX_HTTP_HEAD) {
        return ngx_matrix_profile(mr);
    }

    rc = ngx_matrix_check_own_user(mr, &mr->params[0], "set the profile");
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_matrix_user_key(mr, &mr->user_id, "user", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_profile_set(mr, &key);
}

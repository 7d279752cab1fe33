/*
 * Filters: POST /user/{userId}/filter and GET /user/{userId}/filter/{id}.
 *
 * A filter is checked by core (core/mx_filter.c, which /sync reads filters
 * with as well) and stored as canonical JSON, unknown keys included, in
 *
 *   mx:{<user_id>}:filters     <filter_id> -> filter (lua/filters.lua)
 *
 * Filter IDs are decimal numbers; uploading the same filter again gives the
 * same ID.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_filter.h>

#include "ngx_matrix_module.h"


#define NGX_MATRIX_FILTER_ID_MAX  18


static ngx_int_t
ngx_matrix_filter_stored(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t  *pool;
    mx_json_t  *body;

    if (reply->type != REDIS_REPLY_STRING) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pool = ngx_matrix_pool(mr);
    body = pool ? mx_json_object(pool) : NULL;

    if (body == NULL
        || mx_json_set(pool, body, "filter_id",
                       mx_json_strn(pool, reply->str, reply->len))
           != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/* POST /user/{userId}/filter: only for oneself */

ngx_int_t
ngx_matrix_filter_post(ngx_matrix_req_t *mr)
{
    ngx_int_t          rc;
    ngx_str_t          key;
    mx_filter_t        filter;
    mx_pool_t         *pool;
    char              *json, err[160];
    size_t             len;
    ngx_matrix_cmd_t   c;

    rc = ngx_matrix_check_own_user(mr, &mr->params[0], "create filters");
    if (rc != NGX_OK) {
        return rc;
    }

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mx_filter_parse(pool, mr->body, &filter, err, sizeof(err)) != 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "Invalid filter: %s", err);
    }

    json = mx_json_encode(pool, mr->body, 0, &len);
    if (json == NULL
        || ngx_matrix_user_key(mr, &mr->user_id, "filters", &key) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_filter_put", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_add(&c, json, len);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_filter_stored);
}


static ngx_int_t
ngx_matrix_filter_not_found(ngx_matrix_req_t *mr)
{
    return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                 "No such filter.");
}


static ngx_int_t
ngx_matrix_filter_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    u_char  *body;

    if (reply->type != REDIS_REPLY_STRING) {
        return ngx_matrix_filter_not_found(mr);
    }

    body = ngx_pnalloc(mr->r->pool, reply->len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body, reply->str, reply->len);

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, body, reply->len);
}


/* GET /user/{userId}/filter/{filterId}: only one's own */

ngx_int_t
ngx_matrix_filter_get(ngx_matrix_req_t *mr)
{
    ngx_int_t          rc;
    ngx_str_t         *id, key;
    ngx_uint_t         i;
    ngx_matrix_cmd_t   c;

    rc = ngx_matrix_check_own_user(mr, &mr->params[0], "get filters");
    if (rc != NGX_OK) {
        return rc;
    }

    id = &mr->params[1];

    /* IDs are what mx_filter_put gives out: anything else is unknown */

    if (id->len == 0 || id->len > NGX_MATRIX_FILTER_ID_MAX) {
        return ngx_matrix_filter_not_found(mr);
    }

    for (i = 0; i < id->len; i++) {
        if (id->data[i] < '0' || id->data[i] > '9') {
            return ngx_matrix_filter_not_found(mr);
        }
    }

    if (ngx_matrix_user_key(mr, &mr->user_id, "filters", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    c.n = 0;
    c.overflow = 0;
    ngx_matrix_cmd_cstr(&c, "HGET");
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, id);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_filter_got);
}

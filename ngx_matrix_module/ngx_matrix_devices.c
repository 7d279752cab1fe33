/*
 * Devices: list, look at, rename, delete (with user-interactive auth).
 * Deleting a device kills its tokens; the devices are in mx_devices and
 * friends (lua/users.lua).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"


typedef struct {
    ngx_str_t    key;          /* mx:{<user_id>}:user */
    ngx_str_t   *ids;
    ngx_uint_t   nids;
} ngx_matrix_devices_t;


/* one {device_id, display_name, last_seen_ip, last_seen_ts} as JSON */

static mx_json_t *
ngx_matrix_device_json(mx_pool_t *pool, redisReply *d)
{
    mx_json_t  *o;
    char       *end;
    int64_t     ts;

    if (d->type != REDIS_REPLY_ARRAY || d->elements != 4) {
        return NULL;
    }

    o = mx_json_object(pool);
    if (o == NULL
        || mx_json_set(pool, o, "device_id",
                       mx_json_strn(pool, d->element[0]->str,
                                    d->element[0]->len)) != 0)
    {
        return NULL;
    }

    if (d->element[1]->len
        && mx_json_set(pool, o, "display_name",
                       mx_json_strn(pool, d->element[1]->str,
                                    d->element[1]->len)) != 0)
    {
        return NULL;
    }

    if (d->element[2]->len
        && mx_json_set(pool, o, "last_seen_ip",
                       mx_json_strn(pool, d->element[2]->str,
                                    d->element[2]->len)) != 0)
    {
        return NULL;
    }

    if (d->element[3]->len) {
        ts = strtoll(d->element[3]->str, &end, 10);
        if (mx_json_set_int(pool, o, "last_seen_ts", ts) != 0) {
            return NULL;
        }
    }

    return o;
}


static ngx_int_t
ngx_matrix_devices_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t  *pool;
    mx_json_t  *body, *list, *d;
    size_t      i;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* one device asked for */
    if (mr->nparams == 1) {
        if (reply->elements == 0) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND,
                                         "M_NOT_FOUND", "Device not found");
        }

        d = ngx_matrix_device_json(pool, reply->element[0]);
        if (d == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, d);
    }

    body = mx_json_object(pool);
    list = mx_json_array(pool);
    if (body == NULL || list == NULL
        || mx_json_set(pool, body, "devices", list) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < reply->elements; i++) {
        d = ngx_matrix_device_json(pool, reply->element[i]);
        if (d == NULL || mx_json_append(pool, list, d) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


static ngx_int_t
ngx_matrix_devices_deleted(ngx_matrix_req_t *mr, redisReply *reply)
{
    return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
}


/* user-interactive auth passed: delete them */

static ngx_int_t
ngx_matrix_devices_delete(ngx_matrix_req_t *mr)
{
    ngx_matrix_devices_t  *ds = mr->data;
    ngx_matrix_cmd_t       c;
    ngx_uint_t             i;

    ngx_matrix_fcall_init(&c, "mx_devices_delete", 1);
    ngx_matrix_cmd_str(&c, &ds->key);
    ngx_matrix_cmd_str(&c, &mr->user_id);

    for (i = 0; i < ds->nids; i++) {
        ngx_matrix_cmd_str(&c, &ds->ids[i]);
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_devices_deleted);
}


static ngx_matrix_devices_t *
ngx_matrix_devices_state(ngx_matrix_req_t *mr)
{
    ngx_matrix_devices_t  *ds;

    ds = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_devices_t));
    if (ds == NULL) {
        return NULL;
    }

    if (ngx_matrix_user_key(mr, &mr->user_id, "user", &ds->key) != NGX_OK) {
        return NULL;
    }

    mr->data = ds;
    return ds;
}


static ngx_int_t
ngx_matrix_devices_list(ngx_matrix_req_t *mr, ngx_str_t *device_id)
{
    ngx_matrix_devices_t  *ds;
    ngx_matrix_cmd_t       c;
    ngx_str_t              all = ngx_null_string;

    ds = ngx_matrix_devices_state(mr);
    if (ds == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_devices", 1);
    ngx_matrix_cmd_str(&c, &ds->key);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, device_id ? device_id : &all);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_devices_got);
}


/* GET /devices */

ngx_int_t
ngx_matrix_devices(ngx_matrix_req_t *mr)
{
    return ngx_matrix_devices_list(mr, NULL);
}


static ngx_int_t
ngx_matrix_device_renamed(ngx_matrix_req_t *mr, redisReply *reply)
{
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND,
                                     "M_NOT_FOUND", "Device not found");
    }

    return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
}


/* GET, PUT and DELETE /devices/{deviceId} */

ngx_int_t
ngx_matrix_device(ngx_matrix_req_t *mr)
{
    ngx_matrix_devices_t  *ds;
    ngx_matrix_cmd_t       c;
    mx_json_t             *v;
    ngx_str_t             *id;

    id = &mr->params[0];

    if (mr->r->method == NGX_HTTP_GET || mr->r->method == NGX_HTTP_HEAD) {
        return ngx_matrix_devices_list(mr, id);
    }

    ds = ngx_matrix_devices_state(mr);
    if (ds == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mr->r->method == NGX_HTTP_DELETE) {
        ds->ids = id;
        ds->nids = 1;

        return ngx_matrix_uia(mr, "m.login.password",
                              ngx_matrix_devices_delete);
    }

    v = mx_json_get(mr->body, "display_name");

    if (v == NULL) {
        return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
    }

    if (v->type != MX_JSON_STRING || v->u.s.len > 255) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "display_name must be"
                                     " a string of at most 255 bytes");
    }

    ngx_matrix_fcall_init(&c, "mx_device_rename", 1);
    ngx_matrix_cmd_str(&c, &ds->key);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, id);
    ngx_matrix_cmd_add(&c, v->u.s.p, v->u.s.len);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_device_renamed);
}


/* POST /delete_devices {"devices": [...]} */

ngx_int_t
ngx_matrix_delete_devices(ngx_matrix_req_t *mr)
{
    ngx_matrix_devices_t  *ds;
    mx_json_t             *list, *d;
    size_t                 i;

    list = mx_json_get(mr->body, "devices");

    if (list == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_MISSING_PARAM", "devices is required");
    }

    if (list->type != MX_JSON_ARRAY) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "devices must be a list");
    }

    if (list->u.a.n > NGX_MATRIX_MAX_ARGS - 8) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_LIMIT_EXCEEDED", "At most %d devices"
                                     " at a time", NGX_MATRIX_MAX_ARGS - 8);
    }

    ds = ngx_matrix_devices_state(mr);
    if (ds == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ds->ids = ngx_pcalloc(mr->r->pool, (list->u.a.n + 1) * sizeof(ngx_str_t));
    if (ds->ids == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < list->u.a.n; i++) {
        d = list->u.a.v[i];

        if (d->type != MX_JSON_STRING) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "devices must be a"
                                         " list of strings");
        }

        ds->ids[i].data = (u_char *) d->u.s.p;
        ds->ids[i].len = d->u.s.len;
    }

    ds->nids = list->u.a.n;

    return ngx_matrix_uia(mr, "m.login.password", ngx_matrix_devices_delete);
}

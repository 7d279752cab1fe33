/*
 * What other software asks first: the spec versions we speak, where the
 * client and federation APIs live, who we are, and our signing keys.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"


/* GET /_matrix/client/versions */

ngx_int_t
ngx_matrix_versions(ngx_matrix_req_t *mr)
{
    static u_char  versions[] =
        "{\"unstable_features\":{},"
        "\"versions\":[\"r0.0.1\",\"r0.1.0\",\"r0.2.0\",\"r0.3.0\","
        "\"r0.4.0\",\"r0.5.0\",\"r0.6.0\",\"r0.6.1\","
        "\"v1.1\",\"v1.2\",\"v1.3\",\"v1.4\",\"v1.5\",\"v1.6\",\"v1.7\","
        "\"v1.8\",\"v1.9\",\"v1.10\",\"v1.11\",\"v1.12\",\"v1.13\","
        "\"v1.14\",\"v1.15\",\"v1.16\",\"v1.17\",\"v1.18\",\"v1.19\"]}";

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, versions,
                               sizeof(versions) - 1);
}


/*
 * GET /.well-known/matrix/client: matrix_public_baseurl, or else the scheme
 * and Host this request came in with.
 */

ngx_int_t
ngx_matrix_wellknown_client(ngx_matrix_req_t *mr)
{
    ngx_http_request_t  *r;
    ngx_str_t            base, host;
    mx_pool_t           *pool;
    mx_json_t           *body, *hs;
    u_char              *p;

    r = mr->r;
    base = mr->mcf->public_baseurl;

    if (base.len == 0) {
        if (r->headers_in.host) {
            host = r->headers_in.host->value;
        } else {
            host = mr->mcf->server_name;
        }

        base.data = ngx_pnalloc(r->pool, sizeof("https://") + host.len);
        if (base.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

#if (NGX_HTTP_SSL)
        p = ngx_sprintf(base.data, "%s://%V",
                        r->connection->ssl ? "https" : "http", &host);
#else
        p = ngx_sprintf(base.data, "http://%V", &host);
#endif
        base.len = p - base.data;
    }

    pool = ngx_matrix_pool(mr);
    body = pool ? mx_json_object(pool) : NULL;
    hs = pool ? mx_json_object(pool) : NULL;

    if (body == NULL || hs == NULL
        || mx_json_set(pool, hs, "base_url",
                       mx_json_strn(pool, (char *) base.data, base.len)) != 0
        || mx_json_set(pool, body, "m.homeserver", hs) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(r, NGX_HTTP_OK, body);
}


/* GET /.well-known/matrix/server: only when delegation is configured */

ngx_int_t
ngx_matrix_wellknown_server(ngx_matrix_req_t *mr)
{
    ngx_str_t  *addr;
    mx_pool_t  *pool;
    mx_json_t  *body;

    addr = &mr->mcf->federation_address;

    if (addr->len == 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     "This server does not delegate"
                                     " federation");
    }

    pool = ngx_matrix_pool(mr);
    body = pool ? mx_json_object(pool) : NULL;

    if (body == NULL
        || mx_json_set(pool, body, "m.server",
                       mx_json_strn(pool, (char *) addr->data, addr->len))
           != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/* GET /_matrix/federation/v1/version */

ngx_int_t
ngx_matrix_federation_version(ngx_matrix_req_t *mr)
{
    static u_char  version[] =
        "{\"server\":{\"name\":\"" NGX_MATRIX_SERVER "\","
        "\"version\":\"" NGX_MATRIX_VERSION "\"}}";

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, version,
                               sizeof(version) - 1);
}


/*
 * GET /_matrix/key/v2/server: our verify key, signed by itself, valid for
 * matrix_key_validity.  Signing costs tens of microseconds, so each worker
 * keeps the signed response and renews it when half its validity is gone.
 */

static struct {
    u_char    *json;
    size_t     len;
    int64_t    renew_at;
} ngx_matrix_key_cache;


static ngx_int_t
ngx_matrix_key_build(ngx_matrix_req_t *mr, int64_t now)
{
    ngx_matrix_main_conf_t  *mcf;
    mx_signing_key_t        *key;
    mx_pool_t               *pool;
    mx_json_t               *body, *keys, *vk;
    char                    *json;
    size_t                   len;
    char                     server[256];

    mcf = mr->mcf;
    key = mcf->signing_key;

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) server, mcf->server_name.data,
                ngx_min(mcf->server_name.len + 1, sizeof(server)));

    body = mx_json_object(pool);
    keys = mx_json_object(pool);
    vk = mx_json_object(pool);

    if (body == NULL || keys == NULL || vk == NULL
        || mx_json_set_str(pool, vk, "key", key->pk_b64) != 0
        || mx_json_set(pool, keys, key->key_id, vk) != 0
        || mx_json_set(pool, body, "verify_keys", keys) != 0
        || mx_json_set(pool, body, "old_verify_keys", mx_json_object(pool))
           != 0
        || mx_json_set_str(pool, body, "server_name", server) != 0
        || mx_json_set_int(pool, body, "valid_until_ts",
                           now + (int64_t) mcf->key_valid) != 0
        || mx_sign_json(pool, body, server, key, MX_JSON_STRICT) != 0)
    {
        return NGX_ERROR;
    }

    json = mx_json_encode(pool, body, MX_JSON_STRICT, &len);
    if (json == NULL) {
        return NGX_ERROR;
    }

    if (ngx_matrix_key_cache.json) {
        ngx_free(ngx_matrix_key_cache.json);
    }

    ngx_matrix_key_cache.json = ngx_alloc(len, ngx_cycle->log);
    if (ngx_matrix_key_cache.json == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_matrix_key_cache.json, json, len);
    ngx_matrix_key_cache.len = len;
    ngx_matrix_key_cache.renew_at = now + (int64_t) mcf->key_valid / 2;

    return NGX_OK;
}


/*
 * Our signed key response, a copy in the request pool (the cache may be
 * renewed while the response is still being sent); the notary serves it
 * too, for queries about this server.
 */

ngx_int_t
ngx_matrix_key_own(ngx_matrix_req_t *mr, ngx_str_t *json)
{
    int64_t  now;

    now = ngx_matrix_now_ms();

    if (ngx_matrix_key_cache.json == NULL
        || now >= ngx_matrix_key_cache.renew_at)
    {
        if (ngx_matrix_key_build(mr, now) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    json->data = ngx_pnalloc(mr->r->pool, ngx_matrix_key_cache.len);
    if (json->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(json->data, ngx_matrix_key_cache.json,
               ngx_matrix_key_cache.len);
    json->len = ngx_matrix_key_cache.len;

    return NGX_OK;
}


ngx_int_t
ngx_matrix_key_server(ngx_matrix_req_t *mr)
{
    ngx_str_t  json;

    if (ngx_matrix_key_own(mr, &json) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, json.data, json.len);
}

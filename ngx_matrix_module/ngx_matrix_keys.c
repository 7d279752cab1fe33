/*
 * End-to-end encryption keys (lua/keys.lua):
 *
 *   POST /keys/upload    a device's identity, one-time and fallback keys
 *   POST /keys/query     users' device and cross-signing keys
 *   POST /keys/claim     one one-time key (or the fallback key) per device
 *   GET  /keys/changes   whose device lists changed since a sync token
 *
 * for other servers (X-Matrix, /_matrix/federation/v1):
 *
 *   GET  /user/devices/{userId}   a local user's device list
 *   POST /user/keys/query         the /keys/query handler, local users only
 *   POST /user/keys/claim         the /keys/claim handler, local users only
 *
 * and the e2ee sections of /sync (ngx_matrix_sync_e2ee).  Cross-signing
 * keys and signatures are in ngx_matrix_cross_signing.c.
 *
 * Keys are stored as the canonical JSON this module writes and given back
 * as stored, plus what the server adds: signatures uploaded later through
 * /keys/signatures/upload (those the asker may see) and the device's
 * display name in unsigned.device_display_name.  Users of other servers
 * are put in "failures" until federation comes; unknown local users and
 * devices are simply absent.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_ids.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_keys.h"


/* what Redis would answer when nothing local was asked for */
static redisReply  ngx_matrix_keys_nothing = { .type = REDIS_REPLY_ARRAY };


/*
 * Commands of any length.
 */

ngx_int_t
ngx_matrix_args_init(ngx_matrix_req_t *mr, ngx_matrix_args_t *a,
    const char *function, ngx_str_t *key, ngx_uint_t cap)
{
    cap += 4;

    a->v = ngx_palloc(mr->r->pool, cap * sizeof(const char *));
    a->len = ngx_palloc(mr->r->pool, cap * sizeof(size_t));
    if (a->v == NULL || a->len == NULL) {
        return NGX_ERROR;
    }

    a->n = 0;
    a->cap = cap;

    ngx_matrix_args_add(a, "FCALL", 5);
    ngx_matrix_args_add(a, function, ngx_strlen(function));
    ngx_matrix_args_add(a, "1", 1);
    ngx_matrix_args_str(a, key);

    return NGX_OK;
}


void
ngx_matrix_args_add(ngx_matrix_args_t *a, const void *p, size_t len)
{
    if (a->n < a->cap) {
        a->v[a->n] = p;
        a->len[a->n] = len;
    }

    /* past cap: counted, and refused by ngx_matrix_args_send() */
    a->n++;
}


ngx_int_t
ngx_matrix_args_send(ngx_matrix_req_t *mr, ngx_matrix_args_t *a,
    ngx_matrix_reply_pt next)
{
    if (a->n > a->cap) {
        ngx_log_error(NGX_LOG_ALERT, mr->r->connection->log, 0,
                      "matrix: %ui arguments for room for %ui", a->n, a->cap);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_redis(mr, next, (int) a->n, a->v, a->len);
}


/*
 * Helpers.
 */

ngx_uint_t
ngx_matrix_keys_local(ngx_matrix_req_t *mr, const char *user_id, size_t len)
{
    const char  *server;
    size_t       slen;

    server = mx_id_server(user_id, len, &slen);

    return server != NULL && slen == mr->mcf->server_name.len
           && ngx_strncmp(server, mr->mcf->server_name.data, slen) == 0;
}


const char *
ngx_matrix_keys_xs_pk(const mx_json_t *key, size_t *len)
{
    mx_json_t  *keys;

    keys = mx_json_get_obj(key, "keys");

    if (keys == NULL || keys->u.o.n != 1
        || keys->u.o.m[0].value->type != MX_JSON_STRING)
    {
        return NULL;
    }

    *len = keys->u.o.m[0].value->u.s.len;
    return keys->u.o.m[0].value->u.s.p;
}


ngx_int_t
ngx_matrix_keys_remote(ngx_matrix_req_t *mr, mx_json_t *failures,
    const char *user_id, size_t len)
{
    mx_pool_t   *pool;
    mx_json_t   *f;
    const char  *server;
    size_t       slen;

    pool = ngx_matrix_pool(mr);
    server = mx_id_server(user_id, len, &slen);

    if (server == NULL || mx_json_getn(failures, server, slen) != NULL) {
        return NGX_OK;
    }

    f = mx_json_object(pool);

    if (f == NULL
        || mx_json_set_int(pool, f, "status", 503) != 0
        || mx_json_set_str(pool, f, "message", "Federation is not available"
                           " on this server yet") != 0
        || mx_json_setn(pool, failures, server, slen, f) != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* obj.<key> as an object, made when missing; NULL on ENOMEM */

static mx_json_t *
ngx_matrix_keys_obj(mx_pool_t *pool, mx_json_t *obj, const char *key,
    size_t len)
{
    mx_json_t  *o;

    o = mx_json_getn(obj, key, len);
    if (mx_json_is(o, MX_JSON_OBJECT)) {
        return o;
    }

    o = mx_json_object(pool);
    if (o == NULL || mx_json_setn(pool, obj, key, len, o) != 0) {
        return NULL;
    }

    return o;
}


ngx_int_t
ngx_matrix_keys_add_sig(mx_pool_t *pool, mx_json_t *obj, const char *signer,
    size_t signer_len, const char *key_id, size_t key_id_len,
    const char *sig, size_t sig_len)
{
    mx_json_t  *sigs;

    sigs = ngx_matrix_keys_obj(pool, obj, "signatures", 10);
    if (sigs != NULL) {
        sigs = ngx_matrix_keys_obj(pool, sigs, signer, signer_len);
    }

    if (sigs == NULL
        || mx_json_setn(pool, sigs, key_id, key_id_len,
                        mx_json_strn(pool, sig, sig_len)) != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* {"<algorithm>": count, ...} from {algorithm, count, ...} */

static mx_json_t *
ngx_matrix_keys_counts(mx_pool_t *pool, redisReply *list)
{
    mx_json_t  *o;
    size_t      i;

    o = mx_json_object(pool);

    for (i = 0; o && list->type == REDIS_REPLY_ARRAY
                && i + 1 < list->elements; i += 2)
    {
        if (mx_json_set_int(pool, o, list->element[i]->str,
                            list->element[i + 1]->integer) != 0)
        {
            return NULL;
        }
    }

    return o;
}


/* ["...", ...] from a list of strings */

static mx_json_t *
ngx_matrix_keys_strings(mx_pool_t *pool, redisReply *list)
{
    mx_json_t  *arr;
    size_t      i;

    arr = mx_json_array(pool);

    for (i = 0; arr && list->type == REDIS_REPLY_ARRAY && i < list->elements;
         i++)
    {
        if (mx_json_append(pool, arr,
                           mx_json_strn(pool, list->element[i]->str,
                                        list->element[i]->len)) != 0)
        {
            return NULL;
        }
    }

    return arr;
}


/*
 * POST /keys/upload {device_keys, one_time_keys, fallback_keys}
 */

static ngx_int_t
ngx_matrix_keys_uploaded(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t  *pool;
    mx_json_t  *out;

    pool = ngx_matrix_pool(mr);
    out = mx_json_object(pool);

    if (out == NULL
        || mx_json_set(pool, out, "one_time_key_counts",
                       ngx_matrix_keys_counts(pool, reply)) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


ngx_uint_t
ngx_matrix_keys_id_valid(const char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > 255) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((u_char) p[i] < 0x20 || p[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}


/*
 * {"<algorithm>:<key_id>": key, ...}, a key a string or an object: NGX_OK,
 * or the 400 sent
 */

static ngx_int_t
ngx_matrix_keys_map_check(ngx_matrix_req_t *mr, mx_json_t *map,
    const char *name, ngx_uint_t one_per_algorithm)
{
    mx_json_member_t  *m;
    const char        *colon, *prev;
    size_t             i, prev_len;

    if (!mx_json_is(map, MX_JSON_OBJECT)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "%s must be an object",
                                     name);
    }

    prev = NULL;
    prev_len = 0;

    for (i = 0; i < map->u.o.n; i++) {
        m = &map->u.o.m[i];

        if (m->value->type != MX_JSON_STRING
            && m->value->type != MX_JSON_OBJECT)
        {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "%s: a key is a"
                                         " string or an object", name);
        }

        colon = (const char *) ngx_strlchr((u_char *) m->key,
                                           (u_char *) m->key + m->key_len,
                                           ':');

        if (colon == NULL || colon == m->key
            || colon == m->key + m->key_len - 1
            || !ngx_matrix_keys_id_valid(m->key, m->key_len))
        {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "%s: key IDs are"
                                         " <algorithm>:<key_id>", name);
        }

        /* members are sorted: the same algorithm twice is adjacent */
        if (one_per_algorithm && prev != NULL
            && prev_len == (size_t) (colon - m->key)
            && ngx_strncmp(prev, m->key, prev_len) == 0)
        {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "%s: one key per"
                                         " algorithm", name);
        }

        prev = m->key;
        prev_len = colon - m->key;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_keys_device_check(ngx_matrix_req_t *mr, mx_json_t *dk)
{
    mx_json_t   *v;
    const char  *user, *device;
    size_t       ulen, dlen, i;

    if (!mx_json_is(dk, MX_JSON_OBJECT)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "device_keys must be an"
                                     " object");
    }

    user = mx_json_get_str(dk, "user_id", &ulen);
    device = mx_json_get_str(dk, "device_id", &dlen);

    if (user == NULL || device == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "device_keys.user_id and"
                                     " device_keys.device_id are required"
                                     " strings");
    }

    if (ulen != mr->user_id.len
        || ngx_strncmp(user, mr->user_id.data, ulen) != 0
        || dlen != mr->device_id.len
        || ngx_strncmp(device, mr->device_id.data, dlen) != 0)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "device_keys must be"
                                     " those of the device uploading them"
                                     " (%V, %V)", &mr->user_id,
                                     &mr->device_id);
    }

    v = mx_json_get_arr(dk, "algorithms");
    for (i = 0; v && i < v->u.a.n; i++) {
        if (v->u.a.v[i]->type != MX_JSON_STRING) {
            v = NULL;
        }
    }

    if (v == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "device_keys.algorithms"
                                     " must be a list of strings");
    }

    v = mx_json_get_obj(dk, "keys");
    for (i = 0; v && i < v->u.o.n; i++) {
        if (v->u.o.m[i].value->type != MX_JSON_STRING) {
            v = NULL;
        }
    }

    if (v == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "device_keys.keys must map"
                                     " key IDs to strings");
    }

    v = mx_json_get_obj(dk, "signatures");
    for (i = 0; v && i < v->u.o.n; i++) {
        if (v->u.o.m[i].value->type != MX_JSON_OBJECT) {
            v = NULL;
        }
    }

    if (v == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "device_keys.signatures"
                                     " must map user IDs to objects");
    }

    return NGX_OK;
}


/* null counts as absent: some clients send it */

static mx_json_t *
ngx_matrix_keys_field(mx_json_t *body, const char *name)
{
    mx_json_t  *v;

    v = mx_json_get(body, name);

    return mx_json_is(v, MX_JSON_NULL) ? NULL : v;
}


ngx_int_t
ngx_matrix_keys_upload(ngx_matrix_req_t *mr)
{
    mx_pool_t          *pool;
    mx_json_t          *dk, *otk, *fb;
    mx_json_member_t   *m;
    ngx_matrix_args_t   a;
    ngx_str_t           key;
    ngx_int_t           rc;
    const char         *colon;
    char               *json;
    size_t              i, len, n;
    u_char             *num;

    pool = ngx_matrix_pool(mr);

    dk = ngx_matrix_keys_field(mr->body, "device_keys");
    otk = ngx_matrix_keys_field(mr->body, "one_time_keys");
    fb = ngx_matrix_keys_field(mr->body, "fallback_keys");

    if (dk && (rc = ngx_matrix_keys_device_check(mr, dk)) != NGX_OK) {
        return rc;
    }

    if (otk && (rc = ngx_matrix_keys_map_check(mr, otk, "one_time_keys", 0))
               != NGX_OK)
    {
        return rc;
    }

    if (fb && (rc = ngx_matrix_keys_map_check(mr, fb, "fallback_keys", 1))
              != NGX_OK)
    {
        return rc;
    }

    n = otk ? otk->u.o.n : 0;

    if (ngx_matrix_user_key(mr, &mr->user_id, "devkeys", &key) != NGX_OK
        || ngx_matrix_args_init(mr, &a, "mx_keys_upload", &key,
                                4 + 2 * n + 3 * (fb ? fb->u.o.n : 0))
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_args_str(&a, &mr->user_id);
    ngx_matrix_args_str(&a, &mr->device_id);

    if (dk) {
        json = mx_json_encode(pool, dk, 0, &len);
        if (json == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ngx_matrix_args_add(&a, json, len);

    } else {
        ngx_matrix_args_add(&a, "", 0);
    }

    num = ngx_pnalloc(mr->r->pool, NGX_SIZE_T_LEN);
    if (num == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_matrix_args_add(&a, num, ngx_sprintf(num, "%uz", n) - num);

    for (i = 0; i < n; i++) {
        m = &otk->u.o.m[i];
        json = mx_json_encode(pool, m->value, 0, &len);
        if (json == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_matrix_args_add(&a, m->key, m->key_len);
        ngx_matrix_args_add(&a, json, len);
    }

    for (i = 0; fb && i < fb->u.o.n; i++) {
        m = &fb->u.o.m[i];
        json = mx_json_encode(pool, m->value, 0, &len);
        if (json == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        colon = (const char *) ngx_strlchr((u_char *) m->key,
                                           (u_char *) m->key + m->key_len,
                                           ':');

        ngx_matrix_args_add(&a, m->key, colon - m->key);
        ngx_matrix_args_add(&a, colon + 1, m->key + m->key_len - colon - 1);
        ngx_matrix_args_add(&a, json, len);
    }

    return ngx_matrix_args_send(mr, &a, ngx_matrix_keys_uploaded);
}


/*
 * POST /keys/query {device_keys: {user_id: [device_id, ...]}, timeout}
 * and POST /keys/claim, of a client or (mr->origin; the same handlers
 * serve /_matrix/federation/v1/user/keys/query and claim) of another
 * server, which is given local users only, no failures, no user-signing
 * keys and no display names.
 */

/*
 * who asks (a client's user; '' for another server) and the key the call
 * is routed by: the asker's devkeys, or the first local user's in users
 * (an object keyed by user ID; there is one)
 */

static ngx_int_t
ngx_matrix_keys_asker(ngx_matrix_req_t *mr, mx_json_t *users,
    ngx_str_t *asker, ngx_str_t *key)
{
    ngx_str_t  user;
    size_t     i;

    if (mr->origin.len == 0) {
        *asker = mr->user_id;
        return ngx_matrix_user_key(mr, asker, "devkeys", key);
    }

    ngx_str_set(asker, "");

    for (i = 0; i < users->u.o.n; i++) {
        if (ngx_matrix_keys_local(mr, users->u.o.m[i].key,
                                  users->u.o.m[i].key_len))
        {
            user.data = (u_char *) users->u.o.m[i].key;
            user.len = users->u.o.m[i].key_len;
            return ngx_matrix_user_key(mr, &user, "devkeys", key);
        }
    }

    return NGX_ERROR;
}


typedef struct {
    mx_json_t  *failures;
} ngx_matrix_keys_query_t;


/*
 * the keys of one user from {user, {device...}, {xsign...}, {sig...}};
 * names: put each device's display name in its unsigned (for the user's
 * own server's clients, never for other servers)
 */

static ngx_int_t
ngx_matrix_keys_user(ngx_matrix_req_t *mr, redisReply *u, mx_json_t *out,
    ngx_uint_t names)
{
    static const char  *sections[] = { "master_keys", "self_signing_keys",
                                       "user_signing_keys" };
    mx_pool_t          *pool;
    mx_json_t          *devs, *k, *xs[3], *uns, *target;
    mx_json_error_t     err;
    redisReply        **e;
    const char         *user, *pk;
    size_t              i, j, pklen;

    pool = ngx_matrix_pool(mr);

    if (u->type != REDIS_REPLY_ARRAY || u->elements != 4
        || u->element[1]->type != REDIS_REPLY_ARRAY
        || u->element[2]->type != REDIS_REPLY_ARRAY
        || u->element[2]->elements != 3
        || u->element[3]->type != REDIS_REPLY_ARRAY)
    {
        return NGX_ERROR;
    }

    user = u->element[0]->str;

    devs = mx_json_object(pool);
    if (devs == NULL
        || mx_json_setn(pool, mx_json_get(out, "device_keys"), user,
                        u->element[0]->len, devs) != 0)
    {
        return NGX_ERROR;
    }

    e = u->element[1]->element;

    for (i = 0; i + 2 < u->element[1]->elements; i += 3) {
        k = mx_json_parse(pool, e[i + 1]->str, e[i + 1]->len, &err);
        if (!mx_json_is(k, MX_JSON_OBJECT)) {
            continue;
        }

        if (names && e[i + 2]->len) {
            uns = ngx_matrix_keys_obj(pool, k, "unsigned", 8);
            if (uns == NULL
                || mx_json_set(pool, uns, "device_display_name",
                               mx_json_strn(pool, e[i + 2]->str,
                                            e[i + 2]->len)) != 0)
            {
                return NGX_ERROR;
            }
        }

        if (mx_json_setn(pool, devs, e[i]->str, e[i]->len, k) != 0) {
            return NGX_ERROR;
        }
    }

    for (j = 0; j < 3; j++) {
        e = u->element[2]->element;
        xs[j] = NULL;

        if (e[j]->len == 0) {
            continue;
        }

        xs[j] = mx_json_parse(pool, e[j]->str, e[j]->len, &err);
        if (!mx_json_is(xs[j], MX_JSON_OBJECT)
            || mx_json_get(out, sections[j]) == NULL)
        {
            xs[j] = NULL;
            continue;
        }

        if (mx_json_setn(pool, mx_json_get(out, sections[j]), user,
                         u->element[0]->len, xs[j]) != 0)
        {
            return NGX_ERROR;
        }
    }

    /* signatures uploaded apart: on a device, or on a cross-signing key */
    e = u->element[3]->element;

    for (i = 0; i + 3 < u->element[3]->elements; i += 4) {
        target = mx_json_getn(devs, e[i]->str, e[i]->len);

        for (j = 0; target == NULL && j < 3; j++) {
            pk = ngx_matrix_keys_xs_pk(xs[j], &pklen);
            if (pk && pklen == e[i]->len
                && ngx_strncmp(pk, e[i]->str, pklen) == 0)
            {
                target = xs[j];
            }
        }

        if (target != NULL
            && ngx_matrix_keys_add_sig(pool, target, e[i + 1]->str,
                                       e[i + 1]->len, e[i + 2]->str,
                                       e[i + 2]->len, e[i + 3]->str,
                                       e[i + 3]->len) != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * {failures, device_keys, master_keys, self_signing_keys,
 * user_signing_keys}; for another server (mr->origin) neither failures
 * nor user_signing_keys, which are a client's
 */

static mx_json_t *
ngx_matrix_keys_query_out(ngx_matrix_req_t *mr)
{
    ngx_matrix_keys_query_t  *q = mr->data;
    mx_pool_t                *pool;
    mx_json_t                *out;

    pool = ngx_matrix_pool(mr);
    out = mx_json_object(pool);

    if (out == NULL
        || mx_json_set(pool, out, "device_keys", mx_json_object(pool)) != 0
        || mx_json_set(pool, out, "master_keys", mx_json_object(pool)) != 0
        || mx_json_set(pool, out, "self_signing_keys", mx_json_object(pool))
           != 0)
    {
        return NULL;
    }

    if (mr->origin.len == 0
        && (mx_json_set(pool, out, "failures", q->failures) != 0
            || mx_json_set(pool, out, "user_signing_keys",
                           mx_json_object(pool)) != 0))
    {
        return NULL;
    }

    return out;
}


static ngx_int_t
ngx_matrix_keys_queried(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_json_t  *out;
    size_t      i;

    out = ngx_matrix_keys_query_out(mr);
    if (out == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < reply->elements; i++) {
        if (ngx_matrix_keys_user(mr, reply->element[i], out,
                                 mr->origin.len == 0)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


/* timeout, when given, is a number of ms (only remote servers use it) */

static ngx_int_t
ngx_matrix_keys_timeout_check(ngx_matrix_req_t *mr)
{
    mx_json_t  *t;

    t = mx_json_get(mr->body, "timeout");

    if (t != NULL && t->type != MX_JSON_INT && t->type != MX_JSON_NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "timeout must be an"
                                     " integer");
    }

    return NGX_OK;
}


/*
 * What /keys/query and /keys/claim begin with: body.<name> is an object
 * (*obj), the timeout is valid, and mr->data is the request's
 * ngx_matrix_keys_query_t with an empty failures object.  NGX_OK, else what
 * the handler returns (the error answered, or a status).
 */

static ngx_int_t
ngx_matrix_keys_query_start(ngx_matrix_req_t *mr, const char *name,
    mx_json_t **obj)
{
    ngx_matrix_keys_query_t  *q;
    mx_pool_t                *pool;
    mx_json_t                *v;
    ngx_int_t                 rc;

    pool = ngx_matrix_pool(mr);

    v = mx_json_get(mr->body, name);

    if (v == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_MISSING_PARAM", "%s is required",
                                     name);
    }

    if (v->type != MX_JSON_OBJECT) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "%s must be an object",
                                     name);
    }

    rc = ngx_matrix_keys_timeout_check(mr);
    if (rc != NGX_OK) {
        return rc;
    }

    q = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_keys_query_t));
    if (q == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = q;
    q->failures = mx_json_object(pool);
    if (q->failures == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *obj = v;

    return NGX_OK;
}


ngx_int_t
ngx_matrix_keys_query(ngx_matrix_req_t *mr)
{
    ngx_matrix_keys_query_t  *q;
    ngx_matrix_args_t         a;
    mx_json_t                *dk, *devs;
    mx_json_member_t         *m;
    ngx_str_t                 key, asker;
    ngx_int_t                 rc;
    size_t                    i, j, n, local;
    u_char                   *num;

    rc = ngx_matrix_keys_query_start(mr, "device_keys", &dk);
    if (rc != NGX_OK) {
        return rc;
    }

    q = mr->data;

    n = 0;
    local = 0;

    for (i = 0; i < dk->u.o.n; i++) {
        m = &dk->u.o.m[i];

        if (!mx_user_id_historical_valid(m->key, m->key_len)) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "device_keys: not"
                                         " a user ID: %s", m->key);
        }

        for (j = 0; mx_json_is(m->value, MX_JSON_ARRAY)
                    && j < m->value->u.a.n; j++)
        {
            if (m->value->u.a.v[j]->type != MX_JSON_STRING) {
                break;
            }
        }

        if (!mx_json_is(m->value, MX_JSON_ARRAY) || j < m->value->u.a.n) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "device_keys maps user"
                                         " IDs to lists of device IDs");
        }

        if (ngx_matrix_keys_local(mr, m->key, m->key_len)) {
            local++;
            n += m->value->u.a.n;

        } else if (mr->origin.len == 0
                   && ngx_matrix_keys_remote(mr, q->failures, m->key,
                                             m->key_len) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (local == 0) {
        return ngx_matrix_keys_queried(mr, &ngx_matrix_keys_nothing);
    }

    if (ngx_matrix_keys_asker(mr, dk, &asker, &key) != NGX_OK
        || ngx_matrix_args_init(mr, &a, "mx_keys_query", &key,
                                1 + 2 * local + n) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_args_str(&a, &asker);

    for (i = 0; i < dk->u.o.n; i++) {
        m = &dk->u.o.m[i];
        devs = m->value;

        if (!ngx_matrix_keys_local(mr, m->key, m->key_len)) {
            continue;
        }

        num = ngx_pnalloc(mr->r->pool, NGX_SIZE_T_LEN);
        if (num == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_matrix_args_add(&a, m->key, m->key_len);
        ngx_matrix_args_add(&a, num,
                            ngx_sprintf(num, "%uz", devs->u.a.n) - num);

        for (j = 0; j < devs->u.a.n; j++) {
            ngx_matrix_args_add(&a, devs->u.a.v[j]->u.s.p,
                                devs->u.a.v[j]->u.s.len);
        }
    }

    return ngx_matrix_args_send(mr, &a, ngx_matrix_keys_queried);
}


/*
 * GET /_matrix/federation/v1/user/devices/{userId}: a local user's devices
 * and cross-signing keys for another server, with the stream_id its
 * m.device_list_update EDUs go on from.  Keys carry the signatures of the
 * user's own keys; display names are beside them, not in unsigned.
 */

static ngx_int_t
ngx_matrix_fed_user_devices_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    static const char  *sections[] = { "master_keys", "self_signing_keys" };
    static const char  *fields[] = { "master_key", "self_signing_key" };
    mx_pool_t          *pool;
    mx_json_t          *all, *out, *devs, *list, *d, *k, *v;
    redisReply         *u, **e;
    size_t              i;

    pool = ngx_matrix_pool(mr);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_INTEGER)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    u = reply->element[1];
    all = ngx_matrix_keys_query_out(mr);
    out = mx_json_object(pool);
    list = mx_json_array(pool);

    if (all == NULL || out == NULL || list == NULL
        || ngx_matrix_keys_user(mr, u, all, 0) != NGX_OK
        || mx_json_set(pool, out, "user_id",
                       mx_json_strn(pool, u->element[0]->str,
                                    u->element[0]->len)) != 0
        || mx_json_set_int(pool, out, "stream_id", reply->element[0]->integer)
           != 0
        || mx_json_set(pool, out, "devices", list) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    devs = mx_json_getn(mx_json_get(all, "device_keys"), u->element[0]->str,
                        u->element[0]->len);
    e = u->element[1]->element;

    for (i = 0; devs != NULL && i + 2 < u->element[1]->elements; i += 3) {
        k = mx_json_getn(devs, e[i]->str, e[i]->len);
        if (k == NULL) {
            continue;
        }

        d = mx_json_object(pool);

        if (d == NULL
            || mx_json_set(pool, d, "device_id",
                           mx_json_strn(pool, e[i]->str, e[i]->len)) != 0
            || mx_json_set(pool, d, "keys", k) != 0
            || (e[i + 2]->len
                && mx_json_set(pool, d, "device_display_name",
                               mx_json_strn(pool, e[i + 2]->str,
                                            e[i + 2]->len)) != 0)
            || mx_json_append(pool, list, d) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    for (i = 0; i < 2; i++) {
        v = mx_json_getn(mx_json_get(all, sections[i]), u->element[0]->str,
                         u->element[0]->len);

        if (v != NULL && mx_json_set(pool, out, fields[i], v) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


ngx_int_t
ngx_matrix_fed_user_devices(ngx_matrix_req_t *mr)
{
    ngx_matrix_cmd_t  c;
    ngx_str_t        *user, local, key;

    user = &mr->params[0];

    if (ngx_matrix_user_id_local(mr, user, &local) != NGX_OK) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "User is not hosted"
                                     " on this homeserver");
    }

    if (ngx_matrix_user_key(mr, user, "devkeys", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_keys_devices", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, user);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fed_user_devices_got);
}


/*
 * POST /keys/claim {one_time_keys: {user_id: {device_id: algorithm}}}
 */

static ngx_int_t
ngx_matrix_keys_claimed(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_keys_query_t  *q = mr->data;
    mx_pool_t                *pool;
    mx_json_t                *out, *keys, *user, *dev, *k;
    mx_json_error_t           err;
    redisReply              **e;
    size_t                    i;

    pool = ngx_matrix_pool(mr);
    out = mx_json_object(pool);
    keys = mx_json_object(pool);

    if (out == NULL || keys == NULL || reply->type != REDIS_REPLY_ARRAY
        || mx_json_set(pool, out, "one_time_keys", keys) != 0
        || (mr->origin.len == 0
            && mx_json_set(pool, out, "failures", q->failures) != 0))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    e = reply->element;

    for (i = 0; i + 3 < reply->elements; i += 4) {
        k = mx_json_parse(pool, e[i + 3]->str, e[i + 3]->len, &err);
        if (k == NULL) {
            continue;
        }

        user = ngx_matrix_keys_obj(pool, keys, e[i]->str, e[i]->len);
        dev = user ? ngx_matrix_keys_obj(pool, user, e[i + 1]->str,
                                         e[i + 1]->len)
                   : NULL;

        if (dev == NULL
            || mx_json_setn(pool, dev, e[i + 2]->str, e[i + 2]->len, k) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


ngx_int_t
ngx_matrix_keys_claim(ngx_matrix_req_t *mr)
{
    ngx_matrix_keys_query_t  *q;
    ngx_matrix_args_t         a;
    mx_json_t                *otk, *devs;
    mx_json_member_t         *m, *d;
    ngx_str_t                 key, asker;
    ngx_int_t                 rc;
    size_t                    i, j, n;

    rc = ngx_matrix_keys_query_start(mr, "one_time_keys", &otk);
    if (rc != NGX_OK) {
        return rc;
    }

    q = mr->data;

    n = 0;

    for (i = 0; i < otk->u.o.n; i++) {
        m = &otk->u.o.m[i];
        devs = m->value;

        if (!mx_user_id_historical_valid(m->key, m->key_len)) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "one_time_keys:"
                                         " not a user ID: %s", m->key);
        }

        for (j = 0; mx_json_is(devs, MX_JSON_OBJECT) && j < devs->u.o.n; j++)
        {
            if (devs->u.o.m[j].value->type != MX_JSON_STRING) {
                break;
            }
        }

        if (!mx_json_is(devs, MX_JSON_OBJECT) || j < devs->u.o.n) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "one_time_keys maps"
                                         " user IDs to objects of device IDs"
                                         " and algorithms");
        }

        if (ngx_matrix_keys_local(mr, m->key, m->key_len)) {
            n += devs->u.o.n;

        } else if (mr->origin.len == 0
                   && ngx_matrix_keys_remote(mr, q->failures, m->key,
                                             m->key_len) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (n == 0) {
        return ngx_matrix_keys_claimed(mr, &ngx_matrix_keys_nothing);
    }

    if (ngx_matrix_keys_asker(mr, otk, &asker, &key) != NGX_OK
        || ngx_matrix_args_init(mr, &a, "mx_keys_claim", &key, 3 * n)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < otk->u.o.n; i++) {
        m = &otk->u.o.m[i];

        if (!ngx_matrix_keys_local(mr, m->key, m->key_len)) {
            continue;
        }

        for (j = 0; j < m->value->u.o.n; j++) {
            d = &m->value->u.o.m[j];

            ngx_matrix_args_add(&a, m->key, m->key_len);
            ngx_matrix_args_add(&a, d->key, d->key_len);
            ngx_matrix_args_add(&a, d->value->u.s.p, d->value->u.s.len);
        }
    }

    return ngx_matrix_args_send(mr, &a, ngx_matrix_keys_claimed);
}


/*
 * GET /keys/changes?from=&to=
 */

static ngx_int_t
ngx_matrix_keys_changed(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t  *pool;
    mx_json_t  *out;

    pool = ngx_matrix_pool(mr);
    out = mx_json_object(pool);

    if (out == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2
        || mx_json_set(pool, out, "changed",
                       ngx_matrix_keys_strings(pool, reply->element[0])) != 0
        || mx_json_set(pool, out, "left",
                       ngx_matrix_keys_strings(pool, reply->element[1])) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


/* a sync token's position, or -1 (missing: -2) */

static int64_t
ngx_matrix_keys_token(ngx_matrix_req_t *mr, const char *name)
{
    ngx_str_t  v;

    if (ngx_matrix_arg(mr->r, name, &v) != NGX_OK || v.len == 0) {
        return -2;
    }

    if (v.data[0] != 's') {
        return -1;
    }

    return ngx_matrix_token_pos(&v);
}


ngx_int_t
ngx_matrix_keys_changes(ngx_matrix_req_t *mr)
{
    ngx_matrix_cmd_t  c;
    ngx_str_t         key;
    int64_t           from, to;

    from = ngx_matrix_keys_token(mr, "from");
    to = ngx_matrix_keys_token(mr, "to");

    if (from == -2) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_MISSING_PARAM", "from is required");
    }

    if (from < 0 || to == -1) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "from and to are"
                                     " /sync tokens");
    }

    /* "to" is a hint (the spec's word): every change after "from" counts */

    if (ngx_matrix_user_key(mr, &mr->user_id, "rooms", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_keys_changes", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->user_id);

    if (ngx_matrix_cmd_int(mr, &c, from) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_keys_changed);
}


/*
 * /sync: what mx_sync gives of e2ee, {{changed}, {left}, {algorithm,
 * count, ...}, {unused fallback algorithm, ...}} (keys_sync in
 * lua/keys.lua).
 */

/* does it hold device list changes (news worth answering a long-poll)? */

ngx_uint_t
ngx_matrix_sync_e2ee_news(redisReply *e2ee)
{
    return e2ee->type == REDIS_REPLY_ARRAY && e2ee->elements == 4
           && (e2ee->element[0]->elements || e2ee->element[1]->elements);
}


/*
 * device_lists (incremental syncs only, as the spec has it),
 * device_one_time_keys_count and device_unused_fallback_key_types
 */

ngx_int_t
ngx_matrix_sync_e2ee(ngx_matrix_req_t *mr, mx_json_t *out, redisReply *e2ee,
    ngx_uint_t incremental)
{
    mx_pool_t  *pool;
    mx_json_t  *lists;

    pool = ngx_matrix_pool(mr);

    if (e2ee->type != REDIS_REPLY_ARRAY || e2ee->elements != 4) {
        return NGX_ERROR;
    }

    if (incremental) {
        lists = mx_json_object(pool);

        if (lists == NULL
            || mx_json_set(pool, lists, "changed",
                           ngx_matrix_keys_strings(pool, e2ee->element[0]))
               != 0
            || mx_json_set(pool, lists, "left",
                           ngx_matrix_keys_strings(pool, e2ee->element[1]))
               != 0
            || mx_json_set(pool, out, "device_lists", lists) != 0)
        {
            return NGX_ERROR;
        }
    }

    if (mx_json_set(pool, out, "device_one_time_keys_count",
                    ngx_matrix_keys_counts(pool, e2ee->element[2])) != 0
        || mx_json_set(pool, out, "device_unused_fallback_key_types",
                       ngx_matrix_keys_strings(pool, e2ee->element[3])) != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}

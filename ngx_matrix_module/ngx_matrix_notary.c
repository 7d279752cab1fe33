/*
 * The notary: GET /_matrix/key/v2/query/{serverName} and
 * POST /_matrix/key/v2/query, other servers' key responses countersigned
 * by this server.
 *
 * Each server asked is taken in turn:
 *
 *   this server ──► our own response (ngx_matrix_key_own: self-signed,
 *                   which is the notary's signature too)
 *   another ──► mx_serverkeys_get: the response the fedsender stored,
 *      │        as the server signed it
 *      ├─ valid long enough, with every key ID asked ──► signed by us too
 *      └─ else ──► a keys job on mx:fedjobs (valid_at = the minimum asked),
 *                  parked until the fedsender answers, then the cache is
 *                  read again: what is stored then is served, even if
 *                  stale (the spec lets notaries serve cached responses of
 *                  servers that are down); nothing stored: left out
 *
 * The waits of one request share NGX_MATRIX_NOTARY_BUDGET, so a query
 * naming many dead servers cannot hold its client for long: past it,
 * servers are answered from the cache alone.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_ids.h>

#include "ngx_matrix_module.h"


#define NGX_MATRIX_NOTARY_BUDGET   10000
#define NGX_MATRIX_NOTARY_SERVERS  100


typedef struct {
    const char         *server;       /* NUL-terminated */
    const char        **key_ids;
    ngx_uint_t          nkey_ids;
    int64_t             min_valid;    /* ms */
} ngx_matrix_notary_ask_t;


typedef struct {
    ngx_matrix_notary_ask_t  *asks;
    ngx_uint_t                n;
    ngx_uint_t                i;          /* the server in hand */
    mx_json_t                *out;        /* the server_keys array */
    int64_t                   deadline;   /* no waiting past it */
    ngx_str_t                 req;
    unsigned                  fetched:1;  /* asked the fedsender for it */
} ngx_matrix_notary_t;


static ngx_int_t ngx_matrix_notary_get(ngx_matrix_req_t *mr,
    ngx_matrix_notary_t *nt);
static ngx_int_t ngx_matrix_notary_post(ngx_matrix_req_t *mr,
    ngx_matrix_notary_t *nt);
static ngx_int_t ngx_matrix_notary_next(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_notary_got(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_notary_fetch(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_notary_answer(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static ngx_int_t ngx_matrix_notary_add(ngx_matrix_req_t *mr,
    mx_json_t *resp);
static ngx_uint_t ngx_matrix_notary_enough(ngx_matrix_notary_ask_t *ask,
    mx_json_t *resp);


ngx_int_t
ngx_matrix_key_query(ngx_matrix_req_t *mr)
{
    ngx_matrix_notary_t  *nt;
    mx_pool_t            *pool;
    ngx_int_t             rc;

    pool = ngx_matrix_pool(mr);
    nt = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_notary_t));
    if (pool == NULL || nt == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nt->out = mx_json_array(pool);
    if (nt->out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mr->r->method == NGX_HTTP_POST) {
        rc = ngx_matrix_notary_post(mr, nt);
    } else {
        rc = ngx_matrix_notary_get(mr, nt);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    nt->deadline = ngx_matrix_now_ms() + NGX_MATRIX_NOTARY_BUDGET;
    mr->data = nt;

    return ngx_matrix_notary_next(mr);
}


/* a server name worth asking about; the others are left out */

static ngx_uint_t
ngx_matrix_notary_server(const char *s, size_t len)
{
    return len && mx_server_name_valid(s, len);
}


/* GET /query/{serverName}[/{keyId}]?minimum_valid_until_ts=.. */

static ngx_int_t
ngx_matrix_notary_get(ngx_matrix_req_t *mr, ngx_matrix_notary_t *nt)
{
    ngx_matrix_notary_ask_t  *ask;
    ngx_str_t                 v;
    ngx_int_t                 rc;
    mx_pool_t                *pool;
    int64_t                   min;

    pool = ngx_matrix_pool(mr);
    min = ngx_matrix_now_ms();

    rc = ngx_matrix_arg(mr->r, "minimum_valid_until_ts", &v);

    if (rc == NGX_OK) {
        min = ngx_atoof(v.data, v.len);

        if (v.len == 0 || v.len > 18 || min == NGX_ERROR) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM",
                                         "minimum_valid_until_ts must be a"
                                         " timestamp in milliseconds");
        }

    } else if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!ngx_matrix_notary_server((char *) mr->params[0].data,
                                  mr->params[0].len))
    {
        return NGX_OK;
    }

    ask = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_notary_ask_t));
    if (ask == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ask->server = mx_pstrndup(pool, (char *) mr->params[0].data,
                              mr->params[0].len);
    ask->min_valid = min;

    if (mr->nparams == 2) {
        ask->key_ids = ngx_palloc(mr->r->pool, sizeof(char *));
        if (ask->key_ids == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ask->key_ids[0] = mx_pstrndup(pool, (char *) mr->params[1].data,
                                      mr->params[1].len);
        ask->nkey_ids = 1;

        if (ask->key_ids[0] == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ask->server == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    nt->asks = ask;
    nt->n = 1;

    return NGX_OK;
}


/* {"server_keys": {server: {key ID: {"minimum_valid_until_ts": ms}}}} */

static ngx_int_t
ngx_matrix_notary_post(ngx_matrix_req_t *mr, ngx_matrix_notary_t *nt)
{
    ngx_http_request_t       *r;
    ngx_matrix_notary_ask_t  *ask;
    mx_json_t                *sk, *criteria, *c, *min;
    mx_json_member_t         *m, *k;
    size_t                    i, j;
    int64_t                   now;

    r = mr->r;
    now = ngx_matrix_now_ms();

    sk = mx_json_get(mr->body, "server_keys");

    if (!mx_json_is(sk, MX_JSON_OBJECT)) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST, "M_BAD_JSON",
                                     "server_keys must be an object");
    }

    if (sk->u.o.n > NGX_MATRIX_NOTARY_SERVERS) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "M_LIMIT_EXCEEDED", "At most %d servers"
                                     " in one query",
                                     NGX_MATRIX_NOTARY_SERVERS);
    }

    nt->asks = ngx_pcalloc(r->pool,
                           (sk->u.o.n + 1) * sizeof(ngx_matrix_notary_ask_t));
    if (nt->asks == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < sk->u.o.n; i++) {
        m = &sk->u.o.m[i];
        criteria = m->value;

        if (!mx_json_is(criteria, MX_JSON_OBJECT)) {
            return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "The criteria of each"
                                         " server must be an object");
        }

        ask = &nt->asks[nt->n];
        ask->min_valid = 0;
        ask->key_ids = ngx_palloc(r->pool,
                                  (criteria->u.o.n + 1) * sizeof(char *));
        if (ask->key_ids == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (j = 0; j < criteria->u.o.n; j++) {
            k = &criteria->u.o.m[j];
            c = k->value;

            if (!mx_json_is(c, MX_JSON_OBJECT)) {
                return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                             "M_BAD_JSON", "The criteria of"
                                             " each key must be an object");
            }

            min = mx_json_get(c, "minimum_valid_until_ts");

            if (min != NULL && min->type != MX_JSON_INT) {
                return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                             "M_BAD_JSON",
                                             "minimum_valid_until_ts must be"
                                             " an integer");
            }

            if (min != NULL && min->u.i > ask->min_valid) {
                ask->min_valid = min->u.i;
            }

            ask->key_ids[ask->nkey_ids++] = k->key;
        }

        /* not given: valid now */
        if (ask->min_valid == 0) {
            ask->min_valid = now;
        }

        if (!ngx_matrix_notary_server(m->key, m->key_len)
            || ngx_strlen(m->key) != m->key_len)
        {
            continue;
        }

        ask->server = m->key;
        nt->n++;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_notary_next(ngx_matrix_req_t *mr)
{
    ngx_matrix_notary_t      *nt;
    ngx_matrix_notary_ask_t  *ask;
    ngx_str_t                 own, key, *us;
    ngx_int_t                 rc;
    mx_pool_t                *pool;
    mx_json_t                *resp, *body;
    mx_json_error_t           err;
    ngx_matrix_cmd_t          c;
    size_t                    len;

    nt = mr->data;
    pool = ngx_matrix_pool(mr);
    us = &mr->mcf->server_name;

    for ( /* void */ ; nt->i < nt->n; nt->i++) {
        ask = &nt->asks[nt->i];
        len = ngx_strlen(ask->server);

        if (len == us->len
            && ngx_strncasecmp((u_char *) ask->server, us->data, len) == 0)
        {
            if (ngx_matrix_key_own(mr, &own) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            resp = mx_json_parse(pool, (char *) own.data, own.len, &err);
            if (resp == NULL || mx_json_append(pool, nt->out, resp) != 0) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            continue;
        }

        key.data = ngx_pnalloc(mr->r->pool, sizeof("mx:serverkeys:{}") + len);
        if (key.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        key.len = ngx_sprintf(key.data, "mx:serverkeys:{%s}", ask->server)
                  - key.data;

        /* a key ID nobody has keeps the reply to the three counters */
        ngx_matrix_fcall_init(&c, "mx_serverkeys_get", 1);
        ngx_matrix_cmd_str(&c, &key);
        ngx_matrix_cmd_cstr(&c, ask->server);
        ngx_matrix_cmd_cstr(&c, "-");

        rc = ngx_matrix_cmd_send(mr, &c, ngx_matrix_notary_got);

        return rc;
    }

    body = mx_json_object(pool);
    if (body == NULL || mx_json_set(pool, body, "server_keys", nt->out) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/* {fetched, failed, response or nil, ...} of the server in hand */

static ngx_int_t
ngx_matrix_notary_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_notary_t      *nt;
    ngx_matrix_notary_ask_t  *ask;
    mx_json_t                *resp;
    mx_json_error_t           err;
    redisReply               *json;
    ngx_int_t                 rc;

    nt = mr->data;
    ask = &nt->asks[nt->i];

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     "M_UNKNOWN", "Internal error");
    }

    json = reply->element[2];
    resp = NULL;

    if (json->type == REDIS_REPLY_STRING) {
        resp = mx_json_parse(ngx_matrix_pool(mr), json->str, json->len, &err);

        if (resp != NULL && resp->type != MX_JSON_OBJECT) {
            resp = NULL;
        }
    }

    if (!nt->fetched && !ngx_matrix_notary_enough(ask, resp)
        && ngx_matrix_now_ms() < nt->deadline)
    {
        return ngx_matrix_notary_fetch(mr);
    }

    if (resp != NULL) {
        rc = ngx_matrix_notary_add(mr, resp);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    nt->i++;
    nt->fetched = 0;

    return ngx_matrix_notary_next(mr);
}


/* valid until the minimum asked, and holding every key ID asked */

static ngx_uint_t
ngx_matrix_notary_enough(ngx_matrix_notary_ask_t *ask, mx_json_t *resp)
{
    int64_t      until;
    ngx_uint_t   i;
    mx_json_t   *vk, *old;

    if (resp == NULL || mx_json_get_int(resp, "valid_until_ts", &until) != 0
        || until < ask->min_valid)
    {
        return 0;
    }

    vk = mx_json_get_obj(resp, "verify_keys");
    old = mx_json_get_obj(resp, "old_verify_keys");

    for (i = 0; i < ask->nkey_ids; i++) {
        if (mx_json_get(vk, ask->key_ids[i]) == NULL
            && mx_json_get(old, ask->key_ids[i]) == NULL)
        {
            return 0;
        }
    }

    return 1;
}


/* the stored response, with our signature beside the server's own */

static ngx_int_t
ngx_matrix_notary_add(ngx_matrix_req_t *mr, mx_json_t *resp)
{
    ngx_matrix_notary_t  *nt;
    mx_pool_t            *pool;
    char                 *us;

    nt = mr->data;
    pool = ngx_matrix_pool(mr);

    us = mx_pstrndup(pool, (char *) mr->mcf->server_name.data,
                     mr->mcf->server_name.len);
    if (us == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mx_sign_json(pool, resp, us, mr->mcf->signing_key, 0) != 0) {
        /* cannot be written canonically: left out */
        ngx_log_error(NGX_LOG_WARN, mr->r->connection->log, 0,
                      "matrix: the stored key response of \"%s\" cannot be"
                      " signed", nt->asks[nt->i].server);
        return NGX_OK;
    }

    if (mx_json_append(pool, nt->out, resp) != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/* nothing stored that will do: ask the fedsender */

static ngx_int_t
ngx_matrix_notary_fetch(ngx_matrix_req_t *mr)
{
    ngx_matrix_notary_t      *nt;
    ngx_matrix_notary_ask_t  *ask;
    ngx_str_t                 ids, server;
    ngx_uint_t                i;
    size_t                    len;
    int64_t                   left;
    u_char                   *p;

    nt = mr->data;
    ask = &nt->asks[nt->i];

    len = 0;
    for (i = 0; i < ask->nkey_ids; i++) {
        len += ngx_strlen(ask->key_ids[i]) + 1;
    }

    ids.data = ngx_pnalloc(mr->r->pool, len + 1);
    if (ids.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ids.data;
    for (i = 0; i < ask->nkey_ids; i++) {
        p = ngx_sprintf(p, "%s%s", i ? " " : "", ask->key_ids[i]);
    }

    ids.len = p - ids.data;

    left = nt->deadline - ngx_matrix_now_ms();

    nt->fetched = 1;

    server.data = (u_char *) ask->server;
    server.len = ngx_strlen(ask->server);

    return ngx_matrix_job_keys(mr, &server, &ids, ask->min_valid,
                               (ngx_msec_t) ngx_max(left, 1),
                               ngx_matrix_notary_answer, &nt->req);
}



/*
 * Whatever the answer (keys stored, an error, none in time), the cache is
 * read again: it may hold an older response, which is served.
 */

static ngx_int_t
ngx_matrix_notary_answer(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_notary_t  *nt;

    nt = mr->data;

    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    if (answer == NULL) {
        nt->deadline = 0;
    }

    return ngx_matrix_notary_next(mr);
}

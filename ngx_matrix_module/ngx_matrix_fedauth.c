/*
 * Request authentication of the server-server API: every route under
 * /_matrix/federation with NGX_MATRIX_FED goes through here after its
 * body is read, and reaches its handler with mr->origin set.
 *
 *   Authorization: X-Matrix origin=..,destination=..,key=..,sig=..
 *        │
 *   parse (core/mx_xmatrix) ─ destination ours? ─ origin not ours?
 *        │
 *   FCALL mx_serverkeys_get 1 mx:serverkeys:{<origin>} <origin> <key ID>
 *        │
 *   known, until >= now ──► verify the signature of
 *        │                  {method, uri, origin, destination, content}
 *        │                            │ good ──► handler
 *        │                            │ bad ──► 401
 *   unknown or expired ──► XADD mx:fedjobs kind=keys ... (the fedsender
 *        fetches the key, stores it with mx_serverkeys_put, answers on
 *        this worker's reply channel); the request is parked until the
 *        answer, then reads the cache once more; an error, no answer in
 *        NGX_MATRIX_KEYS_TIMEOUT, or still no key ──► 401
 *
 * Every refusal is 401 M_UNAUTHORIZED, as the spec and Synapse answer.
 *
 * Server ACLs (m.room.server_acl) are a property of a room, so they are
 * checked by the room-specific endpoints, with mr->origin, once they read
 * the room's state: not here.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_base64.h>
#include <mx_xmatrix.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


#define NGX_MATRIX_KEYS_TIMEOUT  10000


typedef struct {
    mx_xmatrix_t       x;
    ngx_str_t          key;           /* mx:serverkeys:{<origin>} */
    ngx_str_t          req;           /* the waiter of the keys job */
    unsigned           asked:1;       /* the fedsender has answered */
} ngx_matrix_fedauth_t;


static ngx_int_t ngx_matrix_fedauth_keys(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fedauth_got(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fedauth_verify(ngx_matrix_req_t *mr,
    const char *pk_b64, size_t len);
static ngx_int_t ngx_matrix_fedauth_fetch(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fedauth_answer(ngx_matrix_req_t *mr,
    ngx_str_t *answer);


ngx_int_t
ngx_matrix_fed_unauthorized(ngx_http_request_t *r, const char *why)
{
    return ngx_matrix_send_error(r, NGX_HTTP_UNAUTHORIZED, "M_UNAUTHORIZED",
                                 "%s", why);
}


ngx_int_t
ngx_matrix_fed_authenticate(ngx_matrix_req_t *mr)
{
    ngx_http_request_t    *r;
    ngx_matrix_fedauth_t  *a;
    ngx_table_elt_t       *h;
    ngx_str_t             *us;
    ngx_int_t              rc;
    mx_pool_t             *pool;
    const char            *why;
    size_t                 len;

    r = mr->r;
    h = r->headers_in.authorization;

    if (h == NULL) {
        return ngx_matrix_fed_unauthorized(r, "Missing Authorization"
                                           " headers");
    }

    pool = ngx_matrix_pool(mr);
    a = ngx_pcalloc(r->pool, sizeof(ngx_matrix_fedauth_t));
    if (pool == NULL || a == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mx_xmatrix_parse(pool, (char *) h->value.data, h->value.len, &a->x,
                         &why)
        != 0)
    {
        return ngx_matrix_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                     "M_UNAUTHORIZED", "Malformed X-Matrix"
                                     " Authorization header: %s", why);
    }

    us = &mr->mcf->server_name;

    if (a->x.destination != NULL
        && (ngx_strlen(a->x.destination) != us->len
            || ngx_strncasecmp((u_char *) a->x.destination, us->data,
                               us->len) != 0))
    {
        return ngx_matrix_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                     "M_UNAUTHORIZED", "The request is"
                                     " addressed to %s, not to this server",
                                     a->x.destination);
    }

    len = ngx_strlen(a->x.origin);

    if (len == us->len
        && ngx_strncasecmp((u_char *) a->x.origin, us->data, len) == 0)
    {
        return ngx_matrix_fed_unauthorized(r, "Requests from this server's"
                                           " own name are not accepted");
    }

    /* the signature covers the body: parsed now, kept for the handler */
    if (mr->raw_body.len) {
        rc = ngx_matrix_parse_body(mr);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    a->key.data = ngx_pnalloc(r->pool, sizeof("mx:serverkeys:{}") + len);
    if (a->key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a->key.len = ngx_sprintf(a->key.data, "mx:serverkeys:{%s}", a->x.origin)
                 - a->key.data;

    mr->data = a;

    return ngx_matrix_fedauth_keys(mr);
}


static ngx_int_t
ngx_matrix_fedauth_keys(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedauth_t  *a;
    ngx_matrix_cmd_t       c;

    a = mr->data;

    ngx_matrix_fcall_init(&c, "mx_serverkeys_get", 1);
    ngx_matrix_cmd_str(&c, &a->key);
    ngx_matrix_cmd_cstr(&c, a->x.origin);
    ngx_matrix_cmd_cstr(&c, a->x.key_id);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fedauth_got);
}


/* {fetched, failed, response, {key ID, public key, until}...} */

static ngx_int_t
ngx_matrix_fedauth_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedauth_t  *a;
    redisReply            *k;
    size_t                 i;

    a = mr->data;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                     "M_UNKNOWN", "Internal error");
    }

    for (i = 3; i < reply->elements; i++) {
        k = reply->element[i];

        if (k->type != REDIS_REPLY_ARRAY || k->elements != 3
            || k->element[0]->type != REDIS_REPLY_STRING
            || k->element[1]->type != REDIS_REPLY_STRING
            || k->element[2]->type != REDIS_REPLY_INTEGER
            || ngx_strcmp(k->element[0]->str, a->x.key_id) != 0)
        {
            continue;
        }

        /* a key may sign requests up to its valid_until_ts */
        if (k->element[2]->integer >= ngx_matrix_now_ms()) {
            return ngx_matrix_fedauth_verify(mr, k->element[1]->str,
                                             k->element[1]->len);
        }
    }

    if (!a->asked) {
        return ngx_matrix_fedauth_fetch(mr);
    }

    return ngx_matrix_send_error(mr->r, NGX_HTTP_UNAUTHORIZED,
                                 "M_UNAUTHORIZED", "Failed to find any key"
                                 " to satisfy the request: %s has no valid"
                                 " key %s", a->x.origin, a->x.key_id);
}


static ngx_int_t
ngx_matrix_fedauth_verify(ngx_matrix_req_t *mr, const char *pk_b64,
    size_t len)
{
    ngx_http_request_t    *r;
    ngx_matrix_fedauth_t  *a;
    unsigned char          pk[mx_base64_decoded_max(64)];
    char                  *method, *uri, *us;
    const char            *why;

    r = mr->r;
    a = mr->data;

    if (len > 64 || mx_base64_decode(pk_b64, len, pk, MX_BASE64_STD) != 32) {
        return ngx_matrix_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                     "M_UNAUTHORIZED", "The key %s of %s is"
                                     " malformed", a->x.key_id, a->x.origin);
    }

    method = ngx_matrix_cstr(mr, &r->method_name);
    uri = ngx_matrix_cstr(mr, &r->unparsed_uri);
    us = ngx_matrix_cstr(mr, &mr->mcf->server_name);
    if (method == NULL || uri == NULL || us == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mx_xmatrix_verify(ngx_matrix_pool(mr), &a->x, method, uri, us,
                          mr->body, pk, &why)
        != 0)
    {
        return ngx_matrix_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                     "M_UNAUTHORIZED", "Invalid signature"
                                     " for server %s with key %s: %s",
                                     a->x.origin, a->x.key_id, why);
    }

    mr->origin.len = ngx_strlen(a->x.origin);
    mr->origin.data = ngx_pnalloc(r->pool, mr->origin.len);
    if (mr->origin.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(mr->origin.data, a->x.origin, mr->origin.len);

    mr->data = NULL;

    return ngx_matrix_dispatch(mr);
}


/* the key is not known (or no longer valid): ask the fedsender */

static ngx_int_t
ngx_matrix_fedauth_fetch(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedauth_t  *a;
    ngx_str_t              server, key_ids;

    a = mr->data;

    server.data = (u_char *) a->x.origin;
    server.len = ngx_strlen(a->x.origin);
    key_ids.data = (u_char *) a->x.key_id;
    key_ids.len = ngx_strlen(a->x.key_id);

    return ngx_matrix_job_keys(mr, &server, &key_ids, 0,
                               NGX_MATRIX_KEYS_TIMEOUT,
                               ngx_matrix_fedauth_answer, &a->req);
}



static ngx_int_t
ngx_matrix_fedauth_answer(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_fedauth_t  *a;
    const char            *error;

    a = mr->data;

    /* the append's reply may still be on its way: it is not needed now */
    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    if (answer == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_UNAUTHORIZED,
                                     "M_UNAUTHORIZED", "Failed to find any"
                                     " key to satisfy the request: no"
                                     " answer fetching the keys of %s",
                                     a->x.origin);
    }

    if (!ngx_matrix_job_ok(mr, answer, &error)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_UNAUTHORIZED,
                                     "M_UNAUTHORIZED", "Failed to find any"
                                     " key to satisfy the request: fetching"
                                     " the keys of %s failed: %s",
                                     a->x.origin, error);
    }

    a->asked = 1;

    return ngx_matrix_fedauth_keys(mr);
}


/*
 * A job for the fedsender on mx:fedjobs (see docs/redis.md):
 * XADD mx:fedjobs * kind <kind> reply <channel> req <waiter> ...; the
 * caller adds the job's own fields.
 */

void
ngx_matrix_job_init(ngx_matrix_cmd_t *c, const char *kind, ngx_str_t *req)
{
    c->n = 0;
    c->overflow = 0;

    ngx_matrix_cmd_cstr(c, "XADD");
    ngx_matrix_cmd_cstr(c, NGX_MATRIX_FEDJOBS);
    ngx_matrix_cmd_cstr(c, "*");
    ngx_matrix_cmd_cstr(c, "kind");
    ngx_matrix_cmd_cstr(c, kind);
    ngx_matrix_cmd_cstr(c, "reply");
    ngx_matrix_cmd_str(c, ngx_matrix_wait_channel());
    ngx_matrix_cmd_cstr(c, "req");
    ngx_matrix_cmd_str(c, req);
}


/* {"ok":true}, or the error the fedsender gives (*error, NUL-terminated) */

ngx_uint_t
ngx_matrix_job_ok(ngx_matrix_req_t *mr, ngx_str_t *answer, const char **error)
{
    mx_pool_t        *pool;
    mx_json_t        *v, *ok;
    mx_json_error_t   err;

    *error = "the fedsender's answer is not understood";

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        *error = "out of memory";
        return 0;
    }

    v = mx_json_parse(pool, (char *) answer->data, answer->len, &err);

    ok = mx_json_get(v, "ok");
    if (ok != NULL && ok->type == MX_JSON_TRUE) {
        return 1;
    }

    if (mx_json_get_str(v, "error", NULL) != NULL) {
        *error = mx_json_get_str(v, "error", NULL);
    }

    return 0;
}


ngx_int_t
ngx_matrix_job_queued(ngx_matrix_req_t *mr, redisReply *reply)
{
    (void) mr;
    (void) reply;

    /* parked until the fedsender answers */
    return NGX_DONE;
}


/*
 * A request job: the fedsender sends "<method> <path>" with body (empty:
 * none) to destination, signed with X-Matrix.  The request is parked on
 * the waiter *req until its answer, or timeout; next reads it with
 * ngx_matrix_job_response.  The caller returns what this returns.
 */

ngx_int_t
ngx_matrix_job_request(ngx_matrix_req_t *mr, ngx_str_t *destination,
    const char *method, ngx_str_t *path, ngx_str_t *body,
    ngx_msec_t timeout, ngx_matrix_wait_pt next, ngx_str_t *req)
{
    ngx_matrix_cmd_t  c;

    if (ngx_matrix_wait(mr, timeout, next, req) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_job_init(&c, "request", req);
    ngx_matrix_cmd_cstr(&c, "destination");
    ngx_matrix_cmd_str(&c, destination);
    ngx_matrix_cmd_cstr(&c, "method");
    ngx_matrix_cmd_cstr(&c, method);
    ngx_matrix_cmd_cstr(&c, "path");
    ngx_matrix_cmd_str(&c, path);
    ngx_matrix_cmd_cstr(&c, "body");
    ngx_matrix_cmd_str(&c, body);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_job_queued);
}


/*
 * A keys job: server's keys (key_ids space-separated, empty for its
 * current ones) fetched into the cache unless it holds them valid at
 * valid_at (ms, 0: now).  Parked as for a request job; next reads the
 * answer with ngx_matrix_job_ok.  The caller returns what this returns.
 */

ngx_int_t
ngx_matrix_job_keys(ngx_matrix_req_t *mr, ngx_str_t *server,
    ngx_str_t *key_ids, int64_t valid_at, ngx_msec_t timeout,
    ngx_matrix_wait_pt next, ngx_str_t *req)
{
    ngx_matrix_cmd_t  c;

    if (ngx_matrix_wait(mr, timeout, next, req) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_job_init(&c, "keys", req);
    ngx_matrix_cmd_cstr(&c, "server");
    ngx_matrix_cmd_str(&c, server);
    ngx_matrix_cmd_cstr(&c, "key_ids");
    ngx_matrix_cmd_str(&c, key_ids);
    ngx_matrix_cmd_cstr(&c, "valid_at");

    if (ngx_matrix_cmd_int(mr, &c, valid_at) != NGX_OK) {
        ngx_matrix_wait_cancel(mr, req);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_job_queued);
}


/*
 * A request job's answer, in the waiter's callback: NGX_OK with the
 * remote's *status and *body (NULL when it sent no JSON); NGX_DECLINED
 * when no answer came, *error the fedsender's reason, NULL when the wait
 * timed out (answer NULL).  The append's reply, if still due, is dropped.
 */

ngx_int_t
ngx_matrix_job_response(ngx_matrix_req_t *mr, ngx_str_t *answer,
    int64_t *status, mx_json_t **body, const char **error)
{
    mx_pool_t        *pool;
    mx_json_t        *v;
    mx_json_error_t   err;

    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    *body = NULL;
    *error = NULL;

    if (answer == NULL) {
        return NGX_DECLINED;
    }

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    v = mx_json_parse(pool, (char *) answer->data, answer->len, &err);

    if (mx_json_get_int(v, "status", status) != 0) {
        *error = mx_json_get_str(v, "error", NULL);
        if (*error == NULL) {
            *error = "the fedsender's answer is not understood";
        }

        return NGX_DECLINED;
    }

    *body = mx_json_get(v, "body");

    return NGX_OK;
}

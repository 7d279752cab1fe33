/*
 * HTTP conventions shared by every endpoint: the JSON writer, the one error
 * helper, CORS headers on every response, the request body, and decoded
 * path segments and query arguments.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"


#define NGX_MATRIX_ERROR_MAX  512


typedef struct {
    ngx_str_t  name;
    ngx_str_t  value;
} ngx_matrix_header_t;


/* the spec's "Web Browser Clients" headers, on every response */
static ngx_matrix_header_t  ngx_matrix_headers[] = {
    { ngx_string("Access-Control-Allow-Origin"), ngx_string("*") },
    { ngx_string("Access-Control-Allow-Methods"),
      ngx_string("GET, POST, PUT, DELETE, OPTIONS") },
    { ngx_string("Access-Control-Allow-Headers"),
      ngx_string("X-Requested-With, Content-Type, Authorization") },
    { ngx_string("Cache-Control"),
      ngx_string("no-cache, no-store, must-revalidate") },
    { ngx_null_string, ngx_null_string }
};


static ngx_int_t
ngx_matrix_add_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *name;
    h->value = *value;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return NGX_OK;
}


ngx_int_t
ngx_matrix_send_raw(ngx_http_request_t *r, ngx_uint_t status, u_char *body,
    size_t len)
{
    ngx_int_t             rc;
    ngx_buf_t            *b;
    ngx_chain_t           out;
    ngx_matrix_header_t  *h;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    for (h = ngx_matrix_headers; h->name.len; h++) {
        if (ngx_matrix_add_header(r, &h->name, &h->value) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc > NGX_OK || r->header_only) {
        return NGX_MATRIX_ANSWERED;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = body;
    b->last = body + len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    rc = ngx_http_output_filter(r, &out);

    /* NGX_AGAIN too: nginx sends the rest when it finalizes the request */
    return rc == NGX_ERROR ? NGX_ERROR : NGX_MATRIX_ANSWERED;
}


ngx_int_t
ngx_matrix_send_json(ngx_http_request_t *r, ngx_uint_t status,
    const mx_json_t *body)
{
    ssize_t   n;
    u_char   *p;

    n = mx_json_encoded_len(body, 0);
    if (n < 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_pnalloc(r->pool, (size_t) n);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mx_json_write(body, 0, (char *) p);

    return ngx_matrix_send_raw(r, status, p, (size_t) n);
}


ngx_int_t
ngx_matrix_send_empty(ngx_http_request_t *r, ngx_uint_t status)
{
    static u_char  empty[] = "{}";

    return ngx_matrix_send_raw(r, status, empty, 2);
}


/*
 * The one error helper: {"errcode": ..., "error": ...} with the message
 * formatted the nginx way (%s, %V, %uz, ...).
 */

static ngx_int_t
ngx_matrix_send_verror(ngx_http_request_t *r, ngx_uint_t status,
    const char *errcode, const char *extra, const char *fmt, va_list args)
{
    u_char   msg[NGX_MATRIX_ERROR_MAX], *body, *p, *last;
    size_t   msg_len, code_len, extra_len, len;

    last = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    msg_len = last - msg;
    code_len = ngx_strlen(errcode);
    extra_len = extra ? ngx_strlen(extra) : 0;

    len = sizeof("{\"errcode\":,\"error\":}") - 1
          + mx_json_write_str(errcode, code_len, NULL)
          + mx_json_write_str((char *) msg, msg_len, NULL)
          + (extra_len ? extra_len + 1 : 0);

    body = ngx_pnalloc(r->pool, len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body, "{\"errcode\":", 11);
    p += mx_json_write_str(errcode, code_len, (char *) p);
    p = ngx_cpymem(p, ",\"error\":", 9);
    p += mx_json_write_str((char *) msg, msg_len, (char *) p);

    if (extra_len) {
        *p++ = ',';
        p = ngx_cpymem(p, extra, extra_len);
    }

    *p++ = '}';

    if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "matrix: %ui %s: %*s", status, errcode, msg_len, msg);
    }

    return ngx_matrix_send_raw(r, status, body, p - body);
}


ngx_int_t
ngx_matrix_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *errcode, const char *fmt, ...)
{
    ngx_int_t  rc;
    va_list    args;

    va_start(args, fmt);
    rc = ngx_matrix_send_verror(r, status, errcode, NULL, fmt, args);
    va_end(args);

    return rc;
}


/* an error with more members: extra is raw JSON, e.g. "\"soft_logout\":true" */

ngx_int_t
ngx_matrix_send_error_extra(ngx_http_request_t *r, ngx_uint_t status,
    const char *errcode, const char *extra, const char *fmt, ...)
{
    ngx_int_t  rc;
    va_list    args;

    va_start(args, fmt);
    rc = ngx_matrix_send_verror(r, status, errcode, extra, fmt, args);
    va_end(args);

    return rc;
}


ngx_int_t
ngx_matrix_send_unavailable(ngx_http_request_t *r)
{
    static ngx_str_t  retry_name = ngx_string("Retry-After");
    static ngx_str_t  retry_value = ngx_string("1");
    const char       *why;

    why = ngx_matrix_redis_unavailable();

    if (ngx_matrix_add_header(r, &retry_name, &retry_value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE, "M_UNKNOWN",
                                 "The store is unavailable (%s); try again"
                                 " later", why ? why : "connection lost");
}


/* 429 M_LIMIT_EXCEEDED, with when to try again, in the body and header */

ngx_int_t
ngx_matrix_send_limited(ngx_http_request_t *r)
{
    static ngx_str_t         name = ngx_string("Retry-After");
    ngx_matrix_main_conf_t  *mcf;
    ngx_str_t                value;
    u_char                   extra[64];

    mcf = ngx_http_get_module_main_conf(r, ngx_matrix_module);

    value.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (value.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.len = ngx_sprintf(value.data, "%M", (mcf->retry_after + 999) / 1000)
                - value.data;

    if (ngx_matrix_add_header(r, &name, &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(extra, "\"retry_after_ms\":%M%Z", mcf->retry_after);

    return ngx_matrix_send_error_extra(r, NGX_HTTP_TOO_MANY_REQUESTS,
                                       "M_LIMIT_EXCEEDED", (char *) extra,
                                       "Too many requests");
}


/* nginx refused the request itself and error_page brought it here */

ngx_int_t
ngx_matrix_send_status_error(ngx_http_request_t *r, ngx_uint_t status)
{
    switch (status) {

    case NGX_HTTP_TOO_MANY_REQUESTS:
        return ngx_matrix_send_limited(r);

    case NGX_HTTP_REQUEST_ENTITY_TOO_LARGE:
        return ngx_matrix_send_error(r, status, "M_TOO_LARGE",
                                     "The request body is too large");

    case NGX_HTTP_REQUEST_URI_TOO_LARGE:
    case NGX_HTTP_REQUEST_HEADER_TOO_LARGE:
        return ngx_matrix_send_error(r, status, "M_TOO_LARGE",
                                     "The request line or headers are too"
                                     " large");

    case NGX_HTTP_NOT_FOUND:
    case NGX_HTTP_NOT_ALLOWED:
        return ngx_matrix_send_error(r, status, "M_UNRECOGNIZED",
                                     "Unrecognized request");

    case NGX_HTTP_REQUEST_TIME_OUT:
        return ngx_matrix_send_error(r, status, "M_UNKNOWN",
                                     "The request was not sent in time");

    default:
        if (status >= NGX_HTTP_INTERNAL_SERVER_ERROR) {
            return ngx_matrix_send_error(r, status, "M_UNKNOWN",
                                         "Internal error");
        }

        return ngx_matrix_send_error(r, status, "M_UNKNOWN", "Bad request");
    }
}


/*
 * The request body as one piece of memory: in place when nginx kept it in
 * one buffer, copied together otherwise (several buffers, or a temporary
 * file when it outgrew client_body_buffer_size).
 */

ngx_int_t
ngx_matrix_read_body(ngx_matrix_req_t *mr)
{
    ngx_http_request_t  *r;
    ngx_chain_t         *cl;
    ngx_buf_t           *b;
    size_t               len, size;
    u_char              *p;
    ssize_t              n;

    r = mr->r;
    mr->raw_body.len = 0;
    mr->raw_body.data = NULL;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;
    b = cl->buf;

    if (cl->next == NULL && !b->in_file) {
        mr->raw_body.data = b->pos;
        mr->raw_body.len = b->last - b->pos;
        return NGX_OK;
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? (size_t) (b->file_last - b->file_pos)
                          : (size_t) (b->last - b->pos);
    }

    p = ngx_pnalloc(r->pool, len ? len : 1);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->raw_body.data = p;
    mr->raw_body.len = len;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (!b->in_file) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        size = (size_t) (b->file_last - b->file_pos);
        n = ngx_read_file(b->file, p, size, b->file_pos);

        if (n != (ssize_t) size) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "matrix: could not read the request body back"
                          " from its temporary file");
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p += size;
    }

    return NGX_OK;
}


mx_pool_t *
ngx_matrix_pool(ngx_matrix_req_t *mr)
{
    if (mr->pool == NULL) {
        mr->pool = mx_pool_create(4096);
    }

    return mr->pool;
}


static ngx_int_t
ngx_matrix_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* percent-decode src into pool memory; plus_space for query strings */

static ngx_int_t
ngx_matrix_unescape(ngx_pool_t *pool, u_char *src, size_t len, ngx_str_t *dst,
    ngx_uint_t plus_space)
{
    u_char     *p, *end, *d;
    ngx_int_t   hi, lo;

    if (ngx_strlchr(src, src + len, '%') == NULL
        && (!plus_space || ngx_strlchr(src, src + len, '+') == NULL))
    {
        dst->data = src;
        dst->len = len;
        return NGX_OK;
    }

    d = ngx_pnalloc(pool, len);
    if (d == NULL) {
        return NGX_ERROR;
    }

    dst->data = d;
    end = src + len;

    for (p = src; p < end; p++) {

        if (*p == '%' && end - p >= 3
            && (hi = ngx_matrix_hex(p[1])) >= 0
            && (lo = ngx_matrix_hex(p[2])) >= 0)
        {
            *d++ = (u_char) (hi << 4 | lo);
            p += 2;
            continue;
        }

        *d++ = (plus_space && *p == '+') ? ' ' : *p;
    }

    dst->len = d - dst->data;
    return NGX_OK;
}


/*
 * The path as the client sent it, split on '/' before decoding, so that an
 * encoded '/' inside a room alias or an event ID stays inside its segment.
 * "/a/b/" gives "a", "b", "".
 */

ngx_int_t
ngx_matrix_split_path(ngx_http_request_t *r, ngx_str_t *path,
    ngx_str_t *segs, ngx_uint_t *nsegs)
{
    u_char      *p, *end, *start;
    ngx_uint_t   n;

    p = r->unparsed_uri.data;
    end = p + r->unparsed_uri.len;

    start = ngx_strlchr(p, end, '?');
    if (start) {
        end = start;
    }

    path->data = p;
    path->len = end - p;

    if (p == end || *p != '/') {
        return NGX_DECLINED;
    }

    n = 0;
    p++;

    for ( ;; ) {
        start = p;

        while (p < end && *p != '/') {
            p++;
        }

        if (n == NGX_MATRIX_MAX_SEGMENTS) {
            return NGX_DECLINED;
        }

        if (ngx_matrix_unescape(r->pool, start, p - start, &segs[n], 0)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        n++;

        if (p == end) {
            break;
        }

        p++;
    }

    *nsegs = n;
    return NGX_OK;
}


/* a query argument, decoded; NGX_DECLINED when absent */

ngx_int_t
ngx_matrix_arg(ngx_http_request_t *r, const char *name, ngx_str_t *value)
{
    ngx_str_t  raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    return ngx_matrix_unescape(r->pool, raw.data, raw.len, value, 1);
}


/*
 * Every value of a query parameter that may repeat (?v=a&v=b), decoded, at
 * most max of them: NGX_OK (*n may be 0), NGX_DECLINED past max,
 * NGX_ERROR without memory.
 */

ngx_int_t
ngx_matrix_arg_all(ngx_http_request_t *r, const char *name, ngx_str_t *values,
    ngx_uint_t max, ngx_uint_t *n)
{
    u_char  *p, *end, *amp, *eq;
    size_t   len;

    *n = 0;
    len = ngx_strlen(name);
    p = r->args.data;
    end = p + r->args.len;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        eq = ngx_strlchr(p, amp, '=');

        if (eq != NULL && (size_t) (eq - p) == len
            && ngx_strncmp(p, name, len) == 0)
        {
            if (*n == max) {
                return NGX_DECLINED;
            }

            if (ngx_matrix_unescape(r->pool, eq + 1, amp - eq - 1,
                                    &values[*n], 1)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            (*n)++;
        }

        p = amp + 1;
    }

    return NGX_OK;
}

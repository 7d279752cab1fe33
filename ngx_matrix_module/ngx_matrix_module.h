/*
 * ngx_matrix_module: what the files of the module share.
 *
 * A request goes through the same stages whatever the endpoint:
 *
 *   route ──► read body ──► authenticate ──► parse JSON ──► endpoint handler
 *
 * ngx_matrix_module.c drives the stages, ngx_matrix_routes.c says which
 * handler and which stages an endpoint has, ngx_matrix_http.c writes every
 * response (one JSON writer, one error helper, CORS on everything), and each
 * API area keeps its handlers in a file of its own.
 */

#ifndef NGX_MATRIX_MODULE_H_INCLUDED_
#define NGX_MATRIX_MODULE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_json.h>
#include <mx_sign.h>

#include "ngx_matrix_redis.h"


#define NGX_MATRIX_VERSION        "0.1.0"
#define NGX_MATRIX_SERVER         "ngx_matrix"

#define NGX_MATRIX_MAX_SEGMENTS   16
#define NGX_MATRIX_MAX_PARAMS     4


typedef struct {
    ngx_str_t              server_name;
    ngx_str_t              redis;              /* as written */
    ngx_str_t              redis_host;         /* numeric, NUL-terminated */
    ngx_int_t              redis_port;         /* 0: unix socket */
    ngx_str_t              redis_path;         /* NUL-terminated */
    ngx_msec_t             redis_timeout;
    ngx_str_t              signing_key_file;
    mx_signing_key_t      *signing_key;
    ngx_msec_t             key_valid;          /* valid_until_ts - now */
    ngx_str_t              public_baseurl;     /* .well-known/matrix/client */
    ngx_str_t              federation_address; /* .well-known/matrix/server */
    ngx_int_t              input_shards;       /* mx:input:<n> streams */
    ngx_uint_t             used;               /* some location has matrix */
} ngx_matrix_main_conf_t;


typedef struct {
    ngx_flag_t             enable;
} ngx_matrix_loc_conf_t;


typedef struct ngx_matrix_req_s    ngx_matrix_req_t;
typedef struct ngx_matrix_route_s  ngx_matrix_route_t;

/*
 * An endpoint handler answers with ngx_matrix_send_*() and returns what it
 * returned, or returns NGX_DONE after starting asynchronous work that will
 * end with ngx_matrix_finish().
 */
typedef ngx_int_t (*ngx_matrix_handler_pt)(ngx_matrix_req_t *mr);

/*
 * The continuation of ngx_matrix_redis(): called with a reply that is not an
 * error (errors are answered for it), it answers like a handler.
 */
typedef ngx_int_t (*ngx_matrix_reply_pt)(ngx_matrix_req_t *mr,
    redisReply *reply);


/* route flags */
#define NGX_MATRIX_AUTH           0x01   /* access token required */
#define NGX_MATRIX_AUTH_OPTIONAL  0x02   /* access token used if given */
#define NGX_MATRIX_BODY_OPTIONAL  0x04   /* an empty body counts as {} */
#define NGX_MATRIX_GUEST          0x08   /* guests may call it */

struct ngx_matrix_route_s {
    const char             *pattern;
    ngx_uint_t              methods;          /* NGX_HTTP_GET | ... */
    ngx_matrix_handler_pt   handler;
    ngx_uint_t              flags;
};


struct ngx_matrix_req_s {
    ngx_http_request_t        *r;
    ngx_matrix_main_conf_t    *mcf;
    const ngx_matrix_route_t  *route;

    ngx_str_t                  params[NGX_MATRIX_MAX_PARAMS];
    ngx_uint_t                 nparams;

    mx_pool_t                 *pool;          /* JSON trees of this request */
    ngx_str_t                  raw_body;
    mx_json_t                 *body;          /* the JSON object, if any */

    ngx_str_t                  token;         /* access token as given */
    ngx_str_t                  user_id;       /* set by authentication */
    ngx_str_t                  device_id;
    unsigned                   is_guest:1;

    unsigned                   async:1;       /* ends with _finish() */
    ngx_matrix_redis_cmd_t    *cmd;           /* in flight, for cancel */
    ngx_matrix_reply_pt        next;          /* continue with the reply */
};


extern ngx_module_t  ngx_matrix_module;


/* ngx_matrix_routes.c */
ngx_int_t ngx_matrix_route(ngx_http_request_t *r,
    const ngx_matrix_route_t **route, ngx_str_t *params, ngx_uint_t *nparams);

/* ngx_matrix_http.c */
ngx_int_t ngx_matrix_send_json(ngx_http_request_t *r, ngx_uint_t status,
    const mx_json_t *body);
ngx_int_t ngx_matrix_send_raw(ngx_http_request_t *r, ngx_uint_t status,
    u_char *body, size_t len);
ngx_int_t ngx_matrix_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *errcode, const char *fmt, ...);
ngx_int_t ngx_matrix_send_error_extra(ngx_http_request_t *r,
    ngx_uint_t status, const char *errcode, const char *extra,
    const char *fmt, ...);
ngx_int_t ngx_matrix_send_unavailable(ngx_http_request_t *r);
ngx_int_t ngx_matrix_send_empty(ngx_http_request_t *r, ngx_uint_t status);
ngx_int_t ngx_matrix_send_status_error(ngx_http_request_t *r,
    ngx_uint_t status);
ngx_int_t ngx_matrix_split_path(ngx_http_request_t *r, ngx_str_t *path,
    ngx_str_t *segs, ngx_uint_t *nsegs);
ngx_int_t ngx_matrix_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_matrix_read_body(ngx_matrix_req_t *mr);
mx_pool_t *ngx_matrix_pool(ngx_matrix_req_t *mr);

/* ngx_matrix_module.c */
void ngx_matrix_finish(ngx_matrix_req_t *mr, ngx_int_t rc);
ngx_int_t ngx_matrix_redis(ngx_matrix_req_t *mr, ngx_matrix_reply_pt next,
    int argc, const char **argv, const size_t *argvlen);
int64_t ngx_matrix_now_ms(void);

ngx_int_t ngx_matrix_dispatch(ngx_matrix_req_t *mr);

/* ngx_matrix_auth.c */
ngx_int_t ngx_matrix_token(ngx_http_request_t *r, ngx_str_t *token);
ngx_int_t ngx_matrix_authenticate(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_whoami(ngx_matrix_req_t *mr);

/* ngx_matrix_account.c */
ngx_int_t ngx_matrix_check_own_user(ngx_matrix_req_t *mr, ngx_str_t *user_id,
    const char *what);
ngx_int_t ngx_matrix_account_data(ngx_matrix_req_t *mr);

/* ngx_matrix_filter.c */
ngx_int_t ngx_matrix_filter_post(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_filter_get(ngx_matrix_req_t *mr);

/* ngx_matrix_pushrules.c */
ngx_int_t ngx_matrix_pushrules_get(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_pushrule(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_pushrule_attr(ngx_matrix_req_t *mr);

/* ngx_matrix_capabilities.c */
ngx_int_t ngx_matrix_capabilities(ngx_matrix_req_t *mr);

/* ngx_matrix_ids.c */
ngx_uint_t ngx_matrix_room_id_valid(ngx_str_t *id);

/* ngx_matrix_discovery.c */
ngx_int_t ngx_matrix_versions(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_wellknown_client(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_wellknown_server(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_federation_version(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_key_server(ngx_matrix_req_t *mr);

#endif /* NGX_MATRIX_MODULE_H_INCLUDED_ */

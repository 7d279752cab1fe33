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
#include <mx_room_version.h>
#include <mx_sign.h>

#include "ngx_matrix_redis.h"


#define NGX_MATRIX_VERSION        "0.1.0"
#define NGX_MATRIX_SERVER         "ngx_matrix"

#define NGX_MATRIX_MAX_SEGMENTS   16
#define NGX_MATRIX_MAX_PARAMS     4
#define NGX_MATRIX_MAX_ARGS       64

/*
 * What every ngx_matrix_send_*() returns once the response is on its way.
 * It is never NGX_OK, so a helper that answers an error itself can return
 * it and its caller cannot mistake it for "carry on"; where the request is
 * finalized it becomes NGX_OK again (ngx_matrix_rc()).
 */
#define NGX_MATRIX_ANSWERED       -50

static ngx_inline ngx_int_t
ngx_matrix_rc(ngx_int_t rc)
{
    return rc == NGX_MATRIX_ANSWERED ? NGX_OK : rc;
}

/* jobs of the module for the fedsender (ngx_matrix_fedauth.c) */
#define NGX_MATRIX_FEDJOBS        "mx:fedjobs"

#define NGX_MATRIX_REG_CLOSED     0
#define NGX_MATRIX_REG_OPEN       1
#define NGX_MATRIX_REG_TOKEN      2


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
    ngx_uint_t             registration;       /* NGX_MATRIX_REG_* */
    ngx_flag_t             guest_access;
    ngx_str_t              shared_secret;      /* admin registration */
    ngx_msec_t             refresh_lifetime;   /* refreshable tokens */
    ngx_msec_t             retry_after;        /* in 429 answers */
    ngx_str_t              thread_pool_name;
    ngx_str_t              federation_ca_file; /* extra CAs, outbound TLS */
    ngx_flag_t             federation_allow_private; /* loopback, LAN */
    ngx_str_t              dummy_hash;         /* for unknown users */
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
#define NGX_MATRIX_FED            0x10   /* X-Matrix: another server signs */

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
    ngx_str_t                  origin;        /* the server, for X-Matrix */

    void                      *data;          /* the endpoint's own state */
    void                      *uia;           /* ngx_matrix_uia.c's state */
    ngx_str_t                  uia_regtoken;  /* the token a UIA used */

    unsigned                   async:1;       /* ends with _finish() */
    ngx_matrix_redis_cmd_t    *cmd;           /* in flight, for cancel */
    ngx_matrix_reply_pt        next;          /* continue with the reply */
    void                     (*failed)(ngx_matrix_req_t *mr);
                                              /* told when a command fails */
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
ngx_int_t ngx_matrix_send_limited(ngx_http_request_t *r);
ngx_int_t ngx_matrix_send_empty(ngx_http_request_t *r, ngx_uint_t status);
ngx_int_t ngx_matrix_send_status_error(ngx_http_request_t *r,
    ngx_uint_t status);
ngx_int_t ngx_matrix_split_path(ngx_http_request_t *r, ngx_str_t *path,
    ngx_str_t *segs, ngx_uint_t *nsegs);
ngx_int_t ngx_matrix_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_matrix_arg_all(ngx_http_request_t *r, const char *name,
    ngx_str_t *values, ngx_uint_t max, ngx_uint_t *n);
ngx_int_t ngx_matrix_read_body(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_parse_body(ngx_matrix_req_t *mr);
mx_pool_t *ngx_matrix_pool(ngx_matrix_req_t *mr);

/* ngx_matrix_module.c */
void ngx_matrix_finish(ngx_matrix_req_t *mr, ngx_int_t rc);
ngx_int_t ngx_matrix_redis(ngx_matrix_req_t *mr, ngx_matrix_reply_pt next,
    int argc, const char **argv, const size_t *argvlen);
int64_t ngx_matrix_now_ms(void);

ngx_int_t ngx_matrix_dispatch(ngx_matrix_req_t *mr);
void ngx_matrix_continue(ngx_matrix_req_t *mr, ngx_int_t rc);


/*
 * Arguments of one Redis command, built up piece by piece:
 *
 *   ngx_matrix_cmd_t  c;
 *   ngx_matrix_fcall_init(&c, "mx_login", 1);
 *   ngx_matrix_cmd_str(&c, &key);  ...
 *   return ngx_matrix_cmd_send(mr, &c, next);
 */
typedef struct {
    int           n;
    unsigned      overflow:1;
    const char   *v[NGX_MATRIX_MAX_ARGS];
    size_t        len[NGX_MATRIX_MAX_ARGS];
} ngx_matrix_cmd_t;

void ngx_matrix_fcall_init(ngx_matrix_cmd_t *c, const char *function,
    int nkeys);
void ngx_matrix_cmd_add(ngx_matrix_cmd_t *c, const void *p, size_t len);
#define ngx_matrix_cmd_str(c, s)  ngx_matrix_cmd_add(c, (s)->data, (s)->len)
#define ngx_matrix_cmd_cstr(c, s) ngx_matrix_cmd_add(c, (s), ngx_strlen((s)))
ngx_int_t ngx_matrix_cmd_int(ngx_matrix_req_t *mr, ngx_matrix_cmd_t *c,
    int64_t v);
ngx_int_t ngx_matrix_cmd_send(ngx_matrix_req_t *mr, ngx_matrix_cmd_t *c,
    ngx_matrix_reply_pt next);

/* "mx:{<user_id>}:<suffix>" in the request pool */
ngx_int_t ngx_matrix_input_key(ngx_matrix_req_t *mr, const u_char *room_id,
    size_t len, ngx_str_t *key);
ngx_int_t ngx_matrix_user_key(ngx_matrix_req_t *mr, ngx_str_t *user_id,
    const char *suffix, ngx_str_t *key);

/* ngx_matrix_password.c */
typedef ngx_int_t (*ngx_matrix_work_pt)(ngx_matrix_req_t *mr, ngx_int_t ok);

ngx_int_t ngx_matrix_password_dummy(ngx_pool_t *pool, ngx_str_t *hash);
ngx_int_t ngx_matrix_password_hash(ngx_matrix_req_t *mr,
    ngx_str_t *password, ngx_str_t *hash, ngx_matrix_work_pt done);
ngx_int_t ngx_matrix_password_verify(ngx_matrix_req_t *mr,
    ngx_str_t *hash, ngx_str_t *password, ngx_matrix_work_pt done);

/* ngx_matrix_wait.c: requests parked until a daemon answers; answer is
 * NULL on timeout, and lives only during the call */
typedef ngx_int_t (*ngx_matrix_wait_pt)(ngx_matrix_req_t *mr,
    ngx_str_t *answer);

void ngx_matrix_wait_init(ngx_str_t *channel);
ngx_str_t *ngx_matrix_wait_channel(void);
ngx_int_t ngx_matrix_wait(ngx_matrix_req_t *mr, ngx_msec_t timeout,
    ngx_matrix_wait_pt done, ngx_str_t *id);
ngx_int_t ngx_matrix_wait_many(ngx_matrix_req_t *mr, ngx_msec_t timeout,
    ngx_matrix_wait_pt done, ngx_str_t *id, ngx_uint_t many);
void ngx_matrix_wait_cancel(ngx_matrix_req_t *mr, ngx_str_t *id);
void ngx_matrix_wait_message(ngx_str_t *message);

/* ngx_matrix_uia.c: flows are "stage,stage|stage" */
ngx_int_t ngx_matrix_uia(ngx_matrix_req_t *mr, const char *flows,
    ngx_matrix_handler_pt done);

/* ngx_matrix_login.c */
typedef struct {
    ngx_str_t              access;
    u_char                 access_hash[44];
    ngx_str_t              refresh;            /* empty: none */
    u_char                 refresh_hash[44];
    int64_t                expires;            /* ms since epoch, 0: never */
} ngx_matrix_tokens_t;

ngx_int_t ngx_matrix_login_user(ngx_matrix_req_t *mr, mx_json_t *obj,
    ngx_str_t *user_id);
ngx_int_t ngx_matrix_tokens_new(ngx_matrix_req_t *mr, ngx_str_t *user_id,
    ngx_uint_t refresh, ngx_matrix_tokens_t *t);
ngx_int_t ngx_matrix_device_id(ngx_matrix_req_t *mr, mx_json_t *body,
    ngx_str_t *device_id);
ngx_int_t ngx_matrix_send_session(ngx_matrix_req_t *mr, ngx_str_t *user_id,
    ngx_str_t *device_id, ngx_matrix_tokens_t *t);
ngx_int_t ngx_matrix_login_get(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_login_post(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_refresh(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_logout(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_logout_all(ngx_matrix_req_t *mr);

/* ngx_matrix_register.c */
ngx_uint_t ngx_matrix_regtoken_valid(u_char *token, size_t len);
ngx_int_t ngx_matrix_regtoken_call(ngx_matrix_req_t *mr, ngx_str_t *token,
    const char *action, ngx_matrix_reply_pt next);
ngx_int_t ngx_matrix_register(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_register_available(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_regtoken_validity(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_admin_register(ngx_matrix_req_t *mr);

/* ngx_matrix_devices.c */
ngx_int_t ngx_matrix_devices(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_device(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_delete_devices(ngx_matrix_req_t *mr);

/* ngx_matrix_profile.c */
ngx_int_t ngx_matrix_profile(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_profile_field(ngx_matrix_req_t *mr);
mx_json_t *ngx_matrix_profile_json(ngx_matrix_req_t *mr, redisReply *reply);
ngx_int_t ngx_matrix_profile_own(ngx_matrix_req_t *mr,
    ngx_matrix_reply_pt next);

/* ngx_matrix_auth.c */
ngx_int_t ngx_matrix_token(ngx_http_request_t *r, ngx_str_t *token);
ngx_int_t ngx_matrix_authenticate(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_whoami(ngx_matrix_req_t *mr);

/* ngx_matrix_account.c */
ngx_int_t ngx_matrix_check_own_user(ngx_matrix_req_t *mr, ngx_str_t *user_id,
    const char *what);
ngx_int_t ngx_matrix_account_data(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_password_change(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_deactivate(ngx_matrix_req_t *mr);

/* ngx_matrix_filter.c */
ngx_int_t ngx_matrix_filter_post(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_filter_get(ngx_matrix_req_t *mr);

/* ngx_matrix_pushrules.c */
ngx_int_t ngx_matrix_pushrules_get(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_pushrule(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_pushrule_attr(ngx_matrix_req_t *mr);

/* ngx_matrix_capabilities.c */
ngx_int_t ngx_matrix_capabilities(ngx_matrix_req_t *mr);

/* ngx_matrix_room.c, ngx_matrix_create.c */
ngx_int_t ngx_matrix_room_send(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_room_state_put(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_create_room(ngx_matrix_req_t *mr);

/* ngx_matrix_room_read.c */
ngx_int_t ngx_matrix_room_state_get(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_room_event_get(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_room_members(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_joined_rooms(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_room_context(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_room_ts_event(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_room_forget(ngx_matrix_req_t *mr);

/* ngx_matrix_messages.c */
ngx_int_t ngx_matrix_messages(ngx_matrix_req_t *mr);
/* "p<N>" or "s<N>...": N, or -1 when it is no token of ours */
int64_t ngx_matrix_token_pos(ngx_str_t *t);

/* ngx_matrix_directory.c */
ngx_int_t ngx_matrix_alias_key(ngx_matrix_req_t *mr, ngx_str_t *alias,
    ngx_str_t *key);
ngx_int_t ngx_matrix_alias_check(ngx_matrix_req_t *mr, ngx_str_t *alias,
    ngx_uint_t local_only);
ngx_int_t ngx_matrix_alias(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_alias_got(ngx_matrix_req_t *mr, redisReply *reply);
/* a remote alias resolved: its room and the servers its server named */
typedef ngx_int_t (*ngx_matrix_alias_pt)(ngx_matrix_req_t *mr,
    ngx_str_t *room_id, ngx_array_t *servers);
ngx_int_t ngx_matrix_alias_remote(ngx_matrix_req_t *mr, ngx_str_t *alias,
    ngx_matrix_alias_pt done);
ngx_int_t ngx_matrix_room_aliases(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_directory_list(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_public_rooms(ngx_matrix_req_t *mr);

/* ngx_matrix_membership.c */
ngx_int_t ngx_matrix_join(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_knock(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_membership(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_redact(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_membership_joined(ngx_matrix_req_t *mr,
    const char *event_id, size_t len);

/* ngx_matrix_sync.c */
ngx_int_t ngx_matrix_sync(ngx_matrix_req_t *mr);
void ngx_matrix_sync_wake(ngx_str_t *message);

/* ngx_matrix_notifications.c */
ngx_int_t ngx_matrix_notifications(ngx_matrix_req_t *mr);

/* ngx_matrix_ephemeral.c */
ngx_int_t ngx_matrix_typing(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_receipt(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_read_markers(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_send_to_device(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_presence(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_presence_cmd(ngx_matrix_req_t *mr, ngx_matrix_cmd_t *c,
    ngx_str_t *presence, ngx_str_t *msg, ngx_uint_t active);
mx_json_t *ngx_matrix_presence_content(mx_pool_t *pool, const char *presence,
    size_t plen, const char *msg, size_t mlen, const char *active,
    size_t alen);

/* ngx_matrix_keys.c, ngx_matrix_cross_signing.c */
ngx_int_t ngx_matrix_keys_upload(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_keys_query(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_keys_claim(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_keys_changes(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_xsign_upload(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_sigs_upload(ngx_matrix_req_t *mr);
/* /sync's e2ee sections from mx_sync's e2ee element */
ngx_uint_t ngx_matrix_sync_e2ee_news(redisReply *e2ee);
ngx_int_t ngx_matrix_sync_e2ee(ngx_matrix_req_t *mr, mx_json_t *out,
    redisReply *e2ee, ngx_uint_t incremental);

/* ngx_matrix_profile_rooms.c */
ngx_int_t ngx_matrix_profile_propagate(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_profile_member(ngx_matrix_req_t *mr, redisReply *reply,
    mx_json_t *content);

/* ngx_matrix_ids.c */
ngx_uint_t ngx_matrix_room_id_valid(ngx_str_t *id);
ngx_int_t ngx_matrix_room_key(ngx_matrix_req_t *mr, ngx_str_t *room,
    ngx_str_t *key);
ngx_uint_t ngx_matrix_localpart_valid(u_char *p, size_t len);
ngx_int_t ngx_matrix_user_id_local(ngx_matrix_req_t *mr, ngx_str_t *user_id,
    ngx_str_t *localpart);

/* ngx_matrix_fedauth.c: X-Matrix, and jobs for the fedsender */
ngx_int_t ngx_matrix_fed_authenticate(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_unauthorized(ngx_http_request_t *r,
    const char *why);
void ngx_matrix_job_init(ngx_matrix_cmd_t *c, const char *kind,
    ngx_str_t *req);
/* the append's reply: NGX_DONE, the request stays parked for the answer */
ngx_int_t ngx_matrix_job_queued(ngx_matrix_req_t *mr, redisReply *reply);
ngx_uint_t ngx_matrix_job_ok(ngx_matrix_req_t *mr, ngx_str_t *answer,
    const char **error);
ngx_int_t ngx_matrix_job_request(ngx_matrix_req_t *mr,
    ngx_str_t *destination, const char *method, ngx_str_t *path,
    ngx_str_t *body, ngx_msec_t timeout, ngx_matrix_wait_pt next,
    ngx_str_t *req);
ngx_int_t ngx_matrix_job_keys(ngx_matrix_req_t *mr, ngx_str_t *server,
    ngx_str_t *key_ids, int64_t valid_at, ngx_msec_t timeout,
    ngx_matrix_wait_pt next, ngx_str_t *req);
ngx_int_t ngx_matrix_job_response(ngx_matrix_req_t *mr, ngx_str_t *answer,
    int64_t *status, mx_json_t **body, const char **error);

/* ngx_matrix_federation.c */
ngx_int_t ngx_matrix_fed_query_profile(ngx_matrix_req_t *mr);

/* ngx_matrix_keys.c: device keys served to other servers */
ngx_int_t ngx_matrix_fed_user_devices(ngx_matrix_req_t *mr);

/* ngx_matrix_fedrooms.c: serving rooms to other servers */
ngx_int_t ngx_matrix_fed_state(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_state_ids(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_event(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_event_auth(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_backfill(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_missing_events(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_query_directory(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_acl_check(ngx_matrix_req_t *mr, const char *acl,
    size_t len);
ngx_int_t ngx_matrix_fed_acl_denied(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_acl_ask(ngx_matrix_req_t *mr, ngx_str_t *room,
    ngx_matrix_reply_pt handler);
ngx_int_t ngx_matrix_fed_acl_reply(ngx_matrix_req_t *mr, redisReply *reply,
    ngx_str_t *room, const mx_room_version_t **rv, ngx_int_t *rc);
/* ngx_matrix_fedsend.c */
ngx_int_t ngx_matrix_fed_send(ngx_matrix_req_t *mr);
/* ngx_matrix_fedjoin.c */
ngx_int_t ngx_matrix_fed_make_join(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_make_leave(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_send_join(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_send_leave(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_make_knock(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_send_knock(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_fed_invite(ngx_matrix_req_t *mr);

/* ngx_matrix_notary.c */
ngx_int_t ngx_matrix_key_query(ngx_matrix_req_t *mr);

/* ngx_matrix_discovery.c */
ngx_int_t ngx_matrix_versions(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_wellknown_client(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_wellknown_server(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_federation_version(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_key_server(ngx_matrix_req_t *mr);
ngx_int_t ngx_matrix_key_own(ngx_matrix_req_t *mr, ngx_str_t *json);

#endif /* NGX_MATRIX_MODULE_H_INCLUDED_ */

/*
 * ngx_matrix_module: directives, configuration, worker start, and the
 * stages every request goes through.  See ngx_matrix_module.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sys/un.h>

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif

#include <sodium.h>

#include <mx_ids.h>
#include <mx_shard.h>

#include "ngx_matrix_module.h"


static void *ngx_matrix_create_main_conf(ngx_conf_t *cf);
static char *ngx_matrix_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_matrix_create_loc_conf(ngx_conf_t *cf);
static char *ngx_matrix_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_matrix_server_name(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_matrix_redis_addr(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_matrix_signing_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_matrix_enable(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_matrix_init_worker(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_matrix_registration_modes[] = {
    { ngx_string("closed"), NGX_MATRIX_REG_CLOSED },
    { ngx_string("open"), NGX_MATRIX_REG_OPEN },
    { ngx_string("token"), NGX_MATRIX_REG_TOKEN },
    { ngx_null_string, 0 }
};

static void ngx_matrix_exit_worker(ngx_cycle_t *cycle);
static ngx_int_t ngx_matrix_handler(ngx_http_request_t *r);


static ngx_command_t  ngx_matrix_commands[] = {

    { ngx_string("matrix_server_name"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_matrix_server_name,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("matrix_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_matrix_redis_addr,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("matrix_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, redis_timeout),
      NULL },

    { ngx_string("matrix_signing_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_matrix_signing_key,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("matrix_key_validity"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, key_valid),
      NULL },

    { ngx_string("matrix_public_baseurl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, public_baseurl),
      NULL },

    { ngx_string("matrix_well_known_server"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, federation_address),
      NULL },

    { ngx_string("matrix_input_shards"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, input_shards),
      NULL },

    { ngx_string("matrix_registration"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, registration),
      &ngx_matrix_registration_modes },

    { ngx_string("matrix_guest_access"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, guest_access),
      NULL },

    { ngx_string("matrix_registration_shared_secret"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, shared_secret),
      NULL },

    { ngx_string("matrix_refreshable_token_lifetime"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, refresh_lifetime),
      NULL },

    { ngx_string("matrix_retry_after"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, retry_after),
      NULL },

    { ngx_string("matrix_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, thread_pool_name),
      NULL },

    /* read by the fedsender, which makes the outbound calls */
    { ngx_string("matrix_federation_ca_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, federation_ca_file),
      NULL },

    { ngx_string("matrix_federation_allow_private"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_matrix_main_conf_t, federation_allow_private),
      NULL },

    { ngx_string("matrix"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_matrix_enable,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_matrix_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_matrix_create_main_conf,           /* create main configuration */
    ngx_matrix_init_main_conf,             /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_matrix_create_loc_conf,            /* create location configuration */
    ngx_matrix_merge_loc_conf              /* merge location configuration */
};


ngx_module_t  ngx_matrix_module = {
    NGX_MODULE_V1,
    &ngx_matrix_module_ctx,                /* module context */
    ngx_matrix_commands,                   /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_matrix_init_worker,                /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_matrix_exit_worker,                /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * Configuration.
 */

static void *
ngx_matrix_create_main_conf(ngx_conf_t *cf)
{
    ngx_matrix_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_matrix_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->server_name = { 0, NULL };
     *     mcf->redis = { 0, NULL };
     *     mcf->signing_key = NULL;
     *     mcf->public_baseurl = { 0, NULL };
     *     mcf->federation_address = { 0, NULL };
     *     mcf->used = 0;
     */

    mcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    mcf->key_valid = NGX_CONF_UNSET_MSEC;
    mcf->redis_port = NGX_CONF_UNSET;
    mcf->input_shards = NGX_CONF_UNSET;
    mcf->registration = NGX_CONF_UNSET_UINT;
    mcf->guest_access = NGX_CONF_UNSET;
    mcf->federation_allow_private = NGX_CONF_UNSET;
    mcf->refresh_lifetime = NGX_CONF_UNSET_MSEC;
    mcf->retry_after = NGX_CONF_UNSET_MSEC;

    return mcf;
}


static char *
ngx_matrix_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_matrix_main_conf_t  *mcf = conf;

    ngx_conf_init_msec_value(mcf->redis_timeout, 5000);
    ngx_conf_init_msec_value(mcf->key_valid, 86400000);
    ngx_conf_init_value(mcf->input_shards, 4);
    ngx_conf_init_uint_value(mcf->registration, NGX_MATRIX_REG_CLOSED);
    ngx_conf_init_value(mcf->guest_access, 0);
    ngx_conf_init_value(mcf->federation_allow_private, 0);
    ngx_conf_init_msec_value(mcf->refresh_lifetime, 300000);
    ngx_conf_init_msec_value(mcf->retry_after, 1000);

    /* nginx declares "default" itself; others need a thread_pool line */
    if (mcf->thread_pool_name.len == 0) {
        ngx_str_set(&mcf->thread_pool_name, "default");
    }

    if (mcf->input_shards < 1 || mcf->input_shards > 256) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"matrix_input_shards\" must be 1 to 256");
        return NGX_CONF_ERROR;
    }

    if (mcf->redis_port == NGX_CONF_UNSET) {
        ngx_str_set(&mcf->redis, "127.0.0.1:6379");
        ngx_str_set(&mcf->redis_host, "127.0.0.1");
        mcf->redis_port = 6379;
    }

    if (!mcf->used) {
        return NGX_CONF_OK;
    }

    if (mcf->server_name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"matrix_server_name\" is not set: the server"
                           " name is the part after ':' in the IDs of this"
                           " server's users, e.g. \"example.org\"");
        return NGX_CONF_ERROR;
    }

    if (mcf->signing_key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"matrix_signing_key\" is not set: generate one"
                           " with `matrixctl keygen > signing.key`");
        return NGX_CONF_ERROR;
    }

    if (mcf->key_valid < 60000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"matrix_key_validity\" must be at least 1m");
        return NGX_CONF_ERROR;
    }

    if (mcf->refresh_lifetime < 10000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"matrix_refreshable_token_lifetime\" must be"
                           " at least 10s");
        return NGX_CONF_ERROR;
    }

#if (NGX_THREADS)
    /* password hashing runs there */
    if (ngx_thread_pool_add(cf, &mcf->thread_pool_name) == NULL) {
        return NGX_CONF_ERROR;
    }
#else
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "the matrix module needs nginx built --with-threads");
    return NGX_CONF_ERROR;
#endif

    /* login checks unknown users against this, so they take as long */
    if (ngx_matrix_password_dummy(cf->pool, &mcf->dummy_hash) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_matrix_create_loc_conf(ngx_conf_t *cf)
{
    ngx_matrix_loc_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_matrix_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    lcf->enable = NGX_CONF_UNSET;

    return lcf;
}


static char *
ngx_matrix_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_matrix_loc_conf_t  *prev = parent;
    ngx_matrix_loc_conf_t  *conf = child;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);

    return NGX_CONF_OK;
}


static char *
ngx_matrix_server_name(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_matrix_main_conf_t  *mcf = conf;
    ngx_str_t               *value;

    if (mcf->server_name.len) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (!mx_server_name_valid((char *) value[1].data, value[1].len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid server name \"%V\": expected a DNS name,"
                           " an IPv4 address or a bracketed IPv6 address,"
                           " optionally followed by \":port\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    mcf->server_name = value[1];

    return NGX_CONF_OK;
}


/*
 * "matrix_redis 127.0.0.1:6379", "[::1]:6379", "localhost" or
 * "unix:/path/to/redis.sock".  Names are resolved here, at configuration
 * time, because hiredis would resolve them with a blocking call.
 */

static char *
ngx_matrix_redis_addr(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_matrix_main_conf_t  *mcf = conf;
    ngx_str_t               *value;
    ngx_url_t                u;
    struct sockaddr_un      *sun;
    u_char                  *p;
    size_t                   len;

    if (mcf->redis_port != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_memzero(&u, sizeof(ngx_url_t));
    u.url = value[1];
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid redis address \"%V\": %s", &value[1],
                           u.err ? u.err : "cannot parse it");
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0 || u.uri.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid redis address \"%V\": expected host:port"
                           " or unix:/path", &value[1]);
        return NGX_CONF_ERROR;
    }

    mcf->redis = value[1];

    if (u.family == AF_UNIX) {
        sun = (struct sockaddr_un *) u.addrs[0].sockaddr;
        len = ngx_strlen(sun->sun_path);

        mcf->redis_path.data = ngx_pnalloc(cf->pool, len + 1);
        if (mcf->redis_path.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(mcf->redis_path.data, sun->sun_path, len + 1);
        mcf->redis_path.len = len;
        mcf->redis_port = 0;

        return NGX_CONF_OK;
    }

    p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, p,
                        NGX_SOCKADDR_STRLEN, 0);
    p[len] = '\0';

    mcf->redis_host.data = p;
    mcf->redis_host.len = len;
    mcf->redis_port = u.port ? u.port : u.default_port;

    return NGX_CONF_OK;
}


static char *
ngx_matrix_signing_key(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_matrix_main_conf_t  *mcf = conf;
    ngx_str_t               *value, file;
    ngx_fd_t                 fd;
    ngx_file_info_t          fi;
    u_char                   buf[512];
    ssize_t                  n;
    const char              *why;

    if (mcf->signing_key) {
        return "is duplicate";
    }

    if (mx_sign_init() != 0) {
        return "cannot initialise libsodium";
    }

    value = cf->args->elts;
    file = value[1];

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    fd = ngx_open_file(file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot open the signing key \"%V\" (generate one"
                           " with `matrixctl keygen > %V`)", &file, &file);
        return NGX_CONF_ERROR;
    }

    n = -1;

    if (ngx_fd_info(fd, &fi) != NGX_FILE_ERROR
        && ngx_file_size(&fi) < (off_t) sizeof(buf))
    {
        n = ngx_read_fd(fd, buf, sizeof(buf));
    }

    ngx_close_file(fd);

    if (n < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read the signing key \"%V\"", &file);
        return NGX_CONF_ERROR;
    }

    mcf->signing_key = ngx_pcalloc(cf->pool, sizeof(mx_signing_key_t));
    if (mcf->signing_key == NULL) {
        return NGX_CONF_ERROR;
    }

    if (mx_key_parse(mcf->signing_key, (char *) buf, (size_t) n, &why) != 0) {
        ngx_explicit_memzero(buf, sizeof(buf));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid signing key \"%V\": %s", &file, why);
        return NGX_CONF_ERROR;
    }

    ngx_explicit_memzero(buf, sizeof(buf));
    mcf->signing_key_file = file;

    return NGX_CONF_OK;
}


static char *
ngx_matrix_enable(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_matrix_loc_conf_t     *lcf = conf;
    ngx_matrix_main_conf_t    *mcf;
    ngx_http_core_loc_conf_t  *clcf;

    if (lcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    lcf->enable = 1;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_matrix_module);
    mcf->used = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_matrix_handler;

    return NGX_CONF_OK;
}


/*
 * Worker start: connect to Redis.  The reply channel names this worker
 * uniquely, so daemons can answer a request parked here.
 */

static void
ngx_matrix_on_message(ngx_str_t *channel, ngx_str_t *message)
{
    ngx_str_t  *mine;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "matrix: message on \"%V\": \"%V\"", channel, message);

    mine = ngx_matrix_wait_channel();

    if (channel->len == mine->len
        && ngx_strncmp(channel->data, mine->data, mine->len) == 0)
    {
        ngx_matrix_wait_message(message);
        return;
    }

    if (channel->len == sizeof(NGX_MATRIX_WAKE_CHANNEL) - 1
        && ngx_strncmp(channel->data, NGX_MATRIX_WAKE_CHANNEL,
                       channel->len) == 0)
    {
        ngx_matrix_sync_wake(message);
    }
}


static ngx_int_t
ngx_matrix_init_worker(ngx_cycle_t *cycle)
{
    ngx_matrix_main_conf_t  *mcf;
    ngx_str_t                channel;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_matrix_module);
    if (mcf == NULL || !mcf->used) {
        return NGX_OK;
    }

    channel.data = ngx_pnalloc(cycle->pool, sizeof("mx:w::") + NGX_INT_T_LEN
                               + ngx_cycle->hostname.len + 1);
    if (channel.data == NULL) {
        return NGX_ERROR;
    }

    channel.len = ngx_sprintf(channel.data, "mx:w:%V:%P%Z",
                              &ngx_cycle->hostname, ngx_pid)
                  - channel.data - 1;

    ngx_matrix_wait_init(&channel);

    return ngx_matrix_redis_init_worker(cycle, &mcf->redis_host,
                                        mcf->redis_port, &mcf->redis_path,
                                        mcf->redis_timeout, &channel,
                                        ngx_matrix_on_message);
}


static void
ngx_matrix_exit_worker(ngx_cycle_t *cycle)
{
    ngx_matrix_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_matrix_module);
    if (mcf == NULL || !mcf->used) {
        return;
    }

    ngx_matrix_redis_exit_worker();
}


/*
 * The request stages.
 */

int64_t
ngx_matrix_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + (int64_t) tp->msec;
}


static void
ngx_matrix_req_cleanup(void *data)
{
    ngx_matrix_req_t  *mr = data;

    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    if (mr->pool) {
        mx_pool_destroy(mr->pool);
        mr->pool = NULL;
    }
}


/* end an asynchronous request with the rc of its response */

void
ngx_matrix_finish(ngx_matrix_req_t *mr, ngx_int_t rc)
{
    ngx_http_request_t  *r;
    ngx_connection_t    *c;

    r = mr->r;
    c = r->connection;

    ngx_http_finalize_request(r, ngx_matrix_rc(rc));
    ngx_http_run_posted_requests(c);
}


/* after asynchronous work: done, or another step is under way */

void
ngx_matrix_continue(ngx_matrix_req_t *mr, ngx_int_t rc)
{
    if (rc == NGX_DONE) {
        return;
    }

    ngx_matrix_finish(mr, rc);
}


static void
ngx_matrix_req_reply(void *data, redisReply *reply, ngx_uint_t status)
{
    ngx_matrix_req_t  *mr = data;
    ngx_int_t          rc, code;
    u_char            *p, *end, *errcode;

    mr->cmd = NULL;

    if (mr->failed
        && (status != NGX_MATRIX_REDIS_OK || reply->type == REDIS_REPLY_ERROR))
    {
        mr->failed(mr);
        mr->failed = NULL;
    }

    if (status == NGX_MATRIX_REDIS_TIMEOUT) {
        rc = ngx_matrix_send_error(mr->r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   "M_UNKNOWN", "The store did not answer in"
                                   " time; try again later");

    } else if (status != NGX_MATRIX_REDIS_OK) {
        rc = ngx_matrix_send_unavailable(mr->r);

    } else if (reply->type == REDIS_REPLY_ERROR) {

        /*
         * Functions refuse with "MX <status> <errcode> <message>"; anything
         * else is a fault of ours.
         */

        p = (u_char *) reply->str;
        end = p + reply->len;

        if (reply->len > 10 && ngx_strncmp(p, "MX ", 3) == 0) {
            code = ngx_atoi(p + 3, 3);
            errcode = p + 7;
            p = ngx_strlchr(errcode, end, ' ');

            if (code >= 400 && code < 600 && p) {
                *p++ = '\0';
                rc = ngx_matrix_send_error(mr->r, code, (char *) errcode,
                                           "%*s", (size_t) (end - p), p);
                goto done;
            }
        }

        ngx_log_error(NGX_LOG_ERR, mr->r->connection->log, 0,
                      "matrix: redis: %*s", reply->len, reply->str);

        if (ngx_strstr(reply->str, "Function not found")) {
            ngx_matrix_redis_recheck();
            rc = ngx_matrix_send_unavailable(mr->r);
            goto done;
        }

        rc = ngx_matrix_send_error(mr->r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "M_UNKNOWN", "Internal error");

    } else {
        rc = mr->next(mr, reply);
    }

done:

    ngx_matrix_continue(mr, rc);
}


/*
 * Run one Redis command for the request and continue with next(reply).
 * Returns NGX_DONE, or the rc of the 503 sent when Redis is not available.
 */

ngx_int_t
ngx_matrix_redis(ngx_matrix_req_t *mr, ngx_matrix_reply_pt next, int argc,
    const char **argv, const size_t *argvlen)
{
    ngx_int_t  rc;

    mr->next = next;

    rc = ngx_matrix_redis_command(&mr->cmd, ngx_matrix_req_reply, mr,
                                  argc, argv, argvlen);

    if (rc == NGX_OK) {
        return NGX_DONE;
    }

    if (rc == NGX_DECLINED) {
        return ngx_matrix_send_unavailable(mr->r);
    }

    return ngx_matrix_send_error(mr->r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                 "M_UNKNOWN", "Out of memory");
}


void
ngx_matrix_fcall_init(ngx_matrix_cmd_t *c, const char *function, int nkeys)
{
    static const char  *digits[] = { "0", "1", "2", "3", "4", "5" };

    c->n = 0;
    c->overflow = 0;

    ngx_matrix_cmd_cstr(c, "FCALL");
    ngx_matrix_cmd_cstr(c, function);
    ngx_matrix_cmd_cstr(c, digits[nkeys]);
}


void
ngx_matrix_cmd_add(ngx_matrix_cmd_t *c, const void *p, size_t len)
{
    if (c->n == NGX_MATRIX_MAX_ARGS) {
        c->overflow = 1;
        return;
    }

    c->v[c->n] = p;
    c->len[c->n] = len;
    c->n++;
}


ngx_int_t
ngx_matrix_cmd_int(ngx_matrix_req_t *mr, ngx_matrix_cmd_t *c, int64_t v)
{
    u_char  *p, *last;

    p = ngx_pnalloc(mr->r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    last = ngx_sprintf(p, "%L", v);
    ngx_matrix_cmd_add(c, p, last - p);

    return NGX_OK;
}


ngx_int_t
ngx_matrix_cmd_send(ngx_matrix_req_t *mr, ngx_matrix_cmd_t *c,
    ngx_matrix_reply_pt next)
{
    if (c->overflow) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_LIMIT_EXCEEDED",
                                     "Too many items in one request");
    }

    return ngx_matrix_redis(mr, next, c->n, c->v, c->len);
}


/*
 * The input stream a room's events go to, "mx:input:<n>" (core/mx_shard:
 * the roomserver owning shard n reads it), NUL-terminated.
 */

ngx_int_t
ngx_matrix_input_key(ngx_matrix_req_t *mr, const u_char *room_id,
    size_t len, ngx_str_t *key)
{
    key->data = ngx_pnalloc(mr->r->pool, sizeof("mx:input:") + NGX_INT_T_LEN);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_sprintf(key->data, "mx:input:%ui%Z",
                           (ngx_uint_t) mx_room_shard((const char *) room_id,
                               len, (unsigned) mr->mcf->input_shards))
               - key->data - 1;

    return NGX_OK;
}


ngx_int_t
ngx_matrix_user_key(ngx_matrix_req_t *mr, ngx_str_t *user_id,
    const char *suffix, ngx_str_t *key)
{
    size_t  len;

    len = sizeof("mx:{}:") - 1 + user_id->len + ngx_strlen(suffix);

    key->data = ngx_pnalloc(mr->r->pool, len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    key->len = ngx_sprintf(key->data, "mx:{%V}:%s", user_id, suffix)
               - key->data;

    return NGX_OK;
}


/*
 * After authentication: the JSON body, then the endpoint.  A body is parsed
 * whenever one was sent; POST and PUT must send one (a JSON object) unless
 * the route says an empty body means {}.
 */

/* the raw body into mr->body, any JSON value; 400 M_NOT_JSON if it is not */

ngx_int_t
ngx_matrix_parse_body(ngx_matrix_req_t *mr)
{
    mx_json_error_t   err;
    mx_pool_t        *pool;

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->body = mx_json_parse(pool, (char *) mr->raw_body.data,
                             mr->raw_body.len, &err);

    if (mr->body == NULL) {
        if (err.code == MX_JSON_ENOMEM) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_NOT_JSON",
                                     "Content not JSON: %s at byte %uz",
                                     err.msg, err.offset);
    }

    return NGX_OK;
}


ngx_int_t
ngx_matrix_dispatch(ngx_matrix_req_t *mr)
{
    ngx_http_request_t  *r;
    ngx_int_t            rc;
    mx_pool_t           *pool;

    r = mr->r;

    if (mr->raw_body.len == 0) {
        if (!(r->method & (NGX_HTTP_POST|NGX_HTTP_PUT))) {
            return mr->route->handler(mr);
        }

        if (!(mr->route->flags & NGX_MATRIX_BODY_OPTIONAL)) {
            return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST, "M_NOT_JSON",
                                         "The request body must be a JSON"
                                         " object");
        }

        pool = ngx_matrix_pool(mr);
        mr->body = pool ? mx_json_object(pool) : NULL;
        if (mr->body == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return mr->route->handler(mr);
    }

    /* federation requests have theirs parsed already: it is signed */
    if (mr->body == NULL) {
        rc = ngx_matrix_parse_body(mr);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (mr->body->type != MX_JSON_OBJECT) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST, "M_BAD_JSON",
                                     "The request body must be a JSON"
                                     " object, not %s",
                                     mx_json_type_name(mr->body->type));
    }

    return mr->route->handler(mr);
}


static void
ngx_matrix_body_ready(ngx_http_request_t *r)
{
    ngx_matrix_req_t  *mr;
    ngx_int_t          rc;

    mr = ngx_http_get_module_ctx(r, ngx_matrix_module);

    rc = ngx_matrix_read_body(mr);

    if (rc == NGX_OK) {
        if (mr->route->flags & NGX_MATRIX_FED) {
            rc = ngx_matrix_fed_authenticate(mr);
        } else if (mr->token.len) {
            rc = ngx_matrix_authenticate(mr);
        } else {
            rc = ngx_matrix_dispatch(mr);
        }
    }

    if (rc == NGX_DONE) {
        mr->async = 1;
        return;
    }

    ngx_http_finalize_request(r, ngx_matrix_rc(rc));
}


static ngx_int_t ngx_matrix_start(ngx_http_request_t *r);


static ngx_int_t
ngx_matrix_handler(ngx_http_request_t *r)
{
    return ngx_matrix_rc(ngx_matrix_start(r));
}


static ngx_int_t
ngx_matrix_start(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_matrix_req_t          *mr;
    ngx_pool_cleanup_t        *cln;
    const ngx_matrix_route_t  *route;

    /* an error nginx raised itself, passed here by error_page */
    if (r->err_status) {
        ngx_http_discard_request_body(r);
        return ngx_matrix_send_status_error(r, r->err_status);
    }

    /* CORS preflight: no endpoint logic at all, whatever the path */
    if (r->method == NGX_HTTP_OPTIONS) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        return ngx_matrix_send_empty(r, NGX_HTTP_OK);
    }

    mr = ngx_pcalloc(r->pool, sizeof(ngx_matrix_req_t));
    if (mr == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->r = r;
    mr->mcf = ngx_http_get_module_main_conf(r, ngx_matrix_module);

    rc = ngx_matrix_route(r, &route, mr->params, &mr->nparams);

    if (rc != NGX_OK) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_matrix_send_error(r, rc, "M_UNRECOGNIZED",
                                     "Unrecognized request");
    }

    mr->route = route;

    rc = ngx_matrix_token(r, &mr->token);

    if (rc == NGX_DECLINED) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_matrix_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                     "M_MISSING_TOKEN",
                                     "Mixing Authorization headers and"
                                     " access_token query parameters");
    }

    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mr->token.len == 0 && (route->flags & NGX_MATRIX_AUTH)) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_matrix_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                     "M_MISSING_TOKEN",
                                     "Missing access token");
    }

    /* refused before its body is read (the body is checked later) */
    if ((route->flags & NGX_MATRIX_FED)
        && r->headers_in.authorization == NULL)
    {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_matrix_fed_unauthorized(r, "Missing Authorization"
                                           " headers");
    }

    if (!(route->flags & (NGX_MATRIX_AUTH|NGX_MATRIX_AUTH_OPTIONAL))) {
        mr->token.len = 0;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_matrix_req_cleanup;
    cln->data = mr;

    ngx_http_set_ctx(r, mr, ngx_matrix_module);

    rc = ngx_http_read_client_request_body(r, ngx_matrix_body_ready);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}

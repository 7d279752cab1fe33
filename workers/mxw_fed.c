/*
 * mxw_fed: outbound federation requests (see mxw_fed.h).
 *
 *   request ──► destination known and fresh? ──yes──► send
 *                   │ no
 *                   ▼
 *   IP literal or explicit port ──► known at once ──► send
 *   bare host name ──► GET /.well-known/matrix/server (a transfer like the
 *                      others; later requests for the name wait on it)
 *                          │
 *                          ▼  delegated name, or the name itself
 *                      IP literal / explicit port / SRV / 8448 ──► send
 *
 * Every transfer is an easy handle on one curl multi handle; the daemon's
 * loop calls mxw_fed_run() between its Redis reads, so transfers move on
 * side by side and nothing waits for one of them.  SRV look-ups use
 * res_nquery(), which blocks: bounded to a few seconds per name, and made
 * once per name and discovery period (cached below).
 *
 * Discovery results are cached in memory per server name: as long as the
 * .well-known response's Cache-Control max-age says (kept between 5 min
 * and 48 h, 24 h without one), 10 min when there was no usable
 * .well-known (the SRV and port-8448 fallbacks are then looked at again
 * soon), 24 h for names that need no look-up.  Connection failures are not
 * cached here: the callers have their own policy (the key fetcher's 60 s).
 *
 * TLS is always verified, against the system trust store and, when
 * matrix_federation_ca_file is set, the CAs of that file too.  Both are
 * read once at start into one X509_STORE (the system's from the bundle
 * and folder curl would use), which every TLS context takes in
 * CURLOPT_SSL_CTX_FUNCTION (OpenSSL: libcurl4-openssl); curl is given no
 * CA file of its own.  Left to itself, this curl reads and parses the
 * whole system bundle for every connection (its cache of stores does not
 * hold here): some 30 ms each, 3 s of a loop that opens 100 connections
 * at once (the keys of a room's servers).
 *
 * matrix_federation_allow_private off refuses loopback, private, link-local
 * and unspecified addresses in CURLOPT_OPENSOCKETFUNCTION, which sees every
 * address curl is about to connect to, whichever way it was resolved:
 * names that resolve to such an address cannot get around it.
 */

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <mx_json.h>
#include <mx_pool.h>
#include <mx_server_name.h>
#include <mx_sign.h>
#include <mx_xmatrix.h>

#include "mxw_fed.h"


#define MXW_FED_DEST_MAX     4096
#define MXW_FED_WK_BODY_MAX  (64 * 1024)
#define MXW_FED_WK_TIMEOUT   20000

/* an internal request: the .well-known of a destination */
#define MXW_FED_WELLKNOWN    0x100


typedef struct mxw_fed_dest_s  mxw_fed_dest_t;

struct mxw_fed_dest_s {
    mxw_fed_dest_t    *next;
    char               name[MX_HOST_MAX + 8];
    int                ready;
    int64_t            expires;

    /* where requests go: https://<url_host>:<port>, Host: <host_header>;
     * or the SRV targets, in the order to try, each reached with curl's
     * CONNECT_TO "host:port:target:port" (srv_next: where requests start,
     * moved past a target that could not be connected to) */
    char               url_host[MX_HOST_MAX + 3];
    unsigned           port;
    char               host_header[MX_HOST_MAX + 8];
    mx_srv_t          *srv;
    size_t             nsrv;
    size_t             srv_next;

    mxw_fed_req_t     *waiting;       /* for the .well-known */
};

struct mxw_fed_s {
    mxw_t             *w;
    CURLM             *multi;
    int                active;
    int                allow_private;
    X509_STORE        *store;         /* the CAs trusted */
    mx_signing_key_t   key;
    int                have_key;

    mxw_fed_dest_t    *dests;
    size_t             ndests;

    mxw_fed_req_t     *finished;      /* ended without a transfer */
    mxw_fed_req_t     *inflight;      /* transfers */

    mxw_fed_srv_pt     srv_lookup;
    void              *srv_ctx;
};


static void mxw_fed_send(mxw_fed_t *fed, mxw_fed_req_t *rq,
    mxw_fed_dest_t *d);
static void mxw_fed_transfer(mxw_fed_t *fed, mxw_fed_req_t *rq,
    mxw_fed_dest_t *d);
static size_t mxw_fed_srv_dns(void *ctx, const char *qname, mx_srv_t *rr,
    size_t max);
static void mxw_fed_finish(mxw_fed_t *fed, mxw_fed_req_t *rq);


/* --- policy -------------------------------------------------------------- */

int
mxw_fed_addr_private(const struct sockaddr *sa)
{
    const struct sockaddr_in   *in;
    const struct sockaddr_in6  *in6;
    const unsigned char        *b;
    uint32_t                    a;

    if (sa->sa_family == AF_INET) {
        in = (const struct sockaddr_in *) sa;
        a = ntohl(in->sin_addr.s_addr);
        goto v4;
    }

    if (sa->sa_family != AF_INET6) {
        return 1;
    }

    in6 = (const struct sockaddr_in6 *) sa;
    b = in6->sin6_addr.s6_addr;

    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        a = (uint32_t) b[12] << 24 | (uint32_t) b[13] << 16
            | (uint32_t) b[14] << 8 | b[15];
        goto v4;
    }

    return IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)
           || IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)
           || (b[0] & 0xfe) == 0xfc                     /* fc00::/7 */
           || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)   /* fe80::/10 */
           || b[0] == 0xff;                             /* multicast */

v4:

    return (a >> 24) == 0                       /* 0.0.0.0/8 */
           || (a >> 24) == 10                   /* 10/8 */
           || (a >> 24) == 127                  /* loopback */
           || (a >> 16) == 0xa9fe               /* 169.254/16 */
           || (a >> 20) == 0xac1                /* 172.16/12 */
           || (a >> 16) == 0xc0a8               /* 192.168/16 */
           || (a >> 22) == (100 << 2 | 1)       /* 100.64/10 */
           || (a >> 28) >= 0xe;                 /* multicast, 240/4 */
}


static curl_socket_t
mxw_fed_opensocket(void *data, curlsocktype purpose,
    struct curl_sockaddr *a)
{
    mxw_fed_req_t  *rq = data;

    if (purpose == CURLSOCKTYPE_IPCXN && mxw_fed_addr_private(&a->addr)) {
        rq->refused = 1;
        return CURL_SOCKET_BAD;
    }

    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}


/* every TLS context trusts the one store read at start */

static CURLcode
mxw_fed_ssl_ctx(CURL *easy, void *ssl_ctx, void *data)
{
    mxw_fed_t  *fed = data;

    (void) easy;

    if (!X509_STORE_up_ref(fed->store)) {
        return CURLE_OUT_OF_MEMORY;
    }

    SSL_CTX_set_cert_store(ssl_ctx, fed->store);

    return CURLE_OK;
}


/* the system's CAs, where curl would read them */

static int
mxw_fed_load_system(mxw_fed_t *fed)
{
    CURL  *e;
    char  *file, *dir;
    int    ok;

    e = curl_easy_init();
    if (e == NULL) {
        return -1;
    }

    file = NULL;
    dir = NULL;
    (void) curl_easy_getinfo(e, CURLINFO_CAINFO, &file);
    (void) curl_easy_getinfo(e, CURLINFO_CAPATH, &dir);

    ok = file || dir
         ? X509_STORE_load_locations(fed->store, file, dir)
         : X509_STORE_set_default_paths(fed->store);

    if (!ok) {
        mxw_error(fed->w, "the system's CA certificates (%s, %s): cannot"
                  " read them", file ? file : "-", dir ? dir : "-");
    }

    ERR_clear_error();
    curl_easy_cleanup(e);

    return ok ? 0 : -1;
}


static int
mxw_fed_load_cas(mxw_fed_t *fed, const char *path)
{
    BIO   *bio;
    X509  *x;
    int    n;

    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        mxw_error(fed->w, "matrix_federation_ca_file %s: cannot read it",
                  path);
        return -1;
    }

    n = 0;

    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        /* one the system has already is no error */
        (void) X509_STORE_add_cert(fed->store, x);
        X509_free(x);
        n++;
    }

    ERR_clear_error();
    BIO_free(bio);

    if (n == 0) {
        mxw_error(fed->w, "matrix_federation_ca_file %s: no PEM certificate"
                  " in it", path);
        return -1;
    }

    mxw_info(fed->w, "trusting %d extra CA certificates of %s", n, path);

    return 0;
}


static int
mxw_fed_load_key(mxw_fed_t *fed)
{
    char         buf[512];
    const char  *why;
    size_t       n;
    FILE        *f;

    f = fed->w->cf.signing_key[0] ? fopen(fed->w->cf.signing_key, "r") : NULL;
    if (f == NULL) {
        mxw_error(fed->w, "matrix_signing_key: cannot read \"%s\"",
                  fed->w->cf.signing_key);
        return -1;
    }

    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';

    why = NULL;

    if (mx_sign_init() != 0 || mx_key_parse(&fed->key, buf, n, &why) != 0) {
        mxw_error(fed->w, "matrix_signing_key %s: %s", fed->w->cf.signing_key,
                  why ? why : "invalid");
        return -1;
    }

    fed->have_key = 1;

    return 0;
}


int
mxw_fed_init(mxw_fed_t **out, mxw_t *w)
{
    mxw_fed_t   *fed;
    const char  *v;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        mxw_error(w, "curl_global_init failed");
        return -1;
    }

    fed = calloc(1, sizeof(mxw_fed_t));
    if (fed == NULL) {
        return -1;
    }

    fed->w = w;
    fed->srv_lookup = mxw_fed_srv_dns;

    v = mxw_config_get(&w->cf, "matrix_federation_allow_private");
    fed->allow_private = v != NULL && strcmp(v, "on") == 0;

    fed->store = X509_STORE_new();
    if (fed->store == NULL || mxw_fed_load_system(fed) != 0) {
        goto failed;
    }

    v = mxw_config_get(&w->cf, "matrix_federation_ca_file");
    if (v != NULL && v[0] && mxw_fed_load_cas(fed, v) != 0) {
        goto failed;
    }

    /* without a key, signed requests fail; the rest still works */
    (void) mxw_fed_load_key(fed);

    fed->multi = curl_multi_init();
    if (fed->multi == NULL) {
        goto failed;
    }

    *out = fed;

    return 0;

failed:

    mxw_fed_fini(fed);
    return -1;
}


static void
mxw_fed_req_free(mxw_fed_req_t *rq)
{
    if (rq->easy) {
        curl_easy_cleanup(rq->easy);
    }

    curl_slist_free_all(rq->headers);
    curl_slist_free_all(rq->connect_to);
    free(rq->destination);
    free(rq->method);
    free(rq->path);
    free(rq->body);
    free(rq->resp);
    free(rq);
}


void
mxw_fed_fini(mxw_fed_t *fed)
{
    mxw_fed_dest_t  *d;
    mxw_fed_req_t   *rq;

    if (fed == NULL) {
        return;
    }

    /* the callers see every request end; a .well-known ending sends its
     * waiting requests, which end in turn */
    while (fed->inflight || fed->finished) {
        while (fed->inflight) {
            rq = fed->inflight;
            snprintf(rq->error, sizeof(rq->error), "shutting down");
            mxw_fed_finish(fed, rq);
        }

        while (fed->finished) {
            rq = fed->finished;
            fed->finished = rq->next;
            mxw_fed_finish(fed, rq);
        }
    }

    while (fed->dests) {
        d = fed->dests;
        fed->dests = d->next;
        while (d->waiting) {
            rq = d->waiting;
            d->waiting = rq->next;
            snprintf(rq->error, sizeof(rq->error), "shutting down");
            mxw_fed_finish(fed, rq);
        }
        free(d->srv);
        free(d);
    }

    if (fed->multi) {
        curl_multi_cleanup(fed->multi);
    }

    if (fed->store) {
        X509_STORE_free(fed->store);
    }

    memset(&fed->key, 0, sizeof(fed->key));
    free(fed);
    curl_global_cleanup();
}


int
mxw_fed_active(mxw_fed_t *fed)
{
    return fed->active;
}


void
mxw_fed_set_srv_lookup(mxw_fed_t *fed, mxw_fed_srv_pt lookup, void *ctx)
{
    fed->srv_lookup = lookup ? lookup : mxw_fed_srv_dns;
    fed->srv_ctx = ctx;
}


/* --- the transfer -------------------------------------------------------- */

static size_t
mxw_fed_write(char *p, size_t size, size_t n, void *data)
{
    mxw_fed_req_t  *rq = data;
    size_t          len, cap, max;
    char           *buf;

    len = size * n;
    max = rq->flags & MXW_FED_WELLKNOWN ? MXW_FED_WK_BODY_MAX
                                        : MXW_FED_BODY_MAX;

    if (rq->resp_len + len > max) {
        rq->too_large = 1;
        return 0;
    }

    if (rq->resp_len + len + 1 > rq->resp_cap) {
        cap = rq->resp_cap ? rq->resp_cap : 4096;
        while (cap < rq->resp_len + len + 1) {
            cap *= 2;
        }

        buf = realloc(rq->resp, cap);
        if (buf == NULL) {
            return 0;
        }

        rq->resp = buf;
        rq->resp_cap = cap;
    }

    memcpy(rq->resp + rq->resp_len, p, len);
    rq->resp_len += len;
    rq->resp[rq->resp_len] = '\0';

    return len;
}


static size_t
mxw_fed_header(char *p, size_t size, size_t n, void *data)
{
    mxw_fed_req_t  *rq = data;
    size_t          len;
    int64_t         secs;

    len = size * n;

    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        rq->max_age_ms = -1;        /* a new response: after a redirect */

    } else if (len > 14 && strncasecmp(p, "cache-control:", 14) == 0
               && mx_cache_control_max_age(p + 14, len - 14, &secs) == 0)
    {
        rq->max_age_ms = secs * 1000;
    }

    return len;
}


/* end a request that never became a transfer; done() comes from run */

static void
mxw_fed_fail(mxw_fed_t *fed, mxw_fed_req_t *rq, const char *fmt,
    const char *arg)
{
    snprintf(rq->error, sizeof(rq->error), fmt, arg);
    rq->status = 0;
    rq->next = fed->finished;
    fed->finished = rq;
}


static int
mxw_fed_start(mxw_fed_t *fed, mxw_fed_req_t *rq, const char *url)
{
    CURL  *e;
    int    wk;

    wk = (rq->flags & MXW_FED_WELLKNOWN) != 0;

    e = curl_easy_init();
    if (e == NULL) {
        return -1;
    }

    rq->easy = e;
    rq->max_age_ms = -1;

    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, rq);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, rq->curl_error);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "ngx_matrix");

    /* straight to the server: no proxy from the environment */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");

    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);

    /* the CAs: the store of mxw_fed_ssl_ctx, none of curl's own */
    curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
    curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, mxw_fed_ssl_ctx);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, fed);

    if (!fed->allow_private) {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, mxw_fed_opensocket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, rq);
    }

    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mxw_fed_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, rq);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, mxw_fed_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, rq);

    if (rq->flags & MXW_FED_QUICK) {
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         (long) MXW_FED_QUICK_CONNECT_MS);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) MXW_FED_QUICK_MS);

    } else {
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                         (long) MXW_FED_CONNECT_MS);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                         (long) (wk ? MXW_FED_WK_TIMEOUT
                                    : MXW_FED_TIMEOUT_MS));
    }

    if (wk) {
        /* the spec: .well-known follows redirects */
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);

    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, rq->method);

        if (rq->body) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, rq->body);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) rq->body_len);

        } else if (strcmp(rq->method, "GET") != 0) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        }
    }

    if (rq->headers) {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, rq->headers);
    }

    if (rq->connect_to) {
        curl_easy_setopt(e, CURLOPT_CONNECT_TO, rq->connect_to);
    }

    if (curl_multi_add_handle(fed->multi, e) != CURLM_OK) {
        return -1;
    }

    rq->iprev = NULL;
    rq->inext = fed->inflight;
    if (fed->inflight) {
        fed->inflight->iprev = rq;
    }
    fed->inflight = rq;

    return 0;
}


static int
mxw_fed_add_header(mxw_fed_req_t *rq, const char *name, const char *value)
{
    struct curl_slist  *l;
    char               *h;
    size_t              n;

    n = strlen(name) + strlen(value) + 3;
    h = malloc(n);
    if (h == NULL) {
        return -1;
    }

    snprintf(h, n, "%s: %s", name, value);
    l = curl_slist_append(rq->headers, h);
    free(h);

    if (l == NULL) {
        return -1;
    }

    rq->headers = l;

    return 0;
}


/* the X-Matrix header of the request; 0 or -1 with rq->error */

static int
mxw_fed_sign(mxw_fed_t *fed, mxw_fed_req_t *rq)
{
    mx_pool_t        *pool;
    mx_json_t        *content;
    mx_json_error_t   err;
    char             *auth;
    int               rc;

    if (!fed->have_key) {
        snprintf(rq->error, sizeof(rq->error), "no signing key"
                 " (matrix_signing_key)");
        return -1;
    }

    pool = mx_pool_create(4096);
    if (pool == NULL) {
        return -1;
    }

    content = NULL;

    if (rq->body) {
        content = mx_json_parse(pool, rq->body, rq->body_len, &err);
        if (content == NULL) {
            snprintf(rq->error, sizeof(rq->error), "body is not JSON: %s",
                     err.msg);
            mx_pool_destroy(pool);
            return -1;
        }
    }

    auth = mx_xmatrix_sign(pool, &fed->key, rq->method, rq->path,
                           fed->w->cf.server_name, rq->destination, content);

    rc = auth ? mxw_fed_add_header(rq, "Authorization", auth) : -1;

    if (rc != 0) {
        snprintf(rq->error, sizeof(rq->error), "cannot sign the request");
    }

    mx_pool_destroy(pool);

    return rc;
}


static void
mxw_fed_send(mxw_fed_t *fed, mxw_fed_req_t *rq, mxw_fed_dest_t *d)
{
    if (mxw_fed_add_header(rq, "Host", d->host_header) != 0
        || mxw_fed_add_header(rq, "Expect", "") != 0
        || (rq->body
            && mxw_fed_add_header(rq, "Content-Type", "application/json")
               != 0))
    {
        mxw_fed_fail(fed, rq, "%s", "out of memory");
        return;
    }

    if ((rq->flags & MXW_FED_SIGN) && mxw_fed_sign(fed, rq) != 0) {
        rq->next = fed->finished;
        fed->finished = rq;
        return;
    }

    rq->srv_cur = d->nsrv ? d->srv_next % d->nsrv : 0;
    rq->srv_tried = 0;

    mxw_fed_transfer(fed, rq, d);
}


/* the transfer of a request whose headers are made, to its SRV target
 * rq->srv_cur when the name has SRV targets */

static void
mxw_fed_transfer(mxw_fed_t *fed, mxw_fed_req_t *rq, mxw_fed_dest_t *d)
{
    struct curl_slist  *l;
    mx_srv_t           *t;
    char               *url, connect_to[2 * MX_HOST_MAX + 32];
    unsigned            port;
    size_t              n;

    port = d->port;

    if (d->nsrv) {
        t = &d->srv[rq->srv_cur];
        port = t->port;

        /* the certificate is still checked for the name, not the target */
        snprintf(connect_to, sizeof(connect_to), "%s:%u:%s:%u", d->url_host,
                 port, t->target, port);

        l = curl_slist_append(NULL, connect_to);
        if (l == NULL) {
            mxw_fed_fail(fed, rq, "%s", "out of memory");
            return;
        }

        rq->connect_to = l;
        rq->srv_tried++;
    }

    n = strlen(d->url_host) + strlen(rq->path) + 32;
    url = malloc(n);
    if (url == NULL) {
        mxw_fed_fail(fed, rq, "%s", "out of memory");
        return;
    }

    snprintf(url, n, "https://%s:%u%s", d->url_host, port, rq->path);

    if (mxw_fed_start(fed, rq, url) != 0) {
        free(url);
        mxw_fed_fail(fed, rq, "%s", "cannot start the transfer");
        return;
    }

    free(url);
}


/* a transfer out of the multi handle and the list of those in flight */

static void
mxw_fed_unlink(mxw_fed_t *fed, mxw_fed_req_t *rq)
{
    curl_multi_remove_handle(fed->multi, rq->easy);

    if (rq->iprev) {
        rq->iprev->inext = rq->inext;
    } else if (fed->inflight == rq) {
        fed->inflight = rq->inext;
    }

    if (rq->inext) {
        rq->inext->iprev = rq->iprev;
    }
}


/*
 * A transfer that could not connect to its SRV target: the next target,
 * if the request has not tried them all.  1 when the request goes on
 * (the transfer in hand is undone), 0 when it ends as it is.  The name's
 * next requests start with the target after the failed one.
 */

static int
mxw_fed_next_target(mxw_fed_t *fed, mxw_fed_req_t *rq, CURLcode res)
{
    mxw_fed_dest_t  *d;
    curl_off_t       connected;
    size_t           failed;

    connected = 0;
    curl_easy_getinfo(rq->easy, CURLINFO_CONNECT_TIME_T, &connected);

    if (!(res == CURLE_COULDNT_RESOLVE_HOST || res == CURLE_COULDNT_CONNECT
          || (res == CURLE_OPERATION_TIMEDOUT && connected == 0)))
    {
        return 0;
    }

    for (d = fed->dests; d && strcmp(d->name, rq->destination) != 0;
         d = d->next)
    {
        /* void */
    }

    if (d == NULL || !d->ready || d->nsrv == 0 || rq->srv_tried == 0
        || rq->srv_tried >= d->nsrv || rq->srv_cur >= d->nsrv)
    {
        return 0;
    }

    failed = rq->srv_cur;
    rq->srv_cur = (failed + 1) % d->nsrv;

    if (d->srv_next % d->nsrv == failed) {
        d->srv_next = rq->srv_cur;
    }

    mxw_info(fed->w, "%s: SRV target %s:%u: %s; trying %s:%u",
             rq->destination, d->srv[failed].target, d->srv[failed].port,
             rq->curl_error[0] ? rq->curl_error : curl_easy_strerror(res),
             d->srv[rq->srv_cur].target, d->srv[rq->srv_cur].port);

    /* the transfer undone */
    mxw_fed_unlink(fed, rq);

    curl_easy_cleanup(rq->easy);
    rq->easy = NULL;
    curl_slist_free_all(rq->connect_to);
    rq->connect_to = NULL;

    rq->resp_len = 0;
    rq->refused = 0;
    rq->too_large = 0;
    rq->curl_error[0] = '\0';

    mxw_fed_transfer(fed, rq, d);

    return 1;
}


/* --- discovery ----------------------------------------------------------- */

static uint32_t
mxw_fed_random(void *ctx, uint32_t bound)
{
    (void) ctx;

    return (uint32_t) random() % bound;
}


/* the SRV records of qname, from DNS (the default lookup) */

static size_t
mxw_fed_srv_dns(void *ctx, const char *qname, mx_srv_t *rr, size_t max)
{
    struct __res_state    rs;
    unsigned char         ans[4096];
    const unsigned char  *rd;
    ns_msg                msg;
    ns_rr                 r;
    int                   len, i, count;
    size_t                n;

    (void) ctx;

    memset(&rs, 0, sizeof(rs));
    if (res_ninit(&rs) != 0) {
        return 0;
    }

    /* it blocks the loop: a few seconds at most */
    rs.retrans = 2;
    rs.retry = 1;

    n = 0;

    len = res_nquery(&rs, qname, ns_c_in, ns_t_srv, ans, sizeof(ans));
    if (len < 0 || ns_initparse(ans, len, &msg) != 0) {
        res_nclose(&rs);
        return 0;
    }

    count = ns_msg_count(msg, ns_s_an);

    for (i = 0; i < count && n < max; i++) {
        if (ns_parserr(&msg, ns_s_an, i, &r) != 0
            || ns_rr_type(r) != ns_t_srv || ns_rr_rdlen(r) < 7)
        {
            continue;
        }

        rd = ns_rr_rdata(r);
        rr[n].priority = ns_get16(rd);
        rr[n].weight = ns_get16(rd + 2);
        rr[n].port = ns_get16(rd + 4);

        if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6,
                      rr[n].target, sizeof(rr[n].target)) < 0)
        {
            continue;
        }

        n++;
    }

    res_nclose(&rs);

    return n;
}


/*
 * The SRV targets of host in the order to try them, into d->srv:
 * _matrix-fed._tcp first, then the deprecated _matrix._tcp.  Their
 * number; 0 when there are none.
 */

static size_t
mxw_fed_srv(mxw_fed_t *fed, mxw_fed_dest_t *d, const char *host)
{
    static const char  *services[] = { "_matrix-fed._tcp", "_matrix._tcp" };
    char                qname[MX_HOST_MAX + 32];
    mx_srv_t            rr[MXW_FED_SRV_MAX];
    size_t              n, i;
    int                 k;

    free(d->srv);
    d->srv = NULL;
    d->nsrv = 0;
    d->srv_next = 0;

    for (k = 0; k < 2; k++) {
        snprintf(qname, sizeof(qname), "%s.%s", services[k], host);

        n = fed->srv_lookup(fed->srv_ctx, qname, rr, MXW_FED_SRV_MAX);
        n = n ? mx_srv_order(rr, n, mxw_fed_random, NULL) : 0;
        if (n == 0) {
            continue;
        }

        d->srv = malloc(n * sizeof(mx_srv_t));
        if (d->srv == NULL) {
            return 0;
        }

        memcpy(d->srv, rr, n * sizeof(mx_srv_t));
        d->nsrv = n;

        for (i = 0; i < n; i++) {
            mxw_info(fed->w, "%s: SRV %zu: %s:%u", qname, i + 1,
                     rr[i].target, rr[i].port);
        }

        return n;
    }

    return 0;
}


/*
 * Where requests for a server go, from the name to connect to (the
 * server name or its delegation), steps 1, 2, and 3.3 to 3.5 of the spec.
 */

static void
mxw_fed_dest_target(mxw_fed_t *fed, mxw_fed_dest_t *d, const char *name,
    const mx_server_name_t *sn)
{
    snprintf(d->host_header, sizeof(d->host_header), "%s", name);
    snprintf(d->url_host, sizeof(d->url_host),
             sn->type == MX_HOST_IPV6 ? "[%s]" : "%s", sn->host);

    free(d->srv);
    d->srv = NULL;
    d->nsrv = 0;

    if (mx_server_name_is_ip(sn) || sn->port) {
        d->port = sn->port ? sn->port : 8448;
        return;
    }

    /* the SRV targets (the port is each target's), else 8448 */
    d->port = mxw_fed_srv(fed, d, sn->host) ? 0 : 8448;
}


static void
mxw_fed_dest_ready(mxw_fed_t *fed, mxw_fed_dest_t *d, int64_t ttl_ms)
{
    mxw_fed_req_t  *rq;

    d->ready = 1;
    d->expires = mxw_now_ms() + ttl_ms;

    if (d->nsrv) {
        mxw_info(fed->w, "%s: https://%s (Host %s) via %zu SRV target%s,"
                 " for %lld s", d->name, d->url_host, d->host_header,
                 d->nsrv, d->nsrv > 1 ? "s" : "", (long long) (ttl_ms / 1000));

    } else {
        mxw_info(fed->w, "%s: https://%s:%u (Host %s), for %lld s", d->name,
                 d->url_host, d->port, d->host_header,
                 (long long) (ttl_ms / 1000));
    }

    while (d->waiting) {
        rq = d->waiting;
        d->waiting = rq->next;
        rq->next = NULL;
        mxw_fed_send(fed, rq, d);
    }
}


/* a parsed server name written back */

static void
mxw_fed_name(const mx_server_name_t *sn, char *buf, size_t size)
{
    int  n;

    n = snprintf(buf, size, sn->type == MX_HOST_IPV6 ? "[%s]" : "%s",
                 sn->host);

    if (sn->port && n > 0 && (size_t) n < size) {
        snprintf(buf + n, size - (size_t) n, ":%u", sn->port);
    }
}


static void
mxw_fed_wellknown_done(mxw_fed_t *fed, mxw_fed_req_t *wk)
{
    mxw_fed_dest_t    *d;
    mx_server_name_t   sn, dl;
    mx_pool_t         *pool;
    const char        *why;
    int64_t            ttl;
    char               name[MX_HOST_MAX + 8];

    d = wk->data;

    (void) mx_server_name_parse(d->name, strlen(d->name), &sn);

    pool = mx_pool_create(4096);
    why = "no answer";

    if (pool != NULL && wk->status == 200
        && mx_wellknown_server_parse(pool, wk->resp ? wk->resp : "",
                                     wk->resp_len, &dl, &why) == 0)
    {
        ttl = wk->max_age_ms < 0 ? MXW_FED_WK_DEFAULT_MS : wk->max_age_ms;
        ttl = ttl < MXW_FED_WK_MIN_MS ? MXW_FED_WK_MIN_MS : ttl;
        ttl = ttl > MXW_FED_WK_MAX_MS ? MXW_FED_WK_MAX_MS : ttl;

        mxw_fed_name(&dl, name, sizeof(name));
        mxw_info(fed->w, "%s: delegated to %s", d->name, name);

        /* the delegated name: the Host header and the TLS name */
        mxw_fed_dest_target(fed, d, name, &dl);

    } else {
        if (wk->status) {
            mxw_info(fed->w, "%s: no delegation: .well-known %ld: %s",
                     d->name, wk->status, why);
        } else {
            mxw_info(fed->w, "%s: no delegation: .well-known: %s", d->name,
                     wk->error);
        }

        ttl = MXW_FED_WK_FAILED_MS;
        mxw_fed_dest_target(fed, d, d->name, &sn);
    }

    if (pool) {
        mx_pool_destroy(pool);
    }

    mxw_fed_dest_ready(fed, d, ttl);
}


static mxw_fed_dest_t *
mxw_fed_dest_get(mxw_fed_t *fed, const char *name)
{
    mxw_fed_dest_t  *d, **pd;
    int64_t          now;

    now = mxw_now_ms();

    for (pd = &fed->dests; *pd; ) {
        d = *pd;

        if (strcmp(d->name, name) == 0) {
            return d;
        }

        /* forget expired names when there are many */
        if (fed->ndests > MXW_FED_DEST_MAX && d->ready && d->expires < now) {
            *pd = d->next;
            free(d->srv);
            free(d);
            fed->ndests--;
            continue;
        }

        pd = &d->next;
    }

    d = calloc(1, sizeof(mxw_fed_dest_t));
    if (d == NULL) {
        return NULL;
    }

    snprintf(d->name, sizeof(d->name), "%s", name);
    d->next = fed->dests;
    fed->dests = d;
    fed->ndests++;

    return d;
}


static char *
mxw_fed_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}


int
mxw_fed_request(mxw_fed_t *fed, const char *destination, const char *method,
    const char *path, const char *body, size_t body_len, unsigned flags,
    mxw_fed_done_pt done, void *data)
{
    mxw_fed_req_t     *rq, *wk;
    mxw_fed_dest_t    *d;
    mx_server_name_t   sn;
    char               url[MX_HOST_MAX + 64];

    rq = calloc(1, sizeof(mxw_fed_req_t));
    if (rq == NULL) {
        return -1;
    }

    rq->destination = mxw_fed_strdup(destination);
    rq->method = mxw_fed_strdup(method);
    rq->path = mxw_fed_strdup(path);
    rq->flags = flags;
    rq->done = done;
    rq->data = data;

    if (body && body_len) {
        rq->body = malloc(body_len + 1);
        if (rq->body) {
            memcpy(rq->body, body, body_len);
            rq->body[body_len] = '\0';
            rq->body_len = body_len;
        }
    }

    if (rq->destination == NULL || rq->method == NULL || rq->path == NULL
        || (body && body_len && rq->body == NULL))
    {
        mxw_fed_req_free(rq);
        return -1;
    }

    fed->active++;

    if (mx_server_name_parse(destination, strlen(destination), &sn) != 0) {
        mxw_fed_fail(fed, rq, "not a server name: \"%s\"", destination);
        return 0;
    }

    if (path[0] != '/') {
        mxw_fed_fail(fed, rq, "not a path: \"%s\"", path);
        return 0;
    }

    d = mxw_fed_dest_get(fed, destination);
    if (d == NULL) {
        mxw_fed_fail(fed, rq, "%s", "out of memory");
        return 0;
    }

    if (d->ready && d->expires > mxw_now_ms()) {
        mxw_fed_send(fed, rq, d);
        return 0;
    }

    if (d->waiting) {
        /* a .well-known is on its way */
        rq->next = d->waiting;
        d->waiting = rq;
        return 0;
    }

    d->ready = 0;
    d->waiting = rq;

    if (mx_server_name_is_ip(&sn) || sn.port) {
        mxw_fed_dest_target(fed, d, destination, &sn);
        mxw_fed_dest_ready(fed, d, MXW_FED_WK_DEFAULT_MS);
        return 0;
    }

    wk = calloc(1, sizeof(mxw_fed_req_t));
    if (wk == NULL) {
        d->waiting = NULL;
        mxw_fed_fail(fed, rq, "%s", "out of memory");
        return 0;
    }

    wk->destination = strdup(destination);
    wk->method = strdup("GET");
    wk->path = strdup("/.well-known/matrix/server");
    wk->flags = MXW_FED_WELLKNOWN;
    wk->done = mxw_fed_wellknown_done;
    wk->data = d;

    fed->active++;

    snprintf(url, sizeof(url), "https://%s/.well-known/matrix/server",
             sn.host);

    if (wk->destination == NULL || wk->method == NULL || wk->path == NULL
        || mxw_fed_start(fed, wk, url) != 0)
    {
        mxw_fed_fail(fed, wk, "%s", "cannot start the transfer");
    }

    return 0;
}


/* --- the loop's turn ----------------------------------------------------- */

static void
mxw_fed_finish(mxw_fed_t *fed, mxw_fed_req_t *rq)
{
    if (rq->easy) {
        mxw_fed_unlink(fed, rq);
    }

    fed->active--;
    rq->done(fed, rq);
    mxw_fed_req_free(rq);
}


void
mxw_fed_run(mxw_fed_t *fed, int timeout_ms)
{
    mxw_fed_req_t  *rq;
    CURLMsg        *msg;
    CURLcode        res;
    CURL           *e;
    int             running, left;
    long            status;

    while (fed->finished) {
        rq = fed->finished;
        fed->finished = rq->next;
        rq->next = NULL;
        mxw_fed_finish(fed, rq);
        timeout_ms = 0;
    }

    if (fed->active == 0) {
        return;
    }

    curl_multi_poll(fed->multi, NULL, 0, timeout_ms, NULL);
    curl_multi_perform(fed->multi, &running);

    while ((msg = curl_multi_info_read(fed->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        e = msg->easy_handle;
        res = msg->data.result;
        rq = NULL;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &rq);

        if (rq == NULL) {
            curl_multi_remove_handle(fed->multi, e);
            curl_easy_cleanup(e);
            continue;
        }

        if (res == CURLE_OK) {
            status = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            rq->status = status;

        } else if (!(rq->flags & MXW_FED_WELLKNOWN)
                   && mxw_fed_next_target(fed, rq, res))
        {
            continue;

        } else {
            rq->status = 0;

            if (rq->refused) {
                snprintf(rq->error, sizeof(rq->error), "refused to connect"
                         " to a private address"
                         " (matrix_federation_allow_private is off)");

            } else if (rq->too_large) {
                snprintf(rq->error, sizeof(rq->error), "response larger"
                         " than %d bytes", rq->flags & MXW_FED_WELLKNOWN
                         ? MXW_FED_WK_BODY_MAX : MXW_FED_BODY_MAX);

            } else {
                snprintf(rq->error, sizeof(rq->error), "%s",
                         rq->curl_error[0] ? rq->curl_error
                                           : curl_easy_strerror(res));
            }
        }

        mxw_fed_finish(fed, rq);
    }

    /* those a finished .well-known could not send */
    while (fed->finished) {
        rq = fed->finished;
        fed->finished = rq->next;
        rq->next = NULL;
        mxw_fed_finish(fed, rq);
    }
}

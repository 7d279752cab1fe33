/*
 * mxw_fed: the outbound federation HTTP client, on libcurl's multi
 * interface, for a daemon's single-threaded loop.
 *
 *   mxw_fed_request() ──► discovery (cached) ──► signed HTTPS request
 *                                                     │
 *   mxw_fed_run(): poll the transfers, finish them ───┴──► done(rq)
 *
 * Discovery follows the server-server API ("Resolving server names"): an
 * IP literal or a name with an explicit port is used as it is; otherwise
 * GET https://<name>/.well-known/matrix/server and its m.server delegation
 * (an IP literal, an explicit port, SRV records or port 8448 on the
 * delegated name), else the SRV records _matrix-fed._tcp.<name> and
 * _matrix._tcp.<name>, else <name>:8448.  The certificate must be valid
 * for the server name, or for the delegated name; curl is pointed at the
 * SRV target with CURLOPT_CONNECT_TO, so it checks the right name.  SRV
 * targets are tried in RFC 2782 order (priority, then weighted random):
 * a request that cannot connect to one goes on to the next, and the name's
 * later requests start with the one that last answered.
 *
 * Policy (settings of the http{} block of nginx.conf):
 *   matrix_federation_ca_file        CAs trusted beside the system store
 *   matrix_federation_allow_private  on: may connect to loopback, private,
 *                                    link-local addresses (off: refused)
 */

#ifndef MXW_FED_H
#define MXW_FED_H

#include <stddef.h>
#include <stdint.h>

#include <mx_server_name.h>

#include "mxw.h"


#define MXW_FED_BODY_MAX        (16 * 1024 * 1024)
#define MXW_FED_CONNECT_MS      10000
#define MXW_FED_TIMEOUT_MS      60000

/* MXW_FED_QUICK requests: a caller that has a deadline of its own */
#define MXW_FED_QUICK_CONNECT_MS  3000
#define MXW_FED_QUICK_MS          8000

/* how long discovery results are kept */
#define MXW_FED_WK_DEFAULT_MS   (24 * 3600 * 1000LL)    /* no max-age */
#define MXW_FED_WK_MIN_MS       (5 * 60 * 1000LL)
#define MXW_FED_WK_MAX_MS       (48 * 3600 * 1000LL)
#define MXW_FED_WK_FAILED_MS    (10 * 60 * 1000LL)      /* no .well-known */

#define MXW_FED_SRV_MAX         16      /* SRV targets kept per name */


typedef struct mxw_fed_s      mxw_fed_t;
typedef struct mxw_fed_req_s  mxw_fed_req_t;

typedef void (*mxw_fed_done_pt)(mxw_fed_t *fed, mxw_fed_req_t *rq);

/* request flags */
#define MXW_FED_SIGN   0x01     /* X-Matrix Authorization header */
#define MXW_FED_QUICK  0x02     /* connected (TLS too) within 3 s, done
                                   within 8 s (discovery keeps its own
                                   times) */


struct mxw_fed_req_s {
    /* what is asked: copies, freed with the request */
    char             *destination;
    char             *method;
    char             *path;           /* with the query string */
    char             *body;           /* JSON, or NULL */
    size_t            body_len;
    unsigned          flags;
    mxw_fed_done_pt   done;
    void             *data;

    /* the outcome, when done() is called */
    long              status;         /* HTTP status; 0: no answer */
    char             *resp;           /* the body, NUL-terminated */
    size_t            resp_len;
    char              error[256];     /* why there is no answer */

    /* internal */
    void             *easy;
    void             *headers;
    void             *connect_to;
    mxw_fed_req_t    *next;           /* waiting for discovery, finished */
    mxw_fed_req_t    *iprev;          /* transfers in flight */
    mxw_fed_req_t    *inext;
    size_t            resp_cap;
    size_t            srv_cur;        /* the SRV target tried */
    size_t            srv_tried;      /* how many of them so far */
    int               refused;        /* a private address was refused */
    int               too_large;
    int64_t           max_age_ms;     /* Cache-Control, -1: none */
    char              curl_error[256];
};


/*
 * Read the settings and the signing key (matrix_signing_key), load the
 * extra CAs.  0, or -1 with the reason logged.
 */
int mxw_fed_init(mxw_fed_t **fed, mxw_t *w);

/* every request still open ends (done() with status 0 and an error) */
void mxw_fed_fini(mxw_fed_t *fed);

/*
 * Start a request; done() is called from mxw_fed_run() (never from here),
 * and the request is freed when it returns.  0, or -1 on ENOMEM.
 */
int mxw_fed_request(mxw_fed_t *fed, const char *destination,
    const char *method, const char *path, const char *body, size_t body_len,
    unsigned flags, mxw_fed_done_pt done, void *data);

/* transfers in flight (discovery included) */
int mxw_fed_active(mxw_fed_t *fed);

/*
 * Wait up to timeout_ms for activity on the transfers, move them on, and
 * call done() for those that ended.
 */
void mxw_fed_run(mxw_fed_t *fed, int timeout_ms);


/*
 * The SRV records of qname ("_matrix-fed._tcp.<host>", "_matrix._tcp.
 * <host>"), at most max of them into rr: their number.  The default asks
 * DNS (res_nquery); the unit tests give their own.
 */
typedef size_t (*mxw_fed_srv_pt)(void *ctx, const char *qname, mx_srv_t *rr,
    size_t max);

void mxw_fed_set_srv_lookup(mxw_fed_t *fed, mxw_fed_srv_pt lookup,
    void *ctx);


/* an address the policy refuses without allow_private; 1 or 0 */
struct sockaddr;
int mxw_fed_addr_private(const struct sockaddr *sa);

#endif /* MXW_FED_H */

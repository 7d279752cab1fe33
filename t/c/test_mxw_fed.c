/*
 * workers/mxw_fed: the address policy of matrix_federation_allow_private
 * off: loopback, private, link-local, unspecified (and multicast) refused,
 * public addresses allowed, IPv4-mapped IPv6 judged as IPv4.
 *
 * SRV targets (records given by a lookup of the test's own): tried in
 * priority order, the next when one refuses the connection, not when one
 * connects and then fails; the name's next request starts with the target
 * that answered; every one refused: the request fails.  The "servers" are
 * listening sockets of the test that accept and close at once (the TLS
 * handshake then fails, which is an answer of sorts: it connected).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <mxw_fed.h>


static int
private(const char *addr)
{
    struct sockaddr_in   in;
    struct sockaddr_in6  in6;

    memset(&in, 0, sizeof(in));
    memset(&in6, 0, sizeof(in6));

    if (inet_pton(AF_INET, addr, &in.sin_addr) == 1) {
        in.sin_family = AF_INET;
        return mxw_fed_addr_private((struct sockaddr *) &in);
    }

    assert_int_equal(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
    in6.sin6_family = AF_INET6;

    return mxw_fed_addr_private((struct sockaddr *) &in6);
}


static void
test_private(void **state)
{
    const char  *refused[] = {
        "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1",
        "172.31.255.255", "192.168.1.1", "169.254.169.254", "0.0.0.0",
        "100.64.0.1", "224.0.0.1", "255.255.255.255",
        "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1",
        "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", NULL
    };
    const char  *allowed[] = {
        "1.1.1.1", "8.8.8.8", "172.15.255.255", "172.32.0.1",
        "192.169.0.1", "100.128.0.1", "169.253.0.1", "11.0.0.1",
        "2001:db8::1", "2606:4700::1111", "fec0::1", "::ffff:8.8.8.8", NULL
    };
    int          i;

    (void) state;

    for (i = 0; refused[i]; i++) {
        if (!private(refused[i])) {
            fail_msg("%s allowed", refused[i]);
        }
    }

    for (i = 0; allowed[i]; i++) {
        if (private(allowed[i])) {
            fail_msg("%s refused", allowed[i]);
        }
    }
}


/* --- SRV targets ---------------------------------------------------------- */

typedef struct {
    mx_srv_t   rr[4];
    size_t     n;
    int        asked;
} srv_answer_t;


static size_t
srv_lookup(void *ctx, const char *qname, mx_srv_t *rr, size_t max)
{
    srv_answer_t  *a = ctx;

    if (strcmp(qname, "_matrix-fed._tcp.localhost") != 0 || a->n > max) {
        return 0;
    }

    a->asked++;
    memcpy(rr, a->rr, a->n * sizeof(mx_srv_t));

    return a->n;
}


static void
srv_record(srv_answer_t *a, unsigned prio, unsigned port)
{
    mx_srv_t  *r;

    r = &a->rr[a->n++];
    memset(r, 0, sizeof(*r));
    r->priority = prio;
    r->port = port;
    snprintf(r->target, sizeof(r->target), "127.0.0.1");
}


/* a listening socket on 127.0.0.1 (non-blocking accept); its port */

static int
listener(unsigned *port)
{
    struct sockaddr_in  in;
    socklen_t           len;
    int                 fd;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);

    memset(&in, 0, sizeof(in));
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    len = sizeof(in);
    assert_int_equal(bind(fd, (struct sockaddr *) &in, sizeof(in)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &in, &len), 0);

    *port = ntohs(in.sin_port);

    return fd;
}


/* a port nothing listens on: a listener's, closed */

static unsigned
closed_port(void)
{
    unsigned  port;

    close(listener(&port));

    return port;
}


/* a worker of the tests: loopback allowed */

static void
test_worker(mxw_t *w)
{
    memset(w, 0, sizeof(*w));
    w->prog = "test_mxw_fed";
    w->cf.n = 1;
    w->cf.d[0].name = "matrix_federation_allow_private";
    w->cf.d[0].value = "on";
    w->cf.server_name = "test.localhost";
}


typedef struct {
    int    done;
    long   status;
    char   error[256];
} srv_result_t;


static void
srv_done(mxw_fed_t *fed, mxw_fed_req_t *rq)
{
    srv_result_t  *res = rq->data;

    (void) fed;

    res->done = 1;
    res->status = rq->status;
    snprintf(res->error, sizeof(res->error), "%s", rq->error);
}


/* one request to "localhost" until it ends; connections each listener took */

static void
srv_run(mxw_fed_t *fed, int *fds, int *accepted, size_t nfds,
    srv_result_t *res)
{
    size_t  i;
    int     c, turns;

    memset(res, 0, sizeof(*res));
    assert_int_equal(mxw_fed_request(fed, "localhost", "GET", "/x", NULL, 0,
                                     0, srv_done, res), 0);

    for (turns = 0; !res->done && turns < 600; turns++) {
        mxw_fed_run(fed, 50);

        for (i = 0; i < nfds; i++) {
            while ((c = accept(fds[i], NULL, NULL)) >= 0) {
                accepted[i]++;
                close(c);
            }
        }
    }

    assert_true(res->done);
}


static void
test_srv_fallback(void **state)
{
    mxw_t          w;
    mxw_fed_t     *fed;
    srv_answer_t   a;
    srv_result_t   res;
    unsigned       good, bad, other;
    int            fds[2], accepted[2];

    (void) state;

    test_worker(&w);

    assert_int_equal(mxw_fed_init(&fed, &w), 0);

    /* refused first (priority 10), the listener second (priority 20),
     * given in the other order */
    memset(&a, 0, sizeof(a));
    fds[0] = listener(&good);
    bad = closed_port();
    srv_record(&a, 20, good);
    srv_record(&a, 10, bad);
    mxw_fed_set_srv_lookup(fed, srv_lookup, &a);

    memset(accepted, 0, sizeof(accepted));
    srv_run(fed, fds, accepted, 1, &res);
    assert_int_equal(a.asked, 1);
    assert_int_equal(accepted[0], 1);       /* the second target reached */
    assert_int_equal(res.status, 0);        /* it closed: no answer */
    if (strstr(res.error, "onnect") && !strstr(res.error, "SSL")) {
        fail_msg("ended with a connection failure: %s", res.error);
    }

    /* the next request: the same target, at once */
    srv_run(fed, fds, accepted, 1, &res);
    assert_int_equal(a.asked, 1);           /* discovery cached */
    assert_int_equal(accepted[0], 2);

    mxw_fed_fini(fed);
    close(fds[0]);

    /* a first target that connects, then fails: no fallback to the next */
    assert_int_equal(mxw_fed_init(&fed, &w), 0);
    memset(&a, 0, sizeof(a));
    fds[0] = listener(&good);
    fds[1] = listener(&other);
    srv_record(&a, 10, good);
    srv_record(&a, 20, other);
    mxw_fed_set_srv_lookup(fed, srv_lookup, &a);

    memset(accepted, 0, sizeof(accepted));
    srv_run(fed, fds, accepted, 2, &res);
    assert_int_equal(accepted[0], 1);
    assert_int_equal(accepted[1], 0);
    assert_int_equal(res.status, 0);

    mxw_fed_fini(fed);
    close(fds[0]);
    close(fds[1]);

    /* every target refuses: the request fails, after trying each */
    assert_int_equal(mxw_fed_init(&fed, &w), 0);
    memset(&a, 0, sizeof(a));
    srv_record(&a, 10, closed_port());
    srv_record(&a, 20, closed_port());
    mxw_fed_set_srv_lookup(fed, srv_lookup, &a);

    srv_run(fed, fds, accepted, 0, &res);
    assert_int_equal(res.status, 0);
    assert_non_null(strstr(res.error, "onnect"));

    mxw_fed_fini(fed);
}


/*
 * MXW_FED_QUICK: a server that takes the connection and never answers
 * (a listener that never accepts: the TLS handshake never ends, and curl
 * counts it in the connect time) ends the request after
 * MXW_FED_QUICK_CONNECT_MS, not MXW_FED_CONNECT_MS
 */

static void
test_quick(void **state)
{
    mxw_t          w;
    mxw_fed_t     *fed;
    srv_result_t   res;
    unsigned       port;
    int            fd, turns;
    int64_t        t0, took;
    char           dest[64];

    (void) state;

    test_worker(&w);

    assert_int_equal(mxw_fed_init(&fed, &w), 0);

    fd = listener(&port);
    snprintf(dest, sizeof(dest), "127.0.0.1:%u", port);

    memset(&res, 0, sizeof(res));
    t0 = mxw_now_ms();
    assert_int_equal(mxw_fed_request(fed, dest, "GET", "/x", NULL, 0,
                                     MXW_FED_QUICK, srv_done, &res), 0);

    for (turns = 0; !res.done && turns < 400; turns++) {
        mxw_fed_run(fed, 50);
    }

    took = mxw_now_ms() - t0;

    assert_true(res.done);
    assert_int_equal(res.status, 0);
    if (took < MXW_FED_QUICK_CONNECT_MS - 500
        || took > MXW_FED_QUICK_CONNECT_MS + 2000)
    {
        fail_msg("a quick request ended after %lld ms: %s", (long long) took,
                 res.error);
    }

    mxw_fed_fini(fed);
    close(fd);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_private),
        cmocka_unit_test(test_srv_fallback),
        cmocka_unit_test(test_quick),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

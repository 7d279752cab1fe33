/*
 * state_res_bench: state resolution on two forks of a large room.
 *
 * A room (create, creator's join, power levels, public join rule) forks:
 * on each side N users join, and every tenth join the creator changes the
 * power levels (giving the newest member 50).  The two forks' states are
 * resolved:
 *
 *            base
 *           /    \
 *     N joins    N joins          2N conflicted joins, N/5 power levels
 *     N/10 PL    N/10 PL          events in the auth difference
 *           \    /
 *          resolve
 *
 * For N = 1,000, 10,000 and 100,000, each in a child process so its peak
 * memory is its own: the time to resolve, the resolver's pool, the
 * child's peak RSS (building the room included), and the growth of the
 * time per tenfold step (N log N would be about 13x).  Each time is the
 * best of BENCH_RUNS resolutions of the same room.  Room versions 10
 * (state resolution v2) and 12 (v2.1) unless versions are given.
 *
 *   state_res_bench [N ...] [-v VERSION ...]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <mx_auth.h>
#include <mx_idmap.h>
#include <mx_json.h>
#include <mx_pool.h>
#include <mx_room_version.h>
#include <mx_state_res.h>


#define CREATOR     "@creator:hs.test"
#define BENCH_RUNS  3

typedef struct {
    mx_pool_t                *pool;
    const mx_room_version_t  *rv;
    mx_idmap_t                byid;
    const char               *room_id;
    int64_t                   ts;
} bench_room_t;

typedef struct {
    double   build_s;
    double   resolve_s;
    size_t   pool_bytes;
    size_t   state_size;
    long     maxrss_kb;
    int      ok;
} bench_result_t;


static double
bench_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void
bench_oom(void)
{
    fprintf(stderr, "state_res_bench: out of memory\n");
    exit(3);
}


static const char *
bench_str(bench_room_t *r, const char *fmt, const char *a, long i)
{
    char   buf[128];
    char  *s;
    int    n;

    n = snprintf(buf, sizeof(buf), fmt, a, i);
    s = mx_pstrndup(r->pool, buf, (size_t) n);
    if (s == NULL) {
        bench_oom();
    }

    return s;
}


/* one event, built straight into the view the resolver reads */
static mx_auth_event_t *
bench_event(bench_room_t *r, const char *id, const char *type,
    const char *state_key, const char *sender, mx_json_t *content,
    const mx_auth_event_t *prev, const mx_auth_event_t **auth, size_t n_auth)
{
    mx_auth_event_t  *ev;
    size_t            i;

    ev = mx_pcalloc(r->pool, sizeof(mx_auth_event_t));
    if (ev == NULL) {
        bench_oom();
    }

    ev->event_id = id;
    ev->room_id = strcmp(type, "m.room.create") == 0
                  && r->rv->room_id_from_create ? NULL : r->room_id;
    ev->type = type;
    ev->state_key = state_key;
    ev->sender = sender;
    ev->content = content;
    ev->membership = mx_json_get_str(content, "membership", NULL);
    ev->origin_server_ts = r->ts++;
    ev->json = mx_json_object(r->pool);

    ev->prev_events = mx_palloc(r->pool, sizeof(char *));
    ev->auth_events = mx_palloc(r->pool, (n_auth + 1) * sizeof(char *));
    if (ev->json == NULL || ev->prev_events == NULL
        || ev->auth_events == NULL)
    {
        bench_oom();
    }

    if (prev) {
        ev->prev_events[0] = prev->event_id;
        ev->n_prev = 1;
    }

    for (i = 0; i < n_auth; i++) {
        if (auth[i]) {
            ev->auth_events[ev->n_auth++] = auth[i]->event_id;
        }
    }

    if (mx_idmap_put(&r->byid, id, ev) != 0) {
        bench_oom();
    }

    return ev;
}


static mx_json_t *
bench_membership(bench_room_t *r, const char *m)
{
    mx_json_t  *c;

    c = mx_json_object(r->pool);
    if (c == NULL || mx_json_set_str(r->pool, c, "membership", m) != 0) {
        bench_oom();
    }

    return c;
}


/* {"users": {creator: 100 (not in v12), user: 50}} */
static mx_json_t *
bench_pl_content(bench_room_t *r, const char *user)
{
    mx_json_t  *c, *users;

    c = mx_json_object(r->pool);
    users = mx_json_object(r->pool);
    if (c == NULL || users == NULL || mx_json_set(r->pool, c, "users", users))
    {
        bench_oom();
    }

    if (!r->rv->room_id_from_create
        && mx_json_set_int(r->pool, users, CREATOR, 100) != 0)
    {
        bench_oom();
    }

    if (user && mx_json_set_int(r->pool, users, user, 50) != 0) {
        bench_oom();
    }

    return c;
}


static const mx_auth_event_t *
bench_fetch(void *ctx, const char *id)
{
    return mx_idmap_get(&((bench_room_t *) ctx)->byid, id);
}


/*
 * One side of the fork: n joins of "@<side>N:hs.test", a power levels
 * change every tenth join, each event after the previous one.
 */

static mx_state_t *
bench_fork(bench_room_t *r, const mx_state_t *base, const char *side, long n)
{
    const mx_auth_event_t  *create, *pl, *jr, *cj, *prev, *auth[4];
    mx_auth_event_t        *ev;
    mx_state_t             *st;
    mx_json_t              *c;
    const char             *user;
    long                    i;

    st = mx_state_copy(r->pool, base);
    if (st == NULL) {
        bench_oom();
    }

    create = mx_state_get(base, "m.room.create", "");
    pl = mx_state_get(base, "m.room.power_levels", "");
    jr = mx_state_get(base, "m.room.join_rules", "");
    cj = mx_state_get(base, "m.room.member", CREATOR);
    prev = jr;

    for (i = 0; i < n; i++) {
        user = bench_str(r, "@%s%ld:hs.test", side, i);
        auth[0] = r->rv->room_id_from_create ? NULL : create;
        auth[1] = pl;
        auth[2] = jr;

        ev = bench_event(r, bench_str(r, "$%s-join-%ld", side, i),
                         "m.room.member", user, user,
                         bench_membership(r, "join"), prev, auth, 3);
        if (mx_state_put(st, ev) != 0) {
            bench_oom();
        }

        prev = ev;

        if (i % 10 == 9) {
            c = bench_pl_content(r, user);
            auth[1] = pl;
            auth[2] = cj;

            ev = bench_event(r, bench_str(r, "$%s-pl-%ld", side, i),
                             "m.room.power_levels", "", CREATOR, c, prev,
                             auth, 3);
            if (mx_state_put(st, ev) != 0) {
                bench_oom();
            }

            pl = ev;
            prev = ev;
        }
    }

    return st;
}


static void
bench_run(const char *version, long n, bench_result_t *res)
{
    bench_room_t             r;
    mx_pool_t               *rpool;
    mx_state_t              *base, *a, *b, *out;
    const mx_state_t        *sets[2];
    const mx_auth_event_t   *create, *cj, *pl, *jr, *auth[3];
    mx_json_t               *c;
    char                    *rid;
    double                   t0;
    int                      i;

    memset(&r, 0, sizeof(r));
    r.pool = mx_pool_create(1 << 20);
    r.rv = mx_room_version(version, strlen(version));
    if (r.pool == NULL || r.rv == NULL
        || mx_idmap_init(&r.byid, r.pool, (size_t) n * 3) != 0)
    {
        bench_oom();
    }

    t0 = bench_now();
    r.room_id = "!bench:hs.test";

    c = mx_json_object(r.pool);
    if (c == NULL || mx_json_set_str(r.pool, c, "room_version", version)
        || mx_json_set_str(r.pool, c, "creator", CREATOR))
    {
        bench_oom();
    }

    create = bench_event(&r, "$create", "m.room.create", "", CREATOR, c, NULL,
                         NULL, 0);

    if (r.rv->room_id_from_create) {
        rid = mx_pstrndup(r.pool, "!create", 7);
        if (rid == NULL) {
            bench_oom();
        }

        r.room_id = rid;
    }

    auth[0] = r.rv->room_id_from_create ? NULL : create;
    cj = bench_event(&r, "$creator-join", "m.room.member", CREATOR, CREATOR,
                     bench_membership(&r, "join"), create, auth, 1);
    auth[1] = cj;
    pl = bench_event(&r, "$pl0", "m.room.power_levels", "", CREATOR,
                     bench_pl_content(&r, NULL), cj, auth, 2);
    auth[2] = pl;

    c = mx_json_object(r.pool);
    if (c == NULL || mx_json_set_str(r.pool, c, "join_rule", "public")) {
        bench_oom();
    }

    jr = bench_event(&r, "$jr", "m.room.join_rules", "", CREATOR, c, pl,
                     auth, 3);

    base = mx_state_create(r.pool, 8);
    if (base == NULL || mx_state_put(base, create) || mx_state_put(base, cj)
        || mx_state_put(base, pl) || mx_state_put(base, jr))
    {
        bench_oom();
    }

    a = bench_fork(&r, base, "a", n);
    b = bench_fork(&r, base, "b", n);
    res->build_s = bench_now() - t0;

    rpool = mx_pool_create(1 << 20);
    if (rpool == NULL) {
        bench_oom();
    }

    sets[0] = a;
    sets[1] = b;

    /* the best of a few runs, each from a fresh pool */
    for (i = 0; i < BENCH_RUNS; i++) {
        t0 = bench_now();

        if (mx_state_resolve(rpool, r.rv, sets, 2, bench_fetch, &r, &out)
            != 0)
        {
            bench_oom();
        }

        t0 = bench_now() - t0;

        if (i == 0 || t0 < res->resolve_s) {
            res->resolve_s = t0;
        }

        res->pool_bytes = mx_pool_used(rpool);
        res->state_size = mx_state_count(out);

        /* both sides' members, the creator, create, power levels, join
           rule */
        res->ok = res->state_size == (size_t) (2 * n + 4);

        mx_pool_destroy(rpool);
        rpool = mx_pool_create(1 << 20);
        if (rpool == NULL) {
            bench_oom();
        }
    }

    mx_pool_destroy(rpool);
    mx_pool_destroy(r.pool);
}


/* run one size in a child; its peak RSS comes back with wait4() */
static int
bench_child(const char *version, long n, bench_result_t *res)
{
    struct rusage  ru;
    pid_t          pid;
    int            fd[2], status;
    ssize_t        got;

    if (pipe(fd) != 0) {
        return -1;
    }

    pid = fork();
    if (pid < 0) {
        return -1;
    }

    if (pid == 0) {
        close(fd[0]);
        memset(res, 0, sizeof(*res));
        bench_run(version, n, res);
        got = write(fd[1], res, sizeof(*res));
        _exit(got == (ssize_t) sizeof(*res) ? 0 : 1);
    }

    close(fd[1]);
    got = read(fd[0], res, sizeof(*res));
    close(fd[0]);

    if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0 || got != (ssize_t) sizeof(*res))
    {
        return -1;
    }

    res->maxrss_kb = ru.ru_maxrss;

    return 0;
}


int
main(int argc, char **argv)
{
    bench_result_t   res;
    const char      *versions[16];
    long             sizes[16];
    size_t           nv, ns, i, k;
    double           prev;
    int              fail;

    nv = 0;
    ns = 0;

    for (i = 1; i < (size_t) argc; i++) {
        if (strcmp(argv[i], "-v") == 0 && i + 1 < (size_t) argc && nv < 16) {
            versions[nv++] = argv[++i];

        } else if (atol(argv[i]) > 0 && ns < 16) {
            sizes[ns++] = atol(argv[i]);

        } else {
            fprintf(stderr, "usage: state_res_bench [N ...] [-v VERSION ...]\n");
            return 2;
        }
    }

    if (nv == 0) {
        versions[nv++] = "10";
        versions[nv++] = "12";
    }

    if (ns == 0) {
        sizes[ns++] = 1000;
        sizes[ns++] = 10000;
        sizes[ns++] = 100000;
    }

    fail = 0;

    for (k = 0; k < nv; k++) {
        if (mx_room_version(versions[k], strlen(versions[k])) == NULL) {
            fprintf(stderr, "state_res_bench: unknown room version %s\n",
                    versions[k]);
            return 2;
        }

        printf("state resolution, room version %s: two forks of N joins"
               " and N/10 power levels changes each\n", versions[k]);
        printf("%9s %10s %11s %12s %12s %10s %8s\n", "N", "build s",
               "resolve s", "pool MB", "peak RSS MB", "state", "growth");
        prev = 0;

        for (i = 0; i < ns; i++) {
            if (bench_child(versions[k], sizes[i], &res) != 0) {
                printf("%9ld  failed\n", sizes[i]);
                fail = 1;
                continue;
            }

            if (prev > 0) {
                printf("%9ld %10.3f %11.3f %12.1f %12.1f %10zu %7.1fx%s\n",
                       sizes[i], res.build_s, res.resolve_s,
                       res.pool_bytes / 1048576.0, res.maxrss_kb / 1024.0,
                       res.state_size, res.resolve_s / prev,
                       res.ok ? "" : "  (unexpected state size)");
            } else {
                printf("%9ld %10.3f %11.3f %12.1f %12.1f %10zu %8s%s\n",
                       sizes[i], res.build_s, res.resolve_s,
                       res.pool_bytes / 1048576.0, res.maxrss_kb / 1024.0,
                       res.state_size, "-",
                       res.ok ? "" : "  (unexpected state size)");
            }

            prev = res.resolve_s;
            fail |= !res.ok;
        }

        printf("\n");
    }

    return fail;
}

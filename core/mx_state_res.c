/*
 * mx_state_res: state resolution v1, v2 and v2.1.  See mx_state_res.h.
 *
 * v2 and v2.1, as this file runs them:
 *
 *   state sets S1..Sn
 *     │ split by key                                  mx_sr_split()
 *     ├──► unconflicted state map   (same event in every set)
 *     └──► conflicted state set
 *   full auth chain of each set, counted per event    mx_sr_chains()
 *     └──► auth difference          (in some chains, not all)
 *   v2.1: conflicted state subgraph                   mx_sr_subgraph()
 *   full conflicted set = conflicted ∪ difference (∪ subgraph)
 *     │
 *     ├──► power events and their auth chain in the set,
 *     │    reverse topological power ordering (Kahn,  mx_sr_power_sort()
 *     │    a heap picks the smallest candidate)
 *     │    iterative auth checks from the unconflicted state (v2)
 *     │    or from the empty state (v2.1)             mx_sr_iterate()
 *     └──► everything else, mainline ordering on the
 *          resolved power levels                      mx_sr_mainline_sort()
 *          iterative auth checks
 *   unconflicted state map laid over the result
 *
 * Each event becomes one node in a hash table keyed by event ID; its auth
 * events are resolved to node pointers once.  Walks mark nodes with a
 * generation number instead of clearing sets.  Nothing recurses: deep auth
 * chains use explicit stacks.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "mx_idmap.h"
#include "mx_state_res.h"


#define MX_SR_CONFLICTED   0x01
#define MX_SR_FULL         0x02     /* in the full conflicted set */
#define MX_SR_POWER_SET    0x04     /* sorted in step 1 */
#define MX_SR_EDGES        0x08     /* auth[] resolved */
#define MX_SR_UNCONFLICTED 0x10     /* in the unconflicted chain */

#define MX_SR_UNKNOWN      (-2)
#define MX_SR_INFINITY     INT64_MAX


typedef struct mx_sr_node_s  mx_sr_node_t;

struct mx_sr_node_s {
    const mx_auth_event_t   *ev;        /* NULL: the callback had none */
    mx_sr_node_t           **auth;
    mx_sr_node_t           **children;  /* step 1 only */
    int64_t                  power;     /* step 1: the sender's level;
                                           step 3: mainline position */
    uint32_t                 n_auth;
    uint32_t                 n_children;
    uint32_t                 indeg;
    uint32_t                 seen;      /* walk generation */
    uint32_t                 set;       /* last set whose chain reached it */
    uint32_t                 chains;    /* sets whose chains reach it */
    int32_t                  mainline;  /* index in the mainline, or -1 */
    uint16_t                 flags;
    uint8_t                  dfs;       /* subgraph walk: 0, open, done */
    uint8_t                  leads;     /* reaches a conflicted event */
    int64_t                  position;  /* mainline position (memo) */
};

typedef struct {
    mx_sr_node_t           **v;
    size_t                   n;
    size_t                   cap;
} mx_sr_vec_t;

typedef struct {
    mx_pool_t                *pool;
    const mx_room_version_t  *rv;
    mx_state_res_fetch_pt     fetch;
    void                     *ctx;
    mx_idmap_t                nodes;
    uint32_t                  gen;
    const mx_auth_event_t    *create;   /* v12: the room's create event */
    int                       create_done;
    mx_sr_vec_t               conflicted;
    mx_sr_vec_t              *conf;     /* each set's conflicted events */
    mx_sr_vec_t               full;
    mx_sr_vec_t               stack;
} mx_sr_t;

/* what the iterative auth checks look entries up in */
typedef struct {
    mx_sr_t                  *r;
    mx_state_t               *state;
    mx_sr_node_t             *node;
} mx_sr_lookup_t;


/* --- nodes ------------------------------------------------------------------- */


static int
mx_sr_push(mx_pool_t *pool, mx_sr_vec_t *vec, mx_sr_node_t *x)
{
    mx_sr_node_t  **v;
    size_t          cap;

    if (vec->n == vec->cap) {
        cap = vec->cap ? vec->cap * 2 : 64;
        v = mx_palloc(pool, cap * sizeof(mx_sr_node_t *));
        if (v == NULL) {
            return -1;
        }

        if (vec->n) {
            memcpy(v, vec->v, vec->n * sizeof(mx_sr_node_t *));
        }

        vec->v = v;
        vec->cap = cap;
    }

    vec->v[vec->n++] = x;

    return 0;
}


/*
 * The node of an event ID, fetching the event the first time the ID is
 * seen; ev is the event when the caller already has it.  NULL only when
 * out of memory.
 */

static mx_sr_node_t *
mx_sr_node(mx_sr_t *r, const char *id, const mx_auth_event_t *ev)
{
    mx_sr_node_t  *x;
    void         **slot;
    int            created;

    slot = mx_idmap_slot(&r->nodes, id, &created);
    if (slot == NULL) {
        return NULL;
    }

    if (!created) {
        return *slot;
    }

    x = mx_pcalloc(r->pool, sizeof(mx_sr_node_t));
    if (x == NULL) {
        return NULL;
    }

    *slot = x;
    x->mainline = -1;
    x->position = MX_SR_UNKNOWN;
    x->ev = ev ? ev : r->fetch(r->ctx, id);

    return x;
}


/*
 * Nodes are visited in an order that has nothing to do with where they
 * lie in memory: ask for the node eight places ahead, and for the event of
 * the node four places ahead (its node has arrived by then).
 */

static void
mx_sr_prefetch(const mx_sr_vec_t *vec, size_t i)
{
    if (i + 8 < vec->n) {
        __builtin_prefetch(vec->v[i + 8]);
    }

    if (i + 4 < vec->n && vec->v[i + 4]->ev) {
        __builtin_prefetch(vec->v[i + 4]->ev);
        __builtin_prefetch(vec->v[i + 4]->ev->event_id);
    }
}


/* resolve a node's auth events to nodes, once; duplicates dropped */
static int
mx_sr_edges(mx_sr_t *r, mx_sr_node_t *x)
{
    mx_sr_node_t  *a;
    size_t         i, j, k;

    if (x->flags & MX_SR_EDGES) {
        return 0;
    }

    x->flags |= MX_SR_EDGES;

    if (x->ev == NULL || x->ev->n_auth == 0) {
        return 0;
    }

    x->auth = mx_palloc(r->pool, x->ev->n_auth * sizeof(mx_sr_node_t *));
    if (x->auth == NULL) {
        return -1;
    }

    k = 0;

    for (i = 0; i < x->ev->n_auth; i++) {
        a = mx_sr_node(r, x->ev->auth_events[i], NULL);
        if (a == NULL) {
            return -1;
        }

        if (a == x) {
            continue;
        }

        for (j = 0; j < k && x->auth[j] != a; j++) {
            /* void */
        }

        if (j == k) {
            x->auth[k++] = a;
        }
    }

    x->n_auth = (uint32_t) k;

    return 0;
}


/* the m.room.power_levels event among a node's auth events */
static mx_sr_node_t *
mx_sr_pl_of(mx_sr_t *r, mx_sr_node_t *x)
{
    size_t  i;

    if (mx_sr_edges(r, x) != 0) {
        return NULL;
    }

    for (i = 0; i < x->n_auth; i++) {
        if (x->auth[i]->ev
            && strcmp(x->auth[i]->ev->type, "m.room.power_levels") == 0
            && x->auth[i]->ev->state_key
            && x->auth[i]->ev->state_key[0] == '\0')
        {
            return x->auth[i];
        }
    }

    return NULL;
}


/*
 * v12: the room's create event, whose ID is the room ID with "$" for "!".
 * It is never among the auth events, so lookups that fall back to them
 * fall back to it instead.
 */

static const mx_auth_event_t *
mx_sr_room_create(mx_sr_t *r, const mx_auth_event_t *ev)
{
    char   *id;
    size_t  len;

    if (r->create_done || ev == NULL) {
        return r->create;
    }

    if (ev->room_id == NULL || ev->room_id[0] != '!') {
        return NULL;
    }

    r->create_done = 1;
    len = strlen(ev->room_id);

    id = mx_pstrndup(r->pool, ev->room_id, len);
    if (id == NULL) {
        return NULL;
    }

    id[0] = '$';
    r->create = r->fetch(r->ctx, id);

    return r->create;
}


static int
mx_sr_is_power(const mx_auth_event_t *ev)
{
    if (ev->state_key == NULL) {
        return 0;
    }

    if (strcmp(ev->type, "m.room.power_levels") == 0
        || strcmp(ev->type, "m.room.join_rules") == 0)
    {
        return ev->state_key[0] == '\0';
    }

    return strcmp(ev->type, "m.room.member") == 0
           && ev->membership != NULL
           && (strcmp(ev->membership, "leave") == 0
               || strcmp(ev->membership, "ban") == 0)
           && strcmp(ev->sender, ev->state_key) != 0;
}


static int
mx_sr_mark_full(mx_sr_t *r, mx_sr_node_t *x)
{
    if (x->ev == NULL || x->ev->state_key == NULL
        || (x->flags & MX_SR_FULL))
    {
        return 0;
    }

    x->flags |= MX_SR_FULL;

    return mx_sr_push(r->pool, &r->full, x);
}


/* --- conflicted and unconflicted ------------------------------------------------- */


/*
 * A key whose event is the same in every set is unconflicted; every event
 * of any other key is conflicted (a key missing from one set is conflicted
 * too).  Each key is hashed once, where it is first seen, and looked up in
 * the other sets with that hash.  The conflicted events of each set are
 * listed for mx_sr_chains().
 */

static int
mx_sr_split(mx_sr_t *r, const mx_state_t *const *sets, size_t n,
    mx_state_t *unconflicted)
{
    const mx_auth_event_t  *e, *o, *found[64], **fv;
    mx_sr_node_t           *x;
    uint64_t                h;
    size_t                  i, j, k, it;
    int                     same;

    r->conf = mx_pcalloc(r->pool, n * sizeof(mx_sr_vec_t));
    fv = n <= 64 ? found : mx_palloc(r->pool, n * sizeof(*fv));
    if (r->conf == NULL || fv == NULL) {
        return -1;
    }

    for (i = 0; i < n; i++) {
        it = 0;

        while ((e = mx_state_next_hash(sets[i], &it, &h)) != NULL) {

            /* a key seen in an earlier set was handled there */
            for (k = 0; k < i; k++) {
                if (mx_state_get_hash(sets[k], e->type, e->state_key, h)) {
                    break;
                }
            }

            if (k < i) {
                continue;
            }

            same = (i == 0);
            fv[i] = e;

            for (j = i + 1; j < n; j++) {
                o = mx_state_get_hash(sets[j], e->type, e->state_key, h);
                fv[j] = o;
                same = same && o && strcmp(o->event_id, e->event_id) == 0;
            }

            if (same) {
                if (mx_state_put(unconflicted, e) != 0) {
                    return -1;
                }

                continue;
            }

            for (j = i; j < n; j++) {
                o = fv[j];
                if (o == NULL) {
                    continue;
                }

                x = mx_sr_node(r, o->event_id, o);
                if (x == NULL || mx_sr_push(r->pool, &r->conf[j], x) != 0) {
                    return -1;
                }

                if (!(x->flags & MX_SR_CONFLICTED)) {
                    x->flags |= MX_SR_CONFLICTED;

                    if (mx_sr_push(r->pool, &r->conflicted, x) != 0
                        || mx_sr_mark_full(r, x) != 0)
                    {
                        return -1;
                    }
                }
            }
        }
    }

    return 0;
}


/*
 * Walk auth_events from the nodes on the stack.  mark: nodes already
 * carrying it are not walked again; counting: each newly reached node
 * counts one more chain.  Nodes in the chain of the unconflicted state
 * stop a counting walk, their ancestors being there too.
 */

static int
mx_sr_walk(mx_sr_t *r, uint32_t mark, int counting)
{
    mx_sr_node_t  *x, *a;
    size_t         j;

    while (r->stack.n) {
        x = r->stack.v[--r->stack.n];

        if (r->stack.n > 8) {
            __builtin_prefetch(r->stack.v[r->stack.n - 8]);
            __builtin_prefetch(r->stack.v[r->stack.n - 4]->ev);
        }

        if (mx_sr_edges(r, x) != 0) {
            return -1;
        }

        for (j = 0; j < x->n_auth; j++) {
            a = x->auth[j];

            if (counting) {
                if (a->set == mark || (a->flags & MX_SR_UNCONFLICTED)) {
                    continue;
                }

                a->set = mark;
                a->chains++;

            } else {
                if (a->flags & MX_SR_UNCONFLICTED) {
                    continue;
                }

                a->flags |= MX_SR_UNCONFLICTED;
            }

            if (mx_sr_push(r->pool, &r->stack, a) != 0) {
                return -1;
            }
        }
    }

    return 0;
}


/*
 * The auth difference.  The full auth chain of set i is the chain U of the
 * unconflicted state's events together with the chain of set i's
 * conflicted events.  U lies in every set's chain, so the auth difference
 * is every event outside U that the conflicted events of some sets reach
 * but not those of all: one walk marks U, one walk per set counts, and
 * the counting walks stop where U begins.
 *
 *   S1: u1 u2 c1        chain(S1) = U ∪ chain(c1)
 *   S2: u1 u2 c2        chain(S2) = U ∪ chain(c2)
 *   difference = (chain(c1) ∪ chain(c2)) − U − (chain(c1) ∩ chain(c2))
 */

static int
mx_sr_chains(mx_sr_t *r, const mx_state_t *unconflicted, size_t n)
{
    const mx_auth_event_t  *e;
    mx_sr_node_t           *x;
    size_t                  i, it, s;

    r->stack.n = 0;
    it = 0;

    while ((e = mx_state_next(unconflicted, &it)) != NULL) {
        x = mx_sr_node(r, e->event_id, e);
        if (x == NULL || mx_sr_push(r->pool, &r->stack, x) != 0) {
            return -1;
        }
    }

    if (mx_sr_walk(r, 0, 0) != 0) {
        return -1;
    }

    for (s = 0; s < n; s++) {
        r->stack.n = 0;

        for (i = 0; i < r->conf[s].n; i++) {
            if (mx_sr_push(r->pool, &r->stack, r->conf[s].v[i]) != 0) {
                return -1;
            }
        }

        if (mx_sr_walk(r, (uint32_t) s + 1, 1) != 0) {
            return -1;
        }
    }

    for (i = 0; i < r->nodes.cap; i++) {
        x = r->nodes.slots[i].value;

        if (r->nodes.slots[i].key && x->chains > 0 && x->chains < n
            && !(x->flags & MX_SR_UNCONFLICTED))
        {
            if (mx_sr_mark_full(r, x) != 0) {
                return -1;
            }
        }
    }

    return 0;
}


/*
 * v2.1: the conflicted state subgraph, every event on an auth_events path
 * from one conflicted event to another.  A post-order walk from the
 * conflicted events computes, for each event it reaches, whether it leads
 * on to a conflicted event; those that do are on such a path.
 *
 *   C1 ──► a ──► b ──► C2        a, b: in the subgraph
 *          └──► d                d: reached, leads nowhere: not
 */

static int
mx_sr_subgraph(mx_sr_t *r)
{
    mx_sr_node_t  *x, *a;
    size_t        *idx, *nidx, depth, cap, i, c;

    cap = 64;
    idx = mx_palloc(r->pool, cap * sizeof(size_t));
    if (idx == NULL) {
        return -1;
    }

    for (c = 0; c < r->conflicted.n; c++) {
        x = r->conflicted.v[c];

        if (x->dfs) {
            continue;
        }

        x->dfs = 1;
        r->stack.n = 0;

        if (mx_sr_push(r->pool, &r->stack, x) != 0) {
            return -1;
        }

        idx[0] = 0;

        while (r->stack.n) {
            depth = r->stack.n - 1;
            x = r->stack.v[depth];

            if (mx_sr_edges(r, x) != 0) {
                return -1;
            }

            if (idx[depth] < x->n_auth) {
                a = x->auth[idx[depth]++];

                if (a->dfs) {
                    continue;
                }

                a->dfs = 1;

                if (mx_sr_push(r->pool, &r->stack, a) != 0) {
                    return -1;
                }

                if (r->stack.n > cap) {
                    nidx = mx_palloc(r->pool, 2 * cap * sizeof(size_t));
                    if (nidx == NULL) {
                        return -1;
                    }

                    memcpy(nidx, idx, cap * sizeof(size_t));
                    idx = nidx;
                    cap *= 2;
                }

                idx[r->stack.n - 1] = 0;
                continue;
            }

            /* every auth event done: does x lead to a conflicted event? */
            for (i = 0; i < x->n_auth; i++) {
                a = x->auth[i];

                if ((a->flags & MX_SR_CONFLICTED) || a->leads) {
                    x->leads = 1;
                    break;
                }
            }

            x->dfs = 2;
            r->stack.n--;

            if (x->leads && mx_sr_mark_full(r, x) != 0) {
                return -1;
            }
        }
    }

    return 0;
}


/* --- step 1: power events, reverse topological power ordering -------------- */


/*
 * x < y: the greater sender power level first, then the smaller
 * origin_server_ts, then the smaller event ID.
 */

static int
mx_sr_power_less(const mx_sr_node_t *x, const mx_sr_node_t *y)
{
    if (x->power != y->power) {
        return x->power > y->power;
    }

    if (x->ev->origin_server_ts != y->ev->origin_server_ts) {
        return x->ev->origin_server_ts < y->ev->origin_server_ts;
    }

    return strcmp(x->ev->event_id, y->ev->event_id) < 0;
}


static void
mx_sr_heap_up(mx_sr_node_t **h, size_t i)
{
    mx_sr_node_t  *t;

    while (i > 0 && mx_sr_power_less(h[i], h[(i - 1) / 2])) {
        t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}


static void
mx_sr_heap_down(mx_sr_node_t **h, size_t n, size_t i)
{
    mx_sr_node_t  *t;
    size_t         l, m;

    for ( ;; ) {
        l = 2 * i + 1;
        m = i;

        if (l < n && mx_sr_power_less(h[l], h[m])) {
            m = l;
        }

        if (l + 1 < n && mx_sr_power_less(h[l + 1], h[m])) {
            m = l + 1;
        }

        if (m == i) {
            return;
        }

        t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}


/* the sender's power level as the event's own auth events give it */
static int64_t
mx_sr_sender_power(mx_sr_t *r, mx_sr_node_t *x)
{
    const mx_auth_event_t  *pl, *create, *a;
    size_t                  i;

    pl = NULL;
    create = NULL;

    for (i = 0; i < x->n_auth; i++) {
        a = x->auth[i]->ev;

        if (a == NULL || a->state_key == NULL || a->state_key[0] != '\0') {
            continue;
        }

        if (strcmp(a->type, "m.room.power_levels") == 0) {
            pl = a;

        } else if (strcmp(a->type, "m.room.create") == 0) {
            create = a;
        }
    }

    if (r->rv->room_id_from_create) {
        create = mx_sr_room_create(r, x->ev);
    }

    return mx_auth_user_level(r->rv, create, pl, x->ev->sender);
}


/*
 * The power events of the full conflicted set and the events of their auth
 * chains that are in the set too, sorted by Kahn's algorithm over the
 * auth_events edges between them, a heap choosing the smallest candidate.
 * The nodes land in *out, earliest first.
 */

static int
mx_sr_power_sort(mx_sr_t *r, mx_sr_vec_t *out)
{
    mx_sr_vec_t    xs;
    mx_sr_node_t  *x, *a, **heap;
    size_t         i, j, hn;

    memset(&xs, 0, sizeof(xs));
    r->gen++;
    r->stack.n = 0;

    for (i = 0; i < r->full.n; i++) {
        x = r->full.v[i];

        if (mx_sr_is_power(x->ev)) {
            x->seen = r->gen;
            x->flags |= MX_SR_POWER_SET;

            if (mx_sr_push(r->pool, &xs, x) != 0
                || mx_sr_push(r->pool, &r->stack, x) != 0)
            {
                return -1;
            }
        }
    }

    /* their auth chains, keeping what is in the full conflicted set */
    while (r->stack.n) {
        x = r->stack.v[--r->stack.n];

        if (mx_sr_edges(r, x) != 0) {
            return -1;
        }

        for (j = 0; j < x->n_auth; j++) {
            a = x->auth[j];

            if (a->seen == r->gen) {
                continue;
            }

            a->seen = r->gen;

            if ((a->flags & MX_SR_FULL) && !(a->flags & MX_SR_POWER_SET)) {
                a->flags |= MX_SR_POWER_SET;

                if (mx_sr_push(r->pool, &xs, a) != 0) {
                    return -1;
                }
            }

            if (mx_sr_push(r->pool, &r->stack, a) != 0) {
                return -1;
            }
        }
    }

    /* edges a -> x for each auth event a of x inside the set */
    for (i = 0; i < xs.n; i++) {
        x = xs.v[i];
        x->power = mx_sr_sender_power(r, x);

        for (j = 0; j < x->n_auth; j++) {
            if (x->auth[j]->flags & MX_SR_POWER_SET) {
                x->indeg++;
                x->auth[j]->n_children++;
            }
        }
    }

    for (i = 0; i < xs.n; i++) {
        x = xs.v[i];

        if (x->n_children) {
            x->children = mx_palloc(r->pool,
                                    x->n_children * sizeof(mx_sr_node_t *));
            if (x->children == NULL) {
                return -1;
            }

            x->n_children = 0;
        }
    }

    for (i = 0; i < xs.n; i++) {
        x = xs.v[i];

        for (j = 0; j < x->n_auth; j++) {
            a = x->auth[j];

            if (a->flags & MX_SR_POWER_SET) {
                a->children[a->n_children++] = x;
            }
        }
    }

    heap = mx_palloc(r->pool, (xs.n + 1) * sizeof(mx_sr_node_t *));
    if (heap == NULL) {
        return -1;
    }

    hn = 0;

    for (i = 0; i < xs.n; i++) {
        if (xs.v[i]->indeg == 0) {
            heap[hn] = xs.v[i];
            mx_sr_heap_up(heap, hn++);
        }
    }

    while (hn) {
        x = heap[0];
        heap[0] = heap[--hn];
        mx_sr_heap_down(heap, hn, 0);

        if (mx_sr_push(r->pool, out, x) != 0) {
            return -1;
        }

        for (j = 0; j < x->n_children; j++) {
            a = x->children[j];

            if (--a->indeg == 0) {
                heap[hn] = a;
                mx_sr_heap_up(heap, hn++);
            }
        }
    }

    /* a cycle (never in a valid DAG) leaves events out: they stay out */

    return 0;
}


/* --- iterative auth checks ---------------------------------------------------- */


/*
 * A key the rules ask for comes from the partial state; failing that from
 * the event's own auth events, unless rejected; in v12, the create event
 * comes from the room ID.
 */

static const mx_auth_event_t *
mx_sr_lookup(void *ctx, const char *type, const char *state_key)
{
    mx_sr_lookup_t         *l;
    const mx_auth_event_t  *e;
    size_t                  i;

    l = ctx;

    e = mx_state_get(l->state, type, state_key);
    if (e) {
        return e;
    }

    for (i = 0; i < l->node->n_auth; i++) {
        e = l->node->auth[i]->ev;

        if (e && !e->rejected && e->state_key
            && strcmp(e->type, type) == 0
            && strcmp(e->state_key, state_key) == 0)
        {
            return e;
        }
    }

    if (l->r->rv->room_id_from_create
        && strcmp(type, "m.room.create") == 0 && state_key[0] == '\0')
    {
        return mx_sr_room_create(l->r, l->node->ev);
    }

    return NULL;
}


static int
mx_sr_iterate(mx_sr_t *r, mx_state_t *state, mx_sr_vec_t *list)
{
    mx_sr_lookup_t  l;
    const char     *reason;
    size_t          i;
    int             rc;

    l.r = r;
    l.state = state;

    for (i = 0; i < list->n; i++) {
        l.node = list->v[i];
        mx_sr_prefetch(list, i);

        if (mx_sr_edges(r, l.node) != 0) {
            return -1;
        }

        rc = mx_auth_check_lookup(r->pool, r->rv, l.node->ev, mx_sr_lookup,
                                  &l, &reason);
        if (rc == MX_AUTH_ERROR) {
            return -1;
        }

        if (rc == MX_AUTH_ALLOW && mx_state_put(state, l.node->ev) != 0) {
            return -1;
        }
    }

    return 0;
}


/* --- step 3: mainline ordering ------------------------------------------------- */


/*
 * The mainline position of e: follow the power levels events named in
 * auth_events from e until one is on the mainline.  Every power levels
 * event passed on the way gets the same answer, so each is walked once.
 *
 *   mainline   P0 ◄── P1 ◄── P2            (P0: the resolved one)
 *                      ▲
 *   e ──► q1 ──► q2 ───┘                   position(e) = 1
 */

static int64_t
mx_sr_position(mx_sr_t *r, mx_sr_node_t *e)
{
    mx_sr_node_t  *p;
    int64_t        pos;
    size_t         i;

    r->stack.n = 0;
    r->gen++;
    pos = MX_SR_INFINITY;
    p = mx_sr_pl_of(r, e);

    while (p && p->seen != r->gen) {
        if (p->mainline >= 0) {
            pos = p->mainline;
            break;
        }

        if (p->position != MX_SR_UNKNOWN) {
            pos = p->position;
            break;
        }

        p->seen = r->gen;

        if (mx_sr_push(r->pool, &r->stack, p) != 0) {
            return MX_SR_UNKNOWN;
        }

        p = mx_sr_pl_of(r, p);
    }

    for (i = 0; i < r->stack.n; i++) {
        r->stack.v[i]->position = pos;
    }

    return pos;
}


/* what the mainline ordering compares, kept together for the sort */
typedef struct {
    int64_t                  position;
    int64_t                  ts;
    const char              *id;
    mx_sr_node_t            *node;
} mx_sr_key_t;


static int
mx_sr_mainline_cmp(const void *a, const void *b)
{
    const mx_sr_key_t  *x, *y;

    x = a;
    y = b;

    /* the greater mainline position first */
    if (x->position != y->position) {
        return x->position > y->position ? -1 : 1;
    }

    if (x->ts != y->ts) {
        return x->ts < y->ts ? -1 : 1;
    }

    return strcmp(x->id, y->id);
}


/*
 * The events of the full conflicted set not sorted in step 1, ordered by
 * mainline position on the power levels event of the partial state.
 */

static int
mx_sr_mainline_sort(mx_sr_t *r, mx_state_t *partial, mx_sr_vec_t *out)
{
    const mx_auth_event_t  *pl;
    mx_sr_node_t           *p, *x;
    mx_sr_key_t            *keys;
    int32_t                 idx;
    size_t                  i, k;

    pl = mx_state_get(partial, "m.room.power_levels", "");
    p = pl ? mx_sr_node(r, pl->event_id, pl) : NULL;
    idx = 0;

    while (p && p->mainline < 0) {
        p->mainline = idx++;
        p = mx_sr_pl_of(r, p);
    }

    keys = mx_palloc(r->pool, (r->full.n + 1) * sizeof(mx_sr_key_t));
    if (keys == NULL) {
        return -1;
    }

    k = 0;

    for (i = 0; i < r->full.n; i++) {
        x = r->full.v[i];
        mx_sr_prefetch(&r->full, i);

        if (x->flags & MX_SR_POWER_SET) {
            continue;
        }

        keys[k].position = mx_sr_position(r, x);
        if (keys[k].position == MX_SR_UNKNOWN) {
            return -1;
        }

        keys[k].ts = x->ev->origin_server_ts;
        keys[k].id = x->ev->event_id;
        keys[k].node = x;
        k++;
    }

    if (k > 1) {
        qsort(keys, k, sizeof(mx_sr_key_t), mx_sr_mainline_cmp);
    }

    for (i = 0; i < k; i++) {
        if (mx_sr_push(r->pool, out, keys[i].node) != 0) {
            return -1;
        }
    }

    return 0;
}


/* --- v2 and v2.1 --------------------------------------------------------------- */


static int
mx_sr_v2(mx_sr_t *r, const mx_state_t *const *sets, size_t n,
    mx_state_t **out)
{
    mx_state_t              *unconflicted, *partial;
    mx_sr_vec_t              power, rest;
    const mx_auth_event_t   *e;
    size_t                   it, hint;

    hint = 0;

    for (it = 0; it < n; it++) {
        hint += mx_state_count(sets[it]);
    }

    if (mx_idmap_init(&r->nodes, r->pool, hint) != 0) {
        return -1;
    }

    unconflicted = mx_state_create(r->pool, n ? mx_state_count(sets[0]) : 0);
    if (unconflicted == NULL) {
        return -1;
    }

    if (mx_sr_split(r, sets, n, unconflicted) != 0
        || mx_sr_chains(r, unconflicted, n) != 0)
    {
        return -1;
    }

    if (r->rv->state_res == MX_STATE_RES_V2_1 && mx_sr_subgraph(r) != 0) {
        return -1;
    }

    memset(&power, 0, sizeof(power));
    memset(&rest, 0, sizeof(rest));

    if (mx_sr_power_sort(r, &power) != 0) {
        return -1;
    }

    if (r->rv->state_res == MX_STATE_RES_V2_1) {
        partial = mx_state_create(r->pool, r->full.n);

    } else {
        partial = mx_state_create(r->pool,
                                  mx_state_count(unconflicted) + r->full.n);
        it = 0;

        while (partial && (e = mx_state_next(unconflicted, &it)) != NULL) {
            if (mx_state_put(partial, e) != 0) {
                return -1;
            }
        }
    }

    if (partial == NULL
        || mx_sr_iterate(r, partial, &power) != 0
        || mx_sr_mainline_sort(r, partial, &rest) != 0
        || mx_sr_iterate(r, partial, &rest) != 0)
    {
        return -1;
    }

    it = 0;

    while ((e = mx_state_next(unconflicted, &it)) != NULL) {
        if (mx_state_put(partial, e) != 0) {
            return -1;
        }
    }

    *out = partial;

    return 0;
}


/* --- v1 ----------------------------------------------------------------------- */

typedef struct {
    const mx_auth_event_t   *ev;
    unsigned char            sha1[SHA_DIGEST_LENGTH];
} mx_sr_v1_t;


static int
mx_sr_v1_key_cmp(const void *a, const void *b)
{
    const mx_sr_v1_t  *x, *y;
    int                rc;

    x = a;
    y = b;

    rc = strcmp(x->ev->type, y->ev->type);
    if (rc == 0) {
        rc = strcmp(x->ev->state_key, y->ev->state_key);
    }

    return rc ? rc : strcmp(x->ev->event_id, y->ev->event_id);
}


/* ascending depth, then descending sha1(event_id) */
static int
mx_sr_v1_auth_cmp(const void *a, const void *b)
{
    const mx_sr_v1_t  *x, *y;

    x = a;
    y = b;

    if (x->ev->depth != y->ev->depth) {
        return x->ev->depth < y->ev->depth ? -1 : 1;
    }

    return -memcmp(x->sha1, y->sha1, SHA_DIGEST_LENGTH);
}


/* descending depth, then ascending sha1(event_id) */
static int
mx_sr_v1_other_cmp(const void *a, const void *b)
{
    return mx_sr_v1_auth_cmp(b, a);
}


static int
mx_sr_v1_rank(const mx_auth_event_t *ev)
{
    if (strcmp(ev->type, "m.room.power_levels") == 0
        && ev->state_key[0] == '\0')
    {
        return 0;
    }

    if (strcmp(ev->type, "m.room.join_rules") == 0
        && ev->state_key[0] == '\0')
    {
        return 1;
    }

    return strcmp(ev->type, "m.room.member") == 0 ? 2 : 3;
}


/*
 * One conflicted key, v1: power levels, join rules and memberships start
 * from the earliest event and take later ones while they pass auth in R;
 * any other key takes the latest event that passes auth in R.
 */

static int
mx_sr_v1_key(mx_sr_t *r, mx_state_t *R, mx_sr_v1_t *g, size_t n)
{
    size_t  i;
    int     rc;

    if (mx_sr_v1_rank(g[0].ev) < 3) {
        qsort(g, n, sizeof(mx_sr_v1_t), mx_sr_v1_auth_cmp);

        if (mx_state_put(R, g[0].ev) != 0) {
            return -1;
        }

        for (i = 1; i < n; i++) {
            rc = mx_auth_check(r->pool, r->rv, g[i].ev, R, NULL);
            if (rc == MX_AUTH_ERROR) {
                return -1;
            }

            if (rc != MX_AUTH_ALLOW) {
                break;
            }

            if (mx_state_put(R, g[i].ev) != 0) {
                return -1;
            }
        }

        return 0;
    }

    qsort(g, n, sizeof(mx_sr_v1_t), mx_sr_v1_other_cmp);

    for (i = 0; i < n; i++) {
        rc = mx_auth_check(r->pool, r->rv, g[i].ev, R, NULL);
        if (rc == MX_AUTH_ERROR) {
            return -1;
        }

        if (rc == MX_AUTH_ALLOW) {
            return mx_state_put(R, g[i].ev);
        }
    }

    return 0;
}


/*
 * Room version 1.  R starts as the union of the sets without the keys
 * where they disagree; then the disagreeing keys are settled, power levels
 * first, then join rules, then memberships, then the rest.
 */

static int
mx_sr_v1(mx_sr_t *r, const mx_state_t *const *sets, size_t n,
    mx_state_t **out)
{
    const mx_auth_event_t   *e;
    mx_sr_v1_t              *all, *g;
    mx_state_t              *R;
    size_t                   total, k, i, j, it, rank, s;

    total = 0;

    for (s = 0; s < n; s++) {
        total += mx_state_count(sets[s]);
    }

    all = mx_palloc(r->pool, (total + 1) * sizeof(mx_sr_v1_t));
    R = mx_state_create(r->pool, total);
    if (all == NULL || R == NULL || mx_idmap_init(&r->nodes, r->pool, total))
    {
        return -1;
    }

    k = 0;

    for (s = 0; s < n; s++) {
        it = 0;

        while ((e = mx_state_next(sets[s], &it)) != NULL) {
            if (mx_idmap_get(&r->nodes, e->event_id)) {
                continue;
            }

            if (mx_idmap_put(&r->nodes, e->event_id, (void *) e) != 0) {
                return -1;
            }

            all[k].ev = e;
            SHA1((const unsigned char *) e->event_id, strlen(e->event_id),
                 all[k].sha1);
            k++;
        }
    }

    qsort(all, k, sizeof(mx_sr_v1_t), mx_sr_v1_key_cmp);

    /* keys with one event go straight into R */
    for (i = 0; i < k; i = j) {
        for (j = i + 1; j < k
             && strcmp(all[j].ev->type, all[i].ev->type) == 0
             && strcmp(all[j].ev->state_key, all[i].ev->state_key) == 0;
             j++)
        {
            /* void */
        }

        if (j - i == 1 && mx_state_put(R, all[i].ev) != 0) {
            return -1;
        }
    }

    for (rank = 0; rank < 4; rank++) {
        for (i = 0; i < k; i = j) {
            for (j = i + 1; j < k
                 && strcmp(all[j].ev->type, all[i].ev->type) == 0
                 && strcmp(all[j].ev->state_key, all[i].ev->state_key) == 0;
                 j++)
            {
                /* void */
            }

            g = &all[i];

            if (j - i > 1 && (size_t) mx_sr_v1_rank(g[0].ev) == rank
                && mx_sr_v1_key(r, R, g, j - i) != 0)
            {
                return -1;
            }
        }
    }

    *out = R;

    return 0;
}


int
mx_state_resolve(mx_pool_t *pool, const mx_room_version_t *rv,
    const mx_state_t *const *sets, size_t n, mx_state_res_fetch_pt fetch,
    void *ctx, mx_state_t **out)
{
    mx_sr_t  r;

    memset(&r, 0, sizeof(r));
    r.pool = pool;
    r.rv = rv;
    r.fetch = fetch;
    r.ctx = ctx;

    if (rv->state_res == MX_STATE_RES_V1) {
        return mx_sr_v1(&r, sets, n, out);
    }

    return mx_sr_v2(&r, sets, n, out);
}


mx_state_t *
mx_state_from_ids(mx_pool_t *pool, const char *const *ids, size_t n,
    mx_state_res_fetch_pt fetch, void *ctx, const char **missing)
{
    const mx_auth_event_t  *e;
    mx_state_t             *s;
    size_t                  i;

    *missing = NULL;

    s = mx_state_create(pool, n);
    if (s == NULL) {
        return NULL;
    }

    for (i = 0; i < n; i++) {
        e = fetch(ctx, ids[i]);

        if (e == NULL || e->state_key == NULL) {
            *missing = ids[i];
            return NULL;
        }

        if (mx_state_put(s, e) != 0) {
            return NULL;
        }
    }

    return s;
}

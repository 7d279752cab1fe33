/*
 * The keys a remote join needs, between send_join and the join_state
 * entry (ngx_matrix_fedjoin_out.c).  The state and auth chain of a room
 * on a big server hold events of hundreds of servers; the roomserver
 * verifies them from the key cache alone, so every key they need is got
 * first, all at once:
 *
 *   every event of state and auth_chain: the servers whose signatures it
 *   needs (mx_event_signers: the sender's; the event ID's in v1, v2; the
 *   authorising server of a restricted join), the key IDs each signed
 *   with, the time each key must be valid at (origin_server_ts from room
 *   version 5 on, any time before)
 *        │ sorted: one entry per server and key ID, the latest time
 *   XADD mx:fedjobs kind=keys_many servers key_ids valid_at notary (the
 *        │ resident) timeout ─► the fedsender (workers/fedsender_keys.c):
 *        │ the cache, else the servers' own key responses side by side,
 *        │ else the resident as notary; answered within the timeout
 *   next(mr, {"ok":true,"failed":[...]}, or NULL past the wait)
 *
 * Servers whose keys were not had are only logged here: the roomserver
 * drops the events it cannot verify, and fails the join only when the
 * join needs one of them (roomserver_join.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_event.h>
#include <mx_ids.h>
#include <mx_room_version.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


/* the fedsender's bound for the whole step, and the wait for its answer */
#define NGX_MATRIX_JOINKEYS_TIMEOUT  "12000"
#define NGX_MATRIX_JOINKEYS_WAIT     15000

#define NGX_MATRIX_JOINKEYS_MAX      4096     /* entries of the job */
#define NGX_MATRIX_JOINKEYS_ID_MAX   128


typedef struct {
    const char  *server;
    const char  *key_id;
    int64_t      at;
} ngx_matrix_joinkey_t;


static int ngx_libc_cdecl
ngx_matrix_joinkey_cmp(const void *one, const void *two)
{
    const ngx_matrix_joinkey_t  *a = one, *b = two;
    int                          rc;

    rc = ngx_strcmp(a->server, b->server);

    return rc ? rc : ngx_strcmp(a->key_id, b->key_id);
}


/* a key ID fit for the job's space-separated list */

static ngx_uint_t
ngx_matrix_joinkey_id_ok(const char *id)
{
    size_t  i;

    if (ngx_strncmp(id, "ed25519:", 8) != 0) {
        return 0;
    }

    for (i = 0; id[i]; i++) {
        if ((u_char) id[i] <= ' ' || i == NGX_MATRIX_JOINKEYS_ID_MAX) {
            return 0;
        }
    }

    return 1;
}


/* the signatures ev needs, onto keys */

static ngx_int_t
ngx_matrix_joinkey_event(ngx_matrix_req_t *mr, const mx_room_version_t *rv,
    mx_json_t *ev, ngx_array_t *keys)
{
    mx_pool_t             *pool;
    mx_json_t             *sigs;
    ngx_matrix_joinkey_t  *k;
    const char            *signers[3];
    int64_t                ts;
    size_t                 n, i, j;

    pool = ngx_matrix_pool(mr);

    if (!mx_json_is(ev, MX_JSON_OBJECT)) {
        return NGX_OK;              /* the roomserver refuses it */
    }

    if (mx_json_get_int(ev, "origin_server_ts", &ts) != 0 || ts < 1) {
        ts = 1;
    }

    n = mx_event_signers(pool, ev, rv, signers);

    for (i = 0; i < n; i++) {
        if (ngx_strcmp(signers[i], mr->mcf->server_name.data) == 0
            || !mx_server_name_valid(signers[i], ngx_strlen(signers[i])))
        {
            continue;
        }

        sigs = mx_json_get_obj(mx_json_get_obj(ev, "signatures"),
                               signers[i]);

        for (j = 0; sigs && j < sigs->u.o.n; j++) {
            if (!ngx_matrix_joinkey_id_ok(sigs->u.o.m[j].key)) {
                continue;
            }

            k = ngx_array_push(keys);
            if (k == NULL) {
                return NGX_ERROR;
            }

            k->server = signers[i];
            k->key_id = sigs->u.o.m[j].key;

            /* before version 5 any key the server had signs for ever */
            k->at = rv->key_validity ? ts : 1;
        }
    }

    return NGX_OK;
}


/*
 * The keys of the events of answer's state and auth_chain (send_join's
 * body) into the cache, notary the server joined through; the request
 * parks until next(mr, answer) (NULL: no answer in time).  req receives
 * the waiter's number.
 */

ngx_int_t
ngx_matrix_fed_join_keys(ngx_matrix_req_t *mr, const mx_room_version_t *rv,
    mx_json_t *answer, ngx_str_t *notary, ngx_str_t *req,
    ngx_matrix_wait_pt next)
{
    ngx_array_t            keys;
    ngx_matrix_joinkey_t  *k, *last;
    ngx_matrix_cmd_t       c;
    mx_json_t             *list;
    u_char                *servers, *ids, *ats, *ps, *pi, *pa;
    size_t                 ls, li, n;
    ngx_uint_t             i, l;
    static const char     *lists[] = { "state", "auth_chain" };

    if (ngx_array_init(&keys, mr->r->pool, 256, sizeof(ngx_matrix_joinkey_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (l = 0; l < 2; l++) {
        list = mx_json_get_arr(answer, lists[l]);

        for (i = 0; list && i < list->u.a.n; i++) {
            if (ngx_matrix_joinkey_event(mr, rv, list->u.a.v[i], &keys)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    ngx_qsort(keys.elts, keys.nelts, sizeof(ngx_matrix_joinkey_t),
              ngx_matrix_joinkey_cmp);

    /* one entry per server and key ID, valid at the latest time asked */
    k = keys.elts;
    last = NULL;
    ls = 0;
    li = 0;
    n = 0;

    for (i = 0; i < keys.nelts; i++) {
        if (last && ngx_matrix_joinkey_cmp(last, &k[i]) == 0) {
            last->at = ngx_max(last->at, k[i].at);
            k[i].server = NULL;
            continue;
        }

        last = &k[i];
        ls += ngx_strlen(k[i].server) + 1;
        li += ngx_strlen(k[i].key_id) + 1;
        n++;
    }

    servers = ngx_pnalloc(mr->r->pool, ls + 1);
    ids = ngx_pnalloc(mr->r->pool, li + 1);
    ats = ngx_pnalloc(mr->r->pool, n * (NGX_INT64_LEN + 1) + 1);
    if (servers == NULL || ids == NULL || ats == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ps = servers;
    pi = ids;
    pa = ats;

    for (i = 0, n = 0; i < keys.nelts && n < NGX_MATRIX_JOINKEYS_MAX; i++) {
        if (k[i].server == NULL) {
            continue;
        }

        if (n++) {
            *ps++ = ' ';
            *pi++ = ' ';
            *pa++ = ' ';
        }

        ps = ngx_cpymem(ps, k[i].server, ngx_strlen(k[i].server));
        pi = ngx_cpymem(pi, k[i].key_id, ngx_strlen(k[i].key_id));
        pa = ngx_sprintf(pa, "%L", k[i].at);
    }

    if (ngx_matrix_wait(mr, NGX_MATRIX_JOINKEYS_WAIT, next, req) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_job_init(&c, "keys_many", req);
    ngx_matrix_cmd_cstr(&c, "servers");
    ngx_matrix_cmd_add(&c, servers, ps - servers);
    ngx_matrix_cmd_cstr(&c, "key_ids");
    ngx_matrix_cmd_add(&c, ids, pi - ids);
    ngx_matrix_cmd_cstr(&c, "valid_at");
    ngx_matrix_cmd_add(&c, ats, pa - ats);
    ngx_matrix_cmd_cstr(&c, "notary");
    ngx_matrix_cmd_str(&c, notary);
    ngx_matrix_cmd_cstr(&c, "timeout");
    ngx_matrix_cmd_cstr(&c, NGX_MATRIX_JOINKEYS_TIMEOUT);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_job_queued);
}


/* the fedsender's answer: the servers whose keys were not had, logged */

void
ngx_matrix_fed_join_keys_done(ngx_matrix_req_t *mr, ngx_str_t *answer,
    ngx_str_t *server)
{
    mx_json_t        *v, *failed;
    mx_json_error_t   err;
    const char       *s;
    size_t            i;

    if (answer == NULL) {
        ngx_log_error(NGX_LOG_WARN, mr->r->connection->log, 0,
                      "joining through %V: the fedsender did not answer the"
                      " keys job in time", server);
        return;
    }

    v = mx_json_parse(ngx_matrix_pool(mr), (char *) answer->data,
                      answer->len, &err);
    failed = mx_json_get_arr(v, "failed");

    if (failed == NULL) {
        s = mx_json_get_str(v, "error", NULL);
        ngx_log_error(NGX_LOG_WARN, mr->r->connection->log, 0,
                      "joining through %V: keys: %s", server,
                      s ? s : "not understood");
        return;
    }

    for (i = 0; i < failed->u.a.n; i++) {
        s = mx_json_is(failed->u.a.v[i], MX_JSON_STRING)
            ? failed->u.a.v[i]->u.s.p : "?";

        ngx_log_error(NGX_LOG_INFO, mr->r->connection->log, 0,
                      "joining through %V: no keys of %s: its events are"
                      " dropped", server, s);
    }
}

/*
 * Inbound federation transactions: PUT /_matrix/federation/v1/send/{txnId}
 * (the route has NGX_MATRIX_FED: mr->origin is the authenticated sender).
 *
 *   the body: {origin = mr->origin, origin_server_ts, pdus (<= 50),
 *   edus (<= 100)}
 *        │
 *   mx_fedtxn_begin: (origin, txnId) answered before ─► the same response;
 *   being processed by another request ─► poll until it is answered
 *        │
 *   per room of the PDUs, mx_fed_room: its version (unknown room: an error
 *   for its PDUs), its server ACL (denying the origin: an error for each
 *   of its PDUs), its forward extremities, which prev_events are stored;
 *   per PDU: the version's format, its event ID, the sender's server's
 *   signature present
 *        │
 *   a PDU with prev_events nobody has: a `request` job to the fedsender,
 *   POST get_missing_events to the origin (earliest: our extremities), the
 *   events it gives kept; what still does not connect: GET /state at its
 *   first missing prev event (at most NGX_MATRIX_TXN_GAPS), the answer
 *   sent with it to the roomserver, which stores those events as outliers
 *   and takes their state as the state before it; no state: an error
 *        │
 *   a waiter for every verdict, then per room mx_fed_submit: the events
 *   on the room's input shard with the origin, each after its prev_events
 *   (the roomserver checks hashes, signatures, auth, soft failure)
 *        │
 *   verdicts: {"event_id"} from the syncer (stored, soft-failed included)
 *   or {"refused": id, "error"} from the roomserver; none in time: 503
 *   and the transaction forgotten, so a retry does it again
 *        │
 *   mx_fed_acl for the rooms of typing and receipt EDUs: those of rooms
 *   whose server ACL denies the origin dropped; mx_fed_edus: typing,
 *   receipts, presence, device lists, to-device
 *        │
 *   mx_fedtxn_end: the response kept a day ─► 200 {"pdus": {...}}
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_event.h>
#include <mx_ids.h>
#include <mx_room_version.h>

#include "ngx_matrix_module.h"


#define NGX_MATRIX_TXN_PDUS        50
#define NGX_MATRIX_TXN_EDUS        100
#define NGX_MATRIX_TXN_FETCH       10      /* get_missing_events limit */
#define NGX_MATRIX_TXN_FETCHED     100     /* fetched events, at most */
#define NGX_MATRIX_TXN_MAX         (NGX_MATRIX_TXN_PDUS                    \
                                    + NGX_MATRIX_TXN_FETCHED)
#define NGX_MATRIX_TXN_VERDICTS    20000   /* ms for every verdict */
#define NGX_MATRIX_TXN_JOB         10000   /* ms for a fedsender job */
#define NGX_MATRIX_TXN_FETCHING    15000   /* ms after which no more
                                              get_missing_events is asked */
#define NGX_MATRIX_TXN_POLL        250     /* ms between looks at a busy
                                              transaction */
#define NGX_MATRIX_TXN_BUSY        30000   /* ms to wait for it at most */
#define NGX_MATRIX_TXN_STALE       "60000" /* a start older is taken over */
#define NGX_MATRIX_TXN_KEEP        "86400" /* s a response is kept */
#define NGX_MATRIX_TXN_MISSING     "/_matrix/federation/v1/get_missing_events/"
#define NGX_MATRIX_TXN_STATE       "/_matrix/federation/v1/state/"
#define NGX_MATRIX_TXN_GAPS        3       /* /state asked per transaction,
                                              at most */
#define NGX_MATRIX_TXN_STATE_MAX   20000   /* events of a /state answer */


typedef struct {
    mx_json_t                 *json;
    const char                *room_id;
    char                      *event_id;
    const char                *error;      /* the verdict; NULL: {} */
    ngx_uint_t                 room;       /* in t->rooms */
    int64_t                    depth;
    const char                *prev[MX_EVENT_MAX_PREV];
    u_char                     known[MX_EVENT_MAX_PREV];
    short                      ix[MX_EVENT_MAX_PREV];  /* the prev event's
                                              entry, -1: none (resolve) */
    ngx_uint_t                 nprev;
    ngx_str_t                  state;      /* over a gap: the origin's
                                              /state at a missing prev */
    mx_json_t                 *given[2];   /* its pdus and auth_chain */
    unsigned                   txn:1;      /* the transaction's, not fetched */
    unsigned                   ok:1;       /* on its way to the roomserver */
    unsigned                   placed:1;
    unsigned                   waiting:1;  /* appended, no verdict yet */
} ngx_matrix_fedpdu_t;


typedef struct {
    const char                *room_id;
    const mx_room_version_t   *rv;
    mx_json_t                 *extrem;     /* array of event IDs */
    unsigned                   unknown:1;
} ngx_matrix_fedroom_t;


typedef struct {
    ngx_str_t                  key;        /* mx:fedtxn:{<origin>}:<txn> */
    ngx_str_t                  req;        /* the waiter's number */
    ngx_msec_t                 start;
    mx_json_t                 *edus;
    u_char                    *edu_drop;   /* per EDU: 1 when the room's
                                              server ACL denies the origin */
    ngx_str_t                  response;   /* the JSON answered */
    ngx_matrix_fedpdu_t        pdus[NGX_MATRIX_TXN_MAX];
    ngx_uint_t                 npdus;
    ngx_uint_t                 ntxn;       /* of them the transaction's */
    ngx_matrix_fedroom_t       rooms[NGX_MATRIX_TXN_PDUS];
    ngx_uint_t                 nrooms;
    ngx_uint_t                 cur;        /* the room or PDU in hand */
    ngx_uint_t                 pending;    /* verdicts awaited */
    ngx_uint_t                 pass;       /* lookups done: 1, or 2 after
                                              a fetch */
    ngx_uint_t                 ngaps;      /* /state asked */
    ngx_uint_t                 sub;        /* keys: 0 the PDU in hand,
                                              then 1 + its given events */
    const char                *signers[NGX_MATRIX_TXN_MAX];
    ngx_uint_t                 nsigners;   /* servers whose keys were
                                              looked at */
    const char                *signer;     /* the one in hand */
    const char                *key_ids;    /* its key IDs, space-separated */
    int64_t                    valid_at;   /* ms they must be valid at */
    unsigned                   fetched:1;  /* get_missing_events gave some */
    unsigned                   appending:1;
    unsigned                   waiter:1;
} ngx_matrix_fedtxn_t;


/* the arguments of one command of any length (ngx_matrix_cmd_t has 64) */
typedef struct {
    const char               **v;
    size_t                    *len;
    int                        n;
} ngx_matrix_fedargs_t;


static ngx_int_t ngx_matrix_fedsend_begin(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fedsend_begun(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fedsend_poll(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static ngx_int_t ngx_matrix_fedsend_parse(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fedsend_lookup(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fedsend_looked(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fedsend_missing(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fedsend_queued(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fedsend_fetched(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static ngx_int_t ngx_matrix_fedsend_state(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fedsend_state_got(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static void ngx_matrix_fedsend_resolve(ngx_matrix_fedtxn_t *t);
static ngx_int_t ngx_matrix_fedsend_keys(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fedsend_keys_got(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fedsend_keys_answer(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static ngx_int_t ngx_matrix_fedsend_append(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fedsend_appended(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fedsend_verdict(ngx_matrix_req_t *mr,
    ngx_str_t *answer);
static ngx_int_t ngx_matrix_fedsend_edus(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fedsend_edu_acls(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fedsend_edus_apply(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_fedsend_end(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fedsend_answer(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_fedsend_forgotten(ngx_matrix_req_t *mr,
    redisReply *reply);


static ngx_int_t
ngx_matrix_fedargs_init(ngx_matrix_req_t *mr, ngx_matrix_fedargs_t *a,
    size_t n)
{
    a->v = ngx_palloc(mr->r->pool, n * sizeof(char *));
    a->len = ngx_palloc(mr->r->pool, n * sizeof(size_t));
    a->n = 0;

    return a->v && a->len ? NGX_OK : NGX_ERROR;
}


static void
ngx_matrix_fedargs_add(ngx_matrix_fedargs_t *a, const char *p, size_t len)
{
    a->v[a->n] = p;
    a->len[a->n] = len;
    a->n++;
}


#define ngx_matrix_fedargs_cstr(a, s)                                        \
    ngx_matrix_fedargs_add(a, s, ngx_strlen(s))


ngx_int_t
ngx_matrix_fed_send(ngx_matrix_req_t *mr)
{
    ngx_http_request_t   *r;
    ngx_matrix_fedtxn_t  *t;
    mx_json_t            *pdus, *edus;
    const char           *origin;
    size_t                len;
    ngx_str_t            *txn;

    r = mr->r;
    txn = &mr->params[0];

    if (mr->body == NULL) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST, "M_NOT_JSON",
                                     "The transaction is not JSON.");
    }

    if (mr->body->type != MX_JSON_OBJECT) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST, "M_BAD_JSON",
                                     "The transaction is not an object.");
    }

    if (txn->len == 0 || txn->len > 255) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "The transaction ID"
                                     " must be 1 to 255 bytes.");
    }

    origin = mx_json_get_str(mr->body, "origin", &len);
    pdus = mx_json_get(mr->body, "pdus");
    edus = mx_json_get(mr->body, "edus");

    if (origin == NULL || pdus == NULL || pdus->type != MX_JSON_ARRAY
        || (edus != NULL && edus->type != MX_JSON_ARRAY)
        || mx_json_get(mr->body, "origin_server_ts") == NULL
        || mx_json_get(mr->body, "origin_server_ts")->type != MX_JSON_INT)
    {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST, "M_BAD_JSON",
                                     "A transaction has origin,"
                                     " origin_server_ts, pdus and maybe"
                                     " edus.");
    }

    /* the body cannot speak for another server than the signer */
    if (len != mr->origin.len
        || ngx_strncasecmp((u_char *) origin, mr->origin.data, len) != 0)
    {
        return ngx_matrix_send_error(r, NGX_HTTP_FORBIDDEN, "M_FORBIDDEN",
                                     "The transaction's origin is not the"
                                     " server that signed the request.");
    }

    if (pdus->u.a.n > NGX_MATRIX_TXN_PDUS
        || (edus && edus->u.a.n > NGX_MATRIX_TXN_EDUS))
    {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST, "M_BAD_JSON",
                                     "A transaction has at most 50 PDUs and"
                                     " 100 EDUs.");
    }

    t = ngx_pcalloc(r->pool, sizeof(ngx_matrix_fedtxn_t));
    if (t == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    t->edus = edus;
    t->start = ngx_current_msec;

    t->key.data = ngx_pnalloc(r->pool, sizeof("mx:fedtxn:{}:") + len
                                       + txn->len);
    if (t->key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    t->key.len = ngx_sprintf(t->key.data, "mx:fedtxn:{%V}:%V", &mr->origin,
                             txn)
                 - t->key.data;

    mr->data = t;

    return ngx_matrix_fedsend_begin(mr);
}


static ngx_int_t
ngx_matrix_fedsend_begin(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedtxn_t  *t;
    ngx_matrix_cmd_t      c;

    t = mr->data;

    ngx_matrix_fcall_init(&c, "mx_fedtxn_begin", 1);
    ngx_matrix_cmd_str(&c, &t->key);
    if (ngx_matrix_cmd_int(mr, &c, ngx_matrix_now_ms()) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_matrix_cmd_cstr(&c, NGX_MATRIX_TXN_STALE);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fedsend_begun);
}


/* {'done', response}, {'busy'} or {'new'} */

static ngx_int_t
ngx_matrix_fedsend_begun(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedtxn_t  *t;
    ngx_str_t             req;
    redisReply           *st;

    t = mr->data;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    st = reply->element[0];

    if (ngx_strcmp(st->str, "done") == 0 && reply->elements == 2
        && reply->element[1]->type == REDIS_REPLY_STRING)
    {
        /* the reply is freed on return; the body may be sent later */
        t->response.len = reply->element[1]->len;
        t->response.data = ngx_pnalloc(mr->r->pool, t->response.len);
        if (t->response.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(t->response.data, reply->element[1]->str,
                   t->response.len);

        return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, t->response.data,
                                   t->response.len);
    }

    if (ngx_strcmp(st->str, "busy") == 0) {
        /* the same transaction in another request: its answer is ours */
        if (ngx_current_msec - t->start > NGX_MATRIX_TXN_BUSY) {
            return ngx_matrix_send_error(mr->r,
                                         NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "M_UNKNOWN", "The transaction is"
                                         " still being processed.");
        }

        /* a waiter nobody answers: a timer */
        if (ngx_matrix_wait(mr, NGX_MATRIX_TXN_POLL, ngx_matrix_fedsend_poll,
                            &req)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return NGX_DONE;
    }

    return ngx_matrix_fedsend_parse(mr);
}


static ngx_int_t
ngx_matrix_fedsend_poll(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    (void) answer;

    return ngx_matrix_fedsend_begin(mr);
}


/* the ID of a prev_events entry: "$id" (v3 on) or ["$id", {hashes}] */

static const char *
ngx_matrix_fedsend_prev_id(mx_json_t *v)
{
    if (v->type == MX_JSON_STRING) {
        return v->u.s.p;
    }

    if (v->type == MX_JSON_ARRAY && v->u.a.n > 0
        && v->u.a.v[0]->type == MX_JSON_STRING)
    {
        return v->u.a.v[0]->u.s.p;
    }

    return NULL;
}


/* a PDU into t->pdus, its room found or added; NGX_DECLINED: unusable */

static ngx_int_t
ngx_matrix_fedsend_add(ngx_matrix_fedtxn_t *t, mx_json_t *json,
    ngx_uint_t txn)
{
    ngx_matrix_fedpdu_t  *p;
    mx_json_t            *prev;
    const char           *room_id, *id;
    size_t                len, i;
    ngx_uint_t            k;

    if (t->npdus == NGX_MATRIX_TXN_MAX || json->type != MX_JSON_OBJECT) {
        return NGX_DECLINED;
    }

    room_id = mx_json_get_str(json, "room_id", &len);
    if (room_id == NULL || !mx_room_id_valid(room_id, len)) {
        return NGX_DECLINED;
    }

    for (k = 0; k < t->nrooms; k++) {
        if (ngx_strcmp(t->rooms[k].room_id, room_id) == 0) {
            break;
        }
    }

    if (k == t->nrooms) {
        if (!txn || t->nrooms == NGX_MATRIX_TXN_PDUS) {
            return NGX_DECLINED;
        }

        t->rooms[t->nrooms++].room_id = room_id;
    }

    p = &t->pdus[t->npdus++];
    ngx_memzero(p, sizeof(ngx_matrix_fedpdu_t));

    p->json = json;
    p->room_id = room_id;
    p->room = k;
    p->txn = txn;
    p->ok = 1;

    if (mx_json_get_int(json, "depth", &p->depth) != 0) {
        p->depth = 0;
    }

    prev = mx_json_get_arr(json, "prev_events");

    for (i = 0; prev && i < prev->u.a.n && i < MX_EVENT_MAX_PREV; i++) {
        id = ngx_matrix_fedsend_prev_id(prev->u.a.v[i]);
        if (id != NULL) {
            p->prev[p->nprev++] = id;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_fedsend_parse(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedtxn_t  *t;
    mx_json_t            *pdus;
    size_t                i;

    t = mr->data;
    pdus = mx_json_get(mr->body, "pdus");

    /* PDUs without a room (or no object at all) have no ID to answer for:
     * dropped, as the spec says of invalid PDUs */
    for (i = 0; i < pdus->u.a.n; i++) {
        (void) ngx_matrix_fedsend_add(t, pdus->u.a.v[i], 1);
    }

    t->ntxn = t->npdus;
    t->cur = 0;
    t->pass = 1;

    return ngx_matrix_fedsend_lookup(mr);
}


/* the next room: mx_fed_room with its PDUs' prev_events */

static ngx_int_t
ngx_matrix_fedsend_lookup(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedtxn_t   *t;
    ngx_matrix_fedpdu_t   *p;
    ngx_matrix_fedargs_t   a;
    ngx_uint_t             i, k, n;
    u_char                *key;
    const char            *room_id;

    t = mr->data;

    while (t->cur < t->nrooms && t->rooms[t->cur].unknown) {
        t->cur++;
    }

    if (t->cur == t->nrooms) {
        if (t->pass == 1) {
            t->cur = 0;
            return ngx_matrix_fedsend_missing(mr);
        }

        t->cur = 0;
        return ngx_matrix_fedsend_state(mr);
    }

    room_id = t->rooms[t->cur].room_id;

    n = 5;
    for (i = 0; i < t->npdus; i++) {
        n += t->pdus[i].nprev;
    }

    key = ngx_pnalloc(mr->r->pool, sizeof("mx:{}:room") + ngx_strlen(room_id));
    if (key == NULL || ngx_matrix_fedargs_init(mr, &a, n) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(key, "mx:{%s}:room%Z", room_id);

    ngx_matrix_fedargs_cstr(&a, "FCALL");
    ngx_matrix_fedargs_cstr(&a, "mx_fed_room");
    ngx_matrix_fedargs_cstr(&a, "1");
    ngx_matrix_fedargs_cstr(&a, (char *) key);
    ngx_matrix_fedargs_cstr(&a, room_id);

    for (i = 0; i < t->npdus; i++) {
        p = &t->pdus[i];
        if (p->room != t->cur || !p->ok) {
            continue;
        }

        for (k = 0; k < p->nprev; k++) {
            ngx_matrix_fedargs_cstr(&a, p->prev[k]);
        }
    }

    return ngx_matrix_redis(mr, ngx_matrix_fedsend_looked, a.n, a.v, a.len);
}


/* the first checks of a PDU, once its room's version is known */

static void
ngx_matrix_fedsend_check(ngx_matrix_req_t *mr, ngx_matrix_fedpdu_t *p,
    const mx_room_version_t *rv)
{
    ngx_matrix_fedtxn_t  *t;
    mx_pool_t            *pool;
    mx_json_t            *sigs;
    const char           *why, *sender, *server;
    size_t                len, slen;
    ngx_uint_t            i;

    t = mr->data;
    pool = ngx_matrix_pool(mr);

    p->event_id = mx_event_id(pool, p->json, rv);
    if (p->event_id == NULL) {
        p->ok = 0;
        return;
    }

    /* the same event twice: the first one answers */
    for (i = 0; &t->pdus[i] != p; i++) {
        if (t->pdus[i].event_id
            && ngx_strcmp(t->pdus[i].event_id, p->event_id) == 0)
        {
            p->ok = 0;
            p->event_id = NULL;
            return;
        }
    }

    if (mx_event_check_pdu(pool, p->json, rv, &why) != 0) {
        p->ok = 0;
        p->error = why;
        return;
    }

    /*
     * The origin may relay events of other servers, but each must carry
     * its sender's server's signature (the roomserver verifies it): one
     * without it is refused here at once.
     */
    sender = mx_json_get_str(p->json, "sender", &len);
    server = sender ? mx_id_server(sender, len, &slen) : NULL;
    sigs = mx_json_get_obj(p->json, "signatures");

    if (server == NULL || sigs == NULL
        || mx_json_getn(sigs, server, slen) == NULL)
    {
        p->ok = 0;
        p->error = "The event is not signed by its sender's server";
    }
}


/* {version, {extremities}, {known...}, acl} or nil */

static ngx_int_t
ngx_matrix_fedsend_looked(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedtxn_t   *t;
    ngx_matrix_fedroom_t  *room;
    ngx_matrix_fedpdu_t   *p;
    mx_pool_t             *pool;
    redisReply            *ex, *known, *acl;
    size_t                 i, k, j;
    ngx_int_t              rc;

    t = mr->data;
    room = &t->rooms[t->cur];
    pool = ngx_matrix_pool(mr);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
        /* a room this server is not in: its PDUs are not for us */
        room->unknown = 1;

        for (i = 0; i < t->npdus; i++) {
            p = &t->pdus[i];
            if (p->room == t->cur && p->ok) {
                p->ok = 0;
                p->error = "This server is not in the room";
                if (p->event_id == NULL) {
                    /* v3 and later: the ID without the version is the
                     * hash of v3's format, the same from then on */
                    p->event_id = mx_event_id(pool, p->json,
                                              mx_room_version("10", 2));
                }
            }
        }

        t->cur++;
        return ngx_matrix_fedsend_lookup(mr);
    }

    if (room->rv == NULL) {
        room->rv = mx_room_version(reply->element[0]->str,
                                   reply->element[0]->len);
        if (room->rv == NULL) {
            return ngx_matrix_send_error(mr->r,
                                         NGX_HTTP_INTERNAL_SERVER_ERROR,
                                         "M_UNKNOWN", "The room's version"
                                         " is unknown to this server.");
        }
    }

    /*
     * The room's server ACL denies the origin: none of its PDUs, each
     * with the error (the spec: per PDU), and nothing fetched for them
     */
    acl = reply->element[3];
    rc = acl->type == REDIS_REPLY_STRING
         ? ngx_matrix_fed_acl_check(mr, acl->str, acl->len) : NGX_ERROR;

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        room->unknown = 1;

        for (i = 0; i < t->npdus; i++) {
            p = &t->pdus[i];
            if (p->room != t->cur || !p->ok) {
                continue;
            }

            if (p->event_id == NULL) {
                ngx_matrix_fedsend_check(mr, p, room->rv);
            }

            p->ok = 0;
            p->error = "Server is banned from the room by its server ACL";
        }

        t->cur++;
        return ngx_matrix_fedsend_lookup(mr);
    }

    ex = reply->element[1];
    known = reply->element[2];

    room->extrem = mx_json_array(pool);
    if (room->extrem == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < ex->elements; i++) {
        if (mx_json_append(pool, room->extrem,
                           mx_json_strn(pool, ex->element[i]->str,
                                        ex->element[i]->len))
            != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    j = 0;

    for (i = 0; i < t->npdus; i++) {
        p = &t->pdus[i];
        if (p->room != t->cur || !p->ok) {
            continue;
        }

        for (k = 0; k < p->nprev; k++, j++) {
            p->known[k] = j < known->elements
                          && known->element[j]->type == REDIS_REPLY_INTEGER
                          && known->element[j]->integer == 1;
        }

        if (p->event_id == NULL) {
            ngx_matrix_fedsend_check(mr, p, room->rv);
        }
    }

    t->cur++;

    return ngx_matrix_fedsend_lookup(mr);
}


/* an ok entry of the room with this ID */

static ngx_matrix_fedpdu_t *
ngx_matrix_fedsend_find(ngx_matrix_fedtxn_t *t, ngx_uint_t room,
    const char *id)
{
    ngx_uint_t  i;

    for (i = 0; i < t->npdus; i++) {
        if (t->pdus[i].ok && t->pdus[i].room == room
            && ngx_strcmp(t->pdus[i].event_id, id) == 0)
        {
            return &t->pdus[i];
        }
    }

    return NULL;
}


/* does the entry have a prev event neither stored nor in hand? */

static ngx_uint_t
ngx_matrix_fedsend_gap(ngx_matrix_fedtxn_t *t, ngx_matrix_fedpdu_t *p)
{
    ngx_uint_t  k;

    if (p->state.len) {
        return 0;
    }

    for (k = 0; k < p->nprev; k++) {
        if (!p->known[k]
            && ngx_matrix_fedsend_find(t, p->room, p->prev[k]) == NULL)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The next PDU of the transaction with a gap: get_missing_events from the
 * origin through the fedsender (a `request` job), the earliest events our
 * forward extremities, the latest the PDU.
 */

static ngx_int_t
ngx_matrix_fedsend_missing(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedtxn_t   *t;
    ngx_matrix_fedpdu_t   *p;
    ngx_str_t              path, json;
    mx_pool_t             *pool;
    mx_json_t             *body, *latest;
    u_char                *q;
    size_t                 rlen;

    t = mr->data;
    pool = ngx_matrix_pool(mr);
    p = NULL;

    /* the fetches share a time budget: what is left then stays a gap */
    if (ngx_current_msec - t->start > NGX_MATRIX_TXN_FETCHING) {
        t->cur = t->ntxn;
    }

    for ( /* void */ ; t->cur < t->ntxn; t->cur++) {
        p = &t->pdus[t->cur];
        if (p->ok && ngx_matrix_fedsend_gap(t, p)
            && t->npdus < NGX_MATRIX_TXN_MAX)
        {
            break;
        }
    }

    if (p == NULL || t->cur == t->ntxn) {
        if (t->fetched) {
            /* what the fetched events need: one more look at the rooms */
            t->pass = 2;
            t->cur = 0;
            return ngx_matrix_fedsend_lookup(mr);
        }

        t->cur = 0;
        return ngx_matrix_fedsend_state(mr);
    }

    body = mx_json_object(pool);
    latest = mx_json_array(pool);
    if (body == NULL || latest == NULL
        || mx_json_append(pool, latest, mx_json_str(pool, p->event_id)) != 0
        || mx_json_set(pool, body, "earliest_events",
                       t->rooms[p->room].extrem) != 0
        || mx_json_set(pool, body, "latest_events", latest) != 0
        || mx_json_set_int(pool, body, "limit", NGX_MATRIX_TXN_FETCH) != 0
        || mx_json_set_int(pool, body, "min_depth", 0) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    json.data = (u_char *) mx_json_encode(pool, body, 0, &json.len);
    rlen = ngx_strlen(p->room_id);
    path.data = ngx_pnalloc(mr->r->pool,
                            sizeof(NGX_MATRIX_TXN_MISSING) + 3 * rlen);
    if (json.data == NULL || path.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q = ngx_cpymem(path.data, NGX_MATRIX_TXN_MISSING,
                   sizeof(NGX_MATRIX_TXN_MISSING) - 1);
    q = (u_char *) ngx_escape_uri(q, (u_char *) p->room_id, rlen,
                                  NGX_ESCAPE_URI_COMPONENT);
    path.len = q - path.data;

    return ngx_matrix_job_request(mr, &mr->origin, "POST", &path, &json,
                                  NGX_MATRIX_TXN_JOB,
                                  ngx_matrix_fedsend_fetched, &t->req);
}


static ngx_int_t
ngx_matrix_fedsend_queued(ngx_matrix_req_t *mr, redisReply *reply)
{
    (void) mr;
    (void) reply;

    /* parked until the fedsender answers */
    return NGX_DONE;
}


/* {"status": 200, "body": {"events": [...]}}, an error, or NULL */

static ngx_int_t
ngx_matrix_fedsend_fetched(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_fedtxn_t   *t;
    ngx_matrix_fedpdu_t   *p, *f;
    ngx_matrix_fedroom_t  *room;
    mx_pool_t             *pool;
    mx_json_t             *v, *events, *ev;
    mx_json_error_t        err;
    int64_t                status;
    size_t                 i;
    const char            *room_id;

    t = mr->data;
    p = &t->pdus[t->cur];
    room = &t->rooms[p->room];
    pool = ngx_matrix_pool(mr);

    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    v = answer ? mx_json_parse(pool, (char *) answer->data, answer->len,
                               &err)
               : NULL;

    events = NULL;

    if (v != NULL && mx_json_get_int(v, "status", &status) == 0
        && status == 200)
    {
        events = mx_json_get_arr(mx_json_get_obj(v, "body"), "events");
    }

    if (events == NULL) {
        ngx_log_error(NGX_LOG_INFO, mr->r->connection->log, 0,
                      "matrix: get_missing_events from %V for %s: %V",
                      &mr->origin, p->event_id,
                      answer ? answer : &mr->origin);
    }

    for (i = 0; events && i < events->u.a.n && i < NGX_MATRIX_TXN_FETCH;
         i++)
    {
        ev = events->u.a.v[i];
        room_id = mx_json_get_str(ev, "room_id", NULL);

        if (room_id == NULL || ngx_strcmp(room_id, p->room_id) != 0
            || ngx_matrix_fedsend_add(t, ev, 0) != NGX_OK)
        {
            continue;
        }

        f = &t->pdus[t->npdus - 1];
        ngx_matrix_fedsend_check(mr, f, room->rv);

        if (f->ok) {
            t->fetched = 1;
        } else {
            t->npdus--;
        }
    }

    t->cur++;

    return ngx_matrix_fedsend_missing(mr);
}


/*
 * The next PDU still over a gap after get_missing_events: the state at
 * its first missing prev event, GET /state/{roomId}?event_id= of the
 * origin through the fedsender (one call rather than /state_ids and an
 * /event each), at most NGX_MATRIX_TXN_GAPS a transaction.  The answer
 * goes with the PDU to the roomserver, which checks those events, stores
 * them as outliers and takes their state as the state before the PDU.
 */

static ngx_int_t
ngx_matrix_fedsend_state(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedtxn_t  *t;
    ngx_matrix_fedpdu_t  *p;
    ngx_str_t             path, body;
    const char           *prev;
    u_char               *q;
    size_t                rlen, plen;
    ngx_uint_t            k;

    t = mr->data;
    p = NULL;
    prev = NULL;

    if (ngx_current_msec - t->start > NGX_MATRIX_TXN_FETCHING
        || t->ngaps == NGX_MATRIX_TXN_GAPS)
    {
        t->cur = t->npdus;
    }

    for ( /* void */ ; t->cur < t->npdus; t->cur++) {
        p = &t->pdus[t->cur];
        if (!p->ok || !ngx_matrix_fedsend_gap(t, p)) {
            continue;
        }

        for (k = 0; k < p->nprev; k++) {
            if (!p->known[k]
                && ngx_matrix_fedsend_find(t, p->room, p->prev[k]) == NULL)
            {
                prev = p->prev[k];
                break;
            }
        }

        break;
    }

    if (t->cur == t->npdus || prev == NULL) {
        ngx_matrix_fedsend_resolve(t);
        t->cur = 0;
        return ngx_matrix_fedsend_keys(mr);
    }

    t->ngaps++;

    rlen = ngx_strlen(p->room_id);
    plen = ngx_strlen(prev);
    path.data = ngx_pnalloc(mr->r->pool, sizeof(NGX_MATRIX_TXN_STATE)
                            + 3 * rlen + sizeof("?event_id=") + 3 * plen);
    if (path.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q = ngx_cpymem(path.data, NGX_MATRIX_TXN_STATE,
                   sizeof(NGX_MATRIX_TXN_STATE) - 1);
    q = (u_char *) ngx_escape_uri(q, (u_char *) p->room_id, rlen,
                                  NGX_ESCAPE_URI_COMPONENT);
    q = ngx_cpymem(q, "?event_id=", sizeof("?event_id=") - 1);
    q = (u_char *) ngx_escape_uri(q, (u_char *) prev, plen,
                                  NGX_ESCAPE_URI_COMPONENT);
    path.len = q - path.data;

    ngx_str_null(&body);

    return ngx_matrix_job_request(mr, &mr->origin, "GET", &path, &body,
                                  NGX_MATRIX_TXN_JOB,
                                  ngx_matrix_fedsend_state_got, &t->req);
}


/* {"status": 200, "body": {"pdus": [...], "auth_chain": [...]}} or not */

static ngx_int_t
ngx_matrix_fedsend_state_got(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_fedtxn_t  *t;
    ngx_matrix_fedpdu_t  *p;
    mx_json_t            *body, *pdus, *chain;
    const char           *error;
    int64_t               status;
    char                 *enc;
    size_t                len;

    t = mr->data;
    p = &t->pdus[t->cur];

    status = 0;

    if (ngx_matrix_job_response(mr, answer, &status, &body, &error)
        == NGX_OK
        && status == 200)
    {
        pdus = mx_json_get_arr(body, "pdus");
        chain = mx_json_get_arr(body, "auth_chain");

        if (pdus != NULL && chain != NULL && pdus->u.a.n > 0
            && pdus->u.a.n + chain->u.a.n <= NGX_MATRIX_TXN_STATE_MAX)
        {
            enc = mx_json_encode(ngx_matrix_pool(mr), body,
                                 mx_event_json_flags(t->rooms[p->room].rv),
                                 &len);
            if (enc == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            p->state.data = (u_char *) enc;
            p->state.len = len;
            p->given[0] = pdus;
            p->given[1] = chain;
        }
    }

    if (p->state.len == 0) {
        ngx_log_error(NGX_LOG_INFO, mr->r->connection->log, 0,
                      "matrix: /state from %V for %s: status %L, %s",
                      &mr->origin, p->event_id, status,
                      error ? error : "no state");
    }

    t->cur++;

    return ngx_matrix_fedsend_state(mr);
}


/*
 * What is left with a gap after the fetch is given up (the roomserver
 * would store it rejected for good), and so is whatever builds on it.
 */

static void
ngx_matrix_fedsend_resolve(ngx_matrix_fedtxn_t *t)
{
    ngx_matrix_fedpdu_t  *p, *f;
    ngx_uint_t            i, k, changed;

    /* no entry comes any more: each prev event's entry, looked up once */
    for (i = 0; i < t->npdus; i++) {
        p = &t->pdus[i];

        for (k = 0; k < p->nprev; k++) {
            f = p->ok ? ngx_matrix_fedsend_find(t, p->room, p->prev[k])
                      : NULL;
            p->ix[k] = f ? (short) (f - t->pdus) : -1;
        }
    }

    do {
        changed = 0;

        for (i = 0; i < t->npdus; i++) {
            p = &t->pdus[i];
            if (!p->ok || p->state.len) {
                continue;
            }

            for (k = 0; k < p->nprev; k++) {
                if (!p->known[k]
                    && (p->ix[k] < 0 || !t->pdus[p->ix[k]].ok))
                {
                    break;
                }
            }

            if (k < p->nprev) {
                p->ok = 0;
                p->error = "Missing prev_events, which neither"
                           " get_missing_events nor /state gave";
                changed = 1;
            }
        }

    } while (changed);
}


/*
 * The keys of the servers that signed the events, before the roomserver
 * needs them: it only reads the cache, and an event whose signature it
 * cannot check is dropped.  The origin's request key is cached, but not
 * necessarily the one it signed an older event with, nor a third
 * server's whose event it relays.  A key missing from the cache is asked
 * of the fedsender (a `keys` job); whatever the answer, the roomserver
 * then decides.  The events given with a PDU over a gap (its /state) are
 * checked by the roomserver as well: their servers' keys are looked at
 * too.
 *
 * ngx_matrix_fedsend_key_of: the cache's keys of an event's sender's
 * server, once per server; NGX_DECLINED: nothing to look at.
 */

static ngx_int_t
ngx_matrix_fedsend_key_of(ngx_matrix_req_t *mr, mx_json_t *ev,
    const mx_room_version_t *rv)
{
    ngx_matrix_fedtxn_t  *t;
    ngx_matrix_cmd_t      c;
    mx_pool_t            *pool;
    mx_json_t            *sigs, *mine;
    const char           *sender, *server;
    size_t                len, slen, i, n;
    ngx_uint_t            k;
    u_char               *key, *ids, *q;

    t = mr->data;
    pool = ngx_matrix_pool(mr);

    sender = mx_json_get_str(ev, "sender", &len);
    server = sender ? mx_id_server(sender, len, &slen) : NULL;
    sigs = mx_json_get_obj(ev, "signatures");
    mine = server ? mx_json_getn(sigs, server, slen) : NULL;

    if (mine == NULL || mine->type != MX_JSON_OBJECT
        || mine->u.o.n == 0 || mine->u.o.n > 8
        || t->nsigners == NGX_MATRIX_TXN_MAX
        || (slen == mr->mcf->server_name.len
            && ngx_strncmp(server, mr->mcf->server_name.data, slen) == 0))
    {
        return NGX_DECLINED;
    }

    /* one look per server */
    for (k = 0; k < t->nsigners; k++) {
        if (ngx_strlen(t->signers[k]) == slen
            && ngx_strncmp(t->signers[k], server, slen) == 0)
        {
            return NGX_DECLINED;
        }
    }

    key = ngx_pnalloc(mr->r->pool, sizeof("mx:serverkeys:{}") + slen);
    if (key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    q = ngx_sprintf(key, "mx:serverkeys:{%*s}", slen, server);

    t->signer = mx_pstrndup(pool, server, slen);
    t->signers[t->nsigners++] = t->signer;

    if (mx_json_get_int(ev, "origin_server_ts", &t->valid_at) != 0
        || !rv->key_validity)
    {
        t->valid_at = 0;
    }

    n = 0;
    for (i = 0; i < mine->u.o.n; i++) {
        n += mine->u.o.m[i].key_len + 1;
    }

    ids = ngx_pnalloc(mr->r->pool, n + 1);
    if (ids == NULL || t->signer == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_serverkeys_get", 1);
    ngx_matrix_cmd_add(&c, key, q - key);
    ngx_matrix_cmd_cstr(&c, t->signer);

    n = 0;
    for (i = 0; i < mine->u.o.n; i++) {
        ngx_matrix_cmd_add(&c, mine->u.o.m[i].key, mine->u.o.m[i].key_len);
        if (n) {
            ids[n++] = ' ';
        }
        n = ngx_cpymem(ids + n, mine->u.o.m[i].key, mine->u.o.m[i].key_len)
            - ids;
    }

    ids[n] = '\0';
    t->key_ids = (char *) ids;

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fedsend_keys_got);
}


/* each PDU's sender's server, then those of the events given with it */

static ngx_int_t
ngx_matrix_fedsend_keys(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedtxn_t      *t;
    ngx_matrix_fedpdu_t      *p;
    const mx_room_version_t  *rv;
    mx_json_t                *ev;
    ngx_int_t                 rc;
    size_t                    n0, n1, i;

    t = mr->data;

    for ( /* void */ ; t->cur < t->npdus; t->cur++, t->sub = 0) {
        p = &t->pdus[t->cur];
        if (!p->ok || ngx_current_msec - t->start > NGX_MATRIX_TXN_FETCHING) {
            continue;
        }

        rv = t->rooms[p->room].rv;
        n0 = p->given[0] ? p->given[0]->u.a.n : 0;
        n1 = p->given[1] ? p->given[1]->u.a.n : 0;

        while (t->sub <= n0 + n1) {
            i = t->sub++;
            ev = i == 0 ? p->json
                 : i <= n0 ? p->given[0]->u.a.v[i - 1]
                 : p->given[1]->u.a.v[i - 1 - n0];

            rc = ngx_matrix_fedsend_key_of(mr, ev, rv);
            if (rc != NGX_DECLINED) {
                return rc;
            }
        }
    }

    t->cur = 0;
    t->sub = 0;

    return ngx_matrix_fedsend_append(mr);
}


/* {fetched, failed, response, {key ID, public key, until}...} */

static ngx_int_t
ngx_matrix_fedsend_keys_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedtxn_t  *t;
    ngx_matrix_cmd_t      c;
    redisReply           *k;
    size_t                i;

    t = mr->data;

    for (i = 3; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
    {
        /* a key valid when the event was made (v5 on: its until, at
         * most 7 days after the fetch): the roomserver can check it */
        k = reply->element[i];

        if (k->type == REDIS_REPLY_ARRAY && k->elements == 3
            && k->element[2]->type == REDIS_REPLY_INTEGER
            && k->element[2]->integer >= t->valid_at)
        {
            return ngx_matrix_fedsend_keys(mr);
        }
    }

    if (ngx_matrix_wait(mr, NGX_MATRIX_TXN_JOB,
                        ngx_matrix_fedsend_keys_answer, &t->req)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_job_init(&c, "keys", &t->req);
    ngx_matrix_cmd_cstr(&c, "server");
    ngx_matrix_cmd_cstr(&c, t->signer);
    ngx_matrix_cmd_cstr(&c, "key_ids");
    ngx_matrix_cmd_cstr(&c, t->key_ids);
    ngx_matrix_cmd_cstr(&c, "valid_at");
    if (ngx_matrix_cmd_int(mr, &c, t->valid_at) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fedsend_queued);
}


static ngx_int_t
ngx_matrix_fedsend_keys_answer(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    (void) answer;

    if (mr->cmd) {
        ngx_matrix_redis_cancel(mr->cmd);
        mr->cmd = NULL;
    }

    return ngx_matrix_fedsend_keys(mr);
}


/* the next entry of the room to append: its prev_events first, by depth */

static ngx_matrix_fedpdu_t *
ngx_matrix_fedsend_next(ngx_matrix_fedtxn_t *t, ngx_uint_t room)
{
    ngx_matrix_fedpdu_t  *p, *best, *f;
    ngx_uint_t            i, k;

    best = NULL;

    for (i = 0; i < t->npdus; i++) {
        p = &t->pdus[i];

        if (!p->ok || p->placed || p->room != room) {
            continue;
        }

        for (k = 0; k < p->nprev; k++) {
            if (p->known[k] || p->ix[k] < 0) {
                continue;
            }

            f = &t->pdus[p->ix[k]];
            if (f->ok && !f->placed) {
                break;
            }
        }

        if (k == p->nprev && (best == NULL || p->depth < best->depth)) {
            best = p;
        }
    }

    return best;
}


/* the next room's events onto its input shard, each with the reply */

static ngx_int_t
ngx_matrix_fedsend_append(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedtxn_t   *t;
    ngx_matrix_fedroom_t  *room;
    ngx_matrix_fedpdu_t   *p;
    ngx_matrix_fedargs_t   a;
    mx_pool_t             *pool;
    ngx_str_t              input;
    char                  *pdu;
    size_t                 len;
    ngx_uint_t             i, n;

    t = mr->data;
    pool = ngx_matrix_pool(mr);

    for ( /* void */ ; t->cur < t->nrooms; t->cur++) {
        for (i = 0; i < t->npdus; i++) {
            if (t->pdus[i].ok && t->pdus[i].room == t->cur) {
                break;
            }
        }

        if (i < t->npdus) {
            break;
        }
    }

    if (t->cur == t->nrooms) {
        t->appending = 0;

        if (t->pending) {
            /* parked until the last verdict */
            return NGX_DONE;
        }

        /* every verdict came before the last append's reply */
        if (t->waiter) {
            ngx_matrix_wait_cancel(mr, &t->req);
            t->waiter = 0;
        }

        return ngx_matrix_fedsend_edus(mr);
    }

    room = &t->rooms[t->cur];

    if (!t->waiter) {
        if (ngx_matrix_wait_many(mr, NGX_MATRIX_TXN_VERDICTS,
                                 ngx_matrix_fedsend_verdict, &t->req, 1)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        t->waiter = 1;
    }

    if (ngx_matrix_input_key(mr, (u_char *) room->room_id,
                             ngx_strlen(room->room_id), &input)
        != NGX_OK
        || ngx_matrix_fedargs_init(mr, &a, 10 + 3 * t->npdus) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fedargs_cstr(&a, "FCALL");
    ngx_matrix_fedargs_cstr(&a, "mx_fed_submit");
    ngx_matrix_fedargs_cstr(&a, "1");
    ngx_matrix_fedargs_cstr(&a, (char *) input.data);
    ngx_matrix_fedargs_cstr(&a, room->room_id);
    ngx_matrix_fedargs_cstr(&a, room->rv->id);
    ngx_matrix_fedargs_add(&a, (char *) mr->origin.data, mr->origin.len);
    ngx_matrix_fedargs_add(&a, (char *) ngx_matrix_wait_channel()->data,
                           ngx_matrix_wait_channel()->len);
    ngx_matrix_fedargs_add(&a, (char *) t->req.data, t->req.len);

    n = 0;

    while ((p = ngx_matrix_fedsend_next(t, t->cur)) != NULL) {
        pdu = mx_json_encode(pool, p->json, mx_event_json_flags(room->rv),
                             &len);
        if (pdu == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_matrix_fedargs_cstr(&a, p->event_id);
        ngx_matrix_fedargs_add(&a, pdu, len);
        ngx_matrix_fedargs_add(&a, (char *) p->state.data, p->state.len);

        p->placed = 1;
        p->waiting = 1;
        t->pending++;
        n++;
    }

    /* what could not be placed builds on itself */
    for (i = 0; i < t->npdus; i++) {
        p = &t->pdus[i];
        if (p->ok && !p->placed && p->room == t->cur) {
            p->ok = 0;
            p->error = "The event's prev_events make a cycle";
        }
    }

    t->appending = 1;

    if (n == 0) {
        t->cur++;
        return ngx_matrix_fedsend_append(mr);
    }

    return ngx_matrix_redis(mr, ngx_matrix_fedsend_appended, a.n, a.v, a.len);
}


static ngx_int_t
ngx_matrix_fedsend_appended(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedtxn_t  *t;

    (void) reply;

    t = mr->data;
    t->cur++;

    return ngx_matrix_fedsend_append(mr);
}


/* one verdict: {"event_id"} taken, {"refused", "error"}; NULL: time out */

static ngx_int_t
ngx_matrix_fedsend_verdict(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_fedtxn_t  *t;
    ngx_matrix_fedpdu_t  *p;
    ngx_matrix_cmd_t      c;
    mx_pool_t            *pool;
    mx_json_t            *v;
    mx_json_error_t       err;
    const char           *id, *error;
    ngx_uint_t            i;

    t = mr->data;
    pool = ngx_matrix_pool(mr);

    if (answer == NULL) {
        /* no verdict in time: forgotten, so that a retry does it again
         * (the roomserver stores an event once however often it comes) */
        t->waiter = 0;

        if (mr->cmd) {
            ngx_matrix_redis_cancel(mr->cmd);
            mr->cmd = NULL;
        }

        ngx_matrix_fcall_init(&c, "mx_fedtxn_end", 1);
        ngx_matrix_cmd_str(&c, &t->key);
        ngx_matrix_cmd_cstr(&c, "");
        ngx_matrix_cmd_cstr(&c, "0");

        return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fedsend_forgotten);
    }

    v = mx_json_parse(pool, (char *) answer->data, answer->len, &err);

    id = mx_json_get_str(v, "event_id", NULL);
    error = NULL;

    if (id == NULL) {
        id = mx_json_get_str(v, "refused", NULL);
        error = mx_json_get_str(v, "error", NULL);
        if (error == NULL) {
            error = "Refused";
        }
    }

    for (i = 0; id && i < t->npdus; i++) {
        p = &t->pdus[i];

        if (p->waiting && ngx_strcmp(p->event_id, id) == 0) {
            p->waiting = 0;
            p->error = error;
            t->pending--;
            break;
        }
    }

    if (t->pending || t->appending) {
        return NGX_AGAIN;
    }

    t->waiter = 0;

    return ngx_matrix_fedsend_edus(mr);
}


static ngx_int_t
ngx_matrix_fedsend_forgotten(ngx_matrix_req_t *mr, redisReply *reply)
{
    (void) reply;

    return ngx_matrix_send_error(mr->r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                 "M_UNKNOWN", "The room server did not"
                                 " decide on the events in time; retry the"
                                 " transaction.");
}


/*
 * The rooms an EDU is about, as the ACL check asks for them: a typing
 * notification's room, a receipt EDU's rooms (its keys), in order; none
 * for the others, counted in *n.  With a, each room's key is added to
 * the command a, and its ID to rooms.
 */

static ngx_int_t
ngx_matrix_fedsend_edu_rooms(ngx_matrix_req_t *mr, mx_json_t *edu,
    ngx_matrix_fedargs_t *a, ngx_matrix_fedargs_t *rooms, ngx_uint_t *n)
{
    mx_json_t    *content;
    const char   *type, *room;
    size_t        i, len, count;
    ngx_uint_t    typing;
    u_char       *key;

    type = mx_json_get_str(edu, "edu_type", NULL);
    content = mx_json_get_obj(edu, "content");
    room = NULL;
    len = 0;

    if (type == NULL || content == NULL) {
        return NGX_OK;
    }

    typing = ngx_strcmp(type, "m.typing") == 0;

    if (typing) {
        room = mx_json_get_str(content, "room_id", &len);
        count = room ? 1 : 0;

    } else if (ngx_strcmp(type, "m.receipt") == 0) {
        count = content->u.o.n;

    } else {
        return NGX_OK;
    }

    for (i = 0; i < count; i++) {
        if (!typing) {
            room = content->u.o.m[i].key;
            len = content->u.o.m[i].key_len;
        }

        (*n)++;

        if (a == NULL) {
            continue;
        }

        key = ngx_pnalloc(mr->r->pool, sizeof("mx:{}:room") + len);
        if (key == NULL) {
            return NGX_ERROR;
        }

        ngx_matrix_fedargs_add(a, (char *) key,
                               ngx_sprintf(key, "mx:{%*s}:room", len, room)
                               - key);
        ngx_matrix_fedargs_add(rooms, room, len);
    }

    return NGX_OK;
}


/*
 * The EDUs.  Typing notifications and receipts are of rooms: those for a
 * room whose server ACL denies the origin are dropped (mx_fed_acl first,
 * when there are any), the others applied in one call of mx_fed_edus.
 */

static ngx_int_t
ngx_matrix_fedsend_edus(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedtxn_t   *t;
    ngx_matrix_fedargs_t   a, rooms;
    ngx_uint_t             n, i, k;
    u_char                *num;

    t = mr->data;

    if (t->edus == NULL || t->edus->u.a.n == 0) {
        return ngx_matrix_fedsend_end(mr, NULL);
    }

    n = 0;
    for (i = 0; i < t->edus->u.a.n; i++) {
        (void) ngx_matrix_fedsend_edu_rooms(mr, t->edus->u.a.v[i], NULL,
                                            NULL, &n);
    }

    t->edu_drop = ngx_pcalloc(mr->r->pool, t->edus->u.a.n);
    if (t->edu_drop == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (n == 0) {
        return ngx_matrix_fedsend_edus_apply(mr);
    }

    num = ngx_pnalloc(mr->r->pool, NGX_INT_T_LEN);
    if (num == NULL
        || ngx_matrix_fedargs_init(mr, &a, 3 + 2 * n) != NGX_OK
        || ngx_matrix_fedargs_init(mr, &rooms, n) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fedargs_cstr(&a, "FCALL");
    ngx_matrix_fedargs_cstr(&a, "mx_fed_acl");
    ngx_matrix_fedargs_add(&a, (char *) num,
                           ngx_sprintf(num, "%ui", n) - num);

    k = 0;
    for (i = 0; i < t->edus->u.a.n; i++) {
        if (ngx_matrix_fedsend_edu_rooms(mr, t->edus->u.a.v[i], &a, &rooms,
                                         &k)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* the room IDs after the keys */
    for (i = 0; i < n; i++) {
        ngx_matrix_fedargs_add(&a, rooms.v[i], rooms.len[i]);
    }

    return ngx_matrix_redis(mr, ngx_matrix_fedsend_edu_acls, a.n, a.v, a.len);
}


/* {{version or '', acl}...}, one per room asked, in order */

static ngx_int_t
ngx_matrix_fedsend_edu_acls(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedtxn_t  *t;
    mx_json_t            *edu, *content;
    redisReply           *one;
    const char           *type, **denied;
    ngx_uint_t            i, j, k, n, nd, before;
    ngx_int_t             rc;

    t = mr->data;

    if (reply->type != REDIS_REPLY_ARRAY) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    k = 0;

    for (i = 0; i < t->edus->u.a.n; i++) {
        edu = t->edus->u.a.v[i];
        before = k;

        if (ngx_matrix_fedsend_edu_rooms(mr, edu, NULL, NULL, &k) != NGX_OK
            || k > reply->elements)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = k - before;
        if (n == 0) {
            continue;
        }

        denied = ngx_palloc(mr->r->pool, n * sizeof(char *));
        if (denied == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        type = mx_json_get_str(edu, "edu_type", NULL);
        content = mx_json_get_obj(edu, "content");
        nd = 0;

        for (j = 0; j < n; j++) {
            one = reply->element[before + j];
            if (one->type != REDIS_REPLY_ARRAY || one->elements != 2
                || one->element[1]->type != REDIS_REPLY_STRING)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            rc = ngx_matrix_fed_acl_check(mr, one->element[1]->str,
                                          one->element[1]->len);
            if (rc == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (rc == NGX_DECLINED) {
                denied[nd++] = ngx_strcmp(type, "m.typing") == 0
                               ? mx_json_get_str(content, "room_id", NULL)
                               : content->u.o.m[j].key;
            }
        }

        for (j = 0; j < nd; j++) {
            ngx_log_error(NGX_LOG_INFO, mr->r->connection->log, 0,
                          "matrix: an %s EDU from %V for %s dropped: the"
                          " room's server ACL denies the server", type,
                          &mr->origin, denied[j]);

            if (ngx_strcmp(type, "m.typing") == 0) {
                t->edu_drop[i] = 1;

            } else {
                (void) mx_json_remove(content, denied[j]);
            }
        }
    }

    return ngx_matrix_fedsend_edus_apply(mr);
}


/* the EDUs kept, in one call of mx_fed_edus */

static ngx_int_t
ngx_matrix_fedsend_edus_apply(ngx_matrix_req_t *mr)
{
    ngx_matrix_fedtxn_t   *t;
    ngx_matrix_fedargs_t   a;
    mx_pool_t             *pool;
    mx_json_t             *edu, *content;
    const char            *type;
    char                  *json, *now;
    size_t                 i, len;

    t = mr->data;
    pool = ngx_matrix_pool(mr);

    now = mx_palloc(pool, NGX_INT64_LEN + 1);
    if (now == NULL
        || ngx_matrix_fedargs_init(mr, &a, 8 + 2 * t->edus->u.a.n) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *ngx_sprintf((u_char *) now, "%L", ngx_matrix_now_ms()) = '\0';

    ngx_matrix_fedargs_cstr(&a, "FCALL");
    ngx_matrix_fedargs_cstr(&a, "mx_fed_edus");
    ngx_matrix_fedargs_cstr(&a, "1");
    ngx_matrix_fedargs_add(&a, (char *) t->key.data, t->key.len);
    ngx_matrix_fedargs_add(&a, (char *) mr->origin.data, mr->origin.len);
    ngx_matrix_fedargs_add(&a, (char *) mr->mcf->server_name.data,
                           mr->mcf->server_name.len);
    ngx_matrix_fedargs_cstr(&a, now);

    for (i = 0; i < t->edus->u.a.n; i++) {
        edu = t->edus->u.a.v[i];
        type = mx_json_get_str(edu, "edu_type", NULL);
        content = mx_json_get_obj(edu, "content");

        /* malformed EDUs are ignored, not refused */
        if (type == NULL || content == NULL || t->edu_drop[i]) {
            continue;
        }

        json = mx_json_encode(pool, content, 0, &len);
        if (json == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_matrix_fedargs_cstr(&a, type);
        ngx_matrix_fedargs_add(&a, json, len);
    }

    return ngx_matrix_redis(mr, ngx_matrix_fedsend_end, a.n, a.v, a.len);
}


/* the response, kept for retries of the transaction, then sent */

static ngx_int_t
ngx_matrix_fedsend_end(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedtxn_t  *t;
    ngx_matrix_fedpdu_t  *p;
    ngx_matrix_cmd_t      c;
    mx_pool_t            *pool;
    mx_json_t            *body, *pdus, *res;
    char                 *json;
    size_t                len, i;

    t = mr->data;
    pool = ngx_matrix_pool(mr);

    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < reply->elements; i++) {
            if (reply->element[i]->type == REDIS_REPLY_STRING
                && reply->element[i]->len)
            {
                ngx_log_error(NGX_LOG_INFO, mr->r->connection->log, 0,
                              "matrix: an EDU from %V ignored: %s",
                              &mr->origin, reply->element[i]->str);
            }
        }
    }

    body = mx_json_object(pool);
    pdus = mx_json_object(pool);
    if (body == NULL || pdus == NULL
        || mx_json_set(pool, body, "pdus", pdus) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < t->ntxn; i++) {
        p = &t->pdus[i];
        if (p->event_id == NULL) {
            continue;
        }

        res = mx_json_object(pool);
        if (res == NULL
            || (p->error && mx_json_set_str(pool, res, "error", p->error)
                            != 0)
            || mx_json_set(pool, pdus, p->event_id, res) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    json = mx_json_encode(pool, body, 0, &len);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_fedtxn_end", 1);
    ngx_matrix_cmd_str(&c, &t->key);
    ngx_matrix_cmd_add(&c, json, len);
    ngx_matrix_cmd_cstr(&c, NGX_MATRIX_TXN_KEEP);

    t->response.data = (u_char *) json;
    t->response.len = len;

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_fedsend_answer);
}


static ngx_int_t
ngx_matrix_fedsend_answer(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_fedtxn_t  *t;

    (void) reply;

    t = mr->data;

    return ngx_matrix_send_raw(mr->r, NGX_HTTP_OK, t->response.data,
                               t->response.len);
}

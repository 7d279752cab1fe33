/*
 * roomserver_verify: the hashes and signatures of an event another server
 * sent (an input entry whose origin is not "local"), before anything else
 * looks at it, as the spec's checks on receipt of a PDU say: a signature
 * that does not verify drops the event; a content hash that does not
 * match keeps it in its redacted form.  Local events were built and signed
 * by this server's module a moment before.
 *
 * Keys: this server's own from matrix_signing_key; another server's from
 * mx:serverkeys:{<server>} (key ID -> unpadded base64 public key), which
 * federation's key fetcher keeps.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mx_base64.h>
#include <mx_event.h>
#include <mx_sign.h>

#include "roomserver.h"


typedef struct {
    mxw_t                     *w;
    mx_pool_t                 *pool;
    const mx_room_version_t   *rv;
    int                        failed;
} rs_keys_t;


static mx_signing_key_t  rs_own;
static int               rs_own_state;      /* 0: not read, 1: read, -1: none */


static void
rs_own_load(mxw_t *w)
{
    char         buf[512];
    const char  *why;
    size_t       n;
    FILE        *f;

    rs_own_state = -1;

    f = w->cf.signing_key[0] ? fopen(w->cf.signing_key, "r") : NULL;
    if (f == NULL) {
        return;
    }

    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';

    if (mx_sign_init() == 0 && mx_key_parse(&rs_own, buf, n, &why) == 0) {
        rs_own_state = 1;
    }
}


/*
 * Other servers' keys, as the roomserver last read them: a key is the same
 * key for ever, only its validity window grows, so an entry is used while
 * its window covers the event and read again (and refreshed) when it does
 * not.  Only keys found are kept: one fetched a moment later is seen.
 * Without it, every remote event cost two round trips to Redis and a drain
 * of the roomserver's pipeline.
 */

#define RS_KEYS_CACHE  512

typedef struct {
    char            server[256];
    char            key_id[64];
    unsigned char   pk[32];
    long long       until;              /* -1: not read */
    int             used;
} rs_key_entry_t;

static rs_key_entry_t  rs_key_cache[RS_KEYS_CACHE];


static rs_key_entry_t *
rs_key_slot(const char *server, const char *key_id)
{
    uint32_t     h;
    const char  *p;

    h = 2166136261u;

    for (p = server; *p; p++) {
        h = (h ^ (unsigned char) *p) * 16777619u;
    }

    h = (h ^ ' ') * 16777619u;

    for (p = key_id; *p; p++) {
        h = (h ^ (unsigned char) *p) * 16777619u;
    }

    return &rs_key_cache[h % RS_KEYS_CACHE];
}


/* read server's key key_id (and its window) into e; -1 on a Redis failure */

static int
rs_key_read(rs_keys_t *k, rs_key_entry_t *e, const char *server,
    const char *key_id)
{
    redisReply     *r;
    ssize_t         n;
    long long       until;
    unsigned char   pk[64];

    e->used = 0;

    if (strlen(server) >= sizeof(e->server)
        || strlen(key_id) >= sizeof(e->key_id))
    {
        return 0;
    }

    r = mxw_command(k->w, "HGET mx:serverkeys:{%s} %s", server, key_id);
    if (r == NULL) {
        return -1;
    }

    n = -1;

    if (r->type == REDIS_REPLY_STRING && r->len < 64) {
        n = mx_base64_decode(r->str, r->len, pk, MX_BASE64_STD);
    }

    freeReplyObject(r);

    if (n != 32) {
        return 0;
    }

    r = mxw_command(k->w, "HGET mx:serverkeys:{%s}:until %s", server,
                    key_id);
    if (r == NULL) {
        return -1;
    }

    until = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : -1;
    freeReplyObject(r);

    memcpy(e->pk, pk, 32);
    strcpy(e->server, server);
    strcpy(e->key_id, key_id);
    e->until = until;
    e->used = 1;

    return 0;
}


static const unsigned char *
rs_key(void *ctx, const char *server, const char *key_id, int64_t ts)
{
    rs_keys_t       *k = ctx;
    rs_key_entry_t  *e;
    int              hit;

    if (strcmp(server, k->w->cf.server_name) == 0) {
        if (rs_own_state == 0) {
            rs_own_load(k->w);
        }

        return rs_own_state == 1 && strcmp(key_id, rs_own.key_id) == 0
               ? rs_own.pk : NULL;
    }

    e = rs_key_slot(server, key_id);

    hit = e->used && strcmp(e->server, server) == 0
          && strcmp(e->key_id, key_id) == 0
          && (!k->rv->key_validity || e->until >= (long long) ts);

    if (!hit && rs_key_read(k, e, server, key_id) != 0) {
        k->failed = 1;
        return NULL;
    }

    if (!e->used) {
        return NULL;
    }

    /*
     * Room versions 5 and later: the key must have been valid when the
     * event was made (valid_until_ts, or expired_ts of an old key).
     */
    if (k->rv->key_validity && e->until < (long long) ts) {
        return NULL;
    }

    return e->pk;
}


/* the signatures and hashes of ev, parsed; pool for the work */

static rs_verify_t
rs_verify_in(mxw_t *w, mx_pool_t *pool, const mx_room_version_t *rv,
    const mx_json_t *ev, char **redacted, size_t *redacted_len, char *why,
    size_t why_len)
{
    mx_json_t          *red;
    mx_event_verdict_t  v;
    rs_keys_t           k;
    const char         *what;
    char               *out;
    size_t              n;

    *redacted = NULL;

    k.w = w;
    k.pool = pool;
    k.rv = rv;
    k.failed = 0;
    what = NULL;

    v = mx_event_verify(pool, ev, rv, rs_key, &k, &what);

    if (k.failed) {
        return RS_VERIFY_RETRY;
    }

    switch (v) {

    case MX_EVENT_OK:
        return RS_VERIFY_OK;

    case MX_EVENT_REDACT:
        red = mx_event_redact(pool, ev, rv);
        out = red ? mx_json_encode(pool, red, mx_event_json_flags(rv), &n)
                  : NULL;
        *redacted = out ? malloc(n + 1) : NULL;
        if (*redacted == NULL) {
            return RS_VERIFY_RETRY;
        }
        memcpy(*redacted, out, n + 1);
        *redacted_len = n;
        return RS_VERIFY_OK;

    default:
        snprintf(why, why_len, "signatures: %s", what ? what : "invalid");
        return RS_VERIFY_DROP;
    }
}


rs_verify_t
rs_verify(mxw_t *w, const mx_room_version_t *rv, const char *event_id,
    const char *pdu, size_t len, char **redacted, size_t *redacted_len, char *why,
    size_t why_len)
{
    mx_pool_t        *pool;
    mx_json_t        *ev;
    mx_json_error_t   err;
    char             *id;
    rs_verify_t       rc;

    *redacted = NULL;

    pool = mx_pool_create(8192);
    if (pool == NULL) {
        return RS_VERIFY_RETRY;
    }

    ev = mx_json_parse(pool, pdu, len, &err);
    if (ev == NULL || ev->type != MX_JSON_OBJECT) {
        snprintf(why, why_len, "not a JSON object");
        mx_pool_destroy(pool);
        return RS_VERIFY_DROP;
    }

    /* the ID is the event's own hash from version 3: not taken on trust */
    if (rv->event_id != MX_EVENT_ID_OPAQUE) {
        id = mx_event_id(pool, ev, rv);
        if (id == NULL || strcmp(id, event_id) != 0) {
            snprintf(why, why_len, "the event ID is not the event's");
            mx_pool_destroy(pool);
            return RS_VERIFY_DROP;
        }
    }

    rc = rs_verify_in(w, pool, rv, ev, redacted, redacted_len, why, why_len);
    mx_pool_destroy(pool);

    return rc;
}


rs_verify_t
rs_verify_json(mxw_t *w, const mx_room_version_t *rv, const mx_json_t *ev,
    char **redacted, size_t *redacted_len, char *why, size_t why_len)
{
    mx_pool_t    *pool;
    rs_verify_t   rc;

    *redacted = NULL;

    pool = mx_pool_create(8192);
    if (pool == NULL) {
        return RS_VERIFY_RETRY;
    }

    rc = rs_verify_in(w, pool, rv, ev, redacted, redacted_len, why, why_len);
    mx_pool_destroy(pool);

    return rc;
}

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


static const unsigned char *
rs_key(void *ctx, const char *server, const char *key_id, int64_t ts)
{
    rs_keys_t      *k = ctx;
    redisReply     *r;
    unsigned char  *pk;
    ssize_t         n;

    if (strcmp(server, k->w->cf.server_name) == 0) {
        if (rs_own_state == 0) {
            rs_own_load(k->w);
        }

        return rs_own_state == 1 && strcmp(key_id, rs_own.key_id) == 0
               ? rs_own.pk : NULL;
    }

    r = mxw_command(k->w, "HGET mx:serverkeys:{%s} %s", server, key_id);
    if (r == NULL) {
        k->failed = 1;
        return NULL;
    }

    pk = NULL;

    if (r->type == REDIS_REPLY_STRING && r->len < 64) {
        pk = mx_palloc(k->pool, mx_base64_decoded_max(r->len));
        n = pk ? mx_base64_decode(r->str, r->len, pk, MX_BASE64_STD) : -1;
        if (n != 32) {
            pk = NULL;
        }
    }

    freeReplyObject(r);

    /*
     * Room versions 5 and later: the key must have been valid when the
     * event was made (valid_until_ts, or expired_ts of an old key).
     */
    if (pk != NULL && k->rv->key_validity) {
        r = mxw_command(k->w, "HGET mx:serverkeys:{%s}:until %s", server,
                        key_id);
        if (r == NULL) {
            k->failed = 1;
            return NULL;
        }

        if (r->type != REDIS_REPLY_STRING
            || strtoll(r->str, NULL, 10) < (long long) ts)
        {
            pk = NULL;
        }

        freeReplyObject(r);
    }

    return pk;
}


rs_verify_t
rs_verify(mxw_t *w, const mx_room_version_t *rv, const char *event_id,
    const char *pdu, size_t len, char **redacted, size_t *redacted_len, char *why,
    size_t why_len)
{
    mx_pool_t          *pool;
    mx_json_t          *ev, *red;
    mx_json_error_t     err;
    mx_event_verdict_t  v;
    rs_keys_t           k;
    const char         *what;
    char               *out, *id;
    size_t              n;
    rs_verify_t         rc;

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

    k.w = w;
    k.pool = pool;
    k.rv = rv;
    k.failed = 0;
    what = NULL;

    v = mx_event_verify(pool, ev, rv, rs_key, &k, &what);

    if (k.failed) {
        mx_pool_destroy(pool);
        return RS_VERIFY_RETRY;
    }

    rc = RS_VERIFY_OK;

    switch (v) {

    case MX_EVENT_OK:
        break;

    case MX_EVENT_REDACT:
        red = mx_event_redact(pool, ev, rv);
        out = red ? mx_json_encode(pool, red, mx_event_json_flags(rv), &n)
                  : NULL;
        *redacted = out ? malloc(n + 1) : NULL;
        if (*redacted == NULL) {
            rc = RS_VERIFY_RETRY;
            break;
        }
        memcpy(*redacted, out, n + 1);
        *redacted_len = n;
        break;

    default:
        snprintf(why, why_len, "signatures: %s", what ? what : "invalid");
        rc = RS_VERIFY_DROP;
        break;
    }

    mx_pool_destroy(pool);

    return rc;
}

/*
 * mx_build: a new local event.  See mx_build.h.
 */

#include <string.h>

#include <sodium.h>

#include "mx_base64.h"
#include "mx_build.h"
#include "mx_event.h"


/* v1, v2 reference lists: [ID, {"sha256": ...}] pairs; later, IDs */

static mx_json_t *
mx_build_ref(mx_pool_t *pool, const mx_room_version_t *rv,
    const mx_auth_event_t *ev)
{
    mx_json_t  *pair, *hashes;

    if (rv->event_id != MX_EVENT_ID_OPAQUE) {
        return mx_json_str(pool, ev->event_id);
    }

    pair = mx_json_array(pool);
    hashes = mx_json_object(pool);

    if (pair == NULL || hashes == NULL
        || mx_json_append(pool, pair, mx_json_str(pool, ev->event_id)) != 0)
    {
        return NULL;
    }

    if (ev->json != NULL) {
        mx_json_t  *h = mx_json_get(mx_json_get(ev->json, "hashes"),
                                    "sha256");

        if (h != NULL && mx_json_set(pool, hashes, "sha256", h) != 0) {
            return NULL;
        }
    }

    return mx_json_append(pool, pair, hashes) == 0 ? pair : NULL;
}


/* "$<18 random URL-safe base64 characters>:<origin>" */

static const char *
mx_build_opaque_id(mx_pool_t *pool, const char *origin)
{
    unsigned char   rnd[12];
    char           *id;
    size_t          olen;

    olen = strlen(origin);
    id = mx_palloc(pool, 1 + 16 + 1 + olen + 1);
    if (id == NULL) {
        return NULL;
    }

    randombytes_buf(rnd, sizeof(rnd));
    id[0] = '$';
    mx_base64_encode(rnd, sizeof(rnd), id + 1, MX_BASE64_URLSAFE);
    id[17] = ':';
    memcpy(id + 18, origin, olen + 1);

    return id;
}


mx_build_rc_t
mx_event_build(mx_pool_t *pool, const mx_build_t *b, mx_json_t **pdu,
    char **event_id, mx_auth_event_t **view, const char **why)
{
    const mx_room_version_t  *rv;
    const mx_auth_event_t    *ae;
    const char               *opaque, *reason;
    mx_auth_event_t          *v;
    mx_auth_key_t             keys[MX_AUTH_KEYS_MAX];
    mx_json_t                *ev, *prev, *auth, *content, *ref;
    int64_t                   depth;
    size_t                    i, n;
    int                       rc;

#define mx_nomem()  do { *why = "out of memory"; return MX_BUILD_ERROR; }    \
                    while (0)

    rv = b->rv;
    opaque = NULL;

    ev = mx_json_object(pool);
    prev = mx_json_array(pool);
    auth = mx_json_array(pool);
    if (ev == NULL || prev == NULL || auth == NULL) {
        mx_nomem();
    }

    depth = 0;

    for (i = 0; i < b->n_prev; i++) {
        ref = mx_build_ref(pool, rv, b->prev[i]);
        if (ref == NULL || mx_json_append(pool, prev, ref) != 0) {
            mx_nomem();
        }

        if (b->prev[i]->depth > depth) {
            depth = b->prev[i]->depth;
        }
    }

    if (depth < MX_JSON_MAX_SAFE_INT) {
        depth++;
    }

    content = (mx_json_t *) b->content;

    if (b->redacts != NULL && rv->redaction == MX_REDACT_V11) {
        content = mx_json_object_copy(pool, b->content);
        if (content == NULL
            || mx_json_set_str(pool, content, "redacts", b->redacts) != 0)
        {
            mx_nomem();
        }
    }

    if (mx_json_set_str(pool, ev, "type", b->type) != 0
        || mx_json_set_str(pool, ev, "sender", b->sender) != 0
        || (b->room_id != NULL
            && mx_json_set_str(pool, ev, "room_id", b->room_id) != 0)
        || (b->state_key != NULL
            && mx_json_set_str(pool, ev, "state_key", b->state_key) != 0)
        || (b->redacts != NULL && rv->redaction != MX_REDACT_V11
            && mx_json_set_str(pool, ev, "redacts", b->redacts) != 0)
        || mx_json_set(pool, ev, "content", content) != 0
        || mx_json_set_int(pool, ev, "origin_server_ts", b->ts) != 0
        || mx_json_set_int(pool, ev, "depth", depth) != 0
        || mx_json_set(pool, ev, "prev_events", prev) != 0
        || mx_json_set(pool, ev, "auth_events", auth) != 0)
    {
        mx_nomem();
    }

    if (rv->event_id == MX_EVENT_ID_OPAQUE) {
        opaque = mx_build_opaque_id(pool, b->origin);
        if (opaque == NULL
            || mx_json_set_str(pool, ev, "event_id", opaque) != 0)
        {
            mx_nomem();
        }
    }

    /* the rules' view, before the event has its ID */
    v = mx_auth_event_from_json(pool, ev, opaque ? opaque : "$", why);
    if (v == NULL) {
        return MX_BUILD_BAD;
    }

    n = mx_auth_keys(rv, v, keys);

    for (i = 0; i < n; i++) {
        ae = b->lookup(b->ctx, keys[i].type, keys[i].state_key);
        if (ae == NULL) {
            continue;
        }

        ref = mx_build_ref(pool, rv, ae);
        if (ref == NULL || mx_json_append(pool, auth, ref) != 0) {
            mx_nomem();
        }
    }

    /*
     * Signed before the rules look: they want this server's signature on
     * a restricted join one of its users authorises (make_join).  The view
     * reads the event itself, so it sees the signature.
     */
    if (mx_event_sign(pool, ev, rv, b->origin, b->key) != 0) {
        *why = rv->strict_canonical
               ? "the content holds a float or an integer beyond 2^53-1"
               : "the content cannot be written as canonical JSON";
        return MX_BUILD_BAD;
    }

    rc = mx_auth_check_lookup(pool, rv, v, b->lookup, b->ctx, &reason);

    if (rc == MX_AUTH_ERROR) {
        mx_nomem();
    }

    if (rc != MX_AUTH_ALLOW) {
        *why = reason;
        return MX_BUILD_DENIED;
    }

    if (b->unsigned_ != NULL
        && mx_json_set(pool, ev, "unsigned", (mx_json_t *) b->unsigned_) != 0)
    {
        mx_nomem();
    }

    if (mx_event_check_pdu(pool, ev, rv, why) != 0) {
        return mx_json_encoded_len(ev, mx_event_json_flags(rv))
               > MX_EVENT_MAX_SIZE ? MX_BUILD_TOO_LARGE : MX_BUILD_BAD;
    }

    *event_id = mx_event_id(pool, ev, rv);
    if (*event_id == NULL) {
        mx_nomem();
    }

    if (view != NULL) {
        *view = mx_auth_event_from_json(pool, ev, *event_id, why);
        if (*view == NULL) {
            return MX_BUILD_BAD;
        }
    }

    *pdu = ev;

    return MX_BUILD_OK;

#undef mx_nomem
}

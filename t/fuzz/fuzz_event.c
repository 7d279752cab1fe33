/*
 * Fuzz target: received events.  The first byte picks a room version (1 to
 * 12); the rest is a PDU.  Shape checks, redaction, hashes, event IDs and
 * verification never crash.  Redaction is idempotent.  An event that passes
 * the shape check and is then signed by its sender's server verifies as OK
 * under the same version, and its event ID is a valid one of the version.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mx_event.h>
#include <mx_ids.h>
#include <mx_json.h>
#include <mx_pool.h>
#include <mx_room_version.h>
#include <mx_sign.h>


static mx_signing_key_t  key;
static int               ready;


static const unsigned char *
fuzz_key(void *ctx, const char *server, const char *key_id, int64_t ts)
{
    (void) ctx;
    (void) server;
    (void) ts;

    return strcmp(key_id, key.key_id) == 0 ? key.pk : NULL;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const mx_room_version_t  *rv;
    mx_pool_t                *pool;
    mx_json_t                *ev, *red, *red2;
    mx_json_error_t           err;
    unsigned char             hash[32];
    const char               *why, *id, *server, *signers[3];
    char                     *a, *b;
    size_t                    slen;

    if (!ready) {
        unsigned char  seed[32] = { 1 };

        if (mx_sign_init() != 0 || mx_key_from_seed(&key, "f", seed) != 0) {
            abort();
        }
        ready = 1;
    }

    if (size < 1) {
        return 0;
    }

    rv = &mx_room_versions[data[0] % 12];

    pool = mx_pool_create(4096);
    if (pool == NULL) {
        return 0;
    }

    ev = mx_json_parse(pool, (const char *) data + 1, size - 1, &err);
    if (ev == NULL) {
        goto done;
    }

    (void) mx_event_content_hash(pool, ev, rv, hash);
    (void) mx_event_reference_hash(pool, ev, rv, hash);
    (void) mx_event_id(pool, ev, rv);
    (void) mx_event_signers(pool, ev, rv, signers);
    (void) mx_event_verify(pool, ev, rv, fuzz_key, NULL, &why);

    red = mx_event_redact(pool, ev, rv);
    if (red != NULL) {
        red2 = mx_event_redact(pool, red, rv);
        if (red2 == NULL || !mx_json_equal(red, red2)) {
            abort();
        }

        a = mx_json_encode(pool, red, 0, NULL);
        b = mx_json_encode(pool, red2, 0, NULL);
        if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0)) {
            abort();
        }
    }

    if (mx_event_check_pdu(pool, ev, rv, &why) != 0) {
        if (why == NULL) {
            abort();
        }
        goto done;
    }

    server = mx_id_server(mx_json_get_str(ev, "sender", NULL),
                          strlen(mx_json_get_str(ev, "sender", NULL)), &slen);
    if (server == NULL) {
        abort();        /* the shape check let an invalid sender through */
    }

    if (mx_event_sign(pool, ev, rv, mx_pstrndup(pool, server, slen), &key)
        != 0)
    {
        abort();
    }

    /* other signers (v1/v2 event IDs, restricted joins) sign too */
    for (size_t i = 0, n = mx_event_signers(pool, ev, rv, signers); i < n; i++)
    {
        if (mx_event_sign(pool, ev, rv, signers[i], &key) != 0) {
            abort();
        }
    }

    if (mx_event_verify(pool, ev, rv, fuzz_key, NULL, &why) != MX_EVENT_OK) {
        abort();
    }

    id = mx_event_id(pool, ev, rv);
    if (id == NULL || !mx_event_id_valid(id, strlen(id), rv->event_id)) {
        abort();
    }

done:

    mx_pool_destroy(pool);

    return 0;
}

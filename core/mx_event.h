/*
 * mx_event: the wire format of events (PDUs), for every room version.
 *
 *   content hash     sha256 of the canonical event without "unsigned",
 *                    "signatures" and "hashes"; kept in hashes.sha256
 *   redaction        what survives a redaction: the v1, v6, v8, v9 and v11
 *                    rule sets, chosen by the room version table
 *   signing          content hash, then redact, then sign the redacted copy
 *                    and copy its "signatures" back to the full event
 *   reference hash   sha256 of the canonical redacted event without
 *                    "signatures" and "unsigned"
 *   event ID         "$opaque:server" (v1, v2: the sender makes it up),
 *                    "$" + base64(reference hash) (v3), the same in URL-safe
 *                    base64 (v4 and later)
 *   room ID (v12)    "!" + URL-safe base64 of the create event's reference
 *                    hash: the create event's ID with '!' for '$'
 *
 * Receiving an event: mx_event_check_pdu() first (shape, sizes, canonical
 * JSON of the version), then mx_event_verify(): a signature that does not
 * verify rejects the event; a content hash that does not match means the
 * event is kept in its redacted form.  Keys come through a callback so the
 * caller decides where they are cached and how they are fetched.
 *
 * Everything is allocated from the pool given; the events passed in are
 * never changed except by mx_event_sign().
 */

#ifndef MX_EVENT_H
#define MX_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "mx_json.h"
#include "mx_pool.h"
#include "mx_room_version.h"
#include "mx_sign.h"


#define MX_EVENT_MAX_SIZE       65536   /* bytes of the canonical PDU */
#define MX_EVENT_MAX_ID         255     /* type, sender, room_id, ... */
#define MX_EVENT_MAX_PREV       20      /* prev_events, as Synapse */
#define MX_EVENT_MAX_AUTH       10      /* auth_events, as Synapse */
#define MX_EVENT_HASH_ID_LEN    44      /* "$" + 43 base64 characters */

typedef enum {
    MX_EVENT_OK = 0,        /* signatures and content hash are good */
    MX_EVENT_REDACT,        /* signatures good, content hash wrong: keep
                               the redacted form */
    MX_EVENT_REJECT         /* a required signature is missing or wrong,
                               or the event is malformed */
} mx_event_verdict_t;


/*
 * The public key of server's key key_id that was valid at ts (the event's
 * origin_server_ts; room versions with key_validity need the key to have
 * been valid then), or NULL when it is unknown.
 */
typedef const unsigned char *(*mx_event_key_pt)(void *ctx,
    const char *server, const char *key_id, int64_t ts);


/* MX_JSON_STRICT for room versions that use strict canonical JSON */
unsigned mx_event_json_flags(const mx_room_version_t *rv);

/* sha256 of the canonical event without unsigned, signatures, hashes */
int mx_event_content_hash(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, unsigned char out[32]);

/* the redacted copy (shares unchanged values with ev); NULL on ENOMEM */
mx_json_t *mx_event_redact(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv);

/* sha256 of the canonical redacted event without signatures, unsigned */
int mx_event_reference_hash(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, unsigned char out[32]);

/*
 * The event's ID: computed from the reference hash (v3 and later) or the
 * "event_id" the event carries (v1, v2).  NULL when there is none, or on
 * ENOMEM.
 */
char *mx_event_id(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv);

/* v12: the room ID a create event makes; NULL on ENOMEM */
char *mx_event_room_id(mx_pool_t *pool, const mx_json_t *create,
    const mx_room_version_t *rv);

/*
 * Set hashes.sha256 and add origin's signature of the redacted event to
 * ev's signatures, keeping others.  0, or -1 when ev cannot be written as
 * the version's canonical JSON (or ENOMEM).
 */
int mx_event_sign(mx_pool_t *pool, mx_json_t *ev, const mx_room_version_t *rv,
    const char *origin, const mx_signing_key_t *key);

/*
 * The PDU's shape for its room version: required fields and their types,
 * identifiers, depth, prev/auth event lists, the 255-byte field limits, the
 * 65,536-byte size limit and the version's canonical JSON.  0, or -1 with
 * *why saying what is wrong.
 */
int mx_event_check_pdu(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, const char **why);

/*
 * The servers whose signatures an event needs: the sender's, the event ID's
 * (v1, v2) and for a restricted join the authorising user's (v8 and later).
 * Returns their number (at most 3, no duplicates); names point into ev or
 * the pool.
 */
size_t mx_event_signers(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, const char *out[3]);

/*
 * Whether server signed ev (its redacted form) with a key the callback
 * knows: 1 or 0.  For a signature no rule requires, such as the invited
 * server's on an invite.
 */
int mx_event_signed(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, const char *server, mx_event_key_pt key,
    void *ctx);

/* hashes and signatures of a received event; *why says what failed */
mx_event_verdict_t mx_event_verify(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, mx_event_key_pt key, void *ctx,
    const char **why);

/*
 * The client format of an event (ClientEvent): content, event_id,
 * origin_server_ts, room_id, sender, state_key, type, unsigned (and
 * redacts); the federation fields are left out.  room_id is given for the
 * v12 create event, which carries none.  NULL on ENOMEM or when pdu is
 * not an object.
 */
mx_json_t *mx_event_client(mx_pool_t *pool, const mx_json_t *pdu,
    const char *event_id, const char *room_id);

#endif /* MX_EVENT_H */

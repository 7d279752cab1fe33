/*
 * mx_build: a new local event, ready for the input log.
 *
 *   what the client asked for (type, state_key, content, ...)
 *   + the room's forward extremities (prev_events, depth)
 *   + the auth state (through a lookup: the module's read of current state)
 *        │
 *   auth_events selected by the rules of the room version
 *   the auth rules checked against that state: refused at once
 *   hashes, signature, event ID (v1, v2: "$<random>:<origin>")
 *   the PDU shape of the version: 65,536 bytes at most
 *
 * Everything comes from the pool.  The lookup answers state entries as
 * mx_auth_event_t views whose "json" is the stored PDU (for the hashes that
 * v1 and v2 put beside each reference).
 */

#ifndef MX_BUILD_H
#define MX_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "mx_auth.h"
#include "mx_json.h"
#include "mx_pool.h"
#include "mx_room_version.h"
#include "mx_sign.h"


typedef enum {
    MX_BUILD_OK = 0,
    MX_BUILD_DENIED,        /* the auth rules refuse it: 403 M_FORBIDDEN */
    MX_BUILD_TOO_LARGE,     /* over 65,536 bytes: 413 M_TOO_LARGE */
    MX_BUILD_BAD,           /* content the version cannot hold (floats,
                               big integers, bad identifiers): 400 */
    MX_BUILD_ERROR          /* out of memory */
} mx_build_rc_t;

typedef struct {
    const mx_room_version_t    *rv;
    const char                 *room_id;      /* NULL: a v12 create event */
    const char                 *sender;
    const char                 *type;
    const char                 *state_key;    /* NULL: not a state event */
    const mx_json_t            *content;      /* an object */
    const char                 *redacts;      /* m.room.redaction only */
    const mx_auth_event_t     **prev;         /* forward extremities */
    size_t                      n_prev;
    mx_auth_lookup_pt           lookup;       /* the state the event goes */
    void                       *ctx;          /* on top of */
    int64_t                     ts;           /* origin_server_ts */
    const char                 *origin;       /* this server's name */
    const mx_signing_key_t     *key;
    const mx_json_t            *unsigned_;    /* e.g. transaction_id */
} mx_build_t;


/*
 * Build, check and sign.  On MX_BUILD_OK *pdu and *event_id are set (and
 * *view, when view is not NULL: the event as the auth rules see it); else
 * *why says what is wrong (the rule, for MX_BUILD_DENIED).
 */
mx_build_rc_t mx_event_build(mx_pool_t *pool, const mx_build_t *b,
    mx_json_t **pdu, char **event_id, mx_auth_event_t **view,
    const char **why);

#endif /* MX_BUILD_H */

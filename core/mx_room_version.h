/*
 * mx_room_version: the one table that says how each room version behaves.
 * Every other part of the server asks it instead of comparing numbers.
 */

#ifndef MX_ROOM_VERSION_H
#define MX_ROOM_VERSION_H

#include <stddef.h>

#define MX_ROOM_VERSION_DEFAULT  "12"

typedef enum {
    MX_EVENT_ID_OPAQUE = 1,     /* v1, v2: "$opaque:server", sent in the PDU */
    MX_EVENT_ID_HASH,           /* v3: "$" + base64(reference hash) */
    MX_EVENT_ID_HASH_URLSAFE    /* v4+: "$" + URL-safe base64 */
} mx_event_id_format_t;

typedef enum {
    MX_REDACT_V1 = 1,           /* v1 to v5 */
    MX_REDACT_V6,               /* v6, v7: m.room.aliases keeps nothing */
    MX_REDACT_V8,               /* v8: join_rules keeps allow */
    MX_REDACT_V9,               /* v9, v10: member keeps
                                   join_authorised_via_users_server */
    MX_REDACT_V11               /* v11, v12 */
} mx_redaction_t;

typedef enum {
    MX_STATE_RES_V1 = 1,        /* v1 */
    MX_STATE_RES_V2,            /* v2 to v11 */
    MX_STATE_RES_V2_1           /* v12 */
} mx_state_res_t;

typedef struct {
    const char            *id;               /* "1" .. "12" */
    int                    num;
    mx_event_id_format_t   event_id;
    mx_redaction_t         redaction;
    mx_state_res_t         state_res;

    /* canonical JSON: no floats, integers in range (v6+) */
    unsigned               strict_canonical:1;
    /* the lesser of valid_until_ts and 7 days bounds key validity (v5+) */
    unsigned               key_validity:1;
    /* m.room.aliases has its own auth rule (v1 to v5) */
    unsigned               aliases_rule:1;
    /* m.room.redaction has an auth rule of its own (v1, v2) */
    unsigned               redaction_rule:1;
    /* the "notifications" power level is checked (v6+) */
    unsigned               notifications_pl:1;
    /* membership "knock" (v7+) */
    unsigned               knock:1;
    /* join rule "restricted" and join_authorised_via_users_server (v8+) */
    unsigned               restricted:1;
    /* join rule "knock_restricted" (v10+) */
    unsigned               knock_restricted:1;
    /* power levels must be integers (v10+); strings allowed before */
    unsigned               integer_pl:1;
    /* power levels may be floats (v1 to v5) */
    unsigned               float_pl:1;
    /* the creator is the create event's sender, no "creator" (v11+) */
    unsigned               creator_is_sender:1;
    /* room ID is the create event's ID; creators have infinite power (v12) */
    unsigned               room_id_from_create:1;
} mx_room_version_t;

/* NULL for a version this server does not know */
const mx_room_version_t *mx_room_version(const char *id, size_t len);

/* all known versions, in order, ending with NULL id */
extern const mx_room_version_t  mx_room_versions[];

#endif /* MX_ROOM_VERSION_H */

/*
 * mx_room_version: the room version table.  See mx_room_version.h and the
 * "Room versions" section of the spec.
 */

#include <string.h>

#include "mx_room_version.h"


#define ID_OPAQUE   MX_EVENT_ID_OPAQUE
#define ID_HASH     MX_EVENT_ID_HASH
#define ID_URLSAFE  MX_EVENT_ID_HASH_URLSAFE

/*  id    num event_id    redaction      state_res
 *        strict keyval aliases redact notif knock restr knockr intpl floatpl
 *        creator roomid */
const mx_room_version_t  mx_room_versions[] = {
    { "1",  1,  ID_OPAQUE,  MX_REDACT_V1,  MX_STATE_RES_V1,
      0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0 },
    { "2",  2,  ID_OPAQUE,  MX_REDACT_V1,  MX_STATE_RES_V2,
      0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 0 },
    { "3",  3,  ID_HASH,    MX_REDACT_V1,  MX_STATE_RES_V2,
      0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0 },
    { "4",  4,  ID_URLSAFE, MX_REDACT_V1,  MX_STATE_RES_V2,
      0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0 },
    { "5",  5,  ID_URLSAFE, MX_REDACT_V1,  MX_STATE_RES_V2,
      0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0 },
    { "6",  6,  ID_URLSAFE, MX_REDACT_V6,  MX_STATE_RES_V2,
      1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 },
    { "7",  7,  ID_URLSAFE, MX_REDACT_V6,  MX_STATE_RES_V2,
      1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0 },
    { "8",  8,  ID_URLSAFE, MX_REDACT_V8,  MX_STATE_RES_V2,
      1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0 },
    { "9",  9,  ID_URLSAFE, MX_REDACT_V9,  MX_STATE_RES_V2,
      1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0 },
    { "10", 10, ID_URLSAFE, MX_REDACT_V9,  MX_STATE_RES_V2,
      1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0 },
    { "11", 11, ID_URLSAFE, MX_REDACT_V11, MX_STATE_RES_V2,
      1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0 },
    { "12", 12, ID_URLSAFE, MX_REDACT_V11, MX_STATE_RES_V2_1,
      1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 1, 1 },
    { NULL, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
};


const mx_room_version_t *
mx_room_version(const char *id, size_t len)
{
    const mx_room_version_t  *v;

    for (v = mx_room_versions; v->id; v++) {
        if (strlen(v->id) == len && memcmp(v->id, id, len) == 0) {
            return v;
        }
    }

    return NULL;
}

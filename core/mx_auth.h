/*
 * mx_auth: the authorization rules of room versions 1 to 12, and the
 * selection of an event's auth events.
 *
 * An event is parsed once into an mx_auth_event_t, a read-only view of the
 * fields the rules and state resolution look at.  A room state is an
 * mx_state_t, a hash table from (type, state_key) to such a view.  The rules
 * never read the whole state: they ask for at most seven entries (create,
 * power levels, join rules, the sender's, the target's and the authorising
 * user's membership, a third-party invite), through a lookup function, so
 * state resolution can answer from its partial state and the event's own
 * auth events without building a map per event.
 *
 *   mx_auth_check()              against a state map (state before the
 *                                event, or the current state: soft failure)
 *   mx_auth_check_auth_events()  against the event's auth events, with the
 *                                rules about the auth events themselves
 *   mx_auth_check_lookup()       against anything that answers a lookup
 *
 * A refusal names the rule that refused it with a short stable string such
 * as "join.banned" or "power_levels.users_new"; mx_auth_reason_text() gives
 * a sentence for people.
 *
 * Signatures: the rules ask that an event carrying
 * join_authorised_via_users_server be signed by that user's server.  Here
 * that means a signature entry for the server is present; verifying it
 * needs the server's keys, which belongs to the signature checks performed
 * on receipt of a PDU.  Third-party invite signatures are verified here,
 * against the keys in the m.room.third_party_invite event.
 */

#ifndef MX_AUTH_H
#define MX_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "mx_json.h"
#include "mx_pool.h"
#include "mx_room_version.h"


#define MX_AUTH_ALLOW   0
#define MX_AUTH_DENY    1
#define MX_AUTH_ERROR  -1           /* out of memory */

/* the most auth events a selection can name */
#define MX_AUTH_KEYS_MAX  7

/* the power level of a v12 room creator */
#define MX_PL_INFINITE  INT64_MAX


typedef struct mx_auth_event_s  mx_auth_event_t;

struct mx_auth_event_s {
    const char            *event_id;
    const char            *room_id;       /* NULL when absent (v12 create) */
    const char            *type;
    const char            *state_key;     /* NULL when absent */
    const char            *sender;
    const mx_json_t       *content;       /* an object, never NULL */
    const char            *membership;    /* content.membership or NULL */
    const char           **prev_events;
    size_t                 n_prev;
    const char           **auth_events;
    size_t                 n_auth;
    int64_t                origin_server_ts;
    int64_t                depth;
    const char            *redacts;       /* top level, or content (v11+) */
    const mx_json_t       *json;          /* the whole PDU */
    unsigned               rejected:1;    /* set by the caller */
};

typedef struct {
    const char            *type;
    const char            *state_key;
} mx_auth_key_t;

typedef struct mx_state_s  mx_state_t;

/* one state entry, or NULL; type and state_key are NUL-terminated */
typedef const mx_auth_event_t *(*mx_auth_lookup_pt)(void *ctx,
    const char *type, const char *state_key);


/*
 * The view of one PDU.  event_id NULL takes "event_id" from the JSON (room
 * versions 1 and 2 carry it; later versions compute it from the reference
 * hash, which the caller passes).  prev_events and auth_events may be lists
 * of IDs or, as in versions 1 and 2, of [ID, hashes] pairs.  NULL and *err
 * when the PDU lacks a field the rules need or has one of the wrong type.
 */
mx_auth_event_t *mx_auth_event_from_json(mx_pool_t *pool,
    const mx_json_t *json, const char *event_id, const char **err);


/* state maps: (type, state_key) -> event */
mx_state_t *mx_state_create(mx_pool_t *pool, size_t hint);
const mx_auth_event_t *mx_state_get(const mx_state_t *state,
    const char *type, const char *state_key);
/* insert or replace the entry of ev's key; ev must be a state event */
int mx_state_put(mx_state_t *state, const mx_auth_event_t *ev);
size_t mx_state_count(const mx_state_t *state);
/* iteration: *i starts at 0; NULL at the end */
const mx_auth_event_t *mx_state_next(const mx_state_t *state, size_t *i);
mx_state_t *mx_state_copy(mx_pool_t *pool, const mx_state_t *state);
/*
 * The same with the key's hash, for callers that look one key up in many
 * maps (state resolution): the hash of an entry comes with it from
 * mx_state_next_hash(), and mx_state_key_hash() computes one.
 */
const mx_auth_event_t *mx_state_next_hash(const mx_state_t *state, size_t *i,
    uint64_t *hash);
const mx_auth_event_t *mx_state_get_hash(const mx_state_t *state,
    const char *type, const char *state_key, uint64_t hash);
uint64_t mx_state_key_hash(const char *type, const char *state_key);
/* entries sorted by (type, state_key); NULL on ENOMEM */
const mx_auth_event_t **mx_state_sorted(mx_pool_t *pool,
    const mx_state_t *state, size_t *n);
/* an mx_auth_lookup_pt over a state map (ctx is the map) */
const mx_auth_event_t *mx_state_lookup(void *ctx, const char *type,
    const char *state_key);


/*
 * Auth events selection: the (type, state_key) pairs an event's auth events
 * are chosen from, create first (except in v12).  Returns their number.
 */
size_t mx_auth_keys(const mx_room_version_t *rv, const mx_auth_event_t *ev,
    mx_auth_key_t keys[MX_AUTH_KEYS_MAX]);

/* the events of those pairs present in state, in the same order */
size_t mx_auth_select(const mx_room_version_t *rv, const mx_auth_event_t *ev,
    const mx_state_t *state, const mx_auth_event_t *out[MX_AUTH_KEYS_MAX]);


/* the rules, against a lookup */
int mx_auth_check_lookup(mx_pool_t *pool, const mx_room_version_t *rv,
    const mx_auth_event_t *ev, mx_auth_lookup_pt lookup, void *ctx,
    const char **reason);

/* the rules, against a state map */
int mx_auth_check(mx_pool_t *pool, const mx_room_version_t *rv,
    const mx_auth_event_t *ev, const mx_state_t *state, const char **reason);

/*
 * The rules against the event's own auth events (auth[0..n)), including
 * those about the auth events: no duplicates, only selected pairs, none
 * rejected, all of the event's room, the create event among them.  In v12
 * the create event is not an auth event: pass it as create (found from the
 * room ID); before v12 create is ignored.
 */
int mx_auth_check_auth_events(mx_pool_t *pool, const mx_room_version_t *rv,
    const mx_auth_event_t *ev, const mx_auth_event_t **auth, size_t n,
    const mx_auth_event_t *create, const char **reason);

/* a sentence for a reason string, for logs and matrixctl */
const char *mx_auth_reason_text(const char *reason);


/*
 * Power levels.  A value, by room version: integers always; strings holding
 * an integer ("+100", " 0050 ") before v10; floats, truncated, before v6.
 * 0, or -1 when the value is not a valid power level in that version.
 */
int mx_auth_pl_value(const mx_room_version_t *rv, const mx_json_t *v,
    int64_t *out);

/*
 * The power level of user in a room whose create event and power levels
 * event (either may be NULL) are given; MX_PL_INFINITE for v12 creators.
 */
int64_t mx_auth_user_level(const mx_room_version_t *rv,
    const mx_auth_event_t *create, const mx_auth_event_t *power_levels,
    const char *user);

/* the room version a create event names ("1" when it names none) */
const mx_room_version_t *mx_auth_create_version(const mx_auth_event_t *create);

#endif /* MX_AUTH_H */

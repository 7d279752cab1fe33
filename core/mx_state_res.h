/*
 * mx_state_res: state resolution.
 *
 *   room version 1       v1    (rooms/v1.md, State resolution)
 *   room versions 2-11   v2    (fragments/v2-state-res.md)
 *   room version 12      v2.1  (rooms/v12.md: the iterative auth checks of
 *                               power events start from an empty state, and
 *                               the conflicted state subgraph joins the full
 *                               conflicted set)
 *
 * Events come through a callback, so the caller decides where they live
 * (Redis in the roomserver, a hash table in tests).  The resolver asks for
 * each event at most once per run and keeps what it learns about it in
 * hash tables keyed by event ID; every pass is linear in the events it
 * touches, except the sorts, which are n log n.
 *
 * Everything a run allocates comes from the pool it is given; the result
 * holds pointers to the caller's events.
 */

#ifndef MX_STATE_RES_H
#define MX_STATE_RES_H

#include <stddef.h>

#include "mx_auth.h"
#include "mx_pool.h"
#include "mx_room_version.h"


/* the event with this ID, or NULL when the caller does not have it */
typedef const mx_auth_event_t *(*mx_state_res_fetch_pt)(void *ctx,
    const char *event_id);


/*
 * Resolve n state sets into *out.  0, or -1 when out of memory.  Events the
 * callback cannot produce are left out of the auth chains they would have
 * been part of.
 */
int mx_state_resolve(mx_pool_t *pool, const mx_room_version_t *rv,
    const mx_state_t *const *sets, size_t n, mx_state_res_fetch_pt fetch,
    void *ctx, mx_state_t **out);

/* a state map from a list of event IDs; NULL when one cannot be fetched
   (*missing names it) or on ENOMEM */
mx_state_t *mx_state_from_ids(mx_pool_t *pool, const char *const *ids,
    size_t n, mx_state_res_fetch_pt fetch, void *ctx, const char **missing);

#endif /* MX_STATE_RES_H */

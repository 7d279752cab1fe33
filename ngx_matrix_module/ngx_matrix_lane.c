/*
 * Lanes: how concurrent sends to one room stay one line of events.
 *
 * A send reads the room's forward extremities and builds on them.  Sends
 * that overlap read the same extremities, so each builds a branch of its
 * own: 64 clients sending at once leave 64 extremities, every next event
 * merges 20 of them, and the room's DAG, its events and the roomserver's
 * work all widen with the load.
 *
 * This worker knows its own sends, though, even before the roomserver has
 * stored them.  The lane of a room is the last event this worker built in
 * it (its tip) and a ring of hashes of the events the tip descends from.
 * The next send builds on the tip plus the extremities Redis gives that
 * are not among those ancestors (events of the other workers, of
 * federation).  The room then has about one extremity per worker.
 *
 * The worker's sends reach Redis in the order they are built (one command
 * connection), so the roomserver always has the tip before the event on
 * it.  A send whose submit fails, or whose verdict is a refusal or does not
 * come, closes the lane: the next send reads the room again.  A lane not
 * used for a few seconds closes too.  Room versions 1 and 2 reference
 * their prev events with hashes, which the tip does not keep: no lanes.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


#define NGX_MATRIX_LANES       128          /* rooms, direct-mapped */
#define NGX_MATRIX_LANE_RING   256          /* ancestors remembered */
#define NGX_MATRIX_LANE_ID     128
#define NGX_MATRIX_LANE_ROOM   256
#define NGX_MATRIX_LANE_TTL    5000         /* ms */


typedef struct {
    u_char        room[NGX_MATRIX_LANE_ROOM];
    size_t        room_len;                 /* 0: a free slot */
    char          tip[NGX_MATRIX_LANE_ID];
    int64_t       depth;
    ngx_msec_t    used;
    ngx_uint_t    next;                     /* the ring's next slot */
    uint64_t      ring[NGX_MATRIX_LANE_RING];
} ngx_matrix_lane_t;


static ngx_matrix_lane_t  *ngx_matrix_lanes;


static uint64_t
ngx_matrix_lane_hash(const char *id, size_t len)
{
    return ((uint64_t) ngx_crc32_short((u_char *) id, len) << 32)
           | ngx_murmur_hash2((u_char *) id, len);
}


/* the lane of a room: its slot, whether or not the room holds it now */

static ngx_matrix_lane_t *
ngx_matrix_lane_slot(const char *room_id, size_t len)
{
    if (ngx_matrix_lanes == NULL) {
        ngx_matrix_lanes = ngx_calloc(NGX_MATRIX_LANES
                                      * sizeof(ngx_matrix_lane_t),
                                      ngx_cycle->log);
        if (ngx_matrix_lanes == NULL) {
            return NULL;
        }
    }

    return &ngx_matrix_lanes[ngx_murmur_hash2((u_char *) room_id, len)
                             % NGX_MATRIX_LANES];
}


static ngx_matrix_lane_t *
ngx_matrix_lane_find(const char *room_id)
{
    size_t              len;
    ngx_matrix_lane_t  *l;

    len = ngx_strlen(room_id);

    l = ngx_matrix_lane_slot(room_id, len);
    if (l == NULL || l->room_len != len
        || ngx_memcmp(l->room, room_id, len) != 0)
    {
        return NULL;
    }

    if (ngx_current_msec - l->used > NGX_MATRIX_LANE_TTL) {
        l->room_len = 0;
        return NULL;
    }

    return l;
}


static ngx_int_t
ngx_matrix_lane_covers(ngx_matrix_lane_t *l, const char *id)
{
    uint64_t    h;
    ngx_uint_t  i;

    h = ngx_matrix_lane_hash(id, ngx_strlen(id));

    for (i = 0; i < NGX_MATRIX_LANE_RING; i++) {
        if (l->ring[i] == h) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_matrix_lane_remember(ngx_matrix_lane_t *l, const char *id)
{
    l->ring[l->next] = ngx_matrix_lane_hash(id, ngx_strlen(id));
    l->next = (l->next + 1) % NGX_MATRIX_LANE_RING;
}


/*
 * Before a build: put the tip in front of s->prev and drop the extremities
 * the tip descends from.
 */

void
ngx_matrix_lane_apply(ngx_matrix_req_t *mr, ngx_matrix_send_t *s)
{
    mx_pool_t               *pool;
    mx_auth_event_t         *tip;
    const mx_auth_event_t  **prev;
    ngx_matrix_lane_t       *l;
    size_t                   i, n;

    if (s->chain || s->rv->event_id == MX_EVENT_ID_OPAQUE) {
        return;
    }

    l = ngx_matrix_lane_find(s->room_id);
    if (l == NULL) {
        return;
    }

    pool = ngx_matrix_pool(mr);
    tip = mx_pcalloc(pool, sizeof(mx_auth_event_t));
    prev = mx_palloc(pool, (s->n_prev + 1) * sizeof(void *));
    if (tip == NULL || prev == NULL) {
        return;
    }

    tip->event_id = mx_pstrndup(pool, l->tip, ngx_strlen(l->tip));
    tip->depth = l->depth;
    if (tip->event_id == NULL) {
        return;
    }

    n = 0;
    prev[n++] = tip;

    for (i = 0; i < s->n_prev && n < MX_EVENT_MAX_PREV; i++) {
        if (!ngx_matrix_lane_covers(l, s->prev[i]->event_id)) {
            prev[n++] = s->prev[i];
        }
    }

    s->prev = prev;
    s->n_prev = n;
}


/* after a build: the event is the room's new tip */

void
ngx_matrix_lane_built(ngx_matrix_send_t *s, const mx_auth_event_t *ev)
{
    size_t              len;
    ngx_uint_t          i;
    ngx_matrix_lane_t  *l;

    if (s->chain || s->n != 1 || s->rv->event_id == MX_EVENT_ID_OPAQUE) {
        return;
    }

    len = ngx_strlen(s->room_id);

    if (len > NGX_MATRIX_LANE_ROOM
        || ngx_strlen(ev->event_id) >= NGX_MATRIX_LANE_ID)
    {
        return;
    }

    l = ngx_matrix_lane_slot(s->room_id, len);
    if (l == NULL) {
        return;
    }

    if (l->room_len != len || ngx_memcmp(l->room, s->room_id, len) != 0) {
        ngx_memzero(l, sizeof(ngx_matrix_lane_t));
        ngx_memcpy(l->room, s->room_id, len);
        l->room_len = len;
    }

    for (i = 0; i < ev->n_prev; i++) {
        if (!ngx_matrix_lane_covers(l, ev->prev_events[i])) {
            ngx_matrix_lane_remember(l, ev->prev_events[i]);
        }
    }

    ngx_matrix_lane_remember(l, ev->event_id);

    ngx_cpystrn((u_char *) l->tip, (u_char *) ev->event_id,
                NGX_MATRIX_LANE_ID);
    l->depth = ev->depth;
    l->used = ngx_current_msec;
}


/* a send that may not have reached the roomserver, or was refused */

void
ngx_matrix_lane_close(const char *room_id)
{
    ngx_matrix_lane_t  *l;

    l = ngx_matrix_lane_find(room_id);
    if (l != NULL) {
        l->room_len = 0;
    }
}

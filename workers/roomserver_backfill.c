/*
 * roomserver_backfill: history of a room joined through another server.
 *
 * A room joined with join_state (roomserver_join.c) starts here at the
 * join: the events before it are not ours.  Once the join is stored, the
 * roomserver asks the fedsender for some of them (fire and forget):
 *
 *   XADD mx:fedjobs kind=backfill room destination (the resident) v (the
 *   join's prev_events, space-separated) limit
 *
 * The fedsender (fedsender_backfill.c) fetches GET
 * /_matrix/federation/v1/backfill/{roomId}?v=...&limit=... and puts what
 * came on the room's input shard:
 *
 *   kind=backfill room origin events (JSON array of PDUs)
 *
 * Here each event is checked as the join's state was: its ID from its
 * hash, the room, its signatures and hashes (rs_verify_json, keys from the
 * cache), the auth rules against its own auth events (stored ones,
 * outliers of the join's auth chain among them, or others of the batch,
 * oldest first).  One that fails is left out, and so are those whose auth
 * events it is.  Those kept are stored as history (mx_room_backfill):
 * outliers for the room's state (the current state and the forward
 * extremities do not change, no output entry), with timeline positions
 * below the room's first event, in order of depth, so /messages
 * backwards goes on from the join into them.  An outlier stored with the
 * join (the state's events, the room's creation) is placed in the
 * timeline the same way; an event in the timeline already stays where it
 * is.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mx_event.h>

#include "roomserver.h"


#define RS_BACKFILL_LIMIT  50           /* events asked for */
#define RS_BACKFILL_MAX    200          /* events taken from one answer */


void
rs_backfill_request(mxw_t *w, const char *room_id, const char *origin,
    const mx_auth_event_t *join)
{
    redisReply  *r;
    const char  *argv[13];
    size_t       lens[13], len, i;
    char        *v, lim[16];
    int          k;

    if (origin == NULL || origin[0] == '\0' || join->n_prev == 0) {
        return;
    }

    len = 1;
    for (i = 0; i < join->n_prev; i++) {
        len += strlen(join->prev_events[i]) + 1;
    }

    v = malloc(len);
    if (v == NULL) {
        return;
    }

    v[0] = '\0';
    for (i = 0; i < join->n_prev; i++) {
        if (i) {
            strcat(v, " ");
        }
        strcat(v, join->prev_events[i]);
    }

    snprintf(lim, sizeof(lim), "%d", RS_BACKFILL_LIMIT);

    k = 0;
    argv[k++] = "XADD";
    argv[k++] = "mx:fedjobs";
    argv[k++] = "*";
    argv[k++] = "kind";
    argv[k++] = "backfill";
    argv[k++] = "room";
    argv[k++] = room_id;
    argv[k++] = "destination";
    argv[k++] = origin;
    argv[k++] = "v";
    argv[k++] = v;
    argv[k++] = "limit";
    argv[k++] = lim;

    for (i = 0; i < (size_t) k; i++) {
        lens[i] = strlen(argv[i]);
    }

    /* nobody waits for it: a failure costs the history, not the join */
    r = mxw_commandv(w, k, argv, lens);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        mxw_info(w, "%s: no backfill asked: %s", room_id,
                 r ? r->str : "redis");
    }

    if (r) {
        freeReplyObject(r);
    }

    free(v);
}


mxw_result_t
rs_process_backfill(mxw_t *w, const mxw_entry_t *e, void *data, char *why,
    size_t why_len)
{
    const char              *room_id, *origin, *text, *id, *reason, *cid;
    const char              *rid;
    size_t                   len, i, k, n, left;
    rs_room_t               *room;
    rs_event_t              *re, *create_re, **evs;
    mx_pool_t               *pool;
    mx_json_t               *list, *one;
    mx_json_error_t          err;
    const mx_auth_event_t   *create;
    char                    *enc;
    long long                placed;
    rs_verify_t              rc;
    int                      failed;
    mxw_result_t             result;

    (void) data;

    room_id = mxw_entry_get(e, "room", NULL);
    origin = mxw_entry_get(e, "origin", NULL);
    text = mxw_entry_get(e, "events", &len);

    if (room_id == NULL || text == NULL) {
        snprintf(why, why_len, "a backfill entry needs room and events");
        return MXW_REJECT;
    }

    room = rs_room_get(w, room_id, NULL, why, why_len);
    if (room == NULL) {
        return strcmp(why, "redis") == 0 ? MXW_RETRY : MXW_REJECT;
    }

    /* history of a room we are in, only */
    if (room->current == NULL || room->current->map.n == 0) {
        rs_room_drop(room);
        snprintf(why, why_len, "backfill of %s, a room unknown here",
                 room_id);
        return MXW_REJECT;
    }

    pool = mx_pool_create(65536);
    if (pool == NULL) {
        rs_room_drop(room);
        return MXW_RETRY;
    }

    result = MXW_RETRY;

    list = mx_json_parse(room->pool, text, len, &err);
    if (list == NULL || list->type != MX_JSON_ARRAY) {
        snprintf(why, why_len, "events is not a JSON array");
        result = MXW_REJECT;
        goto done;
    }

    n = list->u.a.n < RS_BACKFILL_MAX ? list->u.a.n : RS_BACKFILL_MAX;
    evs = mx_palloc(pool, (n + 1) * sizeof(rs_event_t *));
    if (evs == NULL) {
        goto done;
    }

    cid = rs_ids_get(room->current, "m.room.create", "");
    failed = 0;
    create_re = cid ? rs_event_get(w, room, cid, &failed) : NULL;
    if (failed) {
        goto done;
    }
    create = create_re ? create_re->ev : NULL;

    /*
     * each event: its ID, the room, stored before (an outlier of the join
     * is placed, nothing else) or its signatures; a new one is marked
     * rejected until the auth rules have taken it, so none counts on it
     * before
     */
    k = 0;

    for (i = 0; i < n; i++) {
        one = list->u.a.v[i];
        id = mx_event_id(pool, one, room->rv);
        enc = mx_json_encode(pool, one, mx_event_json_flags(room->rv), &len);
        if (id == NULL || enc == NULL) {
            continue;
        }

        rid = mx_json_get_str(one, "room_id", NULL);
        if (rid != NULL && strcmp(rid, room_id) != 0) {
            mxw_info(w, "%s: backfilled %s is of another room", room_id, id);
            continue;
        }

        failed = 0;
        re = rs_event_get(w, room, id, &failed);
        if (failed) {
            goto done;
        }

        if (re != NULL) {
            if ((re->flags & RS_F_OUTLIER) && !(re->flags & RS_F_REJECTED)) {
                evs[k++] = re;
            }
            continue;
        }

        re = rs_event_checked(w, room, id, one, enc, len, &rc, why, why_len);
        if (re == NULL) {
            if (rc != RS_VERIFY_DROP) {
                goto done;
            }
            mxw_info(w, "%s: backfilled %s dropped: %s", room_id, id, why);
            continue;
        }

        re->flags |= RS_F_REJECTED;
        evs[k++] = re;
    }

    /* the auth rules, each against its own auth events, oldest first;
     * an event refused is left out, and those it would authorise */
    qsort(evs, k, sizeof(rs_event_t *), rs_event_depth_cmp);

    for (i = 0, left = 0; i < k; i++) {
        re = evs[i];

        if (re->flags & RS_F_REJECTED) {
            if (rs_event_auth_own(w, pool, room, re, create, &reason) != 0) {
                goto done;
            }

            if (reason != NULL) {
                mxw_info(w, "%s: backfilled %s left out: %s", room_id,
                         re->ev->event_id, mx_auth_reason_text(reason));
                continue;
            }

            re->flags = (re->flags & ~RS_F_REJECTED) | RS_F_OUTLIER;
        }

        evs[left++] = re;
    }

    /* positions in the room: the new ones take theirs (the others keep
     * their own, the position given is not used) */
    placed = left ? rs_events_fcall(w, pool, room, "mx_room_backfill", NULL,
                                    evs, left, room->pos + 1)
                  : 0;
    if (placed < 0) {
        goto done;
    }

    mxw_info(w, "%s: backfilled from %s: %zu events, %lld placed in the"
             " timeline", room_id, origin ? origin : "?", n, placed);

    result = MXW_DONE;

done:

    /* read from Redis again by the next event: the events refused here
     * must not stay in the cache */
    rs_room_drop(room);
    mx_pool_destroy(pool);

    return result;
}

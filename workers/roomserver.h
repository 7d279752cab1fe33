/*
 * rs: the roomserver's rooms.
 *
 * The roomserver is the only writer of room state, and one roomserver owns
 * a room's input shard at a time, so it keeps what it knows of a room in
 * memory and reads Redis only on a miss:
 *
 *   rs_room_t     a room: version, current state as (type, state_key) ->
 *                 event ID, forward extremities, the counters of its keys;
 *                 events and state groups it has seen, by ID
 *   rs_event_t    an event: its view for the auth rules (mx_auth_event_t),
 *                 its stream position, the state group after it, flags
 *
 * Everything of a room comes from the room's own pool, released when the
 * room leaves the cache (too big, or idle).
 */

#ifndef RS_H
#define RS_H

#include <mx_auth.h>
#include <mx_idmap.h>
#include <mx_json.h>
#include <mx_pool.h>
#include <mx_room_version.h>

#include "mxw.h"


#define RS_SEP          '\037'      /* between type and state_key */

#define RS_F_REJECTED   0x01
#define RS_F_SOFT       0x02
#define RS_F_OUTLIER    0x04


typedef struct rs_event_s  rs_event_t;

struct rs_event_s {
    mx_auth_event_t        *ev;
    const char             *pdu;       /* as stored */
    size_t                  pdu_len;
    int64_t                 pos;
    int64_t                 sg;        /* state group after it */
    int64_t                 depth;
    unsigned                flags;
};

/* a state as event IDs: "<type>\037<state_key>" -> event ID */
typedef struct {
    mx_idmap_t              map;
} rs_ids_t;

typedef struct rs_room_s  rs_room_t;

struct rs_room_s {
    char                   *room_id;
    const mx_room_version_t *rv;
    mx_pool_t              *pool;
    mx_idmap_t              events;    /* event ID -> rs_event_t */
    mx_idmap_t              groups;    /* "<n>" -> rs_ids_t, state groups */
    rs_ids_t               *current;
    int64_t                 cur_sg;    /* -1: resolved, in no group */
    int64_t                 cur_n;     /* entries down its delta chain */
    int64_t                 pos;
    int64_t                 sg_last;   /* the last state group numbered */
    int64_t                 depth;
    const char            **extrem;
    size_t                  nextrem;
    int64_t                 used_ms;   /* for the cache */
    rs_room_t              *next;
};


/* rs_room.c */
rs_room_t *rs_room_get(mxw_t *w, const char *room_id, const char *version,
    char *why, size_t why_len);
void rs_room_drop(rs_room_t *room);
void rs_rooms_drop_all(void);
void rs_rooms_trim(int64_t now);

rs_ids_t *rs_ids_new(mx_pool_t *pool, size_t hint);
const char *rs_ids_get(rs_ids_t *ids, const char *type,
    const char *state_key);
int rs_ids_set(mx_pool_t *pool, rs_ids_t *ids, const char *type,
    const char *state_key, const char *event_id);
rs_ids_t *rs_ids_copy(mx_pool_t *pool, rs_ids_t *ids);

/* an event by ID: the cache, then Redis; NULL when there is none */
rs_event_t *rs_event_get(mxw_t *w, rs_room_t *room, const char *event_id,
    int *failed);
/* several at once, into the cache; -1 when Redis failed */
int rs_events_load(mxw_t *w, rs_room_t *room, const char **ids, size_t n);
rs_event_t *rs_event_add(rs_room_t *room, const char *event_id,
    const char *pdu, size_t len, const char *meta, char *why, size_t wlen);
/* the same with the PDU parsed already (json, an object of room->pool, is
 * the event's from then on; NULL: parse pdu) */
rs_event_t *rs_event_add_json(rs_room_t *room, const char *event_id,
    const char *pdu, size_t len, mx_json_t *json, const char *meta,
    char *why, size_t wlen);

/* the state of a state group, as IDs (cached); NULL when Redis failed */
rs_ids_t *rs_group_get(mxw_t *w, rs_room_t *room, int64_t sg);

/* a state of IDs as an mx_state_t of events, for state resolution */
mx_state_t *rs_ids_state(mxw_t *w, rs_room_t *room, mx_pool_t *pool,
    rs_ids_t *ids);

/* rs_process.c */
void rs_failed(mxw_t *w, void *data);
/* answer the entry's reply address, if any: a JSON text, or an error */
void rs_answer(mxw_t *w, const mxw_entry_t *e, const char *json);
void rs_answer_error(mxw_t *w, const mxw_entry_t *e, int status,
    const char *errcode, const char *error);

/* roomserver_join.c: a room joined through another server */
mxw_result_t rs_process_join_state(mxw_t *w, const mxw_entry_t *e,
    void *data, char *why, size_t why_len);

/* roomserver_backfill.c: after a join through origin, ask the fedsender
 * for the history before it (a job on mx:fedjobs, nobody waits); the
 * history it brings, stored below the room's timeline */
void rs_backfill_request(mxw_t *w, const char *room_id, const char *origin,
    const mx_auth_event_t *join);
mxw_result_t rs_process_backfill(mxw_t *w, const mxw_entry_t *e,
    void *data, char *why, size_t why_len);

/* another server's state and auth chain, checked into the room's cache
 * (see roomserver_join.c; join NULL: an event over a gap): 0 done,
 * 1 refused (why), -1 retry */
typedef struct {
    rs_event_t   *re;
    int           in_state;
} rs_given_t;

int rs_given_state(mxw_t *w, rs_room_t *room, mx_pool_t *pool,
    mx_json_t *list, mx_json_t *chain, rs_event_t *join, rs_given_t **out,
    size_t *nout, mx_state_t **out_state, char *why, size_t why_len);
/* evs[0..n-1] stored as outliers, the first at position pos */
int rs_given_outliers(mxw_t *w, mx_pool_t *pool, rs_room_t *room,
    const char *version, rs_given_t *evs, size_t n, int64_t pos);

/* roomserver_verify.c: an event from another server */
typedef enum {
    RS_VERIFY_OK = 0,       /* *redacted set when it is to be kept redacted */
    RS_VERIFY_DROP,         /* a signature failed (why says which) */
    RS_VERIFY_RETRY         /* Redis or memory failed */
} rs_verify_t;

rs_verify_t rs_verify(mxw_t *w, const mx_room_version_t *rv,
    const char *event_id, const char *pdu, size_t len, char **redacted, size_t *redacted_len,
    char *why, size_t why_len);
/* the same of an event parsed already, whose ID its caller computed */
rs_verify_t rs_verify_json(mxw_t *w, const mx_room_version_t *rv,
    const mx_json_t *ev, char **redacted, size_t *redacted_len, char *why,
    size_t why_len);
mxw_result_t rs_process_event(mxw_t *w, const mxw_entry_t *e, void *data,
    char *why, size_t why_len);

/* roomserver_join.c: what the join's state and backfill share: by depth
 * (qsort of rs_event_t *); an event handed over checked and cached; the
 * auth rules against its own auth events; mx_room_outliers or
 * mx_room_backfill of events */
int rs_event_depth_cmp(const void *a, const void *b);
rs_event_t *rs_event_checked(mxw_t *w, rs_room_t *room, const char *id,
    mx_json_t *one, const char *enc, size_t len, rs_verify_t *rc, char *why,
    size_t why_len);
int rs_event_auth_own(mxw_t *w, mx_pool_t *pool, rs_room_t *room,
    rs_event_t *re, const mx_auth_event_t *create, const char **reason);
long long rs_events_fcall(mxw_t *w, mx_pool_t *pool, rs_room_t *room,
    const char *fn, const char *arg, rs_event_t **evs, size_t n, int64_t pos);

#endif /* RS_H */

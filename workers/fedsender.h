/*
 * fedsender: what its parts share.
 *
 *   fedsender.c      the loop, the module's jobs (mx:fedjobs)
 *   fedsender_txn.c  transactions: the per-destination queues
 *                    (lua/fedq.lua), one transaction in flight per
 *                    destination, backoff
 *   fedsender_backfill.c  backfill jobs: the history before a join
 *                    through another server, onto the room's input shard
 */

#ifndef FEDSENDER_H
#define FEDSENDER_H

#include "mxw.h"
#include "mxw_fed.h"


extern mxw_t      *fs_w;
extern mxw_fed_t  *fs_fed;


/* the queues Redis holds, after a start: 0 or -1 (Redis) */
int fs_txn_init(void);

/* an entry of mx:output: a local event, queued for the room's servers */
mxw_result_t fs_event(mxw_t *w, const mxw_entry_t *e, void *data,
    char *why, size_t why_len);

/* an entry of mx:edus: an EDU, queued for its destinations */
mxw_result_t fs_edu(mxw_t *w, const mxw_entry_t *e, void *data, char *why,
    size_t why_len);

/*
 * Start the transactions that may go now; how long the loop may sleep
 * before the next one is due (ms, -1: nothing waits).
 */
int fs_txn_tick(void);

/* a "backfill" job of mx:fedjobs (no answer): MXW_LATER while fetching */
mxw_result_t fs_backfill(mxw_t *w, const mxw_entry_t *e, char *why,
    size_t why_len);

/* forget the backfill jobs in hand (at the end; they stay pending) */
void fs_backfill_fini(void);

/* forget the destinations (at the end) */
void fs_txn_fini(void);

#endif /* FEDSENDER_H */

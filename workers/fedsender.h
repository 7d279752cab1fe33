/*
 * fedsender: what its parts share.
 *
 *   fedsender.c       the loop, the module's jobs (mx:fedjobs): kind
 *                     "request" here
 *   fedsender_keys.c  jobs "keys" and "keys_many": other servers' signing
 *                     keys into the key cache, directly or through a
 *                     notary
 *   fedsender_txn.c   transactions: the per-destination queues
 *                     (lua/fedq.lua), one transaction in flight per
 *                     destination, backoff
 *   fedsender_backfill.c  backfill jobs: the history before a join
 *                     through another server, onto the room's input shard
 */

#ifndef FEDSENDER_H
#define FEDSENDER_H

#include <mx_json.h>

#include "mxw.h"
#include "mxw_fed.h"


extern mxw_t      *fs_w;
extern mxw_fed_t  *fs_fed;


/* a job of the module in hand: an entry of mx:fedjobs not answered yet */
typedef struct fs_job_s  fs_job_t;

struct fs_job_s {
    fs_job_t   *next;           /* jobs in hand */
    char       *id;             /* the entry */
    char       *reply;
    char       *req;
    char       *server;         /* request: the destination */
    void       *keys;           /* keys, keys_many: fedsender_keys.c's */
};


/*
 * Publish "<req> <json>" to the job's reply channel, acknowledge the
 * entry, forget the job (when Redis fails on the way, the entry stays
 * pending and comes again).
 */
void fs_answer(fs_job_t *job, const mx_json_t *answer);
void fs_answer_error(fs_job_t *job, const char *errcode, const char *error);
void fs_answer_ok(fs_job_t *job);

/* forget a job unanswered: its entry stays pending */
void fs_job_forget(fs_job_t *job);

/* fedsender_keys.c: the jobs' handlers (MXW_LATER: answered later) */
mxw_result_t fs_keys(fs_job_t *job, const mxw_entry_t *e);
mxw_result_t fs_keys_many(fs_job_t *job, const mxw_entry_t *e);

/* a keys job forgotten: what waits for its fetches lets go of it */
void fs_keys_drop(fs_job_t *job);

/* between reads: keys_many deadlines, and the notary asked for servers
 * whose own answer is slow */
void fs_keys_tick(void);


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

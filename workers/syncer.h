/*
 * syncer: what its files share.
 *
 *   syncer.c          the consumer of mx:output: stream positions,
 *                     timelines, room lists, wakeups
 *   syncer_notify.c   push rules for every event: the notifications and
 *                     unread counts of local users
 */

#ifndef SYNCER_H
#define SYNCER_H

#include "mxw.h"


/*
 * The notifications of an event of the output log (an entry of kind
 * "event"), stored before the event gets its stream position, so that a
 * /sync that sees the event sees its notifications too.  Call it first for
 * every event, its state changes included, even when the event is seen
 * again.  0, or -1 when Redis failed and the entry must be tried again.
 */
int sy_notify(mxw_t *w, const mxw_entry_t *e);

/* before each batch: forget the push rules of users who changed theirs */
int sy_notify_begin(mxw_t *w, void *data);

#endif /* SYNCER_H */

/*
 * fedsender: outbound federation.

 * It consumes the output log mx:output (group "fedsender"), works out the
 * remote servers concerned and sends them signed transactions, one in
 * flight per destination, with backoff.
 *
 * Entry kinds are added with the flows that produce them: each kind is a
 * handler in the table below.  Until a kind has a handler, its entries are
 * dead-lettered with the reason, never dropped.
 */

#include <string.h>

#include "mxw.h"


/*
 * An accepted event.  Sending it to the other servers of the room comes
 * with federation; until then this server shares rooms with no one, so
 * there is no one to send it to.
 */

static mxw_result_t
fs_event(mxw_t *w, const mxw_entry_t *e, void *data, char *why,
    size_t why_len)
{
    (void) w;
    (void) e;
    (void) data;
    (void) why;
    (void) why_len;

    return MXW_DONE;
}


static mxw_kind_t  kinds[] = {
    { "event", fs_event },
    { NULL, NULL }
};


int
main(int argc, char **argv)
{
    mxw_t            w;
    mxw_consumer_t   cs;
    const char      *consumer;
    const char      *streams[] = { "mx:output" };

    mxw_init(&w, "fedsender", argc, argv, &consumer, NULL, NULL);

    memset(&cs, 0, sizeof(cs));
    cs.group = "fedsender";
    cs.consumer = consumer;
    cs.streams = streams;
    cs.nstreams = 1;
    cs.handler = mxw_dispatch;
    cs.data = kinds;

    /* a few milliseconds on the way to another server matter little; a
     * read per event of a busy server would cost Redis a read per event */
    cs.batch = 256;
    cs.gather_ms = 5;

    mxw_info(&w, "consuming mx:output as %s", consumer);

    return mxw_run(&w, &cs);
}

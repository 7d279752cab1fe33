/*
 * syncer: the client-sync reader.
 *
 * It consumes the output log mx:output (group "syncer"), in order, and for
 * each accepted event:
 *
 *   gives it the next stream position (mx:stream), once: an event
 *   seen again (a redelivery, or the roomserver writing its output entry
 *   twice after a crash) keeps its position
 *        │
 *   adds it to the room's timeline, and the membership changes of the
 *   current state to the users' room lists
 *        │
 *   answers the request that sent it, if any: the client hears "accepted"
 *   once the event is visible to /sync and /messages too
 *
 * There is one syncer: positions must follow the order of the log.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mx_json.h>

#include "mxw.h"
#include "syncer.h"


/*
 * The arguments of mx_sync_position for the state changes in
 * "key\037id\036..." (key "<type>\037<state_key>"): the history visibility
 * event ("-" when it did not change) and a pair (user, member event) per
 * membership that changed.  They point into changes, lengths given.
 */

static int
sy_changes(mx_pool_t *pool, const char *changes, const char ***argv,
    size_t **lens, int *argc)
{
    static const char   hv[] = "m.room.history_visibility\037\037";
    static const char   member[] = "m.room.member\037";
    const char         *p, *end, *sep, **av;
    size_t             *lv, n;
    int                 ac;

    n = 6;
    for (p = changes; *p; p++) {
        n += (*p == '\036') * 2;
    }
    n += 2;

    av = mx_palloc(pool, n * sizeof(char *));
    lv = mx_palloc(pool, n * sizeof(size_t));
    if (av == NULL || lv == NULL) {
        return -1;
    }

    ac = 0;
    av[ac] = "-";
    lv[ac++] = 1;

    for (p = changes; *p; p = *end ? end + 1 : end) {
        end = strchr(p, '\036');
        if (end == NULL) {
            end = p + strlen(p);
        }

        if ((size_t) (end - p) >= sizeof(hv) - 1
            && strncmp(p, hv, sizeof(hv) - 1) == 0)
        {
            av[0] = p + sizeof(hv) - 1;
            lv[0] = (size_t) (end - av[0]);
            continue;
        }

        if ((size_t) (end - p) < sizeof(member) - 1
            || strncmp(p, member, sizeof(member) - 1) != 0)
        {
            continue;
        }

        p += sizeof(member) - 1;
        sep = memchr(p, '\037', (size_t) (end - p));
        if (sep == NULL || sep == p) {
            continue;
        }

        av[ac] = p;
        lv[ac++] = (size_t) (sep - p);
        av[ac] = sep + 1;
        lv[ac++] = (size_t) (end - sep - 1);
    }

    *argv = av;
    *lens = lv;
    *argc = ac;

    return 0;
}


/* mx_sync_position's reply: {position, new} */

static int
sy_position_check(redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? 0 : -1;
}


/*
 * An event becomes visible: one call gives it its position, records the
 * memberships and history visibility it changes, wakes the parked /sync
 * requests concerned and answers its sender.  Pipelined: mxw_drain checks
 * every reply before the batch is acknowledged.
 */

static mxw_result_t
sy_event(mxw_t *w, const mxw_entry_t *e, void *data, char *why,
    size_t why_len)
{
    const char    *room, *event_id, *changes, *reply, *req;
    const char   **argv, **cv;
    size_t         rlen, qlen, *lens, *cl;
    char           key[600];
    int            i, nc;
    mx_pool_t     *pool;
    mxw_result_t   rc;

    (void) data;

    room = mxw_entry_get(e, "room", NULL);
    event_id = mxw_entry_get(e, "event_id", NULL);
    changes = mxw_entry_get(e, "changes", NULL);

    if (room == NULL || event_id == NULL
        || mxw_entry_get(e, "event", NULL) == NULL)
    {
        snprintf(why, why_len, "an event entry needs room, event_id and"
                 " event");
        return MXW_REJECT;
    }

    /* its notifications first: visible with the event or not at all */
    if (sy_notify(w, e) != 0) {
        return MXW_RETRY;
    }

    reply = mxw_entry_get(e, "reply", &rlen);
    req = mxw_entry_get(e, "req", &qlen);
    if (reply == NULL || req == NULL || rlen == 0 || qlen >= 64) {
        reply = "";
        req = "";
        rlen = 0;
        qlen = 0;
    }

    pool = mx_pool_create(1024);
    if (pool == NULL) {
        return MXW_RETRY;
    }

    rc = MXW_RETRY;

    if (sy_changes(pool, changes ? changes : "", &cv, &cl, &nc) != 0) {
        goto done;
    }

    argv = mx_palloc(pool, (size_t) (nc + 8) * sizeof(char *));
    lens = mx_palloc(pool, (size_t) (nc + 8) * sizeof(size_t));
    if (argv == NULL || lens == NULL) {
        goto done;
    }

    snprintf(key, sizeof(key), "mx:{%s}:spos", room);

    argv[0] = "FCALL";
    argv[1] = "mx_sync_position";
    argv[2] = "1";
    argv[3] = key;
    argv[4] = room;
    argv[5] = event_id;
    argv[6] = reply;
    argv[7] = req;

    for (i = 0; i < 8; i++) {
        lens[i] = strlen(argv[i]);
    }
    lens[6] = rlen;
    lens[7] = qlen;

    for (i = 0; i < nc; i++) {
        argv[8 + i] = cv[i];
        lens[8 + i] = cl[i];
    }

    if (mxw_append(w, sy_position_check, nc + 8, argv, lens) == 0) {
        rc = MXW_DONE;
    }

done:

    mx_pool_destroy(pool);
    return rc;
}


static mxw_kind_t  kinds[] = {
    { "event", sy_event },
    { NULL, NULL }
};


int
main(int argc, char **argv)
{
    mxw_t            w;
    mxw_consumer_t   cs;
    const char      *consumer;
    const char      *streams[] = { "mx:output" };

    mxw_init(&w, "syncer", argc, argv, &consumer, NULL, NULL);

    memset(&cs, 0, sizeof(cs));
    cs.group = "syncer";
    cs.consumer = consumer;
    cs.streams = streams;
    cs.nstreams = 1;
    cs.handler = mxw_dispatch;
    cs.data = kinds;
    cs.begin = sy_notify_begin;

    mxw_info(&w, "consuming mx:output as %s", consumer);

    return mxw_run(&w, &cs);
}

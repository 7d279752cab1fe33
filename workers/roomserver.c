/*
 * roomserver: the only writer of room state.
 *
 * It owns input shards mx:input:<n> (n = hash(room_id) mod
 * matrix_input_shards); one roomserver consumes a shard at a time, so the
 * events of a room are processed in order.  Several roomservers split the
 * shards between them with -s.
 *
 * Entry kinds are added with the room flows: each kind is a handler in the
 * table below.  Until a kind has a handler, its entries are dead-lettered
 * with the reason, never dropped.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "roomserver.h"


#define RS_MAX_SHARDS  256


static mxw_kind_t  rs_kinds[] = {
    { "event", rs_process_event },
    { "join_state", rs_process_join_state },
    { "backfill", rs_process_backfill },
    { NULL, NULL }
};

static int   rs_owned[RS_MAX_SHARDS];
static int   rs_nowned;
static char *rs_shards_arg;


static int
rs_option(mxw_t *w, int opt, const char *arg)
{
    (void) w;

    if (opt == 's') {
        rs_shards_arg = strdup(arg);
        return rs_shards_arg ? 0 : -1;
    }

    return -1;
}


/* "-s 0-3,6": the shards this instance owns; all of them by default */

static int
rs_parse_shards(mxw_t *w, int nshards)
{
    char  *p, *end;
    long   from, to, i;

    if (rs_shards_arg == NULL) {
        for (i = 0; i < nshards; i++) {
            rs_owned[rs_nowned++] = (int) i;
        }
        return 0;
    }

    p = rs_shards_arg;

    while (*p) {
        from = strtol(p, &end, 10);
        if (end == p) {
            break;
        }
        to = from;
        p = end;

        if (*p == '-') {
            p++;
            to = strtol(p, &end, 10);
            if (end == p) {
                break;
            }
            p = end;
        }

        if (from < 0 || to >= nshards || from > to) {
            mxw_error(w, "-s %s: shards are 0 to %d", rs_shards_arg,
                      nshards - 1);
            return -1;
        }

        for (i = from; i <= to && rs_nowned < RS_MAX_SHARDS; i++) {
            rs_owned[rs_nowned++] = (int) i;
        }

        if (*p == ',') {
            p++;
        }
    }

    if (*p || rs_nowned == 0) {
        mxw_error(w, "-s %s: expected shards such as 0-3,6", rs_shards_arg);
        return -1;
    }

    return 0;
}


int
main(int argc, char **argv)
{
    mxw_t            w;
    mxw_consumer_t   cs;
    const char      *consumer, *v, **streams;
    char           (*names)[32];
    int              nshards, i, rc;

    mxw_init(&w, "roomserver", argc, argv, &consumer, "s:", rs_option);

    v = mxw_config_get(&w.cf, "matrix_input_shards");
    nshards = v ? atoi(v) : 4;

    if (nshards < 1 || nshards > RS_MAX_SHARDS) {
        mxw_error(&w, "matrix_input_shards must be 1 to %d", RS_MAX_SHARDS);
        return 1;
    }

    if (rs_parse_shards(&w, nshards) != 0) {
        return 2;
    }

    streams = calloc(rs_nowned, sizeof(char *));
    names = calloc(rs_nowned, sizeof(*names));
    if (streams == NULL || names == NULL) {
        return 1;
    }

    for (i = 0; i < rs_nowned; i++) {
        snprintf(names[i], sizeof(names[i]), "mx:input:%d", rs_owned[i]);
        streams[i] = names[i];
    }

    memset(&cs, 0, sizeof(cs));
    cs.group = "roomserver";
    cs.consumer = consumer;
    cs.streams = streams;
    cs.nstreams = rs_nowned;
    cs.handler = mxw_dispatch;
    cs.data = rs_kinds;
    cs.failed = rs_failed;

    mxw_info(&w, "consuming %d of %d input shards as %s", rs_nowned, nshards,
             consumer);

    rc = mxw_run(&w, &cs);

    free(streams);
    free(names);

    return rc;
}

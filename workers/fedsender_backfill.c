/*
 * fedsender_backfill: the history of a room joined through another server.
 *
 * A job of mx:fedjobs that nobody waits for (no reply, no req): the
 * roomserver adds it once a join through the resident server is stored
 * (roomserver_backfill.c):
 *
 *   kind=backfill room destination v (event IDs, space-separated) limit
 *
 * GET /_matrix/federation/v1/backfill/{roomId}?v=...&limit=... of the
 * destination, signed; its pdus go to the room's input shard as one entry
 * for the roomserver, which checks and stores them:
 *
 *   kind=backfill room origin (the destination) events (the pdus, a JSON
 *   array)
 *
 * The job is acknowledged when its request ended, answered or not: the
 * history is a nicety, a server that does not give it costs nothing else.
 * A job a restart interrupts is done again.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mx_json.h>
#include <mx_pool.h>
#include <mx_ids.h>
#include <mx_shard.h>

#include "fedsender.h"


#define FS_BF_JOBS      "mx:fedjobs"
#define FS_BF_GROUP     "fedsender"
#define FS_BF_LIMIT     100             /* most events asked for */
#define FS_BF_IDS       20              /* most v ids */


typedef struct fs_bf_s  fs_bf_t;

struct fs_bf_s {
    fs_bf_t    *next;
    char       *id;                     /* the job's entry */
    char       *room;
    char       *dest;
};


static fs_bf_t  *fs_bfs;                /* jobs in hand */


static void
fs_bf_forget(fs_bf_t *bf)
{
    fs_bf_t  **p;

    for (p = &fs_bfs; *p; p = &(*p)->next) {
        if (*p == bf) {
            *p = bf->next;
            break;
        }
    }

    free(bf->id);
    free(bf->room);
    free(bf->dest);
    free(bf);
}


/* s percent-encoded onto out (room and event IDs in a path or query) */

static char *
fs_bf_escape(char *out, const char *s)
{
    static const char  hex[] = "0123456789ABCDEF";
    unsigned char      c;

    for ( /* void */ ; *s; s++) {
        c = (unsigned char) *s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
            || c == '~')
        {
            *out++ = (char) c;

        } else {
            *out++ = '%';
            *out++ = hex[c >> 4];
            *out++ = hex[c & 15];
        }
    }

    return out;
}


/* the pdus onto the room's input shard; 0, or -1 (Redis) */

static int
fs_bf_input(fs_bf_t *bf, const char *events, size_t len)
{
    const char  *argv[11], *v;
    size_t       lens[11], i;
    char         stream[32];
    unsigned     nshards;
    redisReply  *r;
    int          ok;

    v = mxw_config_get(&fs_w->cf, "matrix_input_shards");
    nshards = v ? (unsigned) atoi(v) : 4;
    if (nshards < 1) {
        nshards = 1;
    }

    snprintf(stream, sizeof(stream), "mx:input:%u",
             mx_room_shard(bf->room, strlen(bf->room), nshards));

    argv[0] = "XADD";
    argv[1] = stream;
    argv[2] = "*";
    argv[3] = "kind";
    argv[4] = "backfill";
    argv[5] = "room";
    argv[6] = bf->room;
    argv[7] = "origin";
    argv[8] = bf->dest;
    argv[9] = "events";
    argv[10] = events;

    for (i = 0; i < 10; i++) {
        lens[i] = strlen(argv[i]);
    }
    lens[10] = len;

    r = mxw_commandv(fs_w, 11, argv, lens);
    if (r == NULL) {
        return -1;
    }

    ok = r->type != REDIS_REPLY_ERROR;
    if (!ok) {
        mxw_error(fs_w, "XADD %s: %s", stream, r->str);
    }

    freeReplyObject(r);

    return ok ? 0 : -1;
}


static void
fs_bf_done(mxw_fed_t *fed, mxw_fed_req_t *rq)
{
    fs_bf_t          *bf;
    mx_pool_t        *pool;
    mx_json_t        *body, *pdus;
    mx_json_error_t   err;
    char             *enc;
    size_t            len;

    (void) fed;

    bf = rq->data;

    if (fs_w->stop) {
        fs_bf_forget(bf);               /* pending: done after the restart */
        return;
    }

    pool = NULL;

    if (rq->status != 200) {
        mxw_info(fs_w, "%s %s: backfill of %s from %s: %s", FS_BF_JOBS,
                 bf->id, bf->room, bf->dest,
                 rq->status ? "refused" : rq->error);
        goto ack;
    }

    pool = mx_pool_create(65536);
    if (pool == NULL) {
        fs_bf_forget(bf);
        return;
    }

    body = rq->resp ? mx_json_parse(pool, rq->resp, rq->resp_len, &err)
                    : NULL;
    pdus = body ? mx_json_get(body, "pdus") : NULL;

    if (pdus == NULL || pdus->type != MX_JSON_ARRAY) {
        mxw_info(fs_w, "%s %s: backfill of %s from %s: no pdus", FS_BF_JOBS,
                 bf->id, bf->room, bf->dest);
        goto ack;
    }

    if (pdus->u.a.n > 0) {
        enc = mx_json_encode(pool, pdus, 0, &len);
        if (enc == NULL || fs_bf_input(bf, enc, len) != 0) {
            mx_pool_destroy(pool);
            fs_bf_forget(bf);           /* comes again */
            return;
        }
    }

    mxw_info(fs_w, "%s %s: backfill of %s from %s: %zu events", FS_BF_JOBS,
             bf->id, bf->room, bf->dest, pdus->u.a.n);

ack:

    (void) mxw_xack(fs_w, FS_BF_JOBS, FS_BF_GROUP, bf->id);

    if (pool) {
        mx_pool_destroy(pool);
    }

    fs_bf_forget(bf);
}


mxw_result_t
fs_backfill(mxw_t *w, const mxw_entry_t *e, char *why, size_t why_len)
{
    fs_bf_t     *bf;
    const char  *room, *dest, *v, *lim;
    char        *path, *p, *ids, *id, *save;
    long         limit;
    int          n;

    (void) w;

    for (bf = fs_bfs; bf; bf = bf->next) {
        if (strcmp(bf->id, e->id) == 0) {
            return MXW_LATER;           /* in hand already */
        }
    }

    room = mxw_entry_get(e, "room", NULL);
    dest = mxw_entry_get(e, "destination", NULL);
    v = mxw_entry_get(e, "v", NULL);
    lim = mxw_entry_get(e, "limit", NULL);

    if (room == NULL || dest == NULL || v == NULL || room[0] != '!'
        || !mx_server_name_valid(dest, strlen(dest)))
    {
        snprintf(why, why_len, "a backfill job needs room, destination"
                 " and v");
        return MXW_REJECT;
    }

    limit = lim ? strtol(lim, NULL, 10) : 50;
    if (limit < 1 || limit > FS_BF_LIMIT) {
        limit = FS_BF_LIMIT;
    }

    /* each character at most 3 once escaped, the v= of each ID */
    path = malloc(64 + 3 * strlen(room) + 3 * strlen(v)
                  + 4 * (strlen(v) + 1));
    ids = strdup(v);
    bf = calloc(1, sizeof(fs_bf_t));

    if (path == NULL || ids == NULL || bf == NULL) {
        free(path);
        free(ids);
        free(bf);
        return MXW_RETRY;
    }

    p = path + sprintf(path, "/_matrix/federation/v1/backfill/");
    p = fs_bf_escape(p, room);
    p += sprintf(p, "?limit=%ld", limit);

    n = 0;
    for (id = strtok_r(ids, " ", &save); id && n < FS_BF_IDS;
         id = strtok_r(NULL, " ", &save), n++)
    {
        p += sprintf(p, "&v=");
        p = fs_bf_escape(p, id);
    }
    *p = '\0';

    free(ids);

    bf->id = strdup(e->id);
    bf->room = strdup(room);
    bf->dest = strdup(dest);
    bf->next = fs_bfs;
    fs_bfs = bf;

    if (n == 0 || bf->id == NULL || bf->room == NULL || bf->dest == NULL) {
        free(path);
        fs_bf_forget(bf);
        if (n == 0) {
            snprintf(why, why_len, "a backfill job needs event IDs in v");
            return MXW_REJECT;
        }
        return MXW_RETRY;
    }

    if (mxw_fed_request(fs_fed, dest, "GET", path, NULL, 0, MXW_FED_SIGN,
                        fs_bf_done, bf)
        != 0)
    {
        free(path);
        fs_bf_forget(bf);
        return MXW_RETRY;
    }

    free(path);

    return MXW_LATER;
}


/* at the end: the jobs in hand stay pending */

void
fs_backfill_fini(void)
{
    while (fs_bfs) {
        fs_bf_forget(fs_bfs);
    }
}

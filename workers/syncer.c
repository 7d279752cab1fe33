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


/* the membership in a member event's content, or "" */

static const char *
sy_membership(mx_pool_t *pool, const char *pdu, size_t len)
{
    mx_json_t        *ev;
    mx_json_error_t   err;
    const char       *m;

    ev = mx_json_parse(pool, pdu, len, &err);
    m = mx_json_get_str(mx_json_get_obj(ev, "content"), "membership", NULL);

    return m ? m : "";
}


static int
sy_membership_set(mxw_t *w, const char *user, const char *room,
    const char *membership, long long pos, const char *event_id)
{
    redisReply  *r;
    char         key[600], p[32];

    snprintf(key, sizeof(key), "mx:{%s}:rooms", user);
    snprintf(p, sizeof(p), "%lld", pos);

    r = mxw_command(w, "FCALL mx_sync_membership 1 %s %s %s %s %s", key,
                    room, membership, p, event_id);
    if (r == NULL) {
        return -1;
    }

    freeReplyObject(r);
    return 0;
}


/*
 * The membership changes in "key\037id\036..." (key "<type>\037<state_key>"):
 * the event itself gives its membership; another event is read from the
 * room.
 */

static int
sy_memberships(mxw_t *w, mx_pool_t *pool, const char *room,
    const char *event_id, const char *pdu, size_t pdu_len,
    const char *changes, long long pos)
{
    const char  *p, *end, *sep, *user_end, *id;
    char         user[300], idbuf[300], key[600];
    const char  *m;
    size_t       ulen, ilen;
    redisReply  *r;

    for (p = changes; *p; p = *end ? end + 1 : end) {
        end = strchr(p, '\036');
        if (end == NULL) {
            end = p + strlen(p);
        }

        if (strncmp(p, "m.room.member\037", 14) != 0) {
            continue;
        }

        user_end = p + 14;
        sep = memchr(user_end, '\037', (size_t) (end - user_end));
        if (sep == NULL) {
            continue;
        }

        ulen = (size_t) (sep - user_end);
        ilen = (size_t) (end - sep - 1);
        if (ulen >= sizeof(user) || ilen >= sizeof(idbuf)) {
            continue;
        }

        memcpy(user, user_end, ulen);
        user[ulen] = '\0';
        memcpy(idbuf, sep + 1, ilen);
        idbuf[ilen] = '\0';
        id = idbuf;

        if (ilen == 0) {
            m = "";

        } else if (strcmp(id, event_id) == 0) {
            m = sy_membership(pool, pdu, pdu_len);

        } else {
            snprintf(key, sizeof(key), "mx:{%s}:room", room);
            r = mxw_command(w, "FCALL mx_room_events 1 %s %s %s", key, room,
                            id);
            if (r == NULL) {
                return -1;
            }

            m = "";
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 1
                && r->element[0]->elements == 2
                && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
            {
                m = mx_pstrndup(pool, sy_membership(pool,
                                       r->element[0]->element[0]->str,
                                       r->element[0]->element[0]->len), 64);
            }

            freeReplyObject(r);
        }

        if (sy_membership_set(w, user, room, m ? m : "", pos, id) != 0) {
            return -1;
        }
    }

    return 0;
}


/* a change of m.room.history_visibility, recorded with its position */

static int
sy_visibility(mxw_t *w, const char *room, const char *changes, long long pos)
{
    static const char   hv[] = "m.room.history_visibility\037\037";
    const char         *p, *end;
    char                key[600], id[300], ps[32];
    size_t              len;
    redisReply         *r;

    for (p = changes; *p; p = *end ? end + 1 : end) {
        end = strchr(p, '\036');
        if (end == NULL) {
            end = p + strlen(p);
        }

        if ((size_t) (end - p) < sizeof(hv) - 1
            || strncmp(p, hv, sizeof(hv) - 1) != 0)
        {
            continue;
        }

        len = (size_t) (end - p) - (sizeof(hv) - 1);
        if (len >= sizeof(id)) {
            continue;
        }

        memcpy(id, p + sizeof(hv) - 1, len);
        id[len] = '\0';

        snprintf(key, sizeof(key), "mx:{%s}:hvhist", room);
        snprintf(ps, sizeof(ps), "%lld", pos);

        r = mxw_command(w, "FCALL mx_sync_visibility 1 %s %s %s %s", key,
                        room, id, ps);
        if (r == NULL) {
            return -1;
        }

        freeReplyObject(r);
    }

    return 0;
}


/*
 * Wake the parked /sync requests of the room's members, and of the users
 * whose membership changed (an invitee is not a member yet):
 * "<room_id> <user_id> ..." on mx:wake.
 */

static void
sy_wake(mxw_t *w, const char *room, const char *changes)
{
    const char  *p, *end, *user, *sep;
    char         msg[4096];
    size_t       n, len;
    redisReply  *r;

    n = (size_t) snprintf(msg, sizeof(msg), "%s", room);

    for (p = changes; *p && n < sizeof(msg); p = *end ? end + 1 : end) {
        end = strchr(p, '\036');
        if (end == NULL) {
            end = p + strlen(p);
        }

        if (strncmp(p, "m.room.member\037", 14) != 0) {
            continue;
        }

        user = p + 14;
        sep = memchr(user, '\037', (size_t) (end - user));
        len = sep ? (size_t) (sep - user) : 0;

        if (len && n + len + 1 < sizeof(msg)) {
            msg[n++] = ' ';
            memcpy(msg + n, user, len);
            n += len;
            msg[n] = '\0';
        }
    }

    r = mxw_command(w, "PUBLISH mx:wake %s", msg);
    if (r) {
        freeReplyObject(r);
    }
}


static void
sy_answer(mxw_t *w, const mxw_entry_t *e, const char *event_id)
{
    const char  *reply, *req;
    size_t       rlen, qlen;
    redisReply  *r;
    char         msg[600];

    reply = mxw_entry_get(e, "reply", &rlen);
    req = mxw_entry_get(e, "req", &qlen);

    if (reply == NULL || req == NULL || rlen == 0 || qlen > 64) {
        return;
    }

    snprintf(msg, sizeof(msg), "%.*s {\"event_id\":\"%s\"}", (int) qlen, req,
             event_id);

    r = mxw_command(w, "PUBLISH %b %s", reply, rlen, msg);
    if (r) {
        freeReplyObject(r);
    }
}


/* mx_sync_position's reply: {position, ...} */

static int
sy_position_check(redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? 0 : -1;
}


static mxw_result_t
sy_event(mxw_t *w, const mxw_entry_t *e, void *data, char *why,
    size_t why_len)
{
    const char   *room, *event_id, *pdu, *changes;
    size_t        pdu_len;
    redisReply   *r;
    char          key[600];
    const char   *reply, *req;
    size_t        rlen, qlen;
    long long     p;
    int           quick;
    mx_pool_t    *pool;
    mxw_result_t  rc;
    const char   *argv[9];
    size_t        lens[9];
    int           i;

    (void) data;

    room = mxw_entry_get(e, "room", NULL);
    event_id = mxw_entry_get(e, "event_id", NULL);
    pdu = mxw_entry_get(e, "event", &pdu_len);
    changes = mxw_entry_get(e, "changes", NULL);

    if (room == NULL || event_id == NULL || pdu == NULL) {
        snprintf(why, why_len, "an event entry needs room, event_id and"
                 " event");
        return MXW_REJECT;
    }

    /* its notifications first: visible with the event or not at all */
    if (sy_notify(w, e) != 0) {
        return MXW_RETRY;
    }

    /*
     * An event that changes no state is answered by the same call that
     * places it; one that does is answered once the memberships it
     * changes are recorded too.
     */
    reply = mxw_entry_get(e, "reply", &rlen);
    req = mxw_entry_get(e, "req", &qlen);
    quick = !(changes && *changes) && reply && req && rlen && qlen < 64;

    snprintf(key, sizeof(key), "mx:{%s}:spos", room);

    if (!(changes && *changes)) {
        /*
         * Nothing else to do for it: pipelined, so a batch of messages
         * costs Redis one read and one write (mxw_drain checks them all
         * before the batch is acknowledged).
         */
        argv[0] = "FCALL";
        argv[1] = "mx_sync_position";
        argv[2] = "1";
        argv[3] = key;
        argv[4] = room;
        argv[5] = event_id;
        argv[6] = quick ? reply : "";
        argv[7] = quick ? req : "";
        argv[8] = "1";

        for (i = 0; i < 9; i++) {
            lens[i] = strlen(argv[i]);
        }
        lens[6] = quick ? rlen : 0;
        lens[7] = quick ? qlen : 0;

        if (mxw_append(w, sy_position_check, 9, argv, lens) != 0) {
            return MXW_RETRY;
        }

        if (!quick) {
            sy_answer(w, e, event_id);
        }

        return MXW_DONE;
    }

    r = mxw_command(w, "FCALL mx_sync_position 1 %s %s %s %b %b %s", key,
                    room, event_id, quick ? reply : "",
                    quick ? rlen : (size_t) 0, quick ? req : "",
                    quick ? qlen : (size_t) 0,
                    (changes && *changes) ? "0" : "1");
    if (r == NULL) {
        return MXW_RETRY;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        snprintf(why, why_len, "mx_sync_position: %s",
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        return MXW_RETRY;
    }

    /* seen before or not, the rest is idempotent and done again */
    p = r->element[0]->integer;
    freeReplyObject(r);

    rc = MXW_DONE;

    if (changes && *changes && sy_visibility(w, room, changes, p) != 0) {
        return MXW_RETRY;
    }

    if (changes && *changes) {
        pool = mx_pool_create(4096);
        if (pool == NULL) {
            return MXW_RETRY;
        }

        if (sy_memberships(w, pool, room, event_id, pdu, pdu_len, changes, p)
            != 0)
        {
            rc = MXW_RETRY;
        }

        mx_pool_destroy(pool);
    }

    if (rc == MXW_DONE && changes && *changes) {
        sy_wake(w, room, changes);
    }

    if (rc == MXW_DONE && !quick) {
        sy_answer(w, e, event_id);
    }

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

    if (mxw_connect(&w) != 0) {
        mxw_fini(&w);
        return w.stop ? 0 : 1;
    }

    mxw_consume(&w, &cs);
    mxw_info(&w, "stopped");
    mxw_fini(&w);

    return 0;
}

/*
 * syncer_notify: push rules for every event, in the syncer.
 *
 *   an event of mx:output
 *        │  its state changes make the room's cached view stale when they
 *        │  touch members or power levels
 *        ▼
 *   the room's view (cached): joined members, create and power levels
 *   events, local joined members and their display names   ◄─ mx_notify_room
 *        │
 *   each local member but the sender (and a local invitee): their ruleset
 *   (cached; forgotten when mx:pushrules:changed names them)
 *                                                         ◄─ mx_pushrules_get
 *        │  core/mx_pusheval: notify? highlight?
 *        ▼
 *   mx_notify_put: the notifications, and the sender's read point, stored
 *   before the event takes its stream position (lua/notify.lua says why
 *   that is safe)
 *
 * The syncer is the one reader of the log that sees every event in order
 * and before any client does, and it is C: the rules are evaluated once per
 * event and member, with parsed rulesets kept in memory, and Redis only
 * stores the verdicts.  Evaluating in a Redis function instead would parse
 * every member's rules for every event while Redis does nothing else.
 *
 * The room's view is its current state, which may be a little ahead of the
 * event when the roomserver is ahead of the syncer: a display name or a
 * power level changed just after a message is the one used for it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mx_auth.h>
#include <mx_json.h>
#include <mx_pusheval.h>
#include <mx_pushrules.h>

#include "syncer.h"


#define SN_ROOMS        256         /* rooms whose view is cached */
#define SN_USERS        16384       /* users whose rules are cached */
#define SN_OWN_MAX      1024        /* of them, with rules of their own */
#define SN_CHANGES_MAX  256         /* rule changes read at once */


typedef struct {
    char                     *room_id;        /* NULL: an empty slot */
    mx_pool_t                *pool;
    int64_t                   joined;
    const mx_room_version_t  *rv;
    const mx_auth_event_t    *create;         /* NULL: none */
    const mx_auth_event_t    *pl;             /* NULL: none */
    const mx_json_t          *notifications;  /* power levels' */
    size_t                    nlocal;
    const char              **local;          /* local joined members */
    const char              **names;          /* their display names */
} sn_room_t;

/*
 * A user who has stored nothing (most users) shares the template of the
 * server defaults (mx_push_template()): a slot is their ID alone.  A
 * merged ruleset of someone's own takes some 20 KiB; at most SN_OWN_MAX
 * are kept, the others are merged again for each event.
 */
typedef struct {
    char                     *user_id;        /* NULL: an empty slot */
    mx_pool_t                *pool;           /* of ruleset, when own */
    const mx_json_t          *ruleset;        /* NULL: the template */
} sn_user_t;


static sn_room_t         sn_rooms[SN_ROOMS];
static sn_user_t         sn_users[SN_USERS];
static size_t            sn_own;              /* slots with a pool */
static mx_pool_t        *sn_template_pool;
static const mx_json_t  *sn_template;
static long long         sn_ver = -1;         /* rule changes seen up to */


/* FNV-1a */

static size_t
sn_hash(const char *s)
{
    size_t  h;

    for (h = 2166136261u; *s; s++) {
        h = (h ^ (unsigned char) *s) * 16777619u;
    }

    return h;
}


static void
sn_room_drop(sn_room_t *r)
{
    if (r->pool) {
        mx_pool_destroy(r->pool);
    }

    memset(r, 0, sizeof(sn_room_t));
}


static void
sn_user_drop(sn_user_t *u)
{
    if (u->pool) {
        mx_pool_destroy(u->pool);
        sn_own--;
    }

    free(u->user_id);
    memset(u, 0, sizeof(sn_user_t));
}


static int
sn_is_local(mxw_t *w, const char *user)
{
    const char  *colon;

    if (user == NULL || user[0] != '@') {
        return 0;
    }

    colon = strchr(user, ':');

    return colon && strcmp(colon + 1, w->cf.server_name) == 0;
}


/*
 * Forget the view of a room whose members or power levels change with this
 * event ("<type>\037<state_key>\037<event_id>\036...").
 */

static void
sn_room_forget(const char *room, const char *changes)
{
    sn_room_t   *r;
    const char  *p, *end;

    r = &sn_rooms[sn_hash(room) % SN_ROOMS];

    if (r->room_id == NULL || strcmp(r->room_id, room) != 0
        || changes == NULL)
    {
        return;
    }

    for (p = changes; *p; p = *end ? end + 1 : end) {
        end = strchr(p, '\036');
        if (end == NULL) {
            end = p + strlen(p);
        }

        if (strncmp(p, "m.room.member\037", 14) == 0
            || strncmp(p, "m.room.power_levels\037", 20) == 0
            || strncmp(p, "m.room.create\037", 14) == 0)
        {
            sn_room_drop(r);
            return;
        }
    }
}


/* a state event of the view from its ID and PDU; NULL when there is none */

static const mx_auth_event_t *
sn_state_event(mx_pool_t *pool, redisReply *id, redisReply *pdu)
{
    mx_json_t        *json;
    mx_json_error_t   err;
    const char       *why;
    char             *event_id;

    if (id->type != REDIS_REPLY_STRING || pdu->type != REDIS_REPLY_STRING
        || id->len == 0 || pdu->len == 0)
    {
        return NULL;
    }

    json = mx_json_parse(pool, pdu->str, pdu->len, &err);
    event_id = mx_pstrndup(pool, id->str, id->len);

    if (json == NULL || event_id == NULL) {
        return NULL;
    }

    return mx_auth_event_from_json(pool, json, event_id, &why);
}


/*
 * The view of a room, from the cache or from mx_notify_room.  NULL with
 * *failed set when Redis failed; NULL alone when the room cannot be read
 * (its events are then evaluated by nobody, and the syncer goes on).
 */

static sn_room_t *
sn_room_get(mxw_t *w, const char *room, int *failed)
{
    sn_room_t   *r;
    redisReply  *rep, *el;
    mx_pool_t   *pool;
    char         key[600], suffix[300];
    size_t       i, n;

    r = &sn_rooms[sn_hash(room) % SN_ROOMS];

    if (r->room_id && strcmp(r->room_id, room) == 0) {
        return r;
    }

    sn_room_drop(r);

    snprintf(key, sizeof(key), "mx:{%s}:state", room);
    snprintf(suffix, sizeof(suffix), ":%s", w->cf.server_name);

    rep = mxw_command(w, "FCALL mx_notify_room 1 %s %s %s", key, room,
                      suffix);
    if (rep == NULL) {
        *failed = 1;
        return NULL;
    }

    if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 5
        || rep->element[0]->type != REDIS_REPLY_INTEGER)
    {
        mxw_warn(w, "mx_notify_room %s: %s", room,
                 rep->type == REDIS_REPLY_ERROR ? rep->str
                                                : "unexpected reply");
        freeReplyObject(rep);
        return NULL;
    }

    pool = mx_pool_create(4096);
    if (pool == NULL) {
        freeReplyObject(rep);
        *failed = 1;
        return NULL;
    }

    r->pool = pool;
    r->room_id = mx_pstrndup(pool, room, strlen(room));
    r->joined = rep->element[0]->integer;
    r->create = sn_state_event(pool, rep->element[1], rep->element[2]);
    r->pl = sn_state_event(pool, rep->element[3], rep->element[4]);
    r->rv = r->create ? mx_auth_create_version(r->create) : NULL;

    if (r->rv == NULL) {
        r->rv = mx_room_version(MX_ROOM_VERSION_DEFAULT,
                                strlen(MX_ROOM_VERSION_DEFAULT));
    }

    r->notifications = r->pl ? mx_json_get_obj(r->pl->content,
                                               "notifications")
                             : NULL;

    n = (rep->elements - 5) / 2;
    r->local = mx_palloc(pool, (n + 1) * sizeof(char *));
    r->names = mx_palloc(pool, (n + 1) * sizeof(char *));

    if (r->room_id == NULL || r->local == NULL || r->names == NULL) {
        freeReplyObject(rep);
        sn_room_drop(r);
        *failed = 1;
        return NULL;
    }

    for (i = 0; i < n; i++) {
        el = rep->element[5 + 2 * i];
        if (el->type != REDIS_REPLY_STRING
            || rep->element[6 + 2 * i]->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        r->local[r->nlocal] = mx_pstrndup(pool, el->str, el->len);
        el = rep->element[6 + 2 * i];
        r->names[r->nlocal] = mx_pstrndup(pool, el->str, el->len);

        if (r->local[r->nlocal] == NULL || r->names[r->nlocal] == NULL) {
            freeReplyObject(rep);
            sn_room_drop(r);
            *failed = 1;
            return NULL;
        }

        r->nlocal++;
    }

    freeReplyObject(rep);

    return r;
}


/*
 * Forget the rules of the users who changed theirs since the last look
 * (mx:pushrules:changed, by the change's number).  0, or -1 when Redis
 * failed.
 */

static int
sn_rules_changes(mxw_t *w)
{
    redisReply  *rep, *u;
    sn_user_t   *slot;
    size_t       i;
    long long    v;

    if (sn_ver < 0) {
        /* nothing is cached yet: changes from now on matter */
        rep = mxw_command(w, "GET mx:pushrules:ver");
        if (rep == NULL) {
            return -1;
        }

        sn_ver = rep->type == REDIS_REPLY_STRING ? atoll(rep->str) : 0;
        freeReplyObject(rep);
        return 0;
    }

    for ( ;; ) {
        rep = mxw_command(w, "ZRANGEBYSCORE mx:pushrules:changed (%lld +inf"
                          " WITHSCORES LIMIT 0 %d", sn_ver, SN_CHANGES_MAX);
        if (rep == NULL) {
            return -1;
        }

        if (rep->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(rep);
            return 0;
        }

        for (i = 0; i + 1 < rep->elements; i += 2) {
            u = rep->element[i];
            if (u->type != REDIS_REPLY_STRING) {
                continue;
            }

            slot = &sn_users[sn_hash(u->str) % SN_USERS];
            if (slot->user_id && strcmp(slot->user_id, u->str) == 0) {
                sn_user_drop(slot);
            }

            v = atoll(rep->element[i + 1]->str);
            if (v > sn_ver) {
                sn_ver = v;
            }
        }

        i = rep->elements / 2;
        freeReplyObject(rep);

        if (i < SN_CHANGES_MAX) {
            return 0;
        }
    }
}


/* has the user stored nothing at all (mx_pushrules_get's reply)? */

static int
sn_push_nothing(redisReply *reply)
{
    size_t  i;

    if (reply->type != REDIS_REPLY_ARRAY
        || reply->elements != MX_PUSH_KINDS + 1)
    {
        return 1;
    }

    for (i = 0; i <= MX_PUSH_KINDS; i++) {
        if (reply->element[i]->type == REDIS_REPLY_ARRAY
            && reply->element[i]->elements > 0)
        {
            return 0;
        }
    }

    return 1;
}


/*
 * The reply of mx_pushrules_get as core's mx_push_user_t (the module's
 * ngx_matrix_pushrules.c reads it the same way, and core checks each
 * value); what does not parse is skipped.  0, or -1 on ENOMEM.
 */

static int
sn_push_user(mx_pool_t *pool, redisReply *reply, mx_push_user_t *user)
{
    size_t       i, j;
    redisReply  *list, *f, *val;

    memset(user, 0, sizeof(mx_push_user_t));

    if (reply->type != REDIS_REPLY_ARRAY
        || reply->elements != MX_PUSH_KINDS + 1)
    {
        return 0;
    }

    for (i = 0; i < MX_PUSH_KINDS; i++) {
        list = reply->element[i];

        for (j = 0; list->type == REDIS_REPLY_ARRAY && j < list->elements;
             j++)
        {
            f = list->element[j];

            if (f->type == REDIS_REPLY_STRING
                && mx_push_user_rule(pool, user, i, f->str, f->len) < 0)
            {
                return -1;
            }
        }
    }

    list = reply->element[MX_PUSH_KINDS];

    for (i = 0; list->type == REDIS_REPLY_ARRAY && i + 1 < list->elements;
         i += 2)
    {
        f = list->element[i];
        val = list->element[i + 1];

        if (f->type == REDIS_REPLY_STRING && val->type == REDIS_REPLY_STRING
            && mx_push_user_change(pool, user, f->str, f->len, val->str,
                                   val->len) < 0)
        {
            return -1;
        }
    }

    return 0;
}


/* at exit: the caches go, so that a leak checker sees only real leaks */

static void
sn_fini(void)
{
    size_t  i;

    for (i = 0; i < SN_ROOMS; i++) {
        sn_room_drop(&sn_rooms[i]);
    }

    for (i = 0; i < SN_USERS; i++) {
        sn_user_drop(&sn_users[i]);
    }

    if (sn_template_pool) {
        mx_pool_destroy(sn_template_pool);
        sn_template_pool = NULL;
        sn_template = NULL;
    }
}


/*
 * A user's ruleset: the shared template, or their own merged one, cached
 * (or, past SN_OWN_MAX, made in the event's pool).  NULL with *failed when
 * Redis failed or memory ran out.
 */

static const mx_json_t *sn_user_fill(sn_user_t *u, mx_pool_t *evpool,
    const char *user, redisReply *rep);


static const mx_json_t *
sn_user_rules(mxw_t *w, mx_pool_t *evpool, const char *user, int *failed)
{
    sn_user_t        *u;
    redisReply       *rep;
    const mx_json_t  *set;
    char              key[600];

    if (sn_template == NULL) {
        if (sn_template_pool == NULL) {
            atexit(sn_fini);
        }

        sn_template_pool = mx_pool_create(8192);
        sn_template = sn_template_pool ? mx_push_template(sn_template_pool)
                                       : NULL;
        if (sn_template == NULL) {
            *failed = 1;
            return NULL;
        }
    }

    u = &sn_users[sn_hash(user) % SN_USERS];

    if (u->user_id && strcmp(u->user_id, user) == 0) {
        return u->ruleset ? u->ruleset : sn_template;
    }

    sn_user_drop(u);

    snprintf(key, sizeof(key), "mx:{%s}:pushrules", user);
    rep = mxw_command(w, "FCALL mx_pushrules_get 1 %s", key);
    if (rep == NULL) {
        *failed = 1;
        return NULL;
    }

    set = sn_user_fill(u, evpool, user, rep);
    freeReplyObject(rep);

    if (set == NULL) {
        *failed = 1;
    }

    return set;
}


/*
 * Cache what mx_pushrules_get said of a user in slot u: the template for a
 * user with no rules of their own, else their merged ruleset.  NULL when
 * memory ran out.
 */

static const mx_json_t *
sn_user_fill(sn_user_t *u, mx_pool_t *evpool, const char *user,
    redisReply *rep)
{
    mx_push_user_t    pu;
    mx_pool_t        *pool;
    const mx_json_t  *set;

    if (sn_push_nothing(rep)) {
        u->user_id = strdup(user);
        return sn_template;
    }

    /* rules of the user's own */
    pool = sn_own < SN_OWN_MAX ? mx_pool_create(8192) : evpool;

    set = NULL;
    if (pool != NULL && sn_push_user(pool, rep, &pu) == 0) {
        set = mx_push_ruleset(pool, user, strlen(user), &pu);
    }

    if (set == NULL) {
        if (pool != evpool && pool != NULL) {
            mx_pool_destroy(pool);
        }

        return NULL;
    }

    if (pool != evpool) {
        u->user_id = strdup(user);
        u->pool = pool;
        u->ruleset = set;
        sn_own++;
    }

    return set;
}


/* the root of the thread an event is in ("" for the main timeline) */

static const char *
sn_thread(const mx_json_t *ev)
{
    const mx_json_t  *rel;
    const char       *type, *root;

    rel = mx_json_get_obj(mx_json_get_obj(ev, "content"), "m.relates_to");
    type = mx_json_get_str(rel, "rel_type", NULL);
    root = mx_json_get_str(rel, "event_id", NULL);

    if (type == NULL || root == NULL || strcmp(type, "m.thread") != 0
        || strchr(root, '\037') != NULL)
    {
        return "";
    }

    return root;
}


/* the arguments of mx_notify_put, grown as users are notified */

typedef struct {
    const char  **v;
    size_t       *len;
    size_t        n;
    size_t        cap;
} sn_args_t;


static int
sn_arg(mx_pool_t *pool, sn_args_t *a, const char *s, size_t len)
{
    const char  **v;
    size_t       *l;

    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 32;
        v = mx_palloc(pool, a->cap * sizeof(char *));
        l = mx_palloc(pool, a->cap * sizeof(size_t));
        if (v == NULL || l == NULL) {
            return -1;
        }

        if (a->n) {
            memcpy(v, a->v, a->n * sizeof(char *));
            memcpy(l, a->len, a->n * sizeof(size_t));
        }

        a->v = v;
        a->len = l;
    }

    a->v[a->n] = s;
    a->len[a->n++] = len;

    return 0;
}


/* evaluate one user's rules and add the verdict; 0, -1 ENOMEM, -2 Redis */

static int
sn_user_eval(mxw_t *w, mx_pool_t *pool, sn_args_t *a, const mx_json_t *ev,
    const char *user, const char *display_name, mx_push_ctx_t *ctx)
{
    const mx_json_t  *ruleset;
    mx_push_match_t   m;
    char             *actions;
    size_t            len;
    int               failed;

    failed = 0;
    ruleset = sn_user_rules(w, pool, user, &failed);
    if (ruleset == NULL) {
        return -2;
    }

    ctx->user_id = user;
    ctx->display_name = display_name;

    if (mx_push_eval(pool, ruleset, ev, ctx, &m) != 0) {
        return -1;
    }

    if (!m.notify) {
        return 0;
    }

    actions = mx_json_encode(pool, m.actions, 0, &len);

    if (actions == NULL
        || sn_arg(pool, a, user, strlen(user)) != 0
        || sn_arg(pool, a, m.highlight ? "1" : "0", 1) != 0
        || sn_arg(pool, a, actions, len) != 0)
    {
        return -1;
    }

    return 0;
}


/*
 * mx_notify_put's reply: a position, or an error, which a retry would not
 * mend (a fault of ours): the event goes on without its notifications
 * rather than stopping the syncer.
 */

static int
sn_put_check(redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "syncer: mx_notify_put: %s\n", r->str);
    }

    return 0;
}


/*
 * The rules of the room's local members not cached yet, in one call per
 * SN_PREFETCH of them rather than one each: the first message after many
 * joins would otherwise wait for a round trip per member.
 */

#define SN_PREFETCH  256

static int
sn_prefetch(mxw_t *w, mx_pool_t *evpool, sn_room_t *r)
{
    const char   *argv[SN_PREFETCH + 3];
    size_t        lens[SN_PREFETCH + 3];
    const char   *who[SN_PREFETCH];
    char         *keys, num[32];
    size_t        i, n, k;
    sn_user_t    *u;
    redisReply   *rep;
    int           rc;

    keys = malloc(SN_PREFETCH * 600);
    if (keys == NULL) {
        return -1;
    }

    rc = 0;
    i = 0;

    while (i < r->nlocal && rc == 0) {
        n = 0;

        for ( ; i < r->nlocal && n < SN_PREFETCH; i++) {
            u = &sn_users[sn_hash(r->local[i]) % SN_USERS];
            if (u->user_id && strcmp(u->user_id, r->local[i]) == 0) {
                continue;
            }

            snprintf(keys + n * 600, 600, "mx:{%s}:pushrules", r->local[i]);
            who[n] = r->local[i];
            argv[3 + n] = keys + n * 600;
            lens[3 + n] = strlen(argv[3 + n]);
            n++;
        }

        if (n < 2) {
            break;      /* one at most: sn_user_rules does it */
        }

        snprintf(num, sizeof(num), "%zu", n);
        argv[0] = "FCALL";
        argv[1] = "mx_pushrules_get_many";
        argv[2] = num;
        lens[0] = 5;
        lens[1] = strlen(argv[1]);
        lens[2] = strlen(num);

        rep = mxw_commandv(w, (int) n + 3, argv, lens);

        if (rep == NULL) {
            rc = -1;
            break;
        }

        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == n) {
            for (k = 0; k < n; k++) {
                u = &sn_users[sn_hash(who[k]) % SN_USERS];
                sn_user_drop(u);
                (void) sn_user_fill(u, evpool, who[k], rep->element[k]);
            }
        }

        freeReplyObject(rep);
    }

    free(keys);

    return rc;
}


/*
 * Once per batch, not per event: a rule change that comes before a batch
 * counts for all of its events (one that comes during it is a race any
 * order would settle).
 */

int
sy_notify_begin(mxw_t *w, void *data)
{
    (void) data;

    return sn_rules_changes(w);
}


int
sy_notify(mxw_t *w, const mxw_entry_t *e)
{
    const char       *room, *event_id, *pdu, *changes, *sender, *thread;
    const char       *type, *membership, *target;
    size_t            pdu_len, i;
    mx_pool_t        *pool;
    mx_json_t        *ev;
    mx_json_error_t   err;
    sn_room_t        *r;
    sn_args_t         a;
    mx_push_ctx_t     ctx;
    char              key[600];
    int               failed, rc, local_sender, reads, invitee;

    room = mxw_entry_get(e, "room", NULL);
    event_id = mxw_entry_get(e, "event_id", NULL);
    pdu = mxw_entry_get(e, "event", &pdu_len);
    changes = mxw_entry_get(e, "changes", NULL);

    if (room == NULL || event_id == NULL || pdu == NULL) {
        return 0;
    }

    sn_room_forget(room, changes);

    pool = mx_pool_create(8192);
    if (pool == NULL) {
        return -1;
    }

    rc = 0;
    failed = 0;

    ev = mx_json_parse(pool, pdu, pdu_len, &err);
    sender = mx_json_get_str(ev, "sender", NULL);
    type = mx_json_get_str(ev, "type", NULL);

    if (ev == NULL || sender == NULL || type == NULL) {
        goto done;
    }

    r = sn_room_get(w, room, &failed);
    if (r == NULL) {
        rc = failed ? -1 : 0;
        goto done;
    }

    local_sender = sn_is_local(w, sender);
    thread = sn_thread(ev);

    /* a local sender reads by sending; not by a state event (a profile
     * change reaching every room is no reading of them) */
    reads = local_sender && mx_json_get(ev, "state_key") == NULL;

    /* an invite notifies the invitee, who is no member yet */
    membership = mx_json_get_str(mx_json_get_obj(ev, "content"),
                                 "membership", NULL);
    target = mx_json_get_str(ev, "state_key", NULL);
    invitee = strcmp(type, "m.room.member") == 0 && membership
              && strcmp(membership, "invite") == 0 && target
              && strcmp(target, sender) != 0 && sn_is_local(w, target);

    /* whose rules are read: anyone's that changed were forgotten when
     * the batch began (sy_notify_begin) */

    memset(&a, 0, sizeof(a));
    snprintf(key, sizeof(key), "mx:{%s}:spos", room);

    if (sn_arg(pool, &a, "FCALL", 5) != 0
        || sn_arg(pool, &a, "mx_notify_put", 13) != 0
        || sn_arg(pool, &a, "1", 1) != 0
        || sn_arg(pool, &a, key, strlen(key)) != 0
        || sn_arg(pool, &a, room, strlen(room)) != 0
        || sn_arg(pool, &a, event_id, strlen(event_id)) != 0
        || sn_arg(pool, &a, thread, strlen(thread)) != 0
        || sn_arg(pool, &a, reads ? sender : "", reads ? strlen(sender) : 0)
           != 0)
    {
        rc = -1;
        goto done;
    }

    memset(&ctx, 0, sizeof(ctx));
    ctx.room_id = room;
    ctx.member_count = r->joined;
    ctx.sender_level = mx_auth_user_level(r->rv, r->create, r->pl, sender);
    ctx.notifications = r->notifications;
    ctx.rv = r->rv;

    if (r->nlocal > 1 && sn_prefetch(w, pool, r) != 0) {
        rc = -1;
        goto done;
    }

    for (i = 0; i < r->nlocal; i++) {
        if (strcmp(r->local[i], sender) == 0) {
            continue;
        }

        rc = sn_user_eval(w, pool, &a, ev, r->local[i], r->names[i], &ctx);
        if (rc != 0) {
            break;
        }
    }

    if (rc == 0 && invitee) {
        rc = sn_user_eval(w, pool, &a, ev, target, NULL, &ctx);
    }

    if (rc != 0) {
        rc = -1;
        goto done;
    }

    if (a.n == 8 && !reads) {
        goto done;
    }

    /* pipelined: it leaves before the event's mx_sync_position */
    if (mxw_append(w, sn_put_check, (int) a.n, a.v, a.len) != 0) {
        rc = -1;
        goto done;
    }

done:

    mx_pool_destroy(pool);

    return rc;
}

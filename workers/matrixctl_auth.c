/*
 * matrixctl: authorization rules and state resolution, on JSON from stdin.
 *
 *   auth
 *       {"event": PDU, "auth_events": [PDU, ...],
 *        "create": PDU (room version 12: the room's create event),
 *        "room_version": "N" (else the create event's)}
 *       or {"event": PDU, "state": [PDU, ...]} to check against a state
 *       (the current state: soft failure).  Prints "allowed", or
 *       "refused: RULE: why" and exits 1; bad input exits 2.
 *
 *   resolve
 *       {"state_sets": [[ID or PDU, ...], ...], "events": [PDU, ...],
 *        "room_version": "N" (else the create event's)}
 *       Prints the resolved state, one {"event_id","state_key","type"} a
 *       line, sorted by type and state key.
 *
 * Every PDU carries its "event_id" (room versions 3 and later compute it
 * from the reference hash; give it here).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mx_auth.h>
#include <mx_idmap.h>
#include <mx_json.h>
#include <mx_pool.h>
#include <mx_room_version.h>
#include <mx_state_res.h>

#include "matrixctl.h"


typedef struct {
    mx_pool_t                 *pool;
    mx_idmap_t                 byid;
    const mx_room_version_t   *rv;
    const char                *cmd;
} ctl_auth_t;


/* an error of the command c is running; returns its exit status, 2 */
#define ctl_fail(c, ...)  matrixctl_fail((c)->cmd, __VA_ARGS__)


/*
 * A command's start: c made ready for cmd (its pool), and the JSON object
 * on stdin read.  NULL when that failed (said, but for no memory); c.pool,
 * NULL or not, is the caller's to destroy.
 */
static mx_json_t *
ctl_start(ctl_auth_t *c, const char *cmd, int argc, char **argv)
{
    mx_json_error_t   err;
    mx_json_t        *in;
    char             *text;
    size_t            len;

    (void) argv;

    memset(c, 0, sizeof(ctl_auth_t));
    c->cmd = cmd;
    c->pool = mx_pool_create(0);
    if (c->pool == NULL) {
        return NULL;
    }

    if (argc > 1) {
        ctl_fail(c, "takes no arguments, only JSON on stdin");
        return NULL;
    }

    text = matrixctl_read_stdin(c->pool, &len);
    if (text == NULL) {
        ctl_fail(c, "cannot read stdin");
        return NULL;
    }

    in = mx_json_parse(c->pool, text, len, &err);
    if (in == NULL) {
        ctl_fail(c, "stdin is not JSON: %s", err.msg);
        return NULL;
    }

    if (in->type != MX_JSON_OBJECT) {
        ctl_fail(c, "stdin must hold a JSON object");
        return NULL;
    }

    return in;
}


static mx_auth_event_t *
ctl_event(ctl_auth_t *c, const mx_json_t *json, const char *where)
{
    mx_auth_event_t  *ev;
    const char       *why;

    ev = mx_auth_event_from_json(c->pool, json, NULL, &why);
    if (ev == NULL) {
        ctl_fail(c, "%s: %s", where, why);
        return NULL;
    }

    return ev;
}


/* the room version: "room_version", else the create event's */
static int
ctl_version(ctl_auth_t *c, const mx_json_t *in, const mx_auth_event_t *create)
{
    const mx_json_t  *v;

    v = mx_json_get(in, "room_version");

    if (v) {
        if (v->type != MX_JSON_STRING
            || (c->rv = mx_room_version(v->u.s.p, v->u.s.len)) == NULL)
        {
            ctl_fail(c, "unknown room_version");
            return -1;
        }

        return 0;
    }

    if (create == NULL) {
        ctl_fail(c, "no room_version and no m.room.create event to take it"
                 " from");
        return -1;
    }

    c->rv = mx_auth_create_version(create);
    if (c->rv == NULL) {
        ctl_fail(c, "the create event names an unknown room version");
        return -1;
    }

    return 0;
}


/* the events of a JSON array of PDUs; the create event among them noted */
static mx_auth_event_t **
ctl_events(ctl_auth_t *c, const mx_json_t *arr, const char *key, size_t *n,
    const mx_auth_event_t **create)
{
    mx_auth_event_t  **evs;
    size_t             i;

    if (arr == NULL) {
        *n = 0;
        return mx_palloc(c->pool, sizeof(mx_auth_event_t *));
    }

    if (arr->type != MX_JSON_ARRAY) {
        ctl_fail(c, "%s must be an array of events", key);
        return NULL;
    }

    evs = mx_palloc(c->pool, (arr->u.a.n + 1) * sizeof(mx_auth_event_t *));
    if (evs == NULL) {
        ctl_fail(c, "out of memory");
        return NULL;
    }

    for (i = 0; i < arr->u.a.n; i++) {
        evs[i] = ctl_event(c, arr->u.a.v[i], key);
        if (evs[i] == NULL) {
            return NULL;
        }

        if (create && strcmp(evs[i]->type, "m.room.create") == 0
            && evs[i]->state_key && evs[i]->state_key[0] == '\0')
        {
            *create = evs[i];
        }
    }

    *n = arr->u.a.n;

    return evs;
}


int
matrixctl_auth(int argc, char **argv)
{
    ctl_auth_t              c;
    mx_json_t              *in, *st;
    mx_auth_event_t        *ev, **auth, *cr;
    const mx_auth_event_t  *create;
    mx_state_t             *state;
    const char             *why;
    size_t                  n, i;
    int                     rc;

    rc = 2;
    create = NULL;

    in = ctl_start(&c, "auth", argc, argv);
    if (in == NULL) {
        goto done;
    }

    if (mx_json_get_obj(in, "event") == NULL) {
        ctl_fail(&c, "no \"event\" object");
        goto done;
    }

    ev = ctl_event(&c, mx_json_get(in, "event"), "event");
    if (ev == NULL) {
        goto done;
    }

    st = mx_json_get(in, "state");

    auth = ctl_events(&c, st ? st : mx_json_get(in, "auth_events"),
                      st ? "state" : "auth_events", &n, &create);
    if (auth == NULL) {
        goto done;
    }

    if (mx_json_get(in, "create")) {
        cr = ctl_event(&c, mx_json_get(in, "create"), "create");
        if (cr == NULL) {
            goto done;
        }

        create = cr;
    }

    if (create == NULL && strcmp(ev->type, "m.room.create") == 0) {
        create = ev;
    }

    if (ctl_version(&c, in, create) != 0) {
        goto done;
    }

    if (st) {
        state = mx_state_create(c.pool, n + 1);

        for (i = 0; state && i < n; i++) {
            if (auth[i]->state_key == NULL || mx_state_put(state, auth[i])) {
                ctl_fail(&c, "state: %s is not a state event",
                         auth[i]->event_id);
                goto done;
            }
        }

        if (state && create && mx_state_get(state, "m.room.create", "")
                               == NULL)
        {
            mx_state_put(state, create);
        }

        if (state == NULL) {
            goto done;
        }

        rc = mx_auth_check(c.pool, c.rv, ev, state, &why);

    } else {
        rc = mx_auth_check_auth_events(c.pool, c.rv, ev,
                                       (const mx_auth_event_t **) auth, n,
                                       create, &why);
    }

    if (rc == MX_AUTH_ALLOW) {
        printf("allowed\n");
        rc = 0;

    } else if (rc == MX_AUTH_DENY) {
        printf("refused: %s: %s\n", why, mx_auth_reason_text(why));
        rc = 1;

    } else {
        ctl_fail(&c, "out of memory");
        rc = 2;
    }

done:

    mx_pool_destroy(c.pool);

    return rc;
}


static const mx_auth_event_t *
ctl_fetch(void *ctx, const char *id)
{
    return mx_idmap_get(&((ctl_auth_t *) ctx)->byid, id);
}


int
matrixctl_resolve(int argc, char **argv)
{
    ctl_auth_t               c;
    mx_json_t               *in, *sets_json, *set, *item, *line;
    mx_auth_event_t        **evs, *ev;
    const mx_auth_event_t   *create, **sorted;
    const mx_state_t       **sets;
    mx_state_t              *s, *out;
    const mx_auth_event_t   *e;
    char                    *text;
    size_t                   n, i, k, len;
    int                      rc;

    rc = 2;
    create = NULL;

    in = ctl_start(&c, "resolve", argc, argv);
    if (in == NULL) {
        goto done;
    }

    evs = ctl_events(&c, mx_json_get(in, "events"), "events", &n, &create);
    if (evs == NULL || mx_idmap_init(&c.byid, c.pool, n) != 0) {
        goto done;
    }

    for (i = 0; i < n; i++) {
        if (mx_idmap_put(&c.byid, evs[i]->event_id, evs[i]) != 0) {
            goto done;
        }
    }

    sets_json = mx_json_get(in, "state_sets");
    if (!mx_json_is(sets_json, MX_JSON_ARRAY)) {
        ctl_fail(&c, "no \"state_sets\" array");
        goto done;
    }

    sets = mx_palloc(c.pool, (sets_json->u.a.n + 1) * sizeof(mx_state_t *));
    if (sets == NULL) {
        goto done;
    }

    for (k = 0; k < sets_json->u.a.n; k++) {
        set = sets_json->u.a.v[k];

        if (set->type != MX_JSON_ARRAY) {
            ctl_fail(&c, "each state set must be an array");
            goto done;
        }

        s = mx_state_create(c.pool, set->u.a.n);
        if (s == NULL) {
            goto done;
        }

        for (i = 0; i < set->u.a.n; i++) {
            item = set->u.a.v[i];

            if (item->type == MX_JSON_STRING) {
                e = mx_idmap_get(&c.byid, item->u.s.p);
                if (e == NULL) {
                    ctl_fail(&c, "state set event %s is not among \"events\"",
                             item->u.s.p);
                    goto done;
                }

            } else {
                ev = ctl_event(&c, item, "state_sets");
                if (ev == NULL) {
                    goto done;
                }

                if (mx_idmap_get(&c.byid, ev->event_id) == NULL
                    && mx_idmap_put(&c.byid, ev->event_id, ev) != 0)
                {
                    goto done;
                }

                if (create == NULL && strcmp(ev->type, "m.room.create") == 0) {
                    create = ev;
                }

                e = ev;
            }

            if (e->state_key == NULL) {
                ctl_fail(&c, "%s in a state set is not a state event",
                         e->event_id);
                goto done;
            }

            if (mx_state_put(s, e) != 0) {
                goto done;
            }
        }

        sets[k] = s;
    }

    if (ctl_version(&c, in, create) != 0) {
        goto done;
    }

    if (mx_state_resolve(c.pool, c.rv, sets, sets_json->u.a.n, ctl_fetch, &c,
                         &out) != 0)
    {
        ctl_fail(&c, "out of memory");
        goto done;
    }

    sorted = mx_state_sorted(c.pool, out, &n);
    if (sorted == NULL) {
        goto done;
    }

    printf("[\n");

    for (i = 0; i < n; i++) {
        line = mx_json_object(c.pool);
        if (line == NULL
            || mx_json_set_str(c.pool, line, "type", sorted[i]->type) != 0
            || mx_json_set_str(c.pool, line, "state_key",
                               sorted[i]->state_key) != 0
            || mx_json_set_str(c.pool, line, "event_id",
                               sorted[i]->event_id) != 0
            || (text = mx_json_encode(c.pool, line, 0, &len)) == NULL)
        {
            goto done;
        }

        printf("  %s%s\n", text, i + 1 < n ? "," : "");
    }

    printf("]\n");
    rc = 0;

done:

    mx_pool_destroy(c.pool);

    return rc;
}


/*
 * mx_filter: checking and reading filters, and matching events against
 * them.  See mx_filter.h.
 */

#include <stdio.h>
#include <string.h>

#include "mx_filter.h"


typedef struct {
    mx_pool_t   *pool;
    char        *err;
    size_t       errlen;
} mx_filter_ctx_t;


static int
mx_filter_fail(mx_filter_ctx_t *ctx, const char *path, const char *key,
    const char *what)
{
    snprintf(ctx->err, ctx->errlen, "%s%s %s", path, key, what);
    return -1;
}


static int
mx_filter_nomem(mx_filter_ctx_t *ctx)
{
    snprintf(ctx->err, ctx->errlen, "out of memory");
    return -1;
}


/*
 * A list of strings under key, if present.  kind: 0 any string, '!' room
 * IDs, '@' user IDs (only their sigil is checked: /sync matches them
 * exactly, so a wrong one only matches nothing, but a client that sent one
 * made a mistake worth telling).
 */

static int
mx_filter_list(mx_filter_ctx_t *ctx, const mx_json_t *obj, const char *path,
    const char *key, int kind, mx_filter_list_t *list)
{
    size_t      i;
    mx_json_t  *v, *s;

    v = mx_json_get(obj, key);
    if (v == NULL) {
        return 0;
    }

    if (v->type != MX_JSON_ARRAY) {
        return mx_filter_fail(ctx, path, key, "must be an array of strings");
    }

    list->set = 1;
    list->n = v->u.a.n;

    if (list->n == 0) {
        return 0;
    }

    list->v = mx_palloc(ctx->pool, list->n * sizeof(mx_filter_str_t));
    if (list->v == NULL) {
        return mx_filter_nomem(ctx);
    }

    for (i = 0; i < v->u.a.n; i++) {
        s = v->u.a.v[i];

        if (s->type != MX_JSON_STRING) {
            return mx_filter_fail(ctx, path, key,
                                  "must be an array of strings");
        }

        if (kind == '!' && (s->u.s.len < 2 || s->u.s.p[0] != '!')) {
            return mx_filter_fail(ctx, path, key, "must hold room IDs");
        }

        if (kind == '@' && (s->u.s.len < 3 || s->u.s.p[0] != '@'
                            || memchr(s->u.s.p, ':', s->u.s.len) == NULL))
        {
            return mx_filter_fail(ctx, path, key, "must hold user IDs");
        }

        list->v[i].p = s->u.s.p;
        list->v[i].len = s->u.s.len;
    }

    return 0;
}


/* a boolean under key, if present: -1 absent, else 0 or 1 */

static int
mx_filter_bool(mx_filter_ctx_t *ctx, const mx_json_t *obj, const char *path,
    const char *key, int *out)
{
    mx_json_t  *v;

    v = mx_json_get(obj, key);
    if (v == NULL) {
        *out = -1;
        return 0;
    }

    if (!mx_json_is_bool(v)) {
        return mx_filter_fail(ctx, path, key, "must be a boolean");
    }

    *out = v->type == MX_JSON_TRUE;
    return 0;
}


static void
mx_event_filter_init(mx_event_filter_t *ef)
{
    memset(ef, 0, sizeof(mx_event_filter_t));
    ef->contains_url = -1;
}


void
mx_filter_init(mx_filter_t *f)
{
    memset(f, 0, sizeof(mx_filter_t));

    f->event_format = MX_FILTER_CLIENT;
    mx_event_filter_init(&f->presence);
    mx_event_filter_init(&f->account_data);
    mx_event_filter_init(&f->room.ephemeral);
    mx_event_filter_init(&f->room.state);
    mx_event_filter_init(&f->room.timeline);
    mx_event_filter_init(&f->room.account_data);
}


/* an EventFilter, or a RoomEventFilter when room is set, under key */

static int
mx_event_filter(mx_filter_ctx_t *ctx, const mx_json_t *parent,
    const char *parent_path, const char *key, int room,
    mx_event_filter_t *ef)
{
    char        path[64];
    int         b;
    mx_json_t  *obj, *v;

    obj = mx_json_get(parent, key);
    if (obj == NULL) {
        return 0;
    }

    if (obj->type != MX_JSON_OBJECT) {
        return mx_filter_fail(ctx, parent_path, key, "must be an object");
    }

    snprintf(path, sizeof(path), "%s%s.", parent_path, key);

    v = mx_json_get(obj, "limit");
    if (v) {
        if (v->type != MX_JSON_INT || v->u.i <= 0) {
            return mx_filter_fail(ctx, path, "limit", "must be an integer"
                                  " greater than 0");
        }

        ef->limit = v->u.i;
    }

    if (mx_filter_list(ctx, obj, path, "types", 0, &ef->types) != 0
        || mx_filter_list(ctx, obj, path, "not_types", 0, &ef->not_types)
           != 0
        || mx_filter_list(ctx, obj, path, "senders", '@', &ef->senders) != 0
        || mx_filter_list(ctx, obj, path, "not_senders", '@',
                          &ef->not_senders) != 0)
    {
        return -1;
    }

    if (!room) {
        return 0;
    }

    if (mx_filter_list(ctx, obj, path, "rooms", '!', &ef->rooms) != 0
        || mx_filter_list(ctx, obj, path, "not_rooms", '!', &ef->not_rooms)
           != 0
        || mx_filter_bool(ctx, obj, path, "contains_url", &ef->contains_url)
           != 0)
    {
        return -1;
    }

    if (mx_filter_bool(ctx, obj, path, "lazy_load_members", &b) != 0) {
        return -1;
    }

    ef->lazy_load_members = b == 1;

    if (mx_filter_bool(ctx, obj, path, "include_redundant_members", &b)
        != 0)
    {
        return -1;
    }

    ef->include_redundant_members = b == 1;

    if (mx_filter_bool(ctx, obj, path, "unread_thread_notifications", &b)
        != 0)
    {
        return -1;
    }

    ef->unread_thread_notifications = b == 1;

    return 0;
}


int
mx_filter_parse(mx_pool_t *pool, const mx_json_t *json, mx_filter_t *f,
    char *err, size_t errlen)
{
    int               b;
    mx_json_t        *v, *room;
    mx_filter_ctx_t   ctx;

    ctx.pool = pool;
    ctx.err = err;
    ctx.errlen = errlen;

    mx_filter_init(f);

    if (!mx_json_is(json, MX_JSON_OBJECT)) {
        return mx_filter_fail(&ctx, "", "The filter", "must be an object");
    }

    if (mx_filter_list(&ctx, json, "", "event_fields", 0, &f->event_fields)
        != 0)
    {
        return -1;
    }

    v = mx_json_get(json, "event_format");
    if (v) {
        if (mx_json_is(v, MX_JSON_STRING) && strcmp(v->u.s.p, "client") == 0) {
            f->event_format = MX_FILTER_CLIENT;

        } else if (mx_json_is(v, MX_JSON_STRING)
                   && strcmp(v->u.s.p, "federation") == 0)
        {
            f->event_format = MX_FILTER_FEDERATION;

        } else {
            return mx_filter_fail(&ctx, "", "event_format",
                                  "must be \"client\" or \"federation\"");
        }
    }

    if (mx_event_filter(&ctx, json, "", "presence", 0, &f->presence) != 0
        || mx_event_filter(&ctx, json, "", "account_data", 0,
                           &f->account_data) != 0)
    {
        return -1;
    }

    room = mx_json_get(json, "room");
    if (room == NULL) {
        return 0;
    }

    if (room->type != MX_JSON_OBJECT) {
        return mx_filter_fail(&ctx, "", "room", "must be an object");
    }

    if (mx_filter_list(&ctx, room, "room.", "rooms", '!', &f->room.rooms)
        != 0
        || mx_filter_list(&ctx, room, "room.", "not_rooms", '!',
                          &f->room.not_rooms) != 0
        || mx_filter_bool(&ctx, room, "room.", "include_leave", &b) != 0)
    {
        return -1;
    }

    f->room.include_leave = b == 1;

    if (mx_event_filter(&ctx, room, "room.", "ephemeral", 1,
                        &f->room.ephemeral) != 0
        || mx_event_filter(&ctx, room, "room.", "state", 1,
                           &f->room.state) != 0
        || mx_event_filter(&ctx, room, "room.", "timeline", 1,
                           &f->room.timeline) != 0
        || mx_event_filter(&ctx, room, "room.", "account_data", 1,
                           &f->room.account_data) != 0)
    {
        return -1;
    }

    return 0;
}


/* matching ---------------------------------------------------------------- */

/*
 * Glob with '*' only, iteratively: on a mismatch go back to the last '*'
 * and let it swallow one more character.  Linear in practice, never
 * exponential.
 */

int
mx_filter_type_match(const char *pattern, size_t plen, const char *type,
    size_t len)
{
    size_t  p = 0, t = 0, star = (size_t) -1, mark = 0;

    while (t < len) {
        if (p < plen && pattern[p] == '*') {
            star = p++;
            mark = t;

        } else if (p < plen && pattern[p] == type[t]) {
            p++;
            t++;

        } else if (star != (size_t) -1) {
            p = star + 1;
            t = ++mark;

        } else {
            return 0;
        }
    }

    while (p < plen && pattern[p] == '*') {
        p++;
    }

    return p == plen;
}


int
mx_filter_list_match_type(const mx_filter_list_t *list, const char *type,
    size_t len)
{
    size_t  i;

    for (i = 0; i < list->n; i++) {
        if (mx_filter_type_match(list->v[i].p, list->v[i].len, type, len)) {
            return 1;
        }
    }

    return 0;
}


int
mx_filter_list_has(const mx_filter_list_t *list, const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < list->n; i++) {
        if (list->v[i].len == len && memcmp(list->v[i].p, s, len) == 0) {
            return 1;
        }
    }

    return 0;
}


int
mx_filter_allows_type(const mx_event_filter_t *f, const char *type,
    size_t len)
{
    if (mx_filter_list_match_type(&f->not_types, type, len)) {
        return 0;
    }

    return !f->types.set || mx_filter_list_match_type(&f->types, type, len);
}


int
mx_filter_allows_sender(const mx_event_filter_t *f, const char *sender,
    size_t len)
{
    if (mx_filter_list_has(&f->not_senders, sender, len)) {
        return 0;
    }

    return !f->senders.set || mx_filter_list_has(&f->senders, sender, len);
}


int
mx_filter_allows_room(const mx_filter_list_t *rooms,
    const mx_filter_list_t *not_rooms, const char *room_id, size_t len)
{
    if (mx_filter_list_has(not_rooms, room_id, len)) {
        return 0;
    }

    return !rooms->set || mx_filter_list_has(rooms, room_id, len);
}


int
mx_filter_allows_event(const mx_event_filter_t *f, const char *type,
    size_t type_len, const char *sender, size_t sender_len,
    const char *room_id, size_t room_len, int has_url)
{
    if (!mx_filter_allows_type(f, type, type_len)) {
        return 0;
    }

    if (sender && !mx_filter_allows_sender(f, sender, sender_len)) {
        return 0;
    }

    if (room_id && !mx_filter_allows_room(&f->rooms, &f->not_rooms, room_id,
                                          room_len))
    {
        return 0;
    }

    if (f->contains_url != -1 && (has_url != 0) != f->contains_url) {
        return 0;
    }

    return 1;
}


/*
 * One step of an event_fields path, unescaped ("\." and "\\"), into the
 * pool; *next is where the following step starts (past len: none).
 */

static char *
mx_filter_field_step(mx_pool_t *pool, const char *path, size_t len,
    size_t *start, size_t *out_len)
{
    char    *key;
    size_t   i, n;

    key = mx_palloc(pool, len - *start + 1);
    if (key == NULL) {
        return NULL;
    }

    for (i = *start, n = 0; i < len && path[i] != '.'; i++) {
        if (path[i] == '\\' && i + 1 < len
            && (path[i + 1] == '.' || path[i + 1] == '\\'))
        {
            i++;
        }

        key[n++] = path[i];
    }

    key[n] = '\0';
    *out_len = n;
    *start = i + 1;

    return key;
}


mx_json_t *
mx_filter_event_fields(mx_pool_t *pool, const mx_json_t *ev,
    const mx_filter_list_t *fields)
{
    mx_json_t        *out, *dst, *sub;
    const mx_json_t  *src, *v;
    const char       *path;
    char             *key;
    size_t            i, len, start, klen;

    if (!fields->set || !mx_json_is(ev, MX_JSON_OBJECT)) {
        return (mx_json_t *) ev;
    }

    out = mx_json_object(pool);
    if (out == NULL) {
        return NULL;
    }

    for (i = 0; i < fields->n; i++) {
        path = fields->v[i].p;
        len = fields->v[i].len;
        src = ev;
        dst = out;
        start = 0;

        while (start <= len) {
            key = mx_filter_field_step(pool, path, len, &start, &klen);
            if (key == NULL) {
                return NULL;
            }

            v = mx_json_getn(src, key, klen);
            if (v == NULL) {
                break;
            }

            if (start > len) {
                /* the last step: the value, whole */
                if (mx_json_setn(pool, dst, key, klen, (mx_json_t *) v)
                    != 0)
                {
                    return NULL;
                }

                break;
            }

            if (!mx_json_is(v, MX_JSON_OBJECT)) {
                break;
            }

            sub = mx_json_getn(dst, key, klen);
            if (sub == NULL) {
                sub = mx_json_object(pool);
                if (sub == NULL
                    || mx_json_setn(pool, dst, key, klen, sub) != 0)
                {
                    return NULL;
                }
            }

            src = v;
            dst = sub;
        }
    }

    return out;
}

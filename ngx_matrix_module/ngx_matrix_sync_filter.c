/*
 * /sync's filters on a response once built, and the unread counts.
 *
 * What mx_sync applies itself, because it decides what is read: the
 * rooms' membership sections (include_leave), the lazy-loaded members and
 * their redundancy (per device), the timeline's limit.  What is applied
 * here, to the events as built:
 *
 *   presence, account_data          EventFilter: types, not_types,
 *                                   senders, not_senders (the user for
 *                                   account data), limit
 *   room.account_data               RoomEventFilter: the same, and rooms
 *   room.ephemeral                  RoomEventFilter: types (m.typing,
 *                                   m.receipt), rooms, limit; senders and
 *                                   not_senders choose whose typing and
 *                                   whose receipts are told
 *   event_fields                    the fields kept of every state and
 *                                   timeline event
 *
 * The unread counts come from mx_sync with every joined room:
 * unread_notifications always, unread_thread_notifications when the
 * timeline filter asks for them (and then the former counts the main
 * timeline only).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_filter.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_sync.h"


static ngx_uint_t
ngx_matrix_sync_threads(const mx_filter_t *f)
{
    return f != NULL && (f->room.timeline.unread_thread_notifications
                         || f->room.state.unread_thread_notifications);
}


void
ngx_matrix_sync_options(const mx_filter_t *f, u_char *buf, ngx_str_t *out)
{
    u_char  *p;

    p = buf;

    if (f != NULL) {
        /* lazily only when member events may come at all */
        if (f->room.state.lazy_load_members
            && mx_filter_allows_type(&f->room.state, "m.room.member",
                                     sizeof("m.room.member") - 1))
        {
            *p++ = 'l';

            if (f->room.state.include_redundant_members) {
                *p++ = 'r';
            }
        }

        if (f->room.include_leave) {
            *p++ = 'L';
        }

        if (ngx_matrix_sync_threads(f)) {
            *p++ = 't';
        }
    }

    *p = '\0';
    out->data = buf;
    out->len = p - buf;
}


/*
 * Keep the events of {"events": [...]} an (Room)EventFilter lets through,
 * then its limit.  An event without a sender is the user's (account
 * data); room_id NULL: not a room's.
 */

static void
ngx_matrix_sync_filter_events(mx_json_t *wrap, const mx_event_filter_t *f,
    ngx_str_t *user, const char *room_id)
{
    mx_json_t   *arr, *ev;
    const char  *type, *sender;
    size_t       i, k, tlen, slen;
    int          has_url;

    arr = mx_json_get_arr(wrap, "events");
    if (arr == NULL) {
        return;
    }

    for (i = 0, k = 0; i < arr->u.a.n; i++) {
        ev = arr->u.a.v[i];
        type = mx_json_get_str(ev, "type", &tlen);
        sender = mx_json_get_str(ev, "sender", &slen);

        if (sender == NULL) {
            sender = (const char *) user->data;
            slen = user->len;
        }

        has_url = mx_json_get(mx_json_get(ev, "content"), "url") != NULL;

        if (type != NULL
            && mx_filter_allows_event(f, type, tlen, sender, slen, room_id,
                                      room_id ? ngx_strlen(room_id) : 0,
                                      has_url))
        {
            arr->u.a.v[k++] = ev;
        }
    }

    arr->u.a.n = k;

    if (f->limit > 0 && arr->u.a.n > (size_t) f->limit) {
        arr->u.a.n = (size_t) f->limit;
    }
}


/* m.typing: the user_ids the filter's senders allow */

static ngx_int_t
ngx_matrix_sync_filter_typing(mx_pool_t *pool, mx_json_t *ev,
    const mx_event_filter_t *f)
{
    mx_json_t  *content, *ids, *kept, *id;
    size_t      i;

    content = mx_json_get_obj(ev, "content");
    ids = mx_json_get_arr(content, "user_ids");
    if (ids == NULL) {
        return NGX_OK;
    }

    kept = mx_json_array(pool);
    if (kept == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < ids->u.a.n; i++) {
        id = ids->u.a.v[i];

        if (id->type == MX_JSON_STRING
            && mx_filter_allows_sender(f, id->u.s.p, id->u.s.len)
            && mx_json_append(pool, kept, id) != 0)
        {
            return NGX_ERROR;
        }
    }

    return mx_json_set(pool, content, "user_ids", kept) == 0 ? NGX_OK
                                                              : NGX_ERROR;
}


/*
 * m.receipt: {event_id: {type: {user_id: {...}}}} with the receipts of
 * the users the filter's senders allow; 1 when some are left, 0 when none,
 * -1 on ENOMEM.
 */

static int
ngx_matrix_sync_filter_receipts(mx_pool_t *pool, mx_json_t *ev,
    const mx_event_filter_t *f)
{
    mx_json_t         *content, *out, *byev, *bytype, *ne, *nt;
    mx_json_member_t  *e, *t, *u;
    size_t             i, j, k;

    content = mx_json_get_obj(ev, "content");
    if (content == NULL) {
        return 0;
    }

    out = mx_json_object(pool);
    if (out == NULL) {
        return -1;
    }

    for (i = 0; i < content->u.o.n; i++) {
        e = &content->u.o.m[i];
        byev = e->value;
        ne = NULL;

        for (j = 0; mx_json_is(byev, MX_JSON_OBJECT) && j < byev->u.o.n;
             j++)
        {
            t = &byev->u.o.m[j];
            bytype = t->value;
            nt = NULL;

            for (k = 0; mx_json_is(bytype, MX_JSON_OBJECT)
                        && k < bytype->u.o.n; k++)
            {
                u = &bytype->u.o.m[k];

                if (!mx_filter_allows_sender(f, u->key, u->key_len)) {
                    continue;
                }

                if (nt == NULL) {
                    nt = mx_json_object(pool);
                    if (nt == NULL) {
                        return -1;
                    }
                }

                if (mx_json_setn(pool, nt, u->key, u->key_len, u->value)
                    != 0)
                {
                    return -1;
                }
            }

            if (nt == NULL) {
                continue;
            }

            if (ne == NULL) {
                ne = mx_json_object(pool);
                if (ne == NULL) {
                    return -1;
                }
            }

            if (mx_json_setn(pool, ne, t->key, t->key_len, nt) != 0) {
                return -1;
            }
        }

        if (ne != NULL && mx_json_setn(pool, out, e->key, e->key_len, ne)
                          != 0)
        {
            return -1;
        }
    }

    if (out->u.o.n == 0) {
        return 0;
    }

    return mx_json_set(pool, ev, "content", out) == 0 ? 1 : -1;
}


static ngx_int_t
ngx_matrix_sync_filter_ephemeral(mx_pool_t *pool, mx_json_t *wrap,
    const mx_event_filter_t *f, const char *room_id)
{
    mx_json_t   *arr, *ev;
    const char  *type;
    size_t       i, k, len;
    int          rc;

    arr = mx_json_get_arr(wrap, "events");
    if (arr == NULL) {
        return NGX_OK;
    }

    if (!mx_filter_allows_room(&f->rooms, &f->not_rooms, room_id,
                               ngx_strlen(room_id)))
    {
        arr->u.a.n = 0;
        return NGX_OK;
    }

    for (i = 0, k = 0; i < arr->u.a.n; i++) {
        ev = arr->u.a.v[i];
        type = mx_json_get_str(ev, "type", &len);

        if (type == NULL || !mx_filter_allows_type(f, type, len)) {
            continue;
        }

        if (ngx_strcmp(type, "m.typing") == 0) {
            if (ngx_matrix_sync_filter_typing(pool, ev, f) != NGX_OK) {
                return NGX_ERROR;
            }

        } else if (ngx_strcmp(type, "m.receipt") == 0) {
            rc = ngx_matrix_sync_filter_receipts(pool, ev, f);
            if (rc < 0) {
                return NGX_ERROR;
            }

            if (rc == 0) {
                continue;
            }
        }

        arr->u.a.v[k++] = ev;
    }

    arr->u.a.n = k;

    if (f->limit > 0 && arr->u.a.n > (size_t) f->limit) {
        arr->u.a.n = (size_t) f->limit;
    }

    return NGX_OK;
}


/* event_fields on {"events": [...]} */

static ngx_int_t
ngx_matrix_sync_fields(mx_pool_t *pool, mx_json_t *wrap, const mx_filter_t *f)
{
    mx_json_t  *arr, *ev;
    size_t      i;

    arr = mx_json_get_arr(wrap, "events");

    for (i = 0; arr != NULL && i < arr->u.a.n; i++) {
        ev = mx_filter_event_fields(pool, arr->u.a.v[i], &f->event_fields);
        if (ev == NULL) {
            return NGX_ERROR;
        }

        arr->u.a.v[i] = ev;
    }

    return NGX_OK;
}


/* {"notification_count", "highlight_count"} of two integer replies */

static mx_json_t *
ngx_matrix_sync_counts(mx_pool_t *pool, redisReply *n, redisReply *h)
{
    mx_json_t  *o;

    o = mx_json_object(pool);

    if (o == NULL
        || mx_json_set_int(pool, o, "notification_count",
                           n->type == REDIS_REPLY_INTEGER ? n->integer : 0)
           != 0
        || mx_json_set_int(pool, o, "highlight_count",
                           h->type == REDIS_REPLY_INTEGER ? h->integer : 0)
           != 0)
    {
        return NULL;
    }

    return o;
}


static ngx_int_t
ngx_matrix_sync_unread(mx_pool_t *pool, const mx_filter_t *f, mx_json_t *room,
    redisReply *counts)
{
    mx_json_t   *threads, *c;
    redisReply  *list;
    size_t       i;

    if (counts->type != REDIS_REPLY_ARRAY || counts->elements != 3) {
        return NGX_OK;
    }

    c = ngx_matrix_sync_counts(pool, counts->element[0], counts->element[1]);
    if (c == NULL || mx_json_set(pool, room, "unread_notifications", c) != 0)
    {
        return NGX_ERROR;
    }

    list = counts->element[2];

    if (!ngx_matrix_sync_threads(f) || list->type != REDIS_REPLY_ARRAY
        || list->elements < 3)
    {
        return NGX_OK;
    }

    threads = mx_json_object(pool);
    if (threads == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i + 2 < list->elements; i += 3) {
        c = ngx_matrix_sync_counts(pool, list->element[i + 1],
                                   list->element[i + 2]);

        if (c == NULL || list->element[i]->type != REDIS_REPLY_STRING
            || mx_json_setn(pool, threads, list->element[i]->str,
                            list->element[i]->len, c) != 0)
        {
            return NGX_ERROR;
        }
    }

    return mx_json_set(pool, room, "unread_thread_notifications", threads)
           == 0 ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_matrix_sync_room_filter(ngx_matrix_req_t *mr, const mx_filter_t *f,
    mx_json_t *room, const char *room_id, redisReply *counts)
{
    mx_pool_t  *pool;
    mx_json_t  *eph;

    pool = ngx_matrix_pool(mr);

    if (counts != NULL
        && ngx_matrix_sync_unread(pool, f, room, counts) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (f == NULL) {
        return NGX_OK;
    }

    ngx_matrix_sync_filter_events(mx_json_get(room, "account_data"),
                                  &f->room.account_data, &mr->user_id,
                                  room_id);

    eph = mx_json_get(room, "ephemeral");

    if (eph != NULL
        && ngx_matrix_sync_filter_ephemeral(pool, eph, &f->room.ephemeral,
                                            room_id) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (f->event_fields.set
        && (ngx_matrix_sync_fields(pool, mx_json_get(room, "state"), f)
            != NGX_OK
            || ngx_matrix_sync_fields(pool, mx_json_get(room, "timeline"), f)
               != NGX_OK))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_matrix_sync_top_filter(ngx_matrix_req_t *mr, const mx_filter_t *f,
    mx_json_t *out)
{
    if (f == NULL) {
        return NGX_OK;
    }

    ngx_matrix_sync_filter_events(mx_json_get(out, "account_data"),
                                  &f->account_data, &mr->user_id, NULL);
    ngx_matrix_sync_filter_events(mx_json_get(out, "presence"),
                                  &f->presence, &mr->user_id, NULL);

    return NGX_OK;
}

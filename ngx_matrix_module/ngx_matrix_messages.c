/*
 * GET /rooms/{roomId}/messages: pages of a room's timeline.
 *
 * Tokens are stream positions: "p<N>" is the point just after the event at
 * position N (the syncer gives positions in the order events become
 * visible, so every event is between two tokens exactly once).  A /sync
 * token ("s<N>...") is accepted as well, so a timeline's prev_batch can be
 * given here.  History backfilled from another server lies below the
 * room's first event, at negative positions: "p-<N>".  Backwards from p<N>
 * come N, N-1, ...; "end" is the token to
 * go on from, absent when the page reached the room's start (or its end,
 * going forwards).
 *
 * The filter is a RoomEventFilter; events it drops still move the token
 * on, so a page may hold fewer events than the limit.  Redacted events are
 * served redacted, with the redaction in unsigned.redacted_because.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_event.h>
#include <mx_filter.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


#define NGX_MATRIX_MESSAGES_DEFAULT  10
#define NGX_MATRIX_MESSAGES_MAX      1000


typedef struct {
    char                 *room_id;
    ngx_str_t             from;
    ngx_uint_t            backwards;
    mx_event_filter_t    *filter;
} ngx_matrix_messages_t;


static ngx_int_t ngx_matrix_messages_done(ngx_matrix_req_t *mr,
    redisReply *reply);


/* "p<N>" or "s<N>...": N, or -1 when it is no token of ours */

int64_t
ngx_matrix_token_pos(ngx_str_t *t)
{
    size_t   i;
    int64_t  n;

    if (t->len < 2 || (t->data[0] != 'p' && t->data[0] != 's')) {
        return -1;
    }

    n = 0;

    for (i = 1; i < t->len && t->data[i] >= '0' && t->data[i] <= '9'; i++) {
        if (n > (INT64_MAX - 9) / 10) {
            return -1;
        }
        n = n * 10 + (t->data[i] - '0');
    }

    if (i == 1 || (i < t->len && t->data[0] == 'p')) {
        return -1;
    }

    return n;
}


/*
 * A token of /messages: "p-<N>" (a position of history backfilled from
 * another server, below the room's first event: negative) or one
 * ngx_matrix_token_pos() reads.  NGX_OK and *pos, or NGX_ERROR.
 */

static ngx_int_t
ngx_matrix_messages_pos(ngx_str_t *t, int64_t *pos)
{
    size_t   i;
    int64_t  n;

    if (t->len > 2 && t->data[0] == 'p' && t->data[1] == '-') {
        n = 0;

        for (i = 2; i < t->len; i++) {
            if (t->data[i] < '0' || t->data[i] > '9'
                || n > (INT64_MAX - 9) / 10)
            {
                return NGX_ERROR;
            }
            n = n * 10 + (t->data[i] - '0');
        }

        *pos = -n;
        return NGX_OK;
    }

    n = ngx_matrix_token_pos(t);
    if (n < 0) {
        return NGX_ERROR;
    }

    *pos = n;

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_messages_bad(ngx_matrix_req_t *mr, const char *what)
{
    return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                 "M_INVALID_PARAM", "%s", what);
}


ngx_int_t
ngx_matrix_messages(ngx_matrix_req_t *mr)
{
    ngx_matrix_messages_t  *m;
    ngx_matrix_cmd_t        c;
    ngx_str_t               dir, from, to, limit, filter, key, *room;
    ngx_int_t               n;
    int64_t                 from_pos, to_pos;
    ngx_uint_t              has_from, has_to;
    mx_pool_t              *pool;
    mx_json_t              *fj, *wrap, *room_obj;
    mx_json_error_t         err;
    mx_filter_t            *f;
    char                    ferr[160];
    u_char                 *p, *dec;

    room = &mr->params[0];
    pool = ngx_matrix_pool(mr);

    if (!ngx_matrix_room_id_valid(room)) {
        return ngx_matrix_messages_bad(mr, "Not a valid room ID.");
    }

    m = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_messages_t));
    if (m == NULL || pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = m;
    m->room_id = ngx_matrix_cstr(mr, room);

    /* dir: b or f (the spec makes it required; Synapse defaults to b) */

    ngx_str_null(&from);

    m->backwards = 1;
    if (ngx_matrix_arg(mr->r, "dir", &dir) == NGX_OK) {
        if (dir.len != 1 || (dir.data[0] != 'b' && dir.data[0] != 'f')) {
            return ngx_matrix_messages_bad(mr, "dir must be b or f.");
        }
        m->backwards = dir.data[0] == 'b';
    }

    has_from = 0;
    from_pos = 0;
    if (ngx_matrix_arg(mr->r, "from", &from) == NGX_OK && from.len) {
        if (ngx_matrix_messages_pos(&from, &from_pos) != NGX_OK) {
            return ngx_matrix_messages_bad(mr, "from is not a valid token.");
        }
        has_from = 1;
    }

    has_to = 0;
    to_pos = 0;
    if (ngx_matrix_arg(mr->r, "to", &to) == NGX_OK && to.len) {
        if (ngx_matrix_messages_pos(&to, &to_pos) != NGX_OK) {
            return ngx_matrix_messages_bad(mr, "to is not a valid token.");
        }
        has_to = 1;
    }

    n = NGX_MATRIX_MESSAGES_DEFAULT;
    ngx_str_null(&limit);
    if (ngx_matrix_arg(mr->r, "limit", &limit) == NGX_OK && limit.len) {
        n = ngx_atoi(limit.data, limit.len);
        if (n == NGX_ERROR) {
            return ngx_matrix_messages_bad(mr, "limit must be a number.");
        }
    }

    /* the filter: URL-encoded JSON */

    if (ngx_matrix_arg(mr->r, "filter", &filter) == NGX_OK && filter.len) {
        dec = ngx_pnalloc(mr->r->pool, filter.len);
        if (dec == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        p = dec;
        ngx_unescape_uri(&p, &filter.data, filter.len, 0);

        fj = mx_json_parse(pool, (char *) dec, p - dec, &err);
        if (fj == NULL || fj->type != MX_JSON_OBJECT) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "filter is not a JSON"
                                         " object.");
        }

        /* a RoomEventFilter is what a Filter has at room.timeline */
        wrap = mx_json_object(pool);
        room_obj = mx_json_object(pool);
        f = mx_palloc(pool, sizeof(mx_filter_t));

        if (wrap == NULL || room_obj == NULL || f == NULL
            || mx_json_set(pool, room_obj, "timeline", fj) != 0
            || mx_json_set(pool, wrap, "room", room_obj) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (mx_filter_parse(pool, wrap, f, ferr, sizeof(ferr)) != 0) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "Invalid filter: %s",
                                         ferr);
        }

        m->filter = &f->room.timeline;

        if (limit.len == 0 && m->filter->limit > 0) {
            n = (ngx_int_t) ngx_min(m->filter->limit,
                                    NGX_MATRIX_MESSAGES_MAX);
        }
    }

    if (n < 1) {
        n = 1;
    }

    if (n > NGX_MATRIX_MESSAGES_MAX) {
        n = NGX_MATRIX_MESSAGES_MAX;
    }

    key.len = sizeof("mx:{}:room") - 1 + room->len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%V}:room", room);

    ngx_matrix_fcall_init(&c, "mx_room_messages", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, room);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_cstr(&c, m->backwards ? "b" : "f");

    if (has_from) {
        if (ngx_matrix_cmd_int(mr, &c, from_pos) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    } else {
        ngx_matrix_cmd_cstr(&c, "");
    }

    if (has_to) {
        if (ngx_matrix_cmd_int(mr, &c, to_pos) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    } else {
        ngx_matrix_cmd_cstr(&c, "");
    }

    if (ngx_matrix_cmd_int(mr, &c, n) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    m->from = from;

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_messages_done);
}


/* {next, first position, version, then event_id, pdu, redaction ID and
 * pdu, ...} */

static ngx_int_t
ngx_matrix_messages_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_messages_t  *m;
    mx_pool_t              *pool;
    mx_json_t              *out, *chunk, *pdu, *ev, *red, *redev, *uns;
    mx_json_error_t         err;
    redisReply             *id, *raw, *rid, *rraw;
    const char             *type, *sender, *rv_id;
    const mx_room_version_t *rv;
    size_t                  i, tlen, slen;
    long long               next, first;
    ngx_uint_t              has_next, has_first;
    char                    tok[32];

    m = mr->data;
    pool = ngx_matrix_pool(mr);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* nil: no next page, no event */
    has_next = reply->element[0]->type == REDIS_REPLY_INTEGER;
    next = reply->element[0]->integer;
    has_first = reply->element[1]->type == REDIS_REPLY_INTEGER;
    first = reply->element[1]->integer;
    rv_id = reply->element[2]->str;
    rv = mx_room_version(rv_id, reply->element[2]->len);

    out = mx_json_object(pool);
    chunk = mx_json_array(pool);
    if (out == NULL || chunk == NULL || rv == NULL
        || mx_json_set(pool, out, "chunk", chunk) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* start: the token given, else the point the page starts from */
    if (m->from.len) {
        if (mx_json_set(pool, out, "start",
                        mx_json_strn(pool, (char *) m->from.data,
                                     m->from.len)) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else {
        ngx_sprintf((u_char *) tok, "p%L%Z",
                    !has_first ? 0 : (m->backwards ? first : first - 1));
        if (mx_json_set_str(pool, out, "start", tok) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (has_next) {
        ngx_sprintf((u_char *) tok, "p%L%Z", next);
        if (mx_json_set_str(pool, out, "end", tok) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    for (i = 3; i + 3 < reply->elements; i += 4) {
        id = reply->element[i];
        raw = reply->element[i + 1];
        rid = reply->element[i + 2];
        rraw = reply->element[i + 3];

        pdu = mx_json_parse(pool, raw->str, raw->len, &err);
        if (pdu == NULL) {
            continue;
        }

        type = mx_json_get_str(pdu, "type", &tlen);
        sender = mx_json_get_str(pdu, "sender", &slen);

        if (m->filter != NULL
            && (type == NULL || sender == NULL
                || !mx_filter_allows_event(m->filter, type, tlen, sender,
                        slen, m->room_id, ngx_strlen(m->room_id),
                        mx_json_get(mx_json_get(pdu, "content"), "url")
                        != NULL)))
        {
            continue;
        }

        redev = NULL;

        if (rraw->len) {
            red = mx_json_parse(pool, rraw->str, rraw->len, &err);
            redev = red ? mx_event_client(pool, red, rid->str, m->room_id)
                        : NULL;
            pdu = mx_event_redact(pool, pdu, rv);
            if (pdu == NULL) {
                continue;
            }
        }

        ev = mx_event_client(pool, pdu, id->str, m->room_id);
        if (ev == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (redev != NULL) {
            uns = mx_json_object(pool);
            if (uns == NULL
                || mx_json_set(pool, uns, "redacted_because", redev) != 0
                || mx_json_set(pool, ev, "unsigned", uns) != 0)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        if (mx_json_append(pool, chunk, ev) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}

/*
 * A changed displayname or avatar_url goes into the user's member event in
 * every room they have joined, as Synapse does, so other members see it.
 *
 *   mx_profile_get ──► mx_joined_rooms ──► for each room in turn: a member
 *   event (join, with the new profile), sent like any other
 *
 * The profile request answers once every room has accepted its event, so
 * what the client reads next shows the change; a room where the event
 * cannot be made (left meanwhile, say) is skipped.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


typedef struct {
    mx_json_t     *profile;      /* displayname, avatar_url */
    char         **room_ids;
    size_t         n;
    size_t         next;
} ngx_matrix_propagate_t;


static ngx_int_t ngx_matrix_propagate_rooms(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_propagate_start(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_propagate_next(ngx_matrix_req_t *mr,
    const char *event_id, size_t len);


ngx_int_t
ngx_matrix_profile_propagate(ngx_matrix_req_t *mr)
{
    ngx_matrix_send_t       *s;
    ngx_matrix_propagate_t  *pp;

    s = ngx_matrix_send_new(mr);
    pp = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_propagate_t));
    if (s == NULL || pp == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    s->data = pp;

    return ngx_matrix_profile_own(mr, ngx_matrix_propagate_rooms);
}


/*
 * What member events carry of a profile: displayname and avatar_url of an
 * mx_profile_get reply ({field, JSON value, ...}) set in content.  Also
 * used by createRoom's and /join's member events.
 */

ngx_int_t
ngx_matrix_profile_member(ngx_matrix_req_t *mr, redisReply *reply,
    mx_json_t *content)
{
    mx_pool_t        *pool;
    mx_json_t        *v;
    mx_json_error_t   err;
    redisReply       *k, *val;
    size_t            i;

    pool = ngx_matrix_pool(mr);

    for (i = 0; reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements;
         i += 2)
    {
        k = reply->element[i];
        val = reply->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING
            || (ngx_strcmp(k->str, "displayname") != 0
                && ngx_strcmp(k->str, "avatar_url") != 0))
        {
            continue;
        }

        v = mx_json_parse(pool, val->str, val->len, &err);
        if (v != NULL && v->type == MX_JSON_STRING
            && mx_json_set(pool, content, k->str, v) != 0)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* the profile is read: now the rooms */

static ngx_int_t
ngx_matrix_propagate_profile(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_send_t       *s;
    ngx_matrix_propagate_t  *pp;

    s = mr->data;
    pp = s->data;

    pp->profile = mx_json_object(ngx_matrix_pool(mr));

    if (pp->profile == NULL
        || ngx_matrix_profile_member(mr, reply, pp->profile) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_propagate_rooms(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_cmd_t   c;
    ngx_str_t          key;
    ngx_int_t          rc;

    rc = ngx_matrix_propagate_profile(mr, reply);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_matrix_user_key(mr, &mr->user_id, "rooms", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_joined_rooms", 1);
    ngx_matrix_cmd_str(&c, &key);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_propagate_start);
}


static ngx_int_t
ngx_matrix_propagate_start(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_send_t       *s;
    ngx_matrix_propagate_t  *pp;
    mx_pool_t               *pool;
    size_t                   i;

    s = mr->data;
    pp = s->data;
    pool = ngx_matrix_pool(mr);

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements) {
        pp->room_ids = mx_palloc(pool, reply->elements * sizeof(char *));
        if (pp->room_ids == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (i = 0; i < reply->elements; i++) {
            pp->room_ids[i] = mx_pstrndup(pool, reply->element[i]->str,
                                          reply->element[i]->len);
            if (pp->room_ids[i] == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        pp->n = reply->elements;
    }

    return ngx_matrix_propagate_next(mr, NULL, 0);
}


/* the next room, or the answer when there is none */

static ngx_int_t
ngx_matrix_propagate_next(ngx_matrix_req_t *mr, const char *event_id,
    size_t len)
{
    ngx_matrix_send_t       *s;
    ngx_matrix_propagate_t  *pp;
    mx_pool_t               *pool;
    mx_json_t               *content;
    size_t                   i;

    (void) event_id;
    (void) len;

    s = mr->data;
    pp = s->data;
    pool = ngx_matrix_pool(mr);

    if (pp->next == pp->n) {
        return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
    }

    content = mx_json_object(pool);
    if (content == NULL
        || mx_json_set_str(pool, content, "membership", "join") != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < pp->profile->u.o.n; i++) {
        if (mx_json_set(pool, content, pp->profile->u.o.m[i].key,
                        pp->profile->u.o.m[i].value) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* a fresh send for this room, the same request */
    ngx_memzero(s->pdus, sizeof(s->pdus));
    s->n = 0;
    s->state = NULL;
    s->prev = NULL;
    s->n_prev = 0;
    s->last = NULL;
    s->rv = NULL;
    ngx_str_null(&s->txn_id);

    s->room_id = pp->room_ids[pp->next++];
    s->sender = mx_pstrndup(pool, (char *) mr->user_id.data,
                            mr->user_id.len);
    s->type = "m.room.member";
    s->state_key = s->sender;
    s->content = content;
    s->quiet = 1;
    s->done = ngx_matrix_propagate_next;

    if (s->sender == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_start(mr);
}

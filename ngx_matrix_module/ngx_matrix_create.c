/*
 * POST /createRoom: the room's first events, built here as one chain, each
 * on top of the last, and submitted together; the answer waits for the
 * verdict on the last of them.
 *
 *   m.room.create                   room_version, creation_content
 *   m.room.member (creator, join)
 *   m.room.power_levels             the preset's, then the override
 *   m.room.join_rules, m.room.history_visibility, m.room.guest_access
 *                                   the preset's
 *   initial_state                   in order, replacing preset events
 *   m.room.name, m.room.topic
 *   m.room.member (invite)          each invitee of this server; is_direct
 *
 * Versions 1 to 11 get a room ID made here; version 12's is the create
 * event's ID with '!' for '$'.
 *
 * Once the room is in, each invitee of another server is invited as by
 * POST /rooms/{id}/invite, one after another: the invite countersigned by
 * the invitee's server (ngx_matrix_fedinvite_out.c), is_direct in its
 * content too.  A failed one is logged and the room stays as it is (as
 * Synapse does): the answer is the room ID all the same.  Those invites
 * start within NGX_MATRIX_CREATE_INVITE_TIME of the room's being made and
 * each waits for its server no longer than what is left of it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <sodium.h>

#include <mx_base64.h>
#include <mx_ids.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


#define NGX_MATRIX_PRESET_PRIVATE  0
#define NGX_MATRIX_PRESET_TRUSTED  1
#define NGX_MATRIX_PRESET_PUBLIC   2

#define NGX_MATRIX_CREATE_INVITE_TIME  20000    /* ms, remote invites */
#define NGX_MATRIX_CREATE_INVITE_MIN   1000     /* ms left to start one */


typedef struct {
    ngx_uint_t     preset;
    ngx_uint_t     is_direct;
    mx_json_t     *invite;
    mx_json_t     *initial;
    mx_json_t     *override;
    mx_json_t     *creation;
    mx_json_t     *join;          /* the creator's member event content */
    ngx_str_t      alias;         /* from room_alias_name, or empty */
    ngx_uint_t     publish;       /* visibility "public" */
    size_t         next;          /* invite: the next to look at once
                                     the room is in */
    ngx_msec_t     deadline;      /* for the remote invites, once begun */
} ngx_matrix_create_t;


static ngx_int_t ngx_matrix_create_profile(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_create_chain(ngx_matrix_req_t *mr);
static ngx_int_t ngx_matrix_create_reserve(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_create_invite_next(ngx_matrix_req_t *mr,
    const char *event_id, size_t len);


static ngx_int_t
ngx_matrix_create_bad(ngx_matrix_req_t *mr, const char *fmt, const char *arg)
{
    return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST, "M_BAD_JSON",
                                 fmt, arg);
}


/* one event of the chain */

static ngx_int_t
ngx_matrix_create_add(ngx_matrix_req_t *mr, const char *type,
    const char *state_key, mx_json_t *content)
{
    ngx_matrix_send_t  *s;

    s = mr->data;

    if (content == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (s->n == NGX_MATRIX_SEND_MAX) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_LIMIT_EXCEEDED", "Too many initial"
                                     " events (at most %d).",
                                     NGX_MATRIX_SEND_MAX);
    }

    s->type = type;
    s->state_key = state_key;
    s->content = content;

    return ngx_matrix_send_build(mr);
}


/* is an invitee (a valid user ID) a user of another server? */

static ngx_uint_t
ngx_matrix_create_remote(ngx_matrix_req_t *mr, mx_json_t *user_id)
{
    ngx_str_t  id, localpart;

    id.data = (u_char *) user_id->u.s.p;
    id.len = user_id->u.s.len;

    return ngx_matrix_user_id_local(mr, &id, &localpart) != NGX_OK;
}


/* an object with one string member */

static mx_json_t *
ngx_matrix_create_obj1(mx_pool_t *pool, const char *key, const char *value)
{
    mx_json_t  *o;

    o = mx_json_object(pool);
    if (o == NULL || mx_json_set_str(pool, o, key, value) != 0) {
        return NULL;
    }

    return o;
}


/* an invite's content: is_direct when the request says so */

static mx_json_t *
ngx_matrix_create_invite_content(mx_pool_t *pool, ngx_uint_t is_direct)
{
    mx_json_t  *content;

    content = ngx_matrix_create_obj1(pool, "membership", "invite");
    if (content == NULL
        || (is_direct
            && mx_json_set(pool, content, "is_direct",
                           mx_json_bool(pool, 1)) != 0))
    {
        return NULL;
    }

    return content;
}


static mx_json_t *
ngx_matrix_create_power_levels(ngx_matrix_req_t *mr, ngx_uint_t preset,
    mx_json_t *invite, mx_json_t *override)
{
    ngx_matrix_send_t  *s;
    mx_pool_t          *pool;
    mx_json_t          *pl, *users, *events;
    size_t              i;

    static const struct {
        const char  *type;
        int64_t      level;
    } defaults[] = {
        { "m.room.name", 50 },
        { "m.room.power_levels", 100 },
        { "m.room.history_visibility", 100 },
        { "m.room.canonical_alias", 50 },
        { "m.room.avatar", 50 },
        { "m.room.tombstone", 100 },
        { "m.room.server_acl", 100 },
        { "m.room.encryption", 100 },
    };

    s = mr->data;
    pool = ngx_matrix_pool(mr);

    pl = mx_json_object(pool);
    users = mx_json_object(pool);
    events = mx_json_object(pool);
    if (pl == NULL || users == NULL || events == NULL) {
        return NULL;
    }

    /* v12: creators have infinite power and are not listed */
    if (!s->rv->room_id_from_create
        && mx_json_set_int(pool, users, s->sender, 100) != 0)
    {
        return NULL;
    }

    if (preset == NGX_MATRIX_PRESET_TRUSTED && invite != NULL) {
        for (i = 0; i < invite->u.a.n; i++) {
            if (mx_json_set_int(pool, users, invite->u.a.v[i]->u.s.p, 100)
                != 0)
            {
                return NULL;
            }
        }
    }

    for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (mx_json_set_int(pool, events, defaults[i].type,
                            defaults[i].level) != 0)
        {
            return NULL;
        }
    }

    if (mx_json_set(pool, pl, "users", users) != 0
        || mx_json_set_int(pool, pl, "users_default", 0) != 0
        || mx_json_set(pool, pl, "events", events) != 0
        || mx_json_set_int(pool, pl, "events_default", 0) != 0
        || mx_json_set_int(pool, pl, "state_default", 50) != 0
        || mx_json_set_int(pool, pl, "ban", 50) != 0
        || mx_json_set_int(pool, pl, "kick", 50) != 0
        || mx_json_set_int(pool, pl, "redact", 50) != 0
        || mx_json_set_int(pool, pl, "invite",
                           preset == NGX_MATRIX_PRESET_PUBLIC ? 50 : 0) != 0)
    {
        return NULL;
    }

    /* the override replaces whole top-level keys, as Synapse does */
    for (i = 0; override != NULL && i < override->u.o.n; i++) {
        if (mx_json_setn(pool, pl, override->u.o.m[i].key,
                         override->u.o.m[i].key_len,
                         override->u.o.m[i].value) != 0)
        {
            return NULL;
        }
    }

    return pl;
}


/* is (type, state_key) among initial_state?  Then the preset yields. */

static ngx_uint_t
ngx_matrix_create_initial_has(mx_json_t *initial, const char *type)
{
    const char  *t, *k;
    size_t       i;

    for (i = 0; initial != NULL && i < initial->u.a.n; i++) {
        t = mx_json_get_str(initial->u.a.v[i], "type", NULL);
        k = mx_json_get_str(initial->u.a.v[i], "state_key", NULL);

        if (t != NULL && ngx_strcmp(t, type) == 0 && (k == NULL || *k == 0)) {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_matrix_create_room(ngx_matrix_req_t *mr)
{
    ngx_uint_t            preset, is_direct, publish;
    ngx_str_t             alias = ngx_null_string;
    ngx_matrix_send_t    *s;
    ngx_matrix_create_t  *cr;
    mx_pool_t            *pool;
    mx_json_t            *body, *v, *invite, *initial, *override, *creation;
    mx_json_t            *e;
    const char           *version, *key;
    size_t                i;

    body = mr->body;
    pool = ngx_matrix_pool(mr);

    s = ngx_matrix_send_new(mr);
    if (s == NULL || pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* room_version */

    v = mx_json_get(body, "room_version");
    if (v != NULL && v->type != MX_JSON_STRING) {
        return ngx_matrix_create_bad(mr, "%s must be a string.",
                                     "room_version");
    }

    version = v ? v->u.s.p : MX_ROOM_VERSION_DEFAULT;
    s->rv = mx_room_version(version, ngx_strlen(version));
    if (s->rv == NULL) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_UNSUPPORTED_ROOM_VERSION",
                                     "This server does not support room"
                                     " version %s.", version);
    }

    /* visibility and preset */

    v = mx_json_get(body, "visibility");
    if (v != NULL
        && (v->type != MX_JSON_STRING
            || (ngx_strcmp(v->u.s.p, "public") != 0
                && ngx_strcmp(v->u.s.p, "private") != 0)))
    {
        return ngx_matrix_create_bad(mr, "%s must be public or private.",
                                     "visibility");
    }

    preset = v && ngx_strcmp(v->u.s.p, "public") == 0
             ? NGX_MATRIX_PRESET_PUBLIC : NGX_MATRIX_PRESET_PRIVATE;

    v = mx_json_get(body, "preset");
    if (v != NULL) {
        if (v->type != MX_JSON_STRING) {
            return ngx_matrix_create_bad(mr, "%s must be a string.",
                                         "preset");
        }

        if (ngx_strcmp(v->u.s.p, "private_chat") == 0) {
            preset = NGX_MATRIX_PRESET_PRIVATE;

        } else if (ngx_strcmp(v->u.s.p, "trusted_private_chat") == 0) {
            preset = NGX_MATRIX_PRESET_TRUSTED;

        } else if (ngx_strcmp(v->u.s.p, "public_chat") == 0) {
            preset = NGX_MATRIX_PRESET_PUBLIC;

        } else {
            return ngx_matrix_create_bad(mr, "Unknown preset %s.",
                                         v->u.s.p);
        }
    }

    /* the rest of the request, checked before anything is built */

    invite = mx_json_get(body, "invite");
    if (invite != NULL) {
        if (invite->type != MX_JSON_ARRAY) {
            return ngx_matrix_create_bad(mr, "%s must be a list of user"
                                         " IDs.", "invite");
        }

        for (i = 0; i < invite->u.a.n; i++) {
            e = invite->u.a.v[i];
            if (e->type != MX_JSON_STRING
                || !mx_user_id_historical_valid(e->u.s.p, e->u.s.len))
            {
                return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                             "M_INVALID_PARAM", "invite must"
                                             " be a list of user IDs.");
            }
        }
    }

    initial = mx_json_get(body, "initial_state");
    if (initial != NULL) {
        if (initial->type != MX_JSON_ARRAY) {
            return ngx_matrix_create_bad(mr, "%s must be a list of state"
                                         " events.", "initial_state");
        }

        for (i = 0; i < initial->u.a.n; i++) {
            e = initial->u.a.v[i];
            v = mx_json_get(e, "state_key");
            if (mx_json_get_str(e, "type", NULL) == NULL
                || !mx_json_is(mx_json_get(e, "content"), MX_JSON_OBJECT)
                || (v != NULL && v->type != MX_JSON_STRING))
            {
                return ngx_matrix_create_bad(mr, "%s: each event needs a"
                                             " type, a content object and"
                                             " a string state_key.",
                                             "initial_state");
            }
        }
    }

    override = mx_json_get(body, "power_level_content_override");
    if (override != NULL && override->type != MX_JSON_OBJECT) {
        return ngx_matrix_create_bad(mr, "%s must be an object.",
                                     "power_level_content_override");
    }

    creation = mx_json_get(body, "creation_content");
    if (creation != NULL && creation->type != MX_JSON_OBJECT) {
        return ngx_matrix_create_bad(mr, "%s must be an object.",
                                     "creation_content");
    }

    v = mx_json_get(body, "is_direct");
    if (v != NULL && !mx_json_is_bool(v)) {
        return ngx_matrix_create_bad(mr, "%s must be a boolean.",
                                     "is_direct");
    }
    is_direct = v && v->type == MX_JSON_TRUE;

    for (i = 0; i < 2; i++) {
        key = i ? "topic" : "name";
        v = mx_json_get(body, key);
        if (v != NULL && v->type != MX_JSON_STRING) {
            return ngx_matrix_create_bad(mr, "%s must be a string.", key);
        }
    }

    v = mx_json_get(body, "room_alias_name");
    if (v != NULL) {
        if (v->type != MX_JSON_STRING) {
            return ngx_matrix_create_bad(mr, "%s must be a string.",
                                         "room_alias_name");
        }

        alias.len = 1 + v->u.s.len + 1 + mr->mcf->server_name.len;
        alias.data = ngx_pnalloc(mr->r->pool, alias.len + 1);
        if (alias.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ngx_sprintf(alias.data, "#%s:%V%Z", v->u.s.p, &mr->mcf->server_name);

        if (v->u.s.len == 0
            || !mx_room_alias_valid((char *) alias.data, alias.len))
        {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "room_alias_name"
                                         " makes no valid room alias.");
        }
    }

    v = mx_json_get(body, "visibility");
    publish = v && ngx_strcmp(v->u.s.p, "public") == 0;

    cr = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_create_t));
    if (cr == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cr->preset = preset;
    cr->is_direct = is_direct;
    cr->invite = invite;
    cr->initial = initial;
    cr->override = override;
    cr->creation = creation;
    cr->alias = alias;
    cr->publish = publish;
    s->data = cr;

    /* the creator's join carries the profile: read it first */

    return ngx_matrix_profile_own(mr, ngx_matrix_create_profile);
}


static ngx_int_t
ngx_matrix_create_profile(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_send_t    *s;
    ngx_matrix_create_t  *cr;

    s = mr->data;
    cr = s->data;

    cr->join = ngx_matrix_create_obj1(ngx_matrix_pool(mr), "membership",
                                      "join");

    if (cr->join == NULL
        || ngx_matrix_profile_member(mr, reply, cr->join) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_create_chain(mr);
}


static ngx_int_t
ngx_matrix_create_chain(ngx_matrix_req_t *mr)
{
    ngx_int_t             rc;
    ngx_uint_t            preset, is_direct;
    ngx_matrix_send_t    *s;
    ngx_matrix_create_t  *cr;
    mx_pool_t            *pool;
    mx_json_t            *body, *invite, *initial, *override, *creation;
    mx_json_t            *content, *e;
    const char           *str, *type, *key;
    char                 *room_id;
    unsigned char         rnd[12];
    size_t                i, len;

    s = mr->data;
    cr = s->data;
    body = mr->body;
    pool = ngx_matrix_pool(mr);

    preset = cr->preset;
    is_direct = cr->is_direct;
    invite = cr->invite;
    initial = cr->initial;
    override = cr->override;
    creation = cr->creation;

    /* the room */

    s->sender = ngx_matrix_cstr(mr, &mr->user_id);
    s->state = mx_state_create(pool, 16);
    s->chain = 1;
    s->done = ngx_matrix_create_invite_next;

    if (s->sender == NULL || s->state == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (s->rv->room_id_from_create) {
        s->room_id = "";

    } else {
        len = 1 + 16 + 1 + mr->mcf->server_name.len + 1;
        room_id = mx_palloc(pool, len);
        if (room_id == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        randombytes_buf(rnd, sizeof(rnd));
        room_id[0] = '!';
        mx_base64_encode(rnd, sizeof(rnd), room_id + 1, MX_BASE64_URLSAFE);
        ngx_sprintf((u_char *) room_id + 17, ":%V%Z",
                    &mr->mcf->server_name);

        s->room_id = room_id;
    }

    content = creation ? mx_json_object_copy(pool, creation)
                       : mx_json_object(pool);
    if (content == NULL
        || mx_json_set_str(pool, content, "room_version", s->rv->id) != 0
        || (!s->rv->creator_is_sender
            && mx_json_set_str(pool, content, "creator", s->sender) != 0))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (s->rv->creator_is_sender) {
        mx_json_remove(content, "creator");
    }

    rc = ngx_matrix_create_add(mr, "m.room.create", "", content);
    if (rc != NGX_OK) {
        return rc;
    }

    /* v12: the room ID is the create event's */
    if (s->room_id[0] == '\0') {
        s->room_id = mx_event_room_id(pool, s->pdus[0], s->rv);
        if (s->room_id == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    rc = ngx_matrix_create_add(mr, "m.room.member", s->sender, cr->join);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_matrix_create_add(mr, "m.room.power_levels", "",
                               ngx_matrix_create_power_levels(mr, preset,
                                                              invite,
                                                              override));
    if (rc != NGX_OK) {
        return rc;
    }

    if (!ngx_matrix_create_initial_has(initial, "m.room.join_rules")) {
        rc = ngx_matrix_create_add(mr, "m.room.join_rules", "",
                 ngx_matrix_create_obj1(pool, "join_rule",
                     preset == NGX_MATRIX_PRESET_PUBLIC ? "public"
                                                        : "invite"));
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (!ngx_matrix_create_initial_has(initial, "m.room.history_visibility"))
    {
        rc = ngx_matrix_create_add(mr, "m.room.history_visibility", "",
                 ngx_matrix_create_obj1(pool, "history_visibility",
                                        "shared"));
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (preset != NGX_MATRIX_PRESET_PUBLIC
        && !ngx_matrix_create_initial_has(initial, "m.room.guest_access"))
    {
        rc = ngx_matrix_create_add(mr, "m.room.guest_access", "",
                 ngx_matrix_create_obj1(pool, "guest_access", "can_join"));
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (cr->alias.len) {
        rc = ngx_matrix_create_add(mr, "m.room.canonical_alias", "",
                 ngx_matrix_create_obj1(pool, "alias",
                                        (char *) cr->alias.data));
        if (rc != NGX_OK) {
            return rc;
        }
    }

    for (i = 0; initial != NULL && i < initial->u.a.n; i++) {
        e = initial->u.a.v[i];
        type = mx_json_get_str(e, "type", NULL);
        key = mx_json_get_str(e, "state_key", NULL);

        rc = ngx_matrix_create_add(mr, type, key ? key : "",
                                   mx_json_get(e, "content"));
        if (rc != NGX_OK) {
            return rc;
        }
    }

    for (i = 0; i < 2; i++) {
        key = i ? "topic" : "name";
        str = mx_json_get_str(body, key, NULL);

        if (str != NULL) {
            rc = ngx_matrix_create_add(mr, i ? "m.room.topic" : "m.room.name",
                                       "", ngx_matrix_create_obj1(pool, key,
                                                                  str));
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    /* another server's user is invited once the room is in */
    for (i = 0; invite != NULL && i < invite->u.a.n; i++) {
        if (ngx_matrix_create_remote(mr, invite->u.a.v[i])) {
            continue;
        }

        rc = ngx_matrix_create_add(mr, "m.room.member",
                                   invite->u.a.v[i]->u.s.p,
                                   ngx_matrix_create_invite_content(pool,
                                                                  is_direct));
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return ngx_matrix_create_reserve(mr, NULL);
}


/*
 * Before the events go: the alias (taken: 400 M_ROOM_IN_USE), then the
 * directory listing; each step is skipped when not asked for.
 */

static ngx_int_t
ngx_matrix_create_reserve(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_send_t    *s;
    ngx_matrix_create_t  *cr;
    ngx_matrix_cmd_t      c;
    ngx_str_t             key;

    (void) reply;

    s = mr->data;
    cr = s->data;

    if (cr->alias.len) {
        if (ngx_matrix_alias_key(mr, &cr->alias, &key) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_matrix_fcall_init(&c, "mx_alias_put", 1);
        ngx_matrix_cmd_str(&c, &key);
        ngx_matrix_cmd_str(&c, &cr->alias);
        ngx_matrix_cmd_cstr(&c, s->room_id);
        ngx_matrix_cmd_str(&c, &mr->user_id);
        ngx_matrix_cmd_cstr(&c, "0");

        cr->alias.len = 0;

        return ngx_matrix_cmd_send(mr, &c, ngx_matrix_create_reserve);
    }

    if (cr->publish) {
        ngx_matrix_fcall_init(&c, "mx_directory_visibility", 1);
        ngx_matrix_cmd_cstr(&c, "mx:directory");
        ngx_matrix_cmd_cstr(&c, s->room_id);
        ngx_matrix_cmd_str(&c, &mr->user_id);
        ngx_matrix_cmd_cstr(&c, "public");
        ngx_matrix_cmd_cstr(&c, "0");

        cr->publish = 0;

        return ngx_matrix_cmd_send(mr, &c, ngx_matrix_create_reserve);
    }

    return ngx_matrix_send_submit(mr);
}


/*
 * The room is in (the chain's verdict, event_id its last event's), or the
 * last remote invite is done (event_id NULL: it failed, and says why in
 * the log): the next invitee of another server, while there is time; then
 * the answer, {"room_id"}.
 */

static ngx_int_t
ngx_matrix_create_invite_next(ngx_matrix_req_t *mr, const char *event_id,
    size_t len)
{
    ngx_matrix_send_t    *s;
    ngx_matrix_create_t  *cr;
    mx_json_t            *user, *content;
    ngx_msec_int_t        left;

    s = mr->data;
    cr = s->data;

    if (cr->next == 0) {
        cr->deadline = ngx_current_msec + NGX_MATRIX_CREATE_INVITE_TIME;

    } else if (event_id == NULL) {
        ngx_log_error(NGX_LOG_WARN, mr->r->connection->log, 0,
                      "matrix: createRoom %s: the invite of %s failed",
                      s->room_id, s->state_key);
    }

    while (cr->invite != NULL && cr->next < cr->invite->u.a.n) {
        user = cr->invite->u.a.v[cr->next++];

        if (!ngx_matrix_create_remote(mr, user)) {
            continue;
        }

        left = (ngx_msec_int_t) (cr->deadline - ngx_current_msec);

        if (left < NGX_MATRIX_CREATE_INVITE_MIN) {
            ngx_log_error(NGX_LOG_WARN, mr->r->connection->log, 0,
                          "matrix: createRoom %s: no time left to invite %s",
                          s->room_id, user->u.s.p);
            continue;
        }

        content = ngx_matrix_create_invite_content(ngx_matrix_pool(mr),
                                                   cr->is_direct);
        if (content == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_matrix_fed_invite_remote(mr, user->u.s.p, content,
                                            (ngx_msec_t) left,
                                            ngx_matrix_create_invite_next);
    }

    return ngx_matrix_membership_joined(mr, event_id, len);
}

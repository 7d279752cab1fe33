/*
 * Room aliases and the published room directory (lua/directory.lua).
 *
 *   GET/PUT/DELETE /directory/room/{roomAlias}
 *   GET /rooms/{roomId}/aliases
 *   GET/PUT /directory/list/room/{roomId}
 *   GET/POST /publicRooms
 *
 * GET of an alias of another server asks that server (a request job for
 * the fedsender, ngx_matrix_alias_remote); so does a join by such an alias
 * (ngx_matrix_membership.c).  Only this server's aliases are made and
 * deleted here.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_ids.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_room.h"


#define NGX_MATRIX_PUBLIC_ROOMS_MAX  500
#define NGX_MATRIX_ALIAS_TIMEOUT     20000
#define NGX_MATRIX_ALIAS_QUERY                                               \
    "/_matrix/federation/v1/query/directory?room_alias="


typedef struct {
    ngx_str_t              alias;
    ngx_str_t              server;       /* the alias's */
    ngx_str_t              req;          /* the request job's waiter */
    ngx_matrix_alias_pt    done;
} ngx_matrix_alias_query_t;


/* "mx:alias:<alias>" */

ngx_int_t
ngx_matrix_alias_key(ngx_matrix_req_t *mr, ngx_str_t *alias, ngx_str_t *key)
{
    key->len = sizeof("mx:alias:") - 1 + alias->len;
    key->data = ngx_pnalloc(mr->r->pool, key->len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(key->data, "mx:alias:%V", alias);

    return NGX_OK;
}


/*
 * A valid alias (else the error is answered): NGX_OK for one of this
 * server, NGX_DECLINED for one of another server, which local_only
 * refuses instead.
 */

ngx_int_t
ngx_matrix_alias_check(ngx_matrix_req_t *mr, ngx_str_t *alias,
    ngx_uint_t local_only)
{
    const char  *server;
    size_t       slen;

    if (!mx_room_alias_valid((char *) alias->data, alias->len)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "%V is not a valid"
                                     " room alias.", alias);
    }

    server = mx_id_server((char *) alias->data, alias->len, &slen);

    if (slen == mr->mcf->server_name.len
        && ngx_strncmp(server, mr->mcf->server_name.data, slen) == 0)
    {
        return NGX_OK;
    }

    if (local_only) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "Room aliases of"
                                     " other servers cannot be made here.");
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_matrix_directory_empty(ngx_matrix_req_t *mr, redisReply *reply)
{
    (void) reply;

    return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
}


/* {room_id, servers}: the answer of an alias, this server's or another's */

static ngx_int_t
ngx_matrix_alias_answer(ngx_matrix_req_t *mr, ngx_str_t *room_id,
    ngx_array_t *servers)
{
    mx_pool_t   *pool;
    mx_json_t   *body, *list;
    ngx_str_t   *server;
    ngx_uint_t   i;

    pool = ngx_matrix_pool(mr);
    body = pool ? mx_json_object(pool) : NULL;
    list = pool ? mx_json_array(pool) : NULL;

    if (body == NULL || list == NULL
        || mx_json_set(pool, body, "room_id",
                       mx_json_strn(pool, (char *) room_id->data,
                                    room_id->len)) != 0
        || mx_json_set(pool, body, "servers", list) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    server = servers->elts;

    for (i = 0; i < servers->nelts; i++) {
        if (mx_json_append(pool, list,
                           mx_json_strn(pool, (char *) server[i].data,
                                        server[i].len)) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


/*
 * mx_alias_resolve's reply, {room_id, server...} or nil, as the answer of
 * GET /directory/room/{roomAlias} and of the federation's /query/directory
 */

ngx_int_t
ngx_matrix_alias_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_str_t     room_id, *server;
    ngx_array_t  *servers;
    size_t        i;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     "Room alias not found.");
    }

    servers = ngx_array_create(mr->r->pool, reply->elements,
                               sizeof(ngx_str_t));
    if (servers == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    room_id.data = (u_char *) reply->element[0]->str;
    room_id.len = reply->element[0]->len;

    for (i = 1; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_STRING) {
            continue;
        }

        server = ngx_array_push(servers);
        if (server == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        server->data = (u_char *) reply->element[i]->str;
        server->len = reply->element[i]->len;
    }

    return ngx_matrix_alias_answer(mr, &room_id, servers);
}


/*
 * An alias of another server, asked of that server with a request job
 *
 *   GET /_matrix/federation/v1/query/directory?room_alias=<alias>
 *
 * whose room_id, and those of its servers that are server names, go to
 * done() (the array is done()'s to add to).  Else the error is answered,
 * as Synapse does: the remote's 404 is 404 M_NOT_FOUND; no answer in
 * NGX_MATRIX_ALIAS_TIMEOUT is 504, a request that failed (DNS, TLS,
 * connect) and any other answer 502, both M_UNKNOWN.  Nothing is cached.
 */

static ngx_int_t ngx_matrix_alias_queried(ngx_matrix_req_t *mr,
    ngx_str_t *answer);


ngx_int_t
ngx_matrix_alias_remote(ngx_matrix_req_t *mr, ngx_str_t *alias,
    ngx_matrix_alias_pt done)
{
    ngx_matrix_alias_query_t  *q;
    ngx_str_t                  path, body = ngx_string("");
    const char                *server;
    size_t                     slen;
    u_char                    *p;

    q = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_alias_query_t));
    path.data = ngx_pnalloc(mr->r->pool, sizeof(NGX_MATRIX_ALIAS_QUERY) - 1
                                         + 3 * alias->len);
    if (q == NULL || path.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    server = mx_id_server((char *) alias->data, alias->len, &slen);

    q->alias = *alias;
    q->server.data = (u_char *) server;
    q->server.len = slen;
    q->done = done;

    p = ngx_cpymem(path.data, NGX_MATRIX_ALIAS_QUERY,
                   sizeof(NGX_MATRIX_ALIAS_QUERY) - 1);
    p = (u_char *) ngx_escape_uri(p, alias->data, alias->len,
                                  NGX_ESCAPE_URI_COMPONENT);
    path.len = p - path.data;

    mr->data = q;

    return ngx_matrix_job_request(mr, &q->server, "GET", &path, &body,
                                  NGX_MATRIX_ALIAS_TIMEOUT,
                                  ngx_matrix_alias_queried, &q->req);
}


static ngx_int_t
ngx_matrix_alias_queried(ngx_matrix_req_t *mr, ngx_str_t *answer)
{
    ngx_matrix_alias_query_t  *q;
    ngx_array_t               *servers;
    ngx_str_t                  room_id, *server;
    ngx_int_t                  rc;
    mx_json_t                 *body, *list, *v;
    const char                *error;
    int64_t                    status;
    size_t                     i, len;

    q = mr->data;

    rc = ngx_matrix_job_response(mr, answer, &status, &body, &error);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        if (error == NULL) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_GATEWAY_TIME_OUT,
                                         "M_UNKNOWN", "%V did not answer"
                                         " the query of %V in time.",
                                         &q->server, &q->alias);
        }

        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_GATEWAY,
                                     "M_UNKNOWN", "Failed to query %V for"
                                     " %V: %s", &q->server, &q->alias,
                                     error);
    }

    if (status == NGX_HTTP_NOT_FOUND) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                     "Room alias %V not found.", &q->alias);
    }

    room_id.data = (u_char *) mx_json_get_str(body, "room_id", &len);
    room_id.len = len;

    if (status != NGX_HTTP_OK || room_id.data == NULL
        || !mx_room_id_valid((char *) room_id.data, room_id.len))
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_GATEWAY,
                                     "M_UNKNOWN", "%V answered the query of"
                                     " %V with status %L and no room ID.",
                                     &q->server, &q->alias, status);
    }

    list = mx_json_get_arr(body, "servers");
    servers = ngx_array_create(mr->r->pool, list ? list->u.a.n + 1 : 1,
                               sizeof(ngx_str_t));
    if (servers == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; list && i < list->u.a.n; i++) {
        v = list->u.a.v[i];

        if (v->type != MX_JSON_STRING
            || !mx_server_name_valid(v->u.s.p, v->u.s.len))
        {
            continue;
        }

        server = ngx_array_push(servers);
        if (server == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        server->data = (u_char *) v->u.s.p;
        server->len = v->u.s.len;
    }

    return q->done(mr, &room_id, servers);
}


/* GET, PUT and DELETE /directory/room/{roomAlias} */

ngx_int_t
ngx_matrix_alias(ngx_matrix_req_t *mr)
{
    ngx_str_t          *alias, key, room;
    ngx_int_t           rc;
    ngx_matrix_cmd_t    c;
    const char         *room_id;
    size_t              len;

    alias = &mr->params[0];

    rc = ngx_matrix_alias_check(mr, alias, mr->r->method != NGX_HTTP_GET);

    if (rc == NGX_DECLINED) {
        return ngx_matrix_alias_remote(mr, alias, ngx_matrix_alias_answer);
    }

    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_matrix_alias_key(mr, alias, &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (mr->r->method) {

    case NGX_HTTP_PUT:
        if (mr->user_id.len == 0) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_UNAUTHORIZED,
                                         "M_MISSING_TOKEN",
                                         "Missing access token.");
        }

        room_id = mx_json_get_str(mr->body, "room_id", &len);
        if (room_id == NULL || !mx_room_id_valid(room_id, len)) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "room_id must be a"
                                         " room ID.");
        }

        room.data = (u_char *) room_id;
        room.len = len;

        ngx_matrix_fcall_init(&c, "mx_alias_put", 1);
        ngx_matrix_cmd_str(&c, &key);
        ngx_matrix_cmd_str(&c, alias);
        ngx_matrix_cmd_str(&c, &room);
        ngx_matrix_cmd_str(&c, &mr->user_id);
        ngx_matrix_cmd_cstr(&c, "1");

        return ngx_matrix_cmd_send(mr, &c, ngx_matrix_directory_empty);

    case NGX_HTTP_DELETE:
        if (mr->user_id.len == 0) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_UNAUTHORIZED,
                                         "M_MISSING_TOKEN",
                                         "Missing access token.");
        }

        ngx_matrix_fcall_init(&c, "mx_alias_delete", 1);
        ngx_matrix_cmd_str(&c, &key);
        ngx_matrix_cmd_str(&c, alias);
        ngx_matrix_cmd_str(&c, &mr->user_id);

        return ngx_matrix_cmd_send(mr, &c, ngx_matrix_directory_empty);

    default:
        ngx_matrix_fcall_init(&c, "mx_alias_resolve", 1);
        ngx_matrix_cmd_str(&c, &key);
        ngx_matrix_cmd_str(&c, &mr->mcf->server_name);

        return ngx_matrix_cmd_send(mr, &c, ngx_matrix_alias_got);
    }
}


/* GET /rooms/{roomId}/aliases */

static ngx_int_t
ngx_matrix_room_aliases_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t  *pool;
    mx_json_t  *body, *list;
    size_t      i;

    pool = ngx_matrix_pool(mr);
    body = mx_json_object(pool);
    list = mx_json_array(pool);

    if (body == NULL || list == NULL
        || mx_json_set(pool, body, "aliases", list) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
    {
        if (mx_json_append(pool, list,
                           mx_json_strn(pool, reply->element[i]->str,
                                        reply->element[i]->len)) != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


ngx_int_t
ngx_matrix_room_aliases(ngx_matrix_req_t *mr)
{
    ngx_str_t          *room, key;
    ngx_matrix_cmd_t    c;

    room = &mr->params[0];

    if (!ngx_matrix_room_id_valid(room)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%V is not a valid room ID.", room);
    }

    key.len = sizeof("mx:{}:aliases") - 1 + room->len;
    key.data = ngx_pnalloc(mr->r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
    ngx_sprintf(key.data, "mx:{%V}:aliases", room);

    ngx_matrix_fcall_init(&c, "mx_room_aliases", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, room);
    ngx_matrix_cmd_str(&c, &mr->user_id);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_room_aliases_got);
}


/* GET and PUT /directory/list/room/{roomId} */

static ngx_int_t
ngx_matrix_visibility_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t  *pool;
    mx_json_t  *body;

    if (mr->r->method == NGX_HTTP_PUT) {
        return ngx_matrix_directory_empty(mr, reply);
    }

    pool = ngx_matrix_pool(mr);
    body = mx_json_object(pool);

    if (body == NULL || reply->type != REDIS_REPLY_STRING
        || mx_json_set(pool, body, "visibility",
                       mx_json_strn(pool, reply->str, reply->len)) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


ngx_int_t
ngx_matrix_directory_list(ngx_matrix_req_t *mr)
{
    ngx_str_t          *room, vis = ngx_null_string;
    ngx_matrix_cmd_t    c;
    const char         *v;
    size_t              len;

    room = &mr->params[0];

    if (!ngx_matrix_room_id_valid(room)) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "%V is not a valid room ID.", room);
    }

    if (mr->r->method == NGX_HTTP_PUT) {
        if (mr->user_id.len == 0) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_UNAUTHORIZED,
                                         "M_MISSING_TOKEN",
                                         "Missing access token.");
        }

        v = mx_json_get_str(mr->body, "visibility", &len);
        if (v == NULL
            || (ngx_strcmp(v, "public") != 0 && ngx_strcmp(v, "private") != 0))
        {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "visibility must be"
                                         " public or private.");
        }

        vis.data = (u_char *) v;
        vis.len = len;
    }

    ngx_matrix_fcall_init(&c, "mx_directory_visibility", 1);
    ngx_matrix_cmd_cstr(&c, "mx:directory");
    ngx_matrix_cmd_str(&c, room);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_str(&c, &vis);
    ngx_matrix_cmd_cstr(&c, "1");

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_visibility_got);
}


/* GET and POST /publicRooms: {total, next offset or -1, room JSON, ...} */

static ngx_int_t
ngx_matrix_public_rooms_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    mx_pool_t        *pool;
    mx_json_t        *body, *chunk, *room;
    mx_json_error_t   err;
    size_t            i;
    u_char            tok[NGX_INT64_LEN + 2];
    int64_t           offset;

    pool = ngx_matrix_pool(mr);
    body = mx_json_object(pool);
    chunk = mx_json_array(pool);

    if (body == NULL || chunk == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements < 2
        || mx_json_set(pool, body, "chunk", chunk) != 0
        || mx_json_set_int(pool, body, "total_room_count_estimate",
                           reply->element[0]->integer) != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 2; i < reply->elements; i++) {
        room = mx_json_parse(pool, reply->element[i]->str,
                             reply->element[i]->len, &err);
        if (room != NULL && mx_json_append(pool, chunk, room) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (reply->element[1]->integer >= 0) {
        ngx_sprintf(tok, "o%L%Z", (int64_t) reply->element[1]->integer);
        if (mx_json_set_str(pool, body, "next_batch", (char *) tok) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    offset = (intptr_t) mr->data;
    if (offset > 0) {
        ngx_sprintf(tok, "o%L%Z", (int64_t) 0);
        if (mx_json_set_str(pool, body, "prev_batch", (char *) tok) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}


ngx_int_t
ngx_matrix_public_rooms(ngx_matrix_req_t *mr)
{
    ngx_str_t          since, limit, term = ngx_null_string;
    ngx_int_t          offset, n;
    ngx_matrix_cmd_t   c;
    mx_json_t         *v, *filter;
    const char        *s;
    size_t             len;
    int64_t            i64;

    offset = 0;
    n = 0;
    ngx_str_null(&since);
    ngx_str_null(&limit);

    if (mr->r->method == NGX_HTTP_POST) {
        s = mx_json_get_str(mr->body, "since", &len);
        if (s != NULL) {
            since.data = (u_char *) s;
            since.len = len;
        }

        v = mx_json_get(mr->body, "limit");
        if (v != NULL) {
            if (mx_json_get_int(mr->body, "limit", &i64) != 0 || i64 < 0) {
                return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                             "M_BAD_JSON", "limit must be a"
                                             " non-negative integer.");
            }
            n = (ngx_int_t) ngx_min(i64, NGX_MATRIX_PUBLIC_ROOMS_MAX);
        }

        filter = mx_json_get(mr->body, "filter");
        if (filter != NULL && filter->type != MX_JSON_OBJECT) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "filter must be an"
                                         " object.");
        }

        s = mx_json_get_str(filter, "generic_search_term", &len);
        if (s != NULL) {
            term.data = (u_char *) s;
            term.len = len;
        }

    } else {
        (void) ngx_matrix_arg(mr->r, "since", &since);

        if (ngx_matrix_arg(mr->r, "limit", &limit) == NGX_OK && limit.len) {
            n = ngx_atoi(limit.data, limit.len);
            if (n == NGX_ERROR) {
                return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                             "M_INVALID_PARAM", "limit must"
                                             " be a number.");
            }
            n = ngx_min(n, NGX_MATRIX_PUBLIC_ROOMS_MAX);
        }
    }

    if (since.len) {
        offset = since.len > 1 && since.data[0] == 'o'
                 ? ngx_atoi(since.data + 1, since.len - 1) : NGX_ERROR;
        if (offset == NGX_ERROR) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "since is not a"
                                         " valid token.");
        }
    }

    mr->data = (void *) (intptr_t) offset;

    ngx_matrix_fcall_init(&c, "mx_public_rooms", 1);
    ngx_matrix_cmd_cstr(&c, "mx:directory");

    if (ngx_matrix_cmd_int(mr, &c, offset) != NGX_OK
        || ngx_matrix_cmd_int(mr, &c, n) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_cmd_str(&c, &term);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_public_rooms_got);
}

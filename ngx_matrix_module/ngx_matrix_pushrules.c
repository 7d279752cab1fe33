/*
 * Push rules: GET /pushrules/ and /pushrules/global/, GET, PUT and DELETE
 * /pushrules/global/{kind}/{ruleId}, GET and PUT .../enabled and
 * .../actions.
 *
 * The server-default rules and the merge are core's (core/mx_pushrules.c);
 * Redis keeps only what the user wrote (lua/pushrules.lua):
 *
 *   mx:{<user_id>}:pushrules          rule:<kind>/<id>     the user's rules
 *                                     enabled:<kind>/<id>  changes to any
 *                                     actions:<kind>/<id>  rule
 *   mx:{<user_id>}:pushrules:<kind>   the order of the user's rules
 *
 * Every read fetches the whole of it with mx_pushrules_get and merges; a
 * user has few rules, and one code path answers all the GETs.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_pushrules.h>

#include "ngx_matrix_module.h"


#define NGX_MATRIX_PUSH_ALL      0     /* GET /pushrules/ */
#define NGX_MATRIX_PUSH_GLOBAL   1     /* GET /pushrules/global/ */
#define NGX_MATRIX_PUSH_KIND     2     /* GET /pushrules/global/{kind}/ */
#define NGX_MATRIX_PUSH_RULE     3     /* GET .../{ruleId} */
#define NGX_MATRIX_PUSH_ENABLED  4     /* GET .../{ruleId}/enabled */
#define NGX_MATRIX_PUSH_ACTIONS  5     /* GET .../{ruleId}/actions */


typedef struct {
    ngx_uint_t       what;             /* NGX_MATRIX_PUSH_* */
    mx_push_kind_t   kind;
    ngx_str_t        rule_id;
} ngx_matrix_pushrules_t;


static ngx_int_t ngx_matrix_pushrules_read(ngx_matrix_req_t *mr,
    ngx_uint_t what, mx_push_kind_t kind, ngx_str_t *rule_id);
static ngx_int_t ngx_matrix_pushrules_got(ngx_matrix_req_t *mr,
    redisReply *reply);
static ngx_int_t ngx_matrix_pushrule_done(ngx_matrix_req_t *mr,
    redisReply *reply);


/* "global", the only scope there is, then a kind: NGX_OK or answered */

static ngx_int_t
ngx_matrix_pushrule_path(ngx_matrix_req_t *mr, mx_push_kind_t *kind)
{
    ngx_str_t  *scope, *k;
    int         n;

    scope = &mr->params[0];

    if (scope->len != sizeof("global") - 1
        || ngx_strncmp(scope->data, "global", scope->len) != 0)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "Unknown push rule scope: only"
                                     " \"global\" exists");
    }

    if (kind == NULL) {
        return NGX_OK;
    }

    k = &mr->params[1];
    n = mx_push_kind((char *) k->data, k->len);

    if (n < 0) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "Unknown push rule kind: it is"
                                     " override, content, room, sender"
                                     " or underride");
    }

    *kind = (mx_push_kind_t) n;
    return NGX_OK;
}


static ngx_int_t
ngx_matrix_pushrule_not_found(ngx_matrix_req_t *mr)
{
    return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND, "M_NOT_FOUND",
                                 "The push rule was not found.");
}


static ngx_int_t
ngx_matrix_pushrule_bad(ngx_matrix_req_t *mr, mx_push_err_t *err)
{
    if (err->errcode == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST, err->errcode,
                                 "%s", err->msg);
}


/* GET /pushrules/ and /pushrules/{scope}/ */

ngx_int_t
ngx_matrix_pushrules_get(ngx_matrix_req_t *mr)
{
    ngx_int_t  rc;

    if (mr->nparams == 0) {
        return ngx_matrix_pushrules_read(mr, NGX_MATRIX_PUSH_ALL, 0, NULL);
    }

    rc = ngx_matrix_pushrule_path(mr, NULL);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_matrix_pushrules_read(mr, NGX_MATRIX_PUSH_GLOBAL, 0, NULL);
}


/*
 * GET, PUT and DELETE /pushrules/{scope}/{kind}/{ruleId}.  PUT and DELETE
 * are for the user's own rules: server-default rules (IDs starting with
 * '.') can only be disabled or given other actions.
 */

ngx_int_t
ngx_matrix_pushrule(ngx_matrix_req_t *mr)
{
    ngx_int_t          rc;
    ngx_str_t         *id, key, before, after;
    mx_push_kind_t     kind;
    mx_push_err_t      err;
    mx_json_t         *rule;
    mx_pool_t         *pool;
    char              *json;
    size_t             len;
    ngx_matrix_cmd_t   c;

    rc = ngx_matrix_pushrule_path(mr, &kind);
    if (rc != NGX_OK) {
        return rc;
    }

    id = &mr->params[2];

    if (mr->r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_matrix_pushrules_read(mr, id->len ? NGX_MATRIX_PUSH_RULE
                                                     : NGX_MATRIX_PUSH_KIND,
                                         kind, id);
    }

    if (ngx_matrix_user_key(mr, &mr->user_id, "pushrules", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mr->r->method == NGX_HTTP_DELETE) {
        if (id->len && id->data[0] == '.') {
            if (mx_push_is_default(kind, (char *) id->data, id->len)) {
                return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                             "M_INVALID_PARAM",
                                             "Server-default rules cannot"
                                             " be deleted; disable them"
                                             " instead");
            }

            return ngx_matrix_pushrule_not_found(mr);
        }

        ngx_matrix_fcall_init(&c, "mx_pushrule_delete", 1);
        ngx_matrix_cmd_str(&c, &key);
        ngx_matrix_cmd_cstr(&c, mx_push_kind_name(kind));
        ngx_matrix_cmd_str(&c, id);

        return ngx_matrix_cmd_send(mr, &c, ngx_matrix_pushrule_done);
    }

    /* PUT */

    if (mx_push_rule_id_check(kind, (char *) id->data, id->len, &err) != 0) {
        return ngx_matrix_pushrule_bad(mr, &err);
    }

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (mx_push_rule_make(pool, kind, (char *) id->data, id->len, mr->body,
                          &rule, &err)
        != 0)
    {
        return ngx_matrix_pushrule_bad(mr, &err);
    }

    ngx_str_null(&before);
    ngx_str_null(&after);

    if (ngx_matrix_arg(mr->r, "before", &before) == NGX_ERROR
        || ngx_matrix_arg(mr->r, "after", &after) == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if ((before.len && before.data[0] == '.')
        || (before.len == 0 && after.len && after.data[0] == '.'))
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "A rule cannot be placed relative to a"
                                     " server-default rule");
    }

    json = mx_json_encode(pool, rule, 0, &len);
    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_pushrule_put", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_cstr(&c, mx_push_kind_name(kind));
    ngx_matrix_cmd_str(&c, id);
    ngx_matrix_cmd_add(&c, json, len);
    ngx_matrix_cmd_str(&c, &before);
    ngx_matrix_cmd_str(&c, &after);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_pushrule_done);
}


/* GET and PUT /pushrules/{scope}/{kind}/{ruleId}/(enabled|actions) */

ngx_int_t
ngx_matrix_pushrule_attr(ngx_matrix_req_t *mr)
{
    ngx_int_t          rc;
    ngx_uint_t         enabled, is_default;
    ngx_str_t         *id, *attr, key;
    mx_push_kind_t     kind;
    mx_push_err_t      err;
    mx_json_t         *v, *actions;
    mx_pool_t         *pool;
    char              *json;
    size_t             len;
    ngx_matrix_cmd_t   c;

    rc = ngx_matrix_pushrule_path(mr, &kind);
    if (rc != NGX_OK) {
        return rc;
    }

    id = &mr->params[2];
    attr = &mr->params[3];

    if (attr->len == sizeof("enabled") - 1
        && ngx_strncmp(attr->data, "enabled", attr->len) == 0)
    {
        enabled = 1;

    } else if (attr->len == sizeof("actions") - 1
               && ngx_strncmp(attr->data, "actions", attr->len) == 0)
    {
        enabled = 0;

    } else {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_NOT_FOUND,
                                     "M_UNRECOGNIZED",
                                     "Unknown push rule attribute: it is"
                                     " enabled or actions");
    }

    if (mr->r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_matrix_pushrules_read(mr, enabled ? NGX_MATRIX_PUSH_ENABLED
                                                     : NGX_MATRIX_PUSH_ACTIONS,
                                         kind, id);
    }

    /* PUT */

    is_default = mx_push_is_default(kind, (char *) id->data, id->len);

    if (!is_default && (id->len == 0 || id->data[0] == '.')) {
        return ngx_matrix_pushrule_not_found(mr);
    }

    if (enabled) {
        v = mx_json_get(mr->body, "enabled");

        if (!mx_json_is_bool(v)) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         v ? "M_BAD_JSON" : "M_MISSING_PARAM",
                                         "enabled must be a boolean");
        }

        json = v->type == MX_JSON_TRUE ? "true" : "false";
        len = ngx_strlen(json);

    } else {
        pool = ngx_matrix_pool(mr);
        if (pool == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (mx_push_actions_check(pool, mx_json_get(mr->body, "actions"),
                                  &actions, &err)
            != 0)
        {
            return ngx_matrix_pushrule_bad(mr, &err);
        }

        json = mx_json_encode(pool, actions, 0, &len);
        if (json == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_matrix_user_key(mr, &mr->user_id, "pushrules", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_pushrule_set", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_cstr(&c, mx_push_kind_name(kind));
    ngx_matrix_cmd_str(&c, id);
    ngx_matrix_cmd_cstr(&c, enabled ? "enabled" : "actions");
    ngx_matrix_cmd_add(&c, json, len);
    ngx_matrix_cmd_cstr(&c, is_default ? "1" : "0");

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_pushrule_done);
}


static ngx_int_t
ngx_matrix_pushrule_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    return ngx_matrix_send_empty(mr->r, NGX_HTTP_OK);
}


/* fetch everything stored; ngx_matrix_pushrules_got() answers "what" */

static ngx_int_t
ngx_matrix_pushrules_read(ngx_matrix_req_t *mr, ngx_uint_t what,
    mx_push_kind_t kind, ngx_str_t *rule_id)
{
    ngx_str_t                key;
    ngx_matrix_cmd_t         c;
    ngx_matrix_pushrules_t  *pr;

    pr = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_pushrules_t));
    if (pr == NULL
        || ngx_matrix_user_key(mr, &mr->user_id, "pushrules", &key) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    pr->what = what;
    pr->kind = kind;

    if (rule_id) {
        pr->rule_id = *rule_id;
    }

    mr->data = pr;

    ngx_matrix_fcall_init(&c, "mx_pushrules_get", 1);
    ngx_matrix_cmd_str(&c, &key);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_pushrules_got);
}


/*
 * The reply of mx_pushrules_get as core's mx_push_user_t: the user's rules
 * per kind, and the changes "enabled:<kind>/<id>" and "actions:<kind>/<id>"
 * (core checks each value; the syncer reads the reply the same way).  A
 * stored value that does not parse is skipped (and logged): the rest still
 * answers.
 */

static ngx_int_t
ngx_matrix_pushrules_user(ngx_matrix_req_t *mr, mx_pool_t *pool,
    redisReply *reply, mx_push_user_t *user)
{
    int          rc;
    size_t       i, j;
    redisReply  *list, *f, *val;

    ngx_memzero(user, sizeof(mx_push_user_t));

    if (reply->type != REDIS_REPLY_ARRAY
        || reply->elements != MX_PUSH_KINDS + 1)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < MX_PUSH_KINDS; i++) {
        list = reply->element[i];

        for (j = 0; list->type == REDIS_REPLY_ARRAY && j < list->elements;
             j++)
        {
            f = list->element[j];
            rc = 1;

            if (f->type == REDIS_REPLY_STRING) {
                rc = mx_push_user_rule(pool, user, i, f->str, f->len);
            }

            if (rc < 0) {
                return NGX_ERROR;
            }

            if (rc > 0) {
                ngx_log_error(NGX_LOG_ERR, mr->r->connection->log, 0,
                              "matrix: a stored push rule of %V is not a"
                              " JSON object", &mr->user_id);
            }
        }
    }

    list = reply->element[MX_PUSH_KINDS];

    for (i = 0; list->type == REDIS_REPLY_ARRAY && i + 1 < list->elements;
         i += 2)
    {
        f = list->element[i];
        val = list->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        rc = mx_push_user_change(pool, user, f->str, f->len, val->str,
                                 val->len);

        if (rc < 0) {
            return NGX_ERROR;
        }

        if (rc > 0) {
            ngx_log_error(NGX_LOG_ERR, mr->r->connection->log, 0,
                          "matrix: a stored push rule change of %V is"
                          " invalid", &mr->user_id);
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_pushrules_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_pushrules_t  *pr = mr->data;
    mx_pool_t               *pool;
    mx_push_user_t           user;
    mx_json_t               *set, *body, *rule;

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_matrix_pushrules_user(mr, pool, reply, &user) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    set = mx_push_ruleset(pool, (char *) mr->user_id.data, mr->user_id.len,
                          &user);
    if (set == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (pr->what) {

    case NGX_MATRIX_PUSH_ALL:
        body = mx_json_object(pool);
        if (body == NULL || mx_json_set(pool, body, "global", set) != 0) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);

    case NGX_MATRIX_PUSH_GLOBAL:
        return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, set);

    case NGX_MATRIX_PUSH_KIND:
        return ngx_matrix_send_json(mr->r, NGX_HTTP_OK,
                                    mx_json_get(set,
                                                mx_push_kind_name(pr->kind)));
    }

    rule = mx_push_find(set, pr->kind, (char *) pr->rule_id.data,
                        pr->rule_id.len);
    if (rule == NULL) {
        return ngx_matrix_pushrule_not_found(mr);
    }

    if (pr->what == NGX_MATRIX_PUSH_RULE) {
        return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, rule);
    }

    body = mx_json_object(pool);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (pr->what == NGX_MATRIX_PUSH_ENABLED) {
        if (mx_json_set(pool, body, "enabled", mx_json_get(rule, "enabled"))
            != 0)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else if (mx_json_set(pool, body, "actions",
                           mx_json_get(rule, "actions"))
               != 0)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}

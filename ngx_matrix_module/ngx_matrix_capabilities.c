/*
 * GET /capabilities: what this server lets the user do, stated as the spec
 * (Capabilities negotiation, v1.19) asks, and only what is true:
 *
 *   m.room_versions        default "12", available: every version of core's
 *                          table (1 to 12, all stable)
 *   m.change_password      true; false for guests, who have no password
 *   m.set_displayname      true
 *   m.set_avatar_url       true; false for guests (ngx_matrix_profile.c
 *                          lets them set only a displayname)
 *   m.profile_fields       enabled; guests only "displayname"
 *   m.3pid_changes         false: no third-party identifiers
 *   m.get_login_token      false: no POST /login/get_token
 *   m.forget_forced_upon_leave  false: leaving does not forget the room
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_room_version.h>

#include "ngx_matrix_module.h"


/* {"enabled": b} under name */

static ngx_int_t
ngx_matrix_capability(mx_pool_t *pool, mx_json_t *caps, const char *name,
    ngx_uint_t enabled)
{
    mx_json_t  *o;

    o = mx_json_object(pool);

    if (o == NULL
        || mx_json_set(pool, o, "enabled", mx_json_bool(pool, enabled)) != 0
        || mx_json_set(pool, caps, name, o) != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_capabilities_room_versions(mx_pool_t *pool, mx_json_t *caps)
{
    mx_json_t                *rv, *available;
    const mx_room_version_t  *v;

    rv = mx_json_object(pool);
    available = mx_json_object(pool);

    if (rv == NULL || available == NULL
        || mx_json_set_str(pool, rv, "default", MX_ROOM_VERSION_DEFAULT) != 0
        || mx_json_set(pool, rv, "available", available) != 0
        || mx_json_set(pool, caps, "m.room_versions", rv) != 0)
    {
        return NGX_ERROR;
    }

    for (v = mx_room_versions; v->id; v++) {
        if (mx_json_set_str(pool, available, v->id, "stable") != 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_capabilities_profile(mx_pool_t *pool, mx_json_t *caps,
    ngx_uint_t guest)
{
    mx_json_t  *pf, *allowed;

    pf = mx_json_object(pool);

    if (pf == NULL
        || mx_json_set(pool, pf, "enabled", mx_json_bool(pool, 1)) != 0
        || mx_json_set(pool, caps, "m.profile_fields", pf) != 0)
    {
        return NGX_ERROR;
    }

    if (!guest) {
        return NGX_OK;
    }

    allowed = mx_json_array(pool);

    if (allowed == NULL
        || mx_json_append(pool, allowed, mx_json_str(pool, "displayname"))
           != 0
        || mx_json_set(pool, pf, "allowed", allowed) != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_matrix_capabilities(ngx_matrix_req_t *mr)
{
    mx_pool_t   *pool;
    mx_json_t   *body, *caps;
    ngx_uint_t   guest;

    guest = mr->is_guest;

    pool = ngx_matrix_pool(mr);
    if (pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = mx_json_object(pool);
    caps = mx_json_object(pool);

    if (body == NULL || caps == NULL
        || mx_json_set(pool, body, "capabilities", caps) != 0
        || ngx_matrix_capabilities_room_versions(pool, caps) != NGX_OK
        || ngx_matrix_capability(pool, caps, "m.change_password", !guest)
           != NGX_OK
        || ngx_matrix_capability(pool, caps, "m.set_displayname", 1)
           != NGX_OK
        || ngx_matrix_capability(pool, caps, "m.set_avatar_url", !guest)
           != NGX_OK
        || ngx_matrix_capabilities_profile(pool, caps, guest) != NGX_OK
        || ngx_matrix_capability(pool, caps, "m.3pid_changes", 0) != NGX_OK
        || ngx_matrix_capability(pool, caps, "m.get_login_token", 0)
           != NGX_OK
        || ngx_matrix_capability(pool, caps, "m.forget_forced_upon_leave", 0)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, body);
}

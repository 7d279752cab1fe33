/*
 * The endpoint table and the matcher.
 *
 * A pattern is a path whose segments are literals, alternatives ("r0|v3")
 * or parameters (":roomId", captured decoded, in order).  A path that
 * matches a pattern under another method is 405; one that matches nothing is
 * 404.  HEAD is served wherever GET is.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"


#define GET     NGX_HTTP_GET
#define POST    NGX_HTTP_POST
#define PUT     NGX_HTTP_PUT
#define DELETE  NGX_HTTP_DELETE

#define CS      "/_matrix/client/r0|v3"


static const ngx_matrix_route_t  ngx_matrix_routes[] = {

    /* discovery */
    { "/_matrix/client/versions", GET, ngx_matrix_versions, 0 },
    { "/.well-known/matrix/client", GET, ngx_matrix_wellknown_client, 0 },
    { "/.well-known/matrix/server", GET, ngx_matrix_wellknown_server, 0 },

    /* registration (ngx_matrix_register.c) */
    { CS "/register", POST, ngx_matrix_register, 0 },
    { CS "/register/available", GET, ngx_matrix_register_available, 0 },
    { "/_matrix/client/v1/register/m.login.registration_token/validity", GET,
      ngx_matrix_regtoken_validity, 0 },
    { "/_synapse/admin/v1/register", GET|POST, ngx_matrix_admin_register,
      0 },

    /* sessions (ngx_matrix_login.c) */
    { CS "/login", GET, ngx_matrix_login_get, 0 },
    { CS "/login", POST, ngx_matrix_login_post, 0 },
    { CS "/refresh", POST, ngx_matrix_refresh, 0 },
    { CS "/logout", POST, ngx_matrix_logout,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST|NGX_MATRIX_BODY_OPTIONAL },
    { CS "/logout/all", POST, ngx_matrix_logout_all,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST|NGX_MATRIX_BODY_OPTIONAL },
    { CS "/account/whoami", GET, ngx_matrix_whoami,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/account/password", POST, ngx_matrix_password_change,
      NGX_MATRIX_AUTH },
    { CS "/account/deactivate", POST, ngx_matrix_deactivate,
      NGX_MATRIX_AUTH|NGX_MATRIX_BODY_OPTIONAL },

    /* devices (ngx_matrix_devices.c) */
    { CS "/devices", GET, ngx_matrix_devices,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/devices/:deviceId", GET|PUT, ngx_matrix_device,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/devices/:deviceId", DELETE, ngx_matrix_device, NGX_MATRIX_AUTH },
    { CS "/delete_devices", POST, ngx_matrix_delete_devices,
      NGX_MATRIX_AUTH },

    /* profiles (ngx_matrix_profile.c) */
    { CS "/profile/:userId", GET, ngx_matrix_profile, 0 },
    { CS "/profile/:userId/:keyName", GET, ngx_matrix_profile_field, 0 },
    { CS "/profile/:userId/:keyName", PUT|DELETE, ngx_matrix_profile_field,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },

    /* per-user data */
    { CS "/user/:userId/account_data/:type", GET|PUT,
      ngx_matrix_account_data, NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/user/:userId/rooms/:roomId/account_data/:type", GET|PUT,
      ngx_matrix_account_data, NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },

    /* filters (ngx_matrix_filter.c) */
    { CS "/user/:userId/filter", POST, ngx_matrix_filter_post,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/user/:userId/filter/:filterId", GET, ngx_matrix_filter_get,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },

    /* push rules (ngx_matrix_pushrules.c) */
    { CS "/pushrules/", GET, ngx_matrix_pushrules_get, NGX_MATRIX_AUTH },
    { CS "/pushrules/:scope/", GET, ngx_matrix_pushrules_get,
      NGX_MATRIX_AUTH },
    { CS "/pushrules/:scope/:kind/:ruleId", GET|PUT|DELETE,
      ngx_matrix_pushrule, NGX_MATRIX_AUTH },
    { CS "/pushrules/:scope/:kind/:ruleId/:attr", GET|PUT,
      ngx_matrix_pushrule_attr, NGX_MATRIX_AUTH },

    /* rooms (ngx_matrix_room.c, ngx_matrix_create.c) */
    { CS "/createRoom", POST, ngx_matrix_create_room, NGX_MATRIX_AUTH },
    { CS "/rooms/:roomId/send/:eventType/:txnId", PUT, ngx_matrix_room_send,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/rooms/:roomId/state/:eventType", PUT, ngx_matrix_room_state_put,
      NGX_MATRIX_AUTH },
    { CS "/rooms/:roomId/state/:eventType/:stateKey", PUT,
      ngx_matrix_room_state_put, NGX_MATRIX_AUTH },

    /* sync (ngx_matrix_sync.c) */
    { CS "/sync", GET, ngx_matrix_sync, NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/notifications", GET, ngx_matrix_notifications, NGX_MATRIX_AUTH },
    { CS "/rooms/:roomId/typing/:userId", PUT, ngx_matrix_typing,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/presence/:userId/status", GET|PUT, ngx_matrix_presence,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/sendToDevice/:eventType/:txnId", PUT, ngx_matrix_send_to_device,
      NGX_MATRIX_AUTH },
    { CS "/rooms/:roomId/read_markers", POST, ngx_matrix_read_markers,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/rooms/:roomId/receipt/:receiptType/:eventId", POST,
      ngx_matrix_receipt,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST|NGX_MATRIX_BODY_OPTIONAL },

    /* end-to-end encryption (ngx_matrix_keys.c, _cross_signing.c) */
    { CS "/keys/upload", POST, ngx_matrix_keys_upload,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/keys/query", POST, ngx_matrix_keys_query,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/keys/claim", POST, ngx_matrix_keys_claim,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/keys/changes", GET, ngx_matrix_keys_changes,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/keys/device_signing/upload", POST, ngx_matrix_xsign_upload,
      NGX_MATRIX_AUTH },
    { CS "/keys/signatures/upload", POST, ngx_matrix_sigs_upload,
      NGX_MATRIX_AUTH },

    /* reading rooms (ngx_matrix_room_read.c) */
    { CS "/rooms/:roomId/state", GET, ngx_matrix_room_state_get,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/rooms/:roomId/state/:eventType", GET, ngx_matrix_room_state_get,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/rooms/:roomId/state/:eventType/:stateKey", GET,
      ngx_matrix_room_state_get, NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/rooms/:roomId/event/:eventId", GET, ngx_matrix_room_event_get,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/rooms/:roomId/members", GET, ngx_matrix_room_members,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/rooms/:roomId/joined_members", GET, ngx_matrix_room_members,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/rooms/:roomId/messages", GET, ngx_matrix_messages,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/rooms/:roomId/context/:eventId", GET, ngx_matrix_room_context,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { "/_matrix/client/v1/rooms/:roomId/timestamp_to_event", GET,
      ngx_matrix_room_ts_event, NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },
    { CS "/rooms/:roomId/forget", POST, ngx_matrix_room_forget,
      NGX_MATRIX_AUTH|NGX_MATRIX_BODY_OPTIONAL },
    { CS "/joined_rooms", GET, ngx_matrix_joined_rooms,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },

    /* aliases and the directory (ngx_matrix_directory.c) */
    { CS "/directory/room/:roomAlias", GET, ngx_matrix_alias, 0 },
    { CS "/directory/room/:roomAlias", PUT|DELETE, ngx_matrix_alias,
      NGX_MATRIX_AUTH|NGX_MATRIX_BODY_OPTIONAL },
    { CS "/rooms/:roomId/aliases", GET, ngx_matrix_room_aliases,
      NGX_MATRIX_AUTH },
    { CS "/directory/list/room/:roomId", GET, ngx_matrix_directory_list, 0 },
    { CS "/directory/list/room/:roomId", PUT, ngx_matrix_directory_list,
      NGX_MATRIX_AUTH },
    { CS "/publicRooms", GET, ngx_matrix_public_rooms,
      NGX_MATRIX_AUTH_OPTIONAL },
    { CS "/publicRooms", POST, ngx_matrix_public_rooms,
      NGX_MATRIX_AUTH|NGX_MATRIX_BODY_OPTIONAL },

    /* membership (ngx_matrix_membership.c) */
    { CS "/join/:roomIdOrAlias", POST, ngx_matrix_join,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST|NGX_MATRIX_BODY_OPTIONAL },
    { CS "/rooms/:roomId/join", POST, ngx_matrix_membership,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST|NGX_MATRIX_BODY_OPTIONAL },
    { CS "/knock/:roomIdOrAlias", POST, ngx_matrix_knock, NGX_MATRIX_AUTH },
    { CS "/rooms/:roomId/leave", POST, ngx_matrix_membership,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST|NGX_MATRIX_BODY_OPTIONAL },
    { CS "/rooms/:roomId/invite", POST, ngx_matrix_membership,
      NGX_MATRIX_AUTH },
    { CS "/rooms/:roomId/kick", POST, ngx_matrix_membership,
      NGX_MATRIX_AUTH },
    { CS "/rooms/:roomId/ban", POST, ngx_matrix_membership,
      NGX_MATRIX_AUTH },
    { CS "/rooms/:roomId/unban", POST, ngx_matrix_membership,
      NGX_MATRIX_AUTH },
    { CS "/rooms/:roomId/redact/:eventId/:txnId", PUT, ngx_matrix_redact,
      NGX_MATRIX_AUTH|NGX_MATRIX_BODY_OPTIONAL },

    /* capabilities (ngx_matrix_capabilities.c) */
    { CS "/capabilities", GET, ngx_matrix_capabilities,
      NGX_MATRIX_AUTH|NGX_MATRIX_GUEST },

    /*
     * federation: every /_matrix/federation endpoint but version is signed
     * by its origin (NGX_MATRIX_FED, ngx_matrix_fedauth.c); the key
     * endpoints are not
     */
    { "/_matrix/federation/v1/version", GET, ngx_matrix_federation_version,
      0 },
    { "/_matrix/federation/v1/query/profile", GET,
      ngx_matrix_fed_query_profile, NGX_MATRIX_FED },
    { "/_matrix/federation/v1/query/directory", GET,
      ngx_matrix_fed_query_directory, NGX_MATRIX_FED },
    { "/_matrix/federation/v1/publicRooms", GET, ngx_matrix_public_rooms,
      NGX_MATRIX_FED },
    { "/_matrix/federation/v1/publicRooms", POST, ngx_matrix_public_rooms,
      NGX_MATRIX_FED|NGX_MATRIX_BODY_OPTIONAL },
    { "/_matrix/federation/v1/user/devices/:userId", GET,
      ngx_matrix_fed_user_devices, NGX_MATRIX_FED },
    { "/_matrix/federation/v1/user/keys/query", POST, ngx_matrix_keys_query,
      NGX_MATRIX_FED },
    { "/_matrix/federation/v1/user/keys/claim", POST, ngx_matrix_keys_claim,
      NGX_MATRIX_FED },

    /* rooms served to other servers (ngx_matrix_fedrooms.c) */
    { "/_matrix/federation/v1/state/:roomId", GET, ngx_matrix_fed_state,
      NGX_MATRIX_FED },
    { "/_matrix/federation/v1/state_ids/:roomId", GET,
      ngx_matrix_fed_state_ids, NGX_MATRIX_FED },
    { "/_matrix/federation/v1/event/:eventId", GET, ngx_matrix_fed_event,
      NGX_MATRIX_FED },
    { "/_matrix/federation/v1/event_auth/:roomId/:eventId", GET,
      ngx_matrix_fed_event_auth, NGX_MATRIX_FED },
    { "/_matrix/federation/v1/backfill/:roomId", GET,
      ngx_matrix_fed_backfill, NGX_MATRIX_FED },
    { "/_matrix/federation/v1/get_missing_events/:roomId", POST,
      ngx_matrix_fed_missing_events, NGX_MATRIX_FED },
    { "/_matrix/federation/v1/send/:txnId", PUT, ngx_matrix_fed_send,
      NGX_MATRIX_FED },
    { "/_matrix/federation/v1/make_join/:roomId/:userId", GET,
      ngx_matrix_fed_make_join, NGX_MATRIX_FED },
    { "/_matrix/federation/v1/make_leave/:roomId/:userId", GET,
      ngx_matrix_fed_make_leave, NGX_MATRIX_FED },
    { "/_matrix/federation/v2/send_join/:roomId/:eventId", PUT,
      ngx_matrix_fed_send_join, NGX_MATRIX_FED },
    { "/_matrix/federation/v2/send_leave/:roomId/:eventId", PUT,
      ngx_matrix_fed_send_leave, NGX_MATRIX_FED },
    { "/_matrix/federation/v1/make_knock/:roomId/:userId", GET,
      ngx_matrix_fed_make_knock, NGX_MATRIX_FED },
    { "/_matrix/federation/v1/send_knock/:roomId/:eventId", PUT,
      ngx_matrix_fed_send_knock, NGX_MATRIX_FED },
    { "/_matrix/federation/v2/invite/:roomId/:eventId", PUT,
      ngx_matrix_fed_invite, NGX_MATRIX_FED },
    { "/_matrix/key/v2/server", GET, ngx_matrix_key_server, 0 },
    { "/_matrix/key/v2/server/:keyId", GET, ngx_matrix_key_server, 0 },
    { "/_matrix/key/v2/query", POST, ngx_matrix_key_query, 0 },
    { "/_matrix/key/v2/query/:serverName", GET, ngx_matrix_key_query, 0 },
    { "/_matrix/key/v2/query/:serverName/:keyId", GET, ngx_matrix_key_query,
      0 },

    { NULL, 0, NULL, 0 }
};


typedef struct {
    ngx_str_t     segs[NGX_MATRIX_MAX_SEGMENTS];
    ngx_uint_t    nsegs;
} ngx_matrix_pattern_t;


static ngx_matrix_pattern_t  *ngx_matrix_patterns;


/* split the patterns once; they are static, so the pieces point into them */

static ngx_int_t
ngx_matrix_compile(void)
{
    const ngx_matrix_route_t  *rt;
    ngx_matrix_pattern_t      *pt;
    ngx_uint_t                 n;
    u_char                    *p, *start;

    n = sizeof(ngx_matrix_routes) / sizeof(ngx_matrix_routes[0]);

    ngx_matrix_patterns = ngx_calloc(n * sizeof(ngx_matrix_pattern_t),
                                     ngx_cycle->log);
    if (ngx_matrix_patterns == NULL) {
        return NGX_ERROR;
    }

    for (rt = ngx_matrix_routes, pt = ngx_matrix_patterns; rt->pattern;
         rt++, pt++)
    {
        p = (u_char *) rt->pattern + 1;

        for ( ;; ) {
            start = p;

            while (*p && *p != '/') {
                p++;
            }

            pt->segs[pt->nsegs].data = start;
            pt->segs[pt->nsegs].len = p - start;
            pt->nsegs++;

            if (*p == '\0') {
                break;
            }

            p++;
        }
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_matrix_segment_match(ngx_str_t *pat, ngx_str_t *seg)
{
    u_char  *p, *end, *start;

    if (pat->len && pat->data[0] == ':') {
        return 1;
    }

    if (ngx_strlchr(pat->data, pat->data + pat->len, '|') == NULL) {
        return pat->len == seg->len
               && ngx_strncmp(pat->data, seg->data, seg->len) == 0;
    }

    p = pat->data;
    end = p + pat->len;

    while (p < end) {
        start = p;

        while (p < end && *p != '|') {
            p++;
        }

        if ((size_t) (p - start) == seg->len
            && ngx_strncmp(start, seg->data, seg->len) == 0)
        {
            return 1;
        }

        p++;
    }

    return 0;
}


ngx_int_t
ngx_matrix_route(ngx_http_request_t *r, const ngx_matrix_route_t **route,
    ngx_str_t *params, ngx_uint_t *nparams)
{
    ngx_str_t                  path, segs[NGX_MATRIX_MAX_SEGMENTS];
    ngx_uint_t                 nsegs, i, k, method, found;
    ngx_matrix_pattern_t      *pt;
    const ngx_matrix_route_t  *rt;

    if (ngx_matrix_patterns == NULL && ngx_matrix_compile() != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_matrix_split_path(r, &path, segs, &nsegs) != NGX_OK) {
        return NGX_HTTP_NOT_FOUND;
    }

    method = r->method;
    if (method == NGX_HTTP_HEAD) {
        method = NGX_HTTP_GET;
    }

    found = 0;

    for (rt = ngx_matrix_routes, pt = ngx_matrix_patterns; rt->pattern;
         rt++, pt++)
    {
        if (pt->nsegs != nsegs) {
            continue;
        }

        for (i = 0; i < nsegs; i++) {
            if (!ngx_matrix_segment_match(&pt->segs[i], &segs[i])) {
                break;
            }
        }

        if (i < nsegs) {
            continue;
        }

        found = 1;

        if (!(rt->methods & method)) {
            continue;
        }

        k = 0;
        for (i = 0; i < nsegs; i++) {
            if (pt->segs[i].len && pt->segs[i].data[0] == ':'
                && k < NGX_MATRIX_MAX_PARAMS)
            {
                params[k++] = segs[i];
            }
        }

        *nparams = k;
        *route = rt;

        return NGX_OK;
    }

    return found ? NGX_HTTP_NOT_ALLOWED : NGX_HTTP_NOT_FOUND;
}

/*
 * Identifier checks on nginx strings.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <mx_ids.h>

#include "ngx_matrix_module.h"


/* the identifier grammars are core's; these take nginx strings */

ngx_uint_t
ngx_matrix_room_id_valid(ngx_str_t *id)
{
    return mx_room_id_valid((char *) id->data, id->len);
}


ngx_uint_t
ngx_matrix_localpart_valid(u_char *p, size_t len)
{
    return mx_localpart_valid((char *) p, len);
}


/*
 * Is user_id "@<localpart>:<our server name>"?  NGX_OK with the localpart,
 * NGX_DECLINED when it names another server or is no user ID.
 */

ngx_int_t
ngx_matrix_user_id_local(ngx_matrix_req_t *mr, ngx_str_t *user_id,
    ngx_str_t *localpart)
{
    u_char     *colon;
    ngx_str_t  *server;

    if (user_id->len < 3 || user_id->data[0] != '@' || user_id->len > 255) {
        return NGX_DECLINED;
    }

    colon = ngx_strlchr(user_id->data, user_id->data + user_id->len, ':');
    if (colon == NULL) {
        return NGX_DECLINED;
    }

    server = &mr->mcf->server_name;

    if ((size_t) (user_id->data + user_id->len - colon - 1) != server->len
        || ngx_strncmp(colon + 1, server->data, server->len) != 0)
    {
        return NGX_DECLINED;
    }

    localpart->data = user_id->data + 1;
    localpart->len = colon - user_id->data - 1;

    return localpart->len ? NGX_OK : NGX_DECLINED;
}

/*
 * Identifier checks on nginx strings.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_matrix_module.h"


/* "!" then an opaque part, at most 255 bytes, no control characters */

ngx_uint_t
ngx_matrix_room_id_valid(ngx_str_t *id)
{
    size_t  i;

    if (id->len < 2 || id->len > 255 || id->data[0] != '!') {
        return 0;
    }

    for (i = 1; i < id->len; i++) {
        if (id->data[i] < 0x21 || id->data[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}

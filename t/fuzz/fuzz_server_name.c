/*
 * Fuzz target: what discovery reads from the network and from other
 * servers' names.  The input is tried as a server name, as the body of a
 * .well-known/matrix/server response and as a Cache-Control value.  Nothing
 * crashes; a name that parses is a valid server name with a port in range,
 * and a delegation that parses is one too.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mx_ids.h>
#include <mx_pool.h>
#include <mx_server_name.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mx_pool_t         *pool;
    mx_server_name_t   sn;
    const char        *s, *why;
    int64_t            secs;

    s = (const char *) data;

    if (mx_server_name_parse(s, size, &sn) == 0) {
        if (!mx_server_name_valid(s, size) || sn.port > 65535
            || strlen(sn.host) == 0)
        {
            abort();
        }
    }

    if (mx_cache_control_max_age(s, size, &secs) == 0 && secs < 0) {
        abort();
    }

    pool = mx_pool_create(4096);
    if (pool == NULL) {
        return 0;
    }

    if (mx_wellknown_server_parse(pool, s, size, &sn, &why) == 0
        && strlen(sn.host) == 0)
    {
        abort();
    }

    mx_pool_destroy(pool);

    return 0;
}

/*
 * Fuzz target: JSON parsing and the canonical writer.
 *
 * Whatever the bytes, the parser returns a tree or an error with a reason,
 * never crashes.  A tree it returns is written canonically, and the written
 * bytes parse again to an equal tree that writes to the same bytes: the
 * canonical form is a fixed point.  The strict writer refuses only what it
 * must (floats, integers beyond 2^53-1), and when it writes, the lenient
 * writer writes the same bytes.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mx_json.h>
#include <mx_pool.h>


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mx_pool_t        *pool;
    mx_json_t        *v, *again;
    mx_json_error_t   err;
    char             *out, *out2, *strict;
    size_t            len, len2, slen;

    pool = mx_pool_create(4096);
    if (pool == NULL) {
        return 0;
    }

    v = mx_json_parse(pool, (const char *) data, size, &err);

    if (v == NULL) {
        if (err.code == MX_JSON_OK || err.msg[0] == '\0') {
            abort();    /* a refusal always says why */
        }
        goto done;
    }

    out = mx_json_encode(pool, v, 0, &len);
    if (out == NULL) {
        goto done;      /* non-finite numbers cannot be written at all */
    }

    if (!mx_utf8_valid(out, len)) {
        abort();
    }

    again = mx_json_parse(pool, out, len, &err);
    if (again == NULL || !mx_json_equal(v, again)) {
        abort();
    }

    out2 = mx_json_encode(pool, again, 0, &len2);
    if (out2 == NULL || len2 != len || memcmp(out, out2, len) != 0) {
        abort();
    }

    if ((ssize_t) len != mx_json_encoded_len(v, 0)) {
        abort();
    }

    strict = mx_json_encode(pool, v, MX_JSON_STRICT, &slen);
    if (strict != NULL && (slen != len || memcmp(strict, out, len) != 0)) {
        abort();
    }

done:

    mx_pool_destroy(pool);

    return 0;
}

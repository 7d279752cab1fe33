/*
 * Fuzz target: push rule evaluation.  The input is a glob pattern, a NUL,
 * then a value.  Globs never crash and never backtrack (the timeout would
 * say so); a value always matches itself literally and "*" always matches
 * it whole.  When the value is JSON, it is evaluated as an event against
 * the server-default rules, filled in and as the shared template, with the
 * same verdict.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mx_json.h>
#include <mx_pool.h>
#include <mx_pusheval.h>
#include <mx_pushrules.h>


#define USER  "@alice:example.org"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mx_pool_t        *pool;
    const char       *pattern, *value, *nul;
    size_t            plen, vlen;
    mx_json_t        *ev, *set, *tpl;
    mx_json_error_t   err;
    mx_push_ctx_t     ctx;
    mx_push_match_t   a, b;

    nul = memchr(data, '\0', size);
    if (nul == NULL) {
        return 0;
    }

    pattern = (const char *) data;
    plen = (size_t) (nul - pattern);
    value = nul + 1;
    vlen = size - plen - 1;

    pool = mx_pool_create(4096);
    if (pool == NULL) {
        abort();
    }

    (void) mx_push_glob(pool, pattern, plen, value, vlen, MX_GLOB_WHOLE);
    (void) mx_push_glob(pool, pattern, plen, value, vlen, MX_GLOB_WORDS);
    (void) mx_push_glob(pool, pattern, plen, value, vlen,
                        MX_GLOB_WORDS | MX_GLOB_LITERAL);

    if (mx_push_glob(pool, value, vlen, value, vlen,
                     MX_GLOB_WHOLE | MX_GLOB_LITERAL) != 1
        || mx_push_glob(pool, "*", 1, value, vlen, MX_GLOB_WHOLE) != 1)
    {
        abort();
    }

    (void) mx_push_path(NULL, pattern, plen);

    ev = mx_json_parse(pool, value, vlen, &err);

    if (ev != NULL) {
        (void) mx_push_path(ev, pattern, plen);

        set = mx_push_defaults(pool, USER, sizeof(USER) - 1);
        tpl = mx_push_template(pool);
        if (set == NULL || tpl == NULL) {
            abort();
        }

        memset(&ctx, 0, sizeof(ctx));
        ctx.user_id = USER;
        ctx.display_name = plen ? mx_pstrndup(pool, pattern, plen) : NULL;
        ctx.room_id = "!r:example.org";
        ctx.member_count = (int64_t) (size % 5);
        ctx.sender_level = (int64_t) (size % 101);

        if (mx_push_eval(pool, set, ev, &ctx, &a) != 0
            || mx_push_eval(pool, tpl, ev, &ctx, &b) != 0
            || a.notify != b.notify || a.highlight != b.highlight)
        {
            abort();
        }
    }

    mx_pool_destroy(pool);

    return 0;
}

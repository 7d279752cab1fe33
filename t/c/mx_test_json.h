/*
 * A helper for the unit tests that write their JSON inline: parse it, or
 * fail the test naming the text.  Static, one copy per test program.
 * Include after <cmocka.h>.
 */

#ifndef MX_TEST_JSON_H
#define MX_TEST_JSON_H

#include <string.h>

#include <mx_json.h>
#include <mx_pool.h>


static mx_json_t *
mx_test_json(mx_pool_t *pool, const char *text)
{
    mx_json_error_t   err;
    mx_json_t        *v;

    v = mx_json_parse(pool, text, strlen(text), &err);
    if (v == NULL) {
        fail_msg("bad test JSON: %s: %s", err.msg, text);
    }

    return v;
}

#endif /* MX_TEST_JSON_H */

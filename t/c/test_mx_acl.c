/*
 * core/mx_acl: the spec's order of server ACL checks, globs against the
 * host without its port, IP literals, malformed contents.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <mx_acl.h>


static mx_pool_t  *pool;


static int
allowed(const char *acl, const char *server)
{
    mx_json_t        *c;
    mx_json_error_t   err;

    c = NULL;
    if (acl != NULL) {
        c = mx_json_parse(pool, acl, strlen(acl), &err);
        assert_non_null(c);
    }

    return mx_acl_allowed(pool, c, server, strlen(server));
}


static void
test_host(void **state)
{
    (void) state;

    assert_int_equal(mx_acl_host("evil.com:8448", 13), 8);
    assert_int_equal(mx_acl_host("evil.com", 8), 8);
    assert_int_equal(mx_acl_host("[::1]:8448", 10), 5);
    assert_int_equal(mx_acl_host("[::1]", 5), 5);

    assert_true(mx_acl_ip_literal("1.2.3.4", 7));
    assert_true(mx_acl_ip_literal("[::1]", 5));
    assert_false(mx_acl_ip_literal("1.2.3", 5));
    assert_false(mx_acl_ip_literal("1.2.3.256", 9));
    assert_false(mx_acl_ip_literal("1.2.3.4.5", 9));
    assert_false(mx_acl_ip_literal("1.2.3.a", 7));
    assert_false(mx_acl_ip_literal("1..3.4", 6));
    assert_false(mx_acl_ip_literal("1234.2.3.4", 10));
    assert_false(mx_acl_ip_literal("example.org", 11));
}


static void
test_order(void **state)
{
    (void) state;

    /* no ACL: everyone */
    assert_int_equal(allowed(NULL, "anyone.org"), 1);

    /* no allow list: nobody, the sender included */
    assert_int_equal(allowed("{}", "anyone.org"), 0);
    assert_int_equal(allowed("{\"deny\":[]}", "anyone.org"), 0);

    /* deny before allow */
    assert_int_equal(allowed("{\"allow\":[\"*\"],\"deny\":[\"evil.com\"]}",
                             "evil.com"), 0);
    assert_int_equal(allowed("{\"allow\":[\"*\"],\"deny\":[\"evil.com\"]}",
                             "good.com"), 1);
    assert_int_equal(allowed("{\"allow\":[\"good.com\"]}", "other.com"), 0);
}


static void
test_ports_and_case(void **state)
{
    const char  *acl;

    (void) state;

    acl = "{\"allow\":[\"*\"],\"deny\":[\"evil.com\"]}";
    assert_int_equal(allowed(acl, "evil.com:8448"), 0);
    assert_int_equal(allowed(acl, "evil.com:1234"), 0);
    assert_int_equal(allowed(acl, "EVIL.com"), 0);

    /* a pattern with a port matches nothing: ports are not compared */
    acl = "{\"allow\":[\"*\"],\"deny\":[\"evil.com:8448\"]}";
    assert_int_equal(allowed(acl, "evil.com:8448"), 1);
}


static void
test_globs(void **state)
{
    const char  *acl;

    (void) state;

    acl = "{\"allow\":[\"*.example.org\"],\"deny\":[\"bad?.example.org\"]}";
    assert_int_equal(allowed(acl, "a.example.org"), 1);
    assert_int_equal(allowed(acl, "a.b.example.org"), 1);
    assert_int_equal(allowed(acl, "example.org"), 0);
    assert_int_equal(allowed(acl, "bad1.example.org"), 0);
    assert_int_equal(allowed(acl, "bad.example.org"), 1);
    assert_int_equal(allowed(acl, "bad12.example.org"), 1);
    /* whole host only */
    assert_int_equal(allowed(acl, "a.example.org.evil.com"), 0);

    /* entries that are not strings are skipped */
    acl = "{\"allow\":[1,null,{\"a\":1},\"ok.org\"],\"deny\":[true]}";
    assert_int_equal(allowed(acl, "ok.org"), 1);
    assert_int_equal(allowed(acl, "no.org"), 0);

    /* lists that are not arrays count as empty */
    assert_int_equal(allowed("{\"allow\":\"*\"}", "ok.org"), 0);
    assert_int_equal(allowed("{\"allow\":[\"*\"],\"deny\":\"*\"}", "ok.org"),
                     1);
}


static void
test_ip_literals(void **state)
{
    const char  *acl;

    (void) state;

    acl = "{\"allow\":[\"*\"],\"allow_ip_literals\":false}";
    assert_int_equal(allowed(acl, "1.2.3.4"), 0);
    assert_int_equal(allowed(acl, "1.2.3.4:8448"), 0);
    assert_int_equal(allowed(acl, "[::1]:8448"), 0);
    assert_int_equal(allowed(acl, "example.org"), 1);

    /* true, missing, or not a boolean: allowed */
    acl = "{\"allow\":[\"*\"],\"allow_ip_literals\":true}";
    assert_int_equal(allowed(acl, "1.2.3.4"), 1);
    acl = "{\"allow\":[\"*\"],\"allow_ip_literals\":\"false\"}";
    assert_int_equal(allowed(acl, "1.2.3.4"), 1);
    acl = "{\"allow\":[\"*\"],\"allow_ip_literals\":0}";
    assert_int_equal(allowed(acl, "[::1]"), 1);

    /* an IP literal denied by a glob as any name */
    acl = "{\"allow\":[\"*\"],\"deny\":[\"10.*\"]}";
    assert_int_equal(allowed(acl, "10.0.0.1:8448"), 0);
    assert_int_equal(allowed(acl, "11.0.0.1"), 1);
}


static int
setup(void **state)
{
    (void) state;
    pool = mx_pool_create(4096);
    return pool ? 0 : -1;
}


static int
teardown(void **state)
{
    (void) state;
    mx_pool_destroy(pool);
    return 0;
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_ports_and_case),
        cmocka_unit_test(test_globs),
        cmocka_unit_test(test_ip_literals),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

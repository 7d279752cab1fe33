/*
 * core/mx_server_name: server names split as discovery needs them, the
 * .well-known body, Cache-Control's max-age and the order of SRV records.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <mx_server_name.h>


static int
parse(const char *s, mx_server_name_t *sn)
{
    return mx_server_name_parse(s, strlen(s), sn);
}


static void
test_parse(void **state)
{
    mx_server_name_t  sn;

    (void) state;

    assert_int_equal(parse("matrix.org", &sn), 0);
    assert_string_equal(sn.host, "matrix.org");
    assert_int_equal(sn.port, 0);
    assert_int_equal(sn.type, MX_HOST_NAME);
    assert_false(mx_server_name_is_ip(&sn));

    assert_int_equal(parse("localhost:8448", &sn), 0);
    assert_string_equal(sn.host, "localhost");
    assert_int_equal(sn.port, 8448);
    assert_int_equal(sn.type, MX_HOST_NAME);

    assert_int_equal(parse("1.2.3.4", &sn), 0);
    assert_string_equal(sn.host, "1.2.3.4");
    assert_int_equal(sn.port, 0);
    assert_int_equal(sn.type, MX_HOST_IPV4);
    assert_true(mx_server_name_is_ip(&sn));

    assert_int_equal(parse("127.0.0.1:65535", &sn), 0);
    assert_int_equal(sn.port, 65535);
    assert_int_equal(sn.type, MX_HOST_IPV4);

    assert_int_equal(parse("[1234:5678::abcd]", &sn), 0);
    assert_string_equal(sn.host, "1234:5678::abcd");
    assert_int_equal(sn.port, 0);
    assert_int_equal(sn.type, MX_HOST_IPV6);

    assert_int_equal(parse("[::1]:5678", &sn), 0);
    assert_string_equal(sn.host, "::1");
    assert_int_equal(sn.port, 5678);
    assert_int_equal(sn.type, MX_HOST_IPV6);

    /* dotted digits that are no IPv4 address are a DNS name */
    assert_int_equal(parse("1.2.3", &sn), 0);
    assert_int_equal(sn.type, MX_HOST_NAME);
}


static void
test_refused(void **state)
{
    mx_server_name_t  sn;
    const char       *bad[] = {
        "", ":8448", "host:", "host:0", "host:65536", "host:123456",
        "host:8a", "ho_st", "a b", "[::1", "[]:80", "[zz::1]", "[::1]x",
        "[::1]:", "host:80:80", "[1.2.3.4]", NULL
    };
    int               i;

    (void) state;

    for (i = 0; bad[i]; i++) {
        if (parse(bad[i], &sn) == 0) {
            fail_msg("accepted \"%s\"", bad[i]);
        }
    }
}


static void
test_wellknown(void **state)
{
    mx_pool_t         *pool;
    mx_server_name_t   sn;
    const char        *why, *b;

    (void) state;

    pool = mx_pool_create(4096);

    b = "{\"m.server\": \"delegated.example.com:1234\"}";
    assert_int_equal(mx_wellknown_server_parse(pool, b, strlen(b), &sn, &why),
                     0);
    assert_string_equal(sn.host, "delegated.example.com");
    assert_int_equal(sn.port, 1234);

    b = "{\"m.server\": \"[::1]\", \"other\": 1}";
    assert_int_equal(mx_wellknown_server_parse(pool, b, strlen(b), &sn, &why),
                     0);
    assert_int_equal(sn.type, MX_HOST_IPV6);

    b = "{\"m.server\": 1}";
    assert_int_equal(mx_wellknown_server_parse(pool, b, strlen(b), &sn, &why),
                     -1);
    assert_string_equal(why, "no m.server string");

    b = "[\"m.server\"]";
    assert_int_equal(mx_wellknown_server_parse(pool, b, strlen(b), &sn, &why),
                     -1);

    b = "{\"m.server\": \"bad name!\"}";
    assert_int_equal(mx_wellknown_server_parse(pool, b, strlen(b), &sn, &why),
                     -1);

    b = "<html>";
    assert_int_equal(mx_wellknown_server_parse(pool, b, strlen(b), &sn, &why),
                     -1);
    assert_string_equal(why, "not JSON");

    mx_pool_destroy(pool);
}


static void
test_max_age(void **state)
{
    int64_t     s;
    const char *v;

    (void) state;

    v = "max-age=3600";
    assert_int_equal(mx_cache_control_max_age(v, strlen(v), &s), 0);
    assert_int_equal(s, 3600);

    v = "public, MAX-AGE=\"60\", must-revalidate";
    assert_int_equal(mx_cache_control_max_age(v, strlen(v), &s), 0);
    assert_int_equal(s, 60);

    v = "private, max-age=120, no-store";
    assert_int_equal(mx_cache_control_max_age(v, strlen(v), &s), 0);
    assert_int_equal(s, 0);

    v = "public, s-maxage=10";
    assert_int_equal(mx_cache_control_max_age(v, strlen(v), &s), -1);

    v = "x=\"max-age=5\"";
    assert_int_equal(mx_cache_control_max_age(v, strlen(v), &s), -1);

    v = "max-age=";
    assert_int_equal(mx_cache_control_max_age(v, strlen(v), &s), -1);
}


/* a scripted "random" source: the next number, modulo the bound */

typedef struct {
    const uint32_t  *v;
    size_t           i;
} script_t;


static uint32_t
scripted(void *ctx, uint32_t bound)
{
    script_t  *s = ctx;

    return s->v[s->i++] % bound;
}


static void
srv(mx_srv_t *r, unsigned prio, unsigned weight, const char *target)
{
    r->priority = prio;
    r->weight = weight;
    r->port = 8448;
    strcpy(r->target, target);
}


static void
test_srv_order(void **state)
{
    mx_srv_t        rr[4];
    uint32_t        zeros[8] = { 0 };
    uint32_t        picks[8] = { 7, 0, 0, 0 };
    script_t        s;

    (void) state;

    /* priority first, whatever the weights */
    srv(&rr[0], 20, 100, "c");
    srv(&rr[1], 10, 0, "a");
    srv(&rr[2], 30, 5, "d");
    srv(&rr[3], 10, 50, "b");
    s.v = zeros;
    s.i = 0;
    assert_int_equal(mx_srv_order(rr, 4, scripted, &s), 4);
    assert_string_equal(rr[0].target, "a");   /* pick 0: the zero weight */
    assert_string_equal(rr[1].target, "b");
    assert_string_equal(rr[2].target, "c");
    assert_string_equal(rr[3].target, "d");

    /* within a priority, the weights decide: sum 10, pick 7 lands on the
     * second record (running sums 3, 10) */
    srv(&rr[0], 1, 3, "x");
    srv(&rr[1], 1, 7, "y");
    s.v = picks;
    s.i = 0;
    assert_int_equal(mx_srv_order(rr, 2, scripted, &s), 2);
    assert_string_equal(rr[0].target, "y");
    assert_string_equal(rr[1].target, "x");

    /* "." alone: the service is not offered */
    srv(&rr[0], 0, 0, ".");
    assert_int_equal(mx_srv_order(rr, 1, scripted, &s), 0);
    srv(&rr[0], 0, 0, "");
    assert_int_equal(mx_srv_order(rr, 1, scripted, &s), 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_wellknown),
        cmocka_unit_test(test_max_age),
        cmocka_unit_test(test_srv_order),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

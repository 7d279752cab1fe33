/*
 * The daemons' reader of nginx.conf: matrix_* directives of the http block,
 * includes (relative, absolute, globs), quotes, escapes, comments, nested
 * blocks, and clear errors.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "mxw.h"


static char  dir[256];


static void
put(const char *name, const char *text)
{
    char   path[512];
    FILE  *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}


/* loads into cf (zeroed, or loaded before), freeing what was there */

static int
load(mxw_config_t *cf, char *err, size_t len)
{
    char  path[512];

    mxw_config_free(cf);
    snprintf(path, sizeof(path), "%s/nginx.conf", dir);
    return mxw_config_load(cf, path, err, len);
}


static int
setup(void **state)
{
    (void) state;

    snprintf(dir, sizeof(dir), "/tmp/mxw-config-test-%d", (int) getpid());
    return mkdir(dir, 0700);
}


static int
teardown(void **state)
{
    char  cmd[300];

    (void) state;

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}


static void
test_directives(void **state)
{
    mxw_config_t  cf = { .n = 0 };
    char          err[512], path[512];

    (void) state;

    put("nginx.conf",
        "# a comment; { }\n"
        "load_module /x.so;\n"
        "events { worker_connections 10; }\n"
        "http {\n"
        "    matrix_server_name example.org;   # trailing comment\n"
        "    matrix_redis 10.0.0.1:6380;\n"
        "    matrix_redis_timeout 1500ms;\n"
        "    matrix_signing_key keys/signing.key;\n"
        "    matrix_public_baseurl \"https://matrix.example.org/ x\";\n"
        "    include extra/*.conf;\n"
        "    server {\n"
        "        listen 80;\n"
        "        matrix_server_name ignored.in.server;\n"
        "        location /_matrix { matrix; }\n"
        "    }\n"
        "}\n"
        "stream { matrix_input_shards 99; }\n");
    snprintf(path, sizeof(path), "mkdir -p %s/extra", dir);
    assert_int_equal(system(path), 0);
    put("extra/a.conf", "matrix_input_shards 8;\n");
    put("extra/b.conf", "matrix_well_known_server 'fed.example.org:443';\n");

    assert_int_equal(load(&cf, err, sizeof(err)), 0);
    assert_string_equal(cf.server_name, "example.org");
    assert_string_equal(cf.redis_host, "10.0.0.1");
    assert_int_equal(cf.redis_port, 6380);
    assert_int_equal(cf.redis_timeout_ms, 1500);
    snprintf(path, sizeof(path), "%s/keys/signing.key", dir);
    assert_string_equal(cf.signing_key, path);
    assert_string_equal(mxw_config_get(&cf, "matrix_public_baseurl"),
                        "https://matrix.example.org/ x");
    assert_string_equal(mxw_config_get(&cf, "matrix_input_shards"), "8");
    assert_string_equal(mxw_config_get(&cf, "matrix_well_known_server"),
                        "fed.example.org:443");
    assert_null(mxw_config_get(&cf, "matrix_nothing"));
    mxw_config_free(&cf);
}


static void
test_defaults_and_unix(void **state)
{
    mxw_config_t  cf = { .n = 0 };
    char          err[512];

    (void) state;

    put("nginx.conf", "http{matrix_server_name a.b;}");
    assert_int_equal(load(&cf, err, sizeof(err)), 0);
    assert_string_equal(cf.redis_host, "127.0.0.1");
    assert_int_equal(cf.redis_port, 6379);
    assert_int_equal(cf.redis_timeout_ms, 5000);

    put("nginx.conf", "http {\n matrix_server_name a.b;\n"
                      " matrix_redis unix:/run/r.sock;\n}\n");
    assert_int_equal(load(&cf, err, sizeof(err)), 0);
    assert_int_equal(cf.redis_port, 0);
    assert_string_equal(cf.redis_path, "/run/r.sock");

    put("nginx.conf", "http { matrix_server_name a.b; "
                      "matrix_redis [::1]:7000; }");
    assert_int_equal(load(&cf, err, sizeof(err)), 0);
    assert_string_equal(cf.redis_host, "::1");
    assert_int_equal(cf.redis_port, 7000);
    mxw_config_free(&cf);
}


static void
test_errors(void **state)
{
    mxw_config_t  cf = { .n = 0 };
    char          err[512];

    (void) state;

    put("nginx.conf", "http { listen 80; }");
    assert_int_equal(load(&cf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "matrix_server_name"));

    put("nginx.conf", "http {\n matrix_server_name a;\n"
                      " matrix_server_name b;\n}");
    assert_int_equal(load(&cf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "nginx.conf:3"));
    assert_non_null(strstr(err, "duplicate"));

    put("nginx.conf", "http {\n matrix_server_name a;\n");
    assert_int_equal(load(&cf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "expecting \"}\""));

    put("nginx.conf", "http { matrix_server_name \"a; }");
    assert_int_equal(load(&cf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unterminated"));

    put("nginx.conf", "http { include missing.conf; }");
    assert_int_equal(load(&cf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "missing.conf"));

    put("nginx.conf", "http { matrix_server_name a; matrix_redis x:0; }");
    assert_int_equal(load(&cf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "redis"));

    put("nginx.conf", "http { matrix_server_name a;"
                      " matrix_redis_timeout soon; }");
    assert_int_equal(load(&cf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "matrix_redis_timeout"));

    put("nginx.conf", "}");
    assert_int_equal(load(&cf, err, sizeof(err)), -1);
}


static void
test_time(void **state)
{
    int64_t  ms;

    (void) state;

    assert_int_equal(mxw_parse_time_ms("5", &ms), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(mxw_parse_time_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(mxw_parse_time_ms("1m30s", &ms), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(mxw_parse_time_ms("2h", &ms), 0);
    assert_int_equal(ms, 7200000);
    assert_int_equal(mxw_parse_time_ms("1d", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(mxw_parse_time_ms("", &ms), -1);
    assert_int_equal(mxw_parse_time_ms("x", &ms), -1);
    assert_int_equal(mxw_parse_time_ms("-1s", &ms), -1);
    assert_int_equal(mxw_parse_time_ms("3y", &ms), -1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_directives),
        cmocka_unit_test(test_defaults_and_unix),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_time),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * Helpers for the unit tests that read ../shared/spec/ (or $MX_SPEC_DIR):
 * find a file there, parse it as JSON.  Static functions only, one copy per
 * test program.
 */

#ifndef MX_TEST_SPEC_H
#define MX_TEST_SPEC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mx_json.h>
#include <mx_pool.h>


/* the spec folder, relative to the repository root unless MX_SPEC_DIR */
static const char *
mx_test_spec_dir(void)
{
    const char  *d;

    d = getenv("MX_SPEC_DIR");

    return (d && *d) ? d : "../shared/spec";
}


/* 1 when dir/sub exists; else prints why the caller skips */
static int
mx_test_spec_has(const char *sub, const char *what)
{
    char         path[4096];
    struct stat  st;

    snprintf(path, sizeof(path), "%s/%s", mx_test_spec_dir(), sub);

    if (stat(path, &st) == 0) {
        return 1;
    }

    printf("skipped: %s: %s not found (set MX_SPEC_DIR to the spec folder)\n",
           what, path);

    return 0;
}


/* parse spec/<sub>; NULL with a message on failure */
static mx_json_t *
mx_test_spec_json(mx_pool_t *pool, const char *sub)
{
    char             path[4096], *buf;
    FILE            *f;
    long             len;
    mx_json_t       *v;
    mx_json_error_t  err;

    snprintf(path, sizeof(path), "%s/%s", mx_test_spec_dir(), sub);

    f = fopen(path, "rb");
    if (f == NULL) {
        printf("cannot open %s\n", path);
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = mx_palloc(pool, (size_t) len + 1);
    if (buf == NULL || fread(buf, 1, (size_t) len, f) != (size_t) len) {
        fclose(f);
        return NULL;
    }

    fclose(f);

    v = mx_json_parse(pool, buf, (size_t) len, &err);
    if (v == NULL) {
        printf("%s: %s\n", path, err.msg);
    }

    return v;
}

#endif /* MX_TEST_SPEC_H */

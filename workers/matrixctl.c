/*
 * matrixctl: the operator's and the tests' command-line tool.
 *
 *   matrixctl keygen [version]       a new signing key, in the key file format
 *   matrixctl functions -c CONF      load the Redis function library
 *   matrixctl config -c CONF         the matrix_* settings the daemons see
 *   matrixctl version                this build's version and library version
 *
 * Commands that read JSON read it from stdin and write the result to stdout;
 * every failure is a message on stderr and a non-zero exit status.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mx_shard.h>
#include <mx_sign.h>

#include "matrixctl.h"
#include "mxw.h"


#define CTL_MAX_INPUT  (256 * 1024 * 1024)


int
matrixctl_fail(const char *cmd, const char *fmt, ...)
{
    va_list  ap;

    fprintf(stderr, "matrixctl %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");

    return 2;
}


char *
matrixctl_read_stdin(mx_pool_t *pool, size_t *len)
{
    char    *buf, *nbuf;
    size_t   cap, n, r;

    cap = 65536;
    n = 0;
    buf = mx_palloc(pool, cap);

    while (buf) {
        r = fread(buf + n, 1, cap - n - 1, stdin);
        n += r;

        if (r == 0) {
            if (ferror(stdin)) {
                return NULL;
            }

            buf[n] = '\0';
            *len = n;

            return buf;
        }

        if (n + 1 == cap) {
            if (cap >= CTL_MAX_INPUT) {
                return NULL;
            }

            nbuf = mx_palloc(pool, cap * 2);
            if (nbuf) {
                memcpy(nbuf, buf, n);
            }

            buf = nbuf;
            cap *= 2;
        }
    }

    return NULL;
}


static int
cmd_keygen(int argc, char **argv)
{
    mx_signing_key_t  key;
    char              line[256];

    if (argc > 2) {
        fprintf(stderr, "usage: matrixctl keygen [version]\n");
        return 2;
    }

    if (argc == 2 && !mx_key_version_valid(argv[1], strlen(argv[1]))) {
        fprintf(stderr, "matrixctl: a key version is 1 to %d of"
                " [A-Za-z0-9_]\n", MX_KEY_VERSION_MAX);
        return 1;
    }

    if (mx_key_generate(&key, argc == 2 ? argv[1] : NULL) != 0) {
        fprintf(stderr, "matrixctl: cannot generate a key\n");
        return 1;
    }

    mx_key_format(&key, line, sizeof(line));
    fputs(line, stdout);

    return 0;
}


static int
ctl_load_config(mxw_t *w, int argc, char **argv, const char *usage)
{
    const char  *conf;
    char         err[1024];
    int          opt;

    memset(w, 0, sizeof(*w));
    w->prog = "matrixctl";
    conf = getenv("MATRIX_CONF");

    optind = 1;
    while ((opt = getopt(argc, argv, "c:")) != -1) {
        if (opt != 'c') {
            fprintf(stderr, "usage: matrixctl %s\n", usage);
            return 2;
        }
        conf = optarg;
    }

    if (conf == NULL || optind != argc) {
        fprintf(stderr, "usage: matrixctl %s\n", usage);
        return 2;
    }

    if (mxw_config_load(&w->cf, conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "matrixctl: %s\n", err);
        return 1;
    }

    return 0;
}


static int
cmd_functions(int argc, char **argv)
{
    mxw_t  w;
    int    rc, loaded;

    rc = ctl_load_config(&w, argc, argv, "functions -c nginx.conf");
    if (rc != 0) {
        return rc;
    }

    mxw_signals(&w);

    /* a few attempts, not forever */
    w.redis = NULL;
    w.tries = 5;
    if (mxw_connect(&w) != 0) {
        return 1;
    }

    rc = mxw_functions_ensure(&w, &loaded);
    mxw_disconnect(&w);

    if (rc != 0) {
        fprintf(stderr, "matrixctl: cannot load the function library\n");
        return 1;
    }

    printf("%s\n", mx_lua_lib_version);
    return 0;
}


static int
cmd_config(int argc, char **argv)
{
    mxw_t  w;
    int    rc, i;

    rc = ctl_load_config(&w, argc, argv, "config -c nginx.conf");
    if (rc != 0) {
        return rc;
    }

    for (i = 0; i < w.cf.n; i++) {
        printf("%s %s\n", w.cf.d[i].name, w.cf.d[i].value);
    }

    if (w.cf.redis_port) {
        printf("# redis tcp %s %d\n", w.cf.redis_host, w.cf.redis_port);
    } else {
        printf("# redis unix %s\n", w.cf.redis_path);
    }

    return 0;
}


/* the input shard of a room, for tests and operators */

static int
cmd_shard(int argc, char **argv)
{
    int  n;

    if (argc != 3 || (n = atoi(argv[2])) < 1) {
        fprintf(stderr, "usage: matrixctl shard ROOM_ID SHARDS\n");
        return 2;
    }

    printf("%u\n", mx_room_shard(argv[1], strlen(argv[1]), (unsigned) n));
    return 0;
}


static int
cmd_version(int argc, char **argv)
{
    (void) argc;
    (void) argv;

    printf("matrixctl %s, function library %s\n", MATRIXCTL_VERSION,
           mx_lua_lib_version);
    return 0;
}


static const matrixctl_cmd_t  ctl_commands[] = {
    { "keygen", cmd_keygen, "keygen [version]: print a new signing key" },
    { "functions", cmd_functions,
      "functions -c CONF: load the Redis function library" },
    { "config", cmd_config, "config -c CONF: print the matrix_* settings" },
    { "version", cmd_version, "version: print versions" },
    { "shard", cmd_shard, "shard ROOM_ID SHARDS: the input shard of a room" },
    MATRIXCTL_PROTOCOL_COMMANDS
    { NULL, NULL, NULL }
};


int
main(int argc, char **argv)
{
    const matrixctl_cmd_t  *c;

    if (mx_sign_init() != 0) {
        fprintf(stderr, "matrixctl: cannot initialise libsodium\n");
        return 1;
    }

    if (argc >= 2) {
        for (c = ctl_commands; c->name; c++) {
            if (strcmp(argv[1], c->name) == 0) {
                return c->run(argc - 1, argv + 1);
            }
        }
    }

    fprintf(stderr, "usage: matrixctl <command> [arguments]\n\ncommands:\n");
    for (c = ctl_commands; c->name; c++) {
        fprintf(stderr, "  %s\n", c->help);
    }

    return 2;
}

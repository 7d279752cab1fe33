/*
 * mxw_config: the daemons read their settings from nginx.conf itself.
 *
 * Only what the daemons need is understood: words, quoted strings, comments,
 * blocks, and "include" (relative to the directory of the main file, with
 * globs, as nginx resolves them).  Directives named matrix_* directly inside
 * http { } are collected; everything else is skipped.  nginx validates the
 * same file with `nginx -t`, so a setting the daemons read has also passed
 * nginx's own checks.
 */

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>

#include "mxw.h"


#define MXW_MAX_ARGS     16
#define MXW_MAX_DEPTH    16
#define MXW_MAX_INCLUDE  8


typedef struct {
    mxw_config_t  *cf;
    char          *err;
    size_t         err_len;
    int            http[MXW_MAX_DEPTH];    /* which blocks are http { } */
    int            depth;
    int            includes;
} mxw_parse_t;


static int mxw_parse_file(mxw_parse_t *ps, const char *path);


static int
mxw_fail(mxw_parse_t *ps, const char *file, int line, const char *fmt,
    const char *arg)
{
    char  msg[512];

    snprintf(msg, sizeof(msg), fmt, arg);
    snprintf(ps->err, ps->err_len, "%s:%d: %s", file, line, msg);
    return -1;
}


static char *
mxw_read_file(const char *path, size_t *len)
{
    FILE    *f;
    char    *buf;
    long     size;

    f = fopen(path, "r");
    if (f == NULL) {
        return NULL;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fclose(f);
        return NULL;
    }

    buf = malloc((size_t) size + 1);
    if (buf == NULL) {
        fclose(f);
        return NULL;
    }

    if (fread(buf, 1, (size_t) size, f) != (size_t) size) {
        free(buf);
        fclose(f);
        return NULL;
    }

    buf[size] = '\0';
    *len = (size_t) size;
    fclose(f);

    return buf;
}


/* dir/name, or name when it is absolute; -1 when it does not fit */

static int
mxw_join_path(char *out, size_t size, const char *dir, const char *name)
{
    size_t  dlen, nlen;

    nlen = strlen(name);

    if (name[0] == '/') {
        if (nlen >= size) {
            return -1;
        }
        memcpy(out, name, nlen + 1);
        return 0;
    }

    dlen = strlen(dir);
    if (dlen + 1 + nlen >= size) {
        return -1;
    }

    memcpy(out, dir, dlen);
    out[dlen] = '/';
    memcpy(out + dlen + 1, name, nlen + 1);

    return 0;
}


static int
mxw_in_http(mxw_parse_t *ps)
{
    return ps->depth == 1 && ps->http[0];
}


static int
mxw_directive(mxw_parse_t *ps, const char *file, int line, char **args,
    int nargs)
{
    mxw_config_t     *cf;
    mxw_directive_t  *d;
    size_t            len;
    int               i;
    char             *p;
    glob_t            g;
    char              pattern[PATH_MAX];
    size_t            k;

    cf = ps->cf;

    if (strcmp(args[0], "include") == 0) {
        if (nargs != 2) {
            return mxw_fail(ps, file, line, "%s takes one argument",
                            "include");
        }

        if (++ps->includes > 64 * MXW_MAX_INCLUDE) {
            return mxw_fail(ps, file, line, "%s", "too many includes");
        }

        if (mxw_join_path(pattern, sizeof(pattern), cf->prefix, args[1])) {
            return mxw_fail(ps, file, line, "%s", "include path too long");
        }

        if (strpbrk(pattern, "*?[") == NULL) {
            return mxw_parse_file(ps, pattern);
        }

        if (glob(pattern, 0, NULL, &g) != 0) {
            return 0;       /* nginx accepts a glob that matches nothing */
        }

        for (k = 0; k < g.gl_pathc; k++) {
            if (mxw_parse_file(ps, g.gl_pathv[k]) != 0) {
                globfree(&g);
                return -1;
            }
        }

        globfree(&g);
        return 0;
    }

    if (!mxw_in_http(ps) || strncmp(args[0], "matrix_", 7) != 0) {
        return 0;
    }

    for (i = 0; i < cf->n; i++) {
        if (strcmp(cf->d[i].name, args[0]) == 0) {
            return mxw_fail(ps, file, line, "\"%s\" directive is duplicate",
                            args[0]);
        }
    }

    if (cf->n == MXW_CONF_MAX) {
        return mxw_fail(ps, file, line, "%s", "too many matrix_* directives");
    }

    len = 0;
    for (i = 1; i < nargs; i++) {
        len += strlen(args[i]) + 1;
    }

    d = &cf->d[cf->n];
    d->name = strdup(args[0]);
    d->value = malloc(len + 1);
    d->file = strdup(file);
    d->line = line;

    if (d->name == NULL || d->value == NULL || d->file == NULL) {
        return mxw_fail(ps, file, line, "%s", "out of memory");
    }

    p = d->value;
    *p = '\0';

    for (i = 1; i < nargs; i++) {
        if (i > 1) {
            *p++ = ' ';
        }
        len = strlen(args[i]);
        memcpy(p, args[i], len + 1);
        p += len;
    }

    cf->n++;
    return 0;
}


/*
 * The tokenizer: a word ends at whitespace, ';', '{' or '}'; quotes group
 * and a backslash escapes the next character.  Words are copied, unquoted,
 * into words (as large as the text), so the text itself stays intact.
 */

static int
mxw_parse_text(mxw_parse_t *ps, const char *file, const char *p, char *words)
{
    char   *args[MXW_MAX_ARGS], *out, quote;
    int     nargs, line, depth0, rc;

    nargs = 0;
    line = 1;
    depth0 = ps->depth;
    out = words;

    for ( ;; ) {

        while (*p && isspace((unsigned char) *p)) {
            if (*p == '\n') {
                line++;
            }
            p++;
        }

        if (*p == '\0') {
            break;
        }

        if (*p == '#') {
            while (*p && *p != '\n') {
                p++;
            }
            continue;
        }

        if (*p == ';' || *p == '{') {
            if (nargs == 0) {
                return mxw_fail(ps, file, line, "unexpected \"%s\"",
                                *p == ';' ? ";" : "{");
            }

            if (*p == ';') {
                rc = mxw_directive(ps, file, line, args, nargs);
                if (rc != 0) {
                    return rc;
                }

            } else {
                if (ps->depth == MXW_MAX_DEPTH) {
                    return mxw_fail(ps, file, line, "%s", "nested too deep");
                }
                ps->http[ps->depth++] = (strcmp(args[0], "http") == 0);
            }

            nargs = 0;
            out = words;
            p++;
            continue;
        }

        if (*p == '}') {
            if (nargs || ps->depth == depth0) {
                return mxw_fail(ps, file, line, "unexpected \"%s\"", "}");
            }

            ps->depth--;
            p++;
            continue;
        }

        if (nargs == MXW_MAX_ARGS) {
            return mxw_fail(ps, file, line, "%s", "too many arguments");
        }

        args[nargs++] = out;
        quote = 0;

        if (*p == '"' || *p == '\'') {
            quote = *p++;
        }

        for ( ;; ) {
            if (*p == '\0') {
                if (quote) {
                    return mxw_fail(ps, file, line, "%s",
                                    "unterminated string");
                }
                break;
            }

            if (quote) {
                if (*p == quote) {
                    p++;
                    break;
                }

            } else if (isspace((unsigned char) *p) || *p == ';' || *p == '{'
                       || *p == '}')
            {
                break;
            }

            if (*p == '\\' && p[1]) {
                p++;
            }

            if (*p == '\n') {
                line++;
            }

            *out++ = *p++;
        }

        *out++ = '\0';
    }

    if (nargs) {
        return mxw_fail(ps, file, line, "%s", "unexpected end of file");
    }

    if (ps->depth != depth0) {
        return mxw_fail(ps, file, line, "%s",
                        "unexpected end of file, expecting \"}\"");
    }

    return 0;
}


static int
mxw_parse_file(mxw_parse_t *ps, const char *path)
{
    char    *text, *words;
    size_t   len;
    int      rc;

    text = mxw_read_file(path, &len);
    if (text == NULL) {
        snprintf(ps->err, ps->err_len, "cannot read \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }

    if (memchr(text, '\0', len)) {
        free(text);
        snprintf(ps->err, ps->err_len, "\"%s\" holds a NUL byte", path);
        return -1;
    }

    words = malloc(len * 2 + 2);
    if (words == NULL) {
        free(text);
        snprintf(ps->err, ps->err_len, "out of memory");
        return -1;
    }

    rc = mxw_parse_text(ps, path, text, words);

    free(words);
    free(text);

    return rc;
}


void
mxw_config_free(mxw_config_t *cf)
{
    int  i;

    for (i = 0; i < cf->n; i++) {
        free(cf->d[i].name);
        free(cf->d[i].value);
        free(cf->d[i].file);
    }

    cf->n = 0;
    cf->server_name = NULL;
}


const char *
mxw_config_get(const mxw_config_t *cf, const char *name)
{
    int  i;

    for (i = 0; i < cf->n; i++) {
        if (strcmp(cf->d[i].name, name) == 0) {
            return cf->d[i].value;
        }
    }

    return NULL;
}


int
mxw_parse_time_ms(const char *s, int64_t *ms)
{
    char      *end;
    long long  v;
    int64_t    total;

    if (*s == '\0') {
        return -1;
    }

    total = 0;

    while (*s) {
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || end == s || v < 0) {
            return -1;
        }

        s = end;

        if (strncmp(s, "ms", 2) == 0) {
            s += 2;
        } else if (*s == 's' || *s == '\0') {
            v *= 1000;
            s += *s ? 1 : 0;
        } else if (*s == 'm') {
            v *= 60000;
            s++;
        } else if (*s == 'h') {
            v *= 3600000;
            s++;
        } else if (*s == 'd') {
            v *= 86400000;
            s++;
        } else {
            return -1;
        }

        total += v;
    }

    *ms = total;
    return 0;
}


/* the same rules as the module's matrix_redis: host:port, [v6]:port, unix: */

static int
mxw_config_redis(mxw_config_t *cf, const char *v, char *err, size_t err_len)
{
    const char  *colon;
    size_t       hlen;
    long         port;
    char        *end;

    if (strncmp(v, "unix:", 5) == 0) {
        if (v[5] == '\0' || strlen(v + 5) >= sizeof(cf->redis_path)) {
            snprintf(err, err_len, "invalid redis address \"%s\"", v);
            return -1;
        }

        cf->redis_host[0] = '\0';
        cf->redis_port = 0;
        snprintf(cf->redis_path, sizeof(cf->redis_path), "%s", v + 5);
        return 0;
    }

    if (v[0] == '[') {
        colon = strchr(v, ']');
        if (colon == NULL) {
            snprintf(err, err_len, "invalid redis address \"%s\"", v);
            return -1;
        }
        hlen = (size_t) (colon - v - 1);
        v++;
        colon = colon[1] == ':' ? colon + 1 : NULL;

    } else {
        colon = strrchr(v, ':');
        hlen = colon ? (size_t) (colon - v) : strlen(v);
    }

    if (hlen == 0 || hlen >= sizeof(cf->redis_host)) {
        snprintf(err, err_len, "invalid redis address \"%s\"", v);
        return -1;
    }

    memcpy(cf->redis_host, v, hlen);
    cf->redis_host[hlen] = '\0';
    cf->redis_port = 6379;

    if (colon) {
        port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535) {
            snprintf(err, err_len, "invalid redis port in \"%s\"", v);
            return -1;
        }
        cf->redis_port = (int) port;
    }

    return 0;
}


static int
mxw_config_read(mxw_config_t *cf, const char *path, char *err,
    size_t err_len)
{
    mxw_parse_t   ps;
    const char   *v;
    char         *slash;
    int64_t       ms;

    if (realpath(path, cf->path) == NULL) {
        snprintf(err, err_len, "cannot find \"%s\": %s", path,
                 strerror(errno));
        return -1;
    }

    snprintf(cf->prefix, sizeof(cf->prefix), "%s", cf->path);
    slash = strrchr(cf->prefix, '/');
    if (slash) {
        *slash = '\0';
    }

    memset(&ps, 0, sizeof(ps));
    ps.cf = cf;
    ps.err = err;
    ps.err_len = err_len;

    if (mxw_parse_file(&ps, cf->path) != 0) {
        return -1;
    }

    cf->server_name = mxw_config_get(cf, "matrix_server_name");
    if (cf->server_name == NULL) {
        snprintf(err, err_len, "%s: \"matrix_server_name\" is not set in the"
                 " http block", cf->path);
        return -1;
    }

    v = mxw_config_get(cf, "matrix_redis");
    if (mxw_config_redis(cf, v ? v : "127.0.0.1:6379", err, err_len) != 0) {
        return -1;
    }

    cf->redis_timeout_ms = 5000;
    v = mxw_config_get(cf, "matrix_redis_timeout");
    if (v) {
        if (mxw_parse_time_ms(v, &ms) != 0 || ms <= 0 || ms > 3600000) {
            snprintf(err, err_len, "invalid matrix_redis_timeout \"%s\"", v);
            return -1;
        }
        cf->redis_timeout_ms = (int) ms;
    }

    v = mxw_config_get(cf, "matrix_signing_key");
    if (v && mxw_join_path(cf->signing_key, sizeof(cf->signing_key),
                           cf->prefix, v) != 0)
    {
        snprintf(err, err_len, "matrix_signing_key path too long");
        return -1;
    }

    return 0;
}


int
mxw_config_load(mxw_config_t *cf, const char *path, char *err,
    size_t err_len)
{
    memset(cf, 0, sizeof(*cf));

    if (mxw_config_read(cf, path, err, err_len) != 0) {
        mxw_config_free(cf);
        return -1;
    }

    return 0;
}

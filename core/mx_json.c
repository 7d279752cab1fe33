/*
 * mx_json: tree, parser (on yajl's callbacks) and the one canonical writer.
 * See mx_json.h for the rules.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "mx_json.h"


/*
 * Parsing.
 *
 * yajl calls back once per token; a stack of open containers turns the
 * tokens into a tree.  Object members are appended as they come and sorted
 * when the object closes, which is also where duplicate keys show up (as
 * neighbours).
 */

typedef struct {
    mx_pool_t        *pool;
    mx_json_t        *root;
    mx_json_t        *stack[MX_JSON_MAX_DEPTH];
    size_t            depth;
    const char       *key;        /* pending member key of the top object */
    size_t            key_len;
    mx_json_err_t     code;
    char              why[120];
} mx_json_parser_t;


static int mx_json_reserve(mx_pool_t *pool, void **items, size_t *cap,
    size_t n, size_t size);


const char *
mx_json_type_name(mx_json_type_t type)
{
    static const char  *names[] = {
        "null", "boolean", "boolean", "integer", "number", "string",
        "array", "object"
    };

    return (size_t) type < sizeof(names) / sizeof(names[0])
           ? names[type] : "unknown";
}


int
mx_utf8_valid(const char *s, size_t len)
{
    const unsigned char  *p, *end;
    unsigned              c, n, cp, min;

    p = (const unsigned char *) s;
    end = p + len;

    while (p < end) {
        c = *p++;

        if (c < 0x80) {
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1; cp = c & 0x1f; min = 0x80;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2; cp = c & 0x0f; min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3; cp = c & 0x07; min = 0x10000;

        } else {
            return 0;
        }

        if ((size_t) (end - p) < n) {
            return 0;
        }

        while (n--) {
            c = *p++;
            if ((c & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (c & 0x3f);
        }

        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
    }

    return 1;
}


static int
mx_hex4(const char *p, unsigned *out)
{
    unsigned  v, i, c;

    v = 0;

    for (i = 0; i < 4; i++) {
        c = (unsigned char) p[i];

        if (c >= '0' && c <= '9') {
            c -= '0';
        } else if (c >= 'a' && c <= 'f') {
            c -= 'a' - 10;
        } else if (c >= 'A' && c <= 'F') {
            c -= 'A' - 10;
        } else {
            return -1;
        }

        v = (v << 4) | c;
    }

    *out = v;
    return 0;
}


/*
 * yajl turns an unpaired high surrogate escape into '?' and pairs a high
 * surrogate with whatever \u escape follows it.  Both would silently change
 * a signed string, so surrogate escapes are checked in the raw text before
 * yajl sees it.  Returns the offset of the first bad escape, or -1.
 */

static ssize_t
mx_json_check_surrogates(const char *text, size_t len)
{
    size_t    i;
    int       in_string;
    unsigned  cp, lo;

    if (memmem(text, len, "\\u", 2) == NULL) {
        return -1;
    }

    in_string = 0;

    for (i = 0; i < len; i++) {

        if (!in_string) {
            if (text[i] == '"') {
                in_string = 1;
            }
            continue;
        }

        if (text[i] == '"') {
            in_string = 0;
            continue;
        }

        if (text[i] != '\\' || i + 1 >= len) {
            continue;
        }

        i++;

        if (text[i] != 'u' || i + 4 >= len || mx_hex4(&text[i + 1], &cp)) {
            continue;     /* yajl reports malformed escapes itself */
        }

        i += 4;

        if (cp >= 0xdc00 && cp <= 0xdfff) {
            return (ssize_t) i;
        }

        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (i + 6 >= len || text[i + 1] != '\\' || text[i + 2] != 'u'
                || mx_hex4(&text[i + 3], &lo) || lo < 0xdc00 || lo > 0xdfff)
            {
                return (ssize_t) i;
            }

            i += 6;
        }
    }

    return -1;
}


static int
mx_json_fail(mx_json_parser_t *ps, mx_json_err_t code, const char *why)
{
    ps->code = code;
    snprintf(ps->why, sizeof(ps->why), "%s", why);
    return 0;
}


/* attach a finished value to the open container, or make it the root */

static int
mx_json_add(mx_json_parser_t *ps, mx_json_t *v)
{
    mx_json_t         *top;
    mx_json_member_t  *m;

    if (v == NULL) {
        return mx_json_fail(ps, MX_JSON_ENOMEM, "out of memory");
    }

    if (ps->depth == 0) {
        ps->root = v;
        return 1;
    }

    top = ps->stack[ps->depth - 1];

    if (top->type == MX_JSON_ARRAY) {
        if (mx_json_reserve(ps->pool, (void **) &top->u.a.v, &top->u.a.cap,
                            top->u.a.n + 1, sizeof(mx_json_t *)))
        {
            return mx_json_fail(ps, MX_JSON_ENOMEM, "out of memory");
        }

        top->u.a.v[top->u.a.n++] = v;
        return 1;
    }

    if (mx_json_reserve(ps->pool, (void **) &top->u.o.m, &top->u.o.cap,
                        top->u.o.n + 1, sizeof(mx_json_member_t)))
    {
        return mx_json_fail(ps, MX_JSON_ENOMEM, "out of memory");
    }

    m = &top->u.o.m[top->u.o.n++];
    m->key = ps->key;
    m->key_len = ps->key_len;
    m->value = v;

    return 1;
}


static int
mx_json_cb_null(void *ctx)
{
    mx_json_parser_t  *ps = ctx;

    return mx_json_add(ps, mx_json_null(ps->pool));
}


static int
mx_json_cb_boolean(void *ctx, int b)
{
    mx_json_parser_t  *ps = ctx;

    return mx_json_add(ps, mx_json_bool(ps->pool, b));
}


/*
 * A number arrives as its text.  Plain integers that fit in int64 are exact.
 * Other spellings go through strtod and become integers when integral, which
 * is how 1e10 and -0 come out as 10000000000 and 0.
 */

static int
mx_json_cb_number(void *ctx, const char *s, size_t len)
{
    mx_json_parser_t  *ps = ctx;
    mx_json_t         *v;
    char               small[64], *buf, *end;
    long long          ll;
    double             d;

    buf = len < sizeof(small) ? small : mx_palloc(ps->pool, len + 1);
    if (buf == NULL) {
        return mx_json_fail(ps, MX_JSON_ENOMEM, "out of memory");
    }

    memcpy(buf, s, len);
    buf[len] = '\0';

    v = mx_palloc(ps->pool, sizeof(mx_json_t));
    if (v == NULL) {
        return mx_json_fail(ps, MX_JSON_ENOMEM, "out of memory");
    }

    if (strpbrk(buf, ".eE") == NULL) {
        errno = 0;
        ll = strtoll(buf, &end, 10);

        if (errno == 0 && *end == '\0') {
            v->type = MX_JSON_INT;
            v->u.i = ll;
            return mx_json_add(ps, v);
        }

        /* too big for int64: keep the digits */
        v->type = MX_JSON_FLOAT;
        v->u.num.f = strtod(buf, NULL);
        v->u.num.digits = mx_pstrndup(ps->pool, buf, len);
        if (v->u.num.digits == NULL) {
            return mx_json_fail(ps, MX_JSON_ENOMEM, "out of memory");
        }

        return mx_json_add(ps, v);
    }

    d = strtod(buf, &end);

    if (!isfinite(d)) {
        return mx_json_fail(ps, MX_JSON_ENUMBER, "number out of range");
    }

    if (d == floor(d) && d >= -9223372036854775808.0
        && d < 9223372036854775808.0)
    {
        v->type = MX_JSON_INT;
        v->u.i = (int64_t) d;       /* -0.0 becomes 0 */
        return mx_json_add(ps, v);
    }

    v->type = MX_JSON_FLOAT;
    v->u.num.f = d;
    v->u.num.digits = NULL;

    return mx_json_add(ps, v);
}


static int
mx_json_cb_string(void *ctx, const unsigned char *s, size_t len)
{
    mx_json_parser_t  *ps = ctx;

    if (!mx_utf8_valid((const char *) s, len)) {
        return mx_json_fail(ps, MX_JSON_EUTF8, "invalid UTF-8 in a string");
    }

    return mx_json_add(ps, mx_json_strn(ps->pool, (const char *) s, len));
}


static int
mx_json_open(mx_json_parser_t *ps, mx_json_t *v)
{
    if (v == NULL) {
        return mx_json_fail(ps, MX_JSON_ENOMEM, "out of memory");
    }

    if (ps->depth == MX_JSON_MAX_DEPTH) {
        return mx_json_fail(ps, MX_JSON_EDEPTH, "nested too deeply");
    }

    if (!mx_json_add(ps, v)) {
        return 0;
    }

    ps->stack[ps->depth++] = v;
    return 1;
}


static int
mx_json_cb_start_map(void *ctx)
{
    mx_json_parser_t  *ps = ctx;

    return mx_json_open(ps, mx_json_object(ps->pool));
}


static int
mx_json_cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    mx_json_parser_t  *ps = ctx;

    if (!mx_utf8_valid((const char *) key, len)) {
        return mx_json_fail(ps, MX_JSON_EUTF8, "invalid UTF-8 in a key");
    }

    ps->key = mx_pstrndup(ps->pool, (const char *) key, len);
    if (ps->key == NULL) {
        return mx_json_fail(ps, MX_JSON_ENOMEM, "out of memory");
    }

    ps->key_len = len;
    return 1;
}


static int
mx_json_keycmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int  rc;

    rc = memcmp(a, b, alen < blen ? alen : blen);
    if (rc != 0) {
        return rc;
    }

    return (alen > blen) - (alen < blen);
}


static int
mx_json_member_cmp(const void *a, const void *b)
{
    const mx_json_member_t  *ma = a, *mb = b;

    return mx_json_keycmp(ma->key, ma->key_len, mb->key, mb->key_len);
}


static int
mx_json_cb_end_map(void *ctx)
{
    mx_json_parser_t  *ps = ctx;
    mx_json_t         *obj;
    size_t             i;

    obj = ps->stack[--ps->depth];

    if (obj->u.o.n > 1) {
        qsort(obj->u.o.m, obj->u.o.n, sizeof(mx_json_member_t),
              mx_json_member_cmp);

        for (i = 1; i < obj->u.o.n; i++) {
            if (mx_json_member_cmp(&obj->u.o.m[i - 1], &obj->u.o.m[i]) == 0) {
                ps->code = MX_JSON_EDUPKEY;
                snprintf(ps->why, sizeof(ps->why), "duplicate key \"%.60s\"",
                         obj->u.o.m[i].key);
                return 0;
            }
        }
    }

    return 1;
}


static int
mx_json_cb_start_array(void *ctx)
{
    mx_json_parser_t  *ps = ctx;

    return mx_json_open(ps, mx_json_array(ps->pool));
}


static int
mx_json_cb_end_array(void *ctx)
{
    mx_json_parser_t  *ps = ctx;

    ps->depth--;
    return 1;
}


static const yajl_callbacks  mx_json_callbacks = {
    mx_json_cb_null,
    mx_json_cb_boolean,
    NULL,
    NULL,
    mx_json_cb_number,
    mx_json_cb_string,
    mx_json_cb_start_map,
    mx_json_cb_map_key,
    mx_json_cb_end_map,
    mx_json_cb_start_array,
    mx_json_cb_end_array
};


static void
mx_json_set_error(mx_json_error_t *err, mx_json_err_t code, size_t offset,
    const char *msg)
{
    if (err == NULL) {
        return;
    }

    err->code = code;
    err->offset = offset;
    snprintf(err->msg, sizeof(err->msg), "%s", msg);
}


mx_json_t *
mx_json_parse(mx_pool_t *pool, const char *text, size_t len,
    mx_json_error_t *err)
{
    mx_json_parser_t   ps;
    yajl_handle        h;
    yajl_status        st;
    ssize_t            bad;
    size_t             at;
    unsigned char     *ymsg;
    char               msg[160];

    bad = mx_json_check_surrogates(text, len);
    if (bad >= 0) {
        mx_json_set_error(err, MX_JSON_EUTF8, (size_t) bad,
                          "unpaired UTF-16 surrogate in a \\u escape");
        return NULL;
    }

    memset(&ps, 0, sizeof(ps));
    ps.pool = pool;

    h = yajl_alloc(&mx_json_callbacks, NULL, &ps);
    if (h == NULL) {
        mx_json_set_error(err, MX_JSON_ENOMEM, 0, "out of memory");
        return NULL;
    }

    /* strings are checked with the stricter mx_utf8_valid() */
    yajl_config(h, yajl_dont_validate_strings, 1);

    st = yajl_parse(h, (const unsigned char *) text, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    if (st == yajl_status_ok) {
        yajl_free(h);
        if (err) {
            err->code = MX_JSON_OK;
            err->offset = len;
            err->msg[0] = '\0';
        }
        return ps.root;
    }

    at = yajl_get_bytes_consumed(h);

    if (st == yajl_status_client_canceled) {
        mx_json_set_error(err, ps.code, at, ps.why);

    } else {
        ymsg = yajl_get_error(h, 0, (const unsigned char *) text, len);
        snprintf(msg, sizeof(msg), "%s",
                 ymsg ? (const char *) ymsg : "syntax error");
        if (ymsg) {
            yajl_free_error(h, ymsg);
        }
        mx_json_set_error(err, MX_JSON_ESYNTAX, at, msg);
    }

    yajl_free(h);
    return NULL;
}


/*
 * Writing.  One function walks the tree for both passes: with out == NULL it
 * only counts.  Returns the number of bytes, or -1 if the tree holds a value
 * the flags forbid.
 */

/*
 * A non-integral double the way Python's repr() writes it: the shortest
 * digits that read back to the same double, positional notation for decimal
 * exponents in [-4, 16), scientific ("1e-05", "1.5e+300") otherwise.
 */

static size_t
mx_json_format_double(double d, char *out)
{
    char    tmp[40], digits[24], *p, *e;
    int     prec, exp, nd, i, k;
    size_t  n;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) {
            break;
        }
    }

    /* tmp is [-]d[.ddd]e[+-]xx */
    p = tmp;
    n = 0;

    if (*p == '-') {
        out[n++] = '-';
        p++;
    }

    nd = 0;
    for ( /* void */ ; *p != 'e'; p++) {
        if (*p != '.') {
            digits[nd++] = *p;
        }
    }

    exp = (int) strtol(p + 1, &e, 10);

    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }

    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            out[n++] = '0';
            out[n++] = '.';
            for (i = -1; i > exp; i--) {
                out[n++] = '0';
            }
            for (i = 0; i < nd; i++) {
                out[n++] = digits[i];
            }

        } else {
            for (i = 0; i <= exp; i++) {
                out[n++] = i < nd ? digits[i] : '0';
            }
            out[n++] = '.';
            if (nd > exp + 1) {
                for (i = exp + 1; i < nd; i++) {
                    out[n++] = digits[i];
                }
            } else {
                out[n++] = '0';
            }
        }

        return n;
    }

    out[n++] = digits[0];
    if (nd > 1) {
        out[n++] = '.';
        for (i = 1; i < nd; i++) {
            out[n++] = digits[i];
        }
    }

    k = snprintf(out + n, 8, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    return n + (size_t) k;
}


/* per byte: 0 written as is, else the escape character ('u': \u00xx) */
static const char  mx_json_escape[256] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    'u', 'u', 'u', 'u',
    ['"'] = '"', ['\\'] = '\\'
};


size_t
mx_json_write_str(const char *s, size_t len, char *out)
{
    static const char      hex[] = "0123456789abcdef";
    const unsigned char   *p, *end, *run;
    size_t                 n;
    char                   esc;

    p = (const unsigned char *) s;
    end = p + len;
    n = 2;

    if (out) {
        *out++ = '"';
    }

    for ( ;; ) {
        /* a run of bytes that need no escape, copied at once */
        run = p;
        while (p < end && mx_json_escape[*p] == 0) {
            p++;
        }

        n += (size_t) (p - run);
        if (out) {
            memcpy(out, run, (size_t) (p - run));
            out += p - run;
        }

        if (p == end) {
            break;
        }

        esc = mx_json_escape[*p];

        if (esc != 'u') {
            n += 2;
            if (out) {
                *out++ = '\\';
                *out++ = esc;
            }

        } else {
            n += 6;
            if (out) {
                *out++ = '\\';
                *out++ = 'u';
                *out++ = '0';
                *out++ = '0';
                *out++ = hex[*p >> 4];
                *out++ = hex[*p & 0xf];
            }
        }

        p++;
    }

    if (out) {
        *out = '"';
    }

    return n;
}


static ssize_t
mx_json_walk(const mx_json_t *v, unsigned flags, char *out)
{
    char     num[48];
    size_t   n, i;
    ssize_t  sub;

    switch (v->type) {

    case MX_JSON_NULL:
        if (out) {
            memcpy(out, "null", 4);
        }
        return 4;

    case MX_JSON_TRUE:
        if (out) {
            memcpy(out, "true", 4);
        }
        return 4;

    case MX_JSON_FALSE:
        if (out) {
            memcpy(out, "false", 5);
        }
        return 5;

    case MX_JSON_INT:
        if ((flags & MX_JSON_STRICT)
            && (v->u.i > MX_JSON_MAX_SAFE_INT
                || v->u.i < -MX_JSON_MAX_SAFE_INT))
        {
            return -1;
        }

        n = (size_t) snprintf(num, sizeof(num), "%lld", (long long) v->u.i);
        if (out) {
            memcpy(out, num, n);
        }
        return (ssize_t) n;

    case MX_JSON_FLOAT:
        if (flags & MX_JSON_STRICT) {
            return -1;
        }

        if (v->u.num.digits) {
            n = strlen(v->u.num.digits);
            if (out) {
                memcpy(out, v->u.num.digits, n);
            }
            return (ssize_t) n;
        }

        n = mx_json_format_double(v->u.num.f, num);
        if (out) {
            memcpy(out, num, n);
        }
        return (ssize_t) n;

    case MX_JSON_STRING:
        return (ssize_t) mx_json_write_str(v->u.s.p, v->u.s.len, out);

    case MX_JSON_ARRAY:
        n = 1;
        if (out) {
            out[0] = '[';
        }

        for (i = 0; i < v->u.a.n; i++) {
            if (i) {
                if (out) {
                    out[n] = ',';
                }
                n++;
            }

            sub = mx_json_walk(v->u.a.v[i], flags, out ? out + n : NULL);
            if (sub < 0) {
                return -1;
            }
            n += (size_t) sub;
        }

        if (out) {
            out[n] = ']';
        }
        return (ssize_t) n + 1;

    case MX_JSON_OBJECT:
        n = 1;
        if (out) {
            out[0] = '{';
        }

        for (i = 0; i < v->u.o.n; i++) {
            if (i) {
                if (out) {
                    out[n] = ',';
                }
                n++;
            }

            n += mx_json_write_str(v->u.o.m[i].key, v->u.o.m[i].key_len,
                                      out ? out + n : NULL);
            if (out) {
                out[n] = ':';
            }
            n++;

            sub = mx_json_walk(v->u.o.m[i].value, flags,
                               out ? out + n : NULL);
            if (sub < 0) {
                return -1;
            }
            n += (size_t) sub;
        }

        if (out) {
            out[n] = '}';
        }
        return (ssize_t) n + 1;
    }

    return -1;
}


ssize_t
mx_json_encoded_len(const mx_json_t *v, unsigned flags)
{
    return mx_json_walk(v, flags, NULL);
}


char *
mx_json_write(const mx_json_t *v, unsigned flags, char *out)
{
    ssize_t  n;

    n = mx_json_walk(v, flags, out);
    return n < 0 ? NULL : out + n;
}


char *
mx_json_encode(mx_pool_t *pool, const mx_json_t *v, unsigned flags,
    size_t *len)
{
    ssize_t   n;
    char     *out;

    n = mx_json_walk(v, flags, NULL);
    if (n < 0) {
        return NULL;
    }

    out = mx_palloc(pool, (size_t) n + 1);
    if (out == NULL) {
        return NULL;
    }

    mx_json_walk(v, flags, out);
    out[n] = '\0';

    if (len) {
        *len = (size_t) n;
    }

    return out;
}


char *
mx_json_canonicalize(mx_pool_t *pool, const char *text, size_t len,
    unsigned flags, size_t *out_len, mx_json_error_t *err)
{
    mx_json_t  *v;
    char       *out;

    v = mx_json_parse(pool, text, len, err);
    if (v == NULL) {
        return NULL;
    }

    out = mx_json_encode(pool, v, flags, out_len);
    if (out == NULL) {
        mx_json_set_error(err, MX_JSON_ENUMBER, 0,
                          "a number canonical JSON cannot hold: only integers"
                          " in [-(2^53-1), 2^53-1]");
    }

    return out;
}


/*
 * Building.
 */

static int
mx_json_reserve(mx_pool_t *pool, void **items, size_t *cap, size_t n,
    size_t size)
{
    size_t   ncap;
    void    *p;

    if (n <= *cap) {
        return 0;
    }

    ncap = *cap ? *cap * 2 : 4;
    while (ncap < n) {
        ncap *= 2;
    }

    p = mx_palloc(pool, ncap * size);
    if (p == NULL) {
        return -1;
    }

    if (*cap) {
        memcpy(p, *items, *cap * size);
    }

    *items = p;
    *cap = ncap;

    return 0;
}


static mx_json_t *
mx_json_new(mx_pool_t *pool, mx_json_type_t type)
{
    mx_json_t  *v;

    v = mx_pcalloc(pool, sizeof(mx_json_t));
    if (v) {
        v->type = type;
    }

    return v;
}


mx_json_t *
mx_json_null(mx_pool_t *pool)
{
    return mx_json_new(pool, MX_JSON_NULL);
}


mx_json_t *
mx_json_bool(mx_pool_t *pool, int b)
{
    return mx_json_new(pool, b ? MX_JSON_TRUE : MX_JSON_FALSE);
}


mx_json_t *
mx_json_int(mx_pool_t *pool, int64_t i)
{
    mx_json_t  *v;

    v = mx_json_new(pool, MX_JSON_INT);
    if (v) {
        v->u.i = i;
    }

    return v;
}


mx_json_t *
mx_json_float(mx_pool_t *pool, double f)
{
    mx_json_t  *v;

    if (f == floor(f) && f >= -9223372036854775808.0
        && f < 9223372036854775808.0)
    {
        return mx_json_int(pool, (int64_t) f);
    }

    v = mx_json_new(pool, MX_JSON_FLOAT);
    if (v) {
        v->u.num.f = f;
    }

    return v;
}


mx_json_t *
mx_json_strn(mx_pool_t *pool, const char *s, size_t len)
{
    mx_json_t  *v;

    v = mx_json_new(pool, MX_JSON_STRING);
    if (v == NULL) {
        return NULL;
    }

    v->u.s.p = mx_pstrndup(pool, s, len);
    if (v->u.s.p == NULL) {
        return NULL;
    }

    v->u.s.len = len;
    return v;
}


mx_json_t *
mx_json_str(mx_pool_t *pool, const char *s)
{
    return mx_json_strn(pool, s, strlen(s));
}


mx_json_t *
mx_json_array(mx_pool_t *pool)
{
    return mx_json_new(pool, MX_JSON_ARRAY);
}


mx_json_t *
mx_json_object(mx_pool_t *pool)
{
    return mx_json_new(pool, MX_JSON_OBJECT);
}


/* binary search: index of key, or -(insertion point) - 1 */

static ssize_t
mx_json_find(const mx_json_t *obj, const char *key, size_t len)
{
    size_t  lo, hi, mid;
    int     rc;

    lo = 0;
    hi = obj->u.o.n;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        rc = mx_json_keycmp(obj->u.o.m[mid].key, obj->u.o.m[mid].key_len,
                            key, len);
        if (rc == 0) {
            return (ssize_t) mid;
        }

        if (rc < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    return -(ssize_t) lo - 1;
}


int
mx_json_setn(mx_pool_t *pool, mx_json_t *obj, const char *key,
    size_t key_len, mx_json_t *value)
{
    ssize_t            at;
    size_t             i;
    mx_json_member_t  *m;
    const char        *k;

    if (value == NULL || obj == NULL || obj->type != MX_JSON_OBJECT) {
        return -1;
    }

    at = mx_json_find(obj, key, key_len);

    if (at >= 0) {
        obj->u.o.m[at].value = value;
        return 0;
    }

    k = mx_pstrndup(pool, key, key_len);
    if (k == NULL) {
        return -1;
    }

    if (mx_json_reserve(pool, (void **) &obj->u.o.m, &obj->u.o.cap,
                        obj->u.o.n + 1, sizeof(mx_json_member_t)))
    {
        return -1;
    }

    i = (size_t) (-at - 1);
    m = obj->u.o.m;

    memmove(&m[i + 1], &m[i], (obj->u.o.n - i) * sizeof(mx_json_member_t));
    m[i].key = k;
    m[i].key_len = key_len;
    m[i].value = value;
    obj->u.o.n++;

    return 0;
}


int
mx_json_set(mx_pool_t *pool, mx_json_t *obj, const char *key,
    mx_json_t *value)
{
    return mx_json_setn(pool, obj, key, strlen(key), value);
}


int
mx_json_set_str(mx_pool_t *pool, mx_json_t *obj, const char *key,
    const char *value)
{
    return mx_json_set(pool, obj, key, mx_json_str(pool, value));
}


int
mx_json_set_int(mx_pool_t *pool, mx_json_t *obj, const char *key,
    int64_t value)
{
    return mx_json_set(pool, obj, key, mx_json_int(pool, value));
}


int
mx_json_append(mx_pool_t *pool, mx_json_t *arr, mx_json_t *value)
{
    if (value == NULL || arr == NULL || arr->type != MX_JSON_ARRAY) {
        return -1;
    }

    if (mx_json_reserve(pool, (void **) &arr->u.a.v, &arr->u.a.cap,
                        arr->u.a.n + 1, sizeof(mx_json_t *)))
    {
        return -1;
    }

    arr->u.a.v[arr->u.a.n++] = value;
    return 0;
}


mx_json_t *
mx_json_remove(mx_json_t *obj, const char *key)
{
    ssize_t     at;
    size_t      i;
    mx_json_t  *old;

    if (obj == NULL || obj->type != MX_JSON_OBJECT) {
        return NULL;
    }

    at = mx_json_find(obj, key, strlen(key));
    if (at < 0) {
        return NULL;
    }

    i = (size_t) at;
    old = obj->u.o.m[i].value;

    memmove(&obj->u.o.m[i], &obj->u.o.m[i + 1],
            (obj->u.o.n - i - 1) * sizeof(mx_json_member_t));
    obj->u.o.n--;

    return old;
}


mx_json_t *
mx_json_clone(mx_pool_t *pool, const mx_json_t *v)
{
    mx_json_t  *c;
    size_t      i;

    c = mx_palloc(pool, sizeof(mx_json_t));
    if (c == NULL) {
        return NULL;
    }

    *c = *v;

    switch (v->type) {

    case MX_JSON_STRING:
        c->u.s.p = mx_pstrndup(pool, v->u.s.p, v->u.s.len);
        return c->u.s.p ? c : NULL;

    case MX_JSON_ARRAY:
        c->u.a.cap = v->u.a.n;
        if (v->u.a.n == 0) {
            c->u.a.v = NULL;
            return c;
        }

        c->u.a.v = mx_palloc(pool, v->u.a.n * sizeof(mx_json_t *));
        if (c->u.a.v == NULL) {
            return NULL;
        }

        for (i = 0; i < v->u.a.n; i++) {
            c->u.a.v[i] = mx_json_clone(pool, v->u.a.v[i]);
            if (c->u.a.v[i] == NULL) {
                return NULL;
            }
        }

        return c;

    case MX_JSON_OBJECT:
        c->u.o.cap = v->u.o.n;
        if (v->u.o.n == 0) {
            c->u.o.m = NULL;
            return c;
        }

        c->u.o.m = mx_palloc(pool, v->u.o.n * sizeof(mx_json_member_t));
        if (c->u.o.m == NULL) {
            return NULL;
        }

        for (i = 0; i < v->u.o.n; i++) {
            c->u.o.m[i].key_len = v->u.o.m[i].key_len;
            c->u.o.m[i].key = mx_pstrndup(pool, v->u.o.m[i].key,
                                          v->u.o.m[i].key_len);
            c->u.o.m[i].value = mx_json_clone(pool, v->u.o.m[i].value);
            if (c->u.o.m[i].key == NULL || c->u.o.m[i].value == NULL) {
                return NULL;
            }
        }

        return c;

    default:
        return c;
    }
}


mx_json_t *
mx_json_object_copy(mx_pool_t *pool, const mx_json_t *obj)
{
    mx_json_t  *c;

    if (obj == NULL || obj->type != MX_JSON_OBJECT) {
        return NULL;
    }

    c = mx_json_object(pool);
    if (c == NULL) {
        return NULL;
    }

    if (obj->u.o.n == 0) {
        return c;
    }

    c->u.o.m = mx_palloc(pool, obj->u.o.n * sizeof(mx_json_member_t));
    if (c->u.o.m == NULL) {
        return NULL;
    }

    memcpy(c->u.o.m, obj->u.o.m, obj->u.o.n * sizeof(mx_json_member_t));
    c->u.o.n = obj->u.o.n;
    c->u.o.cap = obj->u.o.n;

    return c;
}


/*
 * Lookups.
 */

mx_json_t *
mx_json_getn(const mx_json_t *obj, const char *key, size_t len)
{
    ssize_t  at;

    if (obj == NULL || obj->type != MX_JSON_OBJECT) {
        return NULL;
    }

    at = mx_json_find(obj, key, len);

    return at >= 0 ? obj->u.o.m[at].value : NULL;
}


mx_json_t *
mx_json_get(const mx_json_t *obj, const char *key)
{
    return mx_json_getn(obj, key, strlen(key));
}


const char *
mx_json_get_str(const mx_json_t *obj, const char *key, size_t *len)
{
    mx_json_t  *v;

    v = mx_json_get(obj, key);
    if (v == NULL || v->type != MX_JSON_STRING) {
        return NULL;
    }

    if (len) {
        *len = v->u.s.len;
    }

    return v->u.s.p;
}


int
mx_json_get_int(const mx_json_t *obj, const char *key, int64_t *out)
{
    mx_json_t  *v;

    v = mx_json_get(obj, key);
    if (v == NULL || v->type != MX_JSON_INT) {
        return -1;
    }

    *out = v->u.i;
    return 0;
}


mx_json_t *
mx_json_get_obj(const mx_json_t *obj, const char *key)
{
    mx_json_t  *v;

    v = mx_json_get(obj, key);
    return mx_json_is(v, MX_JSON_OBJECT) ? v : NULL;
}


mx_json_t *
mx_json_get_arr(const mx_json_t *obj, const char *key)
{
    mx_json_t  *v;

    v = mx_json_get(obj, key);
    return mx_json_is(v, MX_JSON_ARRAY) ? v : NULL;
}


int
mx_json_equal(const mx_json_t *a, const mx_json_t *b)
{
    size_t  i;

    if (a->type != b->type) {
        return 0;
    }

    switch (a->type) {

    case MX_JSON_INT:
        return a->u.i == b->u.i;

    case MX_JSON_FLOAT:
        return a->u.num.f == b->u.num.f;

    case MX_JSON_STRING:
        return a->u.s.len == b->u.s.len
               && memcmp(a->u.s.p, b->u.s.p, a->u.s.len) == 0;

    case MX_JSON_ARRAY:
        if (a->u.a.n != b->u.a.n) {
            return 0;
        }
        for (i = 0; i < a->u.a.n; i++) {
            if (!mx_json_equal(a->u.a.v[i], b->u.a.v[i])) {
                return 0;
            }
        }
        return 1;

    case MX_JSON_OBJECT:
        if (a->u.o.n != b->u.o.n) {
            return 0;
        }
        for (i = 0; i < a->u.o.n; i++) {
            if (mx_json_keycmp(a->u.o.m[i].key, a->u.o.m[i].key_len,
                               b->u.o.m[i].key, b->u.o.m[i].key_len) != 0
                || !mx_json_equal(a->u.o.m[i].value, b->u.o.m[i].value))
            {
                return 0;
            }
        }
        return 1;

    default:
        return 1;
    }
}

/*
 * mx_server_name: server names as discovery reads them, the .well-known
 * body, Cache-Control's max-age and the order of SRV targets.
 */

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "mx_ids.h"
#include "mx_json.h"
#include "mx_server_name.h"


int
mx_server_name_parse(const char *s, size_t len, mx_server_name_t *out)
{
    const char     *host, *port, *end;
    size_t          hlen, plen, i;
    unsigned long   p;
    unsigned char   addr[16];

    if (!mx_server_name_valid(s, len)) {
        return -1;
    }

    end = s + len;

    if (s[0] == '[') {
        host = s + 1;
        hlen = (size_t) ((const char *) memchr(s, ']', len) - host);
        port = host + hlen + 1;
        out->type = MX_HOST_IPV6;

    } else {
        host = s;
        port = memchr(s, ':', len);
        hlen = port ? (size_t) (port - s) : len;
        port = port ? port : end;
        out->type = MX_HOST_NAME;
    }

    if (hlen > MX_HOST_MAX) {
        return -1;
    }

    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';

    if (out->type == MX_HOST_IPV6) {
        if (inet_pton(AF_INET6, out->host, addr) != 1) {
            return -1;
        }

    } else if (inet_pton(AF_INET, out->host, addr) == 1) {
        /* 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT */
        out->type = MX_HOST_IPV4;
    }

    out->port = 0;

    if (port == end) {
        return 0;
    }

    /* ":" 1*5DIGIT, checked by mx_server_name_valid(); 1 to 65535 */
    plen = (size_t) (end - port - 1);
    p = 0;

    for (i = 0; i < plen; i++) {
        p = p * 10 + (unsigned long) (port[1 + i] - '0');
    }

    if (p == 0 || p > 65535) {
        return -1;
    }

    out->port = (unsigned) p;

    return 0;
}


int
mx_wellknown_server_parse(mx_pool_t *pool, const char *body, size_t len,
    mx_server_name_t *out, const char **why)
{
    mx_json_t        *v;
    mx_json_error_t   err;
    const char       *name;
    size_t            nlen;

    v = mx_json_parse(pool, body, len, &err);
    if (v == NULL) {
        *why = "not JSON";
        return -1;
    }

    if (!mx_json_is(v, MX_JSON_OBJECT)) {
        *why = "not a JSON object";
        return -1;
    }

    name = mx_json_get_str(v, "m.server", &nlen);
    if (name == NULL) {
        *why = "no m.server string";
        return -1;
    }

    if (mx_server_name_parse(name, nlen, out) != 0) {
        *why = "m.server is not a server name";
        return -1;
    }

    return 0;
}


/* a directive name, case-insensitively, at p; its length or 0 */

static size_t
mx_cc_directive(const char *p, const char *end, const char *name)
{
    size_t  n;

    n = strlen(name);

    if ((size_t) (end - p) < n || strncasecmp(p, name, n) != 0) {
        return 0;
    }

    if (p + n < end && p[n] != ',' && p[n] != ' ' && p[n] != '\t'
        && p[n] != '=')
    {
        return 0;
    }

    return n;
}


int
mx_cache_control_max_age(const char *v, size_t len, int64_t *secs)
{
    const char  *p, *end;
    size_t       n;
    int64_t      age;
    int          found, digits;

    p = v;
    end = v + len;
    found = 0;

    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
            p++;
        }

        if (mx_cc_directive(p, end, "no-store")
            || mx_cc_directive(p, end, "no-cache"))
        {
            *secs = 0;
            return 0;
        }

        n = mx_cc_directive(p, end, "max-age");

        if (n && p + n < end && p[n] == '=') {
            p += n + 1;

            if (p < end && *p == '"') {
                p++;
            }

            age = 0;
            digits = 0;

            while (p < end && *p >= '0' && *p <= '9') {
                if (age < 100000000000LL) {
                    age = age * 10 + (*p - '0');
                }
                digits++;
                p++;
            }

            if (digits) {
                *secs = age;
                found = 1;
            }
        }

        /* to the next directive, past any quoted value */
        while (p < end && *p != ',') {
            if (*p == '"') {
                p++;
                while (p < end && *p != '"') {
                    p++;
                }
            }

            if (p < end) {
                p++;
            }
        }
    }

    return found ? 0 : -1;
}


static int
mx_srv_cmp(const void *a, const void *b)
{
    const mx_srv_t  *x = a, *y = b;

    if (x->priority != y->priority) {
        return x->priority < y->priority ? -1 : 1;
    }

    /* RFC 2782: zero-weight records first, so they have a small chance */
    if ((x->weight == 0) != (y->weight == 0)) {
        return x->weight == 0 ? -1 : 1;
    }

    return 0;
}


size_t
mx_srv_order(mx_srv_t *rr, size_t n, mx_random_pt rnd, void *ctx)
{
    size_t    i, j, k, end;
    uint32_t  total, pick, run;
    mx_srv_t  t;

    if (n == 1 && (rr[0].target[0] == '\0' || strcmp(rr[0].target, ".") == 0))
    {
        return 0;
    }

    /* insertion sort: stable, and answers are small */
    for (i = 1; i < n; i++) {
        t = rr[i];

        for (j = i; j > 0 && mx_srv_cmp(&rr[j - 1], &t) > 0; j--) {
            rr[j] = rr[j - 1];
        }

        rr[j] = t;
    }

    /*
     * Within each priority: sum the weights of the records not yet
     * placed, pick a number in [0, sum], and place the first record whose
     * running sum reaches it; repeat.
     */
    for (i = 0; i < n; i = end) {
        for (end = i + 1; end < n && rr[end].priority == rr[i].priority; end++) {
            /* void */
        }

        for (j = i; j < end; j++) {
            total = 0;
            for (k = j; k < end; k++) {
                total += rr[k].weight;
            }

            pick = rnd(ctx, total + 1);
            run = 0;

            for (k = j; k < end; k++) {
                run += rr[k].weight;
                if (run >= pick) {
                    break;
                }
            }

            if (k == end) {
                k = end - 1;
            }

            t = rr[k];
            memmove(&rr[j + 1], &rr[j], (k - j) * sizeof(mx_srv_t));
            rr[j] = t;
        }
    }

    /* drop any "." targets among several: they are meaningless */
    for (i = 0, j = 0; i < n; i++) {
        if (rr[i].target[0] != '\0' && strcmp(rr[i].target, ".") != 0) {
            rr[j++] = rr[i];
        }
    }

    return j;
}

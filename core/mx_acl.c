/*
 * mx_acl: server access control lists.  See mx_acl.h.
 */

#include <string.h>

#include "mx_acl.h"
#include "mx_pusheval.h"


size_t
mx_acl_host(const char *server, size_t len)
{
    const char  *p;

    if (len > 0 && server[0] == '[') {
        p = memchr(server, ']', len);
        return p ? (size_t) (p - server) + 1 : len;
    }

    p = memchr(server, ':', len);

    return p ? (size_t) (p - server) : len;
}


/* four groups of one to three digits, each at most 255 */

static int
mx_acl_ipv4(const char *s, size_t len)
{
    size_t    i, digits, groups;
    unsigned  v;

    digits = 0;
    groups = 0;
    v = 0;

    for (i = 0; i <= len; i++) {
        if (i == len || s[i] == '.') {
            if (digits == 0 || v > 255) {
                return 0;
            }
            groups++;
            digits = 0;
            v = 0;
            continue;
        }

        if (s[i] < '0' || s[i] > '9' || ++digits > 3) {
            return 0;
        }

        v = v * 10 + (unsigned) (s[i] - '0');
    }

    return groups == 4;
}


int
mx_acl_ip_literal(const char *host, size_t len)
{
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        return 1;
    }

    return mx_acl_ipv4(host, len);
}


/* does any string of the array list match host?  1, 0, -1 */

static int
mx_acl_any(mx_pool_t *pool, const mx_json_t *list, const char *host,
    size_t len)
{
    const mx_json_t  *v;
    size_t            i;
    int               rc;

    if (list == NULL || list->type != MX_JSON_ARRAY) {
        return 0;
    }

    for (i = 0; i < list->u.a.n; i++) {
        v = list->u.a.v[i];
        if (v->type != MX_JSON_STRING) {
            continue;
        }

        rc = mx_push_glob(pool, v->u.s.p, v->u.s.len, host, len,
                          MX_GLOB_WHOLE);
        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


int
mx_acl_allowed(mx_pool_t *pool, const mx_json_t *content, const char *server,
    size_t len)
{
    const mx_json_t  *ip;
    size_t            hlen;
    int               rc;

    if (content == NULL) {
        return 1;
    }

    if (content->type != MX_JSON_OBJECT) {
        return 0;       /* no allow list: nobody */
    }

    hlen = mx_acl_host(server, len);

    ip = mx_json_get(content, "allow_ip_literals");
    if (ip != NULL && ip->type == MX_JSON_FALSE
        && mx_acl_ip_literal(server, hlen))
    {
        return 0;
    }

    rc = mx_acl_any(pool, mx_json_get(content, "deny"), server, hlen);
    if (rc != 0) {
        return rc < 0 ? -1 : 0;
    }

    return mx_acl_any(pool, mx_json_get(content, "allow"), server, hlen);
}

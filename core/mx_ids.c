/*
 * mx_ids: identifier grammars.  See mx_ids.h.
 */

#include <string.h>

#include "mx_ids.h"


#define mx_is_digit(c)  ((c) >= '0' && (c) <= '9')
#define mx_is_alpha(c)  (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'z')
#define mx_is_hex(c)                                                         \
    (mx_is_digit(c) || (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'f'))


static int
mx_port_valid(const char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > 5) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!mx_is_digit(p[i])) {
            return 0;
        }
    }

    return 1;
}


int
mx_server_name_valid(const char *s, size_t len)
{
    const char  *host, *colon, *end;
    size_t       i, hlen;

    if (len == 0) {
        return 0;
    }

    end = s + len;

    if (s[0] == '[') {
        /* "[" IPv6address "]" [ ":" port ] */
        host = memchr(s, ']', len);
        if (host == NULL) {
            return 0;
        }

        hlen = (size_t) (host - s - 1);
        if (hlen < 2 || hlen > 45) {
            return 0;
        }

        for (i = 1; i <= hlen; i++) {
            if (!mx_is_hex(s[i]) && s[i] != ':' && s[i] != '.') {
                return 0;
            }
        }

        host++;

        if (host == end) {
            return 1;
        }

        return *host == ':' && mx_port_valid(host + 1, (size_t) (end - host - 1));
    }

    colon = memchr(s, ':', len);
    hlen = colon ? (size_t) (colon - s) : len;

    if (hlen == 0 || hlen > 255) {
        return 0;
    }

    for (i = 0; i < hlen; i++) {
        if (!mx_is_digit(s[i]) && !mx_is_alpha(s[i]) && s[i] != '-'
            && s[i] != '.')
        {
            return 0;
        }
    }

    if (colon == NULL) {
        return 1;
    }

    return mx_port_valid(colon + 1, (size_t) (end - colon - 1));
}

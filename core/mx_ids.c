/*
 * mx_ids: identifier grammars.  See mx_ids.h.
 */

#include <string.h>

#include "mx_ids.h"
#include "mx_room_version.h"


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


const char *
mx_id_server(const char *s, size_t len, size_t *server_len)
{
    const char  *colon;

    if (len < 2) {
        return NULL;
    }

    colon = memchr(s + 1, ':', len - 1);
    if (colon == NULL) {
        return NULL;
    }

    *server_len = len - (size_t) (colon + 1 - s);

    return colon + 1;
}


/* "<sigil>" 1*local ":" server_name, at most 255 bytes, local by grammar */

static int
mx_sigil_id_valid(const char *s, size_t len, char sigil,
    int (*local)(const char *p, size_t n))
{
    const char  *server;
    size_t       slen;

    if (len < 4 || len > 255 || s[0] != sigil) {
        return 0;
    }

    server = mx_id_server(s, len, &slen);
    if (server == NULL || server == s + 2) {
        return 0;
    }

    if (!local(s + 1, (size_t) (server - s - 2))) {
        return 0;
    }

    return mx_server_name_valid(server, slen);
}


int
mx_localpart_valid(const char *s, size_t len)
{
    size_t  i;

    if (len == 0) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || mx_is_digit(s[i])
              || strchr("._=-/+", s[i]) != NULL) || s[i] == '\0')
        {
            return 0;
        }
    }

    return 1;
}


static int
mx_historical_local_valid(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if ((unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e
            || s[i] == ':')
        {
            return 0;
        }
    }

    return len > 0;
}


/* anything but NUL and ':' (aliases allow any Unicode in the localpart) */

static int
mx_alias_local_valid(const char *s, size_t len)
{
    return len > 0 && memchr(s, '\0', len) == NULL
           && memchr(s, ':', len) == NULL;
}


int
mx_user_id_valid(const char *s, size_t len)
{
    return mx_sigil_id_valid(s, len, '@', mx_localpart_valid);
}


int
mx_user_id_historical_valid(const char *s, size_t len)
{
    return mx_sigil_id_valid(s, len, '@', mx_historical_local_valid);
}


int
mx_room_alias_valid(const char *s, size_t len)
{
    return mx_sigil_id_valid(s, len, '#', mx_alias_local_valid);
}


/* sigil + the 43 characters of a base64 sha256, of one alphabet */

static int
mx_hash_id_valid(const char *s, size_t len, char sigil, int urlsafe)
{
    size_t  i;
    char    c;

    if (len != 44 || s[0] != sigil) {
        return 0;
    }

    for (i = 1; i < len; i++) {
        c = s[i];

        if (mx_is_alpha(c) || mx_is_digit(c)) {
            continue;
        }

        if (urlsafe ? (c != '-' && c != '_') : (c != '+' && c != '/')) {
            return 0;
        }
    }

    return 1;
}


int
mx_room_id_is_hash(const char *s, size_t len)
{
    return mx_hash_id_valid(s, len, '!', 1);
}


int
mx_room_id_valid(const char *s, size_t len)
{
    return mx_room_id_is_hash(s, len)
           || mx_sigil_id_valid(s, len, '!', mx_historical_local_valid);
}


int
mx_event_id_valid(const char *s, size_t len, int format)
{
    switch (format) {

    case MX_EVENT_ID_OPAQUE:
        return mx_sigil_id_valid(s, len, '$', mx_historical_local_valid);

    case MX_EVENT_ID_HASH:
        return mx_hash_id_valid(s, len, '$', 0);

    default:
        return mx_hash_id_valid(s, len, '$', 1);
    }
}

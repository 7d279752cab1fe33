/*
 * mx_base64: unpadded Base64.  See mx_base64.h.
 */

#include <stdint.h>

#include "mx_base64.h"


static const char  mx_b64_std[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char  mx_b64_url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";


size_t
mx_base64_encode(const unsigned char *in, size_t len, char *out, int alphabet)
{
    const char  *a;
    size_t       i, n;
    uint32_t     v;

    a = alphabet == MX_BASE64_URLSAFE ? mx_b64_url : mx_b64_std;
    n = 0;

    for (i = 0; i + 2 < len; i += 3) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        out[n++] = a[v >> 18];
        out[n++] = a[(v >> 12) & 63];
        out[n++] = a[(v >> 6) & 63];
        out[n++] = a[v & 63];
    }

    if (len - i == 1) {
        v = (uint32_t) in[i] << 16;
        out[n++] = a[v >> 18];
        out[n++] = a[(v >> 12) & 63];

    } else if (len - i == 2) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
        out[n++] = a[v >> 18];
        out[n++] = a[(v >> 12) & 63];
        out[n++] = a[(v >> 6) & 63];
    }

    out[n] = '\0';
    return n;
}


static int
mx_b64_value(unsigned char c, int alphabet)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (alphabet == MX_BASE64_URLSAFE) {
        return c == '-' ? 62 : c == '_' ? 63 : -1;
    }

    return c == '+' ? 62 : c == '/' ? 63 : -1;
}


ssize_t
mx_base64_decode(const char *in, size_t len, unsigned char *out, int alphabet)
{
    size_t    i, n;
    uint32_t  v;
    int       d, bits;

    /* at most two '=' of padding, and only where padding belongs */
    if (len && in[len - 1] == '=') {
        len--;
        if (len && in[len - 1] == '=') {
            len--;
        }
        if (len % 4 == 0 || len % 4 == 1) {
            return -1;
        }
    }

    if (len % 4 == 1) {
        return -1;
    }

    v = 0;
    bits = 0;
    n = 0;

    for (i = 0; i < len; i++) {
        d = mx_b64_value((unsigned char) in[i], alphabet);
        if (d < 0) {
            return -1;
        }

        v = (v << 6) | (uint32_t) d;
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char) (v >> bits);
            v &= (1u << bits) - 1;
        }
    }

    return (ssize_t) n;
}

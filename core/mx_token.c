/*
 * mx_token: token format and keys.  See mx_token.h.
 */

#include <string.h>

#include <sodium.h>

#include "mx_base64.h"
#include "mx_token.h"


size_t
mx_token_make(char *out, int kind, const char *user_id, size_t len,
    const unsigned char random[MX_TOKEN_RANDOM])
{
    size_t  n;

    if (len == 0 || len > MX_TOKEN_USER_MAX) {
        return 0;
    }

    out[0] = 'm';
    out[1] = 'x';
    out[2] = (char) kind;
    out[3] = '_';
    n = 4;

    n += mx_base64_encode((const unsigned char *) user_id, len, out + n,
                          MX_BASE64_URLSAFE);
    out[n++] = '_';
    n += mx_base64_encode(random, MX_TOKEN_RANDOM, out + n,
                          MX_BASE64_URLSAFE);

    return n;
}


size_t
mx_token_user(const char *token, size_t len, int kind, char *out)
{
    size_t   ulen;
    ssize_t  n;

    /* "mx?_" + at least one user char + "_" + 43 */
    if (len < 4 + 2 + 1 + 43 || len > MX_TOKEN_MAX
        || token[0] != 'm' || token[1] != 'x' || token[2] != kind
        || token[3] != '_' || token[len - 44] != '_')
    {
        return 0;
    }

    ulen = len - 4 - 44;
    n = mx_base64_decode(token + 4, ulen, (unsigned char *) out,
                         MX_BASE64_URLSAFE);

    if (n <= 0 || n > MX_TOKEN_USER_MAX
        || mx_base64_encoded_len((size_t) n) != ulen)
    {
        return 0;
    }

    out[n] = '\0';
    return (size_t) n;
}


void
mx_token_hash(char out[MX_TOKEN_HASH_LEN + 1], const char *token, size_t len)
{
    unsigned char  hash[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(hash, (const unsigned char *) token, len);
    mx_base64_encode(hash, sizeof(hash), out, MX_BASE64_STD);
}


size_t
mx_token_key(char *out, int kind, const char *user_id, size_t user_len,
    const char *token, size_t len)
{
    const char  *what;
    size_t       n, wlen;

    what = kind == MX_TOKEN_REFRESH ? "}:refresh:" : "}:token:";
    wlen = strlen(what);

    memcpy(out, "mx:{", 4);
    n = 4;
    memcpy(out + n, user_id, user_len);
    n += user_len;
    memcpy(out + n, what, wlen);
    n += wlen;
    mx_token_hash(out + n, token, len);

    return n + MX_TOKEN_HASH_LEN;
}

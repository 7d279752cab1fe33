/*
 * mx_token: the format of access and refresh tokens, and their Redis keys.
 *
 *   mxa_<base64url(user_id)>_<base64url(32 random bytes)>     access
 *   mxr_<base64url(user_id)>_<base64url(32 random bytes)>     refresh
 *
 * The user ID inside is no secret (it is in every request the token makes);
 * it is there so that the token's key carries the user's hash tag, and the
 * token lives in the same Redis Cluster slot as everything else of its user:
 *
 *   mx:{<user_id>}:token:<base64 sha256(token)>
 *   mx:{<user_id>}:refresh:<base64 sha256(token)>
 *
 * Only the hash is ever stored.  The random part is always 43 characters, so
 * the user part is whatever lies between the prefix and the last 44.
 */

#ifndef MX_TOKEN_H
#define MX_TOKEN_H

#include <stddef.h>

#define MX_TOKEN_ACCESS    'a'
#define MX_TOKEN_REFRESH   'r'

#define MX_TOKEN_RANDOM    32
#define MX_TOKEN_USER_MAX  255

/* the longest token and key */
#define MX_TOKEN_MAX       (4 + ((MX_TOKEN_USER_MAX * 4 + 2) / 3) + 1 + 43)
#define MX_TOKEN_KEY_MAX   (sizeof("mx:{}:refresh:") + MX_TOKEN_USER_MAX + 43)

/* writes the token and a NUL; returns its length, 0 if user_id is too long */
size_t mx_token_make(char *out, int kind, const char *user_id, size_t len,
    const unsigned char random[MX_TOKEN_RANDOM]);

/*
 * The user ID a token names, into out (MX_TOKEN_USER_MAX + 1 bytes).
 * Returns its length, or 0 when the token is not of this kind and format.
 */
size_t mx_token_user(const char *token, size_t len, int kind, char *out);

#define MX_TOKEN_HASH_LEN  43

/* base64 of the token's SHA-256, the part of its key that names it */
void mx_token_hash(char out[MX_TOKEN_HASH_LEN + 1], const char *token,
    size_t len);

/* the Redis key of a token, with its user; returns its length */
size_t mx_token_key(char *out, int kind, const char *user_id,
    size_t user_len, const char *token, size_t len);

#endif /* MX_TOKEN_H */

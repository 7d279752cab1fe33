/*
 * mx_sign: ed25519 keys and signed JSON.  See mx_sign.h.
 */

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "mx_base64.h"
#include "mx_sign.h"


int
mx_sign_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}


int
mx_key_version_valid(const char *v, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > MX_KEY_VERSION_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_'))
        {
            return 0;
        }
    }

    return 1;
}


int
mx_key_from_seed(mx_signing_key_t *key, const char *version,
    const unsigned char seed[32])
{
    size_t  vlen;

    vlen = strlen(version);
    if (!mx_key_version_valid(version, vlen)) {
        return -1;
    }

    memcpy(key->key_id, "ed25519:", 8);
    memcpy(key->key_id + 8, version, vlen + 1);
    memcpy(key->seed, seed, 32);

    if (crypto_sign_seed_keypair(key->pk, key->sk, key->seed) != 0) {
        return -1;
    }

    mx_base64_encode(key->pk, 32, key->pk_b64, MX_BASE64_STD);
    return 0;
}


int
mx_key_generate(mx_signing_key_t *key, const char *version)
{
    static const char  alnum[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    unsigned char      seed[32];
    char               v[8];
    size_t             i;
    int                rc;

    if (version == NULL) {
        v[0] = 'a';
        v[1] = '_';
        for (i = 2; i < 6; i++) {
            v[i] = alnum[randombytes_uniform(sizeof(alnum) - 1)];
        }
        v[6] = '\0';
        version = v;
    }

    randombytes_buf(seed, sizeof(seed));
    rc = mx_key_from_seed(key, version, seed);
    sodium_memzero(seed, sizeof(seed));

    return rc;
}


int
mx_key_parse(mx_signing_key_t *key, const char *text, size_t len,
    const char **why)
{
    const char     *p, *end, *ver, *seed;
    size_t          ver_len, seed_len;
    char            version[MX_KEY_VERSION_MAX + 1];
    unsigned char   raw[mx_base64_decoded_max(64)];
    ssize_t         n;
    const char     *dummy;

    if (why == NULL) {
        why = &dummy;
    }

    p = text;
    end = text + len;

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if ((size_t) (end - p) < 8 || memcmp(p, "ed25519 ", 8) != 0) {
        *why = "the key file must start with \"ed25519 \"";
        return -1;
    }

    p += 8;
    while (p < end && *p == ' ') {
        p++;
    }

    ver = p;
    while (p < end && *p != ' ') {
        p++;
    }
    ver_len = (size_t) (p - ver);

    if (!mx_key_version_valid(ver, ver_len)) {
        *why = "the key version must be 1 to 48 of [A-Za-z0-9_]";
        return -1;
    }

    while (p < end && *p == ' ') {
        p++;
    }

    seed = p;
    while (p < end && *p != ' ' && *p != '\n' && *p != '\r') {
        p++;
    }
    seed_len = (size_t) (p - seed);

    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r')) {
        p++;
    }

    if (p != end) {
        *why = "the key file must hold exactly one key";
        return -1;
    }

    if (seed_len > 64) {
        *why = "the seed is too long";
        return -1;
    }

    n = mx_base64_decode(seed, seed_len, raw, MX_BASE64_STD);
    if (n != 32) {
        *why = "the seed must be unpadded base64 of 32 bytes";
        return -1;
    }

    memcpy(version, ver, ver_len);
    version[ver_len] = '\0';

    if (mx_key_from_seed(key, version, raw) != 0) {
        *why = "libsodium could not derive the key pair";
        return -1;
    }

    sodium_memzero(raw, sizeof(raw));
    return 0;
}


size_t
mx_key_format(const mx_signing_key_t *key, char *out, size_t size)
{
    char    seed[mx_base64_encoded_len(32) + 1];
    size_t  n;

    mx_base64_encode(key->seed, 32, seed, MX_BASE64_STD);
    n = (size_t) snprintf(out, size, "ed25519 %s %s\n", key->key_id + 8, seed);
    sodium_memzero(seed, sizeof(seed));

    return n;
}


char *
mx_sign_payload(mx_pool_t *pool, const mx_json_t *obj, unsigned flags,
    size_t *len)
{
    mx_json_t  *copy;

    copy = mx_json_object_copy(pool, obj);
    if (copy == NULL) {
        return NULL;
    }

    mx_json_remove(copy, "signatures");
    mx_json_remove(copy, "unsigned");

    return mx_json_encode(pool, copy, flags, len);
}


int
mx_sign_json(mx_pool_t *pool, mx_json_t *obj, const char *server_name,
    const mx_signing_key_t *key, unsigned flags)
{
    unsigned char   sig[crypto_sign_BYTES];
    char            sig_b64[mx_base64_encoded_len(crypto_sign_BYTES) + 1];
    char           *payload;
    size_t          len;
    mx_json_t      *sigs, *mine;

    payload = mx_sign_payload(pool, obj, flags, &len);
    if (payload == NULL) {
        return -1;
    }

    crypto_sign_detached(sig, NULL, (const unsigned char *) payload, len,
                         key->sk);
    mx_base64_encode(sig, sizeof(sig), sig_b64, MX_BASE64_STD);

    sigs = mx_json_get(obj, "signatures");
    if (!mx_json_is(sigs, MX_JSON_OBJECT)) {
        sigs = mx_json_object(pool);
        if (mx_json_set(pool, obj, "signatures", sigs) != 0) {
            return -1;
        }
    }

    mine = mx_json_get(sigs, server_name);
    if (!mx_json_is(mine, MX_JSON_OBJECT)) {
        mine = mx_json_object(pool);
        if (mx_json_set(pool, sigs, server_name, mine) != 0) {
            return -1;
        }
    }

    return mx_json_set_str(pool, mine, key->key_id, sig_b64);
}


int
mx_verify_json(mx_pool_t *pool, const mx_json_t *obj,
    const char *server_name, const char *key_id, const unsigned char pk[32],
    unsigned flags)
{
    unsigned char   sig[mx_base64_decoded_max(mx_base64_encoded_len(64))];
    const char     *sig_b64;
    char           *payload;
    size_t          len, sig_len;
    ssize_t         n;
    mx_json_t      *sigs;

    sigs = mx_json_get_obj(mx_json_get_obj(obj, "signatures"), server_name);
    sig_b64 = mx_json_get_str(sigs, key_id, &sig_len);

    if (sig_b64 == NULL || sig_len > mx_base64_encoded_len(64) + 2) {
        return -1;
    }

    n = mx_base64_decode(sig_b64, sig_len, sig, MX_BASE64_STD);
    if (n != crypto_sign_BYTES) {
        return -1;
    }

    payload = mx_sign_payload(pool, obj, flags, &len);
    if (payload == NULL) {
        return -1;
    }

    return crypto_sign_verify_detached(sig, (const unsigned char *) payload,
                                       len, pk) == 0 ? 0 : -1;
}

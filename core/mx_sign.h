/*
 * mx_sign: ed25519 signing keys and signed JSON (libsodium underneath).
 *
 * A key file holds one line in the format Synapse uses, so operators can
 * move keys between servers:
 *
 *   ed25519 <version> <unpadded base64 of the 32-byte seed>
 *
 * and the key ID is "ed25519:<version>".  Signing JSON follows the
 * appendices: take the object without "signatures" and "unsigned", sign its
 * canonical bytes, and add the signature under
 * signatures.<server>.<key id>, keeping any signatures already there.
 */

#ifndef MX_SIGN_H
#define MX_SIGN_H

#include <stddef.h>

#include "mx_json.h"


#define MX_KEY_VERSION_MAX  48
#define MX_KEY_ID_MAX       (sizeof("ed25519:") + MX_KEY_VERSION_MAX)

typedef struct {
    char           key_id[MX_KEY_ID_MAX];  /* "ed25519:<version>" */
    unsigned char  seed[32];
    unsigned char  pk[32];
    unsigned char  sk[64];
    char           pk_b64[44];             /* unpadded standard base64 */
} mx_signing_key_t;


/* must be called once before any other function here; 0 or -1 */
int mx_sign_init(void);

/* a new key with a random version "a_XXXX" (or the one given) */
int mx_key_generate(mx_signing_key_t *key, const char *version);

/* from a seed; version must match [A-Za-z0-9_]+ */
int mx_key_from_seed(mx_signing_key_t *key, const char *version,
    const unsigned char seed[32]);

/* the key file line; NULL-safe why receives a reason on failure */
int mx_key_parse(mx_signing_key_t *key, const char *text, size_t len,
    const char **why);

/* writes "ed25519 <version> <seed>\n"; returns its length */
size_t mx_key_format(const mx_signing_key_t *key, char *out, size_t size);

/* a valid key version: 1 to MX_KEY_VERSION_MAX of [A-Za-z0-9_] */
int mx_key_version_valid(const char *v, size_t len);


/* sign obj in place; flags as for mx_json_encode (MX_JSON_STRICT) */
int mx_sign_json(mx_pool_t *pool, mx_json_t *obj, const char *server_name,
    const mx_signing_key_t *key, unsigned flags);

/* the canonical bytes that are signed: obj without signatures, unsigned */
char *mx_sign_payload(mx_pool_t *pool, const mx_json_t *obj, unsigned flags,
    size_t *len);

/*
 * Check signatures.<server_name>.<key_id> against the public key.
 * 0 when it verifies; -1 when missing, malformed or wrong.
 */
int mx_verify_json(mx_pool_t *pool, const mx_json_t *obj,
    const char *server_name, const char *key_id, const unsigned char pk[32],
    unsigned flags);

#endif /* MX_SIGN_H */

/*
 * mx_xmatrix: the Authorization header of federation requests.
 *
 *   Authorization: X-Matrix origin="a.example",destination="b.example",
 *                  key="ed25519:k1",sig="<base64 signature>"
 *
 * The signature is the origin's signature of the canonical JSON object
 *
 *   {"content":<body, when there is one>,"destination":"b.example",
 *    "method":"PUT","origin":"a.example","uri":"/_matrix/federation/..."}
 *
 * Parameter names are case-insensitive; values are tokens or quoted
 * strings with backslash escapes.  destination is optional on the wire
 * (older servers omit it) and required by the receiver when it is given
 * one to compare with.
 */

#ifndef MX_XMATRIX_H
#define MX_XMATRIX_H

#include <stddef.h>

#include "mx_json.h"
#include "mx_pool.h"
#include "mx_sign.h"


typedef struct {
    const char  *origin;        /* NUL-terminated copies from the pool */
    const char  *destination;   /* NULL when absent */
    const char  *key_id;
    const char  *sig;
} mx_xmatrix_t;


/* the header value (after "Authorization: "); 0 or -1 with *why */
int mx_xmatrix_parse(mx_pool_t *pool, const char *value, size_t len,
    mx_xmatrix_t *out, const char **why);

/* the JSON object that is signed; content may be NULL */
mx_json_t *mx_xmatrix_request(mx_pool_t *pool, const char *method,
    const char *uri, const char *origin, const char *destination,
    const mx_json_t *content);

/* the whole header value, NUL-terminated; NULL on ENOMEM */
char *mx_xmatrix_sign(mx_pool_t *pool, const mx_signing_key_t *key,
    const char *method, const char *uri, const char *origin,
    const char *destination, const mx_json_t *content);

/*
 * Check a parsed header against the request and the origin's public key
 * for x->key_id.  destination, when not NULL, must equal the header's.
 * 0 or -1 with *why.
 */
int mx_xmatrix_verify(mx_pool_t *pool, const mx_xmatrix_t *x,
    const char *method, const char *uri, const char *destination,
    const mx_json_t *content, const unsigned char pk[32], const char **why);

#endif /* MX_XMATRIX_H */

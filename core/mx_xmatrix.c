/*
 * mx_xmatrix: the X-Matrix Authorization header.  See mx_xmatrix.h and the
 * "Request Authentication" section of the server-server API.
 */

#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "mx_base64.h"
#include "mx_ids.h"
#include "mx_xmatrix.h"


#define mx_ows(c)  ((c) == ' ' || (c) == '\t')

/* RFC 9110 tchar */
#define mx_tchar(c)                                                          \
    ((c) > 0x20 && (c) < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", (c)) == NULL)


int
mx_xmatrix_parse(mx_pool_t *pool, const char *value, size_t len,
    mx_xmatrix_t *out, const char **why)
{
    const char   *p, *end, *name, **slot;
    char         *v;
    size_t        name_len, n;

    memset(out, 0, sizeof(*out));

    p = value;
    end = value + len;

    while (p < end && mx_ows(*p)) {
        p++;
    }

    if ((size_t) (end - p) < 9 || strncasecmp(p, "X-Matrix", 8) != 0
        || !mx_ows(p[8]))
    {
        *why = "the Authorization scheme is not X-Matrix";
        return -1;
    }

    p += 9;

    for ( ;; ) {
        while (p < end && (mx_ows(*p) || *p == ',')) {
            p++;
        }

        if (p == end) {
            break;
        }

        name = p;
        while (p < end && mx_tchar(*p) && *p != '=') {
            p++;
        }

        name_len = (size_t) (p - name);

        while (p < end && mx_ows(*p)) {
            p++;
        }

        if (name_len == 0 || p == end || *p != '=') {
            *why = "a parameter of the X-Matrix header is malformed";
            return -1;
        }

        p++;

        while (p < end && mx_ows(*p)) {
            p++;
        }

        v = mx_palloc(pool, (size_t) (end - p) + 1);
        if (v == NULL) {
            *why = "out of memory";
            return -1;
        }

        n = 0;

        if (p < end && *p == '"') {
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < end) {
                    p++;
                }
                v[n++] = *p;
            }

            if (p == end) {
                *why = "a quoted value of the X-Matrix header is not closed";
                return -1;
            }

            p++;

        } else {
            while (p < end && mx_tchar(*p)) {
                v[n++] = *p++;
            }
        }

        v[n] = '\0';

        while (p < end && mx_ows(*p)) {
            p++;
        }

        if (p < end && *p != ',') {
            *why = "a parameter of the X-Matrix header is malformed";
            return -1;
        }

        if (name_len == 6 && strncasecmp(name, "origin", 6) == 0) {
            slot = &out->origin;

        } else if (name_len == 11 && strncasecmp(name, "destination", 11) == 0)
        {
            slot = &out->destination;

        } else if (name_len == 3 && strncasecmp(name, "key", 3) == 0) {
            slot = &out->key_id;

        } else if (name_len == 3 && strncasecmp(name, "sig", 3) == 0) {
            slot = &out->sig;

        } else {
            continue;       /* unknown parameters are ignored */
        }

        if (*slot != NULL) {
            *why = "a parameter of the X-Matrix header appears twice";
            return -1;
        }

        *slot = v;
    }

    if (out->origin == NULL || out->key_id == NULL || out->sig == NULL) {
        *why = "the X-Matrix header lacks origin, key or sig";
        return -1;
    }

    if (!mx_server_name_valid(out->origin, strlen(out->origin))
        || (out->destination != NULL
            && !mx_server_name_valid(out->destination,
                                     strlen(out->destination))))
    {
        *why = "the X-Matrix header names an invalid server";
        return -1;
    }

    return 0;
}


mx_json_t *
mx_xmatrix_request(mx_pool_t *pool, const char *method, const char *uri,
    const char *origin, const char *destination, const mx_json_t *content)
{
    mx_json_t  *req;

    req = mx_json_object(pool);

    if (req == NULL
        || mx_json_set_str(pool, req, "method", method) != 0
        || mx_json_set_str(pool, req, "uri", uri) != 0
        || mx_json_set_str(pool, req, "origin", origin) != 0
        || (destination != NULL
            && mx_json_set_str(pool, req, "destination", destination) != 0)
        || (content != NULL
            && mx_json_set(pool, req, "content", (mx_json_t *) content) != 0))
    {
        return NULL;
    }

    return req;
}


/* a quoted-string: '"' and '\' escaped */

static char *
mx_xmatrix_quote(char *out, const char *s)
{
    *out++ = '"';

    for ( /* void */ ; *s; s++) {
        if (*s == '"' || *s == '\\') {
            *out++ = '\\';
        }
        *out++ = *s;
    }

    *out++ = '"';

    return out;
}


char *
mx_xmatrix_sign(mx_pool_t *pool, const mx_signing_key_t *key,
    const char *method, const char *uri, const char *origin,
    const char *destination, const mx_json_t *content)
{
    unsigned char   sig[crypto_sign_BYTES];
    char            sig_b64[mx_base64_encoded_len(crypto_sign_BYTES) + 1];
    char           *payload, *hdr, *p;
    size_t          len;
    mx_json_t      *req;

    req = mx_xmatrix_request(pool, method, uri, origin, destination, content);
    if (req == NULL) {
        return NULL;
    }

    payload = mx_json_encode(pool, req, MX_JSON_STRICT, &len);
    if (payload == NULL) {
        return NULL;
    }

    crypto_sign_detached(sig, NULL, (unsigned char *) payload, len, key->sk);
    mx_base64_encode(sig, sizeof(sig), sig_b64, MX_BASE64_STD);

    len = sizeof("X-Matrix origin=,destination=,key=,sig=")
          + 2 * (strlen(origin) + (destination ? strlen(destination) : 0)
                 + strlen(key->key_id) + strlen(sig_b64))
          + 8 * 2;

    hdr = mx_palloc(pool, len);
    if (hdr == NULL) {
        return NULL;
    }

    p = hdr;
    p = stpcpy(p, "X-Matrix origin=");
    p = mx_xmatrix_quote(p, origin);

    if (destination != NULL) {
        p = stpcpy(p, ",destination=");
        p = mx_xmatrix_quote(p, destination);
    }

    p = stpcpy(p, ",key=");
    p = mx_xmatrix_quote(p, key->key_id);
    p = stpcpy(p, ",sig=");
    p = mx_xmatrix_quote(p, sig_b64);
    *p = '\0';

    return hdr;
}


int
mx_xmatrix_verify(mx_pool_t *pool, const mx_xmatrix_t *x,
    const char *method, const char *uri, const char *destination,
    const mx_json_t *content, const unsigned char pk[32], const char **why)
{
    unsigned char   sig[mx_base64_decoded_max(mx_base64_encoded_len(64) + 2)];
    char           *payload;
    size_t          len, sig_len;
    mx_json_t      *req;

    if (destination != NULL && x->destination != NULL
        && strcasecmp(destination, x->destination) != 0)
    {
        *why = "the request is addressed to another server";
        return -1;
    }

    sig_len = strlen(x->sig);

    if (sig_len > mx_base64_encoded_len(64) + 2
        || mx_base64_decode(x->sig, sig_len, sig, MX_BASE64_STD)
           != crypto_sign_BYTES)
    {
        *why = "the signature is not 64 bytes of base64";
        return -1;
    }

    /* the signature covers the destination the sender named, if any */
    req = mx_xmatrix_request(pool, method, uri, x->origin,
                             x->destination ? x->destination : destination,
                             content);
    if (req == NULL) {
        *why = "out of memory";
        return -1;
    }

    payload = mx_json_encode(pool, req, 0, &len);
    if (payload == NULL) {
        *why = "the request body cannot be written as canonical JSON";
        return -1;
    }

    if (crypto_sign_verify_detached(sig, (unsigned char *) payload, len, pk)
        != 0)
    {
        *why = "the signature does not verify";
        return -1;
    }

    return 0;
}

/*
 * mx_json: the JSON tree every part of the server shares.
 *
 * Parsing (yajl underneath) keeps integers exact as int64, refuses duplicate
 * keys, invalid UTF-8, unpaired surrogate escapes and nesting deeper than
 * MX_JSON_MAX_DEPTH, and says why.  Objects keep their members sorted by the
 * bytes of the key, which for UTF-8 is the Unicode code point order that
 * canonical JSON asks for, so there is one writer and its output is always
 * canonical:
 *
 *   {"a":1,"b":[true,null,"\u0001"]}
 *
 *   keys sorted by code point, no whitespace, only '"', '\\' and U+0000 to
 *   U+001F escaped (\b \t \n \f \r where they exist, lowercase \u00xx for the
 *   rest), integers written plainly, -0 as 0.
 *
 * With MX_JSON_STRICT the writer refuses what strict canonical JSON (room
 * versions 6 and later, and every signed object we build) cannot hold:
 * non-integral numbers and integers outside [-(2^53-1), 2^53-1].  Without it,
 * non-integral numbers are written the way Python's repr() writes them, which
 * is what the lenient canonical JSON of room versions 1 to 5 was in practice.
 *
 * Numbers: a number whose value is integral and fits in int64 becomes an
 * MX_JSON_INT whatever its spelling, so 1e10 is the integer 10000000000 and
 * -0 is 0.  Everything else is MX_JSON_FLOAT; an integer too large for int64
 * keeps its digits so a lenient writer can reproduce them.
 *
 * Every node comes from an mx_pool_t and lives as long as the pool.
 */

#ifndef MX_JSON_H
#define MX_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mx_pool.h"


#define MX_JSON_MAX_DEPTH     100
#define MX_JSON_MAX_SAFE_INT  9007199254740991LL     /* 2^53 - 1 */

/* writer flags */
#define MX_JSON_STRICT        0x01


typedef enum {
    MX_JSON_NULL = 0,
    MX_JSON_FALSE,
    MX_JSON_TRUE,
    MX_JSON_INT,
    MX_JSON_FLOAT,
    MX_JSON_STRING,
    MX_JSON_ARRAY,
    MX_JSON_OBJECT
} mx_json_type_t;

typedef enum {
    MX_JSON_OK = 0,
    MX_JSON_ESYNTAX,        /* not JSON at all */
    MX_JSON_EDUPKEY,        /* an object names one key twice */
    MX_JSON_EUTF8,          /* invalid UTF-8 or an unpaired surrogate */
    MX_JSON_EDEPTH,         /* nested deeper than MX_JSON_MAX_DEPTH */
    MX_JSON_ENUMBER,        /* a number that is not finite */
    MX_JSON_ENOMEM
} mx_json_err_t;


typedef struct mx_json_s         mx_json_t;
typedef struct mx_json_member_s  mx_json_member_t;

struct mx_json_member_s {
    const char     *key;         /* NUL-terminated; may hold NUL bytes */
    size_t          key_len;
    mx_json_t      *value;
};

struct mx_json_s {
    mx_json_type_t  type;

    union {
        int64_t     i;

        struct {
            double       f;
            const char  *digits;  /* big integers only, else NULL */
        } num;

        struct {
            const char  *p;       /* NUL-terminated; may hold NUL bytes */
            size_t       len;
        } s;

        struct {
            mx_json_t  **v;
            size_t       n;
            size_t       cap;
        } a;

        struct {
            mx_json_member_t  *m; /* sorted by key bytes, unique keys */
            size_t             n;
            size_t             cap;
        } o;
    } u;
};

typedef struct {
    mx_json_err_t   code;
    size_t          offset;       /* byte offset where parsing stopped */
    char            msg[160];
} mx_json_error_t;


/* parse one JSON value (any type) from text; NULL and *err on failure */
mx_json_t *mx_json_parse(mx_pool_t *pool, const char *text, size_t len,
    mx_json_error_t *err);

/* strict UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF) */
int mx_utf8_valid(const char *p, size_t len);


/* writing: length first, then bytes, or both into a pool */
ssize_t mx_json_encoded_len(const mx_json_t *v, unsigned flags);
char *mx_json_write(const mx_json_t *v, unsigned flags, char *out);
char *mx_json_encode(mx_pool_t *pool, const mx_json_t *v, unsigned flags,
    size_t *len);

/* one string as a JSON string literal; out NULL only counts */
size_t mx_json_write_str(const char *s, size_t len, char *out);

/* parse then write canonically: the whole "canonical JSON" operation */
char *mx_json_canonicalize(mx_pool_t *pool, const char *text, size_t len,
    unsigned flags, size_t *out_len, mx_json_error_t *err);


/* builders; NULL only when the pool is out of memory */
mx_json_t *mx_json_null(mx_pool_t *pool);
mx_json_t *mx_json_bool(mx_pool_t *pool, int b);
mx_json_t *mx_json_int(mx_pool_t *pool, int64_t i);
mx_json_t *mx_json_float(mx_pool_t *pool, double f);
mx_json_t *mx_json_strn(mx_pool_t *pool, const char *s, size_t len);
mx_json_t *mx_json_str(mx_pool_t *pool, const char *s);
mx_json_t *mx_json_array(mx_pool_t *pool);
mx_json_t *mx_json_object(mx_pool_t *pool);

/* set a key (copied), replacing any old value; 0 or -1 on ENOMEM */
int mx_json_setn(mx_pool_t *pool, mx_json_t *obj, const char *key,
    size_t key_len, mx_json_t *value);
int mx_json_set(mx_pool_t *pool, mx_json_t *obj, const char *key,
    mx_json_t *value);
int mx_json_set_str(mx_pool_t *pool, mx_json_t *obj, const char *key,
    const char *value);
int mx_json_set_int(mx_pool_t *pool, mx_json_t *obj, const char *key,
    int64_t value);
int mx_json_append(mx_pool_t *pool, mx_json_t *arr, mx_json_t *value);

/* remove a key; returns its old value or NULL */
mx_json_t *mx_json_remove(mx_json_t *obj, const char *key);

/* deep copy into pool */
mx_json_t *mx_json_clone(mx_pool_t *pool, const mx_json_t *v);

/* a shallow copy of an object: new member array, shared values */
mx_json_t *mx_json_object_copy(mx_pool_t *pool, const mx_json_t *obj);


/* lookups; NULL when obj is not an object or the key is missing */
mx_json_t *mx_json_getn(const mx_json_t *obj, const char *key, size_t len);
mx_json_t *mx_json_get(const mx_json_t *obj, const char *key);

/* typed lookups: NULL / -1 when missing or of another type */
const char *mx_json_get_str(const mx_json_t *obj, const char *key,
    size_t *len);
int mx_json_get_int(const mx_json_t *obj, const char *key, int64_t *out);
mx_json_t *mx_json_get_obj(const mx_json_t *obj, const char *key);
mx_json_t *mx_json_get_arr(const mx_json_t *obj, const char *key);

int mx_json_equal(const mx_json_t *a, const mx_json_t *b);

const char *mx_json_type_name(mx_json_type_t type);

#define mx_json_is(v, t)  ((v) != NULL && (v)->type == (t))
#define mx_json_is_bool(v)                                                   \
    ((v) != NULL && ((v)->type == MX_JSON_TRUE || (v)->type == MX_JSON_FALSE))

#endif /* MX_JSON_H */

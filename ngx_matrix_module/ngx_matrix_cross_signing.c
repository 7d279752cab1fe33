/*
 * Cross-signing (lua/keys.lua):
 *
 *   POST /keys/device_signing/upload   {master_key, self_signing_key,
 *                                       user_signing_key, auth}
 *   POST /keys/signatures/upload       {user_id: {key_id: signed object}}
 *
 * device_signing: each key is checked (the caller's, its usage, exactly
 * one ed25519 key); the self-signing and user-signing keys must carry a
 * valid signature of the master key uploaded with them, or else of the
 * one held.  The first upload needs no user-interactive auth, nor does
 * uploading the keys held again; replacing keys does:
 *
 *   mx_keys_xsign_get ─► checks ─► mx_keys_xsign_put ─► 'OK', 'same': 200 {}
 *                                         │
 *                                         └─ 'uia' ─► UIA ─► mx_keys_xsign_put
 *                                                            (authenticated)
 *
 * signatures: what each signature is checked against comes in one call
 * (mx_keys_sigs_get); the object signed must be the key held (apart from
 * its signatures and unsigned), and the signature valid:
 *
 *   the caller's own device       by the caller's self-signing key
 *   the caller's own master key   by one of the caller's devices
 *   another user's master key     by the caller's user-signing key
 *
 * What passes is stored (mx_keys_sigs_put), the rest is in "failures".
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <mx_base64.h>
#include <mx_ids.h>
#include <mx_sign.h>

#include "ngx_matrix_module.h"
#include "ngx_matrix_keys.h"


#define NGX_MATRIX_XS_MASTER  0
#define NGX_MATRIX_XS_SELF    1
#define NGX_MATRIX_XS_USER    2


static const char  *ngx_matrix_xs_fields[] = {
    "master_key", "self_signing_key", "user_signing_key"
};

static const char  *ngx_matrix_xs_kinds[] = {
    "master", "self_signing", "user_signing"
};


typedef struct {
    mx_json_t     *key[3];        /* as uploaded, NULL when not */
    const char    *pk[3];         /* their public keys */
    size_t         pk_len[3];
    char          *user;          /* the caller, NUL-terminated */
} ngx_matrix_xsign_t;


/* a public key in unpadded base64: its 32 bytes; NGX_OK or NGX_ERROR */

static ngx_int_t
ngx_matrix_xs_decode(const char *b64, size_t len, u_char pk[32])
{
    u_char  buf[mx_base64_decoded_max(64)];

    if (len == 0 || len > 64
        || mx_base64_decode(b64, len, buf, MX_BASE64_STD) != 32)
    {
        return NGX_ERROR;
    }

    ngx_memcpy(pk, buf, 32);

    return NGX_OK;
}


/* obj.signatures.<signer>.<key_id> verifies with the public key */

static ngx_uint_t
ngx_matrix_xs_verify(mx_pool_t *pool, mx_json_t *obj, const char *signer,
    const char *key_id, const char *pk_b64, size_t pk_len)
{
    u_char  pk[32];

    if (ngx_matrix_xs_decode(pk_b64, pk_len, pk) != NGX_OK) {
        return 0;
    }

    return mx_verify_json(pool, obj, signer, key_id, pk, 0) == 0;
}


/* obj.signatures.<signer>.ed25519:<pk> verifies with pk */

static ngx_uint_t
ngx_matrix_xs_signed(mx_pool_t *pool, mx_json_t *obj, const char *signer,
    const char *pk_b64, size_t pk_len)
{
    char  *key_id;

    key_id = mx_palloc(pool, sizeof("ed25519:") + pk_len);
    if (key_id == NULL) {
        return 0;
    }

    ngx_sprintf((u_char *) key_id, "ed25519:%*s%Z", pk_len, pk_b64);

    return ngx_matrix_xs_verify(pool, obj, signer, key_id, pk_b64, pk_len);
}


static char *
ngx_matrix_xs_cstr(ngx_matrix_req_t *mr, ngx_str_t *s)
{
    char  *p;

    p = ngx_pnalloc(mr->r->pool, s->len + 1);
    if (p != NULL) {
        ngx_memcpy(p, s->data, s->len);
        p[s->len] = '\0';
    }

    return p;
}


/* one uploaded cross-signing key: NGX_OK, or the 400 sent */

static ngx_int_t
ngx_matrix_xs_check(ngx_matrix_req_t *mr, ngx_matrix_xsign_t *xs,
    ngx_uint_t kind)
{
    mx_json_t         *k, *usage, *keys;
    mx_json_member_t  *m;
    const char        *field, *user;
    size_t             i, len;
    ngx_uint_t         found;
    u_char             pk[32];

    k = xs->key[kind];
    field = ngx_matrix_xs_fields[kind];

    if (k->type != MX_JSON_OBJECT) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "%s must be an object",
                                     field);
    }

    user = mx_json_get_str(k, "user_id", &len);
    usage = mx_json_get_arr(k, "usage");
    keys = mx_json_get_obj(k, "keys");

    if (user == NULL || usage == NULL || keys == NULL
        || (mx_json_get(k, "signatures") != NULL
            && mx_json_get_obj(k, "signatures") == NULL))
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_BAD_JSON", "%s needs user_id (a"
                                     " string), usage (a list), keys (an"
                                     " object)", field);
    }

    if (len != mr->user_id.len
        || ngx_strncmp(user, mr->user_id.data, len) != 0)
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "%s.user_id must be"
                                     " %V", field, &mr->user_id);
    }

    found = 0;

    for (i = 0; i < usage->u.a.n; i++) {
        if (usage->u.a.v[i]->type != MX_JSON_STRING) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "%s.usage must be a"
                                         " list of strings", field);
        }

        if (ngx_strcmp(usage->u.a.v[i]->u.s.p, ngx_matrix_xs_kinds[kind])
            == 0)
        {
            found = 1;
        }
    }

    if (!found) {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "%s.usage must hold"
                                     " \"%s\"", field,
                                     ngx_matrix_xs_kinds[kind]);
    }

    /* exactly one key, "ed25519:<public key>": "<public key>" */
    m = keys->u.o.n == 1 ? &keys->u.o.m[0] : NULL;

    if (m == NULL || m->value->type != MX_JSON_STRING
        || m->key_len != sizeof("ed25519:") - 1 + m->value->u.s.len
        || ngx_strncmp(m->key, "ed25519:", 8) != 0
        || ngx_strncmp(m->key + 8, m->value->u.s.p, m->value->u.s.len) != 0
        || ngx_matrix_xs_decode(m->value->u.s.p, m->value->u.s.len, pk)
           != NGX_OK
        || ngx_strlchr((u_char *) m->value->u.s.p,
                       (u_char *) m->value->u.s.p + m->value->u.s.len, '\37'))
    {
        return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM", "%s.keys must hold"
                                     " one key \"ed25519:<public key>\": the"
                                     " 32-byte key in unpadded base64",
                                     field);
    }

    xs->pk[kind] = m->value->u.s.p;
    xs->pk_len[kind] = m->value->u.s.len;

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_xs_stored(ngx_matrix_req_t *mr, redisReply *reply)
{
    (void) reply;

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK,
                                mx_json_object(ngx_matrix_pool(mr)));
}


static ngx_int_t ngx_matrix_xs_put_authed(ngx_matrix_req_t *mr);


static ngx_int_t
ngx_matrix_xs_put_done(ngx_matrix_req_t *mr, redisReply *reply)
{
    if (reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_STRING)
    {
        if (reply->len == 3 && ngx_strncmp(reply->str, "uia", 3) == 0) {
            return ngx_matrix_uia(mr, "m.login.password",
                                  ngx_matrix_xs_put_authed);
        }

        return ngx_matrix_xs_stored(mr, reply);
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


static ngx_int_t
ngx_matrix_xs_put(ngx_matrix_req_t *mr, ngx_uint_t authed)
{
    ngx_matrix_xsign_t  *xs = mr->data;
    ngx_matrix_cmd_t     c;
    mx_pool_t           *pool;
    ngx_str_t            key;
    ngx_uint_t           i;
    char                *json;
    size_t               len;

    pool = ngx_matrix_pool(mr);

    if (ngx_matrix_user_key(mr, &mr->user_id, "xsign", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_keys_xsign_put", 1);
    ngx_matrix_cmd_str(&c, &key);
    ngx_matrix_cmd_str(&c, &mr->user_id);
    ngx_matrix_cmd_cstr(&c, authed ? "1" : "0");

    for (i = 0; i < 3; i++) {
        if (xs->key[i] == NULL) {
            continue;
        }

        json = mx_json_encode(pool, xs->key[i], 0, &len);
        if (json == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_matrix_cmd_cstr(&c, ngx_matrix_xs_kinds[i]);
        ngx_matrix_cmd_add(&c, json, len);
        ngx_matrix_cmd_add(&c, xs->pk[i], xs->pk_len[i]);
    }

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_xs_put_done);
}


static ngx_int_t
ngx_matrix_xs_put_authed(ngx_matrix_req_t *mr)
{
    return ngx_matrix_xs_put(mr, 1);
}


/* the keys held: the master key to check the others with */

static ngx_int_t
ngx_matrix_xs_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_xsign_t  *xs = mr->data;
    mx_pool_t           *pool;
    mx_json_t           *master;
    mx_json_error_t      err;
    const char          *pk;
    size_t               pklen;
    ngx_uint_t           i;

    pool = ngx_matrix_pool(mr);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    master = xs->key[NGX_MATRIX_XS_MASTER];
    pk = xs->pk[NGX_MATRIX_XS_MASTER];
    pklen = xs->pk_len[NGX_MATRIX_XS_MASTER];

    if (master == NULL && reply->element[0]->len) {
        master = mx_json_parse(pool, reply->element[0]->str,
                               reply->element[0]->len, &err);
        pk = ngx_matrix_keys_xs_pk(master, &pklen);
    }

    for (i = NGX_MATRIX_XS_SELF; i <= NGX_MATRIX_XS_USER; i++) {
        if (xs->key[i] == NULL) {
            continue;
        }

        if (pk == NULL) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_MISSING_PARAM", "No master key"
                                         " available");
        }

        if (!ngx_matrix_xs_signed(pool, xs->key[i], xs->user, pk, pklen)) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_SIGNATURE", "Invalid"
                                         " signature on %s: it must be"
                                         " signed by the master key",
                                         ngx_matrix_xs_fields[i]);
        }
    }

    return ngx_matrix_xs_put(mr, 0);
}


ngx_int_t
ngx_matrix_xsign_upload(ngx_matrix_req_t *mr)
{
    ngx_matrix_xsign_t  *xs;
    ngx_matrix_cmd_t     c;
    ngx_str_t            key;
    ngx_int_t            rc;
    ngx_uint_t           i, n;
    mx_json_t           *k;

    xs = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_xsign_t));
    if (xs == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = xs;

    xs->user = ngx_matrix_xs_cstr(mr, &mr->user_id);
    if (xs->user == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    n = 0;

    for (i = 0; i < 3; i++) {
        k = mx_json_get(mr->body, ngx_matrix_xs_fields[i]);

        if (k == NULL || k->type == MX_JSON_NULL) {
            continue;
        }

        xs->key[i] = k;
        n++;

        rc = ngx_matrix_xs_check(mr, xs, i);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (n == 0) {
        return ngx_matrix_xs_stored(mr, NULL);
    }

    if (ngx_matrix_user_key(mr, &mr->user_id, "xsign", &key) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_fcall_init(&c, "mx_keys_xsign_get", 1);
    ngx_matrix_cmd_str(&c, &key);

    return ngx_matrix_cmd_send(mr, &c, ngx_matrix_xs_got);
}


/*
 * POST /keys/signatures/upload
 */

typedef struct {
    mx_json_t          *failures;
    ngx_matrix_args_t   put;           /* mx_keys_sigs_put */
    ngx_uint_t          nsigs;
    mx_json_t          *own[3];        /* the caller's cross-signing keys */
    mx_json_t          *devices;       /* the caller's device keys */
    mx_json_t          *masters;       /* other users' master keys */
    char               *user;
} ngx_matrix_sigs_t;


static ngx_int_t
ngx_matrix_sigs_fail(ngx_matrix_req_t *mr, const char *user, size_t ulen,
    const char *key_id, size_t klen, const char *errcode, const char *error)
{
    ngx_matrix_sigs_t  *sg = mr->data;
    mx_pool_t          *pool;
    mx_json_t          *u, *f;

    pool = ngx_matrix_pool(mr);

    u = mx_json_getn(sg->failures, user, ulen);
    if (u == NULL) {
        u = mx_json_object(pool);
        if (u == NULL
            || mx_json_setn(pool, sg->failures, user, ulen, u) != 0)
        {
            return NGX_ERROR;
        }
    }

    f = mx_json_object(pool);

    if (f == NULL
        || mx_json_set_str(pool, f, "errcode", errcode) != 0
        || mx_json_set_str(pool, f, "error", error) != 0
        || mx_json_setn(pool, u, key_id, klen, f) != 0)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the object signed is the key held, signatures and unsigned apart */

static ngx_uint_t
ngx_matrix_sigs_same(mx_pool_t *pool, mx_json_t *a, mx_json_t *b)
{
    char    *pa, *pb;
    size_t   la, lb;

    pa = mx_sign_payload(pool, a, 0, &la);
    pb = mx_sign_payload(pool, b, 0, &lb);

    return pa != NULL && pb != NULL && la == lb && ngx_memcmp(pa, pb, la) == 0;
}


/*
 * The signatures by the caller in obj that verify: signer key IDs accepted
 * are "ed25519:<pk>" of the key given (pk non-NULL), or any of the caller's
 * devices (pk NULL: the caller's master key, signed by a device).  Each
 * goes into the put command; returns how many, or -1 on ENOMEM.
 */

static ngx_int_t
ngx_matrix_sigs_take(ngx_matrix_req_t *mr, mx_json_t *obj, const char *user,
    size_t ulen, const char *target, size_t tlen, const char *pk,
    size_t pklen)
{
    ngx_matrix_sigs_t  *sg = mr->data;
    mx_pool_t          *pool;
    mx_json_t          *sigs, *dev, *only;
    mx_json_member_t   *m;
    const char         *kpk;
    size_t              i, klen;
    ngx_int_t           n;

    pool = ngx_matrix_pool(mr);
    sigs = mx_json_get_obj(mx_json_get_obj(obj, "signatures"), sg->user);
    n = 0;

    for (i = 0; sigs && i < sigs->u.o.n; i++) {
        m = &sigs->u.o.m[i];

        if (m->value->type != MX_JSON_STRING || m->key_len < 9
            || ngx_strncmp(m->key, "ed25519:", 8) != 0)
        {
            continue;
        }

        if (pk != NULL) {
            if (m->key_len - 8 != pklen
                || ngx_strncmp(m->key + 8, pk, pklen) != 0)
            {
                continue;
            }

            kpk = pk;
            klen = pklen;

        } else {
            /* one of the caller's devices, by its own ed25519 key */
            dev = mx_json_getn(sg->devices, m->key + 8, m->key_len - 8);
            kpk = mx_json_get_str(mx_json_get_obj(dev, "keys"), m->key, &klen);
            if (kpk == NULL) {
                continue;
            }
        }

        /* the object with this one signature, to check it alone */
        only = mx_json_object_copy(pool, obj);
        if (only == NULL
            || mx_json_set(pool, only, "signatures", mx_json_object(pool))
               != 0
            || ngx_matrix_keys_add_sig(pool, only, sg->user,
                                       ngx_strlen(sg->user), m->key,
                                       m->key_len, m->value->u.s.p,
                                       m->value->u.s.len) != NGX_OK)
        {
            return -1;
        }

        if (!ngx_matrix_xs_verify(pool, only, sg->user, m->key, kpk, klen)) {
            continue;
        }

        ngx_matrix_args_add(&sg->put, user, ulen);
        ngx_matrix_args_add(&sg->put, target, tlen);
        ngx_matrix_args_add(&sg->put, m->key, m->key_len);
        ngx_matrix_args_add(&sg->put, m->value->u.s.p, m->value->u.s.len);
        n++;
    }

    return n;
}


static ngx_int_t
ngx_matrix_sigs_answer(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_sigs_t  *sg = mr->data;
    mx_pool_t          *pool;
    mx_json_t          *out;

    (void) reply;

    pool = ngx_matrix_pool(mr);
    out = mx_json_object(pool);

    if (out == NULL || mx_json_set(pool, out, "failures", sg->failures) != 0) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_matrix_send_json(mr->r, NGX_HTTP_OK, out);
}


/* one signed object, of user's key key_id: stored or a failure */

static ngx_int_t
ngx_matrix_sigs_one(ngx_matrix_req_t *mr, const char *user, size_t ulen,
    const char *key_id, size_t klen, mx_json_t *obj)
{
    ngx_matrix_sigs_t  *sg = mr->data;
    mx_pool_t          *pool;
    mx_json_t          *held, *signer;
    const char         *pk, *spk;
    size_t              pklen, spklen;
    ngx_uint_t          own;
    ngx_int_t           n;

    pool = ngx_matrix_pool(mr);
    own = ulen == mr->user_id.len
          && ngx_strncmp(user, mr->user_id.data, ulen) == 0;

    if (!mx_json_is(obj, MX_JSON_OBJECT)) {
        return ngx_matrix_sigs_fail(mr, user, ulen, key_id, klen,
                                    "M_BAD_JSON", "Not an object");
    }

    if (!own) {
        held = mx_json_getn(sg->masters, user, ulen);
        pk = ngx_matrix_keys_xs_pk(held, &pklen);
        signer = sg->own[NGX_MATRIX_XS_USER];

        if (pk == NULL || pklen != klen || ngx_strncmp(pk, key_id, klen) != 0)
        {
            return ngx_matrix_sigs_fail(mr, user, ulen, key_id, klen,
                                        "M_NOT_FOUND", "Unknown key: only"
                                        " other users' master keys are"
                                        " signed");
        }

        spk = ngx_matrix_keys_xs_pk(signer, &spklen);
        if (spk == NULL) {
            return ngx_matrix_sigs_fail(mr, user, ulen, key_id, klen,
                                        "M_NOT_FOUND", "No user-signing key"
                                        " to sign with");
        }

    } else {
        held = mx_json_getn(sg->devices, key_id, klen);
        spk = NULL;
        spklen = 0;

        if (held != NULL) {
            spk = ngx_matrix_keys_xs_pk(sg->own[NGX_MATRIX_XS_SELF], &spklen);
            if (spk == NULL) {
                return ngx_matrix_sigs_fail(mr, user, ulen, key_id, klen,
                                            "M_NOT_FOUND", "No self-signing"
                                            " key to sign with");
            }

        } else {
            held = sg->own[NGX_MATRIX_XS_MASTER];
            pk = ngx_matrix_keys_xs_pk(held, &pklen);

            if (pk == NULL || pklen != klen
                || ngx_strncmp(pk, key_id, klen) != 0)
            {
                return ngx_matrix_sigs_fail(mr, user, ulen, key_id, klen,
                                            "M_NOT_FOUND", "Unknown key:"
                                            " neither a device nor the"
                                            " master key");
            }
        }
    }

    if (!ngx_matrix_sigs_same(pool, obj, held)) {
        return ngx_matrix_sigs_fail(mr, user, ulen, key_id, klen,
                                    "M_INVALID_PARAM", "Key does not match"
                                    " the one held");
    }

    n = ngx_matrix_sigs_take(mr, obj, user, ulen, key_id, klen, spk, spklen);
    if (n < 0) {
        return NGX_ERROR;
    }

    if (n == 0) {
        return ngx_matrix_sigs_fail(mr, user, ulen, key_id, klen,
                                    "M_INVALID_SIGNATURE",
                                    "Invalid signature");
    }

    sg->nsigs += n;

    return NGX_OK;
}


static ngx_int_t
ngx_matrix_sigs_got(ngx_matrix_req_t *mr, redisReply *reply)
{
    ngx_matrix_sigs_t  *sg = mr->data;
    mx_pool_t          *pool;
    mx_json_t          *k;
    mx_json_member_t   *u, *m;
    mx_json_error_t     err;
    redisReply        **e;
    ngx_str_t           key;
    size_t              i, j, n;

    pool = ngx_matrix_pool(mr);

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_ARRAY
        || reply->element[0]->elements != 3
        || reply->element[1]->type != REDIS_REPLY_ARRAY
        || reply->element[2]->type != REDIS_REPLY_ARRAY)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < 3; i++) {
        e = reply->element[0]->element;
        sg->own[i] = e[i]->len ? mx_json_parse(pool, e[i]->str, e[i]->len,
                                               &err)
                               : NULL;
    }

    sg->devices = mx_json_object(pool);
    sg->masters = mx_json_object(pool);
    if (sg->devices == NULL || sg->masters == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (j = 1; j <= 2; j++) {
        e = reply->element[j]->element;

        for (i = 0; i + 1 < reply->element[j]->elements; i += 2) {
            if (e[i + 1]->len == 0) {
                continue;
            }

            k = mx_json_parse(pool, e[i + 1]->str, e[i + 1]->len, &err);
            if (mx_json_is(k, MX_JSON_OBJECT)
                && mx_json_setn(pool, j == 1 ? sg->devices : sg->masters,
                                e[i]->str, e[i]->len, k) != 0)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    /* room for every signature of every object */
    n = 0;
    for (i = 0; i < mr->body->u.o.n; i++) {
        u = &mr->body->u.o.m[i];

        for (j = 0; j < u->value->u.o.n; j++) {
            k = mx_json_get_obj(mx_json_get_obj(u->value->u.o.m[j].value,
                                                "signatures"), sg->user);
            n += k ? k->u.o.n : 0;
        }
    }

    if (ngx_matrix_user_key(mr, &mr->user_id, "keysigs", &key) != NGX_OK
        || ngx_matrix_args_init(mr, &sg->put, "mx_keys_sigs_put", &key,
                                1 + 4 * n) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_args_str(&sg->put, &mr->user_id);

    for (i = 0; i < mr->body->u.o.n; i++) {
        u = &mr->body->u.o.m[i];

        if (!ngx_matrix_keys_local(mr, u->key, u->key_len)) {
            continue;
        }

        for (j = 0; j < u->value->u.o.n; j++) {
            m = &u->value->u.o.m[j];

            if (ngx_matrix_sigs_one(mr, u->key, u->key_len, m->key,
                                    m->key_len, m->value) != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    if (sg->nsigs == 0) {
        return ngx_matrix_sigs_answer(mr, NULL);
    }

    return ngx_matrix_args_send(mr, &sg->put, ngx_matrix_sigs_answer);
}


ngx_int_t
ngx_matrix_sigs_upload(ngx_matrix_req_t *mr)
{
    ngx_matrix_sigs_t  *sg;
    ngx_matrix_args_t   a;
    mx_pool_t          *pool;
    mx_json_member_t   *u;
    ngx_str_t           key;
    size_t              i, j, others;

    pool = ngx_matrix_pool(mr);

    sg = ngx_pcalloc(mr->r->pool, sizeof(ngx_matrix_sigs_t));
    if (sg == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    mr->data = sg;
    sg->failures = mx_json_object(pool);
    sg->user = ngx_matrix_xs_cstr(mr, &mr->user_id);
    if (sg->failures == NULL || sg->user == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    others = 0;

    for (i = 0; i < mr->body->u.o.n; i++) {
        u = &mr->body->u.o.m[i];

        if (!mx_user_id_historical_valid(u->key, u->key_len)) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_INVALID_PARAM", "Not a user ID:"
                                         " %s", u->key);
        }

        if (!mx_json_is(u->value, MX_JSON_OBJECT)) {
            return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                         "M_BAD_JSON", "The body maps user"
                                         " IDs to objects of key IDs and"
                                         " signed objects");
        }

        for (j = 0; j < u->value->u.o.n; j++) {
            if (!ngx_matrix_keys_id_valid(u->value->u.o.m[j].key,
                                          u->value->u.o.m[j].key_len))
            {
                return ngx_matrix_send_error(mr->r, NGX_HTTP_BAD_REQUEST,
                                             "M_INVALID_PARAM", "Not a key"
                                             " ID: %s",
                                             u->value->u.o.m[j].key);
            }
        }

        if (!ngx_matrix_keys_local(mr, u->key, u->key_len)) {
            for (j = 0; j < u->value->u.o.n; j++) {
                if (ngx_matrix_sigs_fail(mr, u->key, u->key_len,
                                         u->value->u.o.m[j].key,
                                         u->value->u.o.m[j].key_len,
                                         "M_UNKNOWN", "Federation is not"
                                         " available on this server yet")
                    != NGX_OK)
                {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }
            }

        } else if (u->key_len != mr->user_id.len
                   || ngx_strncmp(u->key, mr->user_id.data, u->key_len) != 0)
        {
            others++;
        }
    }

    if (ngx_matrix_user_key(mr, &mr->user_id, "xsign", &key) != NGX_OK
        || ngx_matrix_args_init(mr, &a, "mx_keys_sigs_get", &key,
                                1 + others) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_matrix_args_str(&a, &mr->user_id);

    for (i = 0; i < mr->body->u.o.n; i++) {
        u = &mr->body->u.o.m[i];

        if (ngx_matrix_keys_local(mr, u->key, u->key_len)
            && (u->key_len != mr->user_id.len
                || ngx_strncmp(u->key, mr->user_id.data, u->key_len) != 0))
        {
            ngx_matrix_args_add(&a, u->key, u->key_len);
        }
    }

    return ngx_matrix_args_send(mr, &a, ngx_matrix_sigs_got);
}

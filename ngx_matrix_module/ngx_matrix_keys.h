/*
 * What the end-to-end encryption files (ngx_matrix_keys.c,
 * ngx_matrix_cross_signing.c) share: a command of any number of
 * arguments (key uploads and queries name as many keys and users as the
 * body holds), and small helpers on keys.
 */

#ifndef NGX_MATRIX_KEYS_H_INCLUDED_
#define NGX_MATRIX_KEYS_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_matrix_module.h"


typedef struct {
    const char   **v;
    size_t        *len;
    ngx_uint_t     n;
    ngx_uint_t     cap;
} ngx_matrix_args_t;


/* "FCALL <function> 1 <key>" and room for cap more arguments */
ngx_int_t ngx_matrix_args_init(ngx_matrix_req_t *mr, ngx_matrix_args_t *a,
    const char *function, ngx_str_t *key, ngx_uint_t cap);
void ngx_matrix_args_add(ngx_matrix_args_t *a, const void *p, size_t len);
#define ngx_matrix_args_str(a, s)  ngx_matrix_args_add(a, (s)->data, (s)->len)
ngx_int_t ngx_matrix_args_send(ngx_matrix_req_t *mr, ngx_matrix_args_t *a,
    ngx_matrix_reply_pt next);

/* is the user ID one of this server's? */
ngx_uint_t ngx_matrix_keys_local(ngx_matrix_req_t *mr, const char *user_id,
    size_t len);

/* a key or device ID fit for a Redis field: 1 to 255 bytes, no control
 * characters */
ngx_uint_t ngx_matrix_keys_id_valid(const char *p, size_t len);

/* the public key of a cross-signing key: the value of its one "keys" */
const char *ngx_matrix_keys_xs_pk(const mx_json_t *key, size_t *len);

/* failures.<server> for a user of another server, until federation */
ngx_int_t ngx_matrix_keys_remote(ngx_matrix_req_t *mr, mx_json_t *failures,
    const char *user_id, size_t len);

/* obj.signatures.<signer>.<key_id> = sig */
ngx_int_t ngx_matrix_keys_add_sig(mx_pool_t *pool, mx_json_t *obj,
    const char *signer, size_t signer_len, const char *key_id,
    size_t key_id_len, const char *sig, size_t sig_len);

#endif /* NGX_MATRIX_KEYS_H_INCLUDED_ */

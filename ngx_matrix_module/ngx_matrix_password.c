/*
 * Passwords: argon2id (libsodium's crypto_pwhash_str), computed in nginx's
 * thread pool so the event loop never waits on it.
 *
 *   event loop                          thread pool (matrix_thread_pool)
 *   ──────────                          ───────────
 *   ngx_matrix_password_verify() ──post──► crypto_pwhash_str_verify()
 *       returns NGX_DONE                         │
 *   ngx_matrix_password_done()  ◄──event────────┘
 *       done(mr, ok) answers or goes on
 *
 * Cost: 2 passes over 19 MiB, the OWASP recommendation for argon2id; the
 * parameters are kept in each hash, so they can be raised later without
 * invalidating old hashes.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif

#include <sodium.h>

#include "ngx_matrix_module.h"


#define NGX_MATRIX_ARGON2_OPS   2
#define NGX_MATRIX_ARGON2_MEM   (19 * 1024 * 1024)
#define NGX_MATRIX_PASSWORD_MAX 512


typedef struct {
    ngx_matrix_req_t     *mr;
    ngx_matrix_work_pt    done;
    u_char               *password;     /* a copy, wiped after use */
    size_t                password_len;
    char                 *hash;         /* in: to verify; out: made */
    ngx_str_t            *out;
    ngx_int_t             ok;
    unsigned              verify:1;
} ngx_matrix_pw_task_t;


ngx_int_t
ngx_matrix_password_dummy(ngx_pool_t *pool, ngx_str_t *hash)
{
    char    buf[crypto_pwhash_STRBYTES];
    u_char  random[16];

    if (sodium_init() < 0) {
        return NGX_ERROR;
    }

    randombytes_buf(random, sizeof(random));

    if (crypto_pwhash_str(buf, (char *) random, sizeof(random),
                          NGX_MATRIX_ARGON2_OPS, NGX_MATRIX_ARGON2_MEM)
        != 0)
    {
        return NGX_ERROR;
    }

    hash->len = ngx_strlen(buf);
    hash->data = ngx_pnalloc(pool, hash->len + 1);
    if (hash->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(hash->data, buf, hash->len + 1);

    return NGX_OK;
}


#if (NGX_THREADS)

/* in a thread: only the task's own memory, no nginx calls */

static void
ngx_matrix_password_thread(void *data, ngx_log_t *log)
{
    ngx_matrix_pw_task_t  *t = data;

    if (t->verify) {
        t->ok = crypto_pwhash_str_verify(t->hash, (char *) t->password,
                                         t->password_len) == 0;
    } else {
        t->ok = crypto_pwhash_str(t->hash, (char *) t->password,
                                  t->password_len, NGX_MATRIX_ARGON2_OPS,
                                  NGX_MATRIX_ARGON2_MEM) == 0;
    }

    sodium_memzero(t->password, t->password_len);
}


/* back on the event loop */

static void
ngx_matrix_password_done(ngx_event_t *ev)
{
    ngx_matrix_pw_task_t  *t = ev->data;
    ngx_int_t              rc;

    if (!t->verify && t->ok) {
        t->out->data = (u_char *) t->hash;
        t->out->len = ngx_strlen(t->hash);
    }

    if (!t->verify && !t->ok) {
        rc = ngx_matrix_send_error(t->mr->r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   "M_UNKNOWN", "Could not hash the password");
    } else {
        rc = t->done(t->mr, t->ok);
    }

    ngx_matrix_continue(t->mr, rc);
}


static ngx_int_t
ngx_matrix_password_post(ngx_matrix_req_t *mr, ngx_str_t *password,
    ngx_str_t *hash, ngx_str_t *out, ngx_matrix_work_pt done)
{
    ngx_http_request_t    *r;
    ngx_thread_task_t     *task;
    ngx_thread_pool_t     *tp;
    ngx_matrix_pw_task_t  *t;

    r = mr->r;

    if (password->len > NGX_MATRIX_PASSWORD_MAX) {
        return ngx_matrix_send_error(r, NGX_HTTP_BAD_REQUEST,
                                     "M_INVALID_PARAM",
                                     "Passwords are at most %d bytes",
                                     NGX_MATRIX_PASSWORD_MAX);
    }

    tp = ngx_thread_pool_get((ngx_cycle_t *) ngx_cycle,
                             &mr->mcf->thread_pool_name);
    if (tp == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_matrix_pw_task_t));
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    t = task->ctx;
    t->mr = mr;
    t->done = done;
    t->out = out;
    t->verify = (hash != NULL);
    t->password_len = password->len;

    t->password = ngx_pnalloc(r->pool, password->len + 1);
    t->hash = ngx_pnalloc(r->pool, crypto_pwhash_STRBYTES);
    if (t->password == NULL || t->hash == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(t->password, password->data, password->len);
    t->password[password->len] = '\0';

    if (hash) {
        /* a stored hash too long to be one cannot verify anything */
        if (hash->len >= crypto_pwhash_STRBYTES) {
            hash = &mr->mcf->dummy_hash;
            t->verify = 1;
        }
        ngx_memcpy(t->hash, hash->data, hash->len);
        t->hash[hash->len] = '\0';
    }

    task->handler = ngx_matrix_password_thread;
    task->event.handler = ngx_matrix_password_done;
    task->event.data = t;

    if (ngx_thread_task_post(tp, task) != NGX_OK) {
        sodium_memzero(t->password, t->password_len);
        return ngx_matrix_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "M_UNKNOWN", "The server is too busy;"
                                     " try again later");
    }

    return NGX_DONE;
}


/* hash a new password; done(mr, 1) finds it in *hash */

ngx_int_t
ngx_matrix_password_hash(ngx_matrix_req_t *mr, ngx_str_t *password,
    ngx_str_t *hash, ngx_matrix_work_pt done)
{
    return ngx_matrix_password_post(mr, password, NULL, hash, done);
}


/* check a password against a stored hash (NULL: against the dummy one) */

/*
 * Check a password against a stored hash.  With no hash (no such user, or
 * one without a password) it checks against the dummy, which matches no
 * password anyone knows: the answer is no, and takes as long as a yes.
 */

ngx_int_t
ngx_matrix_password_verify(ngx_matrix_req_t *mr, ngx_str_t *hash,
    ngx_str_t *password, ngx_matrix_work_pt done)
{
    if (hash == NULL || hash->len == 0) {
        hash = &mr->mcf->dummy_hash;
    }

    return ngx_matrix_password_post(mr, password, hash, NULL, done);
}

#endif

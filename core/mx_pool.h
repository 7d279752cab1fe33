/*
 * mx_pool: a region allocator for core/.
 *
 * Everything core/ builds for one piece of work (a parsed request body, an
 * event being signed, a state-resolution run) comes from one pool and is
 * released at once with mx_pool_destroy(), the way nginx releases a request's
 * memory with its pool.  There is no per-object free.
 *
 *   pool ──► block ──► block ──► ...     small allocations, bump pointer
 *       └──► large ──► large ──► ...     allocations over MX_POOL_LARGE
 */

#ifndef MX_POOL_H
#define MX_POOL_H

#include <stddef.h>

typedef struct mx_pool_s  mx_pool_t;

mx_pool_t *mx_pool_create(size_t block_size);
void mx_pool_destroy(mx_pool_t *pool);
void mx_pool_reset(mx_pool_t *pool);

/* aligned to pointer size; NULL only when malloc fails */
void *mx_palloc(mx_pool_t *pool, size_t size);
void *mx_pcalloc(mx_pool_t *pool, size_t size);
char *mx_pstrndup(mx_pool_t *pool, const char *s, size_t len);

/* bytes handed out so far (for tests and figures) */
size_t mx_pool_used(const mx_pool_t *pool);

#endif /* MX_POOL_H */

/*
 * mx_pool: region allocator.  See mx_pool.h.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mx_pool.h"


#define MX_POOL_ALIGN     sizeof(void *)
#define MX_POOL_DEFAULT   8192


typedef struct mx_block_s  mx_block_t;

struct mx_block_s {
    mx_block_t  *next;
    size_t       size;      /* usable bytes after the header */
    size_t       used;
};

struct mx_pool_s {
    mx_block_t  *current;   /* newest block, allocations come from here */
    mx_block_t  *large;     /* list of oversized allocations */
    size_t       block_size;
    size_t       total;
};


#define mx_block_data(b)  ((char *) (b) + sizeof(mx_block_t))


static size_t
mx_align(size_t n)
{
    return (n + (MX_POOL_ALIGN - 1)) & ~(MX_POOL_ALIGN - 1);
}


static mx_block_t *
mx_block_new(size_t size)
{
    mx_block_t  *b;

    b = malloc(sizeof(mx_block_t) + size);
    if (b == NULL) {
        return NULL;
    }

    b->next = NULL;
    b->size = size;
    b->used = 0;

    return b;
}


mx_pool_t *
mx_pool_create(size_t block_size)
{
    mx_pool_t  *pool;

    pool = malloc(sizeof(mx_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->block_size = block_size ? mx_align(block_size) : MX_POOL_DEFAULT;
    pool->current = NULL;
    pool->large = NULL;
    pool->total = 0;

    return pool;
}


static void
mx_block_list_free(mx_block_t *b)
{
    mx_block_t  *next;

    while (b) {
        next = b->next;
        free(b);
        b = next;
    }
}


void
mx_pool_destroy(mx_pool_t *pool)
{
    if (pool == NULL) {
        return;
    }

    mx_block_list_free(pool->current);
    mx_block_list_free(pool->large);
    free(pool);
}


/*
 * Keep the newest block for reuse, free everything else.
 */

void
mx_pool_reset(mx_pool_t *pool)
{
    mx_block_t  *keep;

    keep = pool->current;

    if (keep) {
        mx_block_list_free(keep->next);
        keep->next = NULL;
        keep->used = 0;
    }

    mx_block_list_free(pool->large);
    pool->large = NULL;
    pool->total = 0;
}


void *
mx_palloc(mx_pool_t *pool, size_t size)
{
    mx_block_t  *b;
    void        *p;

    size = mx_align(size ? size : 1);

    if (size > pool->block_size / 4) {
        b = mx_block_new(size);
        if (b == NULL) {
            return NULL;
        }

        b->used = size;
        b->next = pool->large;
        pool->large = b;
        pool->total += size;

        return mx_block_data(b);
    }

    b = pool->current;

    if (b == NULL || b->size - b->used < size) {
        b = mx_block_new(pool->block_size);
        if (b == NULL) {
            return NULL;
        }

        b->next = pool->current;
        pool->current = b;
    }

    p = mx_block_data(b) + b->used;
    b->used += size;
    pool->total += size;

    return p;
}


void *
mx_pcalloc(mx_pool_t *pool, size_t size)
{
    void  *p;

    p = mx_palloc(pool, size);
    if (p) {
        memset(p, 0, size);
    }

    return p;
}


char *
mx_pstrndup(mx_pool_t *pool, const char *s, size_t len)
{
    char  *p;

    p = mx_palloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, s, len);
    p[len] = '\0';

    return p;
}


size_t
mx_pool_used(const mx_pool_t *pool)
{
    return pool->total;
}

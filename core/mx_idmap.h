/*
 * mx_idmap: a hash table from a string (an event ID, a user ID) to a
 * pointer, for the places where a room can hold hundreds of thousands of
 * events: state resolution, its callers and their tests.
 *
 * Open addressing with linear probing, a power-of-two table kept at most
 * 70% full.  Keys are not copied: they must live as long as the map, which
 * is true of everything that comes from the same pool.  The table itself
 * comes from the pool; a table that grows leaves its old array behind in
 * the pool, which at most doubles what the final table takes.
 *
 *   slots:  [ - ][ k,h,v ][ k,h,v ][ - ][ k,h,v ] ...   h = 64-bit hash
 */

#ifndef MX_IDMAP_H
#define MX_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "mx_pool.h"


typedef struct {
    const char  *key;       /* NULL: the slot is free */
    uint64_t     hash;
    void        *value;
} mx_idmap_slot_t;

typedef struct {
    mx_pool_t        *pool;
    mx_idmap_slot_t  *slots;
    size_t            cap;  /* 0 or a power of two */
    size_t            n;
} mx_idmap_t;


/* an empty map; hint is the expected number of keys (0 is fine) */
int mx_idmap_init(mx_idmap_t *map, mx_pool_t *pool, size_t hint);

/* NULL when the key is absent */
void *mx_idmap_get(const mx_idmap_t *map, const char *key);

/*
 * The value slot of key, inserted with value NULL when absent (*created set
 * to 1, else 0).  NULL only when the pool is out of memory.  The pointer is
 * valid until the next insertion.
 */
void **mx_idmap_slot(mx_idmap_t *map, const char *key, int *created);

/* insert or replace; 0, or -1 when out of memory */
int mx_idmap_put(mx_idmap_t *map, const char *key, void *value);

/* the hash used for keys, continuing from h (mixed again before use) */
uint64_t mx_idmap_hash(const char *p, size_t len, uint64_t h);

#define MX_IDMAP_HASH_INIT  0x243f6a8885a308d3ULL

/* walk: for (i = 0; i < map->cap; i++) if (map->slots[i].key) ... */

#endif /* MX_IDMAP_H */

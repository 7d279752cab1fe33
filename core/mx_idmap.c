/*
 * mx_idmap: string-keyed hash table.  See mx_idmap.h.
 */

#include <string.h>

#include "mx_idmap.h"


#define MX_IDMAP_MIN  16


/*
 * Eight bytes at a time: each word is folded in with a multiply and a
 * shift, the tail word carries the length.  It continues from h, so that
 * callers can hash two strings into one value; mx_idmap_mix() spreads the
 * bits before a value picks a slot.
 */

uint64_t
mx_idmap_hash(const char *p, size_t len, uint64_t h)
{
    uint64_t  w;

    while (len >= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }

    w = 0;
    memcpy(&w, p, len);
    h = (h ^ w ^ ((uint64_t) len << 56)) * 0x9e3779b97f4a7c15ULL;
    h ^= h >> 32;

    return h;
}


static uint64_t
mx_idmap_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;

    return h;
}


static size_t
mx_idmap_capacity(size_t n)
{
    size_t  cap;

    cap = MX_IDMAP_MIN;

    while (cap / 10 * 7 < n) {
        cap *= 2;
    }

    return cap;
}


int
mx_idmap_init(mx_idmap_t *map, mx_pool_t *pool, size_t hint)
{
    map->pool = pool;
    map->n = 0;
    map->cap = mx_idmap_capacity(hint);
    map->slots = mx_pcalloc(pool, map->cap * sizeof(mx_idmap_slot_t));

    return map->slots ? 0 : -1;
}


/*
 * Move every key to a table twice the size.  The old array stays in the
 * pool until the pool goes.
 */

static int
mx_idmap_grow(mx_idmap_t *map)
{
    mx_idmap_slot_t  *old, *slots;
    size_t            cap, i, j;

    cap = map->cap * 2;
    slots = mx_pcalloc(map->pool, cap * sizeof(mx_idmap_slot_t));
    if (slots == NULL) {
        return -1;
    }

    old = map->slots;

    for (i = 0; i < map->cap; i++) {
        if (old[i].key == NULL) {
            continue;
        }

        j = old[i].hash & (cap - 1);

        while (slots[j].key) {
            j = (j + 1) & (cap - 1);
        }

        slots[j] = old[i];
    }

    map->slots = slots;
    map->cap = cap;

    return 0;
}


static mx_idmap_slot_t *
mx_idmap_find(const mx_idmap_t *map, const char *key, uint64_t h)
{
    size_t  j;

    j = h & (map->cap - 1);

    while (map->slots[j].key) {
        if (map->slots[j].hash == h && strcmp(map->slots[j].key, key) == 0) {
            return &map->slots[j];
        }

        j = (j + 1) & (map->cap - 1);
    }

    return &map->slots[j];
}


void *
mx_idmap_get(const mx_idmap_t *map, const char *key)
{
    mx_idmap_slot_t  *s;
    uint64_t          h;

    if (map->cap == 0) {
        return NULL;
    }

    h = mx_idmap_mix(mx_idmap_hash(key, strlen(key), MX_IDMAP_HASH_INIT));
    s = mx_idmap_find(map, key, h);

    return s->key ? s->value : NULL;
}


void **
mx_idmap_slot(mx_idmap_t *map, const char *key, int *created)
{
    mx_idmap_slot_t  *s;
    uint64_t          h;

    if (map->cap == 0 && mx_idmap_init(map, map->pool, 0) != 0) {
        return NULL;
    }

    h = mx_idmap_mix(mx_idmap_hash(key, strlen(key), MX_IDMAP_HASH_INIT));
    s = mx_idmap_find(map, key, h);

    if (s->key) {
        if (created) {
            *created = 0;
        }

        return &s->value;
    }

    if ((map->n + 1) > map->cap / 10 * 7) {
        if (mx_idmap_grow(map) != 0) {
            return NULL;
        }

        s = mx_idmap_find(map, key, h);
    }

    s->key = key;
    s->hash = h;
    s->value = NULL;
    map->n++;

    if (created) {
        *created = 1;
    }

    return &s->value;
}


int
mx_idmap_put(mx_idmap_t *map, const char *key, void *value)
{
    void  **v;

    v = mx_idmap_slot(map, key, NULL);
    if (v == NULL) {
        return -1;
    }

    *v = value;

    return 0;
}

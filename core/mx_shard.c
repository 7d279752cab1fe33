/*
 * mx_shard: input shards.  See mx_shard.h.
 */

#include <stdint.h>

#include "mx_shard.h"


unsigned
mx_room_shard(const char *room_id, size_t len, unsigned nshards)
{
    uint32_t  h;
    size_t    i;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h ^= (unsigned char) room_id[i];
        h *= 16777619u;
    }

    return nshards ? h % nshards : 0;
}

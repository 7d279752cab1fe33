/*
 * mx_shard: which input shard a room's events go to.  The module appends
 * to mx:input:<mx_room_shard(room, n)>, the roomserver owning that shard
 * reads them: both must agree, so it lives here once.
 */

#ifndef MX_SHARD_H
#define MX_SHARD_H

#include <stddef.h>

/* FNV-1a (32-bit) of the room ID, modulo the number of shards */
unsigned mx_room_shard(const char *room_id, size_t len, unsigned nshards);

#endif /* MX_SHARD_H */

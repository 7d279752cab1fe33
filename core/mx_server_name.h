/*
 * mx_server_name: the pure parts of server discovery (server-server API,
 * "Resolving server names").
 *
 *   server_name = hostname [ ":" port ]
 *   hostname    = IPv4address / "[" IPv6address "]" / dns-name
 *
 * A server name is split into its host (an IPv6 literal without its
 * brackets), its port (0 when none is given) and whether the host is an IP
 * literal, which decides the discovery steps: an IP literal or an explicit
 * port is used as it is; a bare host name goes through .well-known and SRV.
 *
 * Also here, because they are parsing and policy and no I/O: the body of
 * /.well-known/matrix/server, the max-age of a Cache-Control header, and
 * the order in which SRV targets are tried (RFC 2782: priority, then a
 * weighted random pick; the random numbers come from the caller).
 */

#ifndef MX_SERVER_NAME_H
#define MX_SERVER_NAME_H

#include <stddef.h>
#include <stdint.h>

#include "mx_pool.h"


#define MX_HOST_MAX  255

typedef enum {
    MX_HOST_NAME = 0,
    MX_HOST_IPV4,
    MX_HOST_IPV6
} mx_host_type_t;

typedef struct {
    char            host[MX_HOST_MAX + 1];  /* IPv6 without brackets */
    unsigned        port;                   /* 0: none given */
    mx_host_type_t  type;
} mx_server_name_t;


/* 0, or -1 when s is not a valid server name */
int mx_server_name_parse(const char *s, size_t len, mx_server_name_t *out);

/* an IP literal: IPv4 or [IPv6] */
#define mx_server_name_is_ip(sn)  ((sn)->type != MX_HOST_NAME)


/*
 * The body of GET /.well-known/matrix/server: {"m.server": "<name>"}, the
 * delegated server name, itself a server name.  0 and *out, or -1 with
 * *why (the spec says to treat every such failure as "no delegation").
 */
int mx_wellknown_server_parse(mx_pool_t *pool, const char *body, size_t len,
    mx_server_name_t *out, const char **why);


/*
 * max-age of a Cache-Control header value, in seconds: 0 and *secs, or -1
 * when there is none.  "no-store" and "no-cache" give 0 seconds.
 */
int mx_cache_control_max_age(const char *v, size_t len, int64_t *secs);


/* one SRV record */
typedef struct {
    unsigned  priority;
    unsigned  weight;
    unsigned  port;
    char      target[MX_HOST_MAX + 1];   /* without the trailing dot */
} mx_srv_t;

/* a uniform random number in [0, bound); bound > 0 */
typedef uint32_t (*mx_random_pt)(void *ctx, uint32_t bound);

/*
 * Put the records in the order they are to be tried: by priority, lowest
 * first; within one priority by RFC 2782's weighted random selection.  A
 * single record whose target is "." means the service is not offered:
 * returns 0 records then.  Returns the number of records to try.
 */
size_t mx_srv_order(mx_srv_t *rr, size_t n, mx_random_pt rnd, void *ctx);

#endif /* MX_SERVER_NAME_H */

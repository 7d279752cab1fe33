/*
 * mx_acl: server access control lists (m.room.server_acl), the spec's
 * order of checks:
 *
 *   no m.room.server_acl in the state           allow
 *   an IP literal and allow_ip_literals false   deny
 *   a deny glob matches                         deny
 *   an allow glob matches                       allow
 *   otherwise                                   deny
 *
 * The server name is matched without its port ("evil.com:8448" is
 * "evil.com"); an IPv6 literal keeps its brackets.  Globs are those of
 * push rules ('*' any run, '?' one character, ASCII case ignored: DNS
 * names are case-insensitive) and must match the whole host.  Entries
 * that are not strings are skipped; allow_ip_literals counts only when it
 * is the boolean false.
 */

#ifndef MX_ACL_H
#define MX_ACL_H

#include <stddef.h>

#include <mx_json.h>
#include <mx_pool.h>

/* the host of a server name: its length, the port left out */
size_t mx_acl_host(const char *server, size_t len);

/* an IPv4 dotted quad or a bracketed IPv6 literal */
int mx_acl_ip_literal(const char *host, size_t len);

/*
 * May server take part in a room whose m.room.server_acl content is
 * content (NULL: no ACL event)?  1 allowed, 0 denied, -1 out of memory.
 */
int mx_acl_allowed(mx_pool_t *pool, const mx_json_t *content,
    const char *server, size_t len);

#endif /* MX_ACL_H */

/*
 * mx_ids: the identifier grammars of the appendices.
 */

#ifndef MX_IDS_H
#define MX_IDS_H

#include <stddef.h>

/*
 * server_name = hostname [ ":" port ]      port = 1*5DIGIT
 * hostname    = IPv4address / "[" IPv6address "]" / dns-name
 * dns-name    = 1*255 of DIGIT / ALPHA / "-" / "."
 */
int mx_server_name_valid(const char *s, size_t len);

#endif /* MX_IDS_H */

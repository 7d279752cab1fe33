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

/* the server name of "<sigil>localpart:server_name", or NULL */
const char *mx_id_server(const char *s, size_t len, size_t *server_len);

/*
 * user_id = "@" localpart ":" server_name, at most 255 bytes.
 * The current grammar: localpart of a-z 0-9 . _ = - / +.
 */
int mx_user_id_valid(const char *s, size_t len);

/* the historical grammar servers must still accept: %x21-39 / %x3B-7E */
int mx_user_id_historical_valid(const char *s, size_t len);

/* a localpart of the current grammar (what registration accepts) */
int mx_localpart_valid(const char *s, size_t len);

/*
 * room_id = "!" opaque ":" server_name, or (room version 12) "!" and the
 * 43 URL-safe base64 characters of the create event's reference hash.
 */
int mx_room_id_valid(const char *s, size_t len);
int mx_room_id_is_hash(const char *s, size_t len);

/* room_alias = "#" localpart ":" server_name: no NUL, no ':' in it */
int mx_room_alias_valid(const char *s, size_t len);

/*
 * event_id: "$" opaque ":" server_name (MX_EVENT_ID_OPAQUE, v1 and v2),
 * "$" + 43 standard base64 characters (v3), URL-safe (v4 and later).
 * format is an mx_event_id_format_t.
 */
int mx_event_id_valid(const char *s, size_t len, int format);

#endif /* MX_IDS_H */

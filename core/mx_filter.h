/*
 * mx_filter: the filters of POST /user/{userId}/filter, checked against the
 * spec's schema (Filter, RoomFilter, EventFilter, RoomEventFilter) and read
 * into the struct that /sync and /messages use, with the matchers they ask.
 *
 *   Filter           event_fields, event_format, presence, account_data,
 *                    room
 *   RoomFilter       rooms, not_rooms, include_leave, ephemeral, state,
 *                    timeline, account_data
 *   EventFilter      limit, types, not_types, senders, not_senders
 *   RoomEventFilter  EventFilter + rooms, not_rooms, contains_url,
 *                    lazy_load_members, include_redundant_members,
 *                    unread_thread_notifications
 *
 * Keys the schema does not name are let through (and kept by whoever stores
 * the filter); the ones it names must have its types.  A list that is absent
 * is not an empty list: "types": [] lets nothing through, no "types" lets
 * everything.
 *
 * The strings in a parsed filter point into the JSON tree it was read from.
 */

#ifndef MX_FILTER_H
#define MX_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "mx_json.h"
#include "mx_pool.h"


typedef struct {
    const char  *p;
    size_t       len;
} mx_filter_str_t;

typedef struct {
    mx_filter_str_t  *v;
    size_t            n;
    unsigned          set:1;          /* present, even if empty */
} mx_filter_list_t;

typedef enum {
    MX_FILTER_CLIENT = 0,
    MX_FILTER_FEDERATION
} mx_filter_format_t;

/* an EventFilter, or a RoomEventFilter (the room-only fields unused) */
typedef struct {
    int64_t            limit;         /* 0: not given */
    mx_filter_list_t   types;
    mx_filter_list_t   not_types;
    mx_filter_list_t   senders;
    mx_filter_list_t   not_senders;

    mx_filter_list_t   rooms;
    mx_filter_list_t   not_rooms;
    int                contains_url;  /* -1 not given, 0, 1 */
    unsigned           lazy_load_members:1;
    unsigned           include_redundant_members:1;
    unsigned           unread_thread_notifications:1;
} mx_event_filter_t;

typedef struct {
    mx_filter_list_t   event_fields;
    mx_filter_format_t event_format;
    mx_event_filter_t  presence;
    mx_event_filter_t  account_data;

    struct {
        mx_filter_list_t   rooms;
        mx_filter_list_t   not_rooms;
        unsigned           include_leave:1;
        mx_event_filter_t  ephemeral;
        mx_event_filter_t  state;
        mx_event_filter_t  timeline;
        mx_event_filter_t  account_data;
    } room;
} mx_filter_t;


/* what a filter that says nothing means: everything, client format */
void mx_filter_init(mx_filter_t *f);

/*
 * Check a filter and read it into f.  Returns 0, or -1 with a message in
 * err (what is wrong and where, e.g. "room.timeline.limit must be an
 * integer greater than 0"; "out of memory" when the pool is).  Every
 * refusal is M_BAD_JSON for the client.
 */
int mx_filter_parse(mx_pool_t *pool, const mx_json_t *json, mx_filter_t *f,
    char *err, size_t errlen);


/*
 * Does an event type match a pattern of types/not_types?  '*' matches any
 * run of characters (none included); every other character itself.
 */
int mx_filter_type_match(const char *pattern, size_t plen, const char *type,
    size_t len);

/* does it match any pattern of the list? */
int mx_filter_list_match_type(const mx_filter_list_t *list, const char *type,
    size_t len);

/* is this exact string in the list? (senders, rooms) */
int mx_filter_list_has(const mx_filter_list_t *list, const char *s,
    size_t len);

/* types and not_types: not_types wins, an absent types lets all through */
int mx_filter_allows_type(const mx_event_filter_t *f, const char *type,
    size_t len);

/* senders and not_senders, the same way */
int mx_filter_allows_sender(const mx_event_filter_t *f, const char *sender,
    size_t len);

/* rooms and not_rooms of a RoomEventFilter or (lists) of the RoomFilter */
int mx_filter_allows_room(const mx_filter_list_t *rooms,
    const mx_filter_list_t *not_rooms, const char *room_id, size_t len);

/*
 * An event against an EventFilter or RoomEventFilter: its type, sender, room
 * (NULL: none, e.g. presence) and whether its content has a "url" key.
 */
int mx_filter_allows_event(const mx_event_filter_t *f, const char *type,
    size_t type_len, const char *sender, size_t sender_len,
    const char *room_id, size_t room_len, int has_url);

/*
 * An event with only the fields of event_fields (dot-separated paths, "\."
 * for a dot in a name, "\\" for a backslash): a new object sharing the
 * values it keeps.  The event itself when the filter has no event_fields.
 * NULL on ENOMEM.
 */
mx_json_t *mx_filter_event_fields(mx_pool_t *pool, const mx_json_t *ev,
    const mx_filter_list_t *fields);

#endif /* MX_FILTER_H */

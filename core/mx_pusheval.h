/*
 * mx_pusheval: a user's push rules against one event, the way the push
 * module of the spec evaluates them ("Push Rules", "Conditions").
 *
 * The ruleset is the merged one of mx_push_ruleset() (or
 * mx_push_defaults(), or the template of mx_push_template(), whose
 * placeholders stand for the context's user): five arrays, walked in
 * order, override, content,
 * room, sender, underride, each most important rule first.  The first
 * enabled rule that matches decides; its actions say whether the event
 * notifies the user and whether it is highlighted:
 *
 *   notify       "notify" among the actions
 *   highlight    a {"set_tweak": "highlight"} with no value or value true
 *
 * Conditions: event_match (glob, case-insensitive; content.body by words),
 * event_property_is, event_property_contains, contains_display_name,
 * room_member_count and sender_notification_permission.  A condition of
 * another kind never matches, so its rule never does.
 *
 * The room the event is in is described by the caller (mx_push_ctx_t): the
 * user's display name there, how many members are joined, the sender's
 * power level and the "notifications" levels; core never reads a room.
 *
 * The legacy mention rules (.m.rule.contains_display_name,
 * .m.rule.roomnotif, .m.rule.contains_user_name) are skipped for an event
 * whose content has "m.mentions", as the spec asks since v1.7.
 */

#ifndef MX_PUSHEVAL_H
#define MX_PUSHEVAL_H

#include <stddef.h>
#include <stdint.h>

#include "mx_json.h"
#include "mx_pool.h"
#include "mx_pushrules.h"
#include "mx_room_version.h"


typedef struct {
    const char               *user_id;        /* whose rules these are:
                                                 fills a template's
                                                 placeholders */
    const char               *display_name;   /* in the room; NULL: none */
    const char               *room_id;
    int64_t                   member_count;   /* joined members */
    int64_t                   sender_level;   /* the sender's power level */
    const mx_json_t          *notifications;  /* power levels content's
                                                 "notifications", or NULL */
    const mx_room_version_t  *rv;             /* how to read levels; NULL:
                                                 integers only */
} mx_push_ctx_t;

typedef struct {
    const mx_json_t  *rule;        /* the rule that decided; NULL: none */
    const mx_json_t  *actions;     /* its actions; NULL when no rule */
    unsigned          notify:1;
    unsigned          highlight:1;
} mx_push_match_t;


/*
 * Walk the ruleset for an event (its PDU or client form: the keys the
 * conditions look at are the same).  0, or -1 when the pool is out of
 * memory.
 */
int mx_push_eval(mx_pool_t *pool, const mx_json_t *ruleset,
    const mx_json_t *event, const mx_push_ctx_t *ctx, mx_push_match_t *m);

/* what a list of actions means: notify, highlight */
void mx_push_actions_flags(const mx_json_t *actions, mx_push_match_t *m);


/*
 * Glob matching, '*' any run of characters, '?' exactly one (characters
 * are code points of UTF-8), ASCII letters of either case alike.
 *   whole    the pattern must match all of s
 *   words    it must match a run of s that starts and ends at a word
 *            boundary (the start or end of s, or a character that is not
 *            [A-Za-z0-9_]), as event_match on content.body
 * With literal, '*' and '?' are characters like the others (display
 * names).  1 on a match, 0 without, -1 when the pool is out of memory.
 * The cost is O(length of s * length of pattern), whatever the pattern.
 */
#define MX_GLOB_WHOLE    0
#define MX_GLOB_WORDS    1
#define MX_GLOB_LITERAL  2

int mx_push_glob(mx_pool_t *pool, const char *pattern, size_t plen,
    const char *s, size_t len, unsigned flags);

/*
 * The value at a dot-separated property path ("content.m\\.relates_to"),
 * or NULL when some step is missing or not an object.
 */
const mx_json_t *mx_push_path(const mx_json_t *ev, const char *path,
    size_t len);

#endif /* MX_PUSHEVAL_H */

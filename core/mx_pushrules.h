/*
 * mx_pushrules: push rules as data.  The server-default rules of the spec
 * ("Predefined Rules"), the checks on rules a user writes, and the merge of
 * both into the ruleset that GET /pushrules/ answers, that m.push_rules
 * carries in /sync and that the notification evaluator will walk.
 *
 * A ruleset is a JSON object of five arrays, one per kind, in the order the
 * kinds are evaluated, each most important rule first:
 *
 *   override   .m.rule.master, the user's, the other server defaults
 *   content    the user's, then .m.rule.contains_user_name
 *   room       the user's
 *   sender     the user's
 *   underride  the user's, then the server defaults
 *
 * (.m.rule.master is above every other rule, the user's own included; every
 * other server default is below the user's rules of its kind.)
 *
 * A rule is {"rule_id", "default", "enabled", "actions"} plus "conditions"
 * (override and underride) or "pattern" (content).  The user may change the
 * "enabled" and "actions" of any rule, server defaults included; those
 * changes are kept apart from the rules (mx_push_user_t.changes) and applied
 * by the merge.
 */

#ifndef MX_PUSHRULES_H
#define MX_PUSHRULES_H

#include <stddef.h>

#include "mx_json.h"
#include "mx_pool.h"


typedef enum {
    MX_PUSH_OVERRIDE = 0,
    MX_PUSH_CONTENT,
    MX_PUSH_ROOM,
    MX_PUSH_SENDER,
    MX_PUSH_UNDERRIDE,
    MX_PUSH_KINDS
} mx_push_kind_t;


/* "override", ...; NULL past the end */
const char *mx_push_kind_name(mx_push_kind_t kind);

/* the kind a name means, or -1 */
int mx_push_kind(const char *name, size_t len);


/* the spec's placeholders in the server-default rules */
#define MX_PUSH_USER_ID    "[the user's Matrix ID]"
#define MX_PUSH_LOCALPART  "[the local part of the user's Matrix ID]"

/* the server-default rules, in the spec's order: the ID and kind of the
 * i-th, NULL past the end */
const char *mx_push_default_id(size_t i, mx_push_kind_t *kind);

/* is this the ID of a server-default rule of that kind? */
int mx_push_is_default(mx_push_kind_t kind, const char *id, size_t len);

/*
 * The server-default rules for a user: the ruleset above with no rules of
 * the user's own.  The user ID fills ".m.rule.invite_for_me" and
 * ".m.rule.is_user_mention", its localpart ".m.rule.contains_user_name".
 * NULL when the pool is out of memory.
 */
mx_json_t *mx_push_defaults(mx_pool_t *pool, const char *user_id,
    size_t len);


/*
 * The server-default rules with the placeholders left in: one ruleset for
 * every user who has stored nothing, which mx_push_eval() fills in from
 * its context as it walks it.  NULL when the pool is out of memory.
 */
mx_json_t *mx_push_template(mx_pool_t *pool);


/*
 * What a user has stored: their own rules, per kind, each an array of rule
 * objects most important first (NULL for none), and the changes to any
 * rule's "enabled" and "actions", an object keyed "<kind>/<rule_id>" whose
 * values hold "enabled" (a boolean), "actions" (an array) or both (NULL for
 * none).
 */
typedef struct {
    mx_json_t  *rules[MX_PUSH_KINDS];
    mx_json_t  *changes;
} mx_push_user_t;

/*
 * Filling an mx_push_user_t (zeroed first) from what is stored, one stored
 * value at a time: the reply of the Redis function mx_pushrules_get, read
 * by the module and by the syncer alike.  Each returns 0, 1 when the value
 * is invalid and was skipped (the rest still counts; text NULL is invalid),
 * or -1 when out of memory.
 */

/* a stored rule of a kind, as JSON text: kept when it is a JSON object */
int mx_push_user_rule(mx_pool_t *pool, mx_push_user_t *user,
    mx_push_kind_t kind, const char *text, size_t len);

/*
 * A stored change to a rule: the field "enabled:<kind>/<rule_id>" with a
 * JSON boolean, or "actions:<kind>/<rule_id>" with a JSON array, as text;
 * it goes into user->changes as {"<kind>/<rule_id>": {"enabled": ...}}.
 */
int mx_push_user_change(mx_pool_t *pool, mx_push_user_t *user,
    const char *field, size_t field_len, const char *text, size_t len);

/* the merged ruleset; NULL when out of memory */
mx_json_t *mx_push_ruleset(mx_pool_t *pool, const char *user_id,
    size_t len, const mx_push_user_t *user);

/* a rule of a ruleset, or NULL */
mx_json_t *mx_push_find(const mx_json_t *ruleset, mx_push_kind_t kind,
    const char *id, size_t len);


/*
 * Checking what a client sends.  Each returns 0, or -1 with the error code
 * and a message in err (errcode NULL: out of memory).
 */
typedef struct {
    const char  *errcode;          /* M_BAD_JSON, M_MISSING_PARAM, ... */
    char         msg[160];
} mx_push_err_t;

/*
 * The ID of a rule a user creates: valid UTF-8, not empty, no '/' or '\\',
 * not starting with '.' (server defaults only); a room rule's ID is a room
 * ID, a sender rule's a user ID.
 */
int mx_push_rule_id_check(mx_push_kind_t kind, const char *id, size_t len,
    mx_push_err_t *err);

/*
 * An actions array: strings "notify" (and the historical "dont_notify" and
 * "coalesce", which are dropped, as the spec says) or objects with a
 * "set_tweak" string.  *out is the cleaned copy.
 */
int mx_push_actions_check(mx_pool_t *pool, const mx_json_t *actions,
    mx_json_t **out, mx_push_err_t *err);

/*
 * The body of PUT /pushrules/global/{kind}/{ruleId} made into a rule:
 * "actions" always, "conditions" for override and underride (optional, []
 * when absent; each an object with a string "kind", and the parameters of
 * the kinds the spec defines checked), "pattern" for content (required).
 * The rule is enabled, not default.  The ID must have passed
 * mx_push_rule_id_check().
 */
int mx_push_rule_make(mx_pool_t *pool, mx_push_kind_t kind, const char *id,
    size_t len, const mx_json_t *body, mx_json_t **rule, mx_push_err_t *err);

#endif /* MX_PUSHRULES_H */

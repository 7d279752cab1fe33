/*
 * mx_pushrules: the server-default push rules, the checks on a user's rules
 * and the merge.  See mx_pushrules.h.
 *
 * The default rules are the spec's definitions ("Predefined Rules" in the
 * push notifications module), written here as the JSON the spec shows, with
 * its placeholders "[the user's Matrix ID]" and "[the local part of the
 * user's Matrix ID]" replaced for each user after parsing, so that no user
 * ID is ever pasted into JSON text.
 */

#include <stdio.h>
#include <string.h>

#include "mx_pushrules.h"


static const char  *mx_push_kinds[] = {
    "override", "content", "room", "sender", "underride"
};


typedef struct {
    mx_push_kind_t   kind;
    const char      *id;
    unsigned         first:1;       /* above the user's rules */
    const char      *json;
} mx_push_default_t;


#define SOUND_DEFAULT  "{\"set_tweak\":\"sound\",\"value\":\"default\"}"
#define HIGHLIGHT      "{\"set_tweak\":\"highlight\"}"
#define TYPE_IS(t)                                                           \
    "{\"kind\":\"event_match\",\"key\":\"type\",\"pattern\":\"" t "\"}"
#define STATE_KEY_EMPTY                                                      \
    "{\"kind\":\"event_match\",\"key\":\"state_key\",\"pattern\":\"\"}"
#define ROOM_OF_TWO    "{\"kind\":\"room_member_count\",\"is\":\"2\"}"

/* the spec's definitions, in the spec's order, without rule_id and default */

static const mx_push_default_t  mx_push_default_rules[] = {

    /* Default Override Rules */

    { MX_PUSH_OVERRIDE, ".m.rule.master", 1,
      "{\"enabled\":false,\"conditions\":[],\"actions\":[]}" },

    { MX_PUSH_OVERRIDE, ".m.rule.suppress_notices", 0,
      "{\"enabled\":true,\"conditions\":[{\"kind\":\"event_match\","
      "\"key\":\"content.msgtype\",\"pattern\":\"m.notice\"}],"
      "\"actions\":[]}" },

    { MX_PUSH_OVERRIDE, ".m.rule.invite_for_me", 0,
      "{\"enabled\":true,\"conditions\":["
      TYPE_IS("m.room.member") ","
      "{\"kind\":\"event_match\",\"key\":\"content.membership\","
      "\"pattern\":\"invite\"},"
      "{\"kind\":\"event_match\",\"key\":\"state_key\","
      "\"pattern\":\"" MX_PUSH_USER_ID "\"}],"
      "\"actions\":[\"notify\"," SOUND_DEFAULT "]}" },

    { MX_PUSH_OVERRIDE, ".m.rule.member_event", 0,
      "{\"enabled\":true,\"conditions\":[" TYPE_IS("m.room.member") "],"
      "\"actions\":[]}" },

    { MX_PUSH_OVERRIDE, ".m.rule.is_user_mention", 0,
      "{\"enabled\":true,\"conditions\":[{\"kind\":"
      "\"event_property_contains\","
      "\"key\":\"content.m\\\\.mentions.user_ids\","
      "\"value\":\"" MX_PUSH_USER_ID "\"}],"
      "\"actions\":[\"notify\"," SOUND_DEFAULT "," HIGHLIGHT "]}" },

    { MX_PUSH_OVERRIDE, ".m.rule.contains_display_name", 0,
      "{\"enabled\":true,\"conditions\":[{\"kind\":"
      "\"contains_display_name\"}],"
      "\"actions\":[\"notify\"," SOUND_DEFAULT "," HIGHLIGHT "]}" },

    { MX_PUSH_OVERRIDE, ".m.rule.is_room_mention", 0,
      "{\"enabled\":true,\"conditions\":["
      "{\"kind\":\"event_property_is\",\"key\":\"content.m\\\\.mentions.room\","
      "\"value\":true},"
      "{\"kind\":\"sender_notification_permission\",\"key\":\"room\"}],"
      "\"actions\":[\"notify\"," HIGHLIGHT "]}" },

    { MX_PUSH_OVERRIDE, ".m.rule.roomnotif", 0,
      "{\"enabled\":true,\"conditions\":["
      "{\"kind\":\"event_match\",\"key\":\"content.body\","
      "\"pattern\":\"@room\"},"
      "{\"kind\":\"sender_notification_permission\",\"key\":\"room\"}],"
      "\"actions\":[\"notify\"," HIGHLIGHT "]}" },

    { MX_PUSH_OVERRIDE, ".m.rule.tombstone", 0,
      "{\"enabled\":true,\"conditions\":["
      TYPE_IS("m.room.tombstone") "," STATE_KEY_EMPTY "],"
      "\"actions\":[\"notify\"," HIGHLIGHT "]}" },

    { MX_PUSH_OVERRIDE, ".m.rule.reaction", 0,
      "{\"enabled\":true,\"conditions\":[" TYPE_IS("m.reaction") "],"
      "\"actions\":[]}" },

    { MX_PUSH_OVERRIDE, ".m.rule.room.server_acl", 0,
      "{\"enabled\":true,\"conditions\":["
      TYPE_IS("m.room.server_acl") "," STATE_KEY_EMPTY "],"
      "\"actions\":[]}" },

    { MX_PUSH_OVERRIDE, ".m.rule.suppress_edits", 0,
      "{\"enabled\":true,\"conditions\":[{\"kind\":\"event_property_is\","
      "\"key\":\"content.m\\\\.relates_to.rel_type\","
      "\"value\":\"m.replace\"}],"
      "\"actions\":[]}" },

    /* Default Content Rules */

    { MX_PUSH_CONTENT, ".m.rule.contains_user_name", 0,
      "{\"enabled\":true,\"pattern\":\"" MX_PUSH_LOCALPART "\","
      "\"actions\":[\"notify\"," SOUND_DEFAULT "," HIGHLIGHT "]}" },

    /* Default Underride Rules */

    { MX_PUSH_UNDERRIDE, ".m.rule.call", 0,
      "{\"enabled\":true,\"conditions\":[" TYPE_IS("m.call.invite") "],"
      "\"actions\":[\"notify\",{\"set_tweak\":\"sound\","
      "\"value\":\"ring\"}]}" },

    { MX_PUSH_UNDERRIDE, ".m.rule.encrypted_room_one_to_one", 0,
      "{\"enabled\":true,\"conditions\":["
      ROOM_OF_TWO "," TYPE_IS("m.room.encrypted") "],"
      "\"actions\":[\"notify\"," SOUND_DEFAULT "]}" },

    { MX_PUSH_UNDERRIDE, ".m.rule.room_one_to_one", 0,
      "{\"enabled\":true,\"conditions\":["
      ROOM_OF_TWO "," TYPE_IS("m.room.message") "],"
      "\"actions\":[\"notify\"," SOUND_DEFAULT "]}" },

    { MX_PUSH_UNDERRIDE, ".m.rule.message", 0,
      "{\"enabled\":true,\"conditions\":[" TYPE_IS("m.room.message") "],"
      "\"actions\":[\"notify\"]}" },

    { MX_PUSH_UNDERRIDE, ".m.rule.encrypted", 0,
      "{\"enabled\":true,\"conditions\":[" TYPE_IS("m.room.encrypted") "],"
      "\"actions\":[\"notify\"]}" },
};

#define MX_PUSH_NDEFAULTS                                                    \
    (sizeof(mx_push_default_rules) / sizeof(mx_push_default_rules[0]))


const char *
mx_push_kind_name(mx_push_kind_t kind)
{
    if ((unsigned) kind >= MX_PUSH_KINDS) {
        return NULL;
    }

    return mx_push_kinds[kind];
}


int
mx_push_kind(const char *name, size_t len)
{
    int  k;

    for (k = 0; k < MX_PUSH_KINDS; k++) {
        if (strlen(mx_push_kinds[k]) == len
            && memcmp(mx_push_kinds[k], name, len) == 0)
        {
            return k;
        }
    }

    return -1;
}


const char *
mx_push_default_id(size_t i, mx_push_kind_t *kind)
{
    if (i >= MX_PUSH_NDEFAULTS) {
        return NULL;
    }

    if (kind) {
        *kind = mx_push_default_rules[i].kind;
    }

    return mx_push_default_rules[i].id;
}


static const mx_push_default_t *
mx_push_default_find(mx_push_kind_t kind, const char *id, size_t len)
{
    size_t  i;

    for (i = 0; i < MX_PUSH_NDEFAULTS; i++) {
        if (mx_push_default_rules[i].kind == kind
            && strlen(mx_push_default_rules[i].id) == len
            && memcmp(mx_push_default_rules[i].id, id, len) == 0)
        {
            return &mx_push_default_rules[i];
        }
    }

    return NULL;
}


int
mx_push_is_default(mx_push_kind_t kind, const char *id, size_t len)
{
    return mx_push_default_find(kind, id, len) != NULL;
}


/* "@alice:example.org" -> "alice"; anything else is taken whole */

static void
mx_push_localpart(const char *user_id, size_t len, const char **lp,
    size_t *lp_len)
{
    const char  *colon;

    *lp = user_id;
    *lp_len = len;

    if (len == 0 || user_id[0] != '@') {
        return;
    }

    colon = memchr(user_id, ':', len);

    *lp = user_id + 1;
    *lp_len = (colon ? (size_t) (colon - user_id) : len) - 1;
}


/* replace the placeholder strings of a parsed default rule, in place */

static int
mx_push_fill(mx_pool_t *pool, mx_json_t *v, const char *user_id, size_t len)
{
    const char  *lp;
    size_t       i, lp_len;
    mx_json_t   *s;

    switch (v->type) {

    case MX_JSON_STRING:
        if (strcmp(v->u.s.p, MX_PUSH_USER_ID) == 0) {
            s = mx_json_strn(pool, user_id, len);

        } else if (strcmp(v->u.s.p, MX_PUSH_LOCALPART) == 0) {
            mx_push_localpart(user_id, len, &lp, &lp_len);
            s = mx_json_strn(pool, lp, lp_len);

        } else {
            return 0;
        }

        if (s == NULL) {
            return -1;
        }

        v->u.s = s->u.s;
        return 0;

    case MX_JSON_ARRAY:
        for (i = 0; i < v->u.a.n; i++) {
            if (mx_push_fill(pool, v->u.a.v[i], user_id, len) != 0) {
                return -1;
            }
        }

        return 0;

    case MX_JSON_OBJECT:
        for (i = 0; i < v->u.o.n; i++) {
            if (mx_push_fill(pool, v->u.o.m[i].value, user_id, len) != 0) {
                return -1;
            }
        }

        return 0;

    default:
        return 0;
    }
}


/* one default rule as JSON for a user */

static mx_json_t *
mx_push_default_make(mx_pool_t *pool, const mx_push_default_t *d,
    const char *user_id, size_t len)
{
    mx_json_t        *rule;
    mx_json_error_t   err;

    rule = mx_json_parse(pool, d->json, strlen(d->json), &err);

    if (rule == NULL
        || (user_id != NULL && mx_push_fill(pool, rule, user_id, len) != 0)
        || mx_json_set_str(pool, rule, "rule_id", d->id) != 0
        || mx_json_set(pool, rule, "default", mx_json_bool(pool, 1)) != 0)
    {
        return NULL;
    }

    return rule;
}


/* a rule with the user's changes to "enabled" and "actions" applied */

static mx_json_t *
mx_push_changed(mx_pool_t *pool, const mx_json_t *rule, mx_push_kind_t kind,
    const mx_json_t *changes)
{
    const char  *id;
    char        *key;
    size_t       id_len, klen;
    mx_json_t   *c, *v, *copy;

    if (changes == NULL) {
        return (mx_json_t *) rule;
    }

    id = mx_json_get_str(rule, "rule_id", &id_len);
    if (id == NULL) {
        return (mx_json_t *) rule;
    }

    klen = strlen(mx_push_kinds[kind]) + 1 + id_len;
    key = mx_palloc(pool, klen + 1);
    if (key == NULL) {
        return NULL;
    }

    memcpy(key, mx_push_kinds[kind], strlen(mx_push_kinds[kind]));
    key[strlen(mx_push_kinds[kind])] = '/';
    memcpy(key + strlen(mx_push_kinds[kind]) + 1, id, id_len);
    key[klen] = '\0';

    c = mx_json_getn(changes, key, klen);
    if (c == NULL || c->type != MX_JSON_OBJECT) {
        return (mx_json_t *) rule;
    }

    copy = mx_json_object_copy(pool, rule);
    if (copy == NULL) {
        return NULL;
    }

    v = mx_json_get(c, "enabled");
    if (mx_json_is_bool(v) && mx_json_set(pool, copy, "enabled", v) != 0) {
        return NULL;
    }

    v = mx_json_get(c, "actions");
    if (mx_json_is(v, MX_JSON_ARRAY)
        && mx_json_set(pool, copy, "actions", v) != 0)
    {
        return NULL;
    }

    return copy;
}


/* append the defaults of a kind, those above the user's rules or the rest */

static int
mx_push_add_defaults(mx_pool_t *pool, mx_json_t *arr, mx_push_kind_t kind,
    unsigned first, const char *user_id, size_t len,
    const mx_json_t *changes)
{
    size_t      i;
    mx_json_t  *rule;

    for (i = 0; i < MX_PUSH_NDEFAULTS; i++) {
        if (mx_push_default_rules[i].kind != kind
            || mx_push_default_rules[i].first != first)
        {
            continue;
        }

        rule = mx_push_default_make(pool, &mx_push_default_rules[i],
                                    user_id, len);
        if (rule == NULL) {
            return -1;
        }

        rule = mx_push_changed(pool, rule, kind, changes);

        if (mx_json_append(pool, arr, rule) != 0) {
            return -1;
        }
    }

    return 0;
}


mx_json_t *
mx_push_ruleset(mx_pool_t *pool, const char *user_id, size_t len,
    const mx_push_user_t *user)
{
    int               k;
    size_t            i;
    mx_json_t        *set, *arr, *rule;
    const mx_json_t  *mine, *changes;

    set = mx_json_object(pool);
    if (set == NULL) {
        return NULL;
    }

    changes = user ? user->changes : NULL;

    for (k = 0; k < MX_PUSH_KINDS; k++) {
        arr = mx_json_array(pool);
        if (arr == NULL
            || mx_json_set(pool, set, mx_push_kinds[k], arr) != 0
            || mx_push_add_defaults(pool, arr, k, 1, user_id, len, changes)
               != 0)
        {
            return NULL;
        }

        mine = user ? user->rules[k] : NULL;

        for (i = 0; mx_json_is(mine, MX_JSON_ARRAY) && i < mine->u.a.n; i++) {
            rule = mx_push_changed(pool, mine->u.a.v[i], k, changes);

            if (mx_json_append(pool, arr, rule) != 0) {
                return NULL;
            }
        }

        if (mx_push_add_defaults(pool, arr, k, 0, user_id, len, changes)
            != 0)
        {
            return NULL;
        }
    }

    return set;
}


int
mx_push_user_rule(mx_pool_t *pool, mx_push_user_t *user, mx_push_kind_t kind,
    const char *text, size_t len)
{
    mx_json_t        *v;
    mx_json_error_t   err;

    if (text == NULL || (unsigned) kind >= MX_PUSH_KINDS) {
        return 1;
    }

    v = mx_json_parse(pool, text, len, &err);
    if (!mx_json_is(v, MX_JSON_OBJECT)) {
        return 1;
    }

    if (user->rules[kind] == NULL) {
        user->rules[kind] = mx_json_array(pool);
        if (user->rules[kind] == NULL) {
            return -1;
        }
    }

    return mx_json_append(pool, user->rules[kind], v) == 0 ? 0 : -1;
}


int
mx_push_user_change(mx_pool_t *pool, mx_push_user_t *user, const char *field,
    size_t field_len, const char *text, size_t len)
{
    const char       *attr, *name;
    size_t            name_len;
    mx_json_t        *v, *c;
    mx_json_error_t   err;

    if (field == NULL || text == NULL || field_len <= 8) {
        return 1;
    }

    if (memcmp(field, "enabled:", 8) == 0) {
        attr = "enabled";

    } else if (memcmp(field, "actions:", 8) == 0) {
        attr = "actions";

    } else {
        return 1;
    }

    name = field + 8;
    name_len = field_len - 8;

    v = mx_json_parse(pool, text, len, &err);

    if (attr[0] == 'e' ? !mx_json_is_bool(v) : !mx_json_is(v, MX_JSON_ARRAY)) {
        return 1;
    }

    if (user->changes == NULL) {
        user->changes = mx_json_object(pool);
        if (user->changes == NULL) {
            return -1;
        }
    }

    c = mx_json_getn(user->changes, name, name_len);

    if (c == NULL) {
        c = mx_json_object(pool);
        if (c == NULL
            || mx_json_setn(pool, user->changes, name, name_len, c) != 0)
        {
            return -1;
        }
    }

    return mx_json_set(pool, c, attr, v) == 0 ? 0 : -1;
}


mx_json_t *
mx_push_defaults(mx_pool_t *pool, const char *user_id, size_t len)
{
    return mx_push_ruleset(pool, user_id, len, NULL);
}


mx_json_t *
mx_push_template(mx_pool_t *pool)
{
    return mx_push_ruleset(pool, NULL, 0, NULL);
}


mx_json_t *
mx_push_find(const mx_json_t *ruleset, mx_push_kind_t kind, const char *id,
    size_t len)
{
    size_t       i, n;
    const char  *s;
    mx_json_t   *arr;

    arr = mx_json_get_arr(ruleset, mx_push_kind_name(kind));

    for (i = 0; arr && i < arr->u.a.n; i++) {
        s = mx_json_get_str(arr->u.a.v[i], "rule_id", &n);

        if (s && n == len && memcmp(s, id, len) == 0) {
            return arr->u.a.v[i];
        }
    }

    return NULL;
}


/* checks ------------------------------------------------------------------ */

static int
mx_push_fail(mx_push_err_t *err, const char *errcode, const char *fmt,
    const char *arg)
{
    err->errcode = errcode;
    snprintf(err->msg, sizeof(err->msg), fmt, arg);
    return -1;
}


static int
mx_push_nomem(mx_push_err_t *err)
{
    err->errcode = NULL;
    snprintf(err->msg, sizeof(err->msg), "out of memory");
    return -1;
}


int
mx_push_rule_id_check(mx_push_kind_t kind, const char *id, size_t len,
    mx_push_err_t *err)
{
    size_t  i;

    if (len == 0) {
        return mx_push_fail(err, "M_INVALID_PARAM", "%s",
                            "The rule ID must not be empty");
    }

    if (!mx_utf8_valid(id, len)) {
        return mx_push_fail(err, "M_INVALID_PARAM", "%s",
                            "The rule ID must be valid UTF-8");
    }

    if (id[0] == '.') {
        return mx_push_fail(err, "M_INVALID_PARAM", "%s",
                            "Rule IDs starting with '.' are reserved for"
                            " server-default rules");
    }

    for (i = 0; i < len; i++) {
        if (id[i] == '/' || id[i] == '\\') {
            return mx_push_fail(err, "M_INVALID_PARAM", "%s",
                                "Rule IDs may not contain '/' or '\\'");
        }

        if ((unsigned char) id[i] < 0x20) {
            return mx_push_fail(err, "M_INVALID_PARAM", "%s",
                                "Rule IDs may not contain control"
                                " characters");
        }
    }

    if (kind == MX_PUSH_ROOM && (id[0] != '!' || len < 2)) {
        return mx_push_fail(err, "M_INVALID_PARAM", "%s",
                            "The ID of a room rule is a room ID");
    }

    if (kind == MX_PUSH_SENDER
        && (id[0] != '@' || len < 3 || memchr(id, ':', len) == NULL))
    {
        return mx_push_fail(err, "M_INVALID_PARAM", "%s",
                            "The ID of a sender rule is a user ID");
    }

    return 0;
}


int
mx_push_actions_check(mx_pool_t *pool, const mx_json_t *actions,
    mx_json_t **out, mx_push_err_t *err)
{
    size_t      i;
    mx_json_t  *a, *clean, *v;

    if (actions == NULL) {
        return mx_push_fail(err, "M_MISSING_PARAM", "%s",
                            "actions is required");
    }

    if (actions->type != MX_JSON_ARRAY) {
        return mx_push_fail(err, "M_BAD_JSON", "%s",
                            "actions must be an array");
    }

    clean = mx_json_array(pool);
    if (clean == NULL) {
        return mx_push_nomem(err);
    }

    for (i = 0; i < actions->u.a.n; i++) {
        a = actions->u.a.v[i];

        if (a->type == MX_JSON_STRING) {
            if (strcmp(a->u.s.p, "dont_notify") == 0
                || strcmp(a->u.s.p, "coalesce") == 0)
            {
                continue;
            }

            if (strcmp(a->u.s.p, "notify") != 0) {
                return mx_push_fail(err, "M_INVALID_PARAM",
                                    "Unknown action \"%.64s\"", a->u.s.p);
            }

        } else if (a->type == MX_JSON_OBJECT) {
            v = mx_json_get(a, "set_tweak");

            if (!mx_json_is(v, MX_JSON_STRING)) {
                return mx_push_fail(err, "M_BAD_JSON", "%s",
                                    "An action that is an object must have"
                                    " a set_tweak string");
            }

        } else {
            return mx_push_fail(err, "M_BAD_JSON", "%s",
                                "An action is a string or an object");
        }

        if (mx_json_append(pool, clean, a) != 0) {
            return mx_push_nomem(err);
        }
    }

    *out = clean;
    return 0;
}


/* a scalar that event_property_is and event_property_contains compare */

static int
mx_push_scalar(const mx_json_t *v)
{
    if (v == NULL) {
        return 0;
    }

    switch (v->type) {
    case MX_JSON_NULL:
    case MX_JSON_TRUE:
    case MX_JSON_FALSE:
    case MX_JSON_STRING:
        return 1;
    case MX_JSON_INT:
        return v->u.i >= -MX_JSON_MAX_SAFE_INT
               && v->u.i <= MX_JSON_MAX_SAFE_INT;
    default:
        return 0;
    }
}


/* "is" of room_member_count: ("==" / "<" / ">" / ">=" / "<=") 1*DIGIT */

static int
mx_push_member_count_valid(const char *s, size_t len)
{
    size_t  i = 0;

    if (len >= 2 && (memcmp(s, "==", 2) == 0 || memcmp(s, ">=", 2) == 0
                     || memcmp(s, "<=", 2) == 0))
    {
        i = 2;

    } else if (len >= 1 && (s[0] == '<' || s[0] == '>')) {
        i = 1;
    }

    if (i == len || len - i > 18) {
        return 0;
    }

    for ( ; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
    }

    return 1;
}


static int
mx_push_condition_check(const mx_json_t *c, mx_push_err_t *err)
{
    const char  *kind;
    size_t       len;
    mx_json_t   *v;

    if (c->type != MX_JSON_OBJECT) {
        return mx_push_fail(err, "M_BAD_JSON", "%s",
                            "Each condition must be an object");
    }

    kind = mx_json_get_str(c, "kind", &len);
    if (kind == NULL) {
        return mx_push_fail(err, "M_BAD_JSON", "%s",
                            "Each condition must have a kind string");
    }

    if (strcmp(kind, "event_match") == 0) {
        if (!mx_json_is(mx_json_get(c, "key"), MX_JSON_STRING)
            || !mx_json_is(mx_json_get(c, "pattern"), MX_JSON_STRING))
        {
            return mx_push_fail(err, "M_BAD_JSON", "%s",
                                "event_match needs key and pattern strings");
        }

    } else if (strcmp(kind, "event_property_is") == 0
               || strcmp(kind, "event_property_contains") == 0)
    {
        if (!mx_json_is(mx_json_get(c, "key"), MX_JSON_STRING)
            || !mx_push_scalar(mx_json_get(c, "value")))
        {
            return mx_push_fail(err, "M_BAD_JSON", "%s needs a key string"
                                " and a value that is a string, an integer,"
                                " a boolean or null", kind);
        }

    } else if (strcmp(kind, "room_member_count") == 0) {
        v = mx_json_get(c, "is");

        if (!mx_json_is(v, MX_JSON_STRING)
            || !mx_push_member_count_valid(v->u.s.p, v->u.s.len))
        {
            return mx_push_fail(err, "M_BAD_JSON", "%s",
                                "room_member_count needs \"is\": a number"
                                " with an optional ==, <, >, >= or <=");
        }

    } else if (strcmp(kind, "sender_notification_permission") == 0) {
        if (!mx_json_is(mx_json_get(c, "key"), MX_JSON_STRING)) {
            return mx_push_fail(err, "M_BAD_JSON", "%s",
                                "sender_notification_permission needs a key"
                                " string");
        }
    }

    /* contains_display_name has no parameters; other kinds never match */

    return 0;
}


int
mx_push_rule_make(mx_pool_t *pool, mx_push_kind_t kind, const char *id,
    size_t len, const mx_json_t *body, mx_json_t **rule, mx_push_err_t *err)
{
    size_t      i;
    mx_json_t  *r, *actions, *v;

    if (!mx_json_is(body, MX_JSON_OBJECT)) {
        return mx_push_fail(err, "M_BAD_JSON", "%s",
                            "The rule must be an object");
    }

    if (mx_push_actions_check(pool, mx_json_get(body, "actions"), &actions,
                              err)
        != 0)
    {
        return -1;
    }

    r = mx_json_object(pool);
    if (r == NULL
        || mx_json_set(pool, r, "rule_id", mx_json_strn(pool, id, len)) != 0
        || mx_json_set(pool, r, "default", mx_json_bool(pool, 0)) != 0
        || mx_json_set(pool, r, "enabled", mx_json_bool(pool, 1)) != 0
        || mx_json_set(pool, r, "actions", actions) != 0)
    {
        return mx_push_nomem(err);
    }

    switch (kind) {

    case MX_PUSH_OVERRIDE:
    case MX_PUSH_UNDERRIDE:
        v = mx_json_get(body, "conditions");

        if (v == NULL) {
            v = mx_json_array(pool);
            if (v == NULL) {
                return mx_push_nomem(err);
            }
        }

        if (v->type != MX_JSON_ARRAY) {
            return mx_push_fail(err, "M_BAD_JSON", "%s",
                                "conditions must be an array");
        }

        for (i = 0; i < v->u.a.n; i++) {
            if (mx_push_condition_check(v->u.a.v[i], err) != 0) {
                return -1;
            }
        }

        if (mx_json_set(pool, r, "conditions", v) != 0) {
            return mx_push_nomem(err);
        }

        break;

    case MX_PUSH_CONTENT:
        v = mx_json_get(body, "pattern");

        if (v == NULL) {
            return mx_push_fail(err, "M_MISSING_PARAM", "%s",
                                "A content rule needs a pattern");
        }

        if (v->type != MX_JSON_STRING) {
            return mx_push_fail(err, "M_BAD_JSON", "%s",
                                "pattern must be a string");
        }

        if (mx_json_set(pool, r, "pattern", v) != 0) {
            return mx_push_nomem(err);
        }

        break;

    default:
        break;
    }

    *rule = r;
    return 0;
}

/*
 * mx_pusheval: push rules against an event.  See mx_pusheval.h.
 *
 * Glob matching runs as a small NFA over the pattern's positions, one step
 * per character of the value, so a pattern full of '*' costs no more than
 * a plain one: O(value * pattern), never exponential.  Matching content.body
 * by words is the same walk, with the start state entered again at every
 * word boundary and a match accepted only at one.
 */

#include <string.h>

#include "mx_auth.h"
#include "mx_pusheval.h"


#define MX_PE_STACK  64              /* pattern characters kept on the stack */


/* one code point of UTF-8; an invalid byte is a code point of its own that
 * no pattern character equals */

static size_t
mx_pe_next(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
    size_t    n, i;
    uint32_t  c;

    c = p[0];

    if (c < 0x80) {
        *cp = c;
        return 1;
    }

    if ((c & 0xe0) == 0xc0) {
        n = 2;
        c &= 0x1f;

    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        c &= 0x0f;

    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        c &= 0x07;

    } else {
        *cp = 0x110000 + p[0];
        return 1;
    }

    if ((size_t) (end - p) < n) {
        *cp = 0x110000 + p[0];
        return 1;
    }

    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *cp = 0x110000 + p[0];
            return 1;
        }

        c = (c << 6) | (p[i] & 0x3f);
    }

    *cp = c;
    return n;
}


static uint32_t
mx_pe_fold(uint32_t c)
{
    return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}


static int
mx_pe_word(uint32_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_';
}


/* the states a '*' at k lets through to k + 1, in one pass left to right */

static void
mx_pe_closure(const uint32_t *pat, size_t m, unsigned literal,
    unsigned char *st)
{
    size_t  k;

    for (k = 0; k < m; k++) {
        if (st[k] && !literal && pat[k] == '*') {
            st[k + 1] = 1;
        }
    }
}


int
mx_push_glob(mx_pool_t *pool, const char *pattern, size_t plen,
    const char *s, size_t len, unsigned flags)
{
    uint32_t              pbuf[MX_PE_STACK], *pat, c;
    unsigned char         sbuf[2 * (MX_PE_STACK + 1)], *cur, *nxt, *t;
    const unsigned char  *p, *end;
    size_t                m, k, n;
    unsigned              words, literal, prev_word, start, have, any;

    words = (flags & MX_GLOB_WORDS) != 0;
    literal = (flags & MX_GLOB_LITERAL) != 0;

    /* the pattern as code points, folded */
    if (plen <= MX_PE_STACK) {
        pat = pbuf;
        cur = sbuf;

    } else {
        pat = mx_palloc(pool, plen * sizeof(uint32_t));
        cur = mx_palloc(pool, 2 * (plen + 1));
        if (pat == NULL || cur == NULL) {
            return -1;
        }
    }

    p = (const unsigned char *) pattern;
    end = p + plen;

    for (m = 0; p < end; m++) {
        p += mx_pe_next(p, end, &c);
        pat[m] = mx_pe_fold(c);
    }

    nxt = cur + m + 1;
    memset(cur, 0, m + 1);

    p = (const unsigned char *) s;
    end = p + len;
    prev_word = 0;
    start = 1;
    n = 0;
    c = 0;

    for ( ;; ) {
        have = p < end;
        if (have) {
            n = mx_pe_next(p, end, &c);
        }

        /* a match may begin here */
        if (words ? !prev_word : start) {
            cur[0] = 1;
            mx_pe_closure(pat, m, literal, cur);
        }

        /* and one may end here */
        if (cur[m] && (words ? (!have || !mx_pe_word(c)) : !have)) {
            return 1;
        }

        if (!have) {
            return 0;
        }

        memset(nxt, 0, m + 1);
        any = 0;

        for (k = 0; k < m; k++) {
            if (!cur[k]) {
                continue;
            }

            if (!literal && pat[k] == '*') {
                nxt[k] = 1;
                any = 1;

            } else if ((!literal && pat[k] == '?')
                       || pat[k] == mx_pe_fold(c))
            {
                nxt[k + 1] = 1;
                any = 1;
            }
        }

        mx_pe_closure(pat, m, literal, nxt);

        t = cur;
        cur = nxt;
        nxt = t;

        if (!any && !words) {
            return 0;
        }

        prev_word = mx_pe_word(c);
        start = 0;
        p += n;
    }
}


/* --- dot-separated property paths ----------------------------------- */


/* does a key equal a path segment, its "\." and "\\" unescaped? */

static int
mx_pe_seg_eq(const char *key, size_t klen, const char *seg, size_t slen)
{
    size_t  i, j;

    for (i = 0, j = 0; i < slen; i++, j++) {
        if (seg[i] == '\\' && i + 1 < slen
            && (seg[i + 1] == '.' || seg[i + 1] == '\\'))
        {
            i++;
        }

        if (j >= klen || key[j] != seg[i]) {
            return 0;
        }
    }

    return j == klen;
}


const mx_json_t *
mx_push_path(const mx_json_t *ev, const char *path, size_t len)
{
    const mx_json_t  *v, *next;
    size_t            i, start, k;

    v = ev;
    start = 0;

    for (i = 0; i <= len; i++) {
        if (i < len && path[i] == '\\' && i + 1 < len
            && (path[i + 1] == '.' || path[i + 1] == '\\'))
        {
            i++;
            continue;
        }

        if (i < len && path[i] != '.') {
            continue;
        }

        if (!mx_json_is(v, MX_JSON_OBJECT)) {
            return NULL;
        }

        next = NULL;

        for (k = 0; k < v->u.o.n; k++) {
            if (mx_pe_seg_eq(v->u.o.m[k].key, v->u.o.m[k].key_len,
                             path + start, i - start))
            {
                next = v->u.o.m[k].value;
                break;
            }
        }

        if (next == NULL) {
            return NULL;
        }

        v = next;
        start = i + 1;
    }

    return v;
}


/* --- conditions ------------------------------------------------------ */


/*
 * The spec's placeholders of a template ruleset (mx_push_template()) as
 * the context's user: the user ID or its localpart; anything else as is.
 */

static const char *
mx_pe_fill(const mx_push_ctx_t *ctx, const char *s, size_t *len)
{
    const char  *u, *colon;

    u = ctx->user_id;

    if (u == NULL || *len == 0 || s[0] != '[') {
        return s;
    }

    if (*len == sizeof(MX_PUSH_USER_ID) - 1
        && memcmp(s, MX_PUSH_USER_ID, *len) == 0)
    {
        *len = strlen(u);
        return u;
    }

    if (*len == sizeof(MX_PUSH_LOCALPART) - 1
        && memcmp(s, MX_PUSH_LOCALPART, *len) == 0)
    {
        colon = strchr(u, ':');

        if (u[0] != '@' || colon == NULL) {
            *len = strlen(u);
            return u;
        }

        *len = (size_t) (colon - u) - 1;
        return u + 1;
    }

    return s;
}


/* exact equality of scalars, a placeholder string standing for its value */

static int
mx_pe_equal(const mx_push_ctx_t *ctx, const mx_json_t *v,
    const mx_json_t *value)
{
    const char  *s;
    size_t       len;

    if (value->type != MX_JSON_STRING) {
        return mx_json_equal(v, value);
    }

    len = value->u.s.len;
    s = mx_pe_fill(ctx, value->u.s.p, &len);

    return v->type == MX_JSON_STRING && v->u.s.len == len
           && memcmp(v->u.s.p, s, len) == 0;
}


/* string, integer, boolean or null: what the exact conditions compare */

static int
mx_pe_scalar(const mx_json_t *v)
{
    return v != NULL
           && (v->type == MX_JSON_STRING || v->type == MX_JSON_INT
               || v->type == MX_JSON_TRUE || v->type == MX_JSON_FALSE
               || v->type == MX_JSON_NULL);
}


/* "is" of room_member_count: [==|<|>|<=|>=]digits */

static int
mx_pe_member_count(const char *is, size_t len, int64_t count)
{
    size_t   i;
    int      op;
    int64_t  n;

    enum { EQ, LT, GT, LE, GE };

    op = EQ;
    i = 0;

    if (len >= 2 && is[0] == '=' && is[1] == '=') {
        i = 2;

    } else if (len >= 2 && is[0] == '<' && is[1] == '=') {
        op = LE;
        i = 2;

    } else if (len >= 2 && is[0] == '>' && is[1] == '=') {
        op = GE;
        i = 2;

    } else if (len >= 1 && is[0] == '<') {
        op = LT;
        i = 1;

    } else if (len >= 1 && is[0] == '>') {
        op = GT;
        i = 1;
    }

    if (i == len) {
        return 0;
    }

    for (n = 0; i < len; i++) {
        if (is[i] < '0' || is[i] > '9' || n > INT64_MAX / 10 - 10) {
            return 0;
        }

        n = n * 10 + (is[i] - '0');
    }

    switch (op) {
    case LT:
        return count < n;
    case GT:
        return count > n;
    case LE:
        return count <= n;
    case GE:
        return count >= n;
    default:
        return count == n;
    }
}


/* 1 when a condition holds, 0 when not, -1 on ENOMEM */

static int
mx_pe_condition(mx_pool_t *pool, const mx_json_t *c, const mx_json_t *ev,
    const mx_push_ctx_t *ctx)
{
    const char       *kind, *key, *pattern, *body, *is;
    size_t            klen, plen, blen, ilen, i;
    const mx_json_t  *prop, *value, *v;
    int64_t           need;

    kind = mx_json_get_str(c, "kind", NULL);
    if (kind == NULL) {
        return 0;
    }

    key = mx_json_get_str(c, "key", &klen);

    if (strcmp(kind, "event_match") == 0) {
        pattern = mx_json_get_str(c, "pattern", &plen);
        if (key == NULL || pattern == NULL) {
            return 0;
        }

        prop = mx_push_path(ev, key, klen);
        if (!mx_json_is(prop, MX_JSON_STRING)) {
            return 0;
        }

        pattern = mx_pe_fill(ctx, pattern, &plen);

        return mx_push_glob(pool, pattern, plen, prop->u.s.p, prop->u.s.len,
                            strcmp(key, "content.body") == 0
                            ? MX_GLOB_WORDS : MX_GLOB_WHOLE);
    }

    if (strcmp(kind, "event_property_is") == 0
        || strcmp(kind, "event_property_contains") == 0)
    {
        value = mx_json_get(c, "value");
        if (key == NULL || !mx_pe_scalar(value)) {
            return 0;
        }

        prop = mx_push_path(ev, key, klen);

        if (kind[15] == 'i') {
            return mx_pe_scalar(prop) && mx_pe_equal(ctx, prop, value);
        }

        if (!mx_json_is(prop, MX_JSON_ARRAY)) {
            return 0;
        }

        for (i = 0; i < prop->u.a.n; i++) {
            v = prop->u.a.v[i];
            if (mx_pe_scalar(v) && mx_pe_equal(ctx, v, value)) {
                return 1;
            }
        }

        return 0;
    }

    if (strcmp(kind, "contains_display_name") == 0) {
        body = mx_json_get_str(mx_json_get(ev, "content"), "body", &blen);
        if (body == NULL || ctx->display_name == NULL
            || ctx->display_name[0] == '\0')
        {
            return 0;
        }

        return mx_push_glob(pool, ctx->display_name,
                            strlen(ctx->display_name), body, blen,
                            MX_GLOB_WORDS | MX_GLOB_LITERAL);
    }

    if (strcmp(kind, "room_member_count") == 0) {
        is = mx_json_get_str(c, "is", &ilen);
        return is != NULL && mx_pe_member_count(is, ilen, ctx->member_count);
    }

    if (strcmp(kind, "sender_notification_permission") == 0) {
        if (key == NULL) {
            return 0;
        }

        need = 50;
        v = mx_json_get(ctx->notifications, key);

        if (v != NULL) {
            if (ctx->rv != NULL) {
                if (mx_auth_pl_value(ctx->rv, v, &need) != 0) {
                    need = 50;
                }

            } else if (v->type == MX_JSON_INT) {
                need = v->u.i;
            }
        }

        return ctx->sender_level >= need;
    }

    /* a kind this server does not know never matches */
    return 0;
}


/* --- rules ----------------------------------------------------------- */


static int
mx_pe_legacy(const char *id)
{
    return strcmp(id, ".m.rule.contains_display_name") == 0
           || strcmp(id, ".m.rule.roomnotif") == 0
           || strcmp(id, ".m.rule.contains_user_name") == 0;
}


/* 1 when the rule matches the event, 0 when not, -1 on ENOMEM */

static int
mx_pe_rule(mx_pool_t *pool, mx_push_kind_t kind, const mx_json_t *rule,
    const mx_json_t *ev, const mx_push_ctx_t *ctx, int mentions)
{
    const mx_json_t  *en, *conds, *body;
    const char       *id, *pattern, *sender;
    size_t            i, plen;
    int               rc;

    id = mx_json_get_str(rule, "rule_id", NULL);
    en = mx_json_get(rule, "enabled");

    if (id == NULL || (en != NULL && en->type != MX_JSON_TRUE)) {
        return 0;
    }

    if (mentions && id[0] == '.' && mx_pe_legacy(id)) {
        return 0;
    }

    switch (kind) {

    case MX_PUSH_OVERRIDE:
    case MX_PUSH_UNDERRIDE:
        conds = mx_json_get(rule, "conditions");
        if (conds == NULL) {
            return 1;
        }

        if (!mx_json_is(conds, MX_JSON_ARRAY)) {
            return 0;
        }

        for (i = 0; i < conds->u.a.n; i++) {
            rc = mx_pe_condition(pool, conds->u.a.v[i], ev, ctx);
            if (rc != 1) {
                return rc;
            }
        }

        return 1;

    case MX_PUSH_CONTENT:
        pattern = mx_json_get_str(rule, "pattern", &plen);
        body = mx_push_path(ev, "content.body", sizeof("content.body") - 1);

        if (pattern == NULL || !mx_json_is(body, MX_JSON_STRING)) {
            return 0;
        }

        pattern = mx_pe_fill(ctx, pattern, &plen);

        return mx_push_glob(pool, pattern, plen, body->u.s.p, body->u.s.len,
                            MX_GLOB_WORDS);

    case MX_PUSH_ROOM:
        return ctx->room_id != NULL && strcmp(id, ctx->room_id) == 0;

    case MX_PUSH_SENDER:
        sender = mx_json_get_str(ev, "sender", NULL);
        return sender != NULL && strcmp(id, sender) == 0;

    default:
        return 0;
    }
}


void
mx_push_actions_flags(const mx_json_t *actions, mx_push_match_t *m)
{
    const mx_json_t  *a, *v;
    const char       *tweak;
    size_t            i;

    m->notify = 0;
    m->highlight = 0;

    if (!mx_json_is(actions, MX_JSON_ARRAY)) {
        return;
    }

    for (i = 0; i < actions->u.a.n; i++) {
        a = actions->u.a.v[i];

        if (a->type == MX_JSON_STRING) {
            if (strcmp(a->u.s.p, "notify") == 0) {
                m->notify = 1;
            }

            continue;
        }

        tweak = mx_json_get_str(a, "set_tweak", NULL);
        if (tweak == NULL || strcmp(tweak, "highlight") != 0) {
            continue;
        }

        v = mx_json_get(a, "value");
        m->highlight = v == NULL || v->type == MX_JSON_TRUE;
    }
}


int
mx_push_eval(mx_pool_t *pool, const mx_json_t *ruleset,
    const mx_json_t *event, const mx_push_ctx_t *ctx, mx_push_match_t *m)
{
    const mx_json_t  *arr, *rule;
    mx_push_kind_t    kind;
    size_t            i;
    int               mentions, rc;

    memset(m, 0, sizeof(mx_push_match_t));

    mentions = mx_json_get(mx_json_get(event, "content"), "m.mentions")
               != NULL;

    for (kind = 0; kind < MX_PUSH_KINDS; kind++) {
        arr = mx_json_get_arr(ruleset, mx_push_kind_name(kind));
        if (arr == NULL) {
            continue;
        }

        for (i = 0; i < arr->u.a.n; i++) {
            rule = arr->u.a.v[i];

            rc = mx_pe_rule(pool, kind, rule, event, ctx, mentions);
            if (rc < 0) {
                return -1;
            }

            if (rc == 1) {
                m->rule = rule;
                m->actions = mx_json_get(rule, "actions");
                mx_push_actions_flags(m->actions, m);
                return 0;
            }
        }
    }

    return 0;
}

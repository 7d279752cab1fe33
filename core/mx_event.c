/*
 * mx_event: hashes, redaction, signatures and IDs of events.  See
 * mx_event.h, the "Signing Events" section of the server-server API and the
 * redaction sections of the room version pages.
 */

#include <string.h>

#include <openssl/sha.h>
#include <sodium.h>

#include "mx_base64.h"
#include "mx_event.h"
#include "mx_ids.h"


/* --- redaction --------------------------------------------------------- */

typedef struct {
    const char   *type;
    const char  **keys;         /* NULL: keep the whole content */
} mx_redact_content_t;

typedef struct {
    const char                 **top;
    const mx_redact_content_t   *content;
} mx_redact_rules_t;


static const char  *mx_top_v1[] = {
    "event_id", "type", "room_id", "sender", "state_key", "content",
    "hashes", "signatures", "depth", "prev_events", "prev_state",
    "auth_events", "origin", "origin_server_ts", "membership", NULL
};

static const char  *mx_top_v11[] = {
    "event_id", "type", "room_id", "sender", "state_key", "content",
    "hashes", "signatures", "depth", "prev_events", "auth_events",
    "origin_server_ts", NULL
};

static const char  *mx_member_v1[] = { "membership", NULL };
static const char  *mx_member_v9[] = {
    "membership", "join_authorised_via_users_server", NULL
};
static const char  *mx_member_v11[] = {
    "membership", "join_authorised_via_users_server", "third_party_invite",
    NULL
};
static const char  *mx_create_v1[] = { "creator", NULL };
static const char  *mx_join_rules_v1[] = { "join_rule", NULL };
static const char  *mx_join_rules_v8[] = { "join_rule", "allow", NULL };
static const char  *mx_pl_v1[] = {
    "ban", "events", "events_default", "kick", "redact", "state_default",
    "users", "users_default", NULL
};
static const char  *mx_pl_v11[] = {
    "ban", "events", "events_default", "invite", "kick", "redact",
    "state_default", "users", "users_default", NULL
};
static const char  *mx_aliases_v1[] = { "aliases", NULL };
static const char  *mx_history_v1[] = { "history_visibility", NULL };
static const char  *mx_redaction_v11[] = { "redacts", NULL };

static const mx_redact_content_t  mx_content_v1[] = {
    { "m.room.member", mx_member_v1 },
    { "m.room.create", mx_create_v1 },
    { "m.room.join_rules", mx_join_rules_v1 },
    { "m.room.power_levels", mx_pl_v1 },
    { "m.room.aliases", mx_aliases_v1 },
    { "m.room.history_visibility", mx_history_v1 },
    { NULL, NULL }
};

static const mx_redact_content_t  mx_content_v6[] = {
    { "m.room.member", mx_member_v1 },
    { "m.room.create", mx_create_v1 },
    { "m.room.join_rules", mx_join_rules_v1 },
    { "m.room.power_levels", mx_pl_v1 },
    { "m.room.history_visibility", mx_history_v1 },
    { NULL, NULL }
};

static const mx_redact_content_t  mx_content_v8[] = {
    { "m.room.member", mx_member_v1 },
    { "m.room.create", mx_create_v1 },
    { "m.room.join_rules", mx_join_rules_v8 },
    { "m.room.power_levels", mx_pl_v1 },
    { "m.room.history_visibility", mx_history_v1 },
    { NULL, NULL }
};

static const mx_redact_content_t  mx_content_v9[] = {
    { "m.room.member", mx_member_v9 },
    { "m.room.create", mx_create_v1 },
    { "m.room.join_rules", mx_join_rules_v8 },
    { "m.room.power_levels", mx_pl_v1 },
    { "m.room.history_visibility", mx_history_v1 },
    { NULL, NULL }
};

static const mx_redact_content_t  mx_content_v11[] = {
    { "m.room.member", mx_member_v11 },
    { "m.room.create", NULL },
    { "m.room.join_rules", mx_join_rules_v8 },
    { "m.room.power_levels", mx_pl_v11 },
    { "m.room.history_visibility", mx_history_v1 },
    { "m.room.redaction", mx_redaction_v11 },
    { NULL, NULL }
};

static const mx_redact_rules_t  mx_redact_rules[] = {
    [MX_REDACT_V1]  = { mx_top_v1,  mx_content_v1 },
    [MX_REDACT_V6]  = { mx_top_v1,  mx_content_v6 },
    [MX_REDACT_V8]  = { mx_top_v1,  mx_content_v8 },
    [MX_REDACT_V9]  = { mx_top_v1,  mx_content_v9 },
    [MX_REDACT_V11] = { mx_top_v11, mx_content_v11 },
};


/* a new object with only the keys named (values shared); NULL on ENOMEM */

static mx_json_t *
mx_event_keep(mx_pool_t *pool, const mx_json_t *obj, const char **keys)
{
    mx_json_t  *out, *v;

    out = mx_json_object(pool);
    if (out == NULL) {
        return NULL;
    }

    for ( /* void */ ; *keys; keys++) {
        v = mx_json_get(obj, *keys);

        if (v != NULL && mx_json_set(pool, out, *keys, v) != 0) {
            return NULL;
        }
    }

    return out;
}


mx_json_t *
mx_event_redact(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv)
{
    const mx_redact_rules_t    *rules;
    const mx_redact_content_t  *c;
    const char                 *type;
    mx_json_t                  *out, *content, *old, *tpi, *signed_;

    if (!mx_json_is(ev, MX_JSON_OBJECT)) {
        return NULL;
    }

    rules = &mx_redact_rules[rv->redaction];

    out = mx_event_keep(pool, ev, rules->top);
    if (out == NULL) {
        return NULL;
    }

    old = mx_json_get(ev, "content");
    type = mx_json_get_str(ev, "type", NULL);

    if (!mx_json_is(old, MX_JSON_OBJECT)) {
        /* a malformed event: the redacted form has an empty content */
        content = mx_json_object(pool);
        goto done;
    }

    for (c = rules->content; c->type; c++) {
        if (type != NULL && strcmp(c->type, type) == 0) {
            break;
        }
    }

    if (c->type == NULL) {
        content = mx_json_object(pool);

    } else if (c->keys == NULL) {
        content = (mx_json_t *) old;

    } else {
        content = mx_event_keep(pool, old, c->keys);

        /* v11: of third_party_invite, only "signed" survives */
        tpi = mx_json_get(content, "third_party_invite");

        if (tpi != NULL) {
            if (!mx_json_is(tpi, MX_JSON_OBJECT)) {
                mx_json_remove(content, "third_party_invite");

            } else {
                signed_ = mx_json_get(tpi, "signed");
                tpi = mx_json_object(pool);

                if (tpi == NULL
                    || (signed_ != NULL
                        && mx_json_set(pool, tpi, "signed", signed_) != 0)
                    || mx_json_set(pool, content, "third_party_invite", tpi)
                       != 0)
                {
                    return NULL;
                }
            }
        }
    }

done:

    if (content == NULL || mx_json_set(pool, out, "content", content) != 0) {
        return NULL;
    }

    return out;
}


/* --- hashes -------------------------------------------------------------- */

unsigned
mx_event_json_flags(const mx_room_version_t *rv)
{
    return rv->strict_canonical ? MX_JSON_STRICT : 0;
}


/* sha256 of the canonical form of obj without the keys named */

static int
mx_event_hash_without(mx_pool_t *pool, const mx_json_t *obj,
    const char **drop, unsigned flags, unsigned char out[32])
{
    mx_json_t  *copy;
    char       *bytes;
    size_t      len;

    copy = mx_json_object_copy(pool, obj);
    if (copy == NULL) {
        return -1;
    }

    for ( /* void */ ; *drop; drop++) {
        mx_json_remove(copy, *drop);
    }

    bytes = mx_json_encode(pool, copy, flags, &len);
    if (bytes == NULL) {
        return -1;
    }

    /* OpenSSL's SHA-256 uses the CPU's SHA extensions where there are */
    SHA256((const unsigned char *) bytes, len, out);

    return 0;
}


int
mx_event_content_hash(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, unsigned char out[32])
{
    static const char  *drop[] = { "unsigned", "signatures", "hashes", NULL };

    if (!mx_json_is(ev, MX_JSON_OBJECT)) {
        return -1;
    }

    return mx_event_hash_without(pool, ev, drop, mx_event_json_flags(rv), out);
}


int
mx_event_reference_hash(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, unsigned char out[32])
{
    static const char  *drop[] = { "signatures", "unsigned", NULL };
    mx_json_t          *redacted;

    redacted = mx_event_redact(pool, ev, rv);
    if (redacted == NULL) {
        return -1;
    }

    return mx_event_hash_without(pool, redacted, drop,
                                 mx_event_json_flags(rv), out);
}


/* sigil + base64 of the reference hash */

static char *
mx_event_hash_id(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, char sigil, int alphabet)
{
    unsigned char   hash[32];
    char           *id;

    if (mx_event_reference_hash(pool, ev, rv, hash) != 0) {
        return NULL;
    }

    id = mx_palloc(pool, MX_EVENT_HASH_ID_LEN + 1);
    if (id == NULL) {
        return NULL;
    }

    id[0] = sigil;
    mx_base64_encode(hash, sizeof(hash), id + 1, alphabet);

    return id;
}


char *
mx_event_id(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv)
{
    const char  *id;
    size_t       len;

    switch (rv->event_id) {

    case MX_EVENT_ID_OPAQUE:
        id = mx_json_get_str(ev, "event_id", &len);
        return id ? mx_pstrndup(pool, id, len) : NULL;

    case MX_EVENT_ID_HASH:
        return mx_event_hash_id(pool, ev, rv, '$', MX_BASE64_STD);

    default:
        return mx_event_hash_id(pool, ev, rv, '$', MX_BASE64_URLSAFE);
    }
}


char *
mx_event_room_id(mx_pool_t *pool, const mx_json_t *create,
    const mx_room_version_t *rv)
{
    return mx_event_hash_id(pool, create, rv, '!', MX_BASE64_URLSAFE);
}


/* --- signing ------------------------------------------------------------- */

int
mx_event_sign(mx_pool_t *pool, mx_json_t *ev, const mx_room_version_t *rv,
    const char *origin, const mx_signing_key_t *key)
{
    unsigned char   hash[32];
    char            b64[mx_base64_encoded_len(32) + 1];
    mx_json_t      *hashes, *redacted, *sigs;

    if (mx_event_content_hash(pool, ev, rv, hash) != 0) {
        return -1;
    }

    mx_base64_encode(hash, sizeof(hash), b64, MX_BASE64_STD);

    hashes = mx_json_object(pool);
    if (hashes == NULL
        || mx_json_set_str(pool, hashes, "sha256", b64) != 0
        || mx_json_set(pool, ev, "hashes", hashes) != 0)
    {
        return -1;
    }

    redacted = mx_event_redact(pool, ev, rv);
    if (redacted == NULL) {
        return -1;
    }

    /* the redacted copy shares ev's signatures: sign a copy of them */
    sigs = mx_json_get(ev, "signatures");
    if (sigs != NULL) {
        sigs = mx_json_clone(pool, sigs);
        if (sigs == NULL || mx_json_set(pool, redacted, "signatures", sigs)) {
            return -1;
        }
    }

    if (mx_sign_json(pool, redacted, origin, key, mx_event_json_flags(rv))
        != 0)
    {
        return -1;
    }

    return mx_json_set(pool, ev, "signatures",
                       mx_json_get(redacted, "signatures"));
}


/* --- checks of received events ------------------------------------------- */

/* a string of 1 to 255 bytes, or absent when optional */

static int
mx_event_check_str(const mx_json_t *ev, const char *key, int optional,
    const char **s, size_t *len)
{
    mx_json_t  *v;

    v = mx_json_get(ev, key);

    if (v == NULL) {
        *s = NULL;
        return optional ? 0 : -1;
    }

    if (v->type != MX_JSON_STRING || v->u.s.len > MX_EVENT_MAX_ID) {
        return -1;
    }

    *s = v->u.s.p;
    *len = v->u.s.len;

    return 0;
}


/* prev_events or auth_events: IDs, or [ID, hashes] pairs in v1 and v2 */

static int
mx_event_check_refs(const mx_json_t *ev, const char *key,
    const mx_room_version_t *rv, size_t max)
{
    mx_json_t  *list, *id, *item;
    size_t      i;

    list = mx_json_get(ev, key);

    if (!mx_json_is(list, MX_JSON_ARRAY) || list->u.a.n > max) {
        return -1;
    }

    for (i = 0; i < list->u.a.n; i++) {
        item = list->u.a.v[i];
        id = item;

        if (rv->event_id == MX_EVENT_ID_OPAQUE) {
            if (!mx_json_is(item, MX_JSON_ARRAY) || item->u.a.n != 2
                || !mx_json_is(item->u.a.v[1], MX_JSON_OBJECT))
            {
                return -1;
            }

            id = item->u.a.v[0];
        }

        if (!mx_json_is(id, MX_JSON_STRING)
            || !mx_event_id_valid(id->u.s.p, id->u.s.len, rv->event_id))
        {
            return -1;
        }
    }

    return 0;
}


int
mx_event_check_pdu(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, const char **why)
{
    const char  *s, *type;
    size_t       len, type_len;
    int64_t      n;
    ssize_t      size;
    mx_json_t   *v, *sigs;
    size_t       i, j;

#define mx_refuse(reason)  do { *why = reason; return -1; } while (0)

    if (!mx_json_is(ev, MX_JSON_OBJECT)) {
        mx_refuse("the event is not a JSON object");
    }

    size = mx_json_encoded_len(ev, mx_event_json_flags(rv));
    if (size < 0) {
        mx_refuse(rv->strict_canonical
                  ? "the event holds a float or an integer out of range"
                  : "the event cannot be written as canonical JSON");
    }

    if (size > MX_EVENT_MAX_SIZE) {
        mx_refuse("the event is larger than 65536 bytes");
    }

    if (mx_event_check_str(ev, "type", 0, &type, &type_len) != 0) {
        mx_refuse("type must be a string of at most 255 bytes");
    }

    if (mx_event_check_str(ev, "sender", 0, &s, &len) != 0
        || !mx_user_id_historical_valid(s, len))
    {
        mx_refuse("sender must be a user ID");
    }

    if (mx_event_check_str(ev, "state_key", 1, &s, &len) != 0) {
        mx_refuse("state_key must be a string of at most 255 bytes");
    }

    if (rv->room_id_from_create
        && type_len == sizeof("m.room.create") - 1
        && memcmp(type, "m.room.create", type_len) == 0
        && s != NULL && len == 0)
    {
        if (mx_json_get(ev, "room_id") != NULL) {
            mx_refuse("a create event of this room version has no room_id");
        }

    } else if (mx_event_check_str(ev, "room_id", 0, &s, &len) != 0
               || !(rv->room_id_from_create ? mx_room_id_is_hash(s, len)
                                            : mx_room_id_valid(s, len)))
    {
        mx_refuse("room_id must be a room ID of this room version");
    }

    if (rv->event_id == MX_EVENT_ID_OPAQUE) {
        if (mx_event_check_str(ev, "event_id", 0, &s, &len) != 0
            || !mx_event_id_valid(s, len, MX_EVENT_ID_OPAQUE))
        {
            mx_refuse("event_id must be an event ID");
        }
    }

    if (!mx_json_is(mx_json_get(ev, "content"), MX_JSON_OBJECT)) {
        mx_refuse("content must be an object");
    }

    if (mx_json_get_int(ev, "origin_server_ts", &n) != 0) {
        mx_refuse("origin_server_ts must be an integer");
    }

    if (mx_json_get_int(ev, "depth", &n) != 0 || n < 0) {
        mx_refuse("depth must be a non-negative integer");
    }

    if (mx_event_check_refs(ev, "prev_events", rv, MX_EVENT_MAX_PREV) != 0) {
        mx_refuse("prev_events must be a list of at most 20 event IDs");
    }

    if (mx_event_check_refs(ev, "auth_events", rv, MX_EVENT_MAX_AUTH) != 0) {
        mx_refuse("auth_events must be a list of at most 10 event IDs");
    }

    v = mx_json_get(ev, "hashes");
    if (!mx_json_is(v, MX_JSON_OBJECT)
        || !mx_json_is(mx_json_get(v, "sha256"), MX_JSON_STRING))
    {
        mx_refuse("hashes.sha256 must be a string");
    }

    sigs = mx_json_get(ev, "signatures");
    if (!mx_json_is(sigs, MX_JSON_OBJECT)) {
        mx_refuse("signatures must be an object");
    }

    for (i = 0; i < sigs->u.o.n; i++) {
        v = sigs->u.o.m[i].value;

        if (!mx_json_is(v, MX_JSON_OBJECT)) {
            mx_refuse("signatures must map servers to objects");
        }

        for (j = 0; j < v->u.o.n; j++) {
            if (!mx_json_is(v->u.o.m[j].value, MX_JSON_STRING)) {
                mx_refuse("a signature must be a string");
            }
        }
    }

    v = mx_json_get(ev, "unsigned");
    if (v != NULL && v->type != MX_JSON_OBJECT) {
        mx_refuse("unsigned must be an object");
    }

    /* redactions name their target: top level before v11, content after */
    if (type_len == sizeof("m.room.redaction") - 1
        && memcmp(type, "m.room.redaction", type_len) == 0)
    {
        v = rv->redaction == MX_REDACT_V11
            ? mx_json_get(mx_json_get(ev, "content"), "redacts")
            : mx_json_get(ev, "redacts");

        if (v != NULL
            && (v->type != MX_JSON_STRING
                || !mx_event_id_valid(v->u.s.p, v->u.s.len, rv->event_id)))
        {
            mx_refuse("redacts must be an event ID");
        }
    }

    (void) pool;

    return 0;

#undef mx_refuse
}


/* add a server name (a copy ending in NUL) unless it is already there */

static size_t
mx_event_add_signer(mx_pool_t *pool, const char *out[3], size_t n,
    const char *id, size_t id_len)
{
    const char  *server;
    size_t       slen, i;

    server = mx_id_server(id, id_len, &slen);
    if (server == NULL) {
        return n;
    }

    for (i = 0; i < n; i++) {
        if (strlen(out[i]) == slen && memcmp(out[i], server, slen) == 0) {
            return n;
        }
    }

    out[n] = mx_pstrndup(pool, server, slen);

    return out[n] ? n + 1 : n;
}


size_t
mx_event_signers(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, const char *out[3])
{
    const char  *s, *type;
    size_t       len, n;
    mx_json_t   *content;

    n = 0;

    s = mx_json_get_str(ev, "sender", &len);
    if (s != NULL) {
        n = mx_event_add_signer(pool, out, n, s, len);
    }

    if (rv->event_id == MX_EVENT_ID_OPAQUE) {
        s = mx_json_get_str(ev, "event_id", &len);
        if (s != NULL) {
            n = mx_event_add_signer(pool, out, n, s, len);
        }
    }

    type = mx_json_get_str(ev, "type", NULL);
    content = mx_json_get_obj(ev, "content");

    if (rv->restricted && type != NULL && strcmp(type, "m.room.member") == 0) {
        s = mx_json_get_str(content, "membership", NULL);

        if (s != NULL && strcmp(s, "join") == 0) {
            s = mx_json_get_str(content, "join_authorised_via_users_server",
                                &len);
            if (s != NULL) {
                n = mx_event_add_signer(pool, out, n, s, len);
            }
        }
    }

    return n;
}


/* 1 when some ed25519 signature of server verifies with a known key */

static int
mx_event_signed_by(mx_pool_t *pool, const mx_json_t *redacted,
    const char *server, int64_t ts, const mx_room_version_t *rv,
    mx_event_key_pt key, void *ctx)
{
    const unsigned char  *pk;
    const char           *key_id;
    mx_json_t            *mine;
    size_t                i;

    mine = mx_json_get_obj(mx_json_get_obj(redacted, "signatures"), server);
    if (mine == NULL) {
        return 0;
    }

    for (i = 0; i < mine->u.o.n; i++) {
        key_id = mine->u.o.m[i].key;

        if (strncmp(key_id, "ed25519:", 8) != 0) {
            continue;
        }

        pk = key(ctx, server, key_id, ts);

        if (pk != NULL
            && mx_verify_json(pool, redacted, server, key_id, pk,
                              mx_event_json_flags(rv)) == 0)
        {
            return 1;
        }
    }

    return 0;
}


int
mx_event_signed(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, const char *server, mx_event_key_pt key,
    void *ctx)
{
    mx_json_t  *redacted;
    int64_t     ts;

    redacted = mx_event_redact(pool, ev, rv);
    if (redacted == NULL) {
        return 0;
    }

    if (mx_json_get_int(ev, "origin_server_ts", &ts) != 0) {
        ts = 0;
    }

    return mx_event_signed_by(pool, redacted, server, ts, rv, key, ctx);
}


mx_event_verdict_t
mx_event_verify(mx_pool_t *pool, const mx_json_t *ev,
    const mx_room_version_t *rv, mx_event_key_pt key, void *ctx,
    const char **why)
{
    unsigned char   hash[32], claimed[mx_base64_decoded_max(64)];
    const char     *signers[3], *b64;
    size_t          n, i, len;
    ssize_t         got;
    int64_t         ts;
    mx_json_t      *redacted;

    *why = NULL;

    redacted = mx_event_redact(pool, ev, rv);
    if (redacted == NULL) {
        *why = "the event is not a JSON object";
        return MX_EVENT_REJECT;
    }

    if (mx_json_get_int(ev, "origin_server_ts", &ts) != 0) {
        ts = 0;
    }

    n = mx_event_signers(pool, ev, rv, signers);
    if (n == 0) {
        *why = "the event names no server to check its signature";
        return MX_EVENT_REJECT;
    }

    for (i = 0; i < n; i++) {
        if (!mx_event_signed_by(pool, redacted, signers[i], ts, rv, key,
                                ctx))
        {
            *why = "a required signature is missing or does not verify";
            return MX_EVENT_REJECT;
        }
    }

    b64 = mx_json_get_str(mx_json_get_obj(ev, "hashes"), "sha256", &len);

    if (b64 == NULL || len > mx_base64_encoded_len(32) + 2) {
        *why = "the content hash is missing";
        return MX_EVENT_REDACT;
    }

    got = mx_base64_decode(b64, len, claimed, MX_BASE64_STD);

    if (mx_event_content_hash(pool, ev, rv, hash) != 0
        || got != (ssize_t) sizeof(hash)
        || sodium_memcmp(hash, claimed, sizeof(hash)) != 0)
    {
        *why = "the content hash does not match";
        return MX_EVENT_REDACT;
    }

    return MX_EVENT_OK;
}


/* --- the client format ---------------------------------------------------- */

mx_json_t *
mx_event_client(mx_pool_t *pool, const mx_json_t *pdu, const char *event_id,
    const char *room_id)
{
    static const char  *keep[] = {
        "content", "origin_server_ts", "room_id", "sender", "state_key",
        "type", "unsigned", "redacts", NULL
    };
    mx_json_t          *out;

    if (!mx_json_is(pdu, MX_JSON_OBJECT)) {
        return NULL;
    }

    out = mx_event_keep(pool, pdu, keep);

    if (out == NULL
        || mx_json_set_str(pool, out, "event_id", event_id) != 0
        || (mx_json_get(out, "room_id") == NULL && room_id != NULL
            && mx_json_set_str(pool, out, "room_id", room_id) != 0))
    {
        return NULL;
    }

    return out;
}

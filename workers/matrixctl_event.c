/*
 * matrixctl: the wire format from the shell, JSON on stdin.
 *
 *   canonical [--room-version N]       the canonical form; strict (no
 *                                      floats, integers within 2^53) unless
 *                                      N is a lenient version (1 to 5)
 *   sign -k KEYFILE -s SERVER [--room-version N]
 *                                      without N, sign a JSON object; with
 *                                      N, an event: hashes, redaction and
 *                                      the signature, printed whole
 *   verify -s SERVER -p PUBKEY [-i KEY_ID] [--room-version N]
 *                                      without N, "ok" when the object
 *                                      carries SERVER's signature; with N,
 *                                      an event's verdict: "ok", "redact"
 *                                      (bad content hash) or "reject"
 *   public-key -k KEYFILE               "<key id> <public key>" of a key file
 *   hash --room-version N              {"content_hash","reference_hash"}
 *   redact --room-version N            the redacted event
 *   event-id --room-version N          the event ID; for a v12 create
 *                                      event a second line, the room ID
 *   sign-events -k KEYFILE -s SERVER --room-version N
 *                                      events, one JSON object a line:
 *                                      each answered on a line with its
 *                                      event ID, a space and the event
 *                                      signed, flushed at once (a caller
 *                                      chains events without a process
 *                                      each)
 *
 * Exit status: 0 done, 1 a signature does not verify, 2 bad input (with a
 * message on stderr).
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <mx_base64.h>
#include <mx_event.h>
#include <mx_json.h>
#include <mx_pool.h>
#include <mx_room_version.h>
#include <mx_sign.h>

#include "matrixctl.h"


typedef struct {
    const char                *cmd;
    mx_pool_t                 *pool;
    mx_json_t                 *in;
    const mx_room_version_t   *rv;
    const char                *key_file;
    const char                *server;
    const char                *pubkey;
    const char                *key_id;
} ctl_event_t;


/* an error of the command c is running; returns its exit status, 2 */
#define ctl_fail(c, ...)  matrixctl_fail((c)->cmd, __VA_ARGS__)


/*
 * Options (those in "allowed"), then JSON on stdin.  need_rv: the room
 * version is required.  0, or the exit status of a failure.
 */
static int
ctl_start(ctl_event_t *c, int argc, char **argv, const char *allowed,
    int need_rv)
{
    static const struct option  longs[] = {
        { "room-version", required_argument, NULL, 'r' },
        { "key", required_argument, NULL, 'k' },
        { "server", required_argument, NULL, 's' },
        { "public-key", required_argument, NULL, 'p' },
        { "key-id", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 }
    };
    mx_json_error_t   err;
    const char       *rv;
    char             *text;
    size_t            len;
    int               opt;

    memset(c, 0, sizeof(*c));
    c->cmd = argv[0];
    rv = NULL;

    opterr = 0;

    while ((opt = getopt_long(argc, argv, "r:k:s:p:i:", longs, NULL)) != -1) {
        if (opt == '?' || strchr(allowed, opt) == NULL) {
            return ctl_fail(c, "unknown option %s (see matrixctl help)",
                            argv[optind - 1]);
        }

        switch (opt) {
        case 'r': rv = optarg; break;
        case 'k': c->key_file = optarg; break;
        case 's': c->server = optarg; break;
        case 'p': c->pubkey = optarg; break;
        case 'i': c->key_id = optarg; break;
        }
    }

    if (optind < argc) {
        return ctl_fail(c, "unexpected argument %s: JSON comes on stdin",
                        argv[optind]);
    }

    if (rv != NULL) {
        c->rv = mx_room_version(rv, strlen(rv));
        if (c->rv == NULL) {
            return ctl_fail(c, "unknown room version \"%s\" (1 to 12)", rv);
        }

    } else if (need_rv) {
        return ctl_fail(c, "--room-version N is required");
    }

    c->pool = mx_pool_create(65536);
    if (c->pool == NULL) {
        return ctl_fail(c, "out of memory");
    }

    text = matrixctl_read_stdin(c->pool, &len);
    if (text == NULL) {
        return ctl_fail(c, "cannot read stdin");
    }

    c->in = mx_json_parse(c->pool, text, len, &err);
    if (c->in == NULL) {
        return ctl_fail(c, "stdin is not valid JSON: %s", err.msg);
    }

    return 0;
}


/* an event command's input: a JSON object */
static int
ctl_start_event(ctl_event_t *c, int argc, char **argv, const char *allowed,
    int need_rv)
{
    int  rc;

    rc = ctl_start(c, argc, argv, allowed, need_rv);
    if (rc != 0) {
        return rc;
    }

    if (c->in->type != MX_JSON_OBJECT) {
        return ctl_fail(c, "stdin must hold a JSON object");
    }

    return 0;
}


static int
ctl_print(ctl_event_t *c, const mx_json_t *v, unsigned flags)
{
    char    *out;
    size_t   len;

    out = mx_json_encode(c->pool, v, flags, &len);
    if (out == NULL) {
        return ctl_fail(c, "cannot be written as canonical JSON%s",
                        flags & MX_JSON_STRICT
                        ? " (floats and integers beyond 2^53-1 are not"
                          " allowed)"
                        : "");
    }

    fwrite(out, 1, len, stdout);
    putchar('\n');

    return 0;
}


static int
ctl_done(ctl_event_t *c, int rc)
{
    if (c->pool) {
        mx_pool_destroy(c->pool);
    }

    return rc;
}


int
matrixctl_canonical(int argc, char **argv)
{
    ctl_event_t  c;
    int          rc;

    rc = ctl_start(&c, argc, argv, "r", 0);
    if (rc == 0) {
        rc = ctl_print(&c, c.in, c.rv ? mx_event_json_flags(c.rv)
                                      : MX_JSON_STRICT);
    }

    return ctl_done(&c, rc);
}


static int
ctl_load_key(ctl_event_t *c, mx_signing_key_t *key)
{
    char         buf[512];
    const char  *why;
    size_t       n;
    FILE        *f;

    f = fopen(c->key_file, "r");
    if (f == NULL) {
        return ctl_fail(c, "cannot open %s", c->key_file);
    }

    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';

    if (mx_key_parse(key, buf, n, &why) != 0) {
        return ctl_fail(c, "%s: %s", c->key_file, why ? why : "not a key");
    }

    return 0;
}


int
matrixctl_sign(int argc, char **argv)
{
    ctl_event_t       c;
    mx_signing_key_t  key;
    int               rc;

    rc = ctl_start_event(&c, argc, argv, "rks", 0);
    if (rc != 0) {
        return ctl_done(&c, rc);
    }

    if (c.key_file == NULL || c.server == NULL) {
        return ctl_done(&c, ctl_fail(&c, "-k KEYFILE and -s SERVER are"
                                     " required"));
    }

    rc = ctl_load_key(&c, &key);
    if (rc != 0) {
        return ctl_done(&c, rc);
    }

    if (c.rv) {
        if (mx_event_sign(c.pool, c.in, c.rv, c.server, &key) != 0) {
            rc = ctl_fail(&c, "the event cannot be written as room version"
                          " %s's canonical JSON", c.rv->id);
        } else {
            rc = ctl_print(&c, c.in, mx_event_json_flags(c.rv));
        }

    } else if (mx_sign_json(c.pool, c.in, c.server, &key, MX_JSON_STRICT)
               != 0)
    {
        rc = ctl_fail(&c, "the object cannot be written as canonical JSON");

    } else {
        rc = ctl_print(&c, c.in, MX_JSON_STRICT);
    }

    sodium_memzero(&key, sizeof(key));

    return ctl_done(&c, rc);
}


/*
 * Events one a line: each signed as sign --room-version does and answered
 * "<event ID> <event>" before the next line is read.  A line that is not
 * an event stops it, exit 2, with the line's number.
 */

int
matrixctl_sign_events(int argc, char **argv)
{
    ctl_event_t       c;
    mx_signing_key_t  key;
    mx_json_t        *ev;
    mx_json_error_t   err;
    mx_pool_t        *pool;
    const char       *id;
    char             *line, *out;
    size_t            cap, len, n;
    ssize_t           got;
    int               rc, opt;

    static const struct option  longs[] = {
        { "room-version", required_argument, NULL, 'r' },
        { "key", required_argument, NULL, 'k' },
        { "server", required_argument, NULL, 's' },
        { NULL, 0, NULL, 0 }
    };

    memset(&c, 0, sizeof(c));
    c.cmd = argv[0];
    opterr = 0;

    while ((opt = getopt_long(argc, argv, "r:k:s:", longs, NULL)) != -1) {
        switch (opt) {
        case 'r':
            c.rv = mx_room_version(optarg, strlen(optarg));
            if (c.rv == NULL) {
                return ctl_fail(&c, "unknown room version \"%s\" (1 to 12)",
                                optarg);
            }
            break;
        case 'k': c.key_file = optarg; break;
        case 's': c.server = optarg; break;
        default:
            return ctl_fail(&c, "unknown option %s (see matrixctl help)",
                            argv[optind - 1]);
        }
    }

    if (optind < argc || c.key_file == NULL || c.server == NULL
        || c.rv == NULL)
    {
        return ctl_fail(&c, "usage: sign-events -k KEYFILE -s SERVER"
                        " --room-version N < EVENTS");
    }

    rc = ctl_load_key(&c, &key);
    if (rc != 0) {
        return rc;
    }

    line = NULL;
    cap = 0;
    n = 0;

    while ((got = getline(&line, &cap, stdin)) != -1) {
        n++;
        len = (size_t) got;

        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }

        if (len == 0) {
            continue;
        }

        pool = mx_pool_create(65536);
        if (pool == NULL) {
            rc = ctl_fail(&c, "out of memory");
            break;
        }

        ev = mx_json_parse(pool, line, len, &err);
        id = NULL;
        out = NULL;

        if (ev == NULL || ev->type != MX_JSON_OBJECT) {
            rc = ctl_fail(&c, "line %zu: not a JSON object%s%s", n,
                          ev ? "" : ": ", ev ? "" : err.msg);

        } else if (mx_event_sign(pool, ev, c.rv, c.server, &key) != 0
                   || (id = mx_event_id(pool, ev, c.rv)) == NULL
                   || (out = mx_json_encode(pool, ev,
                                            mx_event_json_flags(c.rv),
                                            &len))
                      == NULL)
        {
            rc = ctl_fail(&c, "line %zu: the event cannot be signed as room"
                          " version %s%s", n, c.rv->id,
                          id ? "" : " (or has no event ID)");

        } else {
            printf("%s ", id);
            fwrite(out, 1, len, stdout);
            putchar('\n');
            fflush(stdout);
        }

        mx_pool_destroy(pool);

        if (rc != 0) {
            break;
        }
    }

    free(line);
    sodium_memzero(&key, sizeof(key));

    return rc;
}


typedef struct {
    const char     *server;
    const char     *key_id;    /* NULL: any key ID */
    unsigned char   pk[32];
} ctl_key_t;


static const unsigned char *
ctl_key_lookup(void *ctx, const char *server, const char *key_id, int64_t ts)
{
    ctl_key_t  *k;

    (void) ts;
    k = ctx;

    if (strcmp(server, k->server) != 0
        || (k->key_id != NULL && strcmp(key_id, k->key_id) != 0))
    {
        return NULL;
    }

    return k->pk;
}


int
matrixctl_public_key(int argc, char **argv)
{
    ctl_event_t       c;
    mx_signing_key_t  key;
    int               rc, opt;

    memset(&c, 0, sizeof(c));
    c.cmd = argv[0];
    opterr = 0;

    while ((opt = getopt(argc, argv, "k:")) != -1) {
        if (opt != 'k') {
            return ctl_fail(&c, "usage: public-key -k KEYFILE");
        }
        c.key_file = optarg;
    }

    if (c.key_file == NULL || optind < argc) {
        return ctl_fail(&c, "usage: public-key -k KEYFILE");
    }

    rc = ctl_load_key(&c, &key);
    if (rc == 0) {
        printf("%s %s\n", key.key_id, key.pk_b64);
    }

    sodium_memzero(&key, sizeof(key));

    return rc;
}


int
matrixctl_verify(int argc, char **argv)
{
    static const char  *verdicts[] = { "ok", "redact", "reject" };
    ctl_event_t         c;
    ctl_key_t           k;
    mx_json_t          *mine;
    const char         *why;
    size_t              i;
    int                 rc, v;

    rc = ctl_start_event(&c, argc, argv, "rspi", 0);
    if (rc != 0) {
        return ctl_done(&c, rc);
    }

    if (c.server == NULL || c.pubkey == NULL) {
        return ctl_done(&c, ctl_fail(&c, "-s SERVER and -p PUBKEY are"
                                     " required"));
    }

    if (mx_base64_decode(c.pubkey, strlen(c.pubkey), k.pk, MX_BASE64_STD)
        != 32)
    {
        return ctl_done(&c, ctl_fail(&c, "PUBKEY must be 32 bytes of"
                                     " base64"));
    }

    k.server = c.server;
    k.key_id = c.key_id;

    if (c.rv) {
        v = mx_event_verify(c.pool, c.in, c.rv, ctl_key_lookup, &k, &why);
        if (v == MX_EVENT_OK) {
            printf("ok\n");
        } else {
            printf("%s: %s\n", verdicts[v], why);
        }

        return ctl_done(&c, v == MX_EVENT_OK ? 0 : 1);
    }

    mine = mx_json_get_obj(mx_json_get_obj(c.in, "signatures"), c.server);

    for (i = 0; mine != NULL && i < mine->u.o.n; i++) {
        if (c.key_id != NULL && strcmp(c.key_id, mine->u.o.m[i].key) != 0) {
            continue;
        }

        if (mx_verify_json(c.pool, c.in, c.server, mine->u.o.m[i].key, k.pk,
                           MX_JSON_STRICT) == 0)
        {
            printf("ok\n");
            return ctl_done(&c, 0);
        }
    }

    printf("bad: no signature of %s verifies with that key\n", c.server);

    return ctl_done(&c, 1);
}


int
matrixctl_hash(int argc, char **argv)
{
    ctl_event_t     c;
    unsigned char   hash[32];
    char            b64[2][mx_base64_encoded_len(32) + 1];
    int             rc;

    rc = ctl_start_event(&c, argc, argv, "r", 1);
    if (rc != 0) {
        return ctl_done(&c, rc);
    }

    if (mx_event_content_hash(c.pool, c.in, c.rv, hash) != 0) {
        return ctl_done(&c, ctl_fail(&c, "the event cannot be written as"
                                     " room version %s's canonical JSON",
                                     c.rv->id));
    }

    mx_base64_encode(hash, 32, b64[0], MX_BASE64_STD);

    if (mx_event_reference_hash(c.pool, c.in, c.rv, hash) != 0) {
        return ctl_done(&c, ctl_fail(&c, "out of memory"));
    }

    mx_base64_encode(hash, 32, b64[1], MX_BASE64_STD);

    printf("{\"content_hash\":\"%s\",\"reference_hash\":\"%s\"}\n",
           b64[0], b64[1]);

    return ctl_done(&c, 0);
}


int
matrixctl_redact(int argc, char **argv)
{
    ctl_event_t  c;
    mx_json_t   *red;
    int          rc;

    rc = ctl_start_event(&c, argc, argv, "r", 1);
    if (rc != 0) {
        return ctl_done(&c, rc);
    }

    red = mx_event_redact(c.pool, c.in, c.rv);
    rc = red ? ctl_print(&c, red, mx_event_json_flags(c.rv))
             : ctl_fail(&c, "out of memory");

    return ctl_done(&c, rc);
}


int
matrixctl_event_id(int argc, char **argv)
{
    ctl_event_t   c;
    const char   *id, *type, *sk;
    int           rc;

    rc = ctl_start_event(&c, argc, argv, "r", 1);
    if (rc != 0) {
        return ctl_done(&c, rc);
    }

    if (mx_json_encoded_len(c.in, mx_event_json_flags(c.rv)) < 0) {
        return ctl_done(&c, ctl_fail(&c, "the event cannot be written as"
                                     " room version %s's canonical JSON",
                                     c.rv->id));
    }

    id = mx_event_id(c.pool, c.in, c.rv);
    if (id == NULL) {
        return ctl_done(&c, ctl_fail(&c, "room version %s events carry"
                                     " their event_id, and this one has"
                                     " none", c.rv->id));
    }

    printf("%s\n", id);

    type = mx_json_get_str(c.in, "type", NULL);
    sk = mx_json_get_str(c.in, "state_key", NULL);

    if (c.rv->room_id_from_create && type && sk && *sk == '\0'
        && strcmp(type, "m.room.create") == 0)
    {
        printf("%s\n", mx_event_room_id(c.pool, c.in, c.rv));
    }

    return ctl_done(&c, 0);
}

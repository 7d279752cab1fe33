/*
 * event_bench: the cost of the wire format around ed25519.
 *
 * A 1 KiB m.room.message event (room version 12) is taken from its JSON
 * text through what a server does to send it (parse, content hash,
 * redaction, canonical bytes, signature, canonical output) and to receive
 * it (parse, redaction, signature check, content hash).  Each rate is given
 * beside bare libsodium signing and verifying of the same canonical bytes
 * in the same run, and as a ratio to it, so the figures compare across
 * machines.  Target: sending at least 0.6 of the bare sign rate.
 *
 *   event_bench [SECONDS per figure, default 1]
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include <mx_event.h>
#include <mx_json.h>
#include <mx_pool.h>
#include <mx_room_version.h>
#include <mx_sign.h>


typedef struct {
    const mx_room_version_t  *rv;
    mx_signing_key_t          key;
    char                      text[2048];      /* the unsigned event */
    size_t                    text_len;
    char                     *signed_text;     /* the signed event */
    size_t                    signed_len;
    unsigned char             payload[2048];   /* what is signed */
    size_t                    payload_len;
    unsigned char             sig[64];
    mx_pool_t                *pool;
} bench_t;


static double
now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void
fail(const char *what)
{
    fprintf(stderr, "event_bench: %s\n", what);
    exit(1);
}


static void
op_bare_sign(bench_t *b)
{
    crypto_sign_detached(b->sig, NULL, b->payload, b->payload_len,
                         b->key.sk);
}


static void
op_bare_verify(bench_t *b)
{
    if (crypto_sign_verify_detached(b->sig, b->payload, b->payload_len,
                                    b->key.pk) != 0)
    {
        fail("bare verify failed");
    }
}


static void
op_send(bench_t *b)
{
    mx_json_error_t   err;
    mx_json_t        *ev;
    size_t            len;

    mx_pool_reset(b->pool);

    ev = mx_json_parse(b->pool, b->text, b->text_len, &err);
    if (ev == NULL
        || mx_event_sign(b->pool, ev, b->rv, "bench.test", &b->key) != 0
        || mx_json_encode(b->pool, ev, MX_JSON_STRICT, &len) == NULL)
    {
        fail("send failed");
    }
}


static const unsigned char *
bench_key(void *ctx, const char *server, const char *key_id, int64_t ts)
{
    bench_t  *b;

    (void) server;
    (void) key_id;
    (void) ts;
    b = ctx;

    return b->key.pk;
}


static void
op_receive(bench_t *b)
{
    mx_json_error_t   err;
    mx_json_t        *ev;
    const char       *why;

    mx_pool_reset(b->pool);

    ev = mx_json_parse(b->pool, b->signed_text, b->signed_len, &err);
    if (ev == NULL
        || mx_event_check_pdu(b->pool, ev, b->rv, &why) != 0
        || mx_event_verify(b->pool, ev, b->rv, bench_key, b, &why)
           != MX_EVENT_OK)
    {
        fail("receive failed");
    }
}


/* operations per second over about secs seconds */
static double
rate(bench_t *b, void (*op)(bench_t *), double secs)
{
    double  t0, t;
    long    n, batch;

    for (batch = 0; batch < 200; batch++) {
        op(b);                                  /* warm up */
    }

    n = 0;
    t0 = now();

    do {
        for (batch = 0; batch < 200; batch++) {
            op(b);
        }
        n += batch;
        t = now() - t0;
    } while (t < secs);

    return n / t;
}


static void
setup(bench_t *b)
{
    mx_json_error_t   err;
    mx_json_t        *ev, *red;
    char              body[1024];
    char             *p;
    size_t            len;

    if (mx_sign_init() != 0 || mx_key_generate(&b->key, "bench") != 0) {
        fail("cannot make a key");
    }

    b->rv = mx_room_version("12", 2);
    b->pool = mx_pool_create(65536);

    /* a body that brings the signed event to about 1 KiB */
    memset(body, 'x', 560);
    body[560] = '\0';

    b->text_len = snprintf(b->text, sizeof(b->text),
        "{\"type\":\"m.room.message\","
        "\"room_id\":\"!8yif6p8EqgoSten2BLje9ntKm720NyFLWQv9tn8memc\","
        "\"sender\":\"@alice:bench.test\","
        "\"content\":{\"msgtype\":\"m.text\",\"body\":\"%s\","
        "\"m.mentions\":{\"user_ids\":[\"@bob:bench.test\"]}},"
        "\"origin_server_ts\":1700000000000,\"depth\":4242,"
        "\"prev_events\":[\"$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"],"
        "\"auth_events\":[\"$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\","
        "\"$CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC\","
        "\"$DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDD\"],"
        "\"unsigned\":{\"transaction_id\":\"m1700000000000.0\"}}", body);

    ev = mx_json_parse(b->pool, b->text, b->text_len, &err);
    if (ev == NULL
        || mx_event_sign(b->pool, ev, b->rv, "bench.test", &b->key) != 0)
    {
        fail("cannot sign the event");
    }

    p = mx_json_encode(b->pool, ev, MX_JSON_STRICT, &b->signed_len);
    b->signed_text = malloc(b->signed_len + 1);
    memcpy(b->signed_text, p, b->signed_len + 1);

    /* the bare operations sign the event's own canonical bytes */
    red = mx_json_object_copy(b->pool, ev);
    mx_json_remove(red, "signatures");
    mx_json_remove(red, "unsigned");
    p = mx_json_encode(b->pool, red, MX_JSON_STRICT, &len);
    memcpy(b->payload, p, len);
    b->payload_len = len;
    op_bare_sign(b);
}


int
main(int argc, char **argv)
{
    bench_t  b;
    double   secs, sign, send, verify, recv;

    secs = argc > 1 ? atof(argv[1]) : 1.0;
    if (secs <= 0) {
        secs = 1.0;
    }

    memset(&b, 0, sizeof(b));
    setup(&b);

    sign = rate(&b, op_bare_sign, secs);
    send = rate(&b, op_send, secs);
    verify = rate(&b, op_bare_verify, secs);
    recv = rate(&b, op_receive, secs);

    printf("event_bench: a %zu-byte signed event (%zu bytes signed),"
           " room version 12\n", b.signed_len, b.payload_len);
    printf("  bare ed25519 sign              %9.0f /s\n", sign);
    printf("  send: parse+hash+redact+sign   %9.0f /s   %.2f of bare sign"
           " (target 0.6)\n", send, send / sign);
    printf("  bare ed25519 verify            %9.0f /s\n", verify);
    printf("  receive: parse+check+verify    %9.0f /s   %.2f of bare"
           " verify\n", recv, recv / verify);

    mx_pool_destroy(b.pool);
    free(b.signed_text);

    return 0;
}

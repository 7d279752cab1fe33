/*
 * matrixctl: the command table.  Each group of protocol commands lives in a
 * matrixctl_<group>.c of its own and lists itself here.
 */

#ifndef MATRIXCTL_H
#define MATRIXCTL_H

#define MATRIXCTL_VERSION  "0.1.0"

#include <stddef.h>

#include <mx_pool.h>

typedef struct {
    const char  *name;
    int        (*run)(int argc, char **argv);
    const char  *help;
} matrixctl_cmd_t;


/* all of stdin (at most 256 MiB) into the pool, NUL-terminated */
char *matrixctl_read_stdin(mx_pool_t *pool, size_t *len);

/* "matrixctl <cmd>: <message>" on stderr; returns 2, the exit status of a
 * command that failed */
int matrixctl_fail(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


/* matrixctl_event.c: canonical JSON, signing, hashes, redaction, event IDs */
int matrixctl_canonical(int argc, char **argv);
int matrixctl_sign(int argc, char **argv);
int matrixctl_verify(int argc, char **argv);
int matrixctl_public_key(int argc, char **argv);
int matrixctl_hash(int argc, char **argv);
int matrixctl_redact(int argc, char **argv);
int matrixctl_event_id(int argc, char **argv);
int matrixctl_sign_events(int argc, char **argv);

#define MATRIXCTL_EVENT_COMMANDS                                             \
    { "canonical", matrixctl_canonical,                                      \
      "canonical [--room-version N] < JSON: the canonical form (strict"      \
      " unless N is 1 to 5)" },                                              \
    { "sign", matrixctl_sign,                                                \
      "sign -k KEYFILE -s SERVER [--room-version N] < JSON: sign an"         \
      " object, or with N an event (hashes, redaction, signature)" },        \
    { "verify", matrixctl_verify,                                            \
      "verify -s SERVER -p PUBKEY [-i KEY_ID] [--room-version N] < JSON:"    \
      " ok, or why not; with N an event: ok, redact or reject" },            \
    { "public-key", matrixctl_public_key,                                    \
      "public-key -k KEYFILE: the key ID and public key of a key file" },    \
    { "hash", matrixctl_hash,                                                \
      "hash --room-version N < EVENT: content and reference hashes" },       \
    { "redact", matrixctl_redact,                                            \
      "redact --room-version N < EVENT: the redacted event" },               \
    { "event-id", matrixctl_event_id,                                        \
      "event-id --room-version N < EVENT: the event ID (and the room ID"     \
      " a v12 create event makes)" },                                      \
    { "sign-events", matrixctl_sign_events,                                  \
      "sign-events -k KEYFILE -s SERVER --room-version N < EVENTS: one"      \
      " event a line, each answered \"<event ID> <signed event>\"" },

/* matrixctl_auth.c: authorization rules and state resolution */
int matrixctl_auth(int argc, char **argv);
int matrixctl_resolve(int argc, char **argv);

#define MATRIXCTL_AUTH_COMMANDS                                              \
    { "auth", matrixctl_auth,                                                \
      "auth < {\"event\", \"auth_events\"|\"state\", [\"create\"],"          \
      " [\"room_version\"]}: allowed, or the rule that refuses it" },        \
    { "resolve", matrixctl_resolve,                                          \
      "resolve < {\"state_sets\", \"events\", [\"room_version\"]}: the"      \
      " resolved state" },


/* matrixctl_user.c: accounts */
int matrixctl_register(int argc, char **argv);
int matrixctl_regtoken(int argc, char **argv);

#define MATRIXCTL_USER_COMMANDS                                              \
    { "register", matrixctl_register,                                        \
      "register -c CONF [--url URL] [--admin] [--password PW] USERNAME:"     \
      " create a user with the shared secret" },                             \
    { "registration-token", matrixctl_regtoken,                              \
      "registration-token add|list|delete -c CONF ...: registration"         \
      " tokens" },


#define MATRIXCTL_PROTOCOL_COMMANDS                                          \
    MATRIXCTL_EVENT_COMMANDS                                                 \
    MATRIXCTL_AUTH_COMMANDS                                                  \
    MATRIXCTL_USER_COMMANDS

#endif /* MATRIXCTL_H */

/*
 * matrixctl: the command table.  Each group of protocol commands lives in a
 * matrixctl_<group>.c of its own and lists itself here.
 */

#ifndef MATRIXCTL_H
#define MATRIXCTL_H

#define MATRIXCTL_VERSION  "0.1.0"

typedef struct {
    const char  *name;
    int        (*run)(int argc, char **argv);
    const char  *help;
} matrixctl_cmd_t;


/* matrixctl_event.c: canonical JSON, signing, hashes, redaction, event IDs */
#define MATRIXCTL_EVENT_COMMANDS

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

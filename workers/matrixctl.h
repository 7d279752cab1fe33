/*
 * matrixctl: the command table.  Protocol commands (canonical JSON, signing,
 * hashes, redaction, event IDs, auth, state resolution) live in
 * matrixctl_proto.c and are listed by MATRIXCTL_PROTOCOL_COMMANDS.
 */

#ifndef MATRIXCTL_H
#define MATRIXCTL_H

#define MATRIXCTL_VERSION  "0.1.0"

typedef struct {
    const char  *name;
    int        (*run)(int argc, char **argv);
    const char  *help;
} matrixctl_cmd_t;

#define MATRIXCTL_PROTOCOL_COMMANDS

#endif /* MATRIXCTL_H */

/*
 * mxw: the runtime every daemon shares.
 *
 *   configuration  the matrix_* directives of the http{} block of nginx.conf,
 *                  so an operator writes each setting once, for nginx and
 *                  for the daemons alike
 *   redis          one synchronous connection, reconnected with backoff; the
 *                  function library is checked (and loaded) on every connect
 *   consumer       the Redis Streams consumer-group loop: own pending entries
 *                  first, then new ones; XACK after the handler's effects;
 *                  XAUTOCLAIM of entries a dead consumer left; a dead-letter
 *                  stream for entries that keep failing; SIGTERM finishes the
 *                  entry in hand and returns
 */

#ifndef MXW_H
#define MXW_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>


#define MXW_CONF_MAX      64
#define MXW_DEAD_STREAM   "mx:dead"


/* one matrix_* directive: its name and its arguments joined by spaces */
typedef struct {
    char    *name;
    char    *value;
    char    *file;            /* where it was set, for messages */
    int      line;
} mxw_directive_t;

typedef struct {
    char              path[4096];         /* nginx.conf */
    char              prefix[4096];       /* its directory */
    mxw_directive_t   d[MXW_CONF_MAX];
    int               n;

    /* the settings every daemon needs, validated */
    const char       *server_name;
    char              redis_host[256];    /* empty for a unix socket */
    int               redis_port;
    char              redis_path[4096];
    int               redis_timeout_ms;
    char              signing_key[4096];  /* absolute path, or empty */
} mxw_config_t;


/* the check of a pipelined command's reply: 0 when it did its work */
typedef int (*mxw_check_pt)(redisReply *reply);

#define MXW_PIPELINE_MAX  1024

typedef struct {
    const char             *prog;
    mxw_config_t            cf;
    redisContext           *redis;
    int                     npending;     /* appended, replies not read */
    int                     failed;       /* one of them failed */
    mxw_check_pt            pending[MXW_PIPELINE_MAX];
    volatile sig_atomic_t   stop;
    int                     connects;     /* successful connects so far */
    int                     tries;        /* give up after: 0 = never */
} mxw_t;


/* logging to stderr: "2026-11-24T10:00:00.123 prog[pid] level: message" */
void mxw_log(mxw_t *w, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define mxw_info(w, ...)   mxw_log(w, "info", __VA_ARGS__)
#define mxw_warn(w, ...)   mxw_log(w, "warn", __VA_ARGS__)
#define mxw_error(w, ...)  mxw_log(w, "error", __VA_ARGS__)

int64_t mxw_now_ms(void);
void mxw_sleep_ms(mxw_t *w, int ms);

/* SIGTERM and SIGINT set w->stop */
void mxw_signals(mxw_t *w);


/*
 * Configuration.  Parses nginx.conf and the files it includes.  Returns 0,
 * or -1 with a message in err.
 */
int mxw_config_load(mxw_config_t *cf, const char *path, char *err,
    size_t err_len);
const char *mxw_config_get(const mxw_config_t *cf, const char *name);
void mxw_config_free(mxw_config_t *cf);
/* nginx time syntax: "500ms", "5s", "1m"; no unit means seconds */
int mxw_parse_time_ms(const char *s, int64_t *ms);


/*
 * Redis.  mxw_connect() tries until it succeeds or w->stop; it checks the
 * function library and loads it when Redis has another version.
 * mxw_command*() return NULL when the connection failed (it is dropped and
 * the next call reconnects); an error reply is returned as a reply.
 */
int mxw_connect(mxw_t *w);
void mxw_disconnect(mxw_t *w);
redisReply *mxw_command(mxw_t *w, const char *fmt, ...);
redisReply *mxw_commandv(mxw_t *w, int argc, const char **argv,
    const size_t *argvlen);

/*
 * Pipelining.  mxw_append() queues a command whose reply nobody waits for:
 * it leaves with the next command (or mxw_drain()), and its reply is read
 * then and given to check (NULL: any reply will do).  mxw_drain() reads
 * every queued reply; it returns -1, once, when a check failed, an error
 * came back or the connection was lost since the last drain.  A
 * consumer's handler may append; the loop drains before it acknowledges
 * the batch and takes the batch again when the drain fails.
 */
int mxw_append(mxw_t *w, mxw_check_pt check, int argc, const char **argv,
    const size_t *argvlen);
int mxw_drain(mxw_t *w);
/* load the function library if Redis does not have this version */
int mxw_functions_ensure(mxw_t *w, int *loaded);

extern const char    mx_lua_lib[];
extern const size_t  mx_lua_lib_len;
extern const char    mx_lua_lib_version[];


/*
 * The consumer loop.
 */

typedef struct {
    const char    *stream;
    const char    *id;
    int            nfields;       /* pairs */
    const char   **names;
    size_t        *name_lens;
    const char   **values;
    size_t        *value_lens;
    long long      deliveries;    /* 1 the first time */
} mxw_entry_t;

typedef enum {
    MXW_DONE = 0,     /* effects are durable: acknowledge */
    MXW_RETRY,        /* transient failure: leave it pending, try again */
    MXW_REJECT,       /* it can never succeed: dead-letter it with why */
    MXW_LATER         /* the daemon took it over: it stays pending until
                         the daemon acknowledges it (mxw_xack) once its
                         work is done; a redelivery comes to the handler
                         again, which must know it has it in hand */
} mxw_result_t;

typedef mxw_result_t (*mxw_handler_pt)(mxw_t *w, const mxw_entry_t *e,
    void *data, char *why, size_t why_len);

typedef struct {
    const char      *group;
    const char      *consumer;
    const char     **streams;
    int              nstreams;
    mxw_handler_pt   handler;
    void            *data;
    int              batch;           /* entries per read, default 64 */
    int              block_ms;        /* default 1000 */
    int              max_deliveries;  /* dead-letter beyond, default 5 */
    int              claim_idle_ms;   /* claim others' entries idle this */
    int              claim_every_ms;  /* how often to look, default 5000 */
    int              gather_ms;       /* after a short read, let entries
                                         gather this long (0: none) */
    int            (*begin)(mxw_t *w, void *data);
                                      /* before a batch's first entry: a
                                         look-up once per batch; -1 takes
                                         the batch again later */
    void           (*failed)(mxw_t *w, void *data);
                                      /* a batch's pipelined commands
                                         failed: it will come again */
    int            (*tick)(mxw_t *w, void *data);
                                      /* before every read of new
                                         entries: the daemon's own work
                                         (transfers in flight, timers);
                                         returns how long the read may
                                         block, in ms (0: not at all,
                                         < 0: block_ms) */
} mxw_consumer_t;

/* runs until w->stop; 0 on a clean stop */
int mxw_consume(mxw_t *w, mxw_consumer_t *cs);

/* acknowledge an entry the handler answered MXW_LATER for; 0 or -1 */
int mxw_xack(mxw_t *w, const char *stream, const char *group,
    const char *id);

/*
 * A daemon's main loop: connect, consume until w->stop, then mxw_fini().
 * Returns the exit status: 0, or 1 when Redis was never reached and no
 * stop was asked for.
 */
int mxw_run(mxw_t *w, mxw_consumer_t *cs);

/* a field of an entry, or NULL */
const char *mxw_entry_get(const mxw_entry_t *e, const char *name,
    size_t *len);


/*
 * Entries carry a "kind" field; a daemon lists the kinds it handles and
 * mxw_dispatch() (as the consumer's handler, with the table as data)
 * routes each entry, dead-lettering kinds nobody handles.
 */
typedef struct {
    const char      *kind;
    mxw_handler_pt   handler;
} mxw_kind_t;

mxw_result_t mxw_dispatch(mxw_t *w, const mxw_entry_t *e, void *kinds,
    char *why, size_t why_len);


/*
 * Common start for daemons: parse "-c nginx.conf" and "-n consumer-name"
 * (and the daemon's own options: opts in getopt form, each handed to
 * on_opt), load the configuration, install signal handlers.  Exits with a
 * usage message on bad usage.
 */
typedef int (*mxw_opt_pt)(mxw_t *w, int opt, const char *arg);

/* the end of a daemon: disconnect, free the configuration */
void mxw_fini(mxw_t *w);

void mxw_init(mxw_t *w, const char *prog, int argc, char **argv,
    const char **consumer, const char *opts, mxw_opt_pt on_opt);

#endif /* MXW_H */

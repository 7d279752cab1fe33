/*
 * mxw_base: logging, time, signals and the common start of a daemon.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mxw.h"


static mxw_t  *mxw_signalled;


int64_t
mxw_now_ms(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


void
mxw_log(mxw_t *w, const char *level, const char *fmt, ...)
{
    struct timespec  ts;
    struct tm        tm;
    char             when[32], msg[1024];
    va_list          args;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);

    va_start(args, fmt);
    vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    fprintf(stderr, "%s.%03ldZ %s[%d] %s: %s\n", when,
            (long) (ts.tv_nsec / 1000000), w ? w->prog : "mxw", (int) getpid(),
            level, msg);
}


/* sleep in short steps so a signal ends it early */

void
mxw_sleep_ms(mxw_t *w, int ms)
{
    struct timespec  ts;
    int              step;

    while (ms > 0 && !(w && w->stop)) {
        step = ms < 50 ? ms : 50;
        ts.tv_sec = 0;
        ts.tv_nsec = (long) step * 1000000;
        nanosleep(&ts, NULL);
        ms -= step;
    }
}


static void
mxw_on_signal(int signo)
{
    (void) signo;

    if (mxw_signalled) {
        mxw_signalled->stop = 1;
    }
}


void
mxw_signals(mxw_t *w)
{
    struct sigaction  sa;

    mxw_signalled = w;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = mxw_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}


static void
mxw_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s -c <nginx.conf> [-n <consumer name>] [options]\n"
            "\n"
            "Reads the matrix_* settings of the http block of nginx.conf.\n"
            "The consumer name must be stable across restarts (it is how a\n"
            "restarted daemon finds the entries it had not finished) and\n"
            "unique among running instances.  Default: %s@<hostname>.\n",
            prog, prog);
    exit(2);
}


void
mxw_init(mxw_t *w, const char *prog, int argc, char **argv,
    const char **consumer, const char *opts, mxw_opt_pt on_opt)
{
    const char  *conf, *name;
    char         err[1024], host[256], optstring[64];
    static char  dflt[512];
    int          opt;

    memset(w, 0, sizeof(*w));
    w->prog = prog;

    conf = NULL;
    name = NULL;
    snprintf(optstring, sizeof(optstring), "c:n:h%s", opts ? opts : "");

    while ((opt = getopt(argc, argv, optstring)) != -1) {
        switch (opt) {
        case 'c':
            conf = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'h':
        case '?':
            mxw_usage(prog);
            break;
        default:
            if (on_opt == NULL || on_opt(w, opt, optarg) != 0) {
                mxw_usage(prog);
            }
        }
    }

    if (conf == NULL || optind != argc) {
        mxw_usage(prog);
    }

    if (mxw_config_load(&w->cf, conf, err, sizeof(err)) != 0) {
        mxw_error(w, "%s", err);
        exit(1);
    }

    if (name == NULL) {
        if (gethostname(host, sizeof(host)) != 0) {
            snprintf(host, sizeof(host), "localhost");
        }
        host[sizeof(host) - 1] = '\0';
        snprintf(dflt, sizeof(dflt), "%s@%s", prog, host);
        name = dflt;
    }

    if (consumer) {
        *consumer = name;
    }

    mxw_signals(w);
}


void
mxw_fini(mxw_t *w)
{
    mxw_disconnect(w);
    mxw_config_free(&w->cf);
}


mxw_result_t
mxw_dispatch(mxw_t *w, const mxw_entry_t *e, void *kinds, char *why,
    size_t why_len)
{
    mxw_kind_t  *k;
    const char  *kind;
    size_t       len;

    kind = mxw_entry_get(e, "kind", &len);

    if (kind == NULL) {
        snprintf(why, why_len, "the entry has no kind");
        return MXW_REJECT;
    }

    for (k = kinds; k->kind; k++) {
        if (strlen(k->kind) == len && memcmp(k->kind, kind, len) == 0) {
            return k->handler(w, e, NULL, why, why_len);
        }
    }

    snprintf(why, why_len, "no handler for entries of kind \"%.*s\"",
             (int) (len > 64 ? 64 : len), kind);
    return MXW_REJECT;
}

/*
 * matrixctl: accounts.
 *
 *   register -c CONF [--url URL] [--admin] [--password PW] USERNAME
 *       creates a user through the admin registration API
 *       (/_synapse/admin/v1/register) with the shared secret of
 *       matrix_registration_shared_secret; the password is read from stdin
 *       when not given.  Prints the user ID and an access token.
 *
 *   registration-token add -c CONF [--uses N] [--expires-in TIME] [TOKEN]
 *   registration-token list -c CONF
 *   registration-token delete -c CONF TOKEN
 *       the tokens of matrix_registration token, kept in Redis
 */

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <mx_json.h>

#include "matrixctl.h"
#include "mxw.h"


typedef struct {
    char    *data;
    size_t   len;
} ctl_buf_t;


static size_t
ctl_curl_write(char *p, size_t size, size_t n, void *data)
{
    ctl_buf_t  *b = data;
    char       *q;

    q = realloc(b->data, b->len + size * n + 1);
    if (q == NULL) {
        return 0;
    }

    memcpy(q + b->len, p, size * n);
    b->data = q;
    b->len += size * n;
    b->data[b->len] = '\0';

    return size * n;
}


/* one HTTP request; the body of the answer in out, its status returned */

static long
ctl_http(const char *url, const char *post, ctl_buf_t *out)
{
    CURL               *c;
    struct curl_slist  *h;
    long                status;
    CURLcode            rc;

    c = curl_easy_init();
    if (c == NULL) {
        return -1;
    }

    h = curl_slist_append(NULL, "Content-Type: application/json");

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ctl_curl_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);

    if (post) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    }

    rc = curl_easy_perform(c);
    status = -1;

    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    } else {
        fprintf(stderr, "matrixctl: %s: %s\n", url, curl_easy_strerror(rc));
    }

    curl_slist_free_all(h);
    curl_easy_cleanup(c);

    return status;
}


static int
ctl_read_password(char *buf, size_t size)
{
    char    *p;
    size_t   n;

    if (isatty(STDIN_FILENO)) {
        p = getpass("password: ");
        if (p == NULL) {
            return -1;
        }
        snprintf(buf, size, "%s", p);
        sodium_memzero(p, strlen(p));
        return 0;
    }

    if (fgets(buf, (int) size, stdin) == NULL) {
        return -1;
    }

    n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }

    return 0;
}


int
matrixctl_register(int argc, char **argv)
{
    static struct option  opts[] = {
        { "url", required_argument, NULL, 'u' },
        { "admin", no_argument, NULL, 'a' },
        { "password", required_argument, NULL, 'p' },
        { "config", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 }
    };
    const char       *conf, *url, *secret, *user, *nonce, *v;
    char              password[600], err[1024], full[1024], mac_hex[41];
    unsigned char     mac[EVP_MAX_MD_SIZE];
    unsigned int      mac_len, i;
    int               opt, admin, rc;
    long              status;
    mxw_config_t      cf;
    ctl_buf_t         res = { NULL, 0 };
    mx_pool_t        *pool;
    mx_json_t        *j, *body;
    mx_json_error_t   jerr;
    char             *json, *msg;
    size_t            msg_len;

    conf = getenv("MATRIX_CONF");
    url = getenv("MATRIX_URL");
    admin = 0;
    password[0] = '\0';

    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:u:ap:", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf = optarg; break;
        case 'u': url = optarg; break;
        case 'a': admin = 1; break;
        case 'p': snprintf(password, sizeof(password), "%s", optarg); break;
        default:  goto usage;
        }
    }

    if (conf == NULL || optind != argc - 1) {
        goto usage;
    }

    user = argv[optind];

    if (mxw_config_load(&cf, conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "matrixctl: %s\n", err);
        return 1;
    }

    secret = mxw_config_get(&cf, "matrix_registration_shared_secret");
    if (secret == NULL) {
        fprintf(stderr, "matrixctl: matrix_registration_shared_secret is not"
                " set in %s\n", conf);
        mxw_config_free(&cf);
        return 1;
    }

    if (url == NULL) {
        url = "http://127.0.0.1:8008";
    }

    if (password[0] == '\0' && ctl_read_password(password, sizeof(password))) {
        fprintf(stderr, "matrixctl: no password\n");
        mxw_config_free(&cf);
        return 1;
    }

    pool = mx_pool_create(4096);
    rc = 1;

    if (pool == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        goto done;
    }

    snprintf(full, sizeof(full), "%s/_synapse/admin/v1/register", url);

    status = ctl_http(full, NULL, &res);
    j = res.data ? mx_json_parse(pool, res.data, res.len, &jerr) : NULL;
    nonce = mx_json_get_str(j, "nonce", NULL);

    if (status != 200 || nonce == NULL) {
        fprintf(stderr, "matrixctl: no nonce from %s (%ld): %s\n", full,
                status, res.data ? res.data : "");
        goto done;
    }

    /* nonce \0 username \0 password \0 admin|notadmin */
    msg_len = strlen(nonce) + strlen(user) + strlen(password) + 12;
    msg = mx_palloc(pool, msg_len);
    if (msg == NULL) {
        goto done;
    }

    msg_len = (size_t) snprintf(msg, msg_len, "%s%c%s%c%s%c%s", nonce, 0,
                                user, 0, password, 0,
                                admin ? "admin" : "notadmin");

    if (HMAC(EVP_sha1(), secret, (int) strlen(secret),
             (unsigned char *) msg, msg_len, mac, &mac_len) == NULL)
    {
        goto done;
    }

    sodium_memzero(msg, msg_len);

    for (i = 0; i < mac_len && i < 20; i++) {
        snprintf(mac_hex + 2 * i, 3, "%02x", mac[i]);
    }

    body = mx_json_object(pool);
    if (body == NULL
        || mx_json_set_str(pool, body, "nonce", nonce)
        || mx_json_set_str(pool, body, "username", user)
        || mx_json_set_str(pool, body, "password", password)
        || mx_json_set(pool, body, "admin", mx_json_bool(pool, admin))
        || mx_json_set_str(pool, body, "mac", mac_hex))
    {
        goto done;
    }

    json = mx_json_encode(pool, body, 0, NULL);
    free(res.data);
    res.data = NULL;
    res.len = 0;

    status = ctl_http(full, json, &res);
    j = res.data ? mx_json_parse(pool, res.data, res.len, &jerr) : NULL;

    if (status != 200) {
        v = mx_json_get_str(j, "error", NULL);
        fprintf(stderr, "matrixctl: registration refused (%ld): %s\n", status,
                v ? v : (res.data ? res.data : ""));
        goto done;
    }

    printf("user_id: %s\naccess_token: %s\n",
           mx_json_get_str(j, "user_id", NULL),
           mx_json_get_str(j, "access_token", NULL));
    rc = 0;

done:

    sodium_memzero(password, sizeof(password));
    free(res.data);
    mx_pool_destroy(pool);
    mxw_config_free(&cf);
    curl_global_cleanup();

    return rc;

usage:

    fprintf(stderr, "usage: matrixctl register -c nginx.conf [--url URL]"
            " [--admin] [--password PW] USERNAME\n");
    return 2;
}


static int
ctl_redis(mxw_t *w, const char *conf)
{
    char  err[1024];

    memset(w, 0, sizeof(*w));
    w->prog = "matrixctl";

    if (mxw_config_load(&w->cf, conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "matrixctl: %s\n", err);
        return 1;
    }

    mxw_signals(w);
    w->tries = 3;
    return mxw_connect(w) == 0 ? 0 : 1;
}


static void
ctl_token_print(mxw_t *w, const char *key)
{
    redisReply  *r;
    size_t       i;

    r = mxw_command(w, "HGETALL %s", key);
    if (r == NULL) {
        return;
    }

    printf("%s", key + sizeof("mx:regtoken:") - 1);
    for (i = 0; i + 1 < r->elements; i += 2) {
        printf(" %s=%s", r->element[i]->str, r->element[i + 1]->str);
    }
    printf("\n");

    freeReplyObject(r);
}


int
matrixctl_regtoken(int argc, char **argv)
{
    static struct option  opts[] = {
        { "uses", required_argument, NULL, 'n' },
        { "expires-in", required_argument, NULL, 'e' },
        { "config", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 }
    };
    static const char     alnum[] = "abcdefghijklmnopqrstuvwxyz"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    const char    *conf, *action, *uses, *expires;
    char           token[65], key[80], when[32], cursor[32];
    int            opt, i, rc;
    int64_t        ms;
    mxw_t          w;
    redisReply    *r;
    size_t         k;

    conf = getenv("MATRIX_CONF");
    uses = "";
    expires = "";
    when[0] = '\0';

    if (argc < 2) {
        goto usage;
    }

    action = argv[1];

    optind = 2;
    while ((opt = getopt_long(argc, argv, "c:n:e:", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf = optarg; break;
        case 'n': uses = optarg; break;
        case 'e': expires = optarg; break;
        default:  goto usage;
        }
    }

    if (conf == NULL) {
        goto usage;
    }

    if (strcmp(action, "add") == 0) {
        if (optind < argc) {
            snprintf(token, sizeof(token), "%s", argv[optind]);
        } else {
            for (i = 0; i < 16; i++) {
                token[i] = alnum[randombytes_uniform(sizeof(alnum) - 1)];
            }
            token[16] = '\0';
        }

        if (token[strspn(token, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN"
                                "OPQRSTUVWXYZ0123456789._~-")] != '\0')
        {
            fprintf(stderr, "matrixctl: a token is 1 to 64 of"
                    " [A-Za-z0-9._~-]\n");
            return 1;
        }

        if (*expires) {
            if (mxw_parse_time_ms(expires, &ms) != 0) {
                fprintf(stderr, "matrixctl: --expires-in: a time such as"
                        " 2h or 7d\n");
                return 1;
            }
            snprintf(when, sizeof(when), "%lld",
                     (long long) (mxw_now_ms() + ms));
        }

        if (ctl_redis(&w, conf) != 0) {
            return 1;
        }

        snprintf(key, sizeof(key), "mx:regtoken:%s", token);
        r = mxw_command(&w, "FCALL mx_regtoken_add 1 %s %s %s", key, uses,
                        when);
        rc = r && r->type != REDIS_REPLY_ERROR ? 0 : 1;
        if (r) {
            freeReplyObject(r);
        }

        if (rc == 0) {
            printf("%s\n", token);
        }

        mxw_fini(&w);
        return rc;
    }

    if (strcmp(action, "list") == 0) {
        if (ctl_redis(&w, conf) != 0) {
            return 1;
        }

        snprintf(cursor, sizeof(cursor), "0");

        do {
            r = mxw_command(&w, "SCAN %s MATCH mx:regtoken:* COUNT 1000",
                            cursor);
            if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2)
            {
                break;
            }

            snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);

            for (k = 0; k < r->element[1]->elements; k++) {
                ctl_token_print(&w, r->element[1]->element[k]->str);
            }

            freeReplyObject(r);
        } while (strcmp(cursor, "0") != 0);

        mxw_fini(&w);
        return 0;
    }

    if (strcmp(action, "delete") == 0 && optind == argc - 1) {
        if (ctl_redis(&w, conf) != 0) {
            return 1;
        }

        snprintf(key, sizeof(key), "mx:regtoken:%.64s", argv[optind]);
        r = mxw_command(&w, "DEL %s", key);
        rc = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? 0 : 1;
        if (r) {
            freeReplyObject(r);
        }

        if (rc) {
            fprintf(stderr, "matrixctl: no such token\n");
        }

        mxw_fini(&w);
        return rc;
    }

usage:

    fprintf(stderr,
            "usage: matrixctl registration-token add -c CONF [--uses N]"
            " [--expires-in TIME] [TOKEN]\n"
            "       matrixctl registration-token list -c CONF\n"
            "       matrixctl registration-token delete -c CONF TOKEN\n");
    return 2;
}

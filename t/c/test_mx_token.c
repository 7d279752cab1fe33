/*
 * core/mx_token: the token format round-trips, names its user, and refuses
 * everything else; keys carry the user's hash tag.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <mx_token.h>


static void
test_roundtrip(void **state)
{
    unsigned char  rnd[MX_TOKEN_RANDOM];
    char           tok[MX_TOKEN_MAX + 1], user[MX_TOKEN_USER_MAX + 1];
    size_t         n, u;

    (void) state;

    memset(rnd, 0xab, sizeof(rnd));
    n = mx_token_make(tok, MX_TOKEN_ACCESS, "@alice:example.org", 18, rnd);
    assert_int_equal(n, strlen(tok));
    assert_memory_equal(tok, "mxa_QGFsaWNlOmV4YW1wbGUub3Jn_", 29);
    assert_int_equal(n, 29 + 43);

    u = mx_token_user(tok, n, MX_TOKEN_ACCESS, user);
    assert_int_equal(u, 18);
    assert_string_equal(user, "@alice:example.org");

    /* a refresh token is not an access token */
    assert_int_equal(mx_token_user(tok, n, MX_TOKEN_REFRESH, user), 0);

    n = mx_token_make(tok, MX_TOKEN_REFRESH, "@b:c", 4, rnd);
    assert_true(tok[2] == 'r');
    assert_int_equal(mx_token_user(tok, n, MX_TOKEN_REFRESH, user), 4);
    assert_string_equal(user, "@b:c");
}


static void
test_refused(void **state)
{
    char  user[MX_TOKEN_USER_MAX + 1];
    char  long_tok[1024];
    const char  *bad[] = {
        "",
        "syt_YWxpY2U_abc",
        "mxa_",
        "mxa__AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "mxa_QGE6Yg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* 44 */
        "mxa_QGE6Yg-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "mxa_QG!6Yg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "mxa_QGE6Y_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",    /* 5 chars */
        NULL
    };
    int  i;

    (void) state;

    for (i = 0; bad[i]; i++) {
        assert_int_equal(mx_token_user(bad[i], strlen(bad[i]), MX_TOKEN_ACCESS,
                                       user), 0);
    }

    memset(long_tok, 'A', sizeof(long_tok));
    memcpy(long_tok, "mxa_", 4);
    long_tok[sizeof(long_tok) - 44] = '_';
    assert_int_equal(mx_token_user(long_tok, sizeof(long_tok),
                                   MX_TOKEN_ACCESS, user), 0);

    /* a user ID too long to be one cannot make a token */
    memset(long_tok, 'a', 300);
    assert_int_equal(mx_token_make(long_tok + 400, MX_TOKEN_ACCESS, long_tok,
                                   300, (unsigned char *) long_tok), 0);
}


static void
test_key(void **state)
{
    char    key[MX_TOKEN_KEY_MAX];
    size_t  n;

    (void) state;

    /* base64(sha256("t")), as openssl dgst -sha256 -binary | base64 gives */
    n = mx_token_key(key, MX_TOKEN_ACCESS, "@a:b", 4, "t", 1);
    key[n] = '\0';
    assert_string_equal(key,
        "mx:{@a:b}:token:47mKTaMaEn1L3m5DAz9muidMqw636xxw7EFAK/YnPdg");

    n = mx_token_key(key, MX_TOKEN_REFRESH, "@a:b", 4, "t", 1);
    key[n] = '\0';
    assert_string_equal(key,
        "mx:{@a:b}:refresh:47mKTaMaEn1L3m5DAz9muidMqw636xxw7EFAK/YnPdg");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * workers/mxw_fed: the address policy of matrix_federation_allow_private
 * off: loopback, private, link-local, unspecified (and multicast) refused,
 * public addresses allowed, IPv4-mapped IPv6 judged as IPv4.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include <mxw_fed.h>


static int
private(const char *addr)
{
    struct sockaddr_in   in;
    struct sockaddr_in6  in6;

    memset(&in, 0, sizeof(in));
    memset(&in6, 0, sizeof(in6));

    if (inet_pton(AF_INET, addr, &in.sin_addr) == 1) {
        in.sin_family = AF_INET;
        return mxw_fed_addr_private((struct sockaddr *) &in);
    }

    assert_int_equal(inet_pton(AF_INET6, addr, &in6.sin6_addr), 1);
    in6.sin6_family = AF_INET6;

    return mxw_fed_addr_private((struct sockaddr *) &in6);
}


static void
test_private(void **state)
{
    const char  *refused[] = {
        "127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1",
        "172.31.255.255", "192.168.1.1", "169.254.169.254", "0.0.0.0",
        "100.64.0.1", "224.0.0.1", "255.255.255.255",
        "::", "::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1",
        "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", NULL
    };
    const char  *allowed[] = {
        "1.1.1.1", "8.8.8.8", "172.15.255.255", "172.32.0.1",
        "192.169.0.1", "100.128.0.1", "169.253.0.1", "11.0.0.1",
        "2001:db8::1", "2606:4700::1111", "fec0::1", "::ffff:8.8.8.8", NULL
    };
    int          i;

    (void) state;

    for (i = 0; refused[i]; i++) {
        if (!private(refused[i])) {
            fail_msg("%s allowed", refused[i]);
        }
    }

    for (i = 0; allowed[i]; i++) {
        if (private(allowed[i])) {
            fail_msg("%s refused", allowed[i]);
        }
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_private),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

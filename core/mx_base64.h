/*
 * mx_base64: unpadded Base64 as the Matrix appendices define it.
 *
 * Output is never padded.  Input may be padded or not; the unused low bits
 * of the last character are ignored, as the spec's own test seed needs.
 * The standard alphabet is used for keys, signatures and hashes; the
 * URL-safe one ('-' and '_') for event IDs from room version 4 on.
 */

#ifndef MX_BASE64_H
#define MX_BASE64_H

#include <stddef.h>
#include <sys/types.h>

#define MX_BASE64_STD      0
#define MX_BASE64_URLSAFE  1

/* characters needed for n bytes, without NUL */
#define mx_base64_encoded_len(n)  (((n) * 4 + 2) / 3)
/* upper bound of bytes decoded from n characters */
#define mx_base64_decoded_max(n)  ((n) * 3 / 4 + 3)

/* writes mx_base64_encoded_len(len) chars and a NUL; returns the length */
size_t mx_base64_encode(const unsigned char *in, size_t len, char *out,
    int alphabet);

/* returns the number of bytes written, or -1 for bad input */
ssize_t mx_base64_decode(const char *in, size_t len, unsigned char *out,
    int alphabet);

#endif /* MX_BASE64_H */

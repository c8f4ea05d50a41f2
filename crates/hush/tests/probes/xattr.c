/* Extended attributes from inside a RUN step (busybox has no setfattr/getfattr):
 *   xattr set PATH NAME HEX   sets NAME on PATH itself (lsetxattr) to the bytes HEX spells
 *   xattr get PATH NAME       prints NAME's value in hex (lgetxattr), or the errno's name
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

int main(int argc, char **argv) {
    unsigned char buf[4096];
    if (argc == 5 && strcmp(argv[1], "set") == 0) {
        size_t n = strlen(argv[4]) / 2;
        if (n > sizeof buf) return 2;
        for (size_t i = 0; i < n; i++) sscanf(argv[4] + 2 * i, "%2hhx", &buf[i]);
        if (lsetxattr(argv[2], argv[3], buf, n, 0) != 0) {
            printf("%s\n", strerrorname_np(errno));
            return 1;
        }
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "get") == 0) {
        ssize_t n = lgetxattr(argv[2], argv[3], buf, sizeof buf);
        if (n < 0) {
            printf("%s=%s\n", argv[3], strerrorname_np(errno));
            return 1;
        }
        printf("%s=", argv[3]);
        for (ssize_t i = 0; i < n; i++) printf("%02x", buf[i]);
        printf("\n");
        return 0;
    }
    fprintf(stderr, "usage: xattr set PATH NAME HEX | xattr get PATH NAME\n");
    return 2;
}

/* dns_hostent: gethostbyname2_r into a buffer of a given size, then gethostbyname2 (the
 * per-thread buffer), each hostent printed as "NAME ALIASES ADDRESS...".
 *
 *     dns_hostent NAME FAMILY BUFLEN
 *
 * Prints "r RET h_errno H" and the hostent of each call, or "none h_errno H". */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>

static void print(const char *what, const struct hostent *h, int herr)
{
    if (h == NULL) {
        printf("%s none h_errno %d\n", what, herr);
        return;
    }
    int aliases = 0;
    while (h->h_aliases[aliases] != NULL)
        aliases++;
    printf("%s %s %d", what, h->h_name, aliases);
    for (char **a = h->h_addr_list; *a != NULL; a++) {
        char text[INET6_ADDRSTRLEN];
        printf(" %s", inet_ntop(h->h_addrtype, *a, text, sizeof text));
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return 2;
    int af = atoi(argv[2]);
    size_t buflen = (size_t)atol(argv[3]);
    char *buf = malloc(buflen + 1);
    struct hostent h, *result;
    int herr = 0;
    int ret = gethostbyname2_r(argv[1], af, &h, buf, buflen, &result, &herr);
    printf("r %d h_errno %d\n", ret, herr);
    if (ret == 0)
        print("hostent_r", result, herr);
    print("hostent", gethostbyname2(argv[1], af), h_errno);
    free(buf);
    return 0;
}

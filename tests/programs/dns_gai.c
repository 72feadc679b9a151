/* dns_gai: one getaddrinfo call, its result printed line by line.
 *
 *     dns_gai NODE SERVICE FLAGS FAMILY SOCKTYPE PROTOCOL
 *
 * NODE and SERVICE may be "-" for NULL; the numbers are the hints. Prints each entry as
 * "FAMILY SOCKTYPE PROTOCOL ADDRESS PORT CANONNAME" (canonname "-" when absent), or
 * "error CODE" when the call fails. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *arg(const char *s)
{
    return strcmp(s, "-") == 0 ? NULL : s;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: dns_gai NODE SERVICE FLAGS FAMILY SOCKTYPE PROTOCOL\n");
        return 2;
    }
    struct addrinfo hints = {
        .ai_flags = atoi(argv[3]),
        .ai_family = atoi(argv[4]),
        .ai_socktype = atoi(argv[5]),
        .ai_protocol = atoi(argv[6]),
    };
    struct addrinfo *res;
    int ret = getaddrinfo(arg(argv[1]), arg(argv[2]), &hints, &res);
    if (ret != 0) {
        printf("error %d\n", ret);
        return 0;
    }
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (ai->ai_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)ai->ai_addr;
            inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
            port = ntohs(in->sin_port);
        } else if (ai->ai_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ai->ai_addr;
            inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
            port = ntohs(in6->sin6_port);
        }
        printf("%d %d %d %s %u %s\n", ai->ai_family, ai->ai_socktype, ai->ai_protocol, text, port,
               ai->ai_canonname != NULL ? ai->ai_canonname : "-");
    }
    freeaddrinfo(res);
    return 0;
}

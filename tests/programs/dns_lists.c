/* dns_lists: getaddrinfo lists made and freed in every order, from several threads at once, each
 * checked while others come and go (the shim reuses a freed list's page for the next list).
 *
 *     dns_lists NAME ADDRESS THREADS ROUNDS
 *
 * Each round of each thread resolves NAME twice, checks both lists (one IPv4 entry per socket
 * type, each ADDRESS), frees them in alternating order, and checks the one still held after the
 * other is freed and a third made. Prints "wrong W", the number of bad lists. */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const char *name, *address;
static long rounds, wrong;

static int bad(const struct addrinfo *list)
{
    int n = 0;
    for (const struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next, n++) {
        char text[INET_ADDRSTRLEN];
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ai->ai_addr;
        if (ai->ai_family != AF_INET || ai->ai_canonname != NULL ||
            inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text) == NULL ||
            strcmp(text, address) != 0)
            return 1;
    }
    return n == 0;
}

static struct addrinfo *resolve(void)
{
    struct addrinfo *list = NULL;
    if (getaddrinfo(name, NULL, NULL, &list) != 0)
        return NULL;
    return list;
}

static void *work(void *unused)
{
    (void)unused;
    long local = 0;
    for (long i = 0; i < rounds; i++) {
        struct addrinfo *a = resolve(), *b = resolve();
        local += a == NULL || b == NULL || bad(a) || bad(b);
        struct addrinfo *kept = i % 2 ? a : b;
        freeaddrinfo(i % 2 ? b : a);
        struct addrinfo *c = resolve();
        local += c == NULL || bad(c) || bad(kept);
        freeaddrinfo(kept);
        freeaddrinfo(c);
    }
    __atomic_add_fetch(&wrong, local, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: dns_lists NAME ADDRESS THREADS ROUNDS\n");
        return 2;
    }
    name = argv[1];
    address = argv[2];
    int threads = atoi(argv[3]);
    rounds = atol(argv[4]);
    pthread_t ids[16];
    for (int i = 0; i < threads && i < 16; i++)
        pthread_create(&ids[i], NULL, work, NULL);
    for (int i = 0; i < threads && i < 16; i++)
        pthread_join(ids[i], NULL);
    printf("wrong %ld\n", wrong);
    return 0;
}

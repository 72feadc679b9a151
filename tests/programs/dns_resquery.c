/* dns_resquery: one libresolv query, its answer section printed record by record.
 *
 *     dns_resquery HOW NAME TYPE [DOMAIN]
 *
 * HOW is query, search, querydomain (NAME in DOMAIN, "-" for NULL) or nquery (res_nquery on a
 * res_ninit state); TYPE a number (1 A, 5 CNAME, 12 PTR, 15 MX, 16 TXT, 28 AAAA, 33 SRV). Prints
 * "length N" and one line per answer record: "NAME TYPE DATA", DATA as dig shows it; or
 * "error H_ERRNO" when the query fails. Compile with -lresolv. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void print_name(const ns_msg *msg, const unsigned char *at)
{
    char name[NS_MAXDNAME];
    if (ns_name_uncompress(ns_msg_base(*msg), ns_msg_end(*msg), at, name, sizeof name) < 0)
        strcpy(name, "?");
    printf(" %s", name);
}

static void print_rr(const ns_msg *msg, const ns_rr *rr)
{
    const unsigned char *data = ns_rr_rdata(*rr);
    char text[INET6_ADDRSTRLEN];
    printf("%s %d", ns_rr_name(*rr), ns_rr_type(*rr));
    switch (ns_rr_type(*rr)) {
    case ns_t_a:
        printf(" %s", inet_ntop(AF_INET, data, text, sizeof text));
        break;
    case ns_t_aaaa:
        printf(" %s", inet_ntop(AF_INET6, data, text, sizeof text));
        break;
    case ns_t_cname:
    case ns_t_ptr:
        print_name(msg, data);
        break;
    case ns_t_mx:
        printf(" %u", ns_get16(data));
        print_name(msg, data + 2);
        break;
    case ns_t_srv:
        printf(" %u %u %u", ns_get16(data), ns_get16(data + 2), ns_get16(data + 4));
        print_name(msg, data + 6);
        break;
    case ns_t_txt:
        for (unsigned i = 0; i < ns_rr_rdlen(*rr); i += 1 + data[i])
            printf(" \"%.*s\"", data[i], (const char *)data + i + 1);
        break;
    default:
        printf(" (%u bytes)", ns_rr_rdlen(*rr));
    }
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: dns_resquery HOW NAME TYPE [DOMAIN]\n");
        return 2;
    }
    const char *how = argv[1], *name = argv[2];
    int type = atoi(argv[3]);
    unsigned char answer[4096];
    int n;
    if (strcmp(how, "search") == 0) {
        n = res_search(name, ns_c_in, type, answer, sizeof answer);
    } else if (strcmp(how, "querydomain") == 0) {
        const char *domain = argc > 4 && strcmp(argv[4], "-") != 0 ? argv[4] : NULL;
        n = res_querydomain(name, domain, ns_c_in, type, answer, sizeof answer);
    } else if (strcmp(how, "nquery") == 0) {
        struct __res_state state;
        memset(&state, 0, sizeof state);
        if (res_ninit(&state) != 0) {
            printf("res_ninit failed\n");
            return 1;
        }
        n = res_nquery(&state, name, ns_c_in, type, answer, sizeof answer);
        if (n < 0)
            printf("state h_errno %d\n", state.res_h_errno);
        res_nclose(&state);
    } else {
        n = res_query(name, ns_c_in, type, answer, sizeof answer);
    }
    if (n < 0) {
        printf("error %d\n", h_errno);
        return 0;
    }
    printf("length %d\n", n);
    ns_msg msg;
    if (ns_initparse(answer, n, &msg) < 0) {
        printf("unparsable\n");
        return 1;
    }
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
        ns_rr rr;
        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0) {
            printf("bad record %d\n", i);
            return 1;
        }
        print_rr(&msg, &rr);
    }
    return 0;
}

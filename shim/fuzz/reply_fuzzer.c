/* reply_fuzzer.c — libFuzzer harness for the checks the shim applies to what the master sends:
 * check_reply (check_header, check_payload, check_text_length, check_text, check_fds) on a reply,
 * table_load + passes_through on a welcome's passthrough table, the snapshot reader
 * (lcf_snapshot_view_init + lcf_snapshot_get) on a snapshot image, the master's check of a
 * note ring's records (lcf_notes_check, which the cffi module runs on what a program wrote), and
 * the master's snapshot writer (lcf_snapshot_put_many) on a batch of records. NOT part of the
 * shim: build.py compiles only the C files directly in shim/. It includes only headers and is
 * linked with the shim's units it tests (tests/test_fuzz.py, FUZZ_UNITS):
 *
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *           -D_GNU_SOURCE -I shim -o reply_fuzzer shim/fuzz/reply_fuzzer.c \
 *           shim/replies.c shim/passthrough.c shim/snapshot_answers.c shim/transport.c \
 *           shim/errline.c shim/real.c shim/ring.c shim/snapshot.c -ldl
 *
 * or, without libFuzzer, with gcc and -DLCF_FUZZ_STANDALONE (a main() that feeds the files named
 * on the command line, for replaying a corpus under ASan+UBSan).
 *
 * Input layout (tests/test_fuzz.py writes seeds in it from libcfake.protocol.encode_reply):
 *   byte 0        mode: odd = a welcome table; else bit 1 set = a snapshot; else bit 2 set =
 *                 note records; else bit 3 set = snapshot records; else a reply
 *   reply:   byte 1  the call's function number (as sent: any value)
 *            byte 2  bit 0 MSG_TRUNC, bit 1 MSG_CTRUNC, bits 2-4 descriptors (0-7, capped at
 *                    LCF_MAX_FDS), bits 5-7 which of them are directories
 *            rest    the reply packet as received; it is cut (and MSG_TRUNC set) where the real
 *                    caller's buffer ends, as recvmsg would
 *   welcome: byte 1  passthrough_count; rest: the table bytes, then 0xff, then a path to test
 *   snapshot: byte 1 length n of a path to look up; the n path bytes; rest: the memfd's image
 *   notes:   rest    the records, as the master copies them out of a ring
 *   records: rest    a batch for lcf_snapshot_put_many, as libcfake.fs.lstat_records packs it
 *
 * Beyond memory safety (ASan, UBSan), a reply the checks accept must be one the callers can use
 * as they do; the harness aborts when it is not (see accepted_reply_is_usable). */

#include "errline.h"
#include "passthrough.h"
#include "replies.h"
#include "ring.h"
#include "snapshot.h"
#include "transport.h"

#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_SEQ 7u /* the seq of the call the reply answers; seeds use it */

/* The kinds of call as the wrappers use their replies: written out here, apart from the call
 * table the checks under test read, so the fuzzer is an oracle of its own. */
static bool socket_call(uint32_t f)
{
    return f >= LCF_CONNECT_UNIX && f <= LCF_BIND_INET6;
}

static bool text_call(uint32_t f)
{
    return f == LCF_READLINK || f == LCF_GETCWD || f == LCF_REALPATH || f == LCF_GETNAMEINFO ||
           f == LCF_RES_QUERY;
}

static bool eai_call(uint32_t f)
{
    return f == LCF_GETADDRINFO || f == LCF_GETNAMEINFO;
}

/* The payload buffer each caller hands lcf_forward (fs.c, dir.c, dns.c, resolv.c). */
static size_t payload_capacity(uint32_t function)
{
    if (is_stat(function))
        return sizeof(struct lcf_stat);
    if (function == LCF_READLINK || function == LCF_GETCWD || function == LCF_REALPATH ||
        function == LCF_GETNAMEINFO)
        return LCF_MAX_PATH;
    if (function == LCF_GETADDRINFO || function == LCF_RES_QUERY)
        return LCF_MAX_MESSAGE - sizeof(struct lcf_reply);
    return 0;
}

static int null_fd = -1, dir_fd = -1;

/* What a caller does with an accepted reply must stay inside what was received. */
static void accepted_reply_is_usable(uint32_t function, const struct lcf_reply *r,
                                     const struct packet *p, const unsigned char *payload,
                                     size_t payload_size)
{
    if (r->action != LCF_ANSWER) {
        assert(p->nfds == 0);
        return;
    }
    if (is_stat(function) && r->result == 0) {
        assert(r->count == 1 && payload_size >= sizeof(struct lcf_stat));
        struct lcf_stat st;
        memcpy(&st, payload, sizeof st);
        assert(valid_stat(&st));
    }
    if (function == LCF_GETADDRINFO && r->result == 0) {
        size_t entries = (size_t)r->count * sizeof(struct lcf_address);
        assert(entries <= payload_size);
        size_t text = r->text_length > 0 ? (size_t)r->text_length : 0;
        assert(entries + text == payload_size);
    }
    if ((is_open(function) || function == LCF_CHDIR) && r->result >= 0)
        assert(p->nfds == 1);
    if (function == LCF_CHDIR && r->result >= 0)
        assert(is_directory(p->fds[0]));
    if (!is_open(function) && function != LCF_CHDIR && !socket_call(function))
        assert(p->nfds == 0);
    if (text_call(function) && r->result >= 0 && !(function == LCF_GETNAMEINFO && r->result != 0)) {
        assert(r->text_length >= 0 && (size_t)r->text_length <= payload_size);
        if (function == LCF_READLINK)
            assert(r->result == r->text_length && r->text_length <= LCF_MAX_PATH);
        if (function == LCF_GETCWD || function == LCF_REALPATH) {
            assert(r->text_length > 0 && r->text_length <= LCF_MAX_PATH && payload[0] == '/');
            assert(memchr(payload, '\0', (size_t)r->text_length) == NULL);
        }
    }
    if (!eai_call(function) && r->result < 0)
        assert(r->result == -1 && r->error > 0);
}

static void fuzz_reply(const uint8_t *data, size_t size)
{
    if (size < 3)
        return;
    uint32_t function = data[1];
    uint8_t bits = data[2];
    data += 3;
    size -= 3;

    struct lcf_request req = {.str1 = "/fuzz"}; /* as lcf_request_init makes it, with a path */
    req.call.function = function;
    memcpy(req.call.symbol, "fuzz", 4);
    req.call.length1 = 5;
    req.call.length2 = -1;

    /* recvmsg into {reply, sizeof reply} and {payload, capacity}: a longer packet is cut */
    size_t capacity = payload_capacity(function);
    size_t room = sizeof(struct lcf_reply) + capacity;
    struct packet p = {.size = size < room ? size : room, .flags = 0, .nfds = 0};
    if (size > room || (bits & 1))
        p.flags |= MSG_TRUNC;
    if (bits & 2)
        p.flags |= MSG_CTRUNC;
    struct lcf_reply reply;
    memset(&reply, 0, sizeof reply);
    memcpy(&reply, data, p.size < sizeof reply ? p.size : sizeof reply);
    /* the payload exactly as large as what arrived, so ASan sees any read past it */
    size_t payload_size = p.size > sizeof reply ? p.size - sizeof reply : 0;
    unsigned char *payload = malloc(payload_size ? payload_size : 1);
    memcpy(payload, data + sizeof reply, payload_size);

    int nfds = (bits >> 2) & 7;
    for (int i = 0; i < nfds && p.nfds < LCF_MAX_FDS; i++)
        p.fds[p.nfds++] = dup((bits >> (5 + i % 3)) & 1 ? dir_fd : null_fd);

    struct line l = {.len = 0};
    line_begin(&l, &req);
    if (check_reply(function, FUZZ_SEQ, &reply, &p, payload, &l) == 0)
        accepted_reply_is_usable(function, &reply, &p, payload, payload_size);
    assert(l.len < sizeof l.buf);
    close_fds(&p);
    free(payload);
}

static void fuzz_welcome(const uint8_t *data, size_t size)
{
    if (size < 2)
        return;
    uint32_t count = data[1];
    data += 2;
    size -= 2;
    const uint8_t *sep = memchr(data, 0xff, size);
    size_t table = sep ? (size_t)(sep - data) : size;
    char *bytes = malloc(table ? table : 1); /* exactly the received table */
    memcpy(bytes, data, table);
    uint64_t devices[2] = {1, 2};
    struct line l = {.len = 0};
    if (table_load(bytes, table, count, devices, -1, 0, &l) == 0) {
        struct table_view t;
        table_inspect(&t);
        assert(table_ready() && t.count == count);
        for (uint32_t i = 0; i < t.count; i++) {
            assert((size_t)t.start[i] + t.len[i] <= table);
            assert(t.bytes[t.start[i]] == '/' || t.len[i] == 0);
        }
        size_t n = sep ? size - table - 1 : 0;
        char path[LCF_MAX_PATH + 1];
        n = n > LCF_MAX_PATH ? LCF_MAX_PATH : n;
        memcpy(path, sep ? (const char *)sep + 1 : "", n);
        path[n] = '\0';
        struct lcf_request req = {.str1 = path, .readonly = true};
        req.call.length1 = (int32_t)n;
        if (passes_through(&req)) /* only absolute paths without "." or ".." components */
            assert(n > 0 && path[0] == '/' && !has_dot_component(path, n));
        table_forget(); /* the next input loads its own */
    }
    assert(l.len < sizeof l.buf);
    free(bytes);
}

/* Whatever the image holds, a lookup stays inside it and answers within a path's length. */
static void fuzz_snapshot(const uint8_t *data, size_t size)
{
    if (size < 2 || (size_t)data[1] > size - 2)
        return;
    size_t n = data[1];
    const char *path = (const char *)data + 2;
    size_t bytes = size - 2 - n;
    uint64_t *image = malloc(bytes ? bytes : 1); /* 8-byte aligned, exactly as large */
    memcpy(image, data + 2 + n, bytes);
    struct lcf_snapshot_view view;
    if (lcf_snapshot_view_init(&view, image, bytes) == 0) {
        assert(view.root_length <= LCF_MAX_PATH && view.root[view.root_length] == '\0');
        struct lcf_stat st;
        char target[LCF_MAX_PATH + 1];
        int32_t target_length = -2;
        if (lcf_snapshot_get(&view, path, n, &st, target, &target_length))
            assert(target_length >= -1 && target_length <= LCF_MAX_PATH);
    }
    free(image);
}

/* Whatever the bytes, the check stays inside them, and the records it accepts are whole notes a
 * reader can walk as the master's Python does. */
static void fuzz_notes(const uint8_t *data, size_t size)
{
    size_t n = size - 1;
    unsigned char *records = malloc(n ? n : 1); /* exactly as large */
    memcpy(records, data + 1, n);
    int64_t count = lcf_notes_check(records, n);
    size_t at = 0;
    for (int64_t i = 0; i < count; i++) {
        struct lcf_note note;
        assert(n - at >= sizeof note);
        memcpy(&note, records + at, sizeof note);
        assert(note.header.length >= sizeof note + 1 && note.header.length <= n - at);
        assert(note.length > 0 && records[at + sizeof note] == '/');
        size_t next = (note.header.length + 7) & ~(size_t)7;
        assert(next <= n - at);
        at += next;
    }
    assert(count < 0 || at == n);
    free(records);
}

/* Whatever the batch, the writer reads only the batch, writes only the snapshot, and counts what
 * it put: as many entries as the table holds, at most half of its slots. */
static void fuzz_records(const uint8_t *data, size_t size)
{
    static uint64_t image[8192 / 8];
    size_t n = size - 1;
    char *records = malloc(n ? n : 1); /* exactly as large */
    memcpy(records, data + 1, n);
    memset(image, 0, sizeof image); /* as a new memfd: every slot empty */
    struct lcf_snapshot_writer w;
    if (lcf_snapshot_init(&w, image, sizeof image, 16, "/shadow", 7) != 0)
        abort();
    uint32_t published = UINT32_MAX;
    int done = lcf_snapshot_put_many(&w, records, n, &published);
    const struct lcf_snapshot *s = (const struct lcf_snapshot *)image;
    assert(done >= -2 && done <= 0 && published == w.live && published <= 8);
    assert(w.pool_used <= w.pool_bytes && s->live == w.live && s->pool_used == w.pool_used);
    free(records);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (null_fd < 0) {
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        dir_fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_welcome(data, size);
    else if (data[0] & 2)
        fuzz_snapshot(data, size);
    else if (data[0] & 4)
        fuzz_notes(data, size);
    else if (data[0] & 8)
        fuzz_records(data, size);
    else
        fuzz_reply(data, size);
    return 0;
}

#ifdef LCF_FUZZ_STANDALONE
/* For compilers without libFuzzer (gcc): `reply_fuzzer MUTATIONS SEED FILE...` feeds each file,
 * then MUTATIONS random mutations of it (byte flips, interesting bytes and 32-bit values, cuts,
 * insertions), from a fixed xorshift seed so a failure replays. */
static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0;
}

static size_t mutate(uint8_t *buf, size_t n, size_t cap)
{
    static const int32_t ints[] = {-1, 0, 1, 2, 4, 40, 120, 4095, 4096, 16384, 0x7fffffff,
                                   (int32_t)0x80000000, LCF_MAGIC};
    for (uint32_t k = 1 + rnd(4); k > 0; k--) {
        switch (rnd(6)) {
        case 0: /* flip a bit */
            if (n > 0)
                buf[rnd((uint32_t)n)] ^= (uint8_t)(1u << rnd(8));
            break;
        case 1: /* an interesting byte */
            if (n > 0)
                buf[rnd((uint32_t)n)] = (uint8_t[]){0, 1, 0x7f, 0x80, 0xff, '/', '.'}[rnd(7)];
            break;
        case 2: /* an interesting 32-bit value at a 4-aligned offset (the wire's fields) */
            if (n >= 7) {
                size_t at = 3 + 4 * rnd((uint32_t)((n - 3) / 4));
                int32_t v = ints[rnd(sizeof ints / sizeof ints[0])];
                if (at + 4 <= n)
                    memcpy(buf + at, &v, 4);
            }
            break;
        case 3: /* cut */
            n = rnd((uint32_t)n + 1);
            break;
        case 4: /* insert bytes */
            for (uint32_t m = 1 + rnd(64); m > 0 && n < cap; m--)
                buf[n++] = (uint8_t)rnd(256);
            break;
        default: /* the first bytes pick the function and descriptors */
            if (n > 2)
                buf[1 + rnd(2)] = (uint8_t)rnd(48);
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    static uint8_t original[LCF_MAX_MESSAGE + 64], buf[LCF_MAX_MESSAGE + 64];
    if (argc < 3)
        return 2;
    long mutations = strtol(argv[1], NULL, 10);
    rng_state = (uint64_t)strtoull(argv[2], NULL, 10) | 1;
    long runs = 0;
    for (int i = 3; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL)
            continue;
        size_t n = fread(original, 1, sizeof original, f);
        fclose(f);
        for (long m = 0; m <= mutations; m++) {
            memcpy(buf, original, n);
            size_t len = m == 0 ? n : mutate(buf, n, sizeof buf);
            uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees reads past it */
            memcpy(copy, buf, len);
            LLVMFuzzerTestOneInput(copy, len);
            free(copy);
            runs++;
        }
    }
    printf("ran %ld inputs\n", runs);
    return 0;
}
#endif

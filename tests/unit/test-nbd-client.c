/*
 * The nbd:// client against a scripted server: good replies (data, holes,
 * errors, block status) arrive where they belong, and a hostile or broken
 * server (bad magic, unknown cookies, chunks outside the request, huge
 * lengths, short reads, hang-ups) fails the requests with EIO, never a
 * crash, a hang or a write outside the caller's buffer.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "coblk/coblk.h"
#include "nbd/proto.h"

#define SIZE (1u << 20)
#define ALLOCATION_ID 7

/* What the scripted server answers to each request. */
typedef void script_fn(int fd, const uint8_t *req);

struct server {
    char path[108];
    int listen_fd;
    script_fn *script;
    pthread_t thread;
    const char *query;          /* more of the URI's query, "&..." */
    _Atomic bool reaccept;      /* serve connection after connection */
    _Atomic unsigned connections;   /* accepted so far */
};

static struct server srv;

static void put_all(int fd, const void *buf, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = send(fd, (const char *)buf + done, len - done,
                         MSG_NOSIGNAL);
        if (n <= 0) {
            return;             /* the client went away: fine */
        }
        done += (size_t)n;
    }
}

static bool get_all(int fd, void *buf, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = recv(fd, (char *)buf + done, len - done, 0);
        if (n <= 0) {
            return false;
        }
        done += (size_t)n;
    }
    return true;
}

static void option_reply(int fd, uint32_t opt, uint32_t type,
                         const void *data, uint32_t len)
{
    uint8_t head[20];
    nbd_put64(head, NBD_REP_MAGIC);
    nbd_put32(head + 8, opt);
    nbd_put32(head + 12, type);
    nbd_put32(head + 16, len);
    put_all(fd, head, sizeof(head));
    put_all(fd, data, len);
}

/* A well-behaved handshake: structured replies, base:allocation as id 7,
 * GO with the export's size. */
static bool handshake(int fd)
{
    uint8_t hello[18], buf[4096];
    nbd_put64(hello, NBD_MAGIC);
    nbd_put64(hello + 8, NBD_OPTS_MAGIC);
    nbd_put16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    put_all(fd, hello, sizeof(hello));
    if (!get_all(fd, buf, 4)) {
        return false;
    }
    for (;;) {
        uint8_t head[16];
        if (!get_all(fd, head, sizeof(head))) {
            return false;
        }
        uint32_t opt = nbd_get32(head + 8), len = nbd_get32(head + 12);
        if (len > sizeof(buf) || !get_all(fd, buf, len)) {
            return false;
        }
        if (opt == NBD_OPT_SET_META_CONTEXT) {
            uint8_t ctx[4 + 15];
            nbd_put32(ctx, ALLOCATION_ID);
            memcpy(ctx + 4, "base:allocation", 15);
            option_reply(fd, opt, NBD_REP_META_CONTEXT, ctx, sizeof(ctx));
        } else if (opt == NBD_OPT_GO) {
            uint8_t info[12];
            nbd_put16(info, NBD_INFO_EXPORT);
            nbd_put64(info + 2, SIZE);
            nbd_put16(info + 10, NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH);
            option_reply(fd, opt, NBD_REP_INFO, info, sizeof(info));
            option_reply(fd, opt, NBD_REP_ACK, NULL, 0);
            return true;
        }
        if (opt != NBD_OPT_GO) {
            option_reply(fd, opt, NBD_REP_ACK, NULL, 0);
        }
    }
}

/* Serves one connection; false once the client said goodbye. */
static bool serve_one(int fd)
{
    uint8_t req[NBD_REQUEST_SIZE];
    bool more = true;

    if (fd >= 0 && handshake(fd)) {
        while (get_all(fd, req, sizeof(req)) &&
               (more = nbd_get16(req + 6) != NBD_CMD_DISC)) {
            srv.script(fd, req);
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    return more;
}

static void *serve(void *opaque)
{
    int fd;

    do {
        fd = accept(srv.listen_fd, NULL, NULL);
        srv.connections += fd >= 0;
    } while (serve_one(fd) && srv.reaccept && fd >= 0);
    return NULL;
}

/* Starts a server running script and opens the device on it. */
static struct coblk_dev *open_on(script_fn *script)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    char uri[200];
    struct coblk_dev *dev;

    snprintf(srv.path, sizeof(srv.path), "/var/tmp/coblk-nbdc-%d.sock",
             getpid());
    unlink(srv.path);
    strcpy(addr.sun_path, srv.path);
    srv.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(srv.listen_fd, (struct sockaddr *)&addr,
                          sizeof(addr)), 0);
    assert_int_equal(listen(srv.listen_fd, 1), 0);
    srv.script = script;
    assert_int_equal(pthread_create(&srv.thread, NULL, serve, NULL), 0);
    snprintf(uri, sizeof(uri), "nbd+unix:///?socket=%s%s", srv.path,
             srv.query ? srv.query : "");
    assert_int_equal(coblk_dev_open(uri, COBLK_OPEN_RDONLY, &dev), 0);
    assert_int_equal(coblk_dev_size(dev), SIZE);
    return dev;
}

static void close_server(struct coblk_dev *dev)
{
    coblk_dev_close(dev);       /* sends NBD_CMD_DISC */
    pthread_join(srv.thread, NULL);
    close(srv.listen_fd);
    unlink(srv.path);
}

static void chunk_head(uint8_t *head, const uint8_t *req, uint16_t flags,
                       uint16_t type, uint32_t len)
{
    nbd_put32(head, NBD_STRUCTURED_REPLY_MAGIC);
    nbd_put16(head + 4, flags);
    nbd_put16(head + 6, type);
    memcpy(head + 8, req + 8, 8);       /* the cookie */
    nbd_put32(head + 16, len);
}

/* Data: each byte its offset's low 8 bits. */
static void data_chunk_at(int fd, const uint8_t *req, uint64_t offset,
                          uint32_t len, uint16_t flags)
{
    uint8_t head[NBD_STRUCTURED_REPLY_SIZE + 8];
    uint8_t *data = malloc(len);
    for (uint32_t i = 0; i < len; i++) {
        data[i] = (uint8_t)(offset + i);
    }
    chunk_head(head, req, flags, NBD_REPLY_TYPE_OFFSET_DATA, 8 + len);
    nbd_put64(head + NBD_STRUCTURED_REPLY_SIZE, offset);
    put_all(fd, head, sizeof(head));
    put_all(fd, data, len);
    free(data);
}

/* ---- scripts ---------------------------------------------------------------------- */

/* Reads in two chunks, the second half a hole, the last one DONE. */
static void script_data_and_hole(int fd, const uint8_t *req)
{
    uint64_t offset = nbd_get64(req + 16);
    uint32_t len = nbd_get32(req + 24);
    uint8_t hole[NBD_STRUCTURED_REPLY_SIZE + 12];

    if (nbd_get16(req + 6) == NBD_CMD_BLOCK_STATUS) {
        uint8_t st[NBD_STRUCTURED_REPLY_SIZE + 4 + 16];
        chunk_head(st, req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_BLOCK_STATUS,
                   4 + 16);
        nbd_put32(st + 20, ALLOCATION_ID);
        nbd_put32(st + 24, 8192);
        nbd_put32(st + 28, NBD_STATE_HOLE | NBD_STATE_ZERO);
        nbd_put32(st + 32, 8192);
        nbd_put32(st + 36, 0);
        put_all(fd, st, sizeof(st));
        return;
    }
    data_chunk_at(fd, req, offset, len / 2, 0);
    chunk_head(hole, req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_HOLE,
               12);
    nbd_put64(hole + 20, offset + len / 2);
    nbd_put32(hole + 28, len / 2);
    put_all(fd, hole, sizeof(hole));
}

static void script_bad_magic(int fd, const uint8_t *req)
{
    uint8_t junk[20] = { 0xde, 0xad };
    put_all(fd, junk, sizeof(junk));
}

static void script_unknown_cookie(int fd, const uint8_t *req)
{
    uint8_t other[NBD_REQUEST_SIZE];
    memcpy(other, req, sizeof(other));
    nbd_put64(other + 8, nbd_get64(req + 8) + 1000);
    data_chunk_at(fd, other, nbd_get64(req + 16), nbd_get32(req + 24),
                  NBD_REPLY_FLAG_DONE);
}

/* Data for bytes before the request: must not land before the buffer. */
static void script_outside(int fd, const uint8_t *req)
{
    data_chunk_at(fd, req, nbd_get64(req + 16) - 512, nbd_get32(req + 24),
                  NBD_REPLY_FLAG_DONE);
}

static void script_huge_chunk(int fd, const uint8_t *req)
{
    uint8_t head[NBD_STRUCTURED_REPLY_SIZE];
    chunk_head(head, req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
               1u << 30);
    put_all(fd, head, sizeof(head));
}

/* DONE after half the data. */
static void script_short(int fd, const uint8_t *req)
{
    data_chunk_at(fd, req, nbd_get64(req + 16), nbd_get32(req + 24) / 2,
                  NBD_REPLY_FLAG_DONE);
}

/* Half a reply, then the server is gone. */
static void script_hang_up(int fd, const uint8_t *req)
{
    uint8_t head[NBD_STRUCTURED_REPLY_SIZE + 8];
    chunk_head(head, req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
               8 + nbd_get32(req + 24));
    nbd_put64(head + 20, nbd_get64(req + 16));
    put_all(fd, head, sizeof(head));
    shutdown(fd, SHUT_RDWR);
}

/* Both halves of a read as chunks at its start: half of it never
 * filled. */
static void script_overlap(int fd, const uint8_t *req)
{
    uint64_t offset = nbd_get64(req + 16);
    uint32_t half = nbd_get32(req + 24) / 2;
    data_chunk_at(fd, req, offset, half, 0);
    data_chunk_at(fd, req, offset, half, NBD_REPLY_FLAG_DONE);
}

/* The second half first, then the first: out of order, but whole. */
static void script_out_of_order(int fd, const uint8_t *req)
{
    uint64_t offset = nbd_get64(req + 16);
    uint32_t half = nbd_get32(req + 24) / 2;
    data_chunk_at(fd, req, offset + half, half, 0);
    data_chunk_at(fd, req, offset, half, NBD_REPLY_FLAG_DONE);
}

/* The first request fails with EPERM (text and all), the rest succeed. */
static void script_error_then_data(int fd, const uint8_t *req)
{
    static const char msg[] = "not today";
    static int calls;
    if (calls++ == 0) {
        uint8_t head[NBD_STRUCTURED_REPLY_SIZE + 6];
        chunk_head(head, req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
                   6 + sizeof(msg) - 1);
        nbd_put32(head + 20, NBD_EPERM);
        nbd_put16(head + 24, sizeof(msg) - 1);
        put_all(fd, head, sizeof(head));
        put_all(fd, msg, sizeof(msg) - 1);
        return;
    }
    data_chunk_at(fd, req, nbd_get64(req + 16), nbd_get32(req + 24),
                  NBD_REPLY_FLAG_DONE);
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_data_holes_and_status(void **state)
{
    struct coblk_dev *dev = open_on(script_data_and_hole);
    uint8_t buf[8192];

    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 4096), 0);
    for (unsigned i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], i < 4096 ? (uint8_t)(4096 + i) : 0);
    }
    struct coblk_block_status bs;
    assert_int_equal(coblk_block_status(dev, 0, SIZE, &bs), 0);
    assert_int_equal(bs.bytes, 8192);
    assert_int_equal(bs.flags & (COBLK_BS_DATA | COBLK_BS_ZERO),
                     COBLK_BS_ZERO);
    close_server(dev);
}

/* A broken reply fails the request with EIO, and every later one: the
 * connection cannot be trusted to be in step any more. */
static void expect_broken(script_fn *script)
{
    struct coblk_dev *dev = open_on(script);
    uint8_t buf[4096 + 1024];

    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(coblk_pread(dev, buf + 512, 4096, 8192), -EIO);
    /* Nothing outside the buffer asked for was touched. */
    for (unsigned i = 0; i < 512; i++) {
        assert_int_equal(buf[i], 0xee);
        assert_int_equal(buf[512 + 4096 + i], 0xee);
    }
    assert_int_equal(coblk_pread(dev, buf, 512, 0), -EIO);
    close_server(dev);
}

static void test_bad_magic(void **state)
{
    expect_broken(script_bad_magic);
}

static void test_unknown_cookie(void **state)
{
    expect_broken(script_unknown_cookie);
}

static void test_chunk_outside_the_request(void **state)
{
    expect_broken(script_outside);
}

static void test_huge_chunk(void **state)
{
    expect_broken(script_huge_chunk);
}

static void test_hang_up_mid_reply(void **state)
{
    expect_broken(script_hang_up);
}

/* A reply that leaves part of a read out is an error, though the
 * connection stays in step. */
static void test_short_read_is_an_error(void **state)
{
    struct coblk_dev *dev = open_on(script_short);
    uint8_t buf[4096];

    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 0), -EIO);
    close_server(dev);
}

/* Answers nothing: a server that stalls. */
static void script_silent(int fd, const uint8_t *req)
{
    (void)fd;
    (void)req;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Opens the device on script, with more of the URI's query. */
static struct coblk_dev *open_with_query(script_fn *script, const char *query)
{
    srv.query = query;
    struct coblk_dev *dev = open_on(script);
    srv.query = NULL;
    return dev;
}

/* A read that fails with err once its 1 s limit has passed: not before,
 * and not never. */
static void read_fails_after_a_second(struct coblk_dev *dev, void *buf,
                                      size_t len, int err)
{
    double start = now_s();

    assert_int_equal(coblk_pread(dev, buf, len, 0), err);
    double took = now_s() - start;
    if (took < 0.9 || took > 10) {
        fail_msg("failed after %.2f s, for a 1 s limit", took);
    }
}

/* With timeout=1, a request to a server that stalls fails with ETIMEDOUT;
 * the connection is dropped, so later requests fail at once. */
static void test_stalled_server_times_out(void **state)
{
    uint8_t buf[512];

    (void)state;
    struct coblk_dev *dev = open_with_query(script_silent, "&timeout=1");
    read_fails_after_a_second(dev, buf, sizeof(buf), -ETIMEDOUT);
    assert_non_null(strstr(coblk_last_error(), "sent nothing for 1 s"));
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 0), -EIO);
    close_server(dev);
}

/* Half of a read's data, then silence: the data goes straight into the
 * caller's buffer, and timeout= covers that receive too. */
static void script_half_then_silent(int fd, const uint8_t *req)
{
    uint8_t head[NBD_STRUCTURED_REPLY_SIZE + 8];
    uint32_t len = nbd_get32(req + 24);
    uint8_t *data = calloc(1, len / 2);

    chunk_head(head, req, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
               8 + len);
    nbd_put64(head + NBD_STRUCTURED_REPLY_SIZE, nbd_get64(req + 16));
    put_all(fd, head, sizeof(head));
    put_all(fd, data, len / 2);
    free(data);
}

static void test_stall_inside_read_data_times_out(void **state)
{
    static uint8_t buf[256 << 10];

    (void)state;
    struct coblk_dev *dev = open_with_query(script_half_then_silent,
                                            "&timeout=1");
    read_fails_after_a_second(dev, buf, sizeof(buf), -ETIMEDOUT);
    close_server(dev);
}

/* Hangs up at every request, right after a good handshake. */
static void script_drop(int fd, const uint8_t *req)
{
    (void)req;
    shutdown(fd, SHUT_RDWR);
}

/* A server that accepts and drops again and again: with reconnect-delay=1
 * the request fails once the second has passed (it is one outage, since
 * nothing completes), after a handful of connections, not thousands. */
static void test_reconnects_end_when_nothing_completes(void **state)
{
    uint8_t buf[4096];

    (void)state;
    srv.reaccept = true;
    srv.connections = 0;
    struct coblk_dev *dev = open_with_query(script_drop,
                                            "&reconnect-delay=1");
    read_fails_after_a_second(dev, buf, sizeof(buf), -EIO);
    srv.reaccept = false;
    /* Pauses of 0.1, 0.2, 0.4 and 0.8 s: at most 6 tries in 1 s. */
    assert_in_range(srv.connections, 2, 8);
    coblk_dev_close(dev);
    shutdown(srv.listen_fd, SHUT_RDWR);     /* ends the server's accept */
    pthread_join(srv.thread, NULL);
    close(srv.listen_fd);
    unlink(srv.path);
}

static void test_overlapping_chunks(void **state)
{
    expect_broken(script_overlap);
}

static void test_chunks_out_of_order(void **state)
{
    struct coblk_dev *dev = open_on(script_out_of_order);
    uint8_t buf[8192];

    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 16384), 0);
    for (unsigned i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], (uint8_t)(16384 + i));
    }
    close_server(dev);
}

static void test_error_chunk_keeps_the_connection(void **state)
{
    struct coblk_dev *dev = open_on(script_error_then_data);
    uint8_t buf[4096];

    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 0), -EPERM);
    assert_non_null(strstr(coblk_last_error(), "Operation not permitted"));
    assert_int_equal(coblk_pread(dev, buf, sizeof(buf), 65536), 0);
    assert_int_equal(buf[1], 1);
    close_server(dev);
}

static void test_bad_uris(void **state)
{
    static const struct {
        const char *uri;
        int err;
        const char *message;
    } cases[] = {
        { "nbd+unix:///", -EINVAL, "no ?socket=PATH" },
        { "nbd+unix://host/?socket=/x", -EINVAL, "takes no host" },
        { "nbd://:10809/", -EINVAL, "no host" },
        { "nbd://h:99999/", -EINVAL, "port" },
        { "nbd://h/?socket=/x", -EINVAL, "unknown query" },
        { "nbd://h/?timeout=x", -EINVAL, "timeout= takes seconds" },
        { "nbd://h/?timeout=", -EINVAL, "timeout= takes seconds" },
        { "nbd://h/?timeout=86401", -EINVAL, "timeout= takes seconds" },
        { "nbd://h/?timeout=-1", -EINVAL, "timeout= takes seconds" },
        { "nbd://h/?reconnect-delay=1s", -EINVAL,
          "reconnect-delay= takes seconds" },
        { "nbd://h/?reconnect-delay=999999", -EINVAL,
          "reconnect-delay= takes seconds" },
        { "nbd://h/?meta-context=", -EINVAL, "bad meta context name" },
        { "nbd://h/?meta-context=a%zz", -EINVAL, "bad meta context name" },
        { "nbd://h/bad%zz", -EINVAL, "export name" },
        { "nbds://h/", -ENOTSUP, "TLS" },
        { "nbd:h:10809", -EINVAL, "unknown scheme" },
        { "nbd+unix:///?socket=/var/tmp/coblk-no-such.sock", -ENOENT,
          "cannot connect" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct coblk_dev *dev = NULL;
        assert_int_equal(coblk_dev_open(cases[i].uri, COBLK_OPEN_RDONLY,
                                        &dev), cases[i].err);
        assert_null(dev);
        if (!strstr(coblk_last_error(), cases[i].message)) {
            fail_msg("%s: expected \"%s\" in \"%s\"", cases[i].uri,
                     cases[i].message, coblk_last_error());
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_holes_and_status),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_unknown_cookie),
        cmocka_unit_test(test_chunk_outside_the_request),
        cmocka_unit_test(test_huge_chunk),
        cmocka_unit_test(test_hang_up_mid_reply),
        cmocka_unit_test(test_short_read_is_an_error),
        cmocka_unit_test(test_overlapping_chunks),
        cmocka_unit_test(test_chunks_out_of_order),
        cmocka_unit_test(test_error_chunk_keeps_the_connection),
        cmocka_unit_test(test_stalled_server_times_out),
        cmocka_unit_test(test_stall_inside_read_data_times_out),
        cmocka_unit_test(test_reconnects_end_when_nothing_completes),
        cmocka_unit_test(test_bad_uris),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

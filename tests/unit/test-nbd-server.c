/*
 * The NBD server against a client written byte by byte: the handshake's
 * every option and its errors, requests and their exact errors and data,
 * and hostile input (bad magic, oversized options and writes, unknown
 * flags), which must end in an NBD error or a disconnect of that client,
 * never a crash, a hang or a write.  The test thread is both the client
 * (a socketpair) and the server's event loop.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "aio-int.h"
#include "coblk/nbd.h"
#include "nbd/proto.h"

#define SIZE (1u << 20)

struct fixture {
    struct coblk_dev *dev;
    struct coblk_nbd_server *srv;
    int fd;                     /* the client's end */
    char path[64];
};

static struct fixture fx;
static int open_flags;          /* the device's, for open_server() */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the server until n bytes came back (or the connection ended:
 * returns fewer). */
static size_t client_recv(void *buf, size_t n)
{
    size_t got = 0;
    uint64_t limit = now_ms() + 5000;

    while (got < n) {
        ssize_t r = recv(fx.fd, (char *)buf + got, n - got, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            break;
        }
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (now_ms() > limit) {
            fail_msg("the server did not answer within 5 s");
        }
        coblk_aio_poll(coblk_aio_current(), false);
    }
    return got;
}

/* Sends n bytes, running the server while the socket is full. */
static void client_send(const void *buf, size_t n)
{
    size_t sent = 0;
    uint64_t limit = now_ms() + 5000;

    while (sent < n) {
        ssize_t r = send(fx.fd, (const char *)buf + sent, n - sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (r > 0) {
            sent += (size_t)r;
            continue;
        }
        assert_true(r < 0 && (errno == EAGAIN || errno == EINTR));
        if (now_ms() > limit) {
            fail_msg("the server took nothing for 5 s");
        }
        coblk_aio_poll(coblk_aio_current(), false);
    }
}

/* The server hung up on the client. */
static void expect_closed(void)
{
    char c;
    assert_int_equal(client_recv(&c, 1), 0);
}

static void open_server(const struct coblk_nbd_export_opts *opts)
{
    int sv[2];

    snprintf(fx.path, sizeof(fx.path), "/var/tmp/coblk-nbd-%d.img",
             getpid());
    int fd = open(fx.path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, SIZE), 0);
    close(fd);
    char spec[96];
    snprintf(spec, sizeof(spec), "file:%s", fx.path);
    assert_int_equal(coblk_dev_open(spec, open_flags, &fx.dev), 0);
    assert_int_equal(coblk_nbd_server_new(fx.dev, opts,
                                          opts ? sizeof(*opts) : 0, &fx.srv),
                     0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    fx.fd = sv[0];
    assert_int_equal(coblk_nbd_server_add_client(fx.srv, sv[1]), 0);
}

static int setup(void **state)
{
    open_server(NULL);
    return 0;
}

static int teardown(void **state)
{
    close(fx.fd);
    coblk_nbd_server_free(fx.srv);
    coblk_dev_close(fx.dev);
    unlink(fx.path);
    return 0;
}

static struct coblk_nbd_server_stats stats(void)
{
    struct coblk_nbd_server_stats st;
    assert_int_equal(coblk_nbd_server_stats(fx.srv, &st, sizeof(st)), 0);
    return st;
}

/* ---- handshake helpers --------------------------------------------------------- */

static void greet(uint32_t client_flags)
{
    uint8_t hello[18], flags[4];

    assert_int_equal(client_recv(hello, sizeof(hello)), sizeof(hello));
    assert_true(nbd_get64(hello) == NBD_MAGIC);
    assert_true(nbd_get64(hello + 8) == NBD_OPTS_MAGIC);
    assert_int_equal(nbd_get16(hello + 16),
                     NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    nbd_put32(flags, client_flags);
    client_send(flags, sizeof(flags));
}

static void send_option(uint32_t opt, const void *data, uint32_t len)
{
    uint8_t head[16];

    nbd_put64(head, NBD_OPTS_MAGIC);
    nbd_put32(head + 8, opt);
    nbd_put32(head + 12, len);
    client_send(head, sizeof(head));
    if (len) {
        client_send(data, len);
    }
}

/* Receives an option reply to opt: its type; its data into data. */
static uint32_t option_reply(uint32_t opt, uint8_t *data, uint32_t *len)
{
    uint8_t head[20];

    assert_int_equal(client_recv(head, sizeof(head)), sizeof(head));
    assert_true(nbd_get64(head) == NBD_REP_MAGIC);
    assert_int_equal(nbd_get32(head + 8), opt);
    uint32_t n = nbd_get32(head + 16);
    assert_true(n <= 8192);
    assert_int_equal(client_recv(data, n), n);
    *len = n;
    return nbd_get32(head + 12);
}

/* NBD_OPT_GO (or INFO) data for name, asking for the given infos. */
static uint32_t go_data(uint8_t *buf, const char *name, unsigned n_infos,
                        const uint16_t *infos)
{
    uint32_t len = (uint32_t)strlen(name);

    nbd_put32(buf, len);
    memcpy(buf + 4, name, len);
    nbd_put16(buf + 4 + len, (uint16_t)n_infos);
    for (unsigned i = 0; i < n_infos; i++) {
        nbd_put16(buf + 6 + len + 2 * i, infos[i]);
    }
    return 6 + len + 2 * n_infos;
}

/* Negotiates: optionally structured replies and meta contexts, then GO;
 * returns the transmission flags. */
static uint16_t negotiate(bool structured, const char *meta)
{
    uint8_t buf[8192];
    uint32_t len;
    uint16_t tx_flags = 0;
    bool sizes = false;

    greet(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    if (structured) {
        send_option(NBD_OPT_STRUCTURED_REPLY, NULL, 0);
        assert_int_equal(option_reply(NBD_OPT_STRUCTURED_REPLY, buf, &len),
                         NBD_REP_ACK);
    }
    if (meta) {
        uint32_t qlen = (uint32_t)strlen(meta);
        nbd_put32(buf, 0);
        nbd_put32(buf + 4, 1);
        nbd_put32(buf + 8, qlen);
        memcpy(buf + 12, meta, qlen);
        send_option(NBD_OPT_SET_META_CONTEXT, buf, 12 + qlen);
        assert_int_equal(option_reply(NBD_OPT_SET_META_CONTEXT, buf, &len),
                         NBD_REP_META_CONTEXT);
        assert_int_equal(option_reply(NBD_OPT_SET_META_CONTEXT, buf, &len),
                         NBD_REP_ACK);
    }
    send_option(NBD_OPT_GO, buf, go_data(buf, "", 0, NULL));
    for (;;) {
        uint32_t type = option_reply(NBD_OPT_GO, buf, &len);
        if (type == NBD_REP_ACK) {
            break;
        }
        assert_int_equal(type, NBD_REP_INFO);
        if (nbd_get16(buf) == NBD_INFO_EXPORT) {
            assert_int_equal(len, 12);
            assert_true(nbd_get64(buf + 2) == SIZE);
            tx_flags = nbd_get16(buf + 10);
        } else if (nbd_get16(buf) == NBD_INFO_BLOCK_SIZE) {
            assert_int_equal(len, 14);
            assert_int_equal(nbd_get32(buf + 2), 1);
            assert_int_equal(nbd_get32(buf + 6), 4096);
            assert_int_equal(nbd_get32(buf + 10), NBD_MAX_PAYLOAD);
            sizes = true;
        }
    }
    assert_true(tx_flags & NBD_FLAG_HAS_FLAGS);
    assert_true(sizes);
    return tx_flags;
}

/* ---- transmission helpers ------------------------------------------------------- */

static void send_request(uint16_t flags, uint16_t type, uint64_t cookie,
                         uint64_t offset, uint32_t len)
{
    uint8_t head[NBD_REQUEST_SIZE];

    nbd_put32(head, NBD_REQUEST_MAGIC);
    nbd_put16(head + 4, flags);
    nbd_put16(head + 6, type);
    nbd_put64(head + 8, cookie);
    nbd_put64(head + 16, offset);
    nbd_put32(head + 24, len);
    client_send(head, sizeof(head));
}

/* A simple reply: its error, after checking the cookie. */
static uint32_t simple_reply(uint64_t cookie)
{
    uint8_t head[NBD_SIMPLE_REPLY_SIZE];

    assert_int_equal(client_recv(head, sizeof(head)), sizeof(head));
    assert_int_equal(nbd_get32(head), NBD_SIMPLE_REPLY_MAGIC);
    assert_true(nbd_get64(head + 8) == cookie);
    return nbd_get32(head + 4);
}

/* One structured chunk: its type and flags; its payload into data. */
static uint16_t chunk(uint64_t cookie, uint16_t *flags, uint8_t *data,
                      uint32_t *len, uint32_t max)
{
    uint8_t head[NBD_STRUCTURED_REPLY_SIZE];

    assert_int_equal(client_recv(head, sizeof(head)), sizeof(head));
    assert_int_equal(nbd_get32(head), NBD_STRUCTURED_REPLY_MAGIC);
    assert_true(nbd_get64(head + 8) == cookie);
    *flags = nbd_get16(head + 4);
    *len = nbd_get32(head + 16);
    assert_true(*len <= max);
    assert_int_equal(client_recv(data, *len), *len);
    return nbd_get16(head + 6);
}

static void write_pattern(uint64_t cookie, uint64_t offset, uint32_t len,
                          int byte)
{
    uint8_t *buf = malloc(len);
    memset(buf, byte, len);
    send_request(0, NBD_CMD_WRITE, cookie, offset, len);
    client_send(buf, len);
    free(buf);
    assert_int_equal(simple_reply(cookie), 0);
}

/* ---- the handshake -------------------------------------------------------------- */

static void test_go_then_write_and_read(void **state)
{
    uint16_t flags = negotiate(false, NULL);
    assert_true(flags & NBD_FLAG_SEND_FLUSH);
    assert_true(flags & NBD_FLAG_SEND_WRITE_ZEROES);
    assert_false(flags & NBD_FLAG_READ_ONLY);
    assert_true(flags & NBD_FLAG_CAN_MULTI_CONN);    /* clients unlimited */
    assert_false(flags & NBD_FLAG_SEND_DF);          /* no structured */
    assert_true(flags & NBD_FLAG_SEND_CACHE);
    send_request(0, NBD_CMD_CACHE, 9, 0, SIZE);
    assert_int_equal(simple_reply(9), 0);

    write_pattern(1, 4096, 8192, 0x5a);
    uint8_t buf[8192];
    send_request(0, NBD_CMD_READ, 2, 4096, sizeof(buf));
    assert_int_equal(simple_reply(2), 0);
    assert_int_equal(client_recv(buf, sizeof(buf)), sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++) {
        assert_int_equal(buf[i], 0x5a);
    }
    /* The data is in the file, not only in the server. */
    send_request(NBD_CMD_FLAG_FUA, NBD_CMD_FLUSH, 3, 0, 0);
    assert_int_equal(simple_reply(3), 0);
    uint8_t back[8192];
    assert_int_equal(coblk_pread(fx.dev, back, sizeof(back), 4096), 0);
    assert_memory_equal(back, buf, sizeof(back));
}

static void test_options_and_their_errors(void **state)
{
    uint8_t buf[8192];
    uint32_t len;

    greet(NBD_FLAG_C_FIXED_NEWSTYLE);
    send_option(77, "junk", 4);
    assert_int_equal(option_reply(77, buf, &len), NBD_REP_ERR_UNSUP);
    send_option(NBD_OPT_STARTTLS, NULL, 0);
    assert_int_equal(option_reply(NBD_OPT_STARTTLS, buf, &len),
                     NBD_REP_ERR_UNSUP);
    send_option(NBD_OPT_LIST, NULL, 0);
    assert_int_equal(option_reply(NBD_OPT_LIST, buf, &len), NBD_REP_SERVER);
    assert_int_equal(nbd_get32(buf), 0);                /* the name "" */
    assert_int_equal(option_reply(NBD_OPT_LIST, buf, &len), NBD_REP_ACK);
    send_option(NBD_OPT_LIST, "x", 1);
    assert_int_equal(option_reply(NBD_OPT_LIST, buf, &len),
                     NBD_REP_ERR_INVALID);
    /* A name longer than the option: invalid, not read past. */
    nbd_put32(buf, 1000);
    send_option(NBD_OPT_INFO, buf, 6);
    assert_int_equal(option_reply(NBD_OPT_INFO, buf, &len),
                     NBD_REP_ERR_INVALID);
    send_option(NBD_OPT_GO, buf, go_data(buf, "nope", 0, NULL));
    assert_int_equal(option_reply(NBD_OPT_GO, buf, &len),
                     NBD_REP_ERR_UNKNOWN);
    assert_non_null(memmem(buf, len, "nope", 4));
    /* Meta contexts need structured replies first. */
    nbd_put32(buf, 0);
    nbd_put32(buf + 4, 0);
    send_option(NBD_OPT_SET_META_CONTEXT, buf, 8);
    assert_int_equal(option_reply(NBD_OPT_SET_META_CONTEXT, buf, &len),
                     NBD_REP_ERR_INVALID);
    send_option(NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    assert_int_equal(option_reply(NBD_OPT_STRUCTURED_REPLY, buf, &len),
                     NBD_REP_ACK);
    send_option(NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    assert_int_equal(option_reply(NBD_OPT_STRUCTURED_REPLY, buf, &len),
                     NBD_REP_ERR_INVALID);
    /* An unknown context is no error: none is chosen. */
    nbd_put32(buf, 0);
    nbd_put32(buf + 4, 1);
    nbd_put32(buf + 8, 9);
    memcpy(buf + 12, "x-coblk:y", 9);
    send_option(NBD_OPT_SET_META_CONTEXT, buf, 21);
    assert_int_equal(option_reply(NBD_OPT_SET_META_CONTEXT, buf, &len),
                     NBD_REP_ACK);
    /* A query longer than the option. */
    nbd_put32(buf, 0);
    nbd_put32(buf + 4, 1);
    nbd_put32(buf + 8, 4000);
    send_option(NBD_OPT_LIST_META_CONTEXT, buf, 12);
    assert_int_equal(option_reply(NBD_OPT_LIST_META_CONTEXT, buf, &len),
                     NBD_REP_ERR_INVALID);
    send_option(NBD_OPT_ABORT, NULL, 0);
    assert_int_equal(option_reply(NBD_OPT_ABORT, buf, &len), NBD_REP_ACK);
    expect_closed();
    assert_int_equal(stats().protocol_errors, 0);
}

static void test_list_meta_contexts(void **state)
{
    uint8_t buf[8192];
    uint32_t len;

    greet(NBD_FLAG_C_FIXED_NEWSTYLE);
    nbd_put32(buf, 0);
    nbd_put32(buf + 4, 0);
    send_option(NBD_OPT_LIST_META_CONTEXT, buf, 8);
    assert_int_equal(option_reply(NBD_OPT_LIST_META_CONTEXT, buf, &len),
                     NBD_REP_META_CONTEXT);
    assert_int_equal(len, 4 + strlen("base:allocation"));
    assert_memory_equal(buf + 4, "base:allocation", len - 4);
    /* Without -A, no qemu:allocation-depth. */
    assert_int_equal(option_reply(NBD_OPT_LIST_META_CONTEXT, buf, &len),
                     NBD_REP_ACK);
}

static void test_export_name_ends_the_handshake(void **state)
{
    uint8_t rep[10];

    greet(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
    send_option(NBD_OPT_EXPORT_NAME, NULL, 0);
    assert_int_equal(client_recv(rep, sizeof(rep)), sizeof(rep));
    assert_true(nbd_get64(rep) == SIZE);
    assert_true(nbd_get16(rep + 8) & NBD_FLAG_HAS_FLAGS);
    write_pattern(7, 0, 512, 1);
}

static void test_unknown_export_name_disconnects(void **state)
{
    greet(NBD_FLAG_C_FIXED_NEWSTYLE);
    send_option(NBD_OPT_EXPORT_NAME, "other", 5);
    expect_closed();
}

static void test_hostile_handshakes_disconnect(void **state)
{
    /* Flags the server never offered. */
    greet(0x80);
    expect_closed();
    assert_int_equal(stats().protocol_errors, 1);
}

static void test_huge_option_disconnects(void **state)
{
    greet(NBD_FLAG_C_FIXED_NEWSTYLE);
    uint8_t head[16];
    nbd_put64(head, NBD_OPTS_MAGIC);
    nbd_put32(head + 8, NBD_OPT_GO);
    nbd_put32(head + 12, 0xffffffffu);
    client_send(head, sizeof(head));
    expect_closed();
    assert_int_equal(stats().protocol_errors, 1);
}

static void test_bad_option_magic_disconnects(void **state)
{
    greet(NBD_FLAG_C_FIXED_NEWSTYLE);
    uint8_t head[16] = { 0 };
    client_send(head, sizeof(head));
    expect_closed();
    assert_int_equal(stats().protocol_errors, 1);
}

/* ---- transmission ------------------------------------------------------------------ */

static void test_bad_requests_get_their_errors(void **state)
{
    negotiate(false, NULL);
    send_request(0, NBD_CMD_READ, 1, SIZE - 512, 1024);
    assert_int_equal(simple_reply(1), NBD_EINVAL);
    send_request(0, NBD_CMD_WRITE_ZEROES, 2, SIZE, 512);
    assert_int_equal(simple_reply(2), NBD_ENOSPC);
    send_request(0, NBD_CMD_TRIM, 3, UINT64_MAX - 10, 512);
    assert_int_equal(simple_reply(3), NBD_EINVAL);
    send_request(0, 99, 4, 0, 512);
    assert_int_equal(simple_reply(4), NBD_EINVAL);
    send_request(0x8000, NBD_CMD_FLUSH, 5, 0, 0);
    assert_int_equal(simple_reply(5), NBD_EINVAL);
    send_request(NBD_CMD_FLAG_DF, NBD_CMD_READ, 6, 0, 512);
    assert_int_equal(simple_reply(6), NBD_EINVAL);   /* DF needs SR */
    send_request(0, NBD_CMD_BLOCK_STATUS, 7, 0, 512);
    assert_int_equal(simple_reply(7), NBD_EINVAL);
    send_request(0, NBD_CMD_CACHE, 8, SIZE - 512, 4096);
    assert_int_equal(simple_reply(8), NBD_EINVAL);   /* past the end */
    send_request(0, NBD_CMD_READ, 9, 0, NBD_MAX_PAYLOAD + 1);
    assert_int_equal(simple_reply(9), NBD_EINVAL);
    /* A write past the end: its payload is read, then refused. */
    uint8_t data[512] = { 0 };
    send_request(0, NBD_CMD_WRITE, 10, SIZE, sizeof(data));
    client_send(data, sizeof(data));
    assert_int_equal(simple_reply(10), NBD_ENOSPC);
    /* Still in step. */
    write_pattern(11, 0, 512, 3);
    assert_int_equal(stats().requests, 11);
}

static void test_huge_write_disconnects(void **state)
{
    negotiate(false, NULL);
    send_request(0, NBD_CMD_WRITE, 1, 0, NBD_MAX_PAYLOAD + 1);
    expect_closed();
    assert_int_equal(stats().protocol_errors, 1);
}

static void test_bad_request_magic_disconnects(void **state)
{
    negotiate(false, NULL);
    uint8_t junk[NBD_REQUEST_SIZE] = { 0x12 };
    client_send(junk, sizeof(junk));
    expect_closed();
}

static void test_disc_answers_what_is_in_flight(void **state)
{
    negotiate(false, NULL);
    for (uint64_t i = 0; i < 8; i++) {
        send_request(0, NBD_CMD_READ, 100 + i, i * 4096, 4096);
    }
    send_request(0, NBD_CMD_DISC, 200, 0, 0);
    uint8_t data[4096];
    for (int i = 0; i < 8; i++) {
        uint8_t head[NBD_SIMPLE_REPLY_SIZE];
        assert_int_equal(client_recv(head, sizeof(head)), sizeof(head));
        assert_int_equal(nbd_get32(head + 4), 0);
        assert_int_equal(client_recv(data, sizeof(data)), sizeof(data));
    }
    expect_closed();
    assert_int_equal(stats().clients, 0);
    assert_int_equal(stats().clients_done, 1);
}

/* More requests than a connection runs at once: the rest wait, none is
 * lost. */
static void test_many_pipelined_writes(void **state)
{
    enum { N = 600 };
    uint8_t data[512];

    negotiate(false, NULL);
    /* Sent in one go, as a client that reads replies only later: the
     * socket buffers hold them all (the server stops taking requests at
     * its limit, which a real client's reading would lift). */
    int big = 4 << 20;
    setsockopt(fx.fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    setsockopt(fx.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    for (uint64_t i = 0; i < N; i++) {
        memset(data, (int)(i & 0xff), sizeof(data));
        send_request(0, NBD_CMD_WRITE, i, i * sizeof(data), sizeof(data));
        client_send(data, sizeof(data));
    }
    bool seen[N] = { false };
    for (int i = 0; i < N; i++) {
        uint8_t head[NBD_SIMPLE_REPLY_SIZE];
        assert_int_equal(client_recv(head, sizeof(head)), sizeof(head));
        uint64_t cookie = nbd_get64(head + 8);
        assert_true(cookie < N && !seen[cookie]);
        assert_int_equal(nbd_get32(head + 4), 0);
        seen[cookie] = true;
    }
    for (uint64_t i = 0; i < N; i++) {
        assert_int_equal(coblk_pread(fx.dev, data, sizeof(data),
                                     i * sizeof(data)), 0);
        assert_int_equal(data[0], i & 0xff);
        assert_int_equal(data[511], i & 0xff);
    }
}

static void test_structured_read_and_error_chunks(void **state)
{
    uint8_t buf[8192 + 8];
    uint16_t flags;
    uint32_t len;

    assert_true(negotiate(true, NULL) & NBD_FLAG_SEND_DF);
    write_pattern(1, 8192, 4096, 0x77);
    send_request(NBD_CMD_FLAG_DF, NBD_CMD_READ, 2, 8192, 4096);
    assert_int_equal(chunk(2, &flags, buf, &len, sizeof(buf)),
                     NBD_REPLY_TYPE_OFFSET_DATA);
    assert_int_equal(flags, NBD_REPLY_FLAG_DONE);
    assert_int_equal(len, 8 + 4096);
    assert_true(nbd_get64(buf) == 8192);
    for (int i = 0; i < 4096; i++) {
        assert_int_equal(buf[8 + i], 0x77);
    }
    send_request(0, NBD_CMD_READ, 3, SIZE, 512);
    assert_int_equal(chunk(3, &flags, buf, &len, sizeof(buf)),
                     NBD_REPLY_TYPE_ERROR);
    assert_int_equal(flags, NBD_REPLY_FLAG_DONE);
    assert_int_equal(nbd_get32(buf), NBD_EINVAL);
    assert_int_equal(nbd_get16(buf + 4), len - 6);   /* the message */
    /* No meta context chosen: block status is refused. */
    send_request(0, NBD_CMD_BLOCK_STATUS, 4, 0, 4096);
    assert_int_equal(chunk(4, &flags, buf, &len, sizeof(buf)),
                     NBD_REPLY_TYPE_ERROR);
    assert_int_equal(nbd_get32(buf), NBD_EINVAL);
}

/* A structured read of a sparse range: data chunks for the data, a hole
 * chunk for the hole, in order, DONE on the last. */
static void test_structured_read_is_sparse(void **state)
{
    uint8_t buf[16384 + 8];
    uint16_t flags;
    uint32_t len;

    negotiate(true, NULL);
    write_pattern(1, 0, 4096, 0x31);
    write_pattern(2, 12288, 4096, 0x32);
    send_request(0, NBD_CMD_READ, 3, 0, 16384);
    assert_int_equal(chunk(3, &flags, buf, &len, sizeof(buf)),
                     NBD_REPLY_TYPE_OFFSET_DATA);
    assert_int_equal(flags, 0);
    assert_int_equal(len, 8 + 4096);
    assert_true(nbd_get64(buf) == 0);
    assert_int_equal(buf[8], 0x31);
    assert_int_equal(buf[8 + 4095], 0x31);
    assert_int_equal(chunk(3, &flags, buf, &len, sizeof(buf)),
                     NBD_REPLY_TYPE_OFFSET_HOLE);
    assert_int_equal(flags, 0);
    assert_int_equal(len, 12);
    assert_true(nbd_get64(buf) == 4096);
    assert_int_equal(nbd_get32(buf + 8), 8192);
    assert_int_equal(chunk(3, &flags, buf, &len, sizeof(buf)),
                     NBD_REPLY_TYPE_OFFSET_DATA);
    assert_int_equal(flags, NBD_REPLY_FLAG_DONE);
    assert_true(nbd_get64(buf) == 12288);
    assert_int_equal(buf[8 + 4095], 0x32);
}

static void test_block_status_of_data_and_holes(void **state)
{
    uint8_t buf[8192];
    uint16_t flags;
    uint32_t len;

    negotiate(true, "base:allocation");
    write_pattern(1, 0, 65536, 0x10);
    send_request(0, NBD_CMD_BLOCK_STATUS, 2, 0, SIZE);
    assert_int_equal(chunk(2, &flags, buf, &len, sizeof(buf)),
                     NBD_REPLY_TYPE_BLOCK_STATUS);
    assert_int_equal(flags, NBD_REPLY_FLAG_DONE);
    assert_int_equal(nbd_get32(buf), 0);                /* the context */
    assert_int_equal(len, 4 + 2 * 8);
    assert_int_equal(nbd_get32(buf + 4), 65536);
    assert_int_equal(nbd_get32(buf + 8), 0);            /* data */
    assert_int_equal(nbd_get32(buf + 12), SIZE - 65536);
    assert_int_equal(nbd_get32(buf + 16), NBD_STATE_HOLE | NBD_STATE_ZERO);
    send_request(NBD_CMD_FLAG_REQ_ONE, NBD_CMD_BLOCK_STATUS, 3, 4096, 4096);
    assert_int_equal(chunk(3, &flags, buf, &len, sizeof(buf)),
                     NBD_REPLY_TYPE_BLOCK_STATUS);
    assert_int_equal(len, 4 + 8);
    assert_int_equal(nbd_get32(buf + 4), 4096);
}

static void test_read_only_export(void **state)
{
    teardown(state);
    struct coblk_nbd_export_opts opts = { .read_only = true,
                                          .max_clients = 1 };
    open_server(&opts);
    uint16_t flags = negotiate(false, NULL);
    assert_true(flags & NBD_FLAG_READ_ONLY);
    assert_false(flags & NBD_FLAG_CAN_MULTI_CONN);  /* one client at once */
    assert_false(flags & NBD_FLAG_SEND_TRIM);
    uint8_t data[512] = { 9 };
    send_request(0, NBD_CMD_WRITE, 1, 0, sizeof(data));
    client_send(data, sizeof(data));
    assert_int_equal(simple_reply(1), NBD_EPERM);
    send_request(0, NBD_CMD_TRIM, 2, 0, 4096);
    assert_int_equal(simple_reply(2), NBD_EPERM);
    assert_int_equal(coblk_pread(fx.dev, data, sizeof(data), 0), 0);
    assert_int_equal(data[0], 0);
}

/* Freeing the server ends a client stuck in the handshake. */
static void test_free_ends_a_silent_client(void **state)
{
    uint8_t hello[18];
    assert_int_equal(client_recv(hello, sizeof(hello)), sizeof(hello));
    coblk_nbd_server_free(fx.srv);
    fx.srv = NULL;
    expect_closed();
    /* teardown frees again: make it a new, idle server. */
    assert_int_equal(coblk_nbd_server_new(fx.dev, NULL, 0, &fx.srv), 0);
}

/* A client that never finishes the handshake is let go after the
 * limit. */
static void test_handshake_time_limit(void **state)
{
    teardown(state);
    struct coblk_nbd_export_opts opts = { .handshake_limit = 1 };
    open_server(&opts);
    uint8_t hello[18];
    assert_int_equal(client_recv(hello, sizeof(hello)), sizeof(hello));
    expect_closed();
    assert_int_equal(stats().handshake_timeouts, 1);
    /* The connection ends once the server's loop comes round. */
    for (int i = 0; i < 100 && stats().clients > 0; i++) {
        coblk_aio_poll(coblk_aio_current(), false);
    }
    assert_int_equal(stats().clients, 0);
}

/* With O_DIRECT, the server's buffers go to the device as they are: no
 * request is bounced through a copy. */
static void test_direct_io_is_not_bounced(void **state)
{
    teardown(state);
    open_flags = COBLK_OPEN_DIRECT;
    open_server(NULL);
    open_flags = 0;
    negotiate(false, NULL);
    write_pattern(1, 8192, 4096, 0x66);
    uint8_t buf[4096];
    send_request(0, NBD_CMD_READ, 2, 8192, sizeof(buf));
    assert_int_equal(simple_reply(2), 0);
    assert_int_equal(client_recv(buf, sizeof(buf)), sizeof(buf));
    assert_int_equal(buf[4095], 0x66);
    struct coblk_dev_stats st;
    assert_int_equal(coblk_dev_stats(fx.dev, &st, sizeof(st)), 0);
    assert_int_equal(st.bounces, 0);
}

static void test_api_errors(void **state)
{
    struct coblk_nbd_server *srv;
    char *long_name = malloc(NBD_MAX_STRING + 2);

    memset(long_name, 'a', NBD_MAX_STRING + 1);
    long_name[NBD_MAX_STRING + 1] = 0;
    struct coblk_nbd_export_opts opts = { .name = long_name };
    assert_int_equal(coblk_nbd_server_new(NULL, NULL, 0, &srv), -EINVAL);
    assert_int_equal(coblk_nbd_server_new(fx.dev, &opts, sizeof(opts), &srv),
                     -EINVAL);
    assert_non_null(strstr(coblk_last_error(), "4096"));
    free(long_name);
    assert_int_equal(coblk_nbd_server_add_client(NULL, -1), -EINVAL);
    assert_int_equal(coblk_nbd_server_listen(fx.srv, -1), -EINVAL);
    assert_int_equal(coblk_nbd_server_stats(fx.srv, NULL, 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_go_then_write_and_read),
        T(test_options_and_their_errors),
        T(test_list_meta_contexts),
        T(test_export_name_ends_the_handshake),
        T(test_unknown_export_name_disconnects),
        T(test_hostile_handshakes_disconnect),
        T(test_huge_option_disconnects),
        T(test_bad_option_magic_disconnects),
        T(test_bad_requests_get_their_errors),
        T(test_huge_write_disconnects),
        T(test_bad_request_magic_disconnects),
        T(test_disc_answers_what_is_in_flight),
        T(test_many_pipelined_writes),
        T(test_structured_read_and_error_chunks),
        T(test_structured_read_is_sparse),
        T(test_block_status_of_data_and_holes),
        T(test_read_only_export),
        T(test_free_ends_a_silent_client),
        T(test_handshake_time_limit),
        T(test_direct_io_is_not_bounced),
        T(test_api_errors),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The NBD server: connections, the transmission phase, the export API
 * (coblk/nbd.h).
 *
 * Each connection is a coroutine: the handshake (handshake.c), then a
 * loop receiving requests, each run in a coroutine of its own on the
 * device, so that a slow read does not hold up the requests behind it.
 * Replies go out whole, one at a time (send_lock), header and payload in
 * one vectored send.  A connection holds a bounded number of requests and
 * payload bytes; beyond that it stops reading its socket until some
 * finish.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "server-int.h"
#include "sock.h"

/* Extents a BLOCK_STATUS reply carries at most, per context. */
#define NBD_EXTENTS_MAX 16384u

/* Bytes a CACHE request reads at once (and holds). */
#define NBD_CACHE_CHUNK (1u << 20)

struct nbd_request {
    struct nbd_conn *c;
    uint16_t flags;
    uint16_t type;
    uint64_t cookie;
    uint64_t offset;
    uint32_t len;
    uint64_t held;          /* payload bytes counted in c->buffered */
    uint8_t *buf;           /* WRITE's payload, READ's data, CACHE's
                             * scratch: the start of the allocation */
};

/* Buffers are aligned for O_DIRECT, which would otherwise bounce every
 * request through a copy. */
#define NBD_BUF_ALIGN 4096u

/* One allocation: held bytes of buffer (aligned), then the request. */
static struct nbd_request *request_new(const struct nbd_request *r)
{
    size_t room = (size_t)(r->held + 15) & ~(size_t)15;
    void *mem;

    if (posix_memalign(&mem, NBD_BUF_ALIGN, room + sizeof(*r))) {
        return NULL;
    }
    struct nbd_request *rq = (struct nbd_request *)((uint8_t *)mem + room);
    *rq = *r;
    rq->buf = mem;
    return rq;
}

static void request_free(struct nbd_request *rq)
{
    free(rq->buf);
}

uint16_t nbd_server_tx_flags(const struct nbd_conn *c)
{
    const struct coblk_nbd_server *srv = c->srv;
    uint16_t flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH |
                     NBD_FLAG_SEND_FUA | NBD_FLAG_SEND_CACHE;

    if (srv->read_only) {
        flags |= NBD_FLAG_READ_ONLY;
    } else {
        flags |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;
    }
    if (c->structured) {
        flags |= NBD_FLAG_SEND_DF;      /* a DF read: one data chunk */
    }
    if (srv->max_clients != 1) {
        flags |= NBD_FLAG_CAN_MULTI_CONN;
    }
    return flags;
}

static uint32_t nbd_errno(int err)
{
    switch (-err) {
    case EPERM:
    case EROFS:
        return NBD_EPERM;
    case ENOMEM:
        return NBD_ENOMEM;
    case EINVAL:
        return NBD_EINVAL;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return NBD_ENOSPC;
    case EOVERFLOW:
        return NBD_EOVERFLOW;
    case ENOTSUP:
        return NBD_ENOTSUP;
    case ESHUTDOWN:
        return NBD_ESHUTDOWN;
    default:
        return NBD_EIO;
    }
}

/* ---- replies ----------------------------------------------------------------- */

/* Sends one reply whole.  A failed send ends the connection: its socket
 * is shut down, which ends the receiving loop too. */
static int coroutine_fn send_reply(struct nbd_conn *c, struct iovec *iov,
                                   unsigned iovcnt)
{
    if (c->broken) {
        return -EPIPE;
    }
    coblk_co_mutex_lock(&c->send_lock);
    int ret = nbd_co_sendv(c->fd, iov, iovcnt);
    coblk_co_mutex_unlock(&c->send_lock);
    if (ret < 0 && !c->broken) {
        c->broken = true;
        shutdown(c->fd, SHUT_RDWR);
    }
    return ret;
}

static int coroutine_fn simple_reply(struct nbd_request *rq, int err,
                                     const void *data, size_t len)
{
    uint8_t head[NBD_SIMPLE_REPLY_SIZE];

    nbd_put32(head, NBD_SIMPLE_REPLY_MAGIC);
    nbd_put32(head + 4, err ? nbd_errno(err) : 0);
    nbd_put64(head + 8, rq->cookie);
    struct iovec iov[2] = { { head, sizeof(head) },
                            { (void *)data, err ? 0 : len } };
    return send_reply(rq->c, iov, 2);
}

static void chunk_head(uint8_t *head, const struct nbd_request *rq,
                       uint16_t flags, uint16_t type, uint32_t len)
{
    nbd_put32(head, NBD_STRUCTURED_REPLY_MAGIC);
    nbd_put16(head + 4, flags);
    nbd_put16(head + 6, type);
    nbd_put64(head + 8, rq->cookie);
    nbd_put32(head + 16, len);
}

/* The final chunk of a failed request: the error and its text. */
static int coroutine_fn error_chunk(struct nbd_request *rq, int err)
{
    uint8_t head[NBD_STRUCTURED_REPLY_SIZE + 6];
    const char *msg = strerror(-err);
    size_t msg_len = strlen(msg);

    chunk_head(head, rq, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR,
               (uint32_t)(6 + msg_len));
    nbd_put32(head + NBD_STRUCTURED_REPLY_SIZE, nbd_errno(err));
    nbd_put16(head + NBD_STRUCTURED_REPLY_SIZE + 4, (uint16_t)msg_len);
    struct iovec iov[2] = { { head, sizeof(head) }, { (void *)msg, msg_len } };
    return send_reply(rq->c, iov, 2);
}

/* A reply without payload: simple, or an error chunk where structured
 * replies are on (which carry the error's text). */
static int coroutine_fn status_reply(struct nbd_request *rq, int err)
{
    if (err && rq->c->structured) {
        return error_chunk(rq, err);
    }
    return simple_reply(rq, err, NULL, 0);
}

static int coroutine_fn read_reply(struct nbd_request *rq, int err)
{
    if (!rq->c->structured) {
        return simple_reply(rq, err, rq->buf, rq->len);
    }
    if (err) {
        return error_chunk(rq, err);
    }
    uint8_t head[NBD_STRUCTURED_REPLY_SIZE + 8];
    if (rq->len == 0) {
        chunk_head(head, rq, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, 0);
        struct iovec iov = { head, NBD_STRUCTURED_REPLY_SIZE };
        return send_reply(rq->c, &iov, 1);
    }
    chunk_head(head, rq, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_OFFSET_DATA,
               8 + rq->len);
    nbd_put64(head + NBD_STRUCTURED_REPLY_SIZE, rq->offset);
    struct iovec iov[2] = { { head, sizeof(head) }, { rq->buf, rq->len } };
    return send_reply(rq->c, iov, 2);
}

/* ---- sparse reads --------------------------------------------------------- */

/* A structured read goes out as runs of data and holes, at most this
 * many (the rest as data). */
#define NBD_READ_PIECES 32u

struct piece {
    uint64_t offset;
    uint32_t len;
    bool zero;
};

/* Splits the read into runs of data and zeroes by the device's block
 * status (where it has none, all data); returns how many. */
static unsigned coroutine_fn split_read(struct nbd_request *rq,
                                        struct piece *p)
{
    struct coblk_dev *dev = rq->c->srv->dev;
    unsigned n = 0;

    for (uint64_t done = 0; done < rq->len;) {
        struct coblk_block_status bs;
        uint64_t offset = rq->offset + done, bytes = rq->len - done;
        bool zero = false;
        if (n < NBD_READ_PIECES - 1 &&
            coblk_co_block_status(dev, offset, bytes, &bs) == 0) {
            zero = bs.flags & COBLK_BS_ZERO;
            bytes = bs.bytes;
        }
        if (n > 0 && p[n - 1].zero == zero) {
            p[n - 1].len += (uint32_t)bytes;
        } else {
            p[n++] = (struct piece){ offset, (uint32_t)bytes, zero };
        }
        done += bytes;
    }
    return n;
}

/* Reads the data runs, then sends every run in one reply: data chunks
 * and hole chunks, the last one DONE. */
static int coroutine_fn sparse_read(struct nbd_request *rq)
{
    struct piece p[NBD_READ_PIECES];
    uint8_t heads[NBD_READ_PIECES][NBD_STRUCTURED_REPLY_SIZE + 12];
    struct iovec iov[2 * NBD_READ_PIECES];
    unsigned n = split_read(rq, p), k = 0;

    for (unsigned i = 0; i < n; i++) {
        uint8_t *data = rq->buf + (p[i].offset - rq->offset);
        struct iovec part = { data, p[i].len };
        int ret = p[i].zero ? 0 : coblk_co_preadv(rq->c->srv->dev,
                                                  p[i].offset, p[i].len,
                                                  &part, 1);
        if (ret < 0) {
            return error_chunk(rq, ret);
        }
        uint16_t flags = i == n - 1 ? NBD_REPLY_FLAG_DONE : 0;
        uint8_t *h = heads[i];
        nbd_put64(h + NBD_STRUCTURED_REPLY_SIZE, p[i].offset);
        if (p[i].zero) {
            chunk_head(h, rq, flags, NBD_REPLY_TYPE_OFFSET_HOLE, 12);
            nbd_put32(h + NBD_STRUCTURED_REPLY_SIZE + 8, p[i].len);
            iov[k++] = (struct iovec){ h, NBD_STRUCTURED_REPLY_SIZE + 12 };
        } else {
            chunk_head(h, rq, flags, NBD_REPLY_TYPE_OFFSET_DATA,
                       8 + p[i].len);
            iov[k++] = (struct iovec){ h, NBD_STRUCTURED_REPLY_SIZE + 8 };
            iov[k++] = part;
        }
    }
    return send_reply(rq->c, iov, k);
}

/* A read that may go out sparse: structured, not DF (one chunk), not
 * empty. */
static bool reads_sparse(const struct nbd_request *rq)
{
    return rq->type == NBD_CMD_READ && rq->c->structured && rq->len > 0 &&
           !(rq->flags & NBD_CMD_FLAG_DF);
}

/* ---- block status ---------------------------------------------------------- */

/* A context's value for a range's status. */
static uint32_t meta_value(unsigned id, const struct coblk_block_status *bs)
{
    if (id == NBD_META_DEPTH) {
        return bs->flags & COBLK_BS_ALLOCATED ? bs->depth + 1 : 0;
    }
    return (bs->flags & COBLK_BS_DATA ? 0 : NBD_STATE_HOLE) |
           (bs->flags & COBLK_BS_ZERO ? NBD_STATE_ZERO : 0);
}

/* Fills ext (pairs of length and value) for context id from the request's
 * offset; returns how many extents, or -errno. */
static int coroutine_fn collect_extents(struct nbd_request *rq, unsigned id,
                                        uint32_t *ext)
{
    struct coblk_dev *dev = rq->c->srv->dev;
    unsigned max = rq->flags & NBD_CMD_FLAG_REQ_ONE ? 1 : NBD_EXTENTS_MAX;
    uint64_t done = 0;
    unsigned n = 0;

    while (done < rq->len) {
        struct coblk_block_status bs;
        int ret = coblk_co_block_status(dev, rq->offset + done,
                                        rq->len - done, &bs);
        if (ret < 0) {
            return ret;
        }
        uint32_t value = meta_value(id, &bs);
        if (n > 0 && ext[2 * n - 1] == value) {
            ext[2 * n - 2] += (uint32_t)bs.bytes;   /* within rq->len */
        } else if (n == max) {
            break;
        } else {
            ext[2 * n] = (uint32_t)bs.bytes;
            ext[2 * n + 1] = value;
            n++;
        }
        done += bs.bytes;
    }
    return (int)n;
}

/* One BLOCK_STATUS chunk per selected context, the last one DONE. */
static int coroutine_fn block_status_reply(struct nbd_request *rq)
{
    unsigned meta = rq->c->meta;
    uint32_t *ext = malloc(NBD_EXTENTS_MAX * 2 * sizeof(*ext));
    int ret = ext ? 0 : -ENOMEM;

    for (unsigned id = 0; ret >= 0 && id < NBD_META_COUNT; id++) {
        if (!(meta & 1u << id)) {
            continue;
        }
        int n = collect_extents(rq, id, ext);
        if (n < 0) {
            ret = n;
            break;
        }
        bool last = !(meta >> (id + 1));
        uint8_t head[NBD_STRUCTURED_REPLY_SIZE + 4];
        chunk_head(head, rq, last ? NBD_REPLY_FLAG_DONE : 0,
                   NBD_REPLY_TYPE_BLOCK_STATUS, 4 + 8u * (unsigned)n);
        nbd_put32(head + NBD_STRUCTURED_REPLY_SIZE, id);
        for (int i = 0; i < 2 * n; i++) {
            nbd_put32((uint8_t *)&ext[i], ext[i]);
        }
        struct iovec iov[2] = { { head, sizeof(head) },
                                { ext, 8u * (unsigned)n } };
        ret = send_reply(rq->c, iov, 2);
    }
    free(ext);
    /* Nothing was sent with DONE: close the reply with the error. */
    return ret < 0 && ret != -EPIPE ? error_chunk(rq, ret) : ret;
}

/* ---- requests ----------------------------------------------------------------- */

static uint16_t flags_allowed(const struct nbd_conn *c, uint16_t type)
{
    switch (type) {
    case NBD_CMD_READ:
        return NBD_CMD_FLAG_FUA | (c->structured ? NBD_CMD_FLAG_DF : 0);
    case NBD_CMD_WRITE_ZEROES:
        return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;
    case NBD_CMD_BLOCK_STATUS:
        return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
    default:
        return NBD_CMD_FLAG_FUA;
    }
}

static bool writes(uint16_t type)
{
    return type == NBD_CMD_WRITE || type == NBD_CMD_TRIM ||
           type == NBD_CMD_WRITE_ZEROES;
}

/* What a request may not ask: 0, or the error to answer. */
static int refusal(const struct nbd_request *rq)
{
    const struct nbd_conn *c = rq->c;
    uint64_t size = c->srv->dev->size;

    switch (rq->type) {
    case NBD_CMD_READ:
    case NBD_CMD_WRITE:
    case NBD_CMD_FLUSH:
    case NBD_CMD_TRIM:
    case NBD_CMD_WRITE_ZEROES:
    case NBD_CMD_CACHE:
        break;
    case NBD_CMD_BLOCK_STATUS:
        if (!c->structured || !c->meta || rq->len == 0) {
            return -EINVAL;
        }
        break;
    default:
        return -EINVAL;
    }
    if (rq->flags & ~flags_allowed(c, rq->type)) {
        return -EINVAL;
    }
    if (writes(rq->type) && c->srv->read_only) {
        return -EPERM;
    }
    if (rq->type != NBD_CMD_FLUSH &&
        (rq->offset > size || rq->len > size - rq->offset)) {
        return rq->type == NBD_CMD_WRITE ||
                       rq->type == NBD_CMD_WRITE_ZEROES ? -ENOSPC : -EINVAL;
    }
    if (rq->type == NBD_CMD_READ && rq->len > NBD_MAX_PAYLOAD) {
        return -EINVAL;
    }
    return 0;
}

/* NBD_CMD_CACHE: reads the range into the request's buffer (its held
 * bytes, at most NBD_CACHE_CHUNK) a piece at a time and drops the data,
 * so that the device's caches (the page cache, a format's metadata) hold
 * it. */
static int coroutine_fn prefetch(struct nbd_request *rq)
{
    struct coblk_dev *dev = rq->c->srv->dev;
    int ret = 0;

    for (uint64_t done = 0; ret == 0 && done < rq->len; done += rq->held) {
        size_t len = rq->len - done < rq->held ? (size_t)(rq->len - done)
                                               : (size_t)rq->held;
        struct iovec iov = { rq->buf, len };
        ret = coblk_co_preadv(dev, rq->offset + done, len, &iov, 1);
    }
    return ret;
}

/* Writes zeroes where the device has no faster way, from one buffer of
 * zeroes all requests share. */
static int coroutine_fn write_zero_buffers(struct coblk_dev *dev,
                                           uint64_t offset, uint64_t bytes)
{
    static const uint8_t zeroes[64u << 10] __attribute__((aligned(4096)));
    int ret = 0;

    for (uint64_t done = 0; ret == 0 && done < bytes;) {
        size_t len = bytes - done < sizeof(zeroes) ? (size_t)(bytes - done)
                                                   : sizeof(zeroes);
        struct iovec iov = { (void *)zeroes, len };
        ret = coblk_co_pwritev(dev, offset + done, len, &iov, 1, 0);
        done += len;
    }
    return ret;
}

static int coroutine_fn run_write_zeroes(struct nbd_request *rq)
{
    struct coblk_dev *dev = rq->c->srv->dev;
    int ret = coblk_co_pwrite_zeroes(dev, rq->offset, rq->len,
                                     rq->flags & NBD_CMD_FLAG_NO_HOLE
                                         ? 0 : COBLK_REQ_F_UNMAP);

    if (ret == -ENOTSUP) {
        ret = write_zero_buffers(dev, rq->offset, rq->len);
    }
    return ret;
}

/* Runs a request the export allows; returns 0 or -errno. */
static int coroutine_fn run(struct nbd_request *rq)
{
    struct coblk_dev *dev = rq->c->srv->dev;
    struct iovec iov = { rq->buf, rq->len };
    int ret;

    switch (rq->type) {
    case NBD_CMD_READ:
        return rq->len ? coblk_co_preadv(dev, rq->offset, rq->len, &iov, 1)
                       : 0;
    case NBD_CMD_WRITE:
        return rq->len ? coblk_co_pwritev(dev, rq->offset, rq->len, &iov, 1,
                                          rq->flags & NBD_CMD_FLAG_FUA
                                              ? COBLK_REQ_F_FUA : 0)
                       : 0;
    case NBD_CMD_FLUSH:
        return coblk_co_flush(dev);
    case NBD_CMD_CACHE:
        return prefetch(rq);
    case NBD_CMD_TRIM:
        ret = coblk_co_pdiscard(dev, rq->offset, rq->len);
        ret = ret == -ENOTSUP ? 0 : ret;    /* a hint */
        break;
    case NBD_CMD_WRITE_ZEROES:
        ret = run_write_zeroes(rq);
        break;
    default:
        return -EINVAL;
    }
    if (ret == 0 && (rq->flags & NBD_CMD_FLAG_FUA)) {
        ret = coblk_co_flush(dev);
    }
    return ret;
}

static void coroutine_fn request_co(void *opaque)
{
    struct nbd_request *rq = opaque;
    struct nbd_conn *c = rq->c;
    int ret = refusal(rq);

    if (ret == 0 && rq->type == NBD_CMD_BLOCK_STATUS) {
        block_status_reply(rq);
    } else if (ret == 0 && reads_sparse(rq)) {
        sparse_read(rq);
    } else {
        if (ret == 0) {
            ret = run(rq);
        }
        if (rq->type == NBD_CMD_READ) {
            read_reply(rq, ret);
        } else {
            status_reply(rq, ret);
        }
    }
    c->srv->stats.requests++;
    c->requests--;
    c->buffered -= rq->held;
    request_free(rq);
    coblk_co_queue_restart_all(&c->settled);
}

/* ---- a connection ------------------------------------------------------------- */

static int protocol_error(struct nbd_conn *c)
{
    c->srv->stats.protocol_errors++;
    return -EPROTO;
}

/* Receives exactly len bytes of the transmission phase: what the buffer
 * holds first, then one receive of whatever has arrived (at most the
 * buffer), or straight into dst for the rest of a large payload. */
static int coroutine_fn conn_recv(struct nbd_conn *c, void *dst, size_t len)
{
    uint8_t *out = dst;

    while (len > 0) {
        uint32_t held = c->in_end - c->in_start;
        if (held > 0) {
            size_t n = held < len ? held : len;
            memcpy(out, c->inbuf + c->in_start, n);
            c->in_start += (uint32_t)n;
            out += n;
            len -= n;
            continue;
        }
        if (len >= NBD_CONN_INBUF) {
            return nbd_co_recv(c->fd, out, len);
        }
        int ret = nbd_co_recv_some(c->fd, c->inbuf, NBD_CONN_INBUF, 0);
        if (ret < 0) {
            return ret;
        }
        c->in_start = 0;
        c->in_end = (uint32_t)ret;
    }
    return 0;
}

/* Waits until the connection may hold another request of `held` bytes. */
static void coroutine_fn wait_for_room(struct nbd_conn *c, uint64_t held)
{
    while (c->requests >= NBD_CONN_REQUESTS_MAX ||
           (c->requests > 0 && c->buffered + held > NBD_CONN_BUFFERED_MAX)) {
        coblk_co_queue_wait(&c->settled, NULL);
    }
}

/* Receives one request and starts it; returns 0, 1 after NBD_CMD_DISC,
 * or negative when the connection ends. */
static int coroutine_fn receive_one(struct nbd_conn *c)
{
    uint8_t head[NBD_REQUEST_SIZE];
    int ret = conn_recv(c, head, sizeof(head));

    if (ret < 0) {
        return ret;
    }
    if (nbd_get32(head) != NBD_REQUEST_MAGIC) {
        return protocol_error(c);
    }
    struct nbd_request r = { .c = c, .flags = nbd_get16(head + 4),
                             .type = nbd_get16(head + 6),
                             .cookie = nbd_get64(head + 8),
                             .offset = nbd_get64(head + 16),
                             .len = nbd_get32(head + 24) };
    if (r.type == NBD_CMD_DISC) {
        return 1;
    }
    bool payload = r.type == NBD_CMD_WRITE;
    if (payload && r.len > NBD_MAX_PAYLOAD) {
        /* Its data cannot be skipped cheaply: as QEMU, hang up. */
        return protocol_error(c);
    }
    if (payload || (r.type == NBD_CMD_READ && r.len <= NBD_MAX_PAYLOAD)) {
        r.held = r.len;
    } else if (r.type == NBD_CMD_CACHE) {
        r.held = r.len < NBD_CACHE_CHUNK ? r.len : NBD_CACHE_CHUNK;
    }
    wait_for_room(c, r.held);
    struct nbd_request *rq = request_new(&r);
    if (!rq) {
        return -ENOMEM;
    }
    if (payload && (ret = conn_recv(c, rq->buf, rq->len)) < 0) {
        request_free(rq);
        return ret;
    }
    coblk_co *co = coblk_co_create(request_co, rq);
    if (!co) {
        request_free(rq);
        return -ENOMEM;
    }
    c->requests++;
    c->buffered += rq->held;
    coblk_aio_co_enter(c->srv->ctx, co);
    return 0;
}

static void conn_unlink(struct nbd_conn *c)
{
    struct coblk_nbd_server *srv = c->srv;

    if (c->prev) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    srv->stats.clients--;
    srv->stats.clients_done++;
    coblk_co_queue_next(&srv->room);
}

/* ---- the handshake's time limit ------------------------------------------- */

#define WATCH_TICK_NS 100000000ull

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Runs while handshakes do: each tick, a connection past its deadline is
 * shut down, which ends its handshake's receive. */
static void coroutine_fn watch_handshakes(void *opaque)
{
    struct coblk_nbd_server *srv = opaque;

    while (srv->handshaking > 0 && !srv->closing) {
        coblk_co_sleep_ns(WATCH_TICK_NS);
        uint64_t now = now_ns();
        for (struct nbd_conn *c = srv->conns; c; c = c->next) {
            if (c->handshake_deadline && now > c->handshake_deadline) {
                c->handshake_deadline = 0;
                srv->stats.handshake_timeouts++;
                shutdown(c->fd, SHUT_RDWR);
            }
        }
    }
    srv->watching = false;
}

/* Runs the handshake under the server's time limit. */
static int coroutine_fn timed_handshake(struct nbd_conn *c)
{
    struct coblk_nbd_server *srv = c->srv;

    if (srv->handshake_limit_ns != UINT64_MAX) {
        c->handshake_deadline = now_ns() + srv->handshake_limit_ns;
        srv->handshaking++;
        coblk_co *co = srv->watching ? NULL
                                     : coblk_co_create(watch_handshakes, srv);
        if (co) {
            srv->watching = true;
            coblk_aio_co_enter(srv->ctx, co);
        }
    }
    int ret = nbd_handshake(c);
    if (srv->handshake_limit_ns != UINT64_MAX) {
        c->handshake_deadline = 0;
        srv->handshaking--;
    }
    return ret;
}

static void coroutine_fn conn_co(void *opaque)
{
    struct nbd_conn *c = opaque;
    int ret = timed_handshake(c);

    if (ret == 0 && !(c->inbuf = malloc(NBD_CONN_INBUF))) {
        ret = -ENOMEM;
    }

    while (ret == 0) {
        ret = receive_one(c);
    }
    /* After NBD_CMD_DISC, or when the client is gone: answer what is in
     * flight (where it still listens), then hang up. */
    while (c->requests > 0) {
        coblk_co_queue_wait(&c->settled, NULL);
    }
    shutdown(c->fd, SHUT_RDWR);
    close(c->fd);
    conn_unlink(c);
    free(c->inbuf);
    free(c);
}

/* ---- the export API ---------------------------------------------------------- */

int coblk_nbd_server_new(struct coblk_dev *dev,
                         const struct coblk_nbd_export_opts *opts,
                         size_t opts_size, struct coblk_nbd_server **out)
{
    struct coblk_nbd_export_opts o = { 0 };

    if (!dev || !out) {
        return blk_error(-EINVAL, "coblk_nbd_server_new: no device or "
                         "no place for the server");
    }
    if (opts) {
        memcpy(&o, opts, opts_size < sizeof(o) ? opts_size : sizeof(o));
    }
    const char *name = o.name ? o.name : "";
    if (strlen(name) > NBD_MAX_STRING ||
        (o.description && strlen(o.description) > NBD_MAX_STRING)) {
        return blk_error(-EINVAL, "coblk_nbd_server_new: the export's name "
                         "and description may have at most %u bytes",
                         NBD_MAX_STRING);
    }
    int ret = 0;
    coblk_aio *ctx = aio_thread_ctx(&ret);
    if (!ctx) {
        return blk_error(ret, "coblk_nbd_server_new: no event loop: %s",
                         strerror(-ret));
    }
    struct coblk_nbd_server *srv = calloc(1, sizeof(*srv));
    if (!srv || !(srv->name = strdup(name)) ||
        (o.description && !(srv->description = strdup(o.description)))) {
        if (srv) {
            free(srv->name);
        }
        free(srv);
        return blk_error(-ENOMEM, "out of memory");
    }
    srv->dev = dev;
    srv->ctx = ctx;
    srv->read_only = o.read_only || (dev->flags & COBLK_OPEN_RDONLY);
    srv->allocation_depth = o.allocation_depth;
    srv->max_clients = o.max_clients;
    srv->handshake_limit_ns = o.handshake_limit == UINT_MAX
                                  ? UINT64_MAX
                                  : (o.handshake_limit ? o.handshake_limit
                                                       : 10) *
                                        1000000000ull;
    srv->listen_fd = -1;
    coblk_co_queue_init(&srv->room);
    *out = srv;
    return 0;
}

int coblk_nbd_server_add_client(struct coblk_nbd_server *srv, int fd)
{
    if (!srv || fd < 0 || srv->closing) {
        if (fd >= 0) {
            close(fd);
        }
        return blk_error(-EINVAL, "coblk_nbd_server_add_client: no server, "
                         "no socket, or the server is closing");
    }
    struct nbd_conn *c = calloc(1, sizeof(*c));
    coblk_co *co = c ? coblk_co_create(conn_co, c) : NULL;
    if (!co) {
        free(c);
        close(fd);
        return blk_error(-ENOMEM, "out of memory");
    }
    c->srv = srv;
    c->fd = fd;
    coblk_co_mutex_init(&c->send_lock);
    coblk_co_queue_init(&c->settled);
    c->next = srv->conns;
    if (c->next) {
        c->next->prev = c;
    }
    srv->conns = c;
    srv->stats.clients++;
    coblk_aio_co_enter(srv->ctx, co);
    return 0;
}

static bool accept_may_retry(int err)
{
    return err == -EINTR || err == -EAGAIN || err == -ECONNABORTED ||
           err == -EMFILE || err == -ENFILE || err == -ENOBUFS ||
           err == -ENOMEM || err == -EPROTO;
}

static void coroutine_fn accept_co(void *opaque)
{
    struct coblk_nbd_server *srv = opaque;

    while (!srv->closing) {
        if (srv->max_clients && srv->stats.clients >= srv->max_clients) {
            coblk_co_queue_wait(&srv->room, NULL);
            continue;
        }
        int fd = nbd_co_accept(srv->listen_fd);
        if (fd < 0 && (srv->closing || !accept_may_retry(fd))) {
            break;
        }
        if (fd < 0) {
            /* Out of descriptors or memory: let connections end first. */
            coblk_co_sleep_ns(100000000);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        coblk_nbd_server_add_client(srv, fd);
    }
    srv->accepting = false;
}

int coblk_nbd_server_listen(struct coblk_nbd_server *srv, int listen_fd)
{
    if (!srv || listen_fd < 0) {
        return blk_error(-EINVAL, "coblk_nbd_server_listen: no server or "
                         "no socket");
    }
    if (srv->listen_fd >= 0) {
        return blk_error(-EBUSY, "coblk_nbd_server_listen: the server "
                         "listens already");
    }
    coblk_co *co = coblk_co_create(accept_co, srv);
    if (!co) {
        return blk_error(-ENOMEM, "out of memory");
    }
    srv->listen_fd = listen_fd;
    srv->accepting = true;
    coblk_aio_co_enter(srv->ctx, co);
    return 0;
}

int coblk_nbd_server_stats(struct coblk_nbd_server *srv,
                           struct coblk_nbd_server_stats *stats, size_t size)
{
    if (!srv || !stats) {
        return blk_error(-EINVAL, "coblk_nbd_server_stats: no server or "
                         "no place for the counts");
    }
    memset(stats, 0, size);
    memcpy(stats, &srv->stats,
           size < sizeof(srv->stats) ? size : sizeof(srv->stats));
    return 0;
}

void coblk_nbd_server_free(struct coblk_nbd_server *srv)
{
    if (!srv) {
        return;
    }
    srv->closing = true;
    if (srv->listen_fd >= 0) {
        /* Ends the accept waiting on the ring. */
        shutdown(srv->listen_fd, SHUT_RDWR);
    }
    coblk_co_queue_restart_all(&srv->room);
    for (struct nbd_conn *c = srv->conns; c; c = c->next) {
        shutdown(c->fd, SHUT_RDWR);
    }
    while (srv->conns || srv->accepting || srv->watching) {
        coblk_aio_poll(srv->ctx, true);
    }
    if (srv->listen_fd >= 0) {
        close(srv->listen_fd);
    }
    free(srv->name);
    free(srv->description);
    free(srv);
}

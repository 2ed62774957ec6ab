/*
 * nbd://HOST[:PORT]/EXPORT and nbd+unix:///EXPORT?socket=PATH: a device on
 * an NBD server.
 *
 * Each request coroutine takes a slot (its cookie), sends its command
 * (with a WRITE's data: one vectored send) and waits; one reader
 * coroutine receives the replies, puts READ data straight into the
 * requester's buffers, and wakes the requester whose cookie the reply
 * names.  The reader runs while replies are awaited, in the context of
 * the request that started it; requests from other threads' contexts are
 * woken there.  A server that breaks the protocol or goes away fails the
 * requests in flight with EIO, and every later one; one that sends
 * nothing for the URI's timeout= while replies are awaited, with
 * ETIMEDOUT.
 *
 * With reconnect-delay= in the URI, a connection the server closed or
 * lost is not the end: the reader connects again, and each request still
 * awaiting its reply is sent once more on the new connection by its own
 * coroutine, while the reader reads replies (NBD's commands may be
 * repeated: a write writes the same data again).  Requests made meanwhile
 * wait in their slots.  All sending is under send_lock, and a slot
 * records the connection it went out on, so that no request goes out
 * twice on one.  An outage ends when a request completes: until then,
 * however often the server accepts and drops again, the reconnecting
 * stops reconnect-delay after the loss, pausing longer each time.  A
 * timeout or a protocol violation is no loss: the server may still act
 * on what it has, so nothing is sent again, and the requests fail.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "aio-int.h"
#include "client-int.h"
#include "proto.h"
#include "sock.h"

struct range {
    uint64_t start, end;
};

/* Out-of-order pieces of one read a server may send, at most. */
#define NBD_READ_RANGES_MAX 1024u

struct slot {
    bool used;
    bool awaited;               /* its reply is not complete yet */
    uint64_t cookie;
    uint16_t type;
    uint64_t offset;
    uint32_t len;
    uint16_t flags;
    const struct iovec *iov;    /* READ: where the data goes; WRITE: data */
    unsigned iovcnt;
    uint64_t conn;              /* the connection it went out on; 0: none */
    /* READ: what the chunks filled, relative to offset: [0, prefix),
     * and further ranges past a gap (sorted, disjoint). */
    uint64_t prefix;
    struct range *ranges;
    unsigned nr_ranges;
    struct coblk_block_status *status;  /* BLOCK_STATUS: the first extent */
    bool status_set;
    int error;
    coblk_co_queue waiter;
};

typedef struct nbd_client {
    int fd;
    uint64_t timeout_ns;        /* for replies to start arriving; 0: none */
    uint64_t reconnect_ns;      /* 0: a lost connection fails everything */
    struct nbd_uri uri;         /* kept to connect again */
    uint64_t conn;              /* this connection's number, from 1 */
    /* Lost: the reader is reconnecting.  Written under both locks. */
    bool down;
    /* The reader's: when the outage began (0: none), the next pause. */
    int64_t outage_start;
    uint64_t pause_ns;
    struct nbd_export_info info;
    coblk_co_mutex lock;        /* the fields below */
    struct slot slots[NBD_CLIENT_SLOTS];
    unsigned used, awaited;
    uint64_t generation;
    bool reader_running;
    _Atomic bool broken;        /* failed for good (read by senders) */
    struct slot *receiving;     /* the reader is filling its buffers */
    coblk_co_queue free_slot;
    /* The reader's: received, not parsed yet (a burst of replies arrives
     * in one receive). */
    uint8_t inbuf[16384];
    uint32_t in_start, in_end;
    coblk_co_mutex send_lock;   /* one request on the wire at a time */
} nbd_client;

static int from_nbd_errno(uint32_t err)
{
    switch (err) {
    case NBD_EPERM: return -EPERM;
    case NBD_EIO: return -EIO;
    case NBD_ENOMEM: return -ENOMEM;
    case NBD_ENOSPC: return -ENOSPC;
    case NBD_EOVERFLOW: return -EOVERFLOW;
    case NBD_ENOTSUP: return -ENOTSUP;
    case NBD_ESHUTDOWN: return -ESHUTDOWN;
    default: return -EINVAL;    /* NBD_EINVAL, and unknown values */
    }
}

/* ---- completing requests (s->lock held) ------------------------------------ */

static void finish(nbd_client *s, struct slot *sl)
{
    if (!sl->error && sl->type == NBD_CMD_READ &&
        (sl->prefix != sl->len || sl->nr_ranges)) {
        sl->error = -EIO;       /* the server left part of it out */
    }
    if (!sl->error && sl->type == NBD_CMD_BLOCK_STATUS && !sl->status_set) {
        sl->error = -EIO;
    }
    if (!sl->error) {
        s->outage_start = 0;    /* the server works again */
    }
    sl->awaited = false;
    s->awaited--;
    coblk_co_queue_next(&sl->waiter);
}

/* The connection is gone: every awaited request fails (-EIO, or -error
 * where the reason is worth telling: ETIMEDOUT).  Not the one the reader
 * is receiving into: the ring may still write its buffers, until the
 * reader's receive ends (the shutdown ends it) and it finishes the
 * request itself. */
static void fail_all(nbd_client *s, int error)
{
    s->broken = true;
    shutdown(s->fd, SHUT_RDWR);
    for (unsigned i = 0; i < NBD_CLIENT_SLOTS; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->used && sl->awaited) {
            sl->error = error == -ETIMEDOUT ? error : -EIO;
            if (sl != s->receiving) {
                finish(s, sl);
            }
        }
    }
    coblk_co_queue_restart_all(&s->free_slot);
}

/* ---- the reader --------------------------------------------------------------- */

/* Takes up to len buffered bytes into dst (NULL: drops them); returns
 * how many. */
static size_t take_buffered(nbd_client *s, void *dst, size_t len)
{
    size_t n = s->in_end - s->in_start;

    n = n < len ? n : len;
    if (dst) {
        memcpy(dst, s->inbuf + s->in_start, n);
    }
    s->in_start += (uint32_t)n;
    return n;
}

/* Receives exactly len bytes of replies into dst (NULL: drops them):
 * from the buffer, refilled with one receive of what has arrived. */
static int coroutine_fn reader_recv(nbd_client *s, void *dst, uint64_t len)
{
    uint8_t *out = dst;

    while (len > 0) {
        size_t n = take_buffered(s, out, len);
        len -= n;
        out = out ? out + n : NULL;
        if (len == 0) {
            break;
        }
        int ret = nbd_co_recv_some(s->fd, s->inbuf, sizeof(s->inbuf),
                                   s->timeout_ns);
        if (ret < 0) {
            return ret;
        }
        s->in_start = 0;
        s->in_end = (uint32_t)ret;
    }
    return 0;
}

/* Reads and drops len bytes. */
static int coroutine_fn skip(nbd_client *s, uint64_t len)
{
    return reader_recv(s, NULL, len);
}

/* The slot a reply's cookie names, if it awaits one. */
static struct slot *slot_of(nbd_client *s, uint64_t cookie)
{
    struct slot *sl = &s->slots[cookie % NBD_CLIENT_SLOTS];
    return sl->used && sl->awaited && sl->cookie == cookie ? sl : NULL;
}

/* Records that a chunk fills [at, at + len) of a read (relative to its
 * start): -EPROTO if that passes the read's end, overlaps what earlier
 * chunks filled, or leaves too many pieces to keep. */
static int claim(struct slot *sl, uint64_t at, uint64_t len)
{
    if (len == 0 || len > sl->len || at > sl->len - len || at < sl->prefix) {
        return -EPROTO;
    }
    unsigned i = 0;
    while (i < sl->nr_ranges && sl->ranges[i].end <= at) {
        i++;
    }
    if (i < sl->nr_ranges && sl->ranges[i].start < at + len) {
        return -EPROTO;
    }
    if (at == sl->prefix) {
        sl->prefix += len;
        /* Pieces that arrived early join the prefix. */
        while (sl->nr_ranges && sl->ranges[0].start == sl->prefix) {
            sl->prefix = sl->ranges[0].end;
            memmove(sl->ranges, sl->ranges + 1,
                    --sl->nr_ranges * sizeof(*sl->ranges));
        }
        return 0;
    }
    if (sl->nr_ranges == NBD_READ_RANGES_MAX) {
        return -EPROTO;
    }
    if (!sl->ranges &&
        !(sl->ranges = malloc(NBD_READ_RANGES_MAX * sizeof(*sl->ranges)))) {
        return -ENOMEM;
    }
    memmove(sl->ranges + i + 1, sl->ranges + i,
            (sl->nr_ranges - i) * sizeof(*sl->ranges));
    sl->ranges[i] = (struct range){ at, at + len };
    sl->nr_ranges++;
    return 0;
}

/* Receives len bytes of a READ's data at offset (checked) into the
 * requester's buffers. */
static int coroutine_fn recv_data(nbd_client *s, struct slot *sl,
                                  uint64_t offset, uint64_t len)
{
    int ret = offset < sl->offset ? -EPROTO
                                  : claim(sl, offset - sl->offset, len);
    if (ret < 0) {
        return ret;
    }
    struct iovec part[64];
    size_t skip_bytes = (size_t)(offset - sl->offset);
    while (len > 0) {
        /* What the buffer holds first, then straight into the buffers. */
        size_t held = s->in_end - s->in_start;
        held = held < len ? held : (size_t)len;
        if (held > 0) {
            iov_from_buf(sl->iov, sl->iovcnt, skip_bytes,
                         s->inbuf + s->in_start, held);
            s->in_start += (uint32_t)held;
            skip_bytes += held;
            len -= held;
            continue;
        }
        size_t covered;
        unsigned n = iov_slice(sl->iov, sl->iovcnt, skip_bytes, (size_t)len,
                               part, 64, &covered);
        s->receiving = sl;
        ret = nbd_co_recvv(s->fd, part, n, s->timeout_ns);
        s->receiving = NULL;
        if (ret < 0) {
            return ret;
        }
        skip_bytes += covered;
        len -= covered;
    }
    return 0;
}

/* The slot a reply names, looked up under the lock. */
static struct slot *coroutine_fn lookup(nbd_client *s, uint64_t cookie)
{
    coblk_co_mutex_lock(&s->lock);
    struct slot *sl = slot_of(s, cookie);
    coblk_co_mutex_unlock(&s->lock);
    return sl;
}

static void coroutine_fn finish_locked(nbd_client *s, struct slot *sl)
{
    coblk_co_mutex_lock(&s->lock);
    finish(s, sl);
    coblk_co_mutex_unlock(&s->lock);
}

static int coroutine_fn simple_reply(nbd_client *s, const uint8_t *head)
{
    struct slot *sl = lookup(s, nbd_get64(head + 8));
    uint32_t err = nbd_get32(head + 4);

    /* With structured replies on, a READ's answer must be structured. */
    if (!sl || (sl->type == NBD_CMD_READ && s->info.structured && !err) ||
        (sl->type == NBD_CMD_BLOCK_STATUS && !err)) {
        return -EPROTO;
    }
    if (err) {
        sl->error = from_nbd_errno(err);
    } else if (sl->type == NBD_CMD_READ && sl->len) {
        int ret = recv_data(s, sl, sl->offset, sl->len);
        if (ret < 0) {
            return ret;
        }
    }
    finish_locked(s, sl);
    return 0;
}

static int coroutine_fn error_chunk(nbd_client *s, struct slot *sl,
                                    uint32_t len)
{
    uint8_t e[6];

    if (len < sizeof(e)) {
        return -EPROTO;
    }
    int ret = reader_recv(s, e, sizeof(e));
    if (ret < 0 || nbd_get16(e + 4) > len - sizeof(e)) {
        return ret < 0 ? ret : -EPROTO;
    }
    if (!sl->error) {
        sl->error = nbd_get32(e) ? from_nbd_errno(nbd_get32(e)) : -EIO;
    }
    return skip(s, len - sizeof(e));
}

static int coroutine_fn data_chunk(nbd_client *s, struct slot *sl,
                                   uint32_t len)
{
    uint8_t off[8];

    if (sl->type != NBD_CMD_READ || len <= sizeof(off)) {
        return -EPROTO;
    }
    int ret = reader_recv(s, off, sizeof(off));
    return ret < 0 ? ret
                   : recv_data(s, sl, nbd_get64(off), len - sizeof(off));
}

static int coroutine_fn hole_chunk(nbd_client *s, struct slot *sl,
                                   uint32_t len)
{
    uint8_t h[12];

    if (sl->type != NBD_CMD_READ || len != sizeof(h)) {
        return -EPROTO;
    }
    int ret = reader_recv(s, h, sizeof(h));
    if (ret < 0) {
        return ret;
    }
    uint64_t offset = nbd_get64(h);
    uint32_t bytes = nbd_get32(h + 8);
    ret = offset < sl->offset ? -EPROTO
                              : claim(sl, offset - sl->offset, bytes);
    if (ret == 0) {
        iov_memset(sl->iov, sl->iovcnt, (size_t)(offset - sl->offset), 0,
                   bytes);
    }
    return ret;
}

/* base:allocation's first extent is the status asked for. */
static int coroutine_fn status_chunk(nbd_client *s, struct slot *sl,
                                     uint32_t len)
{
    uint8_t first[12];

    if (sl->type != NBD_CMD_BLOCK_STATUS || len < sizeof(first) ||
        (len - 4) % 8) {
        return -EPROTO;
    }
    int ret = reader_recv(s, first, sizeof(first));
    if (ret < 0) {
        return ret;
    }
    uint32_t bytes = nbd_get32(first + 4), flags = nbd_get32(first + 8);
    if (nbd_get32(first) == s->info.allocation_id && !sl->status_set) {
        if (bytes == 0) {
            return -EPROTO;
        }
        /* A protocol node: where the data lies is where it is asked.  A
         * hole that may not read as zeroes (QEMU's x-dirty-bitmap makes a
         * dirty bit one) is told as nothing there, as QEMU tells it. */
        uint32_t kind = (flags & NBD_STATE_HOLE ? 0 : COBLK_BS_DATA) |
                        (flags & NBD_STATE_ZERO ? COBLK_BS_ZERO : 0);
        *sl->status = (struct coblk_block_status){
            .bytes = bytes < sl->len ? bytes : sl->len,
            .flags = kind ? kind | COBLK_BS_ALLOCATED | COBLK_BS_OFFSET_VALID
                          : 0,
            .host_offset = sl->offset };
        sl->status_set = true;
    }
    return skip(s, len - sizeof(first));
}

static int coroutine_fn structured_reply(nbd_client *s, const uint8_t *head)
{
    uint16_t flags = nbd_get16(head + 4), type = nbd_get16(head + 6);
    uint32_t len = nbd_get32(head + 16);
    struct slot *sl = lookup(s, nbd_get64(head + 8));
    int ret;

    if (!sl || !s->info.structured || len > s->info.max_payload + 64) {
        return -EPROTO;
    }
    switch (type) {
    case NBD_REPLY_TYPE_NONE:
        ret = len == 0 && (flags & NBD_REPLY_FLAG_DONE) ? 0 : -EPROTO;
        break;
    case NBD_REPLY_TYPE_OFFSET_DATA:
        ret = data_chunk(s, sl, len);
        break;
    case NBD_REPLY_TYPE_OFFSET_HOLE:
        ret = hole_chunk(s, sl, len);
        break;
    case NBD_REPLY_TYPE_BLOCK_STATUS:
        ret = status_chunk(s, sl, len);
        break;
    default:
        /* An error of a kind unknown yet is an error all the same. */
        ret = type & 0x8000 ? error_chunk(s, sl, len) : -EPROTO;
        break;
    }
    if (ret == 0 && (flags & NBD_REPLY_FLAG_DONE)) {
        finish_locked(s, sl);
    }
    return ret;
}

static int coroutine_fn read_reply(nbd_client *s)
{
    uint8_t head[NBD_STRUCTURED_REPLY_SIZE];
    int ret = reader_recv(s, head, 4);

    if (ret < 0) {
        return ret;
    }
    if (nbd_get32(head) == NBD_SIMPLE_REPLY_MAGIC) {
        ret = reader_recv(s, head + 4, NBD_SIMPLE_REPLY_SIZE - 4);
        return ret < 0 ? ret : simple_reply(s, head);
    }
    if (nbd_get32(head) == NBD_STRUCTURED_REPLY_MAGIC) {
        ret = reader_recv(s, head + 4, NBD_STRUCTURED_REPLY_SIZE - 4);
        return ret < 0 ? ret : structured_reply(s, head);
    }
    return -EPROTO;
}

/* ---- reconnecting ------------------------------------------------------------- */

/* Errors that mean the connection is gone (the server closed it, died or
 * is unreachable), after which a request may safely go out again. */
static bool connection_lost(int err)
{
    return err == -ECONNRESET || err == -EPIPE || err == -ENOTCONN ||
           err == -ECONNABORTED || err == -ENETRESET || err == -ENETDOWN ||
           err == -ENETUNREACH || err == -EHOSTUNREACH;
}

/* Connects again until the outage's deadline, pausing between tries
 * (0.1 s, doubling to 1 s; a server that keeps accepting and dropping
 * gets the same pauses): the new socket, or -errno.  The export must be
 * the one this device opened. */
static int coroutine_fn connect_again(nbd_client *s, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - aio_now_ns();
        if (left > 0 && s->pause_ns) {
            coblk_co_sleep_ns((int64_t)s->pause_ns < left ? s->pause_ns
                                                          : (uint64_t)left);
            left = deadline - aio_now_ns();
        }
        if (left <= 0) {
            return blk_error(-EIO, "nbd: the server did not come back "
                             "within %" PRIu64 " s (reconnect-delay)",
                             s->reconnect_ns / 1000000000u);
        }
        s->pause_ns = !s->pause_ns ? 100000000u
                      : s->pause_ns * 2 < 1000000000u ? s->pause_ns * 2
                                                      : 1000000000u;
        struct nbd_export_info info;
        unsigned limit_s = (unsigned)((left + 999999999) / 1000000000);
        int fd = nbd_client_connect(&s->uri, &info, limit_s);
        if (fd >= 0 && (info.size != s->info.size ||
                        info.tx_flags != s->info.tx_flags ||
                        info.structured != s->info.structured ||
                        info.has_allocation != s->info.has_allocation ||
                        info.min_block != s->info.min_block ||
                        info.max_payload != s->info.max_payload)) {
            close(fd);
            return blk_error(-EIO, "nbd: the export changed while "
                             "reconnecting: size or flags differ");
        }
        if (fd >= 0) {
            s->info = info;
            return fd;
        }
    }
}

/* The connection is lost: connects again, then wakes each request still
 * awaiting a reply to send itself on the new connection.  Returns 0, or
 * -errno when the server did not come back in time. */
static int coroutine_fn recover(nbd_client *s)
{
    if (!s->outage_start) {
        s->outage_start = aio_now_ns();
        s->pause_ns = 0;
    }
    shutdown(s->fd, SHUT_RDWR);
    coblk_co_mutex_lock(&s->send_lock);
    coblk_co_mutex_lock(&s->lock);
    s->down = true;
    coblk_co_mutex_unlock(&s->lock);
    coblk_co_mutex_unlock(&s->send_lock);
    int fd = connect_again(s, s->outage_start + (int64_t)s->reconnect_ns);
    if (fd < 0) {
        return fd;
    }
    coblk_co_mutex_lock(&s->send_lock);
    coblk_co_mutex_lock(&s->lock);
    close(s->fd);
    s->fd = fd;
    s->conn++;
    s->down = false;
    s->in_start = s->in_end = 0;
    for (unsigned i = 0; i < NBD_CLIENT_SLOTS; i++) {
        struct slot *sl = &s->slots[i];
        if (sl->used && sl->awaited) {
            /* What earlier replies filled is forgotten: all comes again. */
            sl->prefix = 0;
            sl->nr_ranges = 0;
            sl->status_set = false;
            sl->error = 0;
            coblk_co_queue_next(&sl->waiter);
        }
    }
    coblk_co_mutex_unlock(&s->lock);
    coblk_co_mutex_unlock(&s->send_lock);
    return 0;
}

/* Receives replies while some are awaited.  Only the reader receives, and
 * a slot stays its requester's until finish(): the data goes in without
 * the lock, which requesters need to send. */
static void coroutine_fn reader_co(void *opaque)
{
    nbd_client *s = opaque;

    coblk_co_mutex_lock(&s->lock);
    while (s->awaited > 0 && !s->broken) {
        coblk_co_mutex_unlock(&s->lock);
        int ret = read_reply(s);
        if (ret == -ETIMEDOUT) {
            blk_error(ret, "nbd: the server sent nothing for %" PRIu64
                      " s while requests waited: connection dropped",
                      s->timeout_ns / 1000000000u);
        }
        if (ret < 0 && s->reconnect_ns && connection_lost(ret)) {
            ret = recover(s);
        }
        coblk_co_mutex_lock(&s->lock);
        if (ret < 0) {
            fail_all(s, ret);
        }
    }
    s->reader_running = false;
    coblk_co_mutex_unlock(&s->lock);
}

/* ---- requests ------------------------------------------------------------------ */

struct request {
    uint16_t type;
    uint16_t flags;
    uint64_t offset;
    uint32_t len;
    const struct iovec *iov;    /* READ's buffers, WRITE's data */
    unsigned iovcnt;
    struct coblk_block_status *status;
};

/* Takes a free slot for rq (waiting for one); NULL once broken. */
static struct slot *coroutine_fn take_slot(nbd_client *s,
                                           const struct request *rq)
{
    while (!s->broken && s->used == NBD_CLIENT_SLOTS) {
        coblk_co_queue_wait(&s->free_slot, &s->lock);
    }
    if (s->broken) {
        return NULL;
    }
    struct slot *sl;
    do {
        s->generation++;
        sl = &s->slots[s->generation % NBD_CLIENT_SLOTS];
    } while (sl->used);
    *sl = (struct slot){ .used = true, .awaited = true,
                         .cookie = s->generation, .type = rq->type,
                         .offset = rq->offset, .len = rq->len,
                         .flags = rq->flags,
                         .iov = rq->iov, .iovcnt = rq->iovcnt,
                         .status = rq->status };
    coblk_co_queue_init(&sl->waiter);
    s->used++;
    s->awaited++;
    return sl;
}

/* Sends sl's request on this connection.  send_lock held. */
static int coroutine_fn send_slot(nbd_client *s, struct slot *sl)
{
    uint8_t head[NBD_REQUEST_SIZE];
    struct iovec iov[1 + 64];
    unsigned n = 1;

    nbd_put32(head, NBD_REQUEST_MAGIC);
    nbd_put16(head + 4, sl->flags);
    nbd_put16(head + 6, sl->type);
    nbd_put64(head + 8, sl->cookie);
    nbd_put64(head + 16, sl->offset);
    nbd_put32(head + 24, sl->len);
    iov[0] = (struct iovec){ head, sizeof(head) };
    sl->conn = s->conn;
    if (sl->type != NBD_CMD_WRITE) {
        return nbd_co_sendv(s->fd, iov, n);
    }
    /* Header and data in one send where the data fits 64 pieces. */
    int ret = 0;
    for (size_t done = 0; ret == 0 && done < sl->len; n = 0) {
        size_t covered;
        n += iov_slice(sl->iov, sl->iovcnt, done, sl->len - done, iov + n, 64,
                       &covered);
        ret = nbd_co_sendv(s->fd, iov, n);
        done += covered;
    }
    return ret;
}

/* Sends sl's request, unless the connection is down (the reader wakes
 * its requester to send it once reconnected) or it went out on this
 * connection already. */
static int coroutine_fn send_request(nbd_client *s, struct slot *sl)
{
    int ret = 0;

    coblk_co_mutex_lock(&s->send_lock);
    if (!s->down && !s->broken && sl->conn != s->conn) {
        ret = send_slot(s, sl);
    }
    if (ret < 0 && s->reconnect_ns && connection_lost(ret)) {
        /* This connection's end: the reader's receive fails, it
         * reconnects, and this request goes out again. */
        shutdown(s->fd, SHUT_RDWR);
        ret = 0;
    }
    coblk_co_mutex_unlock(&s->send_lock);
    return ret;
}

static int coroutine_fn request(struct coblk_dev *dev, const struct request *rq)
{
    nbd_client *s = dev->opaque;
    coblk_aio *ctx = aio_co_context();

    if (!ctx) {
        return -EPERM;
    }
    coblk_co_mutex_lock(&s->lock);
    struct slot *sl = take_slot(s, rq);
    if (!sl) {
        coblk_co_mutex_unlock(&s->lock);
        return -EIO;
    }
    bool start_reader = !s->reader_running;
    s->reader_running = true;
    coblk_co_mutex_unlock(&s->lock);
    if (start_reader) {
        coblk_co *co = coblk_co_create(reader_co, s);
        if (!co) {
            coblk_co_mutex_lock(&s->lock);
            s->reader_running = false;
            fail_all(s, -ENOMEM);
            coblk_co_mutex_unlock(&s->lock);
        } else {
            coblk_aio_co_enter(ctx, co);    /* runs once we yield */
        }
    }
    int ret = send_request(s, sl);
    coblk_co_mutex_lock(&s->lock);
    for (;;) {
        if (ret < 0 && !s->broken) {
            fail_all(s, ret);
        }
        if (!sl->awaited) {
            break;
        }
        coblk_co_queue_wait(&sl->waiter, &s->lock);
        ret = 0;
        if (!s->down && sl->conn != s->conn) {
            /* Reconnected: this request goes out again. */
            coblk_co_mutex_unlock(&s->lock);
            ret = send_request(s, sl);
            coblk_co_mutex_lock(&s->lock);
        }
    }
    ret = sl->error;
    free(sl->ranges);
    sl->used = false;
    s->used--;
    coblk_co_queue_next(&s->free_slot);
    coblk_co_mutex_unlock(&s->lock);
    return ret;
}

/* ---- the driver ------------------------------------------------------------------ */

static bool offers(const struct coblk_dev *dev, uint16_t flag)
{
    return ((nbd_client *)dev->opaque)->info.tx_flags & flag;
}

static int coroutine_fn nbd_preadv(struct coblk_dev *dev, uint64_t offset,
                                   uint64_t bytes, const struct iovec *iov,
                                   unsigned iovcnt)
{
    struct request rq = { .type = NBD_CMD_READ, .offset = offset,
                          .len = (uint32_t)bytes, .iov = iov,
                          .iovcnt = iovcnt };
    return request(dev, &rq);
}

static int coroutine_fn nbd_pwritev(struct coblk_dev *dev, uint64_t offset,
                                    uint64_t bytes, const struct iovec *iov,
                                    unsigned iovcnt, int req_flags)
{
    struct request rq = { .type = NBD_CMD_WRITE, .offset = offset,
                          .len = (uint32_t)bytes, .iov = iov,
                          .iovcnt = iovcnt };
    if ((req_flags & COBLK_REQ_F_FUA) && offers(dev, NBD_FLAG_SEND_FUA)) {
        rq.flags = NBD_CMD_FLAG_FUA;
    }
    int ret = request(dev, &rq);
    if (ret == 0 && (req_flags & COBLK_REQ_F_FUA) && !rq.flags &&
        offers(dev, NBD_FLAG_SEND_FLUSH)) {
        struct request flush = { .type = NBD_CMD_FLUSH };
        ret = request(dev, &flush);
    }
    return ret;
}

static int coroutine_fn nbd_flush(struct coblk_dev *dev)
{
    struct request rq = { .type = NBD_CMD_FLUSH };
    return offers(dev, NBD_FLAG_SEND_FLUSH) ? request(dev, &rq) : 0;
}

/* Splits a range command at the server's limit (the length is 32 bits). */
static int coroutine_fn range(struct coblk_dev *dev, uint16_t type,
                              uint16_t flags, uint64_t offset, uint64_t bytes)
{
    uint64_t most = ((nbd_client *)dev->opaque)->info.max_payload;

    for (uint64_t done = 0; done < bytes;) {
        uint64_t len = bytes - done < most ? bytes - done : most;
        struct request rq = { .type = type, .flags = flags,
                              .offset = offset + done, .len = (uint32_t)len };
        int ret = request(dev, &rq);
        if (ret < 0) {
            return ret;
        }
        done += len;
    }
    return 0;
}

/* The server's minimum block: every request's offset and length are
 * multiples of it (it asked for that at GO). */
static uint64_t min_block(const struct coblk_dev *dev)
{
    return ((nbd_client *)dev->opaque)->info.min_block;
}

static int coroutine_fn nbd_pdiscard(struct coblk_dev *dev, uint64_t offset,
                                     uint64_t bytes)
{
    uint64_t block = min_block(dev);
    uint64_t start = (offset + block - 1) & ~(block - 1);
    uint64_t end = (offset + bytes) & ~(block - 1);

    if (!offers(dev, NBD_FLAG_SEND_TRIM)) {
        return -ENOTSUP;
    }
    /* A hint: the whole blocks inside the range. */
    return end > start ? range(dev, NBD_CMD_TRIM, 0, start, end - start) : 0;
}

static int coroutine_fn nbd_pwrite_zeroes(struct coblk_dev *dev,
                                          uint64_t offset, uint64_t bytes,
                                          int req_flags)
{
    /* Part of a block: not for this command (the caller writes zeroes). */
    if (!offers(dev, NBD_FLAG_SEND_WRITE_ZEROES) ||
        ((offset | bytes) & (min_block(dev) - 1))) {
        return -ENOTSUP;
    }
    return range(dev, NBD_CMD_WRITE_ZEROES,
                 req_flags & COBLK_REQ_F_UNMAP ? 0 : NBD_CMD_FLAG_NO_HOLE,
                 offset, bytes);
}

static int coroutine_fn nbd_block_status(struct coblk_dev *dev,
                                         uint64_t offset, uint64_t bytes,
                                         struct coblk_block_status *out)
{
    nbd_client *s = dev->opaque;

    if (!s->info.has_allocation) {
        *out = (struct coblk_block_status){
            .bytes = bytes, .host_offset = offset,
            .flags = COBLK_BS_DATA | COBLK_BS_ALLOCATED |
                     COBLK_BS_OFFSET_VALID };
        return 0;
    }
    /* Asked in whole blocks: from the block offset is in. */
    uint64_t block = min_block(dev);
    uint64_t start = offset & ~(block - 1);
    uint64_t end = (offset + bytes + block - 1) & ~(block - 1);
    uint64_t most = UINT32_MAX & ~(block > 4096 ? block - 1 : 4095);
    end = end < dev->size ? end : dev->size;
    struct request rq = { .type = NBD_CMD_BLOCK_STATUS,
                          .flags = NBD_CMD_FLAG_REQ_ONE, .offset = start,
                          .len = (uint32_t)(end - start < most ? end - start
                                                                : most),
                          .status = out };
    int ret = request(dev, &rq);
    if (ret < 0) {
        return ret;
    }
    /* The answer covers [start, start + out->bytes): from offset, what
     * of it the caller asked about. */
    uint64_t covered = start + out->bytes;
    if (covered <= offset) {
        return -EIO;            /* an extent smaller than a block */
    }
    out->bytes = (covered < offset + bytes ? covered : offset + bytes) -
                 offset;
    out->host_offset = offset;
    return 0;
}

static int nbd_open(struct coblk_dev *dev, const char *args)
{
    nbd_client *s = calloc(1, sizeof(*s));

    if (!s) {
        return blk_error(-ENOMEM, "out of memory");
    }
    int ret = nbd_uri_parse(args, &s->uri);
    if (ret == 0) {
        s->fd = ret = nbd_client_connect(&s->uri, &s->info, 0);
    }
    if (ret >= 0 && (s->info.tx_flags & NBD_FLAG_READ_ONLY) &&
        !(dev->flags & COBLK_OPEN_RDONLY)) {
        close(s->fd);
        ret = blk_error(-EROFS, "nbd: export '%s' is read-only: open it "
                        "read-only", s->uri.export_name);
    }
    if (ret < 0) {
        nbd_uri_free(&s->uri);
        free(s);
        return ret;
    }
    s->timeout_ns = s->uri.timeout_s * 1000000000ull;
    s->reconnect_ns = s->uri.reconnect_delay_s * 1000000000ull;
    s->conn = 1;
    coblk_co_mutex_init(&s->lock);
    coblk_co_mutex_init(&s->send_lock);
    coblk_co_queue_init(&s->free_slot);
    dev->opaque = s;
    dev->size = s->info.size;
    dev->offset_align = s->info.min_block;
    dev->max_transfer = s->info.max_payload;
    return 0;
}

static void nbd_close(struct coblk_dev *dev)
{
    nbd_client *s = dev->opaque;

    if (!s->broken) {
        /* A polite goodbye; the server answers nothing. */
        uint8_t disc[NBD_REQUEST_SIZE] = { 0 };
        nbd_put32(disc, NBD_REQUEST_MAGIC);
        nbd_put16(disc + 6, NBD_CMD_DISC);
        (void)!send(s->fd, disc, sizeof(disc), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    close(s->fd);
    nbd_uri_free(&s->uri);
    free(s);
}

const blk_driver blk_nbd_driver = {
    .name = "nbd",
    .open = nbd_open,
    .close = nbd_close,
    .co_preadv = nbd_preadv,
    .co_pwritev = nbd_pwritev,
    .co_flush = nbd_flush,
    .co_pdiscard = nbd_pdiscard,
    .co_pwrite_zeroes = nbd_pwrite_zeroes,
    .co_block_status = nbd_block_status,
};

/*
 * The NBD server's state, shared by its handshake (handshake.c) and its
 * transmission phase (server.c).
 */
#ifndef COBLK_NBD_SERVER_INT_H
#define COBLK_NBD_SERVER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "blk-int.h"
#include "coblk/co-lock.h"
#include "coblk/nbd.h"

/* Payload bytes (WRITE data, READ buffers) one connection holds at once,
 * and requests it runs at once: a client sending faster than the device
 * goes waits for room, memory stays bounded. */
#define NBD_CONN_BUFFERED_MAX (64u << 20)
#define NBD_CONN_REQUESTS_MAX 256u

/* Option data a client may send, beyond which it is disconnected: room
 * for a name and a few meta context queries. */
#define NBD_OPTION_MAX (64u << 10)

/* Meta contexts, by id: the bit a connection selects them with. */
enum {
    NBD_META_ALLOCATION = 0,        /* base:allocation */
    NBD_META_DEPTH = 1,             /* qemu:allocation-depth */
    NBD_META_COUNT
};

struct coblk_nbd_server {
    struct coblk_dev *dev;
    coblk_aio *ctx;
    char *name;
    char *description;              /* NULL: none */
    bool read_only;
    bool allocation_depth;
    unsigned max_clients;           /* 0: no limit */
    uint64_t size;                  /* the export's, at creation */
    struct nbd_conn *conns;
    struct coblk_nbd_server_stats stats;
    int listen_fd;                  /* -1: not listening */
    bool accepting;                 /* the accept coroutine runs */
    bool closing;
    coblk_co_queue room;            /* the acceptor, waiting for a slot */
    uint64_t handshake_limit_ns;    /* UINT64_MAX: none */
    unsigned handshaking;           /* connections in their handshake */
    bool watching;                  /* watch_handshakes() runs */
};

struct nbd_conn {
    struct coblk_nbd_server *srv;
    struct nbd_conn *next, *prev;
    int fd;
    bool no_zeroes;
    bool structured;                /* structured replies negotiated */
    unsigned meta;                  /* selected contexts: 1u << NBD_META_* */
    bool broken;                    /* a send failed: stop */
    uint64_t handshake_deadline;    /* CLOCK_MONOTONIC ns; 0: done */
    coblk_co_mutex send_lock;       /* one reply on the wire at a time */
    unsigned requests;              /* running */
    uint64_t buffered;              /* their payload bytes */
    coblk_co_queue settled;         /* the receiver, waiting for those */
    /* Received, not parsed yet: a burst of requests arrives in one
     * receive, not one receive each. */
    uint8_t *inbuf;
    uint32_t in_start, in_end;
};

/* The receive buffer of a connection. */
#define NBD_CONN_INBUF (64u << 10)

/* The export's transmission flags for a connection. */
uint16_t nbd_server_tx_flags(const struct nbd_conn *c);

/* Runs the handshake: 0 when transmission begins, or negative when the
 * connection ends (the client aborted or broke the protocol, which
 * counts). */
int coroutine_fn nbd_handshake(struct nbd_conn *c);

#endif /* COBLK_NBD_SERVER_INT_H */

/*
 * The NBD client driver's state, shared by its handshake
 * (client-handshake.c, blocking, at open) and its transmission phase
 * (client.c, coroutines on the ring).
 */
#ifndef COBLK_NBD_CLIENT_INT_H
#define COBLK_NBD_CLIENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "blk-int.h"
#include "coblk/co-lock.h"
#include "uri.h"

/* Requests on the wire at once. */
#define NBD_CLIENT_SLOTS 128u

/* What the server said at the handshake. */
struct nbd_export_info {
    uint64_t size;
    uint16_t tx_flags;
    bool structured;            /* structured replies on */
    bool has_allocation;        /* base:allocation selected ... */
    uint32_t allocation_id;     /* ... with this id */
    uint32_t min_block;         /* 1 unless the server asks more */
    uint32_t max_payload;
};

/* Connects to uri's server and negotiates its export (blocking: each
 * step of it within limit_s seconds, or 30 s where that is 0 or more).
 * Returns the connected socket, or -errno with a message naming the
 * server and what failed. */
int nbd_client_connect(const struct nbd_uri *uri,
                       struct nbd_export_info *info, unsigned limit_s);

#endif /* COBLK_NBD_CLIENT_INT_H */

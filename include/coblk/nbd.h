/*
 * coblk NBD export: serves a coblk device over the Network Block Device
 * protocol (fixed newstyle, structured replies, base:allocation block
 * status), each NBD request a coroutine on the device.
 *
 * A server belongs to the thread that creates it, and runs in that
 * thread's event loop: call every function here on that thread, and
 * run the loop (coblk_aio_poll()) for the connections to make progress.
 * The caller keeps its sockets: the server takes the ones it is given.
 */
#ifndef COBLK_NBD_H
#define COBLK_NBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coblk/coblk.h"

#ifdef __cplusplus
extern "C" {
#endif

struct coblk_nbd_server;

struct coblk_nbd_export_opts {
    const char *name;           /* the export's name; NULL: "" (default) */
    const char *description;    /* shown by clients that list; NULL: none */
    bool read_only;             /* writes fail with EPERM */
    /* Clients served at once; 0: no limit.  Others wait to be accepted.
     * Other than 1, the export advertises multi-conn (all connections
     * see each other's flushed writes: they share the device). */
    unsigned max_clients;
    bool allocation_depth;      /* offer the qemu:allocation-depth context */
    /* Seconds a client has to finish the handshake before it is
     * disconnected: 0 means 10; UINT_MAX, no limit. */
    unsigned handshake_limit;
};

/* Creates a server exporting dev (which must outlive it) with opts.
 * opts_size is sizeof(struct coblk_nbd_export_opts) as the caller knows
 * it.  Returns 0, or -EINVAL (no device, a name or description over 4096
 * bytes) or -ENOMEM. */
COBLK_API int coblk_nbd_server_new(struct coblk_dev *dev,
                                   const struct coblk_nbd_export_opts *opts,
                                   size_t opts_size,
                                   struct coblk_nbd_server **out);

/* Accepts clients on listen_fd (a listening stream socket, which the
 * server closes when freed) from now on; at most one per server.
 * Returns 0, -EINVAL or -EBUSY (already listening). */
COBLK_API int coblk_nbd_server_listen(struct coblk_nbd_server *srv,
                                      int listen_fd);

/* Serves one connected stream socket, which the server now owns.
 * Returns 0 (the handshake runs in the event loop), -EINVAL or -ENOMEM
 * (the socket is closed). */
COBLK_API int coblk_nbd_server_add_client(struct coblk_nbd_server *srv,
                                          int fd);

struct coblk_nbd_server_stats {
    unsigned clients;           /* connected now */
    uint64_t clients_done;      /* connections closed since creation */
    uint64_t requests;          /* NBD requests answered */
    uint64_t protocol_errors;   /* connections dropped for breaking the
                                   protocol */
    uint64_t handshake_timeouts;    /* dropped for not finishing the
                                       handshake in time */
};

/* Fills stats (size: sizeof as the caller knows it).  Returns 0 or
 * -EINVAL. */
COBLK_API int coblk_nbd_server_stats(struct coblk_nbd_server *srv,
                                     struct coblk_nbd_server_stats *stats,
                                     size_t size);

/* Stops accepting, disconnects every client after the requests in flight
 * finish, and frees the server.  Runs the event loop meanwhile. */
COBLK_API void coblk_nbd_server_free(struct coblk_nbd_server *srv);

#ifdef __cplusplus
}
#endif

#endif /* COBLK_NBD_H */

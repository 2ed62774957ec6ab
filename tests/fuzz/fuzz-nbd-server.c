/*
 * Fuzzing the NBD server's handshake and request parser (command line:
 * engine.h).  One input is what a client sends: it goes to a server
 * exporting null:size=1M (read-write, base:allocation and
 * qemu:allocation-depth offered) over a socketpair, the client's end then
 * half-closed; the server's replies are drained until it hangs up.  A
 * crash, a hang (the server still holding the connection after a bounded
 * wait), a leak or a sanitizer report fails; refusals and disconnects
 * are the server doing its job.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "coblk/aio.h"
#include "coblk/coblk.h"
#include "coblk/nbd.h"
#include "engine.h"

/* How long one input may keep the server busy. */
#define INPUT_SECONDS 5

static struct coblk_dev *dev;
static struct coblk_nbd_server *srv;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned open_clients(void)
{
    struct coblk_nbd_server_stats st;

    coblk_nbd_server_stats(srv, &st, sizeof(st));
    return st.clients;
}

/* Sends data, reads and drops replies, and runs the server, until the
 * server has hung up and let the connection go. */
static void converse(int fd, const uint8_t *data, size_t size)
{
    static uint8_t sink[65536];
    double limit = now_s() + INPUT_SECONDS;
    size_t sent = 0;
    bool open = true;

    while (open || open_clients() > 0) {
        if (now_s() > limit) {
            fprintf(stderr, "fuzz-nbd-server: the server still holds the "
                    "connection after %d s: a hang\n", INPUT_SECONDS);
            abort();
        }
        if (sent < size) {
            ssize_t n = send(fd, data + sent, size - sent,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
            sent += n > 0 ? (size_t)n : 0;
            if (n < 0 && errno != EAGAIN) {
                sent = size;        /* the server hung up */
            }
            if (sent == size) {
                shutdown(fd, SHUT_WR);
            }
        }
        ssize_t got;
        while ((got = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0) {
        }
        if (got == 0 || (got < 0 && errno != EAGAIN)) {
            open = false;
        }
        coblk_aio_poll(coblk_aio_current(), false);
    }
}

static void one_input(const uint8_t *data, size_t size)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        perror("fuzz-nbd-server: socketpair");
        exit(1);
    }
    if (size == 0) {
        shutdown(sv[0], SHUT_WR);
    }
    if (coblk_nbd_server_add_client(srv, sv[1]) < 0) {
        fprintf(stderr, "fuzz-nbd-server: %s\n", coblk_last_error());
        exit(1);
    }
    converse(sv[0], data, size);
    close(sv[0]);
}

int main(int argc, char **argv)
{
    static const struct fuzz_target target = {
        .name = "fuzz-nbd-server", .ext = "nbd", .hot_bytes = 256,
        .one_input = one_input,
    };
    struct coblk_nbd_export_opts opts = { .name = "disk",
                                          .allocation_depth = true };

    if (coblk_dev_open("null:size=1M", 0, &dev) < 0 ||
        coblk_nbd_server_new(dev, &opts, sizeof(opts), &srv) < 0) {
        fprintf(stderr, "fuzz-nbd-server: %s\n", coblk_last_error());
        return 1;
    }
    int ret = fuzz_main(&target, argc, argv);
    coblk_nbd_server_free(srv);
    coblk_dev_close(dev);
    return ret;
}

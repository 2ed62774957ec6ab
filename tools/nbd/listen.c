/*
 * coblk-nbd's listening socket: TCP (-b, -p) or Unix (-k).
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "nbd.h"

/* A socket left at path by a server that died (nothing accepts on it):
 * removed, as qemu-nbd replaces it, so that a restart can bind.  A socket
 * some server still listens on stays, and the bind fails. */
static void remove_stale_socket(const struct sockaddr_un *addr)
{
    struct stat st;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd >= 0 && lstat(addr->sun_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
        connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 &&
        errno == ECONNREFUSED) {
        unlink(addr->sun_path);
    }
    if (fd >= 0) {
        close(fd);
    }
}

static int listen_unix(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    if (strlen(path) >= sizeof(addr.sun_path)) {
        nbd_error("socket path '%s' is too long (at most %zu bytes)", path,
                  sizeof(addr.sun_path) - 1);
        return -1;
    }
    strcpy(addr.sun_path, path);
    remove_stale_socket(&addr);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        listen(fd, SOMAXCONN) < 0) {
        nbd_error("Failed to bind socket to %s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static int listen_tcp(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC,
                              .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE };
    struct addrinfo *list;
    int err = getaddrinfo(host, port, &hints, &list);

    if (err) {
        nbd_error("address resolution failed for %s:%s: %s",
                  host ? host : "0.0.0.0", port, gai_strerror(err));
        return -1;
    }
    int fd = -1, last = 0;
    for (struct addrinfo *a = list; a && fd < 0; a = a->ai_next) {
        int one = 1;
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
                    a->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) < 0 ||
            listen(fd, SOMAXCONN) < 0) {
            last = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(list);
    if (fd < 0) {
        nbd_error("Failed to bind socket to %s:%s: %s",
                  host ? host : "0.0.0.0", port, strerror(last));
    }
    return fd;
}

int nbd_listen(const struct nbd_options *o)
{
    if (o->socket_path) {
        return listen_unix(o->socket_path);
    }
    /* Without -b, IPv4's any address, as qemu-nbd. */
    return listen_tcp(o->bind ? o->bind : "0.0.0.0", o->port);
}

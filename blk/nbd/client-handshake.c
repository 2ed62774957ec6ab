/*
 * The NBD client's handshake: connect, fixed newstyle, structured replies,
 * base:allocation, then NBD_OPT_GO (NBD_OPT_EXPORT_NAME for servers that
 * do not know GO).  Runs once, at open, with blocking calls under a time
 * limit; every length the server sends is checked before use.
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "client-int.h"
#include "proto.h"

/* How long the server may take to answer a step of the handshake. */
#define HANDSHAKE_SECONDS 30

/* Option replies longer than this are refused (an export's name and
 * description, a context's name). */
#define REPLY_MAX (64u << 10)

struct hs {
    int fd;
    const struct nbd_uri *uri;
    const char *server;         /* for messages */
};

static int send_all(struct hs *h, const void *buf, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = send(h->fd, (const char *)buf + done, len - done,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return blk_error(-errno, "nbd: %s: sending: %s", h->server,
                             strerror(errno));
        }
        done += (size_t)n;
    }
    return 0;
}

static int recv_all(struct hs *h, void *buf, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = recv(h->fd, (char *)buf + done, len - done, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0) {
            return blk_error(-ECONNRESET, "nbd: %s: the server closed the "
                             "connection during the handshake", h->server);
        }
        if (n < 0) {
            return blk_error(-errno, "nbd: %s: %s", h->server,
                             errno == EAGAIN ? "no answer within the time "
                             "limit" : strerror(errno));
        }
        done += (size_t)n;
    }
    return 0;
}

static int protocol_error(struct hs *h, const char *what)
{
    return blk_error(-EPROTO, "nbd: %s: the server broke the protocol: %s",
                     h->server, what);
}

static int send_option(struct hs *h, uint32_t opt, const void *data,
                       uint32_t len)
{
    uint8_t head[16];

    nbd_put64(head, NBD_OPTS_MAGIC);
    nbd_put32(head + 8, opt);
    nbd_put32(head + 12, len);
    int ret = send_all(h, head, sizeof(head));
    return ret < 0 || !len ? ret : send_all(h, data, len);
}

/* One option reply to opt: its type; its data (NUL-terminated, at most
 * REPLY_MAX bytes) into *data, to free. */
static int64_t recv_reply(struct hs *h, uint32_t opt, uint8_t **data,
                          uint32_t *len)
{
    uint8_t head[20];
    int ret = recv_all(h, head, sizeof(head));

    if (ret < 0) {
        return ret;
    }
    *len = nbd_get32(head + 16);
    if (nbd_get64(head) != NBD_REP_MAGIC || nbd_get32(head + 8) != opt ||
        *len > REPLY_MAX) {
        return protocol_error(h, "a malformed option reply");
    }
    *data = malloc(*len + 1);
    if (!*data) {
        return blk_error(-ENOMEM, "out of memory");
    }
    ret = recv_all(h, *data, *len);
    if (ret < 0) {
        free(*data);
        return ret;
    }
    (*data)[*len] = 0;
    return nbd_get32(head + 12);
}

/* Turns an error reply into -errno with the server's words. */
static int option_failed(struct hs *h, const char *what, uint32_t type,
                         const uint8_t *msg)
{
    int err = type == NBD_REP_ERR_UNKNOWN ? -ENOENT
              : type == NBD_REP_ERR_UNSUP ? -ENOTSUP
              : type == NBD_REP_ERR_TLS_REQD ? -EACCES
              : type == NBD_REP_ERR_SHUTDOWN ? -ESHUTDOWN : -EINVAL;
    return blk_error(err, "nbd: %s: %s failed%s%s", h->server, what,
                     *msg ? ": " : "", (const char *)msg);
}

/* Asks for structured replies; false if the server does not do them. */
static int negotiate_structured(struct hs *h, struct nbd_export_info *info)
{
    uint8_t *data;
    uint32_t len;
    int ret = send_option(h, NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    int64_t type = ret < 0 ? ret
                           : recv_reply(h, NBD_OPT_STRUCTURED_REPLY, &data,
                                        &len);
    if (type < 0) {
        return (int)type;
    }
    free(data);
    info->structured = type == NBD_REP_ACK;
    return 0;
}

/* Selects base:allocation, or the context the URI names, for block
 * status: another context's flags read as base:allocation's (QEMU's
 * x-dirty-bitmap: a dirty bit is a hole). */
static int negotiate_allocation(struct hs *h, struct nbd_export_info *info)
{
    const char *context = h->uri->meta_context ? h->uri->meta_context
                                               : "base:allocation";
    const char *name = h->uri->export_name;
    uint32_t name_len = (uint32_t)strlen(name);
    uint32_t len = 4 + name_len + 4 + 4 + (uint32_t)strlen(context);
    uint8_t *req = malloc(len);

    if (!req) {
        return blk_error(-ENOMEM, "out of memory");
    }
    nbd_put32(req, name_len);
    memcpy(req + 4, name, name_len);
    nbd_put32(req + 4 + name_len, 1);
    nbd_put32(req + 8 + name_len, (uint32_t)strlen(context));
    memcpy(req + 12 + name_len, context, strlen(context));
    int ret = send_option(h, NBD_OPT_SET_META_CONTEXT, req, len);
    free(req);
    while (ret == 0) {
        uint8_t *data;
        uint32_t n;
        int64_t type = recv_reply(h, NBD_OPT_SET_META_CONTEXT, &data, &n);
        if (type < 0) {
            return (int)type;
        }
        if (type == NBD_REP_META_CONTEXT && n == 4 + strlen(context) &&
            !memcmp(data + 4, context, strlen(context))) {
            info->has_allocation = true;
            info->allocation_id = nbd_get32(data);
        }
        free(data);
        if (type != NBD_REP_META_CONTEXT) {
            break;      /* ACK, or an error: no block status then */
        }
    }
    return ret;
}

/* One NBD_REP_INFO of GO's answer. */
static int take_info(struct hs *h, const uint8_t *data, uint32_t len,
                     struct nbd_export_info *info, bool *have_export)
{
    if (len < 2) {
        return protocol_error(h, "an empty NBD_REP_INFO");
    }
    switch (nbd_get16(data)) {
    case NBD_INFO_EXPORT:
        if (len != 12) {
            return protocol_error(h, "NBD_INFO_EXPORT of a wrong length");
        }
        info->size = nbd_get64(data + 2);
        info->tx_flags = nbd_get16(data + 10);
        *have_export = true;
        return 0;
    case NBD_INFO_BLOCK_SIZE: {
        if (len != 14) {
            return protocol_error(h, "NBD_INFO_BLOCK_SIZE of a wrong length");
        }
        uint32_t min = nbd_get32(data + 2), pref = nbd_get32(data + 6);
        uint32_t max = nbd_get32(data + 10);
        if (!min || min > 65536 || (min & (min - 1)) || pref < min ||
            max < min) {
            return protocol_error(h, "impossible block sizes");
        }
        info->min_block = min;
        info->max_payload = max < NBD_MAX_PAYLOAD ? max & ~(min - 1)
                                                  : NBD_MAX_PAYLOAD;
        return 0;
    }
    default:
        return 0;       /* names, descriptions: nothing to keep */
    }
}

/* NBD_OPT_GO: 1 if the server does not know it. */
static int go(struct hs *h, struct nbd_export_info *info)
{
    const char *name = h->uri->export_name;
    uint32_t name_len = (uint32_t)strlen(name);
    uint8_t *req = malloc(4 + name_len + 4);
    bool have_export = false;

    if (!req) {
        return blk_error(-ENOMEM, "out of memory");
    }
    nbd_put32(req, name_len);
    memcpy(req + 4, name, name_len);
    nbd_put16(req + 4 + name_len, 1);
    nbd_put16(req + 6 + name_len, NBD_INFO_BLOCK_SIZE);
    int ret = send_option(h, NBD_OPT_GO, req, 8 + name_len);
    free(req);
    while (ret == 0) {
        uint8_t *data;
        uint32_t len;
        int64_t type = recv_reply(h, NBD_OPT_GO, &data, &len);
        if (type < 0) {
            return (int)type;
        }
        if (type == NBD_REP_INFO) {
            ret = take_info(h, data, len, info, &have_export);
        } else if (type == NBD_REP_ACK) {
            ret = have_export ? 2 : protocol_error(h, "GO without the "
                                                   "export's size");
        } else if (type == NBD_REP_ERR_UNSUP) {
            ret = 1;
        } else if (type & (1u << 31)) {
            char what[NBD_MAX_STRING + 32];
            snprintf(what, sizeof(what), "opening export '%s'", name);
            ret = option_failed(h, what, (uint32_t)type, data);
        } else {
            ret = protocol_error(h, "an unexpected reply to GO");
        }
        free(data);
    }
    return ret == 2 ? 0 : ret;
}

/* The old way: NBD_OPT_EXPORT_NAME. */
static int export_name(struct hs *h, bool no_zeroes,
                       struct nbd_export_info *info)
{
    uint8_t rep[10 + 124];
    const char *name = h->uri->export_name;
    int ret = send_option(h, NBD_OPT_EXPORT_NAME, name,
                          (uint32_t)strlen(name));

    if (ret == 0) {
        ret = recv_all(h, rep, no_zeroes ? 10 : sizeof(rep));
    }
    if (ret < 0) {
        return ret == -ECONNRESET
                   ? blk_error(-ENOENT, "nbd: %s: no export '%s'", h->server,
                               name)
                   : ret;
    }
    info->size = nbd_get64(rep);
    info->tx_flags = nbd_get16(rep + 8);
    return 0;
}

static int negotiate(struct hs *h, struct nbd_export_info *info)
{
    uint8_t hello[18];
    int ret = recv_all(h, hello, sizeof(hello));

    if (ret < 0) {
        return ret;
    }
    if (nbd_get64(hello) != NBD_MAGIC) {
        return protocol_error(h, "no NBD server answered");
    }
    uint16_t flags = nbd_get16(hello + 16);
    if (nbd_get64(hello + 8) != NBD_OPTS_MAGIC ||
        !(flags & NBD_FLAG_FIXED_NEWSTYLE)) {
        return blk_error(-ENOTSUP, "nbd: %s: the server does not speak the "
                         "fixed newstyle handshake", h->server);
    }
    bool no_zeroes = flags & NBD_FLAG_NO_ZEROES;
    uint8_t client[4];
    nbd_put32(client, NBD_FLAG_C_FIXED_NEWSTYLE |
                          (no_zeroes ? NBD_FLAG_C_NO_ZEROES : 0));
    *info = (struct nbd_export_info){ .min_block = 1,
                                      .max_payload = NBD_MAX_PAYLOAD };
    ret = send_all(h, client, sizeof(client));
    if (ret == 0) {
        ret = negotiate_structured(h, info);
    }
    if (ret == 0 && info->structured) {
        ret = negotiate_allocation(h, info);
    }
    if (ret == 0) {
        ret = go(h, info);
    }
    if (ret == 1) {
        ret = export_name(h, no_zeroes, info);
    }
    if (ret == 0 && !(info->tx_flags & NBD_FLAG_HAS_FLAGS)) {
        info->tx_flags = NBD_FLAG_HAS_FLAGS;
    }
    return ret;
}

static void set_time_limit(int fd, int seconds)
{
    struct timeval tv = { .tv_sec = seconds };

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int connect_unix(const char *path, const char *server, int limit_s)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    if (strlen(path) >= sizeof(addr.sun_path)) {
        return blk_error(-ENAMETOOLONG, "nbd: %s: the socket path is too "
                         "long", server);
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        set_time_limit(fd, limit_s);    /* connect() too, Linux honours it */
    }
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int err = errno;
        if (fd >= 0) {
            close(fd);
        }
        return blk_error(-err, "nbd: cannot connect to %s: %s", server,
                         strerror(err));
    }
    return fd;
}

static int connect_tcp(const char *host, const char *port, const char *server,
                       int limit_s)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
    struct addrinfo *list;
    int err = getaddrinfo(host, port, &hints, &list);

    if (err) {
        return blk_error(-EHOSTUNREACH, "nbd: cannot resolve %s: %s", server,
                         gai_strerror(err));
    }
    int fd = -1, last = 0;
    for (struct addrinfo *a = list; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC,
                    a->ai_protocol);
        if (fd >= 0) {
            set_time_limit(fd, limit_s);
        }
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) < 0) {
            last = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(list);
    if (fd < 0) {
        return blk_error(-last, "nbd: cannot connect to %s: %s", server,
                         strerror(last));
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int nbd_client_connect(const struct nbd_uri *uri,
                       struct nbd_export_info *info, unsigned limit_s)
{
    char server[512];

    if (uri->unix_socket) {
        snprintf(server, sizeof(server), "%s", uri->socket);
    } else {
        snprintf(server, sizeof(server), "%s:%s", uri->host, uri->port);
    }
    int limit = (int)(limit_s && limit_s < HANDSHAKE_SECONDS
                          ? limit_s : HANDSHAKE_SECONDS);
    int fd = uri->unix_socket ? connect_unix(uri->socket, server, limit)
                              : connect_tcp(uri->host, uri->port, server,
                                            limit);
    if (fd < 0) {
        return fd;
    }
    struct hs h = { .fd = fd, .uri = uri, .server = server };
    int ret = negotiate(&h, info);
    if (ret < 0) {
        close(fd);
        return ret;
    }
    set_time_limit(fd, 0);      /* the ring's requests wait as long as
                                 * they take */
    return fd;
}

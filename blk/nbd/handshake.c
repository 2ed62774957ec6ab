/*
 * The NBD server's handshake: fixed newstyle option haggling, ending in
 * NBD_OPT_GO (or the old NBD_OPT_EXPORT_NAME).  Every length a client
 * sends is checked against what it holds before anything is read from it.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "server-int.h"
#include "sock.h"

/* What is left of an option's data, read front to back. */
struct reader {
    const uint8_t *p;
    uint32_t left;
};

static bool take32(struct reader *r, uint32_t *v)
{
    if (r->left < 4) {
        return false;
    }
    *v = nbd_get32(r->p);
    r->p += 4;
    r->left -= 4;
    return true;
}

static bool take16(struct reader *r, uint16_t *v)
{
    if (r->left < 2) {
        return false;
    }
    *v = nbd_get16(r->p);
    r->p += 2;
    r->left -= 2;
    return true;
}

/* A string of len bytes: points *s at it. */
static bool take_string(struct reader *r, uint32_t len, const uint8_t **s)
{
    if (len > NBD_MAX_STRING || len > r->left) {
        return false;
    }
    *s = r->p;
    r->p += len;
    r->left -= len;
    return true;
}

/* A name and length-prefixed string: the length first. */
static bool take_lstring(struct reader *r, const uint8_t **s, uint32_t *len)
{
    return take32(r, len) && take_string(r, *len, s);
}

static bool is_export(const struct coblk_nbd_server *srv, const uint8_t *name,
                      uint32_t len)
{
    return strlen(srv->name) == len &&
           (len == 0 || memcmp(srv->name, name, len) == 0);
}

static int coroutine_fn send_rep(struct nbd_conn *c, uint32_t opt,
                                 uint32_t type, const void *data,
                                 size_t len)
{
    uint8_t head[20];

    nbd_put64(head, NBD_REP_MAGIC);
    nbd_put32(head + 8, opt);
    nbd_put32(head + 12, type);
    nbd_put32(head + 16, (uint32_t)len);
    struct iovec iov[2] = { { head, sizeof(head) },
                            { (void *)data, len } };
    return nbd_co_sendv(c->fd, iov, 2);
}

static int coroutine_fn __attribute__((format(printf, 4, 5)))
send_error(struct nbd_conn *c, uint32_t opt, uint32_t type,
           const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return send_rep(c, opt, type, msg, strlen(msg));
}

static int coroutine_fn send_ack(struct nbd_conn *c, uint32_t opt)
{
    return send_rep(c, opt, NBD_REP_ACK, NULL, 0);
}

/* ---- NBD_OPT_LIST -------------------------------------------------------- */

static int coroutine_fn opt_list(struct nbd_conn *c, uint32_t len)
{
    const struct coblk_nbd_server *srv = c->srv;

    if (len != 0) {
        return send_error(c, NBD_OPT_LIST, NBD_REP_ERR_INVALID,
                          "NBD_OPT_LIST takes no data");
    }
    size_t name_len = strlen(srv->name);
    size_t desc_len = srv->description ? strlen(srv->description) : 0;
    uint8_t *rep = malloc(4 + name_len + desc_len);
    if (!rep) {
        return -ENOMEM;
    }
    nbd_put32(rep, (uint32_t)name_len);
    memcpy(rep + 4, srv->name, name_len);
    if (desc_len) {
        memcpy(rep + 4 + name_len, srv->description, desc_len);
    }
    int ret = send_rep(c, NBD_OPT_LIST, NBD_REP_SERVER, rep,
                       4 + name_len + desc_len);
    free(rep);
    return ret < 0 ? ret : send_ack(c, NBD_OPT_LIST);
}

/* ---- NBD_OPT_INFO and NBD_OPT_GO ------------------------------------------- */

static int coroutine_fn send_info(struct nbd_conn *c, uint32_t opt,
                                  uint16_t type, const void *data,
                                  size_t len)
{
    uint8_t rep[2 + NBD_MAX_STRING];

    nbd_put16(rep, type);
    memcpy(rep + 2, data, len);
    return send_rep(c, opt, NBD_REP_INFO, rep, 2 + len);
}

static int coroutine_fn send_infos(struct nbd_conn *c, uint32_t opt,
                                   bool name_asked)
{
    const struct coblk_nbd_server *srv = c->srv;
    uint8_t export[10], sizes[12];

    nbd_put64(export, srv->dev->size);
    nbd_put16(export + 8, nbd_server_tx_flags(c));
    /* Any offset and length (the block layer bounces what the device
     * cannot take), 4 KiB preferred, 32 MiB at most. */
    nbd_put32(sizes, 1);
    nbd_put32(sizes + 4, 4096);
    nbd_put32(sizes + 8, NBD_MAX_PAYLOAD);
    int ret = send_info(c, opt, NBD_INFO_EXPORT, export, sizeof(export));
    if (ret == 0) {
        ret = send_info(c, opt, NBD_INFO_BLOCK_SIZE, sizes, sizeof(sizes));
    }
    if (ret == 0 && name_asked) {
        ret = send_info(c, opt, NBD_INFO_NAME, srv->name, strlen(srv->name));
    }
    if (ret == 0 && srv->description) {
        ret = send_info(c, opt, NBD_INFO_DESCRIPTION, srv->description,
                        strlen(srv->description));
    }
    return ret;
}

/* Returns 1 when GO succeeded: transmission begins. */
static int coroutine_fn opt_info(struct nbd_conn *c, uint32_t opt,
                                 const uint8_t *data, uint32_t len)
{
    struct reader r = { data, len };
    const uint8_t *name;
    uint32_t name_len;
    uint16_t n;
    bool name_asked = false;

    if (!take_lstring(&r, &name, &name_len) || !take16(&r, &n) ||
        r.left != 2u * n) {
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "malformed NBD_OPT_%s", opt == NBD_OPT_GO ? "GO"
                                                                    : "INFO");
    }
    for (uint16_t i = 0; i < n; i++) {
        uint16_t type = 0;
        take16(&r, &type);      /* r.left was checked */
        name_asked |= type == NBD_INFO_NAME;
    }
    if (!is_export(c->srv, name, name_len)) {
        return send_error(c, opt, NBD_REP_ERR_UNKNOWN,
                          "export '%.*s' not present", (int)name_len,
                          (const char *)name);
    }
    int ret = send_infos(c, opt, name_asked);
    if (ret == 0) {
        ret = send_ack(c, opt);
    }
    return ret < 0 ? ret : opt == NBD_OPT_GO;
}

/* ---- NBD_OPT_EXPORT_NAME -------------------------------------------------- */

/* Returns 1: transmission begins (or negative: the connection ends; no
 * error can be sent for this option). */
static int coroutine_fn opt_export_name(struct nbd_conn *c,
                                        const uint8_t *data, uint32_t len)
{
    uint8_t rep[10 + 124] = { 0 };

    if (len > NBD_MAX_STRING || !is_export(c->srv, data, len)) {
        return -ENOENT;
    }
    nbd_put64(rep, c->srv->dev->size);
    nbd_put16(rep + 8, nbd_server_tx_flags(c));
    struct iovec iov = { rep, c->no_zeroes ? 10 : sizeof(rep) };
    int ret = nbd_co_sendv(c->fd, &iov, 1);
    return ret < 0 ? ret : 1;
}

/* ---- meta contexts ----------------------------------------------------------- */

static const char *const meta_names[NBD_META_COUNT] = {
    [NBD_META_ALLOCATION] = "base:allocation",
    [NBD_META_DEPTH] = "qemu:allocation-depth",
};

static unsigned meta_offered(const struct coblk_nbd_server *srv)
{
    return 1u << NBD_META_ALLOCATION |
           (srv->allocation_depth ? 1u << NBD_META_DEPTH : 0);
}

/* The contexts a query names (a LIST query may be a namespace). */
static unsigned meta_match(const struct coblk_nbd_server *srv,
                           const uint8_t *q, uint32_t len, bool list)
{
    unsigned found = 0;

    for (unsigned id = 0; id < NBD_META_COUNT; id++) {
        const char *name = meta_names[id];
        size_t ns = strchr(name, ':') + 1 - name;
        if ((strlen(name) == len && memcmp(name, q, len) == 0) ||
            (list && len == ns && memcmp(name, q, ns) == 0)) {
            found |= 1u << id;
        }
    }
    return found & meta_offered(srv);
}

static int coroutine_fn opt_meta_context(struct nbd_conn *c, uint32_t opt,
                                         const uint8_t *data, uint32_t len)
{
    bool set = opt == NBD_OPT_SET_META_CONTEXT;
    struct reader r = { data, len };
    const uint8_t *name;
    uint32_t name_len, queries;
    unsigned chosen = 0;

    if (set) {
        c->meta = 0;    /* replaced even when it fails */
    }
    if (set && !c->structured) {
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "structured replies must be negotiated first");
    }
    if (!take_lstring(&r, &name, &name_len) || !take32(&r, &queries)) {
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "malformed meta context request");
    }
    for (uint32_t i = 0; i < queries; i++) {
        const uint8_t *q;
        uint32_t q_len;
        if (!take_lstring(&r, &q, &q_len)) {
            return send_error(c, opt, NBD_REP_ERR_INVALID,
                              "malformed meta context query %u", i);
        }
        chosen |= meta_match(c->srv, q, q_len, !set);
    }
    if (r.left != 0) {
        return send_error(c, opt, NBD_REP_ERR_INVALID,
                          "%u bytes after the meta context queries", r.left);
    }
    if (!is_export(c->srv, name, name_len)) {
        return send_error(c, opt, NBD_REP_ERR_UNKNOWN,
                          "export '%.*s' not present", (int)name_len,
                          (const char *)name);
    }
    if (!set && queries == 0) {
        chosen = meta_offered(c->srv);
    }
    for (unsigned id = 0; id < NBD_META_COUNT; id++) {
        if (chosen & 1u << id) {
            uint8_t rep[4 + 32];
            size_t n = strlen(meta_names[id]);
            nbd_put32(rep, set ? id : 0);
            memcpy(rep + 4, meta_names[id], n);
            int ret = send_rep(c, opt, NBD_REP_META_CONTEXT, rep, 4 + n);
            if (ret < 0) {
                return ret;
            }
        }
    }
    if (set) {
        c->meta = chosen;
    }
    return send_ack(c, opt);
}

/* ---- the haggling ---------------------------------------------------------- */

/* Answers one option: 1 when transmission begins, 0 for the next option,
 * negative when the connection ends. */
static int coroutine_fn answer(struct nbd_conn *c, uint32_t opt,
                               const uint8_t *data, uint32_t len)
{
    switch (opt) {
    case NBD_OPT_EXPORT_NAME:
        return opt_export_name(c, data, len);
    case NBD_OPT_ABORT:
        send_ack(c, opt);       /* the client may be gone already */
        return -ECONNABORTED;
    case NBD_OPT_LIST:
        return opt_list(c, len);
    case NBD_OPT_INFO:
    case NBD_OPT_GO:
        return opt_info(c, opt, data, len);
    case NBD_OPT_STRUCTURED_REPLY:
        if (len != 0 || c->structured) {
            return send_error(c, opt, NBD_REP_ERR_INVALID, len != 0
                              ? "NBD_OPT_STRUCTURED_REPLY takes no data"
                              : "structured replies are already on");
        }
        c->structured = true;
        return send_ack(c, opt);
    case NBD_OPT_LIST_META_CONTEXT:
    case NBD_OPT_SET_META_CONTEXT:
        return opt_meta_context(c, opt, data, len);
    case NBD_OPT_STARTTLS:
        return send_error(c, opt, NBD_REP_ERR_UNSUP,
                          "TLS is not supported by this server");
    default:
        return send_error(c, opt, NBD_REP_ERR_UNSUP,
                          "option %u is not supported", opt);
    }
}

static int coroutine_fn send_greeting(struct nbd_conn *c)
{
    uint8_t hello[18];

    nbd_put64(hello, NBD_MAGIC);
    nbd_put64(hello + 8, NBD_OPTS_MAGIC);
    nbd_put16(hello + 16, NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES);
    struct iovec iov = { hello, sizeof(hello) };
    return nbd_co_sendv(c->fd, &iov, 1);
}

/* A client that breaks the protocol: counted, then disconnected. */
static int broke_protocol(struct nbd_conn *c)
{
    c->srv->stats.protocol_errors++;
    return -EPROTO;
}

int coroutine_fn nbd_handshake(struct nbd_conn *c)
{
    uint8_t buf[16];
    int ret = send_greeting(c);

    if (ret == 0) {
        ret = nbd_co_recv(c->fd, buf, 4);
    }
    if (ret < 0) {
        return ret;
    }
    uint32_t flags = nbd_get32(buf);
    if (flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES)) {
        return broke_protocol(c);
    }
    bool fixed = flags & NBD_FLAG_C_FIXED_NEWSTYLE;
    c->no_zeroes = flags & NBD_FLAG_C_NO_ZEROES;
    for (;;) {
        if ((ret = nbd_co_recv(c->fd, buf, 16)) < 0) {
            return ret;
        }
        uint32_t opt = nbd_get32(buf + 8);
        uint32_t len = nbd_get32(buf + 12);
        /* Without fixed newstyle, a server can answer nothing but
         * EXPORT_NAME. */
        if (nbd_get64(buf) != NBD_OPTS_MAGIC || len > NBD_OPTION_MAX ||
            (!fixed && opt != NBD_OPT_EXPORT_NAME)) {
            return broke_protocol(c);
        }
        uint8_t *data = len ? malloc(len) : NULL;
        if (len && !data) {
            return -ENOMEM;
        }
        ret = nbd_co_recv(c->fd, data, len);
        if (ret == 0) {
            ret = answer(c, opt, data, len);
        }
        free(data);
        if (ret != 0) {
            return ret > 0 ? 0 : ret;
        }
    }
}

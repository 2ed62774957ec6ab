/*
 * NBD URIs (NetworkBlockDevice's doc/uri.md), as far as coblk connects:
 *   nbd://HOST[:PORT][/EXPORT]        TCP (also nbd+tcp://)
 *   nbd+unix:///[EXPORT]?socket=PATH  a Unix socket
 * The export name is the path without its first '/', percent-decoded.
 * coblk's own query parameters, for either: timeout=SECONDS, how long
 * requests wait with nothing arriving from the server before they fail
 * (ETIMEDOUT) and the connection is dropped (0 waits for ever); and
 * reconnect-delay=SECONDS (QEMU's name), how long to keep trying to
 * connect again after the connection is lost (0: not at all).
 */
#ifndef COBLK_NBD_URI_H
#define COBLK_NBD_URI_H

#include <stdbool.h>

struct nbd_uri {
    bool unix_socket;
    char *host;             /* TCP: a name or address ([v6] unbracketed) */
    char *port;             /* TCP: "10809" unless given */
    char *socket;           /* Unix: the socket's path */
    char *export_name;      /* "" for the default export */
    unsigned timeout_s;     /* timeout= */
    unsigned reconnect_delay_s; /* reconnect-delay= */
    char *meta_context;     /* meta-context=: what block status reads
                             * (NULL: base:allocation) */
};

#define NBD_URI_TIMEOUT_DEFAULT 60u
#define NBD_META_CONTEXT_MAX 4096u  /* the protocol's longest string */
#define NBD_URI_SECONDS_MAX 86400u

/* True if spec names an NBD URI (even a bad one). */
bool nbd_is_uri(const char *spec);

/* Parses uri into out (free with nbd_uri_free()).  Returns 0, or -EINVAL
 * with a message naming what is wrong, or -ENOTSUP for TLS schemes. */
int nbd_uri_parse(const char *uri, struct nbd_uri *out);

void nbd_uri_free(struct nbd_uri *uri);

#endif /* COBLK_NBD_URI_H */

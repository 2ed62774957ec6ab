/*
 * NBD URIs (see uri.h).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"
#include "proto.h"
#include "uri.h"

bool nbd_is_uri(const char *spec)
{
    return !strncmp(spec, "nbd:", 4) || !strncmp(spec, "nbd+", 4) ||
           !strncmp(spec, "nbds:", 5) || !strncmp(spec, "nbds+", 5);
}

static int hex(char c)
{
    if (isdigit((unsigned char)c)) {
        return c - '0';
    }
    if (isxdigit((unsigned char)c)) {
        return tolower((unsigned char)c) - 'a' + 10;
    }
    return -1;
}

/* Percent-decodes s in place; false if malformed or it would hold a
 * NUL. */
static bool decode(char *s)
{
    char *out = s;

    for (; *s; s++) {
        if (*s != '%') {
            *out++ = *s;
            continue;
        }
        int hi = hex(s[1]);
        int lo = hi < 0 ? -1 : hex(s[2]);
        if (lo < 0 || (hi | lo) == 0) {
            return false;
        }
        *out++ = (char)(hi << 4 | lo);
        s += 2;
    }
    *out = 0;
    return true;
}

static int bad(const char *uri, const char *why)
{
    return blk_error(-EINVAL, "nbd: bad URI '%s': %s (nbd://HOST[:PORT]"
                     "[/EXPORT] or nbd+unix:///[EXPORT]?socket=PATH)", uri,
                     why);
}

/* "host", "host:port", "[v6]" or "[v6]:port" into out. */
static int parse_authority(const char *uri, char *auth, struct nbd_uri *out)
{
    char *host = auth, *port = NULL;

    if (*auth == '[') {
        char *close = strchr(auth, ']');
        if (!close || (close[1] && close[1] != ':')) {
            return bad(uri, "malformed [IPv6] host");
        }
        *close = 0;
        host = auth + 1;
        port = close[1] ? close + 2 : NULL;
    } else if ((port = strchr(auth, ':')) != NULL) {
        *port++ = 0;
    }
    if (!*host) {
        return bad(uri, "no host");
    }
    if (port && (!*port || strspn(port, "0123456789") != strlen(port) ||
                 strlen(port) > 5 || atoi(port) > 65535)) {
        return bad(uri, "the port is not a number from 0 to 65535");
    }
    out->host = strdup(host);
    out->port = strdup(port ? port : "10809");
    return out->host && out->port ? 0 : -ENOMEM;
}

/* NAME=SECONDS (timeout=, reconnect-delay=): 0 to a day. */
static int parse_seconds(const char *uri, const char *name,
                         const char *value, unsigned *out)
{
    char why[80];

    if (!*value || strspn(value, "0123456789") != strlen(value) ||
        strlen(value) > 5 || strtoul(value, NULL, 10) > NBD_URI_SECONDS_MAX) {
        snprintf(why, sizeof(why), "%s= takes seconds, 0 to 86400", name);
        return bad(uri, why);
    }
    *out = (unsigned)strtoul(value, NULL, 10);
    return 0;
}

/* The query: socket=PATH (Unix sockets only), timeout=SECONDS,
 * reconnect-delay=SECONDS and meta-context=NAME. */
static int parse_query(const char *uri, char *query, struct nbd_uri *out)
{
    for (char *save, *item = strtok_r(query, "&", &save); item;
         item = strtok_r(NULL, "&", &save)) {
        if (!strncmp(item, "timeout=", 8) ||
            !strncmp(item, "reconnect-delay=", 16)) {
            bool timeout = item[0] == 't';
            int ret = parse_seconds(uri, timeout ? "timeout"
                                                 : "reconnect-delay",
                                    strchr(item, '=') + 1,
                                    timeout ? &out->timeout_s
                                            : &out->reconnect_delay_s);
            if (ret < 0) {
                return ret;
            }
            continue;
        }
        if (!strncmp(item, "meta-context=", 13)) {
            free(out->meta_context);
            out->meta_context = strdup(item + 13);
            if (!out->meta_context || !decode(out->meta_context) ||
                !*out->meta_context ||
                strlen(out->meta_context) > NBD_META_CONTEXT_MAX) {
                return bad(uri, "bad meta context name");
            }
            continue;
        }
        if (strncmp(item, "socket=", 7) || !out->unix_socket) {
            return bad(uri, "unknown query parameter");
        }
        free(out->socket);
        out->socket = strdup(item + 7);
        if (!out->socket || !decode(out->socket) || !*out->socket) {
            return bad(uri, "bad socket path");
        }
    }
    return 0;
}

static int parse(const char *uri, char *rest, struct nbd_uri *out)
{
    char *query = strchr(rest, '?');
    if (query) {
        *query++ = 0;
    }
    char *path = strchr(rest, '/');
    if (path) {
        *path++ = 0;
    }
    /* rest is the authority now, path the export name. */
    int ret;
    if (out->unix_socket) {
        ret = *rest ? bad(uri, "a Unix socket URI takes no host") : 0;
    } else {
        ret = parse_authority(uri, rest, out);
    }
    if (ret == 0 && query) {
        ret = parse_query(uri, query, out);
    }
    if (ret == 0 && out->unix_socket && !out->socket) {
        ret = bad(uri, "no ?socket=PATH");
    }
    if (ret == 0) {
        out->export_name = strdup(path ? path : "");
        if (!out->export_name || !decode(out->export_name) ||
            strlen(out->export_name) > NBD_MAX_STRING) {
            ret = bad(uri, "bad export name");
        }
    }
    return ret;
}

int nbd_uri_parse(const char *uri, struct nbd_uri *out)
{
    static const char *const tcp[] = { "nbd://", "nbd+tcp://" };
    const char *rest = NULL;

    *out = (struct nbd_uri){ .timeout_s = NBD_URI_TIMEOUT_DEFAULT };
    if (!strncmp(uri, "nbds", 4)) {
        return blk_error(-ENOTSUP, "nbd: '%s': TLS (nbds) is not supported",
                         uri);
    }
    for (size_t i = 0; i < sizeof(tcp) / sizeof(tcp[0]); i++) {
        if (!strncmp(uri, tcp[i], strlen(tcp[i]))) {
            rest = uri + strlen(tcp[i]);
        }
    }
    if (!strncmp(uri, "nbd+unix://", 11)) {
        rest = uri + 11;
        out->unix_socket = true;
    }
    if (!rest) {
        return bad(uri, "unknown scheme");
    }
    char *copy = strdup(rest);
    int ret = copy ? parse(uri, copy, out) : -ENOMEM;
    free(copy);
    if (ret < 0) {
        nbd_uri_free(out);
    }
    return ret;
}

void nbd_uri_free(struct nbd_uri *uri)
{
    free(uri->host);
    free(uri->port);
    free(uri->socket);
    free(uri->export_name);
    free(uri->meta_context);
    *uri = (struct nbd_uri){ 0 };
}

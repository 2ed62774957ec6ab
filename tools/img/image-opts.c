/*
 * QEMU's image options, as --image-opts ("driver=qcow2,file.filename=x")
 * and json: names ('json:{"driver": "qcow2", "file": {...}}') give them:
 * flattened into dotted keys (QEMU flattens JSON so too), then read as
 * the format and the name img_open() takes.  What changes only how
 * coblk does its work (node names, cache and aio modes) is accepted and
 * left; anything else is refused by name.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "img/img.h"

#define KEYS_MAX 64
#define DEPTH_MAX 8

struct opts {
    char *key[KEYS_MAX], *value[KEYS_MAX];
    unsigned n;
    bool *used;
};

static void opts_free(struct opts *o)
{
    for (unsigned i = 0; i < o->n; i++) {
        free(o->key[i]);
        free(o->value[i]);
    }
}

/* Takes key and value (freed on failure). */
static int opts_add(struct opts *o, char *key, char *value)
{
    if (!key || !value || o->n == KEYS_MAX) {
        free(key);
        free(value);
        return -EINVAL;
    }
    for (unsigned i = 0; i < o->n; i++) {
        if (!strcmp(o->key[i], key)) {
            free(key);
            free(value);
            return -EINVAL;     /* given twice */
        }
    }
    o->key[o->n] = key;
    o->value[o->n++] = value;
    return 0;
}

/* ---- key=value,key=value (",," a comma) ------------------------------------ */

static char *unescape(const char *p, size_t len)
{
    char *out = malloc(len + 1), *q = out;

    for (size_t i = 0; out && i < len; i++) {
        *q++ = p[i];
        i += p[i] == ',' && i + 1 < len && p[i + 1] == ',';
    }
    if (q) {
        *q = '\0';
    }
    return out;
}

static int parse_keyvals(const char *text, struct opts *o)
{
    const char *p = text;

    while (*p) {
        const char *end = p;
        while (*end && (*end != ',' || end[1] == ',')) {
            end += *end == ',' ? 2 : 1;
        }
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || eq == p) {
            return -EINVAL;
        }
        if (opts_add(o, strndup(p, (size_t)(eq - p)),
                     unescape(eq + 1, (size_t)(end - eq - 1))) < 0) {
            return -EINVAL;
        }
        p = *end ? end + 1 : end;
    }
    return o->n ? 0 : -EINVAL;
}

/* ---- JSON objects, flattened ------------------------------------------------- */

static const char *skip_space(const char *p)
{
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
        p++;
    }
    return p;
}

/* A JSON string at *p (escapes of ASCII only); NULL if malformed. */
static char *parse_string(const char **p)
{
    const char *s = *p + 1;
    size_t len = 0;
    char *out;

    if (**p != '"' || !(out = malloc(strlen(s) + 1))) {
        return NULL;
    }
    for (; *s && *s != '"'; s++) {
        char c = *s;
        if (c == '\\') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *at = *++s ? strchr(from, *s) : NULL;
            if (!at) {
                free(out);
                return NULL;
            }
            c = to[at - from];
        }
        out[len++] = c;
    }
    if (*s != '"') {
        free(out);
        return NULL;
    }
    out[len] = '\0';
    *p = s + 1;
    return out;
}

/* A number, true, false or null: as QEMU flattens them, their text. */
static char *parse_scalar(const char **p)
{
    size_t len = strspn(*p, "0123456789+-.eEtruefalsn");
    char *out = len ? strndup(*p, len) : NULL;

    *p += len;
    return out;
}

static int parse_object(const char **p, const char *prefix, struct opts *o,
                       unsigned depth);

static int parse_member(const char **p, const char *prefix, struct opts *o,
                       unsigned depth)
{
    char *name = parse_string(p), *key = NULL;

    *p = skip_space(*p);
    if (!name || **p != ':' ||
        asprintf(&key, "%s%s", prefix, name) < 0) {
        free(name);
        return -EINVAL;
    }
    free(name);
    *p = skip_space(*p + 1);
    int ret;
    if (**p == '{') {
        char *inner = NULL;
        ret = asprintf(&inner, "%s.", key) < 0
                  ? -ENOMEM : parse_object(p, inner, o, depth + 1);
        free(inner);
        free(key);
    } else {
        ret = opts_add(o, key, **p == '"' ? parse_string(p) : parse_scalar(p));
    }
    return ret;
}

static int parse_object(const char **p, const char *prefix, struct opts *o,
                       unsigned depth)
{
    if (depth > DEPTH_MAX || **p != '{') {
        return -EINVAL;
    }
    *p = skip_space(*p + 1);
    while (**p != '}') {
        if (parse_member(p, prefix, o, depth) < 0) {
            return -EINVAL;
        }
        *p = skip_space(*p);
        if (**p == ',') {
            *p = skip_space(*p + 1);
        } else if (**p != '}') {
            return -EINVAL;
        }
    }
    *p += 1;
    return 0;
}

static int parse_json(const char *text, struct opts *o)
{
    const char *p = skip_space(text);
    int ret = parse_object(&p, "", o, 0);

    return ret == 0 && !*skip_space(p) ? 0 : -EINVAL;
}

/* ---- what the keys say ------------------------------------------------------ */

static const char *get(struct opts *o, const char *prefix, const char *key)
{
    size_t plen = strlen(prefix);

    for (unsigned i = 0; i < o->n; i++) {
        if (!strncmp(o->key[i], prefix, plen) &&
            !strcmp(o->key[i] + plen, key)) {
            o->used[i] = true;
            return o->value[i];
        }
    }
    return NULL;
}

/* Keys of the image or its file that change how, not what, coblk reads
 * and writes.  (Those that change what, read-only or locking among them,
 * are refused rather than ignored.) */
static void mark_ignored(struct opts *o)
{
    static const char *const ignored[] = {
        "node-name", "discard", "detect-zeroes", "aio", "aio-max-batch",
        "cache.direct", "cache.no-flush",
    };
    for (unsigned i = 0; i < o->n; i++) {
        const char *key = strncmp(o->key[i], "file.", 5) ? o->key[i]
                                                          : o->key[i] + 5;
        for (size_t k = 0; k < sizeof(ignored) / sizeof(ignored[0]); k++) {
            o->used[i] |= !strcmp(key, ignored[k]);
        }
    }
}

/* The protocol node whose keys start with prefix, as a name for
 * img_open(); NULL where the keys name none coblk has. */
static char *protocol_name(struct opts *o, const char *prefix)
{
    const char *driver = get(o, prefix, "driver");
    char *name = NULL;
    int n = 0;

    if (!driver || !strcmp(driver, "file") || !strcmp(driver, "host_device")) {
        const char *filename = get(o, prefix, "filename");
        n = filename ? asprintf(&name, "file:%s", filename) : -1;
    } else if (!strcmp(driver, "null-co") || !strcmp(driver, "null-aio")) {
        const char *size = get(o, prefix, "size");
        n = asprintf(&name, "null:size=%s", size ? size : "1G");
    } else if (!strcmp(driver, "nbd")) {
        const char *type = get(o, prefix, "server.type");
        const char *export = get(o, prefix, "export");
        export = export ? export : "";
        /* QEMU's x-dirty-bitmap: block status of that context. */
        const char *context = get(o, prefix, "x-dirty-bitmap");
        const char *query = context ? "meta-context=" : "";
        context = context ? context : "";
        if (type && !strcmp(type, "unix")) {
            const char *path = get(o, prefix, "server.path");
            n = path ? asprintf(&name, "nbd+unix:///%s?%s%s%ssocket=%s",
                                export, query, context, *query ? "&" : "",
                                path)
                     : -1;
        } else if (type && !strcmp(type, "inet")) {
            const char *host = get(o, prefix, "server.host");
            const char *port = get(o, prefix, "server.port");
            n = host ? asprintf(&name, "nbd://%s:%s/%s%s%s%s", host,
                                port ? port : "10809", export,
                                *query ? "?" : "", query, context)
                     : -1;
        } else {
            n = -1;
        }
    } else {
        n = -1;
    }
    return n < 0 ? NULL : name;
}

/* The first key nothing took: -EINVAL, with QEMU's message naming it. */
static int check_all_used(struct opts *o, const char *text,
                          const char *format)
{
    mark_ignored(o);
    for (unsigned i = 0; i < o->n; i++) {
        if (o->used[i]) {
            continue;
        }
        const char *protocol = get(o, "file.", "driver");
        if (format && !strncmp(o->key[i], "file.", 5)) {
            img_error("Could not open '%s': Block protocol '%s' doesn't "
                      "support the option '%s'", text,
                      protocol ? protocol : "file", o->key[i] + 5);
        } else if (format) {
            img_error("Could not open '%s': Block format '%s' does not "
                      "support the option '%s'", text, format, o->key[i]);
        } else {
            img_error("Could not open '%s': Block protocol '%s' doesn't "
                      "support the option '%s'", text,
                      get(o, "", "driver") ? get(o, "", "driver") : "file",
                      o->key[i]);
        }
        return -EINVAL;
    }
    return 0;
}

/* The format (or NULL: probe) and name the keys give; -EINVAL with a
 * message. */
static int interpret(struct opts *o, const char *text, char **fmt,
                     char **name)
{
    const char *driver = get(o, "", "driver");
    bool format = driver && (!strcmp(driver, "qcow2") ||
                             !strcmp(driver, "raw"));
    const char *node = get(o, "", "file");

    *fmt = format ? strdup(driver) : NULL;
    *name = NULL;
    if (node) {
        img_error("Could not open '%s': Cannot find device='%s' nor "
                  "node-name='%s'", text, node, node);
        return -EINVAL;
    }
    if (!driver && !get(o, "", "file.filename") &&
        !get(o, "", "file.driver")) {
        img_error("Could not open '%s': Must specify either driver or file",
                  text);
        return -EINVAL;
    }
    /* A format over its file, or a protocol alone (no driver: probed). */
    *name = protocol_name(o, driver && !format ? "" : "file.");
    if (!*name) {
        if (driver && !format) {
            img_error("Could not open '%s': Unknown driver '%s'", text,
                      driver);
        } else {
            img_error("Could not open '%s': A block device must be "
                      "specified for \"file\"", text);
        }
        return -EINVAL;
    }
    return check_all_used(o, text, format ? driver : NULL);
}

int img_image_opts(const char *text, char **fmt, char **name)
{
    struct opts o = { .n = 0 };
    bool used[KEYS_MAX] = { false };
    bool json = !strncmp(text, "json:", 5);
    int ret = json ? parse_json(text + 5, &o) : parse_keyvals(text, &o);

    *fmt = *name = NULL;
    o.used = used;
    if (ret < 0) {
        img_error("Could not open '%s': %s", text,
                  json ? "the JSON is not an object of options"
                       : "options are key=value pairs, each key once");
    } else {
        ret = interpret(&o, text, fmt, name);
    }
    opts_free(&o);
    if (ret < 0) {
        free(*fmt);
        free(*name);
        *fmt = *name = NULL;
    }
    return ret;
}

/*
 * What coblk-img's commands share: messages worded as qemu-img words
 * them, qemu's size syntax and human sizes, opening images the way
 * qemu-img does (probing when no format is given), running coroutines,
 * and the -p progress line.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "guess.h"
#include "img/img.h"

/* "coblk-img: MESSAGE" on stderr, after what stdout holds. */
static void __attribute__((format(printf, 1, 0)))
print_error(const char *fmt, va_list ap)
{
    fflush(stdout);
    fprintf(stderr, "%s: ", IMG_PROG);
    vfprintf(stderr, fmt, ap);
}

void img_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    print_error(fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool img_snapshot_unusable(void)
{
    return !strncmp(coblk_last_error(), "Snapshot L1 table ", 18);
}

int img_usage(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    print_error(fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information\n", IMG_PROG);
    return 1;
}

int img_bad_option(int c, char **argv)
{
    const char *opt = argv[optind - 1];

    if (c == ':') {
        return img_usage("missing argument for option '%s'", opt);
    }
    return img_usage("unrecognized option '%s'", opt);
}

int img_parse_output(const char *arg, bool *json)
{
    if (strcmp(arg, "json") && strcmp(arg, "human")) {
        img_error("--output must be used with human or json as argument.");
        return -EINVAL;
    }
    *json = !strcmp(arg, "json");
    return 0;
}

/* ---- numbers -------------------------------------------------------------- */

static int suffix_shift(char c)
{
    switch (c) {
    case 'B': case 'b': return 0;
    case 'K': case 'k': return 10;
    case 'M': case 'm': return 20;
    case 'G': case 'g': return 30;
    case 'T': case 't': return 40;
    case 'P': case 'p': return 50;
    case 'E': case 'e': return 60;
    }
    return -1;
}

int img_parse_size_option(const char *what, const char *arg, uint64_t min,
                          uint64_t max, uint64_t *out)
{
    int ret = img_parse_size(arg, out);

    if (ret < 0 && ret != -ERANGE) {
        img_error("Invalid %s specified. You may use k, M, G, T, P or E "
                  "suffixes for", what);
        img_error("kilobytes, megabytes, gigabytes, terabytes, petabytes and "
                  "exabytes.");
        return ret;
    }
    if (ret == -ERANGE || *out < min || *out > max) {
        img_error("Invalid %s specified. Must be between %" PRIu64 " and %"
                  PRIu64 ".", what, min, max);
        return -ERANGE;
    }
    return 0;
}

int img_parse_size(const char *s, uint64_t *out)
{
    const char *p = s;
    char *end;

    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p == '+') {
        p++;
    }
    if (!(*p >= '0' && *p <= '9')) {
        return -EINVAL;
    }
    /* Decimal (a leading 0 is no octal), or 0x hex without a fraction. */
    bool hex = p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
    errno = 0;
    unsigned long long whole = strtoull(p, &end, hex ? 16 : 10);
    if (errno == ERANGE) {
        return -ERANGE;
    }
    if (end == p || (hex && end == p + 2)) {
        return -EINVAL;
    }
    double fraction = 0;
    if (*end == '.' && !hex) {
        const char *dot = end++;
        while (*end >= '0' && *end <= '9') {
            end++;
        }
        fraction = end > dot + 1 ? strtod(dot, NULL) : 0;
    }
    int shift = 0;
    if (*end) {
        shift = suffix_shift(*end++);
        if (shift < 0 || *end) {
            return -EINVAL;
        }
    }
    if (fraction > 0 && shift == 0) {
        return -EINVAL;             /* a fraction of a byte */
    }
    if (shift && whole > (UINT64_MAX >> shift)) {
        return -ERANGE;
    }
    uint64_t bytes = (uint64_t)whole << shift;
    uint64_t extra = (uint64_t)(fraction * (double)(1ull << shift));
    if (bytes + extra < bytes) {
        return -ERANGE;
    }
    *out = bytes + extra;
    return 0;
}

const char *img_size_str(uint64_t bytes, char buf[32])
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
                                         "PiB", "EiB" };
    int exp;

    /* Switch to the next unit once the number would reach 1000. */
    frexp((double)bytes / (1000.0 / 1024.0), &exp);
    int i = exp > 0 ? (exp - 1) / 10 : 0;
    snprintf(buf, 32, "%0.3g %s", (double)bytes / (double)(1ull << (i * 10)),
             units[i]);
    return buf;
}

/* ---- images --------------------------------------------------------------- */

bool img_known_format(const char *fmt)
{
    if (!strcmp(fmt, "qcow2") || !strcmp(fmt, "raw")) {
        return true;
    }
    img_error("Unknown file format '%s'", fmt);
    return false;
}

bool img_force_share;

/* A name that is a spec of one of coblk's protocols rather than a file. */
static bool is_protocol_spec(const char *name)
{
    static const char *const protocols[] = { "null:", "blkdebug:", "nbd:",
                                             "nbd+unix:", "nbd+tcp:",
                                             "rbd:" };
    for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++) {
        if (!strncmp(name, protocols[i], strlen(protocols[i]))) {
            return access(name, F_OK) != 0;
        }
    }
    return false;
}

char *img_file_path(const char *name)
{
    char *path;

    if (strncmp(name, "file:", 5)) {
        return strdup(name);
    }
    name += 5;
    bool looks_like_protocol = strcspn(name, ":") < strcspn(name, "/");
    return asprintf(&path, "%s%s", looks_like_protocol ? "./" : "",
                    name) < 0 ? NULL : path;
}

char *img_spec(const char *fmt, const char *options, const char *filename)
{
    char *spec = NULL;
    bool protocol = is_protocol_spec(filename);
    char *path = protocol ? strdup(filename) : img_file_path(filename);

    if (path && asprintf(&spec, "%s:%s%s%s%s", fmt, options ? options : "",
                         options ? ":" : "", protocol ? "" : "file:",
                         path) < 0) {
        spec = NULL;
    }
    free(path);
    return spec;
}

bool img_is_nbd(const char *name)
{
    return !strncmp(name, "nbd://", 6) || !strncmp(name, "nbd+unix://", 11) ||
           !strncmp(name, "nbd+tcp://", 10);
}

/* QEMU names an NBD node by its address and export, leaving the export
 * out when it is the default (empty) one. */
char *img_display_name(const char *name)
{
    bool unix_socket = !strncmp(name, "nbd+unix://", 11);
    const char *rest = unix_socket ? name + 11
                       : !strncmp(name, "nbd://", 6) ? name + 6
                       : !strncmp(name, "nbd+tcp://", 10) ? name + 10 : NULL;
    char *out = NULL;

    if (!rest) {
        return img_file_path(name);
    }
    if (strchr(rest, '[')) {
        return strdup(name);    /* an IPv6 host: as given */
    }
    size_t auth_len = strcspn(rest, "/?");
    const char *path = rest[auth_len] == '/' ? rest + auth_len + 1 : "";
    size_t export_len = strcspn(path, "?");
    const char *query = strchr(rest, '?');
    int n;
    if (unix_socket) {
        const char *socket = query ? strstr(query, "socket=") : NULL;
        n = export_len
                ? asprintf(&out, "nbd+unix:///%.*s?socket=%s",
                           (int)export_len, path, socket ? socket + 7 : "")
                : asprintf(&out, "nbd+unix://?socket=%s",
                           socket ? socket + 7 : "");
    } else {
        const char *colon = memchr(rest, ':', auth_len);
        int host_len = colon ? (int)(colon - rest) : (int)auth_len;
        const char *port = colon ? colon + 1 : "10809";
        int port_len = colon ? (int)(rest + auth_len - port) : 5;
        n = asprintf(&out, "nbd://%.*s:%.*s%s%.*s", host_len, rest, port_len,
                     port, export_len ? "/" : "", (int)export_len, path);
    }
    return n < 0 ? NULL : out;
}

static int probe(const char *filename, char *fmt, size_t size)
{
    if (is_protocol_spec(filename)) {
        snprintf(fmt, size, "raw");
        return 0;
    }
    char *path = img_file_path(filename);
    int ret = path ? coblk_probe(path, fmt, size) : -ENOMEM;

    free(path);
    return ret;
}

const char *img_lib_error(void)
{
    static char buf[1024];
    const char *why = coblk_last_error();
    const char *lock = strstr(why, ": Failed to get ");

    if (strncmp(why, "file: ", 6) || !lock) {
        return why;
    }
    snprintf(buf, sizeof(buf), "%s\nIs another process using the image "
             "[%.*s]?", lock + 2, (int)(lock - why - 6), why + 6);
    return buf;
}

/* qemu-img's words for a failed open: a file's errno twice over, as
 * QEMU's protocol and format layers each add the name; a backing file's
 * named as such. */
static void open_failed(const char *filename, const char *name, int err)
{
    const char *why = coblk_last_error();
    char *path = img_file_path(name);
    size_t len = path ? strlen(path) : 0;
    bool own = path && !strncmp(why, "file: ", 6) &&
               !strncmp(why + 6, path, len) && why[6 + len] == ':';
    if (err == -EBUSY && strstr(why, ": Failed to get ")) {
        img_error("Could not open '%s': %s%s", filename,
                  own ? "" : "Could not open backing file: ",
                  img_lib_error());
    } else if (own) {
        img_error("Could not open '%s': Could not open '%s': %s", filename,
                  path, strerror(-err));
    } else if (!strncmp(why, "file: ", 6)) {
        const char *other = why + 6;
        const char *colon = strstr(other, ": ");
        img_error("Could not open '%s': Could not open backing file: Could "
                  "not open '%.*s': %s", filename,
                  (int)(colon ? colon - other : 0), other, strerror(-err));
    } else {
        img_error("Could not open '%s': %s", filename,
                  *why ? why : strerror(-err));
    }
    free(path);
}

int img_open(struct img *img, const char *filename, const char *fmt,
             unsigned flags)
{
    return img_open_opts(img, filename, fmt, NULL, flags);
}

/* As qemu-img warns, where bitmaps were left stale by a writer that
 * keeps none (coblk among them); its message ends in no newline. */
static void warn_stale_bitmaps(struct coblk_dev *dev)
{
    struct coblk_image_info info;

    if (coblk_image_info(dev, &info, sizeof(info)) < 0 ||
        !info.stale_bitmaps) {
        return;
    }
    fflush(stdout);
    if (info.compat && !strcmp(info.compat, "0.10")) {
        fprintf(stderr, "%s: warning: This qcow2 v2 image contains bitmaps, "
                "but they may have been modified by a program without "
                "persistent bitmap support; so now they must all be "
                "considered inconsistent\n", IMG_PROG);
    } else {
        fprintf(stderr, "%s: warning: a program lacking bitmap support "
                "modified this file, so all bitmaps are now considered "
                "inconsistent\n", IMG_PROG);
    }
    fprintf(stderr, "Some clusters may be leaked, run '%s check -r' on the "
            "image file to fix.", IMG_PROG);
}

/* img_open_opts() of the image at path (a file's, or a spec), which the
 * user named filename. */
static int open_path(struct img *img, const char *filename, const char *path,
                     const char *fmt, const char *fmt_options,
                     unsigned flags)
{
    img->dev = NULL;
    img->filename = filename;
    img->options_name = NULL;
    if (fmt && strcmp(fmt, "qcow2") && strcmp(fmt, "raw")) {
        img_error("Could not open '%s': Unknown driver '%s'", filename, fmt);
        return -EINVAL;
    }
    if (fmt) {
        snprintf(img->format, sizeof(img->format), "%s", fmt);
    } else {
        int ret = probe(path, img->format, sizeof(img->format));
        if (ret < 0) {
            open_failed(filename, path, ret);
            return ret;
        }
        if (!strcmp(img->format, "raw") && (flags & IMG_OPEN_RW) &&
            !(flags & IMG_OPEN_QUIET)) {
            warn_guessed_raw(filename);
        }
    }
    if (fmt_options && strcmp(img->format, "qcow2")) {
        img_error("Could not open '%s': a %s image has no snapshots",
                  filename, img->format);
        return -EINVAL;
    }
    /* A guessed raw image must stay raw (raw's probed=on). */
    if (!fmt && !strcmp(img->format, "raw")) {
        fmt_options = "probed=on";
    }
    bool share = img_force_share && !(flags & IMG_OPEN_OUTPUT);
    if (share && (flags & IMG_OPEN_RW)) {
        img_error("Could not open '%s': force-share=on can only be used "
                  "with read-only images", filename);
        return -EINVAL;
    }
    char *spec = img_spec(img->format, fmt_options, path);
    if (!spec) {
        img_error("out of memory");
        return -ENOMEM;
    }
    int oflags = (flags & IMG_OPEN_RW) ? 0 : COBLK_OPEN_RDONLY;
    oflags |= (share ? 0 : COBLK_OPEN_LOCK) |
              (flags & IMG_OPEN_NO_BACKING ? COBLK_OPEN_NO_BACKING : 0) |
              (flags & IMG_OPEN_DIRECT ? COBLK_OPEN_DIRECT : 0) |
              (flags & IMG_OPEN_NO_FLUSH ? COBLK_OPEN_NO_FLUSH : 0) |
              (flags & IMG_OPEN_CHECK ? COBLK_OPEN_CHECK : 0);
    int ret = coblk_dev_open(spec, oflags, &img->dev);
    free(spec);
    if (ret == -ENOENT && fmt_options && strstr(coblk_last_error(),
                                                "no snapshot")) {
        img_error("Failed to load snapshot: Can't find snapshot");
        img->dev = NULL;
    } else if (ret < 0 && fmt_options && img_snapshot_unusable()) {
        img_error("Failed to load snapshot: %s", coblk_last_error());
        img->dev = NULL;
    } else if (ret < 0) {
        open_failed(filename, path, ret);
        img->dev = NULL;
    } else {
        warn_stale_bitmaps(img->dev);
    }
    return ret;
}

bool img_image_opts_given;

int img_open_opts(struct img *img, const char *filename, const char *fmt,
                  const char *fmt_options, unsigned flags)
{
    bool given = img_image_opts_given && !(flags & IMG_OPEN_PLAIN_NAME);
    if (!given && strncmp(filename, "json:", 5)) {
        return open_path(img, filename, filename, fmt, fmt_options, flags);
    }
    char *opts_fmt, *path;
    img->dev = NULL;
    img->filename = filename;
    img->options_name = NULL;
    if (given && fmt) {
        img_error("--image-opts and --format are mutually exclusive");
        return -EINVAL;
    }
    if (img_image_opts(filename, &opts_fmt, &path) < 0) {
        return -EINVAL;
    }
    int ret = open_path(img, filename, path, opts_fmt ? opts_fmt : fmt,
                        fmt_options, flags);
    free(opts_fmt);
    if (ret < 0) {
        free(path);
        return ret;
    }
    /* Shown as QEMU shows the node: its file's name. */
    img->options_name = path;
    img->filename = strncmp(path, "file:", 5) ? path : path + 5;
    return 0;
}

void img_close(struct img *img)
{
    if (img->dev && coblk_dev_close(img->dev) < 0) {
        img_error("%s: %s", img->filename, coblk_last_error());
    }
    img->dev = NULL;
    free(img->options_name);
    img->options_name = NULL;
}

/* ---- coroutines ----------------------------------------------------------- */

struct run_call {
    int (*fn)(void *opaque);
    void *opaque;
    int ret;
    bool done;
};

static void coroutine_fn run_entry(void *opaque)
{
    struct run_call *call = opaque;

    call->ret = call->fn(call->opaque);
    call->done = true;
}

int img_run(int (*fn)(void *opaque), void *opaque)
{
    coblk_aio *ctx = coblk_aio_current();
    if (!ctx) {
        int ret = coblk_aio_new(0, 0, &ctx);
        if (ret < 0) {
            img_error("cannot set up io_uring: %s", strerror(-ret));
            return ret;
        }
    }
    struct run_call call = { .fn = fn, .opaque = opaque };
    coblk_co *co = coblk_co_create(run_entry, &call);
    if (!co) {
        img_error("out of memory");
        return -ENOMEM;
    }
    coblk_co_enter(co);
    while (!call.done) {
        coblk_aio_poll(ctx, true);
    }
    return call.ret;
}

/* ---- progress --------------------------------------------------------------- */

/* Without -p, SIGUSR1 asks for one line, printed at the next update. */
static volatile sig_atomic_t progress_asked;

static void ask_progress(int sig)
{
    (void)sig;
    progress_asked = 1;
}

void img_progress_start(struct img_progress *p, bool enabled)
{
    p->enabled = enabled;
    p->shown = p->current = 0;
    if (enabled) {
        printf("    (%3.2f/100%%)\r", 0.0);
        fflush(stdout);
    } else {
        struct sigaction sa = { .sa_handler = ask_progress };
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(SIGUSR1, &sa, NULL);
    }
}

void img_progress_update(struct img_progress *p, double percent)
{
    p->current = percent > 100 ? 100 : percent;
    if (!p->enabled) {
        if (progress_asked) {
            progress_asked = 0;
            fprintf(stderr, "    (%3.2f/100%%)\n", p->current);
        }
        return;
    }
    if (p->current < p->shown + 1.0) {
        return;
    }
    p->shown = p->current;
    printf("    (%3.2f/100%%)\r", p->shown);
    fflush(stdout);
}

void img_progress_end(struct img_progress *p, bool complete)
{
    if (p->enabled) {
        if (complete && p->shown < 100) {
            printf("    (%3.2f/100%%)\r", 100.0);
        }
        printf("\n");
        fflush(stdout);
    }
}

/* ---- snapshots ------------------------------------------------------------- */

int img_snapshot_option(const char *param, char **out)
{
    const char *name = param;

    if (!strncmp(param, "snapshot.id=", 12)) {
        name = param + 12;
    } else if (!strncmp(param, "snapshot.name=", 14)) {
        name = param + 14;
    }
    size_t len = strcspn(name, ",");
    if (!len || strpbrk(name, ":") || (name[len] && name == param)) {
        img_error("Failed in parsing snapshot param '%s'", param);
        return -EINVAL;
    }
    if (asprintf(out, "snapshot=%.*s", (int)len, name) < 0) {
        img_error("out of memory");
        return -ENOMEM;
    }
    return 0;
}

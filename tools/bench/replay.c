/*
 * read_iolog=: fio's I/O logs replayed (replay.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "replay.h"

#define NAME_MAX_LEN 4095

static int fail(char *err, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* One parsed line: a file action (add, open, close), a wait (version
 * 2), or an I/O. */
struct line {
    enum { LINE_FILE, LINE_WAIT, LINE_IO } type;
    int kind;
    char file[NAME_MAX_LEN + 1];
    uint64_t ts_us, offset, bytes;
};

static int parse_kind(const char *action, int *kind)
{
    static const char *const names[] = { "read", "write", "trim", "sync",
                                         "datasync" };

    for (int i = 0; i < 5; i++) {
        if (!strcmp(action, names[i])) {
            *kind = i == 4 ? REPLAY_SYNC : i;
            return 0;
        }
    }
    return -1;
}

static int parse_line(const struct replay *r, const char *text,
                      struct line *l, char *err, size_t err_size)
{
    char action[32];
    unsigned long long ts = 0, offset = 0, bytes = 0;
    int n = r->version == 3
                ? sscanf(text, "%llu %4095s %31s %llu %llu", &ts, l->file,
                         action, &offset, &bytes) - 1
                : sscanf(text, "%4095s %31s %llu %llu", l->file, action,
                         &offset, &bytes);

    l->ts_us = ts;
    l->offset = offset;
    l->bytes = bytes;
    if (n == 2 && (!strcmp(action, "add") || !strcmp(action, "open") ||
                   !strcmp(action, "close"))) {
        l->type = LINE_FILE;
        return 0;
    }
    if (n == 4 && r->version == 2 && !strcmp(action, "wait")) {
        l->type = LINE_WAIT;
        return 0;
    }
    if (n >= 2 && parse_kind(action, &l->kind) == 0 &&
        (l->kind == REPLAY_SYNC || n == 4)) {
        l->type = LINE_IO;
        return 0;
    }
    int len = (int)strcspn(text, "\r\n");
    return fail(err, err_size, "read_iolog %s:%u: not an iolog %d line: "
                "%.*s", r->path, r->line, r->version, len < 80 ? len : 80,
                text);
}

int replay_open(struct replay *r, const char *path,
                const struct replay_opts *opts, char *err, size_t err_size)
{
    char head[64];

    *r = (struct replay){ .opts = *opts, .line = 1 };
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->f = fopen(path, "r");
    if (!r->f) {
        return fail(err, err_size, "read_iolog: cannot open '%s': %s", path,
                    strerror(errno));
    }
    if (!fgets(head, sizeof(head), r->f) ||
        sscanf(head, "fio version %d iolog", &r->version) != 1 ||
        (r->version != 2 && r->version != 3)) {
        replay_close(r);
        return fail(err, err_size, "read_iolog: '%s' is no fio iolog of "
                    "version 2 or 3 (a blktrace is not replayed by "
                    "coblk-bench)", path);
    }
    return 0;
}

void replay_close(struct replay *r)
{
    if (r->f) {
        fclose(r->f);
        r->f = NULL;
    }
}

/* An I/O line made a replay_io: offsets scaled and aligned, the time
 * made relative to the first line and scaled. */
static int make_io(struct replay *r, const struct line *l,
                   struct replay_io *io, char *err, size_t err_size)
{
    uint64_t offset = r->opts.scale ? l->offset / r->opts.scale : l->offset;

    if (r->opts.align) {
        offset &= ~(r->opts.align - 1);
    }
    if (!r->have_first) {
        r->first_us = l->ts_us;
        r->have_first = true;
    }
    uint64_t since = l->ts_us > r->first_us ? l->ts_us - r->first_us : 0;
    *io = (struct replay_io){
        .kind = l->kind, .offset = offset,
        .bytes = l->kind == REPLAY_SYNC ? 0 : l->bytes,
        .due_us = r->opts.no_stall
                      ? 0
                      : (since + r->waited_us) * 100 /
                            (r->opts.time_scale ? r->opts.time_scale : 100),
    };
    if (io->kind != REPLAY_SYNC &&
        (io->bytes == 0 || io->bytes % 512 || io->offset % 512 ||
         io->offset > UINT64_MAX - io->bytes)) {
        return fail(err, err_size, "read_iolog %s:%u: %" PRIu64 " bytes at "
                    "%" PRIu64 ": offsets and lengths must be non-zero "
                    "multiples of 512 (replay_align=512 aligns offsets)",
                    r->path, r->line, io->bytes, io->offset);
    }
    return 0;
}

int replay_next(struct replay *r, struct replay_io *io, char *err,
                size_t err_size)
{
    char text[8192];

    while (fgets(text, sizeof(text), r->f)) {
        r->line++;
        if (!strchr(text, '\n') && !feof(r->f)) {
            return fail(err, err_size, "read_iolog %s:%u: line too long",
                        r->path, r->line);
        }
        struct line l;
        if (strspn(text, " \t\r\n") == strlen(text)) {
            continue;
        }
        if (parse_line(r, text, &l, err, err_size) < 0) {
            return -1;
        }
        if (!r->first_file[0]) {
            snprintf(r->first_file, sizeof(r->first_file), "%s", l.file);
        } else if (strcmp(l.file, r->first_file) && !r->other_file[0]) {
            snprintf(r->other_file, sizeof(r->other_file), "%s", l.file);
        }
        if (l.type == LINE_WAIT) {
            r->waited_us += l.offset;
        } else if (l.type == LINE_IO && !(r->opts.skip & (1u << l.kind))) {
            return make_io(r, &l, io, err, err_size) < 0 ? -1 : 1;
        }
    }
    if (ferror(r->f)) {
        return fail(err, err_size, "read_iolog %s: %s", r->path,
                    strerror(errno));
    }
    return 0;
}

int replay_scan(const char *path, const struct replay_opts *opts,
                struct replay_summary *sum, char *err, size_t err_size)
{
    struct replay r;
    struct replay_io io;
    int ret = replay_open(&r, path, opts, err, err_size);

    *sum = (struct replay_summary){ 0 };
    if (ret < 0) {
        return -1;
    }
    while ((ret = replay_next(&r, &io, err, err_size)) == 1) {
        sum->kinds |= 1u << io.kind;
        sum->ios++;
        sum->max_bytes = io.bytes > sum->max_bytes ? io.bytes : sum->max_bytes;
        if (io.kind != REPLAY_SYNC && io.offset + io.bytes > sum->end) {
            sum->end = io.offset + io.bytes;
        }
    }
    snprintf(sum->file, sizeof(sum->file), "%s", r.first_file);
    if (ret == 0 && r.other_file[0] && !opts->redirect) {
        ret = fail(err, err_size, "read_iolog %s: the log uses several files "
                   "(%s, %s): coblk-bench replays one, onto the job's device "
                   "(replay_redirect= names it)", path, r.first_file,
                   r.other_file);
    }
    replay_close(&r);
    return ret;
}

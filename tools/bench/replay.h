/*
 * read_iolog=: replaying fio's I/O logs (versions 2 and 3), as fio does:
 * each line an I/O (read, write, trim, sync, datasync) at an offset for a
 * length, with version 3's timestamps (microseconds from the start) or
 * version 2's waits keeping the original pace unless replay_no_stall.
 * One file per log: the job's device stands for it.
 */
#ifndef COBLK_BENCH_REPLAY_H
#define COBLK_BENCH_REPLAY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* What replay_skip= leaves out (bits of the kinds below). */
enum { REPLAY_READ, REPLAY_WRITE, REPLAY_TRIM, REPLAY_SYNC };

struct replay_io {
    int kind;                   /* REPLAY_* */
    uint64_t offset, bytes;     /* replay_scale and replay_align applied */
    uint64_t due_us;            /* when, from the start (scaled) */
};

struct replay_opts {
    unsigned skip;              /* 1 << REPLAY_* */
    uint64_t scale, align;      /* replay_scale=, replay_align= (0: none) */
    unsigned time_scale;        /* replay_time_scale=, percent */
    bool no_stall;              /* replay_no_stall= */
    bool redirect;              /* replay_redirect=: any files, one device */
};

/* What a whole log holds, read once before the run (replay_scan). */
struct replay_summary {
    char file[4096];            /* the first file it adds */
    unsigned kinds;             /* 1 << REPLAY_* present */
    uint64_t ios, max_bytes, end;   /* end: past the highest byte */
};

struct replay {
    FILE *f;
    char path[4096];
    int version;
    unsigned line;
    struct replay_opts opts;
    uint64_t first_us, waited_us;
    bool have_first;
    char first_file[4096];      /* the first file a line names */
    char other_file[4096];      /* another one, if any */
};

/* Checks every line of the log at path and sums it up; 0, or -1 with a
 * message naming the file and line in err.  Without opts->redirect, a
 * log of several files is refused: one device stands for the file. */
int replay_scan(const char *path, const struct replay_opts *opts,
                struct replay_summary *sum, char *err, size_t err_size);
/* Opens the log for replay; 0 or -1 with a message. */
int replay_open(struct replay *r, const char *path,
                const struct replay_opts *opts, char *err, size_t err_size);
/* The next I/O to replay: 1, 0 at the end, -1 with a message. */
int replay_next(struct replay *r, struct replay_io *io, char *err,
                size_t err_size);
void replay_close(struct replay *r);

#endif /* COBLK_BENCH_REPLAY_H */

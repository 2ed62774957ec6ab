/*
 * One job instance: its own event loop and queue, iodepth requests in
 * flight.  The loop prepares what is free, submits in batches, reaps and
 * accounts; everything optional (rate limits, flushes, ramp, logs,
 * verification) costs a branch when it is off.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "coblk/coblk.h"
#include "content.h"
#include "flow.h"
#include "gate.h"
#include "lattarget.h"
#include "logs.h"
#include "pick.h"
#include "replay.h"
#include "run.h"
#include "verify.h"

/* ioprio_set(2)'s which: the calling thread (who 0). */
#define IOPRIO_WHO_PROCESS 1

#define DEFAULT_NULL_SIZE (1ull << 30)
#define DIR_SYNC DIR_COUNT      /* a slot carrying a flush (fsync=) */
#define DIR_END_SYNC (DIR_COUNT + 1)    /* end_fsync's: not in the stats */
#define VERIFY_BATCH 4096       /* extents read back per round */
/* The longest an instance sleeps or waits for a completion without
 * looking whether it was asked to stop. */
#define STOP_CHECK_NS 100000000ull
/* How soon a job the flow held tries again, without flow_sleep. */
#define FLOW_RETRY_US 10u

static atomic_bool stop_requested;

void bench_stop(void)
{
    atomic_store_explicit(&stop_requested, true, memory_order_relaxed);
}

/* Relaxed: stopping a turn later does no harm. */
static bool stopping(void)
{
    return atomic_load_explicit(&stop_requested, memory_order_relaxed);
}

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleeps until when_ns, but no longer than STOP_CHECK_NS. */
static void sleep_until(uint64_t when_ns)
{
    uint64_t latest = bench_now_ns() + STOP_CHECK_NS;

    when_ns = when_ns < latest ? when_ns : latest;
    struct timespec ts = { .tv_sec = (time_t)(when_ns / 1000000000u),
                           .tv_nsec = (long)(when_ns % 1000000000u) };

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
           EINTR) {
    }
}

/* startdelay: false if asked to stop meanwhile. */
static bool start_delay(uint64_t ns)
{
    uint64_t until = bench_now_ns() + ns;

    while (!stopping() && bench_now_ns() < until) {
        sleep_until(until);
    }
    return !stopping();
}

static bool job_does(const struct job *job, int dir)
{
    if (job->read_iolog[0]) {
        return job->replay_kinds & (1u << dir);
    }
    switch (job->rw) {
    case RW_READ:
    case RW_RANDREAD:
        return dir == DIR_READ;
    case RW_WRITE:
    case RW_RANDWRITE:
        return dir == DIR_WRITE || (dir == DIR_READ && job->verify);
    case RW_TRIM:
    case RW_RANDTRIM:
        return dir == DIR_TRIM;
    case RW_TRIMWRITE:
    case RW_RANDTRIMWRITE:
        return dir == DIR_TRIM || dir == DIR_WRITE;
    default:
        return dir != DIR_TRIM;
    }
}

static bool only_reads(const struct job *job)
{
    return !job_does(job, DIR_WRITE) && !job_does(job, DIR_TRIM);
}

uint64_t bench_file_size(const struct job *job)
{
    uint64_t end = job->offset + (job->numjobs - 1) * job->offset_increment +
                   job->size;

    return job->filesize > end ? job->filesize : end;
}

bool bench_job_reads(const struct job *job)
{
    if (job->read_iolog[0]) {
        return job->replay_kinds & (1u << REPLAY_READ);
    }
    return job->rw == RW_READ || job->rw == RW_RANDREAD || job->rw == RW_RW ||
           job->rw == RW_RANDRW;
}

int bench_lay_out(const struct job *job, uint64_t bytes, char *err,
                  size_t err_size)
{
    enum { CHUNK = 1 << 20 };
    uint64_t bs = job->dir_bs_max[DIR_WRITE];
    uint8_t *chunk = malloc(CHUNK);
    int fd = open(job->filename, O_WRONLY | O_CLOEXEC);
    struct content content;
    int ret = 0;

    if (!chunk || fd < 0) {
        ret = -1;
    }
    bs = bs && bs < CHUNK ? bs : CHUNK;
    content_init(&content, job, job->randseed, 0);
    for (uint64_t done = 0; ret == 0 && done < bytes;) {
        size_t len = bytes - done < CHUNK ? (size_t)(bytes - done) : CHUNK;
        for (size_t pos = 0; pos < len; pos += bs) {
            content_fill(&content, chunk + pos, len - pos < bs ? len - pos
                                                                : bs);
        }
        ssize_t n = pwrite(fd, chunk, len, (off_t)done);
        if (n <= 0) {
            errno = n < 0 ? errno : ENOSPC;
            ret = -1;
        }
        done += n > 0 ? (uint64_t)n : 0;
    }
    if (ret == 0 && fsync(fd) < 0) {
        ret = -1;
    }
    if (ret < 0) {
        snprintf(err, err_size, "%s: cannot lay out %llu bytes: %s",
                 job->filename, (unsigned long long)bytes,
                 chunk ? strerror(errno) : "out of memory");
    }
    if (fd >= 0) {
        close(fd);
    }
    free(chunk);
    return ret;
}

/* Blocks for the file `name` of `size` bytes as fallocate= says, then
 * that size in every mode: fio leaves it to the writes with none and
 * keep, but the device opened on the file has the size the file has.  As
 * fio: native falls back to none where the file system cannot reserve,
 * posix says why it could not and goes on, keep's failure is an error. */
static int make_room(const char *name, int fd, uint64_t size,
                     enum falloc_mode mode)
{
    int err;

    switch (mode) {
    case FALLOC_NATIVE:
        (void)fallocate(fd, 0, 0, (off_t)size);
        break;
    case FALLOC_POSIX:
        err = posix_fallocate(fd, 0, (off_t)size);
        if (err) {
            fprintf(stderr, "coblk-bench: %s: posix_fallocate fails: %s\n",
                    name, strerror(err));
        }
        break;
    case FALLOC_KEEP:
        if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)size) < 0) {
            return -1;
        }
        break;
    case FALLOC_NONE:
    case FALLOC_TRUNCATE:
        break;
    }
    return ftruncate(fd, (off_t)size);
}

int bench_device_spec(const struct job *job, char *spec, size_t size,
                      bool *created, char *err, size_t err_size)
{
    const char *name = job->filename;

    *created = false;
    if (job->engine == ENGINE_NULL) {
        /* Like fio's null engine: buffers are not touched. */
        snprintf(spec, size, "null:size=%llu,read-zeroes=off",
                 (unsigned long long)(job->size ? job->offset + job->size
                                                : DEFAULT_NULL_SIZE));
        return 0;
    }
    if (!strncmp(name, "file:", 5) || !strncmp(name, "null:", 5) ||
        !strncmp(name, "blkdebug:", 9) || !strncmp(name, "raw:", 4) ||
        !strncmp(name, "qcow2:", 6) || !strncmp(name, "nbd://", 6) ||
        !strncmp(name, "nbd+unix://", 11) || !strncmp(name, "nbd+tcp://", 10) ||
        !strncmp(name, "rbd:", 4)) {
        snprintf(spec, size, "%s", name);
        return 0;
    }
    struct stat st;
    bool missing = stat(name, &st) < 0;
    uint64_t want = bench_file_size(job);
    /* fio makes a missing file, and extends one too short for a job that
     * writes; a sparse one does for a job that writes (the caller writes
     * a new one out for a job that reads).  A job that only reads never
     * changes a file that exists, unlike fio's: it is checked against the
     * size the file has.  Without a size there is nothing to make. */
    bool short_file = !missing && S_ISREG(st.st_mode) &&
                      (uint64_t)st.st_size < want;
    *created = job->size && missing;
    if (job->size && (missing || (short_file && !only_reads(job)))) {
        /* Read too: glibc's posix_fallocate() reads the blocks a file
         * has where the file system cannot reserve. */
        int fd = open(name, O_CREAT | O_RDWR, 0644);
        /* fill_device: the writes take the room, up to what there is. */
        int mode = job->fill_device ? FALLOC_NONE : job->fallocate;
        if (fd < 0 || make_room(name, fd, want, mode) < 0) {
            snprintf(err, err_size, "%s: cannot lay out %llu bytes: %s", name,
                     (unsigned long long)want, strerror(errno));
            if (fd >= 0) {
                close(fd);
            }
            return -1;
        }
        close(fd);
    }
    snprintf(spec, size, "file:%s", name);
    return 0;
}

/* ---- state of a running instance ------------------------------------------- */

struct slot {
    struct coblk_req req;
    struct iovec iov;
    uint64_t prep_ns, sub_ns;
    uint64_t bytes;
    uint64_t seq;               /* verify: the write's number */
    uint64_t due_ns;            /* read_iolog=: not before stats_ns + it */
    int dir;                    /* DIR_*, DIR_SYNC or DIR_END_SYNC */
    unsigned prio_index;        /* in job->prio_values[dir]; 0: the job's */
};

/* The slot of a request (its first member). */
static struct slot *slot_of(struct coblk_req *req)
{
    return (struct slot *)req;
}

struct extent {
    uint64_t unit, count;       /* in units of bs_unit */
};

struct runner {
    const struct job *job;
    struct job_result *r;
    struct coblk_queue *q;
    struct picker pick;
    bool cmdprio;               /* some direction draws priorities */
    struct frand prio_rand;     /* cmdprio's draws (fio's prio_state) */
    struct slot *slots;
    char *buffers;
    struct slot **free_slots;
    unsigned nr_free;
    struct coblk_req **ready;   /* prepared, not yet submitted */
    unsigned nr_ready;
    struct slot *held;          /* prepared, waiting (enum hold) */
    struct coblk_req **done;
    unsigned inflight;
    /* latency_target: the search, and the free slots it keeps back (the
     * depth is iodepth less those); what to do once the reap is over. */
    bool lat_on;
    struct lat_target lat;
    unsigned withheld;
    enum lat_action lat_pending;

    uint64_t offset;            /* of the region: offset= + offset_increment */
    uint64_t first_sector, unit_bytes, units;
    uint64_t dev_bytes;
    uint64_t issued_bytes, total_bytes, issued_ios, max_ios;
    uint64_t stats_ns, deadline_ns, ramp_end_ns;
    uint64_t rate_bytes[3], rate_ios[3];    /* since stats_ns */
    /* rate_process=poisson: when each direction's next I/O may go, from
     * stats_ns, and the draws of its intervals. */
    uint64_t poisson_ns[3], poisson_rng;
    /* ratemin, rate_iops_min: bytes and I/Os completed, and at the last
     * check, and its time. */
    bool min_rate;
    uint64_t done_bytes[3], done_ios[3];
    uint64_t min_bytes[3], min_ios[3], min_at[3], io_start_ns;
    unsigned reap_max;          /* completions one reap takes at most */

    /* The clock: read at submission only for what needs it (slat, clat,
     * the latency logs); with gtod_reduce, at completion only every
     * (clock_mask + 1)th reap, as fio. */
    bool time_submit;
    unsigned clock_mask, clock_turns;
    uint64_t last_now;
    uint64_t writes_since_sync;

    /* Sampling for the series, bw/iops statistics and logs. */
    uint64_t next_sample_ns, next_log_ns, log_interval_ns;
    uint64_t sample_ios[DIR_COUNT], sample_bytes[DIR_COUNT];
    uint64_t log_ios[DIR_COUNT], log_bytes[DIR_COUNT];
    struct job_logs logs;
    bool logging;
    unsigned log_index;
    struct iolog iolog;         /* write_iolog= */
    uint64_t iolog_start_ns;

    /* Verification: the write number each unit last got, and which units
     * a write in flight covers (overlapping writes go one at a time, or
     * the device may keep either). */
    struct verify_params vp;
    uint64_t seed, write_seq;
    struct content content;     /* what writes carry */
    uint32_t *unit_seq;
    uint8_t *unit_busy;
    bool serialize;             /* serialize_overlap: reads too wait */
    struct extent *backlog;
    unsigned nr_backlog;
    uint64_t bad_units;
    bool full;                  /* fill_device: a write found no room */
    bool verifying;             /* reading back what was written */
    bool check_reads;           /* a read job's verify: each read checked */
    bool may_hold;              /* rate limits, flow, or writes kept apart */
    struct flow *flow;          /* flow=: the jobs this one keeps pace with */
    uint64_t flow_count;        /* its I/Os the flow counted */
    /* thinktime: reads, writes and trims submitted (completed: done_ios),
     * their count at the last pause, and when it ended. */
    uint64_t think_issued, think_last, think_at;
    unsigned snapshot_gen;      /* the last snapshot request served */
    /* read_iolog=: the log and its next I/O (none: the run ends). */
    struct replay replay;
    struct replay_io next;
    bool replaying, have_next;
};

_Static_assert((int)REPLAY_READ == (int)DIR_READ &&
                   (int)REPLAY_WRITE == (int)DIR_WRITE &&
                   (int)REPLAY_TRIM == (int)DIR_TRIM,
               "a replayed I/O's kind is its direction");

static int job_error(struct job_result *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int job_error(struct job_result *r, int err, const char *fmt, ...)
{
    va_list ap;

    if (r->error) {
        return r->error;
    }
    va_start(ap, fmt);
    vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
    va_end(ap);
    r->error = err;
    return err;
}

static const char *dir_name(int dir)
{
    static const char *const names[] = { "read", "write", "trim", "flush",
                                         "flush" };
    return names[dir];
}

static bool ramping(const struct runner *rn)
{
    return rn->ramp_end_ns != 0;
}

/* ---- sampling ---------------------------------------------------------------- */

static int series_push(struct series *s, const struct series_point *p)
{
    if (s->count == s->capacity) {
        size_t cap = s->capacity ? 2 * s->capacity : 64;
        struct series_point *points = realloc(s->points, cap * sizeof(*p));
        if (!points) {
            return -ENOMEM;
        }
        s->points = points;
        s->capacity = cap;
    }
    s->points[s->count++] = *p;
    return 0;
}

/* The I/O of direction d since the marks, which move up to now. */
static void since_mark(const struct job_result *r, int d, uint64_t ios_mark[],
                       uint64_t bytes_mark[], uint64_t *ios, uint64_t *bytes)
{
    *ios = r->dir[d].ios - ios_mark[d];
    *bytes = r->dir[d].bytes - bytes_mark[d];
    ios_mark[d] = r->dir[d].ios;
    bytes_mark[d] = r->dir[d].bytes;
}

/* One 500 ms interval: a point of the series, bw and IOPS samples. */
static void take_sample(struct runner *rn, uint64_t now)
{
    struct job_result *r = rn->r;
    double sec = (double)r->series.interval_ms / 1000;
    struct series_point p = { .t_ms = (now - rn->stats_ns) / 1000000 };

    for (int d = 0; d < DIR_COUNT; d++) {
        since_mark(r, d, rn->sample_ios, rn->sample_bytes, &p.ios[d],
                   &p.bytes[d]);
        if (job_does(rn->job, d) && !rn->job->disable_bw) {
            sample_add(&r->dir[d].bw, (double)p.bytes[d] / 1024 / sec);
            sample_add(&r->dir[d].iops, (double)p.ios[d] / sec);
        }
    }
    if (series_push(&r->series, &p) < 0) {
        job_error(r, -ENOMEM, "out of memory for the I/O series");
    }
    rn->next_sample_ns += r->series.interval_ms * 1000000;
}

/* The bandwidth and IOPS logs' line for the window ending now. */
static void log_window(struct runner *rn, uint64_t now)
{
    struct job_result *r = rn->r;
    uint64_t begin = rn->next_log_ns - rn->log_interval_ns;
    double sec = (double)(now > begin ? now - begin : 1) / 1e9;

    for (int d = 0; d < DIR_COUNT; d++) {
        uint64_t ios, bytes;
        since_mark(r, d, rn->log_ios, rn->log_bytes, &ios, &bytes);
        if (job_does(rn->job, d)) {
            logs_window(&rn->logs, (now - rn->stats_ns) / 1000000, d,
                        ios ? bytes / ios : rn->job->bs_min,
                        (double)bytes / 1024 / sec, (double)ios / sec);
        }
    }
    rn->next_log_ns += rn->log_interval_ns;
}

/* Statistics start afresh when the ramp ends. */
static void end_ramp(struct runner *rn, uint64_t now)
{
    struct job_result *r = rn->r;

    bench_result_clear_dirs(r);
    memset(&r->sync, 0, sizeof(r->sync));
    r->sync_ios = 0;
    memset(r->io_depth, 0, sizeof(r->io_depth));
    memset(r->submit, 0, sizeof(r->submit));
    memset(r->complete, 0, sizeof(r->complete));
    rn->ramp_end_ns = 0;
    rn->stats_ns = now;
    rn->next_sample_ns = now + r->series.interval_ms * 1000000;
    rn->next_log_ns = now + rn->log_interval_ns;
    if (rn->job->runtime_ns) {
        rn->deadline_ns = now + rn->job->runtime_ns;
    }
    memset(rn->rate_bytes, 0, sizeof(rn->rate_bytes));
    memset(rn->rate_ios, 0, sizeof(rn->rate_ios));
    memset(rn->poisson_ns, 0, sizeof(rn->poisson_ns));
    atomic_store_explicit(&r->progress.state, STATE_RUNNING,
                          memory_order_relaxed);
}

static _Atomic unsigned snapshot_request;

unsigned bench_request_snapshot(void)
{
    return atomic_fetch_add(&snapshot_request, 1) + 1;
}

/* The directions' statistics into the snapshot's, which keeps its own
 * copies of those by priority (made at the first snapshot; none when
 * out of memory): the instance goes on writing to its arrays. */
static void snapshot_dirs(struct job_result *snap, const struct job_result *r)
{
    struct prio_lat *own[DIR_COUNT];

    for (int d = 0; d < DIR_COUNT; d++) {
        own[d] = snap->dir[d].prios;
    }
    memcpy(snap->dir, r->dir, sizeof(r->dir));
    for (int d = 0; d < DIR_COUNT; d++) {
        struct dir_stats *s = &snap->dir[d];
        size_t size = s->nr_prios * sizeof(*s->prios);
        if (s->prios && !own[d]) {
            own[d] = malloc(size);
        }
        if (own[d]) {
            memcpy(own[d], s->prios, size);
        }
        s->prios = own[d];
        s->nr_prios = own[d] ? s->nr_prios : 0;
    }
}

static void serve_snapshot(struct runner *rn)
{
    /* Acquire: the main thread is done reading the previous copy. */
    unsigned gen = atomic_load_explicit(&snapshot_request,
                                        memory_order_acquire);
    struct job_result *r = rn->r;

    if (gen == rn->snapshot_gen || !r->snapshot) {
        return;
    }
    rn->snapshot_gen = gen;
    snapshot_dirs(r->snapshot, r);
    r->snapshot->sync = r->sync;
    r->snapshot->sync_ios = r->sync_ios;
    memcpy(r->snapshot->io_depth, r->io_depth, sizeof(r->io_depth));
    memcpy(r->snapshot->submit, r->submit, sizeof(r->submit));
    memcpy(r->snapshot->complete, r->complete, sizeof(r->complete));
    r->snapshot->runtime_ns = bench_now_ns() - rn->stats_ns;
    atomic_store_explicit(&r->progress.snapshot_gen, gen,
                          memory_order_release);
}

static uint64_t completed_ios(const struct runner *rn)
{
    return rn->done_ios[DIR_READ] + rn->done_ios[DIR_WRITE] +
           rn->done_ios[DIR_TRIM];
}

/* latency_target's search from depth 1: at the start, and after the
 * ramp (what it saw there does not count). */
static void start_lat_target(struct runner *rn, uint64_t now)
{
    const struct job *job = rn->job;

    lat_target_init(&rn->lat, job->latency_target_ns, job->latency_window_ns,
                    job->latency_percentile, job->latency_run, job->iodepth,
                    now, completed_ios(rn));
    rn->withheld = job->iodepth - rn->lat.depth;
    rn->lat_pending = LAT_GO_ON;
}

static void tick(struct runner *rn, uint64_t now)
{
    if (ramping(rn)) {
        if (now >= rn->ramp_end_ns) {
            end_ramp(rn, now);
            if (rn->lat_on) {
                start_lat_target(rn, now);  /* as fio: afresh after it */
            }
        }
        return;
    }
    if (now >= rn->next_sample_ns) {
        take_sample(rn, now);
    }
    if (rn->logging && now >= rn->next_log_ns) {
        log_window(rn, now);
    }
}

static void publish_progress(struct runner *rn)
{
    struct job_result *r = rn->r;

    for (int d = 0; d < DIR_COUNT; d++) {
        atomic_store_explicit(&r->progress.ios[d], r->dir[d].ios,
                              memory_order_relaxed);
        atomic_store_explicit(&r->progress.bytes[d], r->dir[d].bytes,
                              memory_order_relaxed);
    }
}

/* ---- preparing requests ------------------------------------------------------ */

static void fill_for_verify(struct runner *rn, struct slot *s, uint64_t unit)
{
    char *buf = s->iov.iov_base;

    s->seq = ++rn->write_seq;
    for (uint64_t i = 0; i < s->bytes / rn->vp.unit; i++) {
        verify_fill(&rn->vp, buf + i * rn->vp.unit,
                    unit * rn->unit_bytes + i * rn->vp.unit + rn->offset,
                    s->seq);
    }
}

/* The I/O log's line for the request in s. */
static void log_issue(struct runner *rn, const struct slot *s)
{
    uint64_t t_us = (bench_now_ns() - rn->iolog_start_ns) / 1000;
    uint64_t offset = s->req.sector * COBLK_SECTOR_SIZE;

    iolog_io(&rn->iolog, t_us, s->dir <= DIR_TRIM ? s->dir : 3,
             s->dir <= DIR_TRIM ? offset : 0, s->bytes);
}

static void prepare_flush(struct runner *rn, struct slot *s)
{
    s->dir = DIR_SYNC;
    s->bytes = 0;
    s->prio_index = 0;
    s->req.type = COBLK_REQ_FLUSH;
    s->req.flags = 0;
    s->req.sector = 0;
    s->req.nr_sectors = 0;
    s->req.iov = NULL;
    s->req.iovcnt = 0;
    if (rn->iolog.file) {
        log_issue(rn, s);
    }
}

/* fio's fio_cmdprio_set_ioprio(): a draw of 0..99 below the share of
 * I/Os of this size that take another priority picks one of those
 * (cumulatively, in the order given); else the job's, index 0. */
static unsigned pick_prio(struct runner *rn, int dir, uint64_t bytes)
{
    const struct prio_choice *c = rn->job->prio_choices[dir];
    unsigned n = rn->job->nr_prio_choices[dir], total = 0;

    for (unsigned i = 0; i < n; i++) {
        total += !c[i].bs || c[i].bs == bytes ? c[i].pct : 0;
    }
    if (!total) {
        return 0;               /* as fio: no draw */
    }
    unsigned draw = (unsigned)frand_between(&rn->prio_rand, 0, 99);
    for (unsigned i = 0, below = 0; i < n && draw < total; i++) {
        below += !c[i].bs || c[i].bs == bytes ? c[i].pct : 0;
        if (draw < below) {
            return c[i].index;
        }
    }
    return 0;
}

/* cmdprio: the priority of the I/O in s (reads and writes); its request
 * carries it unless it is the job's (the thread's own, ioprio_set's).
 * Without cmdprio, every slot keeps index 0 and no priority flags.  Out
 * of line: the default path stays as small as it was. */
static __attribute__((noinline)) void set_prio(struct runner *rn,
                                               struct slot *s)
{
    int dir = s->dir;

    s->prio_index = dir < CMDPRIO_DIRS ? pick_prio(rn, dir, s->bytes) : 0;
    uint16_t ioprio = s->prio_index ? rn->job->prio_values[dir][s->prio_index]
                                    : 0;
    s->req.flags = COBLK_REQ_IOPRIO(ioprio);
}

/* s's request: a read, write or trim of bytes at sector, counted as
 * issued. */
static void set_request(struct runner *rn, struct slot *s, int dir,
                        uint64_t sector, uint64_t bytes)
{
    static const uint32_t types[] = { COBLK_REQ_IN, COBLK_REQ_OUT,
                                      COBLK_REQ_DISCARD };

    s->dir = dir;
    s->bytes = bytes;
    s->req.type = types[dir];
    s->req.sector = sector;
    s->req.nr_sectors = (uint32_t)(bytes / COBLK_SECTOR_SIZE);
    s->iov.iov_len = bytes;
    s->req.iov = dir == DIR_TRIM ? NULL : &s->iov;
    s->req.iovcnt = dir == DIR_TRIM ? 0 : 1;
    rn->issued_bytes += bytes;
    rn->issued_ios++;
    rn->writes_since_sync += dir == DIR_WRITE;
}

static void prepare_io(struct runner *rn, struct slot *s)
{
    int dir = picker_direction(&rn->pick);
    uint64_t bytes;
    uint64_t unit = picker_block(&rn->pick, &bytes);

    set_request(rn, s, dir,
                rn->first_sector + unit * (rn->unit_bytes / COBLK_SECTOR_SIZE),
                bytes);
    if (__builtin_expect(rn->cmdprio, 0)) {
        set_prio(rn, s);
    }
    if (dir == DIR_WRITE && rn->unit_seq) {
        fill_for_verify(rn, s, unit);
    } else if (dir == DIR_WRITE) {
        content_write(&rn->content, s->iov.iov_base, bytes,
                      s->req.sector * COBLK_SECTOR_SIZE);
    }
    if (rn->iolog.file) {
        log_issue(rn, s);
    }
}

/* The log's next I/O, or none: the end of the replay. */
static void replay_advance(struct runner *rn)
{
    char err[512];
    int ret = replay_next(&rn->replay, &rn->next, err, sizeof(err));

    rn->have_next = ret == 1;
    if (ret < 0) {
        job_error(rn->r, -EINVAL, "%s", err);
    }
}

/* read_iolog=: the log's next I/O as it was recorded. */
static void prepare_replayed(struct runner *rn, struct slot *s)
{
    const struct replay_io *io = &rn->next;

    if (io->kind == REPLAY_SYNC) {
        prepare_flush(rn, s);
    } else {
        set_request(rn, s, io->kind, io->offset / COBLK_SECTOR_SIZE,
                    io->bytes);
        if (rn->cmdprio) {
            set_prio(rn, s);
        }
        if (io->kind == REPLAY_WRITE) {
            content_write(&rn->content, s->iov.iov_base, io->bytes,
                          io->offset);
        }
        if (rn->iolog.file) {
            log_issue(rn, s);
        }
    }
    s->due_ns = io->due_us * 1000;
    replay_advance(rn);
}

/* rate_process=poisson: the next interval of direction d, drawn from
 * the exponential distribution of the rate's mean (fio's usec_for_io()). */
static void poisson_next(struct runner *rn, int d)
{
    const struct job *job = rn->job;
    double iops = job->rate_iops[d] ? (double)job->rate_iops[d]
                                    : (double)job->rate[d] /
                                          (double)job->dir_bs_min[d];
    /* Uniform in (0, 1]: never the log of 0. */
    double u = (double)((picker_rand(&rn->poisson_rng) >> 11) + 1) /
               9007199254740992.0;

    if (iops > 0) {
        rn->poisson_ns[d] += (uint64_t)(-log(u) * 1e9 / iops);
    }
}

/* When the rate limits let an I/O of s's direction go: 0 for now. */
static uint64_t rate_wait_until(const struct runner *rn, const struct slot *s,
                                uint64_t now)
{
    const struct job *job = rn->job;
    int d = s->dir;
    uint64_t at = 0;

    if (s->due_ns) {
        at = rn->stats_ns + s->due_ns;      /* a replay keeps its pace */
    }
    if (d > DIR_TRIM) {
        return at > now ? at : 0;
    }
    if (job->rate_process == RATE_POISSON &&
        (job->rate[d] || job->rate_iops[d])) {
        at = rn->stats_ns + rn->poisson_ns[d];
        return at > now ? at : 0;
    }
    if (job->rate[d]) {
        at = rn->stats_ns + (uint64_t)((double)rn->rate_bytes[d] * 1e9 /
                                       (double)job->rate[d]);
    }
    if (job->rate_iops[d]) {
        uint64_t by_iops = rn->stats_ns + (uint64_t)((double)rn->rate_ios[d] *
                                                     1e9 /
                                                     (double)job->rate_iops[d]);
        at = by_iops > at ? by_iops : at;
    }
    return at > now ? at : 0;
}

/* Why the prepared request in rn->held waits. */
enum hold { HOLD_NONE, HOLD_RATE, HOLD_OVERLAP, HOLD_FLOW };

static uint64_t slot_unit(const struct runner *rn, const struct slot *s)
{
    return (s->req.sector - rn->first_sector) * COBLK_SECTOR_SIZE /
           rn->unit_bytes;
}

static bool overlaps_in_flight(const struct runner *rn,
                                     const struct slot *s)
{
    uint64_t unit = slot_unit(rn, s);

    for (uint64_t i = 0; i < s->bytes / rn->unit_bytes; i++) {
        if (rn->unit_busy[unit + i]) {
            return true;
        }
    }
    return false;
}

static void mark_busy(struct runner *rn, const struct slot *s, uint8_t busy)
{
    memset(rn->unit_busy + slot_unit(rn, s), busy, s->bytes / rn->unit_bytes);
}

/* The run ended while a request waited: it is not issued after all. */
static void drop_held(struct runner *rn)
{
    struct slot *s = rn->held;

    if (s->dir <= DIR_TRIM) {
        rn->issued_bytes -= s->bytes;
        rn->issued_ios--;
    }
    rn->free_slots[rn->nr_free++] = s;
    rn->held = NULL;
}

static enum hold hold_reason(struct runner *rn, struct slot *s, uint64_t now,
                             uint64_t *until)
{
    if ((s->dir == DIR_WRITE || (rn->serialize && s->dir <= DIR_TRIM)) &&
        rn->unit_busy && overlaps_in_flight(rn, s)) {
        return HOLD_OVERLAP;
    }
    *until = rate_wait_until(rn, s, now);
    if (*until) {
        return HOLD_RATE;
    }
    /* Last: a request the flow lets go counts in it. */
    if (rn->flow && !flow_may_issue(rn->flow, &rn->flow_count,
                                    rn->job->flow)) {
        return HOLD_FLOW;
    }
    return HOLD_NONE;
}

/* Whether the run may issue more now: its end, a stop, an error.  Once
 * a turn; the counts, once a request (counts_left). */
static bool issuing_open(const struct runner *rn, uint64_t now)
{
    return now < rn->deadline_ns && !stopping() && !rn->r->error &&
           !rn->full &&
           !atomic_load_explicit(&rn->r->progress.stop, memory_order_relaxed);
}

static bool counts_left(const struct runner *rn)
{
    if (rn->replaying) {
        return rn->have_next && rn->issued_ios < rn->max_ios;
    }
    return rn->issued_bytes < rn->total_bytes &&
           rn->issued_ios < rn->max_ios && !rn->pick.pass_ended;
}

/* Takes a free slot and prepares its request: the flush fsync= asks
 * for, or the next I/O. */
static struct slot *take_and_prepare(struct runner *rn)
{
    const struct job *job = rn->job;
    struct slot *s = rn->free_slots[--rn->nr_free];

    s->due_ns = 0;
    /* As fio: a flush before the write after every fsync=N. */
    if (job->fsync && rn->writes_since_sync >= job->fsync) {
        prepare_flush(rn, s);
        rn->writes_since_sync = 0;
    } else if (rn->replaying) {
        prepare_replayed(rn, s);
    } else {
        prepare_io(rn, s);
    }
    return s;
}

/* A prepared request may go: counted for the rate limits and the write
 * overlaps, which are the only reasons to hold one. */
static void may_go(struct runner *rn, struct slot *s)
{
    if (s->dir <= DIR_TRIM) {
        rn->rate_bytes[s->dir] += s->bytes;
        rn->rate_ios[s->dir]++;
        if (rn->job->rate_process == RATE_POISSON) {
            poisson_next(rn, s->dir);
        }
    }
    if ((s->dir == DIR_WRITE || (rn->serialize && s->dir <= DIR_TRIM)) &&
        rn->unit_busy) {
        mark_busy(rn, s, 1);
    }
}

/* ---- thinktime --------------------------------------------------------------- */

static unsigned think_blocks(const struct job *job)
{
    return job->thinktime_blocks ? job->thinktime_blocks : 1;
}

static uint64_t think_count(const struct runner *rn)
{
    if (rn->job->thinktime_blocks_type == THINK_ISSUE) {
        return rn->think_issued;
    }
    return rn->done_ios[0] + rn->done_ios[1] + rn->done_ios[2];
}

/* thinktime_blocks_type=issue: no more I/O before the pause once the
 * batch holds the blocks still allowed. */
static bool think_limited(const struct runner *rn)
{
    const struct job *job = rn->job;

    return job->thinktime_ns && job->thinktime_blocks_type == THINK_ISSUE &&
           rn->think_issued + rn->nr_ready >=
               rn->think_last + think_blocks(job);
}

/* Prepares requests into every free slot the limits allow; returns why
 * the next one waits, and with HOLD_RATE until when. */
static enum hold prepare_ready(struct runner *rn, uint64_t now,
                               uint64_t *until)
{
    bool open = issuing_open(rn, now);

    if (rn->held && !open) {
        drop_held(rn);
    }
    while (rn->nr_free > rn->withheld || rn->held) {
        struct slot *s = rn->held;
        if (!s) {
            if (!open || !counts_left(rn) || think_limited(rn)) {
                break;
            }
            s = take_and_prepare(rn);
        }
        if (rn->may_hold) {
            enum hold why = hold_reason(rn, s, now, until);
            rn->held = why == HOLD_NONE ? NULL : s;
            if (why != HOLD_NONE) {
                return why;
            }
            may_go(rn, s);
        }
        s->prep_ns = now;
        rn->ready[rn->nr_ready++] = &s->req;
    }
    return HOLD_NONE;
}

/* ---- submitting and completing ---------------------------------------------- */

/* Submission latencies of a batch just submitted at now: one update per
 * run of requests of the same direction prepared at the same time. */
static void add_slat(struct runner *rn, uint64_t now, unsigned n)
{
    for (unsigned i = 0; i < n;) {
        const struct slot *s = (const struct slot *)rn->ready[i];
        unsigned run = 1;
        while (i + run < n &&
               ((const struct slot *)rn->ready[i + run])->dir == s->dir &&
               ((const struct slot *)rn->ready[i + run])->prep_ns ==
                   s->prep_ns) {
            run++;
        }
        if (s->dir < DIR_COUNT && rn->job->slat_percentiles) {
            lat_add_n(&rn->r->dir[s->dir].slat, now - s->prep_ns, run);
        } else if (s->dir < DIR_COUNT) {
            lat_add_moments(&rn->r->dir[s->dir].slat, now - s->prep_ns,
                            run);
        }
        i += run;
    }
}

static int submit_ready(struct runner *rn)
{
    unsigned n = rn->nr_ready;

    if (coblk_queue_submit(rn->q, rn->ready, n) != (int)n) {
        return job_error(rn->r, -EIO, "submit: %s", coblk_last_error());
    }
    if (rn->job->thinktime_ns) {
        for (unsigned i = 0; i < n; i++) {
            rn->think_issued += ((struct slot *)rn->ready[i])->dir <= DIR_TRIM;
        }
    }
    if (rn->time_submit) {
        uint64_t now = bench_now_ns();
        for (unsigned i = 0; i < n; i++) {
            ((struct slot *)rn->ready[i])->sub_ns = now;
        }
        if (!rn->job->disable_slat) {
            add_slat(rn, now, n);
        }
    }
    rn->inflight += n;
    rn->nr_ready = 0;
    rn->r->io_depth[depth_bucket(rn->inflight)] += n;
    rn->r->submit[batch_bucket(n)]++;
    return 0;
}

/* continue_on_error: the error counted, the job going on. */
static void let_error_through(struct runner *rn, int err)
{
    if (!rn->r->total_err++) {
        rn->r->first_error = -err;
    }
}

/* verify_dump=1, as fio: the bad block as read to FILE.OFFSET.received
 * in the working directory, and what it should hold to .expected when
 * the job knows which write it was. */
static void dump_bad(const struct runner *rn, const void *got,
                     uint64_t offset, uint64_t seq)
{
    const char *slash = strrchr(rn->job->filename, '/');
    const char *base = slash ? slash + 1 : rn->job->filename;
    char path[4200];
    void *want = NULL;

    for (int kind = 0; kind < 2; kind++) {
        const void *data = got;
        if (kind == 1) {
            if (seq == VERIFY_ANY_SEQ || !(want = malloc(rn->vp.unit))) {
                break;
            }
            verify_fill(&rn->vp, want, offset, seq);
            data = want;
        }
        snprintf(path, sizeof(path), "%s.%llu.%s", base,
                 (unsigned long long)offset, kind ? "expected" : "received");
        FILE *f = fopen(path, "w");
        if (!f || fwrite(data, 1, rn->vp.unit, f) != rn->vp.unit) {
            fprintf(stderr, "coblk-bench: verify_dump: %s: %s\n", path,
                    strerror(errno));
        }
        if (f) {
            fclose(f);
        }
    }
    free(want);
}

static void check_read(struct runner *rn, const struct slot *s,
                       uint64_t unit, bool known_seq)
{
    const char *buf = s->iov.iov_base;
    uint64_t per_unit = rn->unit_bytes / rn->vp.unit;

    for (uint64_t i = 0; i < s->bytes / rn->vp.unit; i++) {
        char msg[400];
        uint64_t seq = known_seq ? rn->unit_seq[unit + i / per_unit]
                                 : VERIFY_ANY_SEQ;
        uint64_t offset = unit * rn->unit_bytes + i * rn->vp.unit +
                          rn->offset;
        if (verify_check(&rn->vp, buf + i * rn->vp.unit, offset, seq, msg,
                         sizeof(msg)) < 0) {
            if (rn->job->verify_dump) {
                dump_bad(rn, buf + i * rn->vp.unit, offset, seq);
            }
            if (bench_error_ignored(rn->job, 2, EILSEQ)) {
                let_error_through(rn, -EILSEQ);
            } else if (!rn->bad_units++) {
                job_error(rn->r, -EILSEQ, "verify: %s", msg);
            }
        }
    }
}

/* latency_target's step: the depth it chose now, what to do after the
 * reap (the most drastic of the reap's). */
static void lat_step(struct runner *rn, enum lat_action a)
{
    rn->withheld = rn->job->iodepth - rn->lat.depth;
    rn->lat_pending = a > rn->lat_pending ? a : rn->lat_pending;
}

/* fio's latencies by priority of a run of n completions (of the same
 * latencies, each of its own priority): the total latency with
 * lat_percentiles, else the completion latency. */
static void add_prio_latencies(const struct job *job, struct dir_stats *d,
                               struct coblk_req *const *run, unsigned n,
                               uint64_t now)
{
    const struct slot *s = slot_of(run[0]);
    bool total = job->lat_percentiles;
    uint64_t ns = total ? now - s->prep_ns : now - s->sub_ns;

    if (total ? job->disable_lat : job->disable_clat) {
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        lat_add(&d->prios[slot_of(run[i])->prio_index].lat, ns);
    }
}

/* The priority an I/O of s's direction went at. */
static uint16_t slot_ioprio(const struct job *job, const struct slot *s)
{
    return s->prio_index ? job->prio_values[s->dir][s->prio_index]
                         : job->ioprio;
}

/* Accounts n completions seen at now, the first s: of one direction,
 * submitted and prepared at the same times, so of the same latencies
 * (one clock read a submission and a reap).  One statistics update for
 * them all, not one each; bytes is their sum. */
static void account(struct runner *rn, struct coblk_req *const *run,
                    unsigned n, uint64_t bytes, uint64_t now)
{
    const struct slot *s = slot_of(run[0]);
    struct job_result *r = rn->r;
    const struct job *job = rn->job;

    if (s->dir >= DIR_SYNC) {
        if (s->dir == DIR_SYNC) {
            r->sync_ios += n;
            if (!job->disable_clat) {       /* fio's sync latency is one */
                lat_add_n(&r->sync, now - s->sub_ns, n);
            }
        }
        return;
    }
    struct dir_stats *d = &r->dir[s->dir];
    d->ios += n;
    d->bytes += bytes;
    if (!job->disable_clat) {
        lat_add_n(&d->clat, now - s->sub_ns, n);
    }
    if (!job->disable_lat && job->lat_percentiles) {
        lat_add_n(&d->lat, now - s->prep_ns, n);
    } else if (!job->disable_lat) {
        lat_add_moments(&d->lat, now - s->prep_ns, n);
    }
    if (d->prios) {
        add_prio_latencies(job, d, run, n, now);
    }
    if (rn->lat_on && !ramping(rn) && now - s->prep_ns > rn->lat.target_ns) {
        lat_step(rn, lat_target_missed(&rn->lat, n, now, completed_ios(rn)));
    }
    if (rn->logging && !ramping(rn)) {
        for (unsigned i = 0; i < n; i++) {
            const struct slot *si = slot_of(run[i]);
            logs_io(&rn->logs, (now - rn->stats_ns) / 1000000, s->dir,
                    si->bytes, si->req.sector * COBLK_SECTOR_SIZE,
                    slot_ioprio(job, si), s->sub_ns - s->prep_ns,
                    now - s->sub_ns, now - s->prep_ns);
        }
    }
}

static void set_unit_seq(struct runner *rn, uint64_t unit, uint64_t bytes,
                         uint64_t seq)
{
    for (uint64_t i = 0; i < bytes / rn->unit_bytes; i++) {
        rn->unit_seq[unit + i] = (uint32_t)seq;
    }
}

/* A write done: its units now hold its number. */
static void record_write(struct runner *rn, const struct slot *s)
{
    uint64_t unit = slot_unit(rn, s);

    set_unit_seq(rn, unit, s->bytes, s->seq);
    if (rn->backlog) {
        rn->backlog[rn->nr_backlog++] = (struct extent){
            unit, s->bytes / rn->unit_bytes };
    }
}

/* fill_device: a write that found the device full ends the writing; it
 * is neither an error nor counted, as in fio. */
static bool found_full(const struct runner *rn, const struct slot *s)
{
    int err = s->req.error;

    return rn->job->fill_device && s->dir == DIR_WRITE &&
           s->req.status != COBLK_S_OK && (err == -ENOSPC || err == -EDQUOT);
}

/* A request done: checks and bookkeeping; the statistics are account()'s. */
static void complete(struct runner *rn, struct slot *s)
{
    bool full = found_full(rn, s);

    rn->full |= full;
    if (s->dir <= DIR_TRIM && !full) {
        rn->done_bytes[s->dir] += s->bytes;
        rn->done_ios[s->dir]++;
    }
    if ((s->dir == DIR_WRITE || (rn->serialize && s->dir <= DIR_TRIM)) &&
        rn->unit_busy) {
        mark_busy(rn, s, 0);
    }
    if (full) {
        rn->free_slots[rn->nr_free++] = s;
        return;
    }
    int err = s->req.error ? s->req.error : -EIO;
    bool read_or_write = s->dir == DIR_READ || s->dir == DIR_WRITE;
    if (s->req.status != COBLK_S_OK && read_or_write &&
        bench_error_ignored(rn->job, s->dir == DIR_WRITE, -err)) {
        let_error_through(rn, err);
    } else if (s->req.status != COBLK_S_OK) {
        job_error(rn->r, err, "%s at offset %llu: %s", dir_name(s->dir),
                  (unsigned long long)s->req.sector * COBLK_SECTOR_SIZE,
                  strerror(-err));
    } else if (s->dir == DIR_READ && (rn->verifying || rn->check_reads)) {
        check_read(rn, s, slot_unit(rn, s), rn->verifying);
    } else if (s->dir == DIR_WRITE && rn->unit_seq) {
        record_write(rn, s);
    }
    rn->free_slots[rn->nr_free++] = s;
}

static bool same_latencies(const struct slot *a, const struct slot *b)
{
    return a->dir == b->dir && a->sub_ns == b->sub_ns &&
           a->prep_ns == b->prep_ns;
}

/* Completes what one reap returned, accounting each run of requests with
 * the same latencies at once (mostly a whole submitted batch). */
static void complete_all(struct runner *rn, unsigned got, uint64_t now)
{
    for (unsigned i = 0; i < got;) {
        struct slot *first = slot_of(rn->done[i]);
        bool counted = !found_full(rn, first);
        uint64_t bytes = 0;
        unsigned n = 0;
        do {
            struct slot *s = slot_of(rn->done[i + n]);
            complete(rn, s);
            bytes += s->bytes;
            n++;
        } while (i + n < got &&
                 same_latencies(slot_of(rn->done[i + n]), first) &&
                 found_full(rn, slot_of(rn->done[i + n])) == !counted);
        if (counted) {
            account(rn, rn->done + i, n, bytes, now);
        }
        i += n;
    }
}

/* The time completions were seen at. */
static uint64_t completion_clock(struct runner *rn)
{
    if (rn->clock_mask && (++rn->clock_turns & rn->clock_mask)) {
        return rn->last_now;
    }
    return rn->last_now = bench_now_ns();
}

/* Waits for at least min completions (or timeout_ms) and handles up to
 * iodepth_batch_complete_max of them; returns the time it saw them at. */
static uint64_t reap(struct runner *rn, unsigned min, int timeout_ms)
{
    unsigned max = rn->inflight < rn->reap_max ? rn->inflight : rn->reap_max;
    int got = coblk_queue_reap(rn->q, rn->done, min < max ? min : max, max,
                               timeout_ms);
    uint64_t now = completion_clock(rn);

    if (got < 0) {
        job_error(rn->r, got, "reap: %s", coblk_last_error());
        return now;
    }
    complete_all(rn, (unsigned)got, now);
    rn->inflight -= (unsigned)got;
    if (got) {
        rn->r->complete[batch_bucket((unsigned)got)]++;
    }
    publish_progress(rn);
    serve_snapshot(rn);
    return now;
}

static void drain(struct runner *rn)
{
    while (rn->inflight) {
        reap(rn, rn->inflight, -1);
    }
}

/* ---- verification passes ----------------------------------------------------- */

/* A fatal bad block, or a stop, ends verification. */
static bool verify_done(const struct runner *rn)
{
    return (rn->bad_units && rn->job->verify_fatal) || stopping();
}

/* Reads the extents back and checks every unit against its write. */
static void verify_extents(struct runner *rn, const struct extent *ext,
                           size_t n)
{
    uint64_t max_units = rn->job->bs_max / rn->unit_bytes;

    rn->verifying = true;
    for (size_t i = 0; i < n && !verify_done(rn);) {
        struct extent e = ext[i];
        while (e.count && !verify_done(rn)) {
            if (!rn->nr_free) {
                reap(rn, 1, -1);
                continue;
            }
            struct slot *s = rn->free_slots[--rn->nr_free];
            uint64_t units = e.count < max_units ? e.count : max_units;
            s->dir = DIR_READ;
            s->prio_index = 0;
            s->bytes = units * rn->unit_bytes;
            s->req = (struct coblk_req){
                .type = COBLK_REQ_IN, .iov = &s->iov, .iovcnt = 1,
                .sector = rn->first_sector + e.unit * (rn->unit_bytes /
                                                       COBLK_SECTOR_SIZE) };
            s->iov.iov_len = s->bytes;
            s->prep_ns = bench_now_ns();
            if (rn->iolog.file) {
                log_issue(rn, s);
            }
            rn->ready[rn->nr_ready++] = &s->req;
            if (submit_ready(rn) < 0) {
                return;
            }
            e.unit += units;
            e.count -= units;
        }
        i++;
    }
    drain(rn);
    rn->verifying = false;
}

/* Reads back every unit the job wrote, in offset order. */
static void verify_written(struct runner *rn)
{
    struct extent *list = malloc(VERIFY_BATCH * sizeof(*list));
    size_t n = 0;

    if (!list) {
        job_error(rn->r, -ENOMEM, "out of memory for verification");
        return;
    }
    atomic_store_explicit(&rn->r->progress.state, STATE_VERIFYING,
                          memory_order_relaxed);
    for (uint64_t u = 0; u < rn->units; u++) {
        if (!rn->unit_seq[u]) {
            continue;
        }
        if (n && list[n - 1].unit + list[n - 1].count == u) {
            list[n - 1].count++;
            continue;
        }
        if (n == VERIFY_BATCH) {
            verify_extents(rn, list, n);
            n = 0;
        }
        list[n++] = (struct extent){ u, 1 };
    }
    verify_extents(rn, list, n);
    free(list);
}

/* verify_only: what a run of the same job would have written, without
 * writing it (same seeds, same choices). */
static void replay_writes(struct runner *rn)
{
    while (counts_left(rn) && !stopping()) {
        int dir = picker_direction(&rn->pick);
        uint64_t bytes;
        uint64_t unit = picker_block(&rn->pick, &bytes);
        rn->issued_bytes += bytes;
        rn->issued_ios++;
        if (dir == DIR_WRITE) {
            set_unit_seq(rn, unit, bytes, ++rn->write_seq);
        }
    }
}

static void verify_backlog(struct runner *rn)
{
    if (rn->nr_ready) {
        submit_ready(rn);       /* so their writes are in this backlog */
    }
    drain(rn);
    verify_extents(rn, rn->backlog, rn->nr_backlog);
    rn->nr_backlog = 0;
}

/* ---- the I/O loop ---------------------------------------------------------- */

/* How long a reap may wait for the rate limit: never past the end, nor
 * longer than a stop may wait. */
static int wait_ms(const struct runner *rn, uint64_t until, uint64_t now)
{
    until = until < rn->deadline_ns ? until : rn->deadline_ns;
    until = until < now + STOP_CHECK_NS ? until : now + STOP_CHECK_NS;
    return until > now ? (int)((until - now + 999999) / 1000000) : 0;
}

/* Whether the job pauses now, as fio's handle_thinktime() decides: after
 * thinktime_blocks I/Os since the last pause; with thinktime_iotime, once
 * that long (and the pause's own length, as fio counts) has passed, and
 * then by blocks only where thinktime_blocks was given. */
static bool think_due(const struct runner *rn, uint64_t now)
{
    const struct job *job = rn->job;

    if (job->thinktime_iotime_ns) {
        if (now - rn->think_at >= job->thinktime_iotime_ns +
                                  job->thinktime_ns) {
            return true;
        }
        if (!job->thinktime_blocks) {
            return false;
        }
    }
    return think_count(rn) >= rn->think_last + think_blocks(job);
}

/* The pause: everything in flight completes, thinktime_spin spins, the
 * rest of thinktime sleeps (a stop or the end of the run cut it). */
static void think(struct runner *rn)
{
    const struct job *job = rn->job;

    drain(rn);
    uint64_t start = bench_now_ns();
    uint64_t spin = job->thinktime_spin_ns < job->thinktime_ns
                        ? job->thinktime_spin_ns : job->thinktime_ns;
    while (bench_now_ns() - start < spin && !stopping()) {
    }
    uint64_t end = start + job->thinktime_ns;
    end = end < rn->deadline_ns ? end : rn->deadline_ns;
    for (uint64_t now = bench_now_ns(); now < end && !stopping();
         now = bench_now_ns()) {
        sleep_until(end);
    }
    rn->think_last = think_count(rn);
    rn->think_at = bench_now_ns();
}

/* ratemin, rate_iops_min: false (the job failed) when a direction did
 * less than its minimum over the last ratecycle, as fio's
 * check_min_rate() judges: after 2 s to settle, from one check to the
 * next at least ratecycle apart. */
static bool min_rate_kept(struct runner *rn, uint64_t now)
{
    const struct job *job = rn->job;

    if (now - rn->io_start_ns < 2000000000ull) {
        return true;
    }
    for (int d = 0; d < 3; d++) {
        if (!job->ratemin[d] && !job->rate_iops_min[d]) {
            continue;
        }
        uint64_t spent_ms = (now - rn->min_at[d]) / 1000000;
        bool sampling = rn->min_bytes[d] || rn->min_ios[d];
        if (sampling && spent_ms < job->ratecycle_ms) {
            continue;
        }
        if (sampling && job->ratemin[d]) {
            uint64_t rate = (rn->done_bytes[d] - rn->min_bytes[d]) * 1000 /
                            spent_ms;
            if (rate < job->ratemin[d]) {
                job_error(rn->r, -EIO, "rate_min=%lluB/s not met, got "
                          "%lluB/s", (unsigned long long)job->ratemin[d],
                          (unsigned long long)rate);
                return false;
            }
        } else if (sampling) {
            uint64_t rate = (rn->done_ios[d] - rn->min_ios[d]) * 1000 /
                            spent_ms;
            if (rate < job->rate_iops_min[d]) {
                job_error(rn->r, -EIO, "rate_iops_min=%llu not met, got "
                          "%llu IOPS",
                          (unsigned long long)job->rate_iops_min[d],
                          (unsigned long long)rate);
                return false;
            }
        }
        rn->min_bytes[d] = rn->done_bytes[d];
        rn->min_ios[d] = rn->done_ios[d];
        rn->min_at[d] = now;
    }
    return true;
}

/* The flow holds the next request: as fio, with flow_sleep everything
 * in flight completes, then the job sleeps that long; without, it tries
 * again soon (fio spins; a short sleep spares the CPU the other jobs of
 * the flow need). */
static void flow_pause(struct runner *rn)
{
    unsigned us = rn->job->flow_sleep ? rn->job->flow_sleep : FLOW_RETRY_US;

    drain(rn);
    sleep_until(bench_now_ns() + us * 1000ull);
}

/* latency_target, after a reap: the window judged, and what the search
 * asks done.  Returns the time. */
static uint64_t lat_turn(struct runner *rn, uint64_t now)
{
    lat_step(rn, lat_target_check(&rn->lat, now, completed_ios(rn)));
    while (rn->lat_pending != LAT_GO_ON) {
        enum lat_action a = rn->lat_pending;
        rn->lat_pending = LAT_GO_ON;
        if (a == LAT_FAILED) {
            job_error(rn->r, -ETIMEDOUT, "latency of more than %llu nsec at "
                      "iodepth 1: latency_target cannot be met",
                      (unsigned long long)rn->lat.target_ns);
            break;
        }
        if (a == LAT_DONE) {
            rn->deadline_ns = now;          /* issue no more */
            break;
        }
        drain(rn);      /* lowered, or found: only that depth in flight */
        now = bench_now_ns();
        if (a == LAT_RESTART_STATS) {
            end_ramp(rn, now);
        }
    }
    return now;
}

static void io_loop(struct runner *rn)
{
    const struct job *job = rn->job;
    /* One clock read per turn: when the last completions were seen is
     * when the next requests are prepared. */
    uint64_t now = bench_now_ns();

    for (;;) {
        tick(rn, now);
        if (rn->min_rate && !min_rate_kept(rn, now)) {
            break;
        }
        if (job->thinktime_ns && think_due(rn, now)) {
            think(rn);
            now = bench_now_ns();
        }
        if (rn->backlog && rn->nr_backlog >= job->verify_backlog) {
            verify_backlog(rn);
            now = bench_now_ns();
        }
        uint64_t until = 0;
        enum hold hold = prepare_ready(rn, now, &until);
        /* The batch is whole, or can grow no more: no slot, no more to
         * issue, or a request held (for a rate, or for a write in the
         * batch itself). */
        bool all_ready = rn->nr_free <= rn->withheld ||
                         !issuing_open(rn, now) ||
                         !counts_left(rn) || hold != HOLD_NONE ||
                         think_limited(rn);
        if (rn->nr_ready &&
            (rn->nr_ready >= job->iodepth_batch_submit || all_ready) &&
            submit_ready(rn) < 0) {
            break;
        }
        if (hold == HOLD_FLOW && (job->flow_sleep || !rn->inflight)) {
            flow_pause(rn);
            now = bench_now_ns();
            continue;
        }
        if (!rn->inflight) {
            if (hold != HOLD_RATE) {
                break;
            }
            sleep_until(until < rn->deadline_ns ? until : rn->deadline_ns);
            now = bench_now_ns();
            continue;
        }
        unsigned min = job->iodepth_batch_complete_min;
        min = min > rn->inflight ? rn->inflight : min ? min : 1;
        int timeout_ms = -1;
        if (hold == HOLD_RATE) {
            timeout_ms = wait_ms(rn, until, now);
        } else if (hold == HOLD_OVERLAP || hold == HOLD_FLOW ||
                   rn->deadline_ns != UINT64_MAX) {
            min = 1;    /* the write it waits for, the flow, the deadline */
        }
        now = reap(rn, min, timeout_ms);
        if (rn->lat_on && !ramping(rn)) {
            now = lat_turn(rn, now);
        }
    }
    if (rn->held) {
        drop_held(rn);
    }
    drain(rn);
}

/* After each pass over the region (loops=): check what it wrote. */
static void verify_pass(struct runner *rn)
{
    if (stopping()) {
        return;
    }
    if (rn->backlog && rn->nr_backlog) {
        verify_backlog(rn);
    }
    if (rn->unit_seq && rn->job->do_verify && !rn->backlog &&
        (!rn->r->error || rn->bad_units)) {
        verify_written(rn);
    }
}

static void end_fsync(struct runner *rn)
{
    struct slot *s = rn->free_slots[--rn->nr_free];

    prepare_flush(rn, s);
    s->dir = DIR_END_SYNC;
    s->prep_ns = bench_now_ns();
    rn->ready[rn->nr_ready++] = &s->req;
    if (submit_ready(rn) == 0) {
        drain(rn);
    }
}

static void run_passes(struct runner *rn)
{
    const struct job *job = rn->job;
    unsigned passes = job->time_based ? 1 : job->loops;

    for (unsigned pass = 0; pass < passes && !rn->r->error &&
                            bench_now_ns() < rn->deadline_ns && !stopping();
         pass++) {
        rn->issued_bytes = rn->issued_ios = 0;
        if (pass) {
            picker_new_pass(&rn->pick);
        }
        if (job->verify_only) {
            replay_writes(rn);
        } else {
            io_loop(rn);
        }
        verify_pass(rn);
    }
    if (job->end_fsync && job_does(job, DIR_WRITE) && !rn->r->error) {
        end_fsync(rn);
    }
    if (rn->bad_units > 1) {
        size_t len = strlen(rn->r->errmsg);
        snprintf(rn->r->errmsg + len, sizeof(rn->r->errmsg) - len,
                 " (%llu bad blocks in all)",
                 (unsigned long long)rn->bad_units);
    }
}

/* ---- setting up -------------------------------------------------------------- */

/* The region the job does I/O on, within the device: one message per
 * condition that fails. */
static int check_region(struct runner *rn, uint64_t dev_size,
                        const char *spec)
{
    const struct job *job = rn->job;
    unsigned long long offset = rn->offset, size = job->size;
    unsigned long long bs = job->bs_max, end = dev_size;

    if (offset % COBLK_SECTOR_SIZE) {
        return job_error(rn->r, -EINVAL, "offset=%llu is not a multiple of "
                         "%d", offset, COBLK_SECTOR_SIZE);
    }
    if (!dev_size) {
        return job_error(rn->r, -EINVAL, "%s is empty: no bytes to do I/O "
                         "on", spec);
    }
    if (offset >= dev_size) {
        return job_error(rn->r, -EINVAL, "offset=%llu is at or past the end "
                         "of %s (%llu bytes)", offset, spec, end);
    }
    if (size > dev_size - offset) {
        return job_error(rn->r, -EINVAL, "size=%llu at offset=%llu goes past "
                         "the end of %s (%llu bytes)", size, offset, spec,
                         end);
    }
    if (size && size < bs) {
        return job_error(rn->r, -EINVAL, "size=%llu is smaller than the "
                         "block size %llu", size, bs);
    }
    if (!size && dev_size - offset < bs) {
        return job_error(rn->r, -EINVAL, "%s has %llu bytes after "
                         "offset=%llu, fewer than the block size %llu", spec,
                         end - offset, offset, bs);
    }
    return 0;
}

static int check_geometry(struct runner *rn, struct coblk_dev *dev,
                          const char *spec)
{
    const struct job *job = rn->job;
    int64_t dev_bytes = coblk_dev_size(dev);

    if (dev_bytes < 0) {
        return job_error(rn->r, (int)dev_bytes, "%s: size: %s", spec,
                         coblk_last_error());
    }
    int ret = check_region(rn, (uint64_t)dev_bytes, spec);
    if (ret < 0) {
        return ret;
    }
    uint64_t size = job->size ? job->size : (uint64_t)dev_bytes - rn->offset;
    rn->dev_bytes = (uint64_t)dev_bytes;
    rn->unit_bytes = job->bs_unit;
    rn->units = size / job->bs_unit;
    rn->first_sector = rn->offset / COBLK_SECTOR_SIZE;
    /* Per pass (loops=), as fio counts size and number_ios. */
    rn->total_bytes = job->time_based ? UINT64_MAX
                      : job->io_size ? job->io_size
                                     : rn->units * job->bs_unit;
    rn->max_ios = job->number_ios ? job->number_ios : UINT64_MAX;
    /* As fio: trimwrite trims every byte and then writes it. */
    if (job->rw == RW_TRIMWRITE || job->rw == RW_RANDTRIMWRITE) {
        rn->total_bytes = job->time_based ? UINT64_MAX : rn->total_bytes * 2;
        rn->max_ios = job->number_ios ? job->number_ios * 2 : UINT64_MAX;
    }
    return 0;
}

/* read_iolog=: this instance's log opened at its first I/O; it must fit
 * the device. */
static int setup_replay(struct runner *rn, unsigned instance)
{
    const struct job *job = rn->job;
    struct replay_opts opts;
    char path[4096], err[512];

    if (!job->read_iolog[0]) {
        return 0;
    }
    if (job->replay_end > rn->dev_bytes) {
        return job_error(rn->r, -EINVAL, "read_iolog: the log reaches byte "
                         "%llu, past the end of the device (%llu bytes)",
                         (unsigned long long)job->replay_end,
                         (unsigned long long)rn->dev_bytes);
    }
    bench_replay_opts(job, &opts);
    bench_replay_log(job, instance, path, sizeof(path));
    if (replay_open(&rn->replay, path, &opts, err, sizeof(err)) < 0) {
        return job_error(rn->r, -EINVAL, "%s", err);
    }
    rn->replaying = true;
    replay_advance(rn);
    return rn->r->error ? -1 : 0;
}

static int alloc_slots(struct runner *rn)
{
    const struct job *job = rn->job;
    size_t depth = job->iodepth;
    size_t bytes = (size_t)job->bs_max * depth;

    rn->slots = calloc(depth, sizeof(*rn->slots));
    rn->free_slots = calloc(depth, sizeof(*rn->free_slots));
    rn->ready = calloc(depth, sizeof(*rn->ready));
    rn->done = calloc(depth, sizeof(*rn->done));
    if (!rn->slots || !rn->free_slots || !rn->ready || !rn->done ||
        posix_memalign((void **)&rn->buffers, 4096, bytes)) {
        rn->buffers = NULL;
        return job_error(rn->r, -ENOMEM, "out of memory for %zu buffers of "
                         "%llu bytes", depth,
                         (unsigned long long)job->bs_max);
    }
    content_init(&rn->content, job,
                 job->randrepeat ? job->randseed : rn->seed,
                 rn->log_index - 1);
    for (size_t i = 0; i < job->iodepth; i++) {
        rn->slots[i].iov.iov_base = rn->buffers + i * job->bs_max;
        rn->free_slots[rn->nr_free++] = &rn->slots[i];
        if (job_does(job, DIR_WRITE)) {
            content_fill(&rn->content, rn->slots[i].iov.iov_base,
                         job->bs_max);
        }
    }
    return 0;
}

/* fixedbufs=1: registers the buffers with the ring, so that the kernel
 * skips pinning their pages on every request.  If it cannot (a kernel
 * before 5.19, RLIMIT_MEMLOCK), the run goes on with plain buffers. */
static bool register_buffers(struct runner *rn)
{
    const struct job *job = rn->job;

    if (!job->fixedbufs) {
        return false;
    }
    int ret = coblk_aio_register_buffer(coblk_aio_current(), rn->buffers,
                                        (size_t)job->bs_max * job->iodepth);
    if (ret < 0) {
        fprintf(stderr, "coblk-bench: %s: fixedbufs: cannot register %llu "
                "bytes of buffers (%s), using plain ones\n", job->name,
                (unsigned long long)job->bs_max * job->iodepth,
                strerror(-ret));
    }
    return ret == 0;
}

/* serialize_overlap: no I/O goes while one it overlaps is in flight (in
 * this job: coblk-bench has no offload threads to check across). */
static int setup_serialize(struct runner *rn)
{
    if (!rn->job->serialize_overlap) {
        return 0;
    }
    rn->serialize = true;
    rn->unit_busy = calloc(rn->units, sizeof(*rn->unit_busy));
    return rn->unit_busy ? 0 : job_error(rn->r, -ENOMEM, "serialize_overlap: "
                                         "out of memory for %llu blocks",
                                         (unsigned long long)rn->units);
}

static int setup_verify(struct runner *rn)
{
    const struct job *job = rn->job;

    if (!job->verify) {
        return 0;
    }
    rn->vp = (struct verify_params){
        .algo = job->verify, .seed = rn->seed,
        .pattern = job->verify_pattern_len ? job->verify_pattern : NULL,
        .pattern_len = job->verify_pattern_len,
        .unit = (uint32_t)(job->verify_interval &&
                                   job->verify_interval < rn->unit_bytes
                               ? job->verify_interval
                               : rn->unit_bytes) };
    if (rn->unit_bytes < VERIFY_MIN_UNIT || rn->unit_bytes > UINT32_MAX) {
        return job_error(rn->r, -EINVAL, "verify needs blocks of at least "
                         "%d bytes", VERIFY_MIN_UNIT);
    }
    if (!job_does(job, DIR_WRITE) && !job->verify_only) {
        rn->check_reads = true;     /* each read checks what its headers say */
        return 0;
    }
    if (job->verify_only && !job->randrepeat) {
        return job_error(rn->r, -EINVAL, "verify_only replays the writes: "
                         "it needs randrepeat=1");
    }
    rn->unit_seq = calloc(rn->units, sizeof(*rn->unit_seq));
    rn->unit_busy = rn->unit_busy ? rn->unit_busy
                                  : calloc(rn->units, sizeof(*rn->unit_busy));
    bool backlog = job->verify_backlog && !job->verify_only;
    if (backlog) {
        rn->backlog = calloc(job->verify_backlog + job->iodepth,
                             sizeof(*rn->backlog));
    }
    if (!rn->unit_seq || !rn->unit_busy || (backlog && !rn->backlog)) {
        return job_error(rn->r, -ENOMEM, "verify: out of memory for the "
                         "log of %llu written blocks",
                         (unsigned long long)rn->units);
    }
    return 0;
}

static void cpu_usage(struct job_result *r, int sign)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    r->usr_sec += sign * (ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6);
    r->sys_sec += sign * (ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
    r->ctx += (uint64_t)(sign * (ru.ru_nvcsw + ru.ru_nivcsw));
    r->majf += (uint64_t)(sign * ru.ru_majflt);
    r->minf += (uint64_t)(sign * ru.ru_minflt);
}

static uint64_t instance_seed(const struct job *job, unsigned instance)
{
    if (job->randrepeat) {
        return job->randseed + instance;
    }
    return bench_now_ns() ^ ((uint64_t)getpid() << 32) ^ instance;
}

/* What each I/O needs done beyond the I/O: the clock read for what
 * (see struct runner), and whether a request may be held. */
static void choose_per_io_work(struct runner *rn)
{
    const struct job *job = rn->job;
    bool rate = false;
    for (int d = 0; d < 3; d++) {
        rate |= job->rate[d] || job->rate_iops[d];
    }

    rn->time_submit = !job->disable_slat || !job->disable_clat ||
                      job->lat_log[0];
    rn->clock_mask = job->gtod_reduce && !rn->time_submit &&
                     job->disable_lat && !rate ? 63 : 0;
    rn->may_hold = rate || rn->unit_busy || job->flow ||
                   (rn->replaying && !job->replay_no_stall);
}

static void start_clocks(struct runner *rn)
{
    const struct job *job = rn->job;
    uint64_t now = bench_now_ns();

    choose_per_io_work(rn);
    rn->last_now = rn->stats_ns = rn->think_at = rn->io_start_ns = now;
    rn->poisson_rng = picker_seed_state(rn->seed);
    for (int d = 0; d < 3; d++) {
        rn->min_rate |= job->ratemin[d] || job->rate_iops_min[d];
        if (job->rate_process == RATE_POISSON) {
            poisson_next(rn, d);        /* fio waits before the first */
        }
    }
    rn->lat_on = job->latency_target_ns != 0;
    if (rn->lat_on) {
        start_lat_target(rn, now);
    }
    rn->ramp_end_ns = job->ramp_time_ns ? now + job->ramp_time_ns : 0;
    rn->deadline_ns = job->runtime_ns ? now + job->ramp_time_ns +
                                        job->runtime_ns
                                      : UINT64_MAX;
    rn->log_interval_ns = (job->log_avg_msec ? job->log_avg_msec : 500) *
                          1000000;
    rn->next_sample_ns = now + rn->r->series.interval_ms * 1000000;
    rn->next_log_ns = now + rn->log_interval_ns;
    atomic_store_explicit(&rn->r->progress.total_bytes,
                          job->time_based ? 0 : rn->total_bytes,
                          memory_order_relaxed);
    atomic_store_explicit(&rn->r->progress.end_ns,
                          rn->deadline_ns == UINT64_MAX ? 0 : rn->deadline_ns,
                          memory_order_relaxed);
    atomic_store_explicit(&rn->r->progress.state,
                          ramping(rn) ? STATE_RAMP : STATE_RUNNING,
                          memory_order_relaxed);
}

/* Arrives at the group's start line, once: with `wait`, to start with
 * the others. */
static void pass_gate(struct job_result *r, bool wait)
{
    if (r->gate) {
        gate_arrive(r->gate, wait);
        r->gate = NULL;
    }
}

static void run_job(struct runner *rn)
{
    const struct job *job = rn->job;
    char err[512];

    if (logs_open(&rn->logs, job, rn->log_index, err, sizeof(err)) < 0) {
        job_error(rn->r, -EIO, "%s", err);
        return;
    }
    rn->logging = job->lat_log[0] || job->bw_log[0] || job->iops_log[0];
    rn->iolog_start_ns = bench_now_ns();
    if (job->write_iolog[0] &&
        iolog_open(&rn->iolog, job->write_iolog, job->filename, err,
                   sizeof(err)) < 0) {
        job_error(rn->r, -EIO, "%s", err);
        logs_close(&rn->logs, 0, err, sizeof(err));
        return;
    }
    uint64_t seeds[FRAND_STREAMS];
    frand_job_seeds(job->randrepeat || job->randseed_given ? job->randseed
                                                           : rn->seed,
                    rn->log_index, job->randrepeat, seeds);
    frand_seed(&rn->prio_rand, seeds[FRAND_PRIO], false);
    rn->cmdprio = job->nr_prio_choices[0] || job->nr_prio_choices[1];
    if (picker_init(&rn->pick, job, rn->units, seeds) < 0) {
        job_error(rn->r, -ENOMEM, "out of memory for the random map of %llu "
                  "blocks", (unsigned long long)rn->units);
        logs_close(&rn->logs, 0, err, sizeof(err));
        iolog_close(&rn->iolog, 0, err, sizeof(err));
        return;
    }
    rn->pick.region_ends_file = rn->offset + rn->units * rn->unit_bytes >=
                                rn->dev_bytes;
    rn->flow = rn->r->flow ? rn->r->flow
               : job->flow ? flow_join(job->flow_id, job->flow) : NULL;
    rn->r->flow = NULL;
    if (job->flow && !rn->flow) {
        job_error(rn->r, -ENOMEM, "out of memory for flow %u", job->flow_id);
    }
    pass_gate(rn->r, true);
    start_clocks(rn);
    cpu_usage(rn->r, -1);
    run_passes(rn);
    cpu_usage(rn->r, 1);
    if (rn->flow) {
        flow_leave(rn->flow, rn->flow_count, job->flow);
    }
    rn->r->runtime_ns = bench_now_ns() - rn->stats_ns;
    rn->r->latency_depth = rn->lat_on ? rn->lat.depth : job->iodepth;
    if (rn->logging && !ramping(rn)) {
        log_window(rn, rn->stats_ns + rn->r->runtime_ns);   /* the rest */
    }
    if (logs_close(&rn->logs, rn->r->runtime_ns / 1000000, err,
                   sizeof(err)) < 0) {
        job_error(rn->r, -EIO, "%s", err);
    }
    if (iolog_close(&rn->iolog, (bench_now_ns() - rn->iolog_start_ns) / 1000,
                    err, sizeof(err)) < 0) {
        job_error(rn->r, -EIO, "%s", err);
    }
    picker_free(&rn->pick);
}

static void free_runner(struct runner *rn)
{
    replay_close(&rn->replay);
    free(rn->slots);
    free(rn->free_slots);
    free(rn->ready);
    free(rn->done);
    free(rn->buffers);
    free(rn->unit_seq);
    free(rn->unit_busy);
    free(rn->backlog);
}

/* cpus_allowed, numa_cpu_nodes and numa_mem_policy, for this thread:
 * 0, or -1 with the job's error set. */
static int place(const struct job *job, unsigned instance,
                 struct job_result *r)
{
    struct id_set cpus = job->cpus;
    char why[256];

    if (job->numa_given &&
        id_set_node_cpus(&job->numa_nodes, &cpus, why, sizeof(why)) < 0) {
        return job_error(r, -EINVAL, "numa_cpu_nodes: %s", why);
    }
    int ret = job->cpus_given || job->numa_given
                  ? affinity_bind(&cpus, job->cpus_split, instance) : 0;
    if (ret < 0) {
        return job_error(r, ret, "cpus_allowed: cannot run on those CPUs: "
                         "%s", strerror(-ret));
    }
    if (job->mem_policy[0] &&
        affinity_mem_policy(job->mem_policy, true, why, sizeof(why)) < 0) {
        return job_error(r, -EINVAL, "%s", why);
    }
    return 0;
}

void bench_leave_unstarted(struct job_result *r)
{
    if (r->flow) {
        flow_leave(r->flow, 0, r->job->flow);
        r->flow = NULL;
    }
    pass_gate(r, false);
}

/* prio=, prioclass=: the thread's I/O priority, as fio sets its job's
 * (before its engine starts); cmdprio: the statistics by priority. */
static int setup_priorities(struct runner *rn)
{
    const struct job *job = rn->job;

    if (job->prio_given &&
        syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, job->ioprio) < 0) {
        int err = errno;
        return job_error(rn->r, -err, "ioprio_set: %s", strerror(err));
    }
    if (bench_result_alloc_prios(rn->r) < 0) {
        return job_error(rn->r, -ENOMEM, "out of memory for the latencies "
                         "by priority");
    }
    return 0;
}

void bench_run(const struct job *job, const char *spec, unsigned instance,
               unsigned log_index, struct job_result *r)
{
    struct runner rn = {
        .job = job, .r = r, .log_index = log_index,
        .offset = job->offset + instance * job->offset_increment,
        .seed = instance_seed(job, instance),
        .reap_max = job->iodepth_batch_complete_max
                        ? job->iodepth_batch_complete_max : job->iodepth,
    };
    struct coblk_dev *dev = NULL;
    bool read_only = only_reads(job);

    if (place(job, instance, r) < 0 ||
        (job->startdelay_ns && !start_delay(job->startdelay_ns))) {
        bench_leave_unstarted(r);
        atomic_store_explicit(&r->progress.state, STATE_DONE,
                              memory_order_release);
        return;
    }
    /* The library's errors are reported with its errno, as fio reports
     * the system's. */
    int ret = coblk_dev_open(spec, (job->direct ? COBLK_OPEN_DIRECT : 0) |
                                       (read_only ? COBLK_OPEN_RDONLY : 0),
                             &dev);
    if (ret < 0) {
        job_error(r, ret, "%s", coblk_last_error());
    } else if (check_geometry(&rn, dev, spec) == 0 &&
               setup_priorities(&rn) == 0 &&
               setup_replay(&rn, instance) == 0 && alloc_slots(&rn) == 0 &&
               setup_serialize(&rn) == 0 && setup_verify(&rn) == 0) {
        ret = coblk_queue_new(dev, job->iodepth, NULL, &rn.q);
        if (ret < 0) {
            job_error(r, ret, "cannot set up a queue of iodepth=%u: %s",
                      job->iodepth, coblk_last_error());
        } else {
            bool registered = register_buffers(&rn);
            run_job(&rn);
            if (registered) {
                coblk_aio_unregister_buffer(coblk_aio_current(), rn.buffers);
            }
            coblk_dev_stats(dev, &r->dev_stats, sizeof(r->dev_stats));
            coblk_aio_stats(coblk_aio_current(), &r->aio_stats,
                            sizeof(r->aio_stats));
        }
    }
    coblk_queue_free(rn.q);
    coblk_dev_close(dev);
    free_runner(&rn);
    bench_leave_unstarted(r);
    atomic_store_explicit(&r->progress.state, STATE_DONE,
                          memory_order_release);
}

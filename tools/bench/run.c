/*
 * One job instance: its own event loop and queue, iodepth requests in
 * flight, blocks chosen sequentially or at random.  With the random map
 * (fio's default) a full-period generator visits every block exactly once
 * per pass, in O(1) memory.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coblk/coblk.h"
#include "run.h"

#define DEFAULT_NULL_SIZE (1ull << 30)

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int bench_device_spec(const struct job *job, char *spec, size_t size,
                      char *err, size_t err_size)
{
    const char *name = job->filename;

    if (job->engine == ENGINE_NULL) {
        snprintf(spec, size, "null:size=%llu",
                 (unsigned long long)(job->size ? job->offset + job->size
                                                : DEFAULT_NULL_SIZE));
        return 0;
    }
    const char *colon = strchr(name, ':');
    if (colon && (!strncmp(name, "file:", 5) || !strncmp(name, "null:", 5) ||
                  !strncmp(name, "blkdebug:", 9))) {
        snprintf(spec, size, "%s", name);
        return 0;
    }
    struct stat st;
    if (stat(name, &st) < 0) {
        /* fio lays out a missing file; a sparse one does for us. */
        if (!job->size) {
            snprintf(err, err_size, "%s: no such file, and no size= to "
                     "create it with", name);
            return -1;
        }
        int fd = open(name, O_CREAT | O_WRONLY, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)(job->offset + job->size)) < 0) {
            snprintf(err, err_size, "%s: cannot create: %s", name,
                     strerror(errno));
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

/* ---- choosing blocks ------------------------------------------------------------ */

struct sequencer {
    uint64_t blocks;
    bool random, map;
    uint64_t next;              /* sequential cursor, or generator state */
    uint64_t mask;              /* random map: period - 1 (a power of two) */
    uint64_t rng;
};

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void sequencer_init(struct sequencer *seq, const struct job *job,
                           uint64_t blocks, unsigned instance)
{
    *seq = (struct sequencer){ .blocks = blocks,
                               .random = bench_rw_is_random(job->rw),
                               .map = !job->norandommap,
                               .rng = job->randseed * 2654435761u +
                                      instance + 1 };
    uint64_t period = 1;
    while (period < blocks) {
        period <<= 1;
    }
    seq->mask = period - 1;
    seq->next = xorshift(&seq->rng) & seq->mask;
}

static uint64_t next_block(struct sequencer *seq)
{
    if (!seq->random) {
        return seq->next++ % seq->blocks;
    }
    if (!seq->map) {
        return xorshift(&seq->rng) % seq->blocks;
    }
    /* x -> 5x + 1 mod 2^k has full period (Hull-Dobell); values past the
     * end are skipped, so each block comes once per pass. */
    do {
        seq->next = (seq->next * 5 + 1) & seq->mask;
    } while (seq->next >= seq->blocks);
    return seq->next;
}

/* ---- the I/O loop ---------------------------------------------------------------- */

struct slot {
    struct coblk_req req;
    struct iovec iov;
    uint64_t issued_ns;
    int dir;
};

static int direction(const struct job *job, uint64_t *rng)
{
    switch (job->rw) {
    case RW_READ:
    case RW_RANDREAD:
        return DIR_READ;
    case RW_WRITE:
    case RW_RANDWRITE:
        return DIR_WRITE;
    case RW_TRIM:
    case RW_RANDTRIM:
        return DIR_TRIM;
    default:
        return xorshift(rng) % 100 < job->rwmixread ? DIR_READ : DIR_WRITE;
    }
}

static void prepare(struct slot *s, const struct job *job,
                    struct sequencer *seq, uint64_t first_sector)
{
    static const uint32_t types[] = { COBLK_REQ_IN, COBLK_REQ_OUT,
                                      COBLK_REQ_DISCARD };
    uint64_t sectors = job->bs / COBLK_SECTOR_SIZE;

    s->dir = direction(job, &seq->rng);
    s->req.type = types[s->dir];
    s->req.sector = first_sector + next_block(seq) * sectors;
    s->req.nr_sectors = (uint32_t)sectors;
    s->req.iov = s->dir == DIR_TRIM ? NULL : &s->iov;
    s->req.iovcnt = s->dir == DIR_TRIM ? 0 : 1;
}

static void cpu_times(double *usr, double *sys)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    *usr = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    *sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int job_error(struct job_result *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int job_error(struct job_result *r, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->errmsg, sizeof(r->errmsg), fmt, ap);
    va_end(ap);
    r->error = err;
    return err;
}

static void io_loop(const struct job *job, struct coblk_queue *q,
                    struct slot *slots, uint64_t first_sector,
                    uint64_t blocks, unsigned instance, struct job_result *r)
{
    struct sequencer seq;
    struct coblk_req **batch = calloc(job->iodepth, sizeof(*batch));
    uint64_t total = job->time_based ? UINT64_MAX : blocks;
    uint64_t issued = 0, completed = 0;
    uint64_t start = now_ns();
    uint64_t deadline = job->runtime_ns ? start + job->runtime_ns
                                        : UINT64_MAX;
    unsigned ready = 0;

    sequencer_init(&seq, job, blocks, instance);
    for (unsigned i = 0; i < job->iodepth && issued + ready < total; i++) {
        batch[ready++] = &slots[i].req;
    }
    for (;;) {
        uint64_t now = now_ns();
        bool stop = now >= deadline || r->error;
        unsigned n = 0;
        for (unsigned i = 0; i < ready && !stop && issued < total; i++) {
            struct slot *s = (struct slot *)batch[i];
            prepare(s, job, &seq, first_sector);
            s->issued_ns = now;
            batch[n++] = &s->req;
            issued++;
        }
        if (n && coblk_queue_submit(q, batch, n) != (int)n) {
            job_error(r, -EIO, "submit: %s", coblk_last_error());
            break;
        }
        if (completed == issued) {
            break;
        }
        int got = coblk_queue_reap(q, batch, 1, job->iodepth, -1);
        now = now_ns();
        for (int i = 0; i < got; i++) {
            struct slot *s = (struct slot *)batch[i];
            struct dir_stats *d = &r->dir[s->dir];
            if (s->req.status != COBLK_S_OK && !r->error) {
                job_error(r, s->req.error, "%s at offset %llu: %s",
                          s->dir == DIR_READ ? "read" : s->dir == DIR_WRITE
                                                            ? "write"
                                                            : "trim",
                          (unsigned long long)s->req.sector *
                              COBLK_SECTOR_SIZE,
                          strerror(-s->req.error));
            }
            d->ios++;
            d->bytes += job->bs;
            lat_add(&d->clat, now - s->issued_ns);
        }
        completed += (uint64_t)got;
        ready = (unsigned)got;
    }
    r->runtime_ns = now_ns() - start;
    free(batch);
}

void bench_run(const struct job *job, const char *spec, unsigned instance,
               struct job_result *r)
{
    struct coblk_dev *dev = NULL;
    struct coblk_queue *q = NULL;
    bool read_only = job->rw == RW_READ || job->rw == RW_RANDREAD;
    struct slot *slots = NULL;
    char *buffers = NULL;

    memset(r, 0, sizeof(*r));
    r->job = job;
    r->instance = instance;
    if (coblk_dev_open(spec, (job->direct ? COBLK_OPEN_DIRECT : 0) |
                                 (read_only ? COBLK_OPEN_RDONLY : 0),
                       &dev) < 0) {
        job_error(r, -EINVAL, "%s", coblk_last_error());
        return;
    }
    uint64_t dev_size = (uint64_t)coblk_dev_size(dev);
    uint64_t size = job->size ? job->size
                  : dev_size > job->offset ? dev_size - job->offset : 0;
    if (job->offset > dev_size || size > dev_size - job->offset) {
        job_error(r, -EINVAL, "size=%llu at offset=%llu goes past the end of "
                  "%s (%llu bytes)", (unsigned long long)size,
                  (unsigned long long)job->offset, spec,
                  (unsigned long long)dev_size);
        goto out;
    }
    if (job->bs % COBLK_SECTOR_SIZE || job->offset % COBLK_SECTOR_SIZE ||
        size < job->bs) {
        job_error(r, -EINVAL, "bs=%llu and offset=%llu must be multiples of "
                  "512, and bs at most size=%llu",
                  (unsigned long long)job->bs,
                  (unsigned long long)job->offset, (unsigned long long)size);
        goto out;
    }
    if (coblk_queue_new(dev, job->iodepth, NULL, &q) < 0 ||
        !(slots = calloc(job->iodepth, sizeof(*slots))) ||
        posix_memalign((void **)&buffers, 4096,
                       (size_t)job->bs * job->iodepth)) {
        job_error(r, -ENOMEM, "cannot set up the queue: %s",
                  coblk_last_error());
        goto out;
    }
    uint64_t seed = job->randseed + instance;
    for (size_t i = 0; i < (size_t)job->bs * job->iodepth; i++) {
        buffers[i] = (char)xorshift(&seed);     /* incompressible writes */
    }
    for (unsigned i = 0; i < job->iodepth; i++) {
        slots[i].iov = (struct iovec){ .iov_base = buffers + i * job->bs,
                                       .iov_len = job->bs };
    }
    double usr0, sys0;
    cpu_times(&usr0, &sys0);
    io_loop(job, q, slots, job->offset / COBLK_SECTOR_SIZE, size / job->bs,
            instance, r);
    cpu_times(&r->usr_sec, &r->sys_sec);
    r->usr_sec -= usr0;
    r->sys_sec -= sys0;
out:
    coblk_queue_free(q);
    coblk_dev_close(dev);
    free(slots);
    free(buffers);
}

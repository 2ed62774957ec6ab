/*
 * coblk-img bench: qemu-img bench's options and its two lines, on one
 * libcoblk queue of -d requests; then what qemu-img does not say: IOPS,
 * bandwidth and latency percentiles (or all of it as JSON).
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/stats.h"
#include "img/img.h"

struct bench_opts {
    const char *fmt;
    unsigned count, depth, bufsize, step, flush_interval;
    uint64_t offset;
    int pattern;
    bool write, drain, json, direct;
    bool native;                    /* -n, -i native: QEMU's Linux AIO,
                                     * which needs -t none (coblk runs on
                                     * io_uring either way) */
};

struct slot {
    struct coblk_req req;
    struct iovec iov;
    uint64_t submitted_ns;
};

struct bench {
    const struct bench_opts *o;
    struct coblk_queue *q;
    struct slot *slots;
    struct slot flush;
    uint64_t size, next_offset;
    unsigned issued, done, in_flight, since_flush;
    bool flushing;
    struct lat_stats lat;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The next request's offset: steps from -o, wrapping before the end. */
static uint64_t take_offset(struct bench *b)
{
    uint64_t at = b->next_offset;
    uint64_t room = b->size > b->o->bufsize ? b->size - b->o->bufsize : 0;

    b->next_offset = room ? (at + b->o->step) % room : 0;
    return at;
}

static int submit(struct bench *b, struct slot *s)
{
    struct coblk_req *r = &s->req;

    s->submitted_ns = now_ns();
    return coblk_queue_submit(b->q, &r, 1) == 1 ? 0 : -EIO;
}

static int submit_io(struct bench *b, struct slot *s)
{
    uint64_t at = take_offset(b);

    s->req = (struct coblk_req){
        .type = b->o->write ? COBLK_REQ_OUT : COBLK_REQ_IN,
        .sector = at / COBLK_SECTOR_SIZE, .iov = &s->iov, .iovcnt = 1,
        .opaque = s };
    b->issued++;
    b->in_flight++;
    b->since_flush++;
    return submit(b, s);
}

/* Reaps at least one completion; returns the flush's, if it was one. */
static int reap(struct bench *b, bool *flushed)
{
    struct coblk_req *done[64];
    int n = coblk_queue_reap(b->q, done, 1, 64, -1);

    for (int i = 0; i < n; i++) {
        struct slot *s = done[i]->opaque;
        if (done[i]->status != COBLK_S_OK) {
            img_error("Failed request: %s", strerror(-done[i]->error));
            return -EIO;
        }
        if (s == &b->flush) {
            *flushed = true;
            b->flushing = false;
            continue;
        }
        lat_add(&b->lat, now_ns() - s->submitted_ns);
        b->done++;
        b->in_flight--;
        if (b->issued < b->o->count && !(b->o->flush_interval &&
                                         b->o->drain &&
                                         b->since_flush >=
                                             b->o->flush_interval) &&
            submit_io(b, s) < 0) {
            return -EIO;
        }
    }
    return n < 0 ? n : 0;
}

/* A flush every --flush-interval requests; with draining, once those
 * completed, and the next requests only once it did. */
static int maybe_flush(struct bench *b)
{
    if (!b->o->flush_interval || b->since_flush < b->o->flush_interval ||
        (b->o->drain && b->in_flight) || b->flushing) {
        return 0;
    }
    b->since_flush = 0;
    b->flushing = true;
    b->flush.req = (struct coblk_req){ .type = COBLK_REQ_FLUSH,
                                       .opaque = &b->flush };
    bool flushed = false;
    int ret = submit(b, &b->flush);
    while (ret == 0 && b->o->drain && !flushed) {
        ret = reap(b, &flushed);
    }
    for (unsigned i = 0; ret == 0 && b->o->drain && i < b->o->depth &&
                         b->issued < b->o->count; i++) {
        ret = submit_io(b, &b->slots[i]);
    }
    return ret;
}

static int run(struct bench *b)
{
    const struct bench_opts *o = b->o;
    int ret = 0;

    for (unsigned i = 0; i < o->depth && b->issued < o->count && ret == 0;
         i++) {
        ret = submit_io(b, &b->slots[i]);
    }
    while (ret == 0 && (b->done < o->count || b->in_flight)) {
        bool flushed = false;
        ret = reap(b, &flushed);
        if (ret == 0 && o->write) {
            ret = maybe_flush(b);
        }
    }
    return ret;
}

static void print_extra(const struct bench *b, double seconds)
{
    const struct bench_opts *o = b->o;
    double iops = seconds > 0 ? b->done / seconds : 0;
    char bw[32];

    if (o->json) {
        struct json *j = json_object(), *lat = json_object();
        json_add(j, "requests", json_uint(b->done));
        json_add(j, "bytes-per-request", json_uint(o->bufsize));
        json_add(j, "depth", json_uint(o->depth));
        json_add(j, "write", json_bool(o->write));
        json_add(j, "elapsed-ns", json_uint((uint64_t)(seconds * 1e9)));
        json_add(j, "iops", json_uint((uint64_t)iops));
        json_add(j, "bytes-per-second",
                 json_uint((uint64_t)(iops * o->bufsize)));
        json_add(lat, "min", json_uint(b->lat.count ? b->lat.min_ns : 0));
        json_add(lat, "mean", json_uint((uint64_t)lat_mean(&b->lat)));
        json_add(lat, "p50", json_uint(lat_percentile(&b->lat, 50)));
        json_add(lat, "p99", json_uint(lat_percentile(&b->lat, 99)));
        json_add(lat, "p99.9", json_uint(lat_percentile(&b->lat, 99.9)));
        json_add(lat, "max", json_uint(b->lat.max_ns));
        json_add(j, "latency-ns", lat);
        json_print(stdout, j);
        json_free(j);
        return;
    }
    printf("IOPS: %.0f, bandwidth: %s/s\n", iops,
           img_size_str((uint64_t)(iops * o->bufsize), bw));
    printf("Latency (us): min %.1f, avg %.1f, p50 %.1f, p99 %.1f, "
           "p99.9 %.1f, max %.1f\n",
           (b->lat.count ? b->lat.min_ns : 0) / 1e3, lat_mean(&b->lat) / 1e3,
           lat_percentile(&b->lat, 50) / 1e3,
           lat_percentile(&b->lat, 99) / 1e3,
           lat_percentile(&b->lat, 99.9) / 1e3, b->lat.max_ns / 1e3);
}

static int bench(const char *filename, const struct bench_opts *o)
{
    struct img img;
    struct bench b = { .o = o, .next_offset = o->offset };
    unsigned flags = (o->write ? IMG_OPEN_RW : 0) |
                     (o->direct ? IMG_OPEN_DIRECT : 0);

    if (img_open(&img, filename, o->fmt, flags) < 0) {
        return 1;
    }
    /* Where qemu-img finds it: once the file has opened. */
    if (o->native && !o->direct) {
        img_error("Could not open '%s': aio=native was specified, but it "
                  "requires cache.direct=on, which was not specified.",
                  filename);
        img_close(&img);
        return 1;
    }
    int64_t size = coblk_dev_size(img.dev);
    b.size = size < 0 ? 0 : (uint64_t)size;
    b.slots = calloc(o->depth, sizeof(*b.slots));
    int ret = b.slots ? coblk_queue_new(img.dev, o->depth + 1, NULL, &b.q)
                      : -ENOMEM;
    for (unsigned i = 0; ret == 0 && i < o->depth; i++) {
        void *buf = NULL;
        if (posix_memalign(&buf, 4096, o->bufsize ? o->bufsize : 1)) {
            ret = -ENOMEM;
            break;
        }
        memset(buf, o->pattern, o->bufsize);
        b.slots[i].iov = (struct iovec){ buf, o->bufsize };
    }
    if (ret < 0) {
        img_error("%s", *coblk_last_error() ? coblk_last_error()
                                              : strerror(-ret));
    } else {
        printf("Sending %u %s requests, %u bytes each, %u in parallel "
               "(starting at offset %" PRIu64 ", step size %u)\n", o->count,
               o->write ? "write" : "read", o->bufsize, o->depth, o->offset,
               o->step);
        if (o->flush_interval) {
            printf("Sending flush every %u requests\n", o->flush_interval);
        }
        uint64_t start = now_ns();
        ret = run(&b);
        double seconds = (now_ns() - start) / 1e9;
        if (ret == 0) {
            printf("Run completed in %3.3f seconds.\n", seconds);
            print_extra(&b, seconds);
        }
    }
    if (b.q) {
        coblk_queue_free(b.q);
    }
    for (unsigned i = 0; b.slots && i < o->depth; i++) {
        free(b.slots[i].iov.iov_base);
    }
    free(b.slots);
    img_close(&img);
    return ret < 0 ? 1 : 0;
}

/* A number for -c -d -s -S --flush-interval: 0 or -EINVAL with
 * qemu-img's message. */
static int parse_uint(const char *arg, const char *what, bool sized,
                      unsigned min, unsigned *out)
{
    uint64_t v;
    char *end;

    if (sized) {
        if (img_parse_size(arg, &v) < 0) {
            v = UINT64_MAX;
        }
    } else {
        errno = 0;
        v = strtoull(arg, &end, 10);
        if (errno || *end || !*arg || arg[0] == '-') {
            v = UINT64_MAX;
        }
    }
    if (v < min || v > INT_MAX) {
        img_error("Invalid %s specified", what);
        return -EINVAL;
    }
    *out = (unsigned)v;
    return 0;
}

static int parse_option(int c, struct bench_opts *o, bool *step_set)
{
    uint64_t v;

    switch (c) {
    case 'c': return parse_uint(optarg, "request count", false, 0, &o->count);
    case 'd': return parse_uint(optarg, "queue depth", false, 1, &o->depth);
    case 's': return parse_uint(optarg, "buffer size", true, 0, &o->bufsize);
    case 'S':
        *step_set = true;
        return parse_uint(optarg, "step size", true, 0, &o->step);
    case 'o':
        if (img_parse_size_option("offset", optarg, 0, INT64_MAX, &v) < 0) {
            return -EINVAL;
        }
        o->offset = v;
        return 0;
    case 'i':
        if (strcmp(optarg, "threads") && strcmp(optarg, "native") &&
            strcmp(optarg, "io_uring")) {
            img_error("Invalid aio option: %s", optarg);
            return -EINVAL;
        }
        o->native |= !strcmp(optarg, "native");
        return 0;       /* coblk always runs on io_uring */
    case 't':
        if (!strcmp(optarg, "none") || !strcmp(optarg, "directsync")) {
            o->direct = true;
        } else if (strcmp(optarg, "writeback") &&
                   strcmp(optarg, "writethrough") &&
                   strcmp(optarg, "unsafe")) {
            img_error("Invalid cache mode");
            return -EINVAL;
        }
        return 0;
    }
    return -EINVAL;
}

int img_bench(int argc, char **argv)
{
    enum { OPT_FLUSH = 256, OPT_PATTERN, OPT_NO_DRAIN, OPT_OUTPUT };
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "image-opts", no_argument, NULL, IMG_OPT_IMAGE_OPTS },
        { "flush-interval", required_argument, NULL, OPT_FLUSH },
        { "pattern", required_argument, NULL, OPT_PATTERN },
        { "no-drain", no_argument, NULL, OPT_NO_DRAIN },
        { "force-share", no_argument, NULL, 'U' },
        { "output", required_argument, NULL, OPT_OUTPUT },
        { NULL, 0, NULL, 0 },
    };
    struct bench_opts o = { .count = 75000, .depth = 64, .bufsize = 4096,
                            .drain = true };
    bool step_set = false;
    unsigned pattern = 0;
    int c;

    while ((c = getopt_long(argc, argv, ":hc:d:f:ni:o:qs:S:t:wU", longopts,
                            NULL)) != -1) {
        switch (c) {
        case IMG_OPT_IMAGE_OPTS: img_image_opts_given = true; break;
        case 'h': return img_help();
        case 'f': o.fmt = optarg; break;
        case 'n': o.native = true; break;
        case 'q': break;        /* qemu-img bench prints all the same */
        case 'w': o.write = true; break;
        case 'U': img_force_share = true; break;
        case OPT_NO_DRAIN: o.drain = false; break;
        case OPT_FLUSH:
            if (parse_uint(optarg, "flush interval", false, 0,
                           &o.flush_interval) < 0) {
                return 1;
            }
            break;
        case OPT_PATTERN:
            if (parse_uint(optarg, "pattern byte", false, 0, &pattern) < 0 ||
                pattern > 0xff) {
                img_error("Invalid pattern byte specified");
                return 1;
            }
            o.pattern = (int)pattern;
            break;
        case OPT_OUTPUT:
            if (img_parse_output(optarg, &o.json) < 0) {
                return 1;
            }
            break;
        case 'c': case 'd': case 's': case 'S': case 'o': case 'i': case 't':
            if (parse_option(c, &o, &step_set) < 0) {
                return 1;
            }
            break;
        default:
            return img_bad_option(c, argv);
        }
    }
    if (optind != argc - 1) {
        return img_usage("Expecting one image file name");
    }
    if (!step_set) {
        o.step = o.bufsize;
    }
    if (o.flush_interval && !o.write) {
        img_error("--flush-interval is only available in write tests");
        return 1;
    }
    if (o.flush_interval && o.flush_interval < o.depth) {
        img_error("Flush interval can't be smaller than depth");
        return 1;
    }
    return bench(argv[optind], &o);
}

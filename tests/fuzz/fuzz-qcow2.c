/*
 * Fuzzing the qcow2 open, read and write paths with hostile images.
 *
 *   fuzz-qcow2 --replay FILE...        every file once (make check: the
 *                                      seed corpus and the regressions)
 *   fuzz-qcow2 --seconds N [--seed S] DIR...
 *                                      mutate the images in DIR for N
 *                                      seconds (CI, under ASan)
 *
 * One input: written to a scratch directory beside a copy of the corpus's
 * base.qcow2 (for backing files), opened read-only, read (start, a
 * spread of offsets, block status walked) and checked, then opened
 * read-write, written, flushed and checked with repairs.  Errors are fine; a crash, a hang, a
 * leak or a sanitizer report is not.  Before each input runs it is saved
 * as ./fuzz-crash.qcow2: after a crash, that is the image to keep in
 * tests/fuzz/regressions/.  LLVMFuzzerTestOneInput is the same entry, for
 * libFuzzer where clang is at hand.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "coblk/coblk.h"

#define INPUT_MAX (1u << 20)
#define READ_BYTES (64u << 10)
#define STATUS_STEPS 256

static char scratch[64];
static char input_path[128];

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd < 0) {
        return -1;
    }
    ssize_t n = write(fd, data, size);
    close(fd);
    return n == (ssize_t)size ? 0 : -1;
}

/* Reads a little everywhere and walks the block status. */
static void exercise_reads(struct coblk_dev *dev)
{
    static uint8_t buf[READ_BYTES];
    int64_t size = coblk_dev_size(dev);

    if (size <= 0) {
        return;
    }
    for (int i = 0; i < 8; i++) {
        uint64_t at = (uint64_t)size / 8 * (uint64_t)i;
        uint64_t len = (uint64_t)size - at < READ_BYTES ? (uint64_t)size - at
                                                        : READ_BYTES;
        coblk_pread(dev, buf, len, at);
    }
    uint64_t at = 0;
    for (int step = 0; step < STATUS_STEPS && at < (uint64_t)size; step++) {
        struct coblk_block_status bs;
        if (coblk_block_status(dev, at, (uint64_t)size - at, &bs) < 0) {
            break;
        }
        at += bs.bytes;
    }
}

static void exercise_writes(struct coblk_dev *dev)
{
    static uint8_t buf[8192];
    int64_t size = coblk_dev_size(dev);

    if (size < (int64_t)sizeof(buf)) {
        return;
    }
    memset(buf, 0x5a, sizeof(buf));
    coblk_pwrite(dev, buf, sizeof(buf), 0);
    coblk_pwrite(dev, buf, 1000, (uint64_t)size / 2 + 77);
    coblk_flush(dev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char spec[160];
    struct coblk_dev *dev;

    if (size > INPUT_MAX || write_file(input_path, data, size) < 0) {
        return 0;
    }
    snprintf(spec, sizeof(spec), "qcow2:l2-cache-size=16k:%s", input_path);
    struct coblk_check check = { 0 };
    if (coblk_dev_open(spec, COBLK_OPEN_RDONLY, &dev) == 0) {
        exercise_reads(dev);
        coblk_check(dev, &check, sizeof(check));
        coblk_dev_close(dev);
    }
    if (coblk_dev_open(spec, 0, &dev) == 0) {
        exercise_writes(dev);
        exercise_reads(dev);
        check = (struct coblk_check){ .repair = COBLK_CHECK_REPAIR_LEAKS |
                                                COBLK_CHECK_REPAIR_ERRORS };
        coblk_check(dev, &check, sizeof(check));
        coblk_dev_close(dev);
    }
    return 0;
}

/* ---- the standalone driver --------------------------------------------------- */

struct input {
    uint8_t *data;
    size_t size;
};

static int load(const char *path, struct input *in)
{
    struct stat st;
    int fd = open(path, O_RDONLY);

    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > INPUT_MAX) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    in->size = (size_t)st.st_size;
    in->data = malloc(in->size + 1);
    ssize_t n = in->data ? read(fd, in->data, in->size) : -1;
    close(fd);
    return n == (ssize_t)in->size ? 0 : -1;
}

/* Every image in dir, plus base.qcow2 copied into the scratch directory. */
static size_t load_dir(const char *dir, struct input *inputs, size_t max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    char path[512];

    if (!d) {
        fprintf(stderr, "fuzz-qcow2: %s: %s\n", dir, strerror(errno));
        exit(1);
    }
    while ((e = readdir(d)) && n < max) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (load(path, &inputs[n]) == 0) {
            if (!strcmp(e->d_name, "base.qcow2")) {
                snprintf(path, sizeof(path), "%s/base.qcow2", scratch);
                write_file(path, inputs[n].data, inputs[n].size);
            }
            n++;
        }
    }
    closedir(d);
    return n;
}

static uint64_t rng;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Values that cross limits when they land in a field. */
static uint64_t interesting(void)
{
    static const uint64_t values[] = {
        0, 1, 0x7f, 0x80, 0xff, 0x100, 0x1ff, 0x200, 0xffff, 0x10000,
        0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull,
        0x7fffffffffffffffull, 0x8000000000000000ull, UINT64_MAX,
        0x00fffffffffffe00ull, 0x4000000000000000ull,
    };
    return values[next() % (sizeof(values) / sizeof(values[0]))];
}

/* A few random mutations of a copy of in. */
static size_t mutate(const struct input *in, uint8_t *out)
{
    size_t size = in->size;

    memcpy(out, in->data, size);
    unsigned count = 1 + next() % 4;
    for (unsigned i = 0; i < count && size; i++) {
        /* Metadata is mostly near the start and at 8-byte boundaries. */
        size_t at = next() % 4 ? next() % (size < 4096 ? size : 4096)
                               : next() % size;
        switch (next() % 5) {
        case 0:
            out[at] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 1:
            out[at] = (uint8_t)next();
            break;
        case 2: {
            at &= ~(size_t)7;
            uint64_t v = interesting();
            for (int b = 0; b < 8 && at + (size_t)b < size; b++) {
                out[at + (size_t)b] = (uint8_t)(v >> (56 - 8 * b));
            }
            break;
        }
        case 3: {
            at &= ~(size_t)3;
            uint32_t v = (uint32_t)interesting();
            for (int b = 0; b < 4 && at + (size_t)b < size; b++) {
                out[at + (size_t)b] = (uint8_t)(v >> (24 - 8 * b));
            }
            break;
        }
        default:
            size = at;      /* truncated */
            break;
        }
    }
    return size;
}

static void set_up_scratch(void)
{
    snprintf(scratch, sizeof(scratch), "/var/tmp/coblk-fuzz-XXXXXX");
    if (!mkdtemp(scratch)) {
        perror("fuzz-qcow2: mkdtemp");
        exit(1);
    }
    snprintf(input_path, sizeof(input_path), "%s/input.qcow2", scratch);
}

static void clean_scratch(void)
{
    char path[128];

    unlink(input_path);
    snprintf(path, sizeof(path), "%s/base.qcow2", scratch);
    unlink(path);
    rmdir(scratch);
}

static int replay(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        struct input in;
        if (load(argv[i], &in) < 0) {
            fprintf(stderr, "fuzz-qcow2: cannot read %s\n", argv[i]);
            return 1;
        }
        LLVMFuzzerTestOneInput(in.data, in.size);
        free(in.data);
    }
    printf("fuzz-qcow2: %d inputs replayed\n", argc);
    return 0;
}

static int fuzz(double seconds, int argc, char **argv)
{
    static struct input inputs[256];
    size_t n = 0;

    for (int i = 0; i < argc; i++) {
        n += load_dir(argv[i], inputs + n, 256 - n);
    }
    if (!n) {
        fprintf(stderr, "fuzz-qcow2: no inputs\n");
        return 1;
    }
    uint8_t *buf = malloc(INPUT_MAX);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned long runs = 0;
    do {
        size_t size = mutate(&inputs[next() % n], buf);
        /* Saved first: after a crash, this is the input. */
        write_file("fuzz-crash.qcow2", buf, size);
        LLVMFuzzerTestOneInput(buf, size);
        runs++;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((double)(now.tv_sec - start.tv_sec) +
             (double)(now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
    unlink("fuzz-crash.qcow2");
    printf("fuzz-qcow2: %lu inputs in %.0f s: no crash\n", runs, seconds);
    free(buf);
    for (size_t i = 0; i < n; i++) {
        free(inputs[i].data);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int ret = 2;

    set_up_scratch();
    rng = (uint64_t)time(NULL) | 1;
    if (argc >= 2 && !strcmp(argv[1], "--replay")) {
        ret = replay(argc - 2, argv + 2);
    } else if (argc >= 4 && !strcmp(argv[1], "--seconds")) {
        int first = 3;
        if (argc >= 6 && !strcmp(argv[3], "--seed")) {
            rng = strtoull(argv[4], NULL, 10) | 1;
            first = 5;
        }
        printf("fuzz-qcow2: seed %llu\n", (unsigned long long)rng);
        ret = fuzz(atof(argv[2]), argc - first, argv + first);
    } else {
        fprintf(stderr, "usage: fuzz-qcow2 --replay FILE... | --seconds N "
                "[--seed S] DIR...\n");
    }
    clean_scratch();
    return ret;
}

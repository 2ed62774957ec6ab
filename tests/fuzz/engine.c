/*
 * The fuzzers' shared driver (see engine.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

struct input {
    uint8_t *data;
    size_t size;
};

static uint64_t rng;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd < 0) {
        return -1;
    }
    ssize_t n = write(fd, data, size);
    close(fd);
    return n == (ssize_t)size ? 0 : -1;
}

static int load(const char *path, struct input *in)
{
    struct stat st;
    int fd = open(path, O_RDONLY);

    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size > FUZZ_INPUT_MAX) {
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

static size_t load_dir(const struct fuzz_target *t, const char *dir,
                       struct input *inputs, size_t max)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    char path[512];

    if (!d) {
        fprintf(stderr, "%s: %s: %s\n", t->name, dir, strerror(errno));
        exit(1);
    }
    while ((e = readdir(d)) && n < max) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (load(path, &inputs[n]) == 0) {
            if (t->loaded) {
                t->loaded(e->d_name, inputs[n].data, inputs[n].size);
            }
            n++;
        }
    }
    closedir(d);
    return n;
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

/* Writes the low `bytes` bytes of v big-endian at out[at] (as far as the
 * input goes). */
static void put_be(uint8_t *out, size_t size, size_t at, uint64_t v,
                   int bytes)
{
    for (int b = 0; b < bytes && at + (size_t)b < size; b++) {
        out[at + (size_t)b] = (uint8_t)(v >> (8 * (bytes - 1 - b)));
    }
}

/* A few random mutations of a copy of in. */
static size_t mutate(const struct fuzz_target *t, const struct input *in,
                     uint8_t *out)
{
    size_t size = in->size;

    memcpy(out, in->data, size);
    unsigned count = 1 + next() % 4;
    for (unsigned i = 0; i < count && size; i++) {
        size_t hot = size < t->hot_bytes ? size : t->hot_bytes;
        size_t at = next() % 4 ? next() % hot : next() % size;
        switch (next() % 5) {
        case 0:
            out[at] ^= (uint8_t)(1u << (next() % 8));
            break;
        case 1:
            out[at] = (uint8_t)next();
            break;
        case 2:
            put_be(out, size, at & ~(size_t)7, interesting(), 8);
            break;
        case 3:
            put_be(out, size, at & ~(size_t)3, interesting(), 4);
            break;
        default:
            size = at;      /* truncated */
            break;
        }
    }
    return size;
}

static int replay(const struct fuzz_target *t, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        struct input in;
        if (load(argv[i], &in) < 0) {
            fprintf(stderr, "%s: cannot read %s\n", t->name, argv[i]);
            return 1;
        }
        t->one_input(in.data, in.size);
        free(in.data);
    }
    printf("%s: %d inputs replayed\n", t->name, argc);
    return 0;
}

static double since(const struct timespec *start)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) +
           (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static int fuzz(const struct fuzz_target *t, double seconds, int argc,
                char **argv)
{
    static struct input inputs[256];
    size_t n = 0;
    char crash[64];

    for (int i = 0; i < argc; i++) {
        n += load_dir(t, argv[i], inputs + n, 256 - n);
    }
    if (!n) {
        fprintf(stderr, "%s: no inputs\n", t->name);
        return 1;
    }
    snprintf(crash, sizeof(crash), "fuzz-crash.%s", t->ext);
    uint8_t *buf = malloc(FUZZ_INPUT_MAX);
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned long runs = 0;
    do {
        size_t size = mutate(t, &inputs[next() % n], buf);
        /* Saved first: after a crash, this is the input. */
        fuzz_write_file(crash, buf, size);
        t->one_input(buf, size);
        runs++;
    } while (since(&start) < seconds);
    unlink(crash);
    printf("%s: %lu inputs in %.0f s: no crash\n", t->name, runs, seconds);
    free(buf);
    for (size_t i = 0; i < n; i++) {
        free(inputs[i].data);
    }
    return 0;
}

int fuzz_main(const struct fuzz_target *t, int argc, char **argv)
{
    rng = (uint64_t)time(NULL) | 1;
    if (argc >= 2 && !strcmp(argv[1], "--replay")) {
        return replay(t, argc - 2, argv + 2);
    }
    if (argc >= 4 && !strcmp(argv[1], "--seconds")) {
        int first = 3;
        if (argc >= 6 && !strcmp(argv[3], "--seed")) {
            rng = strtoull(argv[4], NULL, 10) | 1;
            first = 5;
        }
        printf("%s: seed %llu\n", t->name, (unsigned long long)rng);
        return fuzz(t, atof(argv[2]), argc - first, argv + first);
    }
    fprintf(stderr, "usage: %s --replay FILE... | --seconds N [--seed S] "
            "DIR...\n", t->name);
    return 2;
}

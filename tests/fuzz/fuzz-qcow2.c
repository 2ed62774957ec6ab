/*
 * Fuzzing the qcow2 open, read and write paths with hostile images
 * (command line: engine.h).
 *
 * One input: written to a scratch directory beside a copy of the corpus's
 * base.qcow2 (for backing files), opened read-only, read (start, a
 * spread of offsets, block status walked) and checked, then opened
 * read-write, written, flushed and checked with repairs.  Errors are fine;
 * a crash, a hang, a leak or a sanitizer report is not.
 * LLVMFuzzerTestOneInput is the same entry, for libFuzzer where clang is
 * at hand.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coblk/coblk.h"
#include "engine.h"

#define READ_BYTES (64u << 10)
#define STATUS_STEPS 256

static char scratch[64];
static char input_path[128];

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

    if (size > FUZZ_INPUT_MAX || fuzz_write_file(input_path, data, size) < 0) {
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

/* base.qcow2 of the corpus goes beside each input, for backing files. */
static void keep_base(const char *name, const uint8_t *data, size_t size)
{
    char path[128];

    if (!strcmp(name, "base.qcow2")) {
        snprintf(path, sizeof(path), "%s/base.qcow2", scratch);
        fuzz_write_file(path, data, size);
    }
}

static void one_input(const uint8_t *data, size_t size)
{
    LLVMFuzzerTestOneInput(data, size);
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

int main(int argc, char **argv)
{
    static const struct fuzz_target target = {
        .name = "fuzz-qcow2", .ext = "qcow2", .hot_bytes = 4096,
        .one_input = one_input, .loaded = keep_base,
    };

    set_up_scratch();
    int ret = fuzz_main(&target, argc, argv);
    clean_scratch();
    return ret;
}

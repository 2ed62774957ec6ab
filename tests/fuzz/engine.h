/*
 * The fuzzers' shared driver: inputs from files, a small mutator, and the
 * command line every fuzzer takes.
 *
 *   FUZZER --replay FILE...             every file once (make check: the
 *                                       seed corpus and the regressions)
 *   FUZZER --seconds N [--seed S] DIR...
 *                                       mutate the files in DIR for N
 *                                       seconds (CI, under ASan)
 *
 * Before each mutated input runs it is saved as ./fuzz-crash.EXT: after a
 * crash, that is the input to keep among the regressions.
 */
#ifndef COBLK_FUZZ_ENGINE_H
#define COBLK_FUZZ_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_INPUT_MAX (1u << 20)

struct fuzz_target {
    const char *name;           /* for messages: "fuzz-qcow2" */
    const char *ext;            /* of the crash file: "qcow2" */
    size_t hot_bytes;           /* most mutations land in the first ones */
    void (*one_input)(const uint8_t *data, size_t size);
    /* Optional: told of each corpus file loaded (name, data). */
    void (*loaded)(const char *name, const uint8_t *data, size_t size);
};

/* Writes data to path (created or truncated): 0 or -1. */
int fuzz_write_file(const char *path, const uint8_t *data, size_t size);

/* Runs the command line above; returns main()'s status. */
int fuzz_main(const struct fuzz_target *t, int argc, char **argv);

#endif /* COBLK_FUZZ_ENGINE_H */

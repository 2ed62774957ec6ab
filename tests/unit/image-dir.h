/*
 * Images for tests, in a directory of their own under /var/tmp, made and
 * checked with QEMU's tools: what test-qcow2 and test-qcow2-crash share.
 * Functions assert (cmocka) rather than return errors.
 */
#ifndef COBLK_TEST_IMAGE_DIR_H
#define COBLK_TEST_IMAGE_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Makes the directory; false when qemu-img or qemu-io is missing (the
 * directory is made anyway). */
bool image_dir_setup(void);
/* Removes it, unless COBLK_TEST_KEEP is set (for a look after a
 * failure).  Returns 0, or -1. */
int image_dir_teardown(void);

/* NAME in the directory (one of 8 rotating buffers). */
char *path_of(const char *name);

/* Runs a shell command in the directory, output discarded; asserts that
 * it exits 0. */
__attribute__((format(printf, 1, 2)))
void sh(const char *fmt, ...);
/* The same, returning its exit status. */
__attribute__((format(printf, 1, 2)))
int sh_status(const char *fmt, ...);

/* The whole file NAME, malloc'd. */
uint8_t *read_file(const char *name, size_t *size);
/* Writes value, big-endian, into width bytes of NAME at offset. */
void put_be(const char *name, uint64_t offset, unsigned width,
            uint64_t value);
/* The big-endian value in width bytes of NAME at offset. */
uint64_t get_be(const char *name, uint64_t offset, unsigned width);

#endif

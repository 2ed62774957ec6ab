/* Images for tests: see image-dir.h. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "image-dir.h"

static char dir[64];

bool image_dir_setup(void)
{
    snprintf(dir, sizeof(dir), "/var/tmp/coblk-images-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return system("qemu-img --version >/dev/null 2>&1 && "
                  "qemu-io --version >/dev/null 2>&1") == 0;
}

int image_dir_teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "%s %s",
             getenv("COBLK_TEST_KEEP") ? "echo kept" : "rm -rf", dir);
    return system(cmd) == 0 ? 0 : -1;
}

char *path_of(const char *name)
{
    static char path[8][256];
    static unsigned next;
    char *p = path[next++ % 8];

    snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
    return p;
}

static int run(const char *fmt, va_list ap, char *cmd, size_t size)
{
    char inner[4096];

    vsnprintf(inner, sizeof(inner), fmt, ap);
    snprintf(cmd, size, "cd %s && (%s) >/dev/null 2>&1", dir, inner);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int sh_status(const char *fmt, ...)
{
    char cmd[4200];
    va_list ap;

    va_start(ap, fmt);
    int status = run(fmt, ap, cmd, sizeof(cmd));
    va_end(ap);
    return status;
}

void sh(const char *fmt, ...)
{
    char cmd[4200];
    va_list ap;

    va_start(ap, fmt);
    int status = run(fmt, ap, cmd, sizeof(cmd));
    va_end(ap);
    if (status != 0) {
        print_error("command failed (%d): %s\n", status, cmd);
    }
    assert_int_equal(status, 0);
}

uint8_t *read_file(const char *name, size_t *size)
{
    int fd = open(path_of(name), O_RDONLY);
    struct stat st;

    assert_true(fd >= 0);
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *size = (size_t)st.st_size;
    return buf;
}

void put_be(const char *name, uint64_t offset, unsigned width,
            uint64_t value)
{
    uint8_t bytes[8];
    int fd = open(path_of(name), O_WRONLY);

    for (unsigned i = 0; i < width; i++) {
        bytes[i] = (uint8_t)(value >> (8 * (width - 1 - i)));
    }
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, bytes, width, (off_t)offset), (ssize_t)width);
    close(fd);
}

uint64_t get_be(const char *name, uint64_t offset, unsigned width)
{
    size_t size;
    uint8_t *bytes = read_file(name, &size);
    uint64_t value = 0;

    assert_true(offset + width <= size);
    for (unsigned i = 0; i < width; i++) {
        value = value << 8 | bytes[offset + i];
    }
    free(bytes);
    return value;
}

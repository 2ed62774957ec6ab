/*
 * coblk-bench's CRC-32C with the SSE4.2 instruction: the same values as
 * the table-driven crc32c_sw (checked against known vectors in
 * test-bench-verify) for every length, alignment and starting value.
 * Skipped (exit 77) on a CPU without the instruction.
 */
#include "config.h"

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bench/checksum.h"
#include "random-data.h"

#define SKIP_STATUS 77          /* automake's "skipped" */
#define BUF_MAX (64 * 1024 + 64)

static void test_known_values(void **state)
{
    uint8_t a1000[1000];

    assert_int_equal(crc32c_hw(0, "123456789", 9), 0xe3069283);
    assert_int_equal(crc32c_hw(0, "", 0), 0);
    memset(a1000, 'a', sizeof(a1000));
    assert_int_equal(crc32c_hw(0, a1000, sizeof(a1000)), 0x9f19ef6a);
}

static void test_chaining(void **state)
{
    uint8_t buf[300];

    random_bytes(buf, sizeof(buf));
    uint32_t whole = crc32c_hw(0, buf, sizeof(buf));
    for (size_t split = 0; split <= sizeof(buf); split++) {
        uint32_t crc = crc32c_hw(0, buf, split);
        assert_int_equal(crc32c_hw(crc, buf + split, sizeof(buf) - split),
                         whole);
    }
}

static void test_matches_sw(void **state)
{
    static uint8_t buf[BUF_MAX];

    random_bytes(buf, sizeof(buf));
    for (size_t len = 0; len <= 520; len++) {
        for (size_t align = 0; align < 8; align++) {
            uint32_t seed = (uint32_t)rng();
            uint32_t sw = crc32c_sw(seed, buf + align, len);
            if (crc32c_hw(seed, buf + align, len) != sw) {
                fail_msg("len %zu align %zu: hw 0x%08" PRIx32 " sw 0x%08"
                         PRIx32, len, align,
                         crc32c_hw(seed, buf + align, len), sw);
            }
            assert_int_equal(crc32c(seed, buf + align, len), sw);
        }
    }
    static const size_t big[] = { 4095, 4096, 4097, 65536 - 64, 65536 };
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        for (size_t align = 0; align < 64; align += 13) {
            assert_int_equal(crc32c_hw(0, buf + align, big[i]),
                             crc32c_sw(0, buf + align, big[i]));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_values),
        cmocka_unit_test(test_chaining),
        cmocka_unit_test(test_matches_sw),
    };

    if (!crc32c_have_hw()) {
        printf("no SSE4.2 crc32 instruction on this CPU: skipped\n");
        return SKIP_STATUS;
    }
    return cmocka_run_group_tests_name("bench-crc32c-hw", tests, NULL, NULL);
}

/*
 * Skipping so that automake sees it: cmocka's skip() alone leaves the
 * program's exit status 0, which `make check` reports as PASS.  A test
 * skips with skip_because(); main() returns tests_exit_status(), 77 (SKIP)
 * when anything was skipped and nothing failed.
 */
#ifndef COBLK_TEST_SKIP_H
#define COBLK_TEST_SKIP_H

/* One test program a .c file: one counter each. */
static unsigned tests_skipped;

/* Skips the running cmocka test, saying why in the log. */
#define skip_because(why)                                                   \
    do {                                                                    \
        print_message("[  SKIP    ] %s\n", why);                           \
        tests_skipped++;                                                    \
        skip();                                                             \
    } while (0)

/* main()'s exit status for cmocka_run_group_tests()'s count of failures. */
static inline int tests_exit_status(int failed)
{
    return failed ? 1 : tests_skipped ? 77 : 0;
}

#endif

/* Running a piece of a test in a forked child, for what must kill a process
 * (an abort on misuse, a fault on a guard page). */
#ifndef COBLK_TEST_CHILD_H
#define COBLK_TEST_CHILD_H

#include <stddef.h>

/* Runs fn(arg) in a child process with its stderr captured into err (NUL
 * terminated, truncated to err_size).  The child exits 0 if fn returns.
 * Returns the child's wait status. */
int run_in_child(void (*fn)(void *), void *arg, char *err, size_t err_size);

#endif

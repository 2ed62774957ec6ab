/*
 * What the tests may ask of the kernel: root in a container may lack the
 * capabilities root has elsewhere.
 */
#ifndef COBLK_TEST_CAPS_H
#define COBLK_TEST_CAPS_H

#include <stdbool.h>
#include <stdio.h>

/* The real-time I/O priority class wants CAP_SYS_ADMIN or CAP_SYS_NICE
 * (bits 21 and 23 of the effective set). */
static inline bool may_use_realtime_io(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long caps = 0;

    while (f && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "CapEff: %llx", &caps) == 1) {
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    return caps & (1ull << 21 | 1ull << 23);
}

#endif

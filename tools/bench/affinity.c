/*
 * CPU and memory placement (see affinity.h).  The memory policy goes
 * through the set_mempolicy system call, so no libnuma is needed.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "affinity.h"

/* The kernel's memory policy modes (linux/mempolicy.h). */
enum { MPOL_DEFAULT_, MPOL_PREFERRED_, MPOL_BIND_, MPOL_INTERLEAVE_,
       MPOL_LOCAL_ };

static void id_set_add(struct id_set *set, unsigned id)
{
    set->bits[id / 64] |= 1ull << (id % 64);
}

bool id_set_has(const struct id_set *set, unsigned id)
{
    return id < AFFINITY_MAX_CPUS && set->bits[id / 64] >> (id % 64) & 1;
}

unsigned id_set_count(const struct id_set *set)
{
    unsigned n = 0;

    for (size_t i = 0; i < sizeof(set->bits) / sizeof(set->bits[0]); i++) {
        n += (unsigned)__builtin_popcountll(set->bits[i]);
    }
    return n;
}

int id_set_parse(const char *list, struct id_set *set, char *err,
                 size_t err_size)
{
    const char *at = list;

    memset(set, 0, sizeof(*set));
    while (*at) {
        char *end;
        unsigned long low = strtoul(at, &end, 10), high = low;
        if (end == at) {
            goto bad;
        }
        if (*end == '-') {
            at = end + 1;
            high = strtoul(at, &end, 10);
            if (end == at) {
                goto bad;
            }
        }
        if (low > high || high >= AFFINITY_MAX_CPUS ||
            (*end && *end != ',')) {
            goto bad;
        }
        for (unsigned long id = low; id <= high; id++) {
            id_set_add(set, (unsigned)id);
        }
        at = *end ? end + 1 : end;
    }
    if (id_set_count(set)) {
        return 0;
    }
bad:
    snprintf(err, err_size, "expected a list of numbers and ranges below "
             "%d (0-3,6), got '%s'", AFFINITY_MAX_CPUS, list);
    return -1;
}

int id_set_node_cpus(const struct id_set *nodes, struct id_set *cpus,
                     char *err, size_t err_size)
{
    memset(cpus, 0, sizeof(*cpus));
    for (unsigned node = 0; node < AFFINITY_MAX_CPUS; node++) {
        if (!id_set_has(nodes, node)) {
            continue;
        }
        char path[96], list[4096];
        snprintf(path, sizeof(path),
                 "/sys/devices/system/node/node%u/cpulist", node);
        FILE *f = fopen(path, "r");
        bool read = f && fgets(list, sizeof(list), f);
        if (f) {
            fclose(f);
        }
        struct id_set these;
        list[read ? strcspn(list, "\n") : 0] = '\0';
        if (!read || id_set_parse(list, &these, err, err_size) < 0) {
            snprintf(err, err_size, "this machine has no NUMA node %u "
                     "with CPUs", node);
            return -1;
        }
        for (size_t i = 0; i < sizeof(cpus->bits) / sizeof(cpus->bits[0]);
             i++) {
            cpus->bits[i] |= these.bits[i];
        }
    }
    return 0;
}

int affinity_bind(const struct id_set *cpus, bool split, unsigned instance)
{
    cpu_set_t mask;
    unsigned n = id_set_count(cpus), pick = split ? instance % n : 0;

    CPU_ZERO(&mask);
    for (unsigned id = 0, seen = 0; id < AFFINITY_MAX_CPUS; id++) {
        if (id_set_has(cpus, id) && (!split || seen++ == pick)) {
            CPU_SET(id, &mask);
        }
    }
    return -pthread_setaffinity_np(pthread_self(), sizeof(mask), &mask);
}

int affinity_mem_policy(const char *policy, bool apply, char *err,
                        size_t err_size)
{
    static const struct {
        const char *name;
        int mode;
        bool nodes;
    } modes[] = {
        { "default", MPOL_DEFAULT_, false }, { "local", MPOL_LOCAL_, false },
        { "prefer", MPOL_PREFERRED_, true }, { "bind", MPOL_BIND_, true },
        { "interleave", MPOL_INTERLEAVE_, true },
    };
    size_t len = strcspn(policy, ":");
    struct id_set nodes = { 0 };

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (strlen(modes[i].name) != len ||
            strncmp(policy, modes[i].name, len)) {
            continue;
        }
        if (modes[i].nodes != (policy[len] == ':') ||
            (modes[i].nodes &&
             id_set_parse(policy + len + 1, &nodes, err, err_size) < 0)) {
            break;
        }
        if (apply && syscall(SYS_set_mempolicy, modes[i].mode,
                             modes[i].nodes ? nodes.bits : NULL,
                             modes[i].nodes ? AFFINITY_MAX_CPUS + 1 : 0) < 0) {
            snprintf(err, err_size, "numa_mem_policy=%s: %s", policy,
                     strerror(errno));
            return -1;
        }
        return 0;
    }
    snprintf(err, err_size, "numa_mem_policy: expected default, local, "
             "prefer:NODE, bind:NODES or interleave:NODES, got '%s'", policy);
    return -1;
}

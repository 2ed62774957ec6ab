/*
 * Where a job runs and takes its memory, as fio's cpus_allowed=,
 * cpus_allowed_policy=, numa_cpu_nodes= and numa_mem_policy= say.
 */
#ifndef COBLK_BENCH_AFFINITY_H
#define COBLK_BENCH_AFFINITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AFFINITY_MAX_CPUS 1024

/* A set of CPUs or of NUMA nodes: bit n for number n. */
struct id_set {
    uint64_t bits[AFFINITY_MAX_CPUS / 64];
};

/* "0-3,6,8-9" into set; 0, or -1 with a message in err. */
int id_set_parse(const char *list, struct id_set *set, char *err,
                 size_t err_size);
unsigned id_set_count(const struct id_set *set);
bool id_set_has(const struct id_set *set, unsigned id);

/* The CPUs of the NUMA nodes in nodes, from sysfs; 0, or -1 with a
 * message in err. */
int id_set_node_cpus(const struct id_set *nodes, struct id_set *cpus,
                     char *err, size_t err_size);

/* Binds the calling thread to cpus, or with split to the one CPU of them
 * that instance gets (round robin); 0, or -errno. */
int affinity_bind(const struct id_set *cpus, bool split, unsigned instance);

/* numa_mem_policy: "default", "local", "prefer:N", "bind:LIST" or
 * "interleave:LIST" for the calling thread's memory; 0, or -1 with a
 * message in err.  With apply false, only checks the text. */
int affinity_mem_policy(const char *policy, bool apply, char *err,
                        size_t err_size);

#endif

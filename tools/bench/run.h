/*
 * Running one instance of a job on its own thread, context and queue.
 */
#ifndef COBLK_BENCH_RUN_H
#define COBLK_BENCH_RUN_H

#include "options.h"
#include "stats.h"

enum { DIR_READ, DIR_WRITE, DIR_TRIM, DIR_COUNT };

struct job_result {
    const struct job *job;
    unsigned instance;
    struct dir_stats dir[DIR_COUNT];
    uint64_t runtime_ns;
    double usr_sec, sys_sec;    /* this thread's CPU time */
    int error;                  /* 0 or -errno */
    char errmsg[512];
};

/* The device spec for a job (a temporary file is made when it names
 * none); 0 or -1 with a message in err. */
int bench_device_spec(const struct job *job, char *spec, size_t size,
                      char *err, size_t err_size);

/* Runs the job on the device spec; fills result. */
void bench_run(const struct job *job, const char *spec, unsigned instance,
               struct job_result *result);

#endif

/*
 * coblk-bench options: fio's names, values and units, from the command
 * line and from INI job files.  Table-driven: one row per option.
 */
#ifndef COBLK_BENCH_OPTIONS_H
#define COBLK_BENCH_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

enum rw_mode {
    RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RW, RW_RANDRW,
    RW_TRIM, RW_RANDTRIM,
};

enum engine { ENGINE_IO_URING, ENGINE_NULL };

struct job {
    char name[64];
    char filename[4096];        /* a path or a coblk spec; "" = temp file */
    uint64_t size;              /* bytes to do I/O over; 0 = the file's */
    uint64_t offset;
    uint64_t bs;
    enum rw_mode rw;
    unsigned rwmixread;         /* percent of reads in mixed modes */
    unsigned iodepth;
    unsigned numjobs;
    uint64_t runtime_ns;        /* 0: until size is done */
    bool time_based;
    bool direct;
    enum engine engine;
    bool norandommap;
    uint64_t randseed;
    bool group_reporting;
};

enum output_format { OUTPUT_NORMAL, OUTPUT_JSON };

struct bench_config {
    struct job global;          /* options before the first --name */
    struct job *jobs;
    unsigned nr_jobs;
    enum output_format format;
    char output[4096];          /* "" = stdout */
    bool parse_only;
    bool show_help;
    bool show_version;
};

/* Fills cfg from argv (argv[0] is skipped) and any job files named there.
 * Returns 0, or -1 after writing one line to err (fio's wording where fio
 * has one, e.g. "unrecognized option '--foo'"). */
int bench_parse_args(struct bench_config *cfg, int argc, char **argv,
                     char *err, size_t err_size);

/* Sets one option on job; value may be NULL for flags.  Returns 0 or -1
 * with a message in err. */
int bench_set_option(struct job *job, const char *name, const char *value,
                     char *err, size_t err_size);

void bench_job_defaults(struct job *job);
void bench_config_free(struct bench_config *cfg);

const char *bench_rw_name(enum rw_mode rw);
bool bench_rw_is_random(enum rw_mode rw);

#endif

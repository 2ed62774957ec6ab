/*
 * coblk-bench options: fio's names, values and units, from the command
 * line and from INI job files.  Table-driven: one row per option.
 */
#ifndef COBLK_BENCH_OPTIONS_H
#define COBLK_BENCH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "affinity.h"
#include "verify.h"

enum rw_mode {
    RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE, RW_RW, RW_RANDRW,
    RW_TRIM, RW_RANDTRIM,
    RW_TRIMWRITE, RW_RANDTRIMWRITE,     /* a trim, then a write of it */
};

/* fio's engines that coblk-bench runs, all on coblk's io_uring engine:
 * the synchronous ones at queue depth 1, as fio caps them. */
enum engine {
    ENGINE_IO_URING, ENGINE_NULL, ENGINE_LIBAIO, ENGINE_POSIXAIO,
    ENGINE_SYNC, ENGINE_PSYNC, ENGINE_VSYNC, ENGINE_PVSYNC, ENGINE_PVSYNC2,
};

/* fio's options for what coblk does not do: accepted, warned
 * about once. */
enum {
    UNSUPPORTED_SQTHREAD_POLL = 1u << 0,
    UNSUPPORTED_SQTHREAD_POLL_CPU = 1u << 1,
    UNSUPPORTED_HIPRI = 1u << 2,        /* polled completions */
    UNSUPPORTED_ERROR_DUMP = 1u << 3,   /* errors let through, printed */
    UNSUPPORTED_CREATE_ON_OPEN = 1u << 4,   /* files made as jobs open */
};
#define UNSUPPORTED_COUNT 5
enum distribution { DIST_RANDOM, DIST_ZIPF, DIST_ZONED };
/* continue_on_error=: errors of these kinds are counted, not fatal. */
enum { CONTINUE_READ = 1, CONTINUE_WRITE = 2, CONTINUE_VERIFY = 4 };
#define MAX_IGNORE_ERRORS 16
enum { LOG_BY_NAME_LAT = 1, LOG_BY_NAME_BW = 2, LOG_BY_NAME_IOPS = 4 };
#define MAX_ZONES 100
/* fio's random_generator=. */
enum random_generator { RANDGEN_TAUSWORTHE, RANDGEN_LFSR,
                        RANDGEN_TAUSWORTHE64 };

#define MAX_BSSPLIT 16
#define MAX_PERCENTILES 64
#define MAX_VERIFY_PATTERN 512
#define MAX_GIVEN 8192

struct bs_split {
    uint64_t bs;
    unsigned pct;
};

/* I/O priorities as ioprio(2) values them: class << 13 | level. */
#define IOPRIO_CLASS_SHIFT 13
enum { IOPRIO_CLASS_NONE, IOPRIO_CLASS_RT, IOPRIO_CLASS_BE,
       IOPRIO_CLASS_IDLE };
#define IOPRIO_MAX_LEVEL 7
/* cmdprio: the directions it applies to (reads, writes; never trims). */
#define CMDPRIO_DIRS 2

/* A share of a direction's I/Os that takes another priority than the
 * job's: pct percent of those of size bs (0: of any size). */
struct prio_choice {
    uint64_t bs;
    unsigned pct;
    int ioprio;                 /* parsed: -1 for cmdprio_class/cmdprio */
    unsigned index;             /* in prio_values (bench_job_finish) */
};

struct job {
    char name[64];
    char description[256];      /* fio's description=, in the reports */
    char filename[4096];        /* a path or a coblk spec; "" = temp file */
    char directory[4096];       /* for a relative filename, or fio's name */
    char filename_format[256];  /* that name: "" = $jobname.$jobnum.$filenum */
    bool unlink;                /* remove the file when the job is done */
    bool fill_device;           /* fill_device (fill_fs): ENOSPC ends the
                                 * writes, not in error; without size=, a
                                 * file gets its file system's free space */
    uint64_t filesize;          /* the file's; 0: offset + size */
    /* How a file the job makes or extends gets its blocks (fio's
     * fallocate=): fallocate() where the file system can (native),
     * posix_fallocate(), fallocate() keeping the size (keep), or none
     * (none, truncate: the size alone). */
    enum falloc_mode {
        FALLOC_NATIVE, FALLOC_NONE, FALLOC_POSIX, FALLOC_KEEP,
        FALLOC_TRUNCATE,
    } fallocate;
    uint64_t size;              /* bytes to do I/O over; 0 = the file's */
    uint64_t io_size;           /* bytes to do a pass; 0 = size */
    uint64_t offset_increment;  /* copy N of the job starts N times on */
    /* zonemode=strided: I/O stays in a zone of zonerange bytes until it
     * did zonesize bytes there, then moves zonerange + zoneskip on. */
    enum { ZONES_NONE, ZONES_STRIDED } zonemode;
    uint64_t zonerange, zonesize, zoneskip;
    bool size_given;            /* size= given, even as 0 */
    uint64_t offset;
    uint64_t bs;
    enum rw_mode rw;
    /* rw=MODE:N, fio's offset modifier: sequential jobs skip seq_add bytes
     * (negative: go backwards) after each I/O; random ones do ios_per_seek
     * I/Os from each random offset, one after the other or, with
     * rw_sequencer=identical, all at it. */
    int64_t seq_add;
    unsigned ios_per_seek;
    bool seek_identical;
    unsigned rwmixread;         /* percent of reads in mixed modes */
    unsigned iodepth;           /* what runs: 1 for a synchronous engine */
    unsigned iodepth_asked;     /* what was asked (fio prints that) */
    unsigned numjobs;
    uint64_t runtime_ns;        /* 0: until size is done */
    bool time_based;
    bool direct;
    enum engine engine;
    bool norandommap;
    uint64_t randseed;
    bool group_reporting;
    bool unified_rw;            /* unified_rw_reporting=mixed: one "mixed" */

    /* Block sizes of reads, writes and trims (fio's bs=R,W,T, bsrange,
     * bssplit): each direction's range, or its weighted split; bs_min and
     * bs_max hold the smallest and largest of the directions the job does,
     * and bs_unit what they all are multiples of (blocks are counted in
     * it). */
    uint64_t dir_bs_min[3], dir_bs_max[3];
    /* blockalign: where random I/Os of each direction may start, in
     * multiples of it (0: its smallest size); any other than that turns
     * the random map off, as in fio (blockalign_nomap, told once). */
    uint64_t ba[3];
    bool blockalign_nomap;
    struct bs_split bssplit[3][MAX_BSSPLIT];
    unsigned nr_bssplit[3];
    uint64_t bs_min, bs_max, bs_unit;
    unsigned iodepth_batch_submit;      /* submit once this many are ready */
    unsigned iodepth_batch_complete_min;    /* reap at least this many */
    unsigned iodepth_batch_complete_max;    /* and at most; 0: no limit */
    uint64_t ramp_time_ns, startdelay_ns;
    /* Statistics not kept (fio's disable_*): the clock is not read for
     * them.  gtod_reduce sets them all, and reads the clock rarely. */
    bool disable_lat, disable_clat, disable_slat, disable_bw;
    bool gtod_reduce;
    unsigned unsupported;               /* UNSUPPORTED_* bits */
    bool fixedbufs;                     /* register the I/O buffers */
    bool randrepeat;                    /* false: seed from the clock */
    bool randseed_given;                /* ... unless randseed= says */
    /* Per second: read, write, trim.  ratemin and rate_iops_min: below
     * that over a ratecycle (after 2 s), the job fails, as in fio. */
    uint64_t rate[3], rate_iops[3], ratemin[3], rate_iops_min[3];
    unsigned ratecycle_ms;
    enum { RATE_LINEAR, RATE_POISSON } rate_process;
    enum distribution distribution;
    /* random_distribution=zoned:A/S:...: share A% of the I/O in the next
     * S% of the region, as fio's zoned (the same split for every
     * direction). */
    struct { uint8_t access, size; } zones[MAX_ZONES];
    unsigned nr_zones;
    enum random_generator random_generator;
    double zipf_theta;
    unsigned fsync;                     /* flush after this many writes */
    bool end_fsync;
    enum verify_algo verify;
    bool do_verify, verify_only, verify_fatal;
    unsigned verify_backlog;            /* verify after this many writes */
    uint64_t verify_interval;           /* a header every N bytes; 0: bs */
    bool verify_dump;                   /* bad blocks to files */
    uint8_t buffer_pattern[MAX_VERIFY_PATTERN];    /* written data */
    unsigned buffer_pattern_len;        /* 0: pseudo-random data */
    /* What writes carry besides (content.h), as fio's options of these
     * names; _given: set in the job, which changes fio's defaults. */
    bool zero_buffers, zero_buffers_given;
    bool refill_buffers, refill_buffers_given;
    bool scramble_buffers, scramble_buffers_given;
    unsigned compress_pct;              /* buffer_compress_percentage */
    uint64_t compress_chunk;            /* buffer_compress_chunk */
    unsigned dedupe_pct;                /* dedupe_percentage */
    enum { DEDUPE_REPEAT, DEDUPE_WORKING_SET } dedupe_mode;
    unsigned dedupe_working_set_pct;
    bool dedupe_global;
    unsigned instances_in_run;          /* every job's numjobs, summed */
    /* latency_target (lattarget.h); 0: the depth is iodepth. */
    uint64_t latency_target_ns, latency_window_ns;
    double latency_percentile;
    bool latency_run;
    bool serialize_overlap;             /* no overlapping I/Os in flight */
    bool exitall;                       /* one done: others stop, */
    enum { EXIT_GROUP, EXIT_STONEWALL, EXIT_ALL } exit_what;  /* which */
    unsigned continue_on_error;         /* CONTINUE_* bits */
    /* ignore_error=: the errnos continue_on_error lets through, for
     * reads, writes and verification; none given: fio's EIO, EILSEQ. */
    int ignore_error[3][MAX_IGNORE_ERRORS];
    unsigned nr_ignore_error[3];
    /* Placement: the CPUs it may run on (none: any), one each with
     * cpus_allowed_policy=split; numa_mem_policy as given. */
    struct id_set cpus, numa_nodes;     /* nodes: their CPUs, at the run */
    bool cpus_given, cpus_split, numa_given;
    char mem_policy[128];
    uint8_t verify_pattern[MAX_VERIFY_PATTERN];
    unsigned verify_pattern_len;        /* 0: pseudo-random data */
    /* Percentiles (and json+ bins) of which latencies: fio's defaults,
     * completion latencies only. */
    bool slat_percentiles, clat_percentiles, lat_percentiles;
    double percentiles[MAX_PERCENTILES];
    unsigned nr_percentiles;
    char lat_log[256], bw_log[256], iops_log[256];  /* file prefixes */
    /* write_*_log without a prefix: the job's name, once it has one
     * (LOG_BY_NAME_* bits; a [global] section's jobs get their own). */
    unsigned log_by_name;
    char write_iolog[4096];             /* fio's I/O log, appended to */
    /* read_iolog=: logs to replay (':' between those of the instances)
     * and how; what the logs hold, found when the job is finished. */
    char read_iolog[4096];
    char replay_redirect[4096];
    bool replay_no_stall;
    unsigned replay_time_scale;         /* percent; 100: as recorded */
    uint64_t replay_align, replay_scale;
    unsigned replay_skip;               /* 1 << REPLAY_* */
    unsigned replay_kinds;              /* 1 << REPLAY_* the logs hold */
    uint64_t replay_end;                /* past their highest byte */
    uint64_t log_avg_msec;
    bool log_offset;                    /* an offset column in the logs */
    /* The logs' priority column: each I/O's priority (log_prio=1), or
     * as fio by default, 1 for a real-time one and 0 for others. */
    bool log_prio;
    bool per_job_logs;                  /* .N in log names (default) */
    uint64_t log_compression;           /* bytes a compressed chunk holds */
    bool log_store_compressed;          /* logs written as NAME.log.fz */
    /* Steady state (steady.h): on with ss_dur; fio's default criterion is
     * the IOPS slope under 0.01% of the mean. */
    bool ss_iops, ss_slope, ss_pct;
    double ss_limit;
    uint64_t ss_dur_ns, ss_ramp_ns;
    bool stonewall, new_group;
    char wait_for[64];          /* start once that job (before) is done */
    int wait_for_job;           /* its index, -1 none (bench_parse_args) */
    unsigned loops;
    uint64_t number_ios;                /* 0: no limit */
    /* flow=: weight among the jobs of flow_id (0: no flow control);
     * flow_sleep: microseconds to wait, in flight drained, when held. */
    unsigned flow_id, flow, flow_sleep;
    /* thinktime: a pause, in flight drained, every thinktime_blocks I/Os
     * (0: fio's default, 1) completed or issued, or after thinktime_iotime
     * of I/O; the first thinktime_spin of it spent spinning. */
    uint64_t thinktime_ns, thinktime_spin_ns, thinktime_iotime_ns;
    unsigned thinktime_blocks;
    enum { THINK_COMPLETE, THINK_ISSUE } thinktime_blocks_type;
    /* prio= and prioclass= (prio_given: either): the job's thread's I/O
     * priority, set with ioprio_set(), and its I/Os' by default (ioprio,
     * as fio's ioprio_value(): class 0 is best-effort; 0 when neither is
     * given, the thread's own). */
    bool prio_given;
    unsigned prio, prioclass;
    uint16_t ioprio;                    /* set by bench_job_finish */
    /* The io_uring and libaio engines' cmdprio options, reads and writes:
     * cmdprio_percentage of the I/Os at cmdprio_class (0: fio's default,
     * real-time) and level cmdprio, or cmdprio_bssplit's shares of each
     * size (the parsed lists, their entries of 0% left out). */
    unsigned cmdprio_pct[CMDPRIO_DIRS];
    unsigned cmdprio_class[CMDPRIO_DIRS], cmdprio_level[CMDPRIO_DIRS];
    struct prio_choice cmdprio_bssplit[CMDPRIO_DIRS][MAX_BSSPLIT];
    unsigned nr_cmdprio_bssplit[CMDPRIO_DIRS];
    bool cmdprio_bssplit_given;
    const char *cmdprio_option;         /* the first given, for errors */
    /* What runs (bench_job_finish): per direction, the choices an I/O is
     * drawn against (fio's fio_cmdprio_set_ioprio()), and the priorities
     * its statistics are kept by, [0] the job's; none: every I/O of the
     * direction takes ioprio and has no per-priority statistics. */
    struct prio_choice prio_choices[CMDPRIO_DIRS][MAX_BSSPLIT];
    unsigned nr_prio_choices[CMDPRIO_DIRS];
    uint16_t prio_values[CMDPRIO_DIRS][MAX_BSSPLIT + 1];
    unsigned nr_prio_values[CMDPRIO_DIRS];
    unsigned groupid;                   /* set by bench_parse_args */
    /* The options given with a value, as typed, for fio's "job options":
     * "name\0value\0" pairs, a later one replacing an earlier. */
    char given[MAX_GIVEN];
    size_t given_len;
};

/* Output formats; fio takes several at once ("json,normal"). */
enum {
    OUTPUT_NORMAL = 1 << 0,
    OUTPUT_JSON = 1 << 1,
    OUTPUT_JSON_PLUS = 1 << 2,          /* json with latency histograms */
    OUTPUT_TERSE = 1 << 3,
};

enum eta_mode { ETA_AUTO, ETA_ALWAYS, ETA_NEVER };

struct bench_config {
    struct job global;          /* options before the first --name */
    struct job *jobs;
    unsigned nr_jobs;
    unsigned formats;           /* OUTPUT_* bits */
    char output[4096];          /* "" = stdout */
    char plot[4096];            /* "" = no SVG report */
    enum eta_mode eta;
    uint64_t eta_interval_ns;
    uint64_t eta_newline_ns;    /* keep a status line this often; 0 never */
    uint64_t status_interval_ns;    /* 0: no periodic reports */
    char **sections;            /* --section: run only these jobs */
    unsigned nr_sections;
    unsigned nr_groups;
    /* Temporary files stay sparse even for jobs that read (coblk-bench
     * without arguments: its job measures the software path). */
    bool sparse_temp_files;
    bool parse_only;
    bool show_cmd;              /* --showcmd: print the command line */
    bool append_terse;          /* --append-terse */
    bool warnings_fatal;        /* --warnings-fatal */
    /* The jobs as one command line ("--name=a --rw=read ..."), job files
     * included, for --showcmd. */
    char *cmd;
    size_t cmd_len;
    bool readonly;              /* --readonly: jobs that write are refused */
    bool show_help;
    bool show_version;
    char inflate_log[4096];     /* --inflate-log=FILE: print it, inflated */
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
struct replay_opts;
/* read_iolog=: the replay options of job, and the log of an instance
 * (the instance-th of a ':' list, round robin) into path. */
void bench_replay_opts(const struct job *job, struct replay_opts *opts);
const char *bench_replay_log(const struct job *job, unsigned instance,
                             char *path, size_t size);
/* Whether continue_on_error lets errno err (positive) through for a read
 * (0), a write (1) or a verification (2): those ignore_error lists, else
 * fio's EIO and EILSEQ. */
bool bench_error_ignored(const struct job *job, int kind, int err);
/* The next option given to job as typed (start with *pos = 0); false at
 * the end. */
bool bench_given_next(const struct job *job, size_t *pos, const char **name,
                      const char **value);
/* Derives settings that depend on others (block size range, batches) and
 * rejects combinations that cannot run; 0 or -1 with a message in err.
 * bench_parse_args does this for every job. */
int bench_job_finish(struct job *job, char *err, size_t err_size);
void bench_config_free(struct bench_config *cfg);
/* --warnings-fatal's check: what bench_warn_unsupported() would warn of,
 * as an error; 0, or -1 with a message in err. */
int bench_check_warnings(const struct bench_config *cfg, char *err,
                         size_t err_size);
/* One line on out for each option that some job turned on and coblk does
 * not support ("coblk-bench: hipri: not supported by coblk,
 * ignored"). */
void bench_warn_unsupported(const struct bench_config *cfg, FILE *out);

const char *bench_rw_name(enum rw_mode rw);
const char *bench_engine_name(enum engine engine);
bool bench_engine_is_sync(enum engine engine);
uint64_t bench_gcd(uint64_t a, uint64_t b);
/* fio's ioprio_value(): class 0 is best-effort. */
uint16_t bench_ioprio_value(unsigned ioprio_class, unsigned level);
bool bench_rw_is_random(enum rw_mode rw);

#endif

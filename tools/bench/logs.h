/*
 * fio's log files: write_lat_log gives PREFIX_lat.N.log, PREFIX_clat.N.log
 * and PREFIX_slat.N.log; write_bw_log PREFIX_bw.N.log; write_iops_log
 * PREFIX_iops.N.log, N counting job instances from 1 (no .N with
 * per_job_logs=0).  Each line is "time (ms), value, direction (0 read,
 * 1 write, 2 trim), block size, [offset,] priority" as fio 3.33 writes
 * them, the offset with log_offset=1, the priority the I/O's with
 * log_prio=1 (0x%04x), else 1 for a real-time one and 0 for others; latencies in ns, bandwidth in KiB/s.
 * As fio, without log_avg_msec every log has a line per I/O (bandwidth
 * that I/O's size over its completion latency, IOPS 1); with it, each
 * window's mean (latency) or rate (bandwidth, IOPS) per direction.
 */
#ifndef COBLK_BENCH_LOGS_H
#define COBLK_BENCH_LOGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "options.h"

enum log_kind { LOG_LAT, LOG_CLAT, LOG_SLAT, LOG_BW, LOG_IOPS, LOG_KINDS };

struct log_window {
    double sum;
    uint64_t count;
    uint64_t bs;                /* of the last I/O, for the bs column */
};

struct job_logs {
    FILE *file[LOG_KINDS];
    /* log_store_compressed: the text gathers in memory, then goes to
     * path + ".fz" in chunks of `chunk` bytes, each a zlib stream. */
    char *text[LOG_KINDS];
    size_t text_len[LOG_KINDS];
    char *fz_path[LOG_KINDS];
    uint64_t chunk;
    bool store_compressed;
    uint64_t avg_ms;            /* 0: a line per I/O */
    bool offsets;               /* log_offset=1 */
    bool prio_values;           /* log_prio=1 */
    uint64_t window_end_ms;
    struct log_window window[LOG_KINDS][3];
};

/* Opens the logs the job asks for; 0, or -1 with a message in err. */
int logs_open(struct job_logs *logs, const struct job *job, unsigned index,
              char *err, size_t err_size);
/* One completed I/O at t_ms since the start of the job, of priority
 * ioprio (ioprio(2)'s value). */
void logs_io(struct job_logs *logs, uint64_t t_ms, int dir, uint64_t bs,
             uint64_t offset, uint16_t ioprio, uint64_t slat_ns,
             uint64_t clat_ns, uint64_t lat_ns);
/* The I/O of one bandwidth window that ended at t_ms (log_avg_msec). */
void logs_window(struct job_logs *logs, uint64_t t_ms, int dir, uint64_t bs,
                 double kib_per_sec, double iops);
/* Flushes what is averaged and closes; 0, or -1 with a message in err. */
int logs_close(struct job_logs *logs, uint64_t t_ms, char *err,
               size_t err_size);
/* --inflate-log: writes a log stored compressed (one zlib stream after
 * the other) to out as text; 0, or -1 with a message in err. */
int logs_inflate(const char *path, FILE *out, char *err, size_t err_size);

/* fio's I/O log (write_iolog=, its version 3): a line per I/O as it is
 * issued, "TIME FILE ACTION [OFFSET LENGTH]", TIME in microseconds since
 * the log was opened.  Appended to, as fio does (job copies share it). */
struct iolog {
    FILE *file;
    const char *name;           /* the job's file, as given */
};

/* Opens path for the job's file name; 0, or -1 with a message in err. */
int iolog_open(struct iolog *log, const char *path, const char *name,
               char *err, size_t err_size);
/* An I/O: dir 0 read, 1 write, 2 trim, 3 a flush ("sync"). */
void iolog_io(struct iolog *log, uint64_t t_us, int dir, uint64_t offset,
              uint64_t bytes);
/* 0, or -1 with a message in err. */
int iolog_close(struct iolog *log, uint64_t t_us, char *err,
                size_t err_size);

#endif

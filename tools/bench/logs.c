/*
 * fio's log files (see logs.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "logs.h"

static const char *const suffixes[LOG_KINDS] = { "lat", "clat", "slat", "bw",
                                                 "iops" };

/* index 0: no instance number in the name (per_job_logs=0). */
static int open_log(struct job_logs *logs, enum log_kind kind,
                    const char *prefix, unsigned index, char *err,
                    size_t err_size)
{
    char path[4096];

    if (index) {
        snprintf(path, sizeof(path), "%s_%s.%u.log", prefix, suffixes[kind],
                 index);
    } else {
        snprintf(path, sizeof(path), "%s_%s.log", prefix, suffixes[kind]);
    }
    logs->file[kind] = fopen(path, "w");
    if (!logs->file[kind]) {
        snprintf(err, err_size, "cannot write log %s: %s", path,
                 strerror(errno));
        return -1;
    }
    /* Lines per I/O: a big buffer keeps the writes off the I/O path. */
    setvbuf(logs->file[kind], NULL, _IOFBF, 1 << 20);
    return 0;
}

int logs_open(struct job_logs *logs, const struct job *job, unsigned index,
              char *err, size_t err_size)
{
    memset(logs, 0, sizeof(*logs));
    logs->avg_ms = job->log_avg_msec;
    logs->window_end_ms = logs->avg_ms;
    logs->offsets = job->log_offset;
    index = job->per_job_logs ? index : 0;
    if (job->lat_log[0]) {
        for (int k = LOG_LAT; k <= LOG_SLAT; k++) {
            if (open_log(logs, k, job->lat_log, index, err, err_size) < 0) {
                return -1;
            }
        }
    }
    if ((job->bw_log[0] &&
         open_log(logs, LOG_BW, job->bw_log, index, err, err_size) < 0) ||
        (job->iops_log[0] &&
         open_log(logs, LOG_IOPS, job->iops_log, index, err, err_size) < 0)) {
        return -1;
    }
    return 0;
}

static void line(const struct job_logs *logs, FILE *f, uint64_t t_ms,
                 uint64_t value, int dir, uint64_t bs, uint64_t offset)
{
    if (logs->offsets) {
        fprintf(f, "%" PRIu64 ", %" PRIu64 ", %d, %" PRIu64 ", %" PRIu64
                ", 0\n", t_ms, value, dir, bs, offset);
    } else {
        fprintf(f, "%" PRIu64 ", %" PRIu64 ", %d, %" PRIu64 ", 0\n", t_ms,
                value, dir, bs);
    }
}

/* Writes the means of the latency windows that ended, at their end. */
static void flush_windows(struct job_logs *logs, uint64_t t_ms)
{
    for (int k = LOG_LAT; k <= LOG_SLAT; k++) {
        for (int dir = 0; dir < 3; dir++) {
            struct log_window *w = &logs->window[k][dir];
            if (w->count) {
                line(logs, logs->file[k], t_ms,
                     (uint64_t)(w->sum / w->count), dir, w->bs, 0);
            }
            *w = (struct log_window){ 0 };
        }
    }
}

void logs_io(struct job_logs *logs, uint64_t t_ms, int dir, uint64_t bs,
             uint64_t offset, uint64_t slat_ns, uint64_t clat_ns,
             uint64_t lat_ns)
{
    const uint64_t values[] = { lat_ns, clat_ns, slat_ns };

    if (!logs->avg_ms) {
        for (int k = LOG_LAT; k <= LOG_SLAT && logs->file[LOG_LAT]; k++) {
            line(logs, logs->file[k], t_ms, values[k], dir, bs, offset);
        }
        if (logs->file[LOG_BW]) {       /* as fio: bytes * 10^6 / clat */
            line(logs, logs->file[LOG_BW], t_ms,
                 clat_ns ? bs * 1000000 / clat_ns : 0, dir, bs, offset);
        }
        if (logs->file[LOG_IOPS]) {
            line(logs, logs->file[LOG_IOPS], t_ms, 1, dir, bs, offset);
        }
        return;
    }
    if (!logs->file[LOG_LAT]) {
        return;
    }
    if (t_ms >= logs->window_end_ms) {
        flush_windows(logs, logs->window_end_ms);
        logs->window_end_ms = (t_ms / logs->avg_ms + 1) * logs->avg_ms;
    }
    for (int k = LOG_LAT; k <= LOG_SLAT; k++) {
        struct log_window *w = &logs->window[k][dir];
        w->sum += (double)values[k];
        w->count++;
        w->bs = bs;
    }
}

void logs_window(struct job_logs *logs, uint64_t t_ms, int dir, uint64_t bs,
                 double kib_per_sec, double iops)
{
    if (!logs->avg_ms) {
        return;                 /* a line per I/O instead */
    }
    if (logs->file[LOG_BW]) {
        line(logs, logs->file[LOG_BW], t_ms, (uint64_t)(kib_per_sec + 0.5),
             dir, bs, 0);
    }
    if (logs->file[LOG_IOPS]) {
        line(logs, logs->file[LOG_IOPS], t_ms, (uint64_t)(iops + 0.5), dir,
             bs, 0);
    }
}

int logs_close(struct job_logs *logs, uint64_t t_ms, char *err,
               size_t err_size)
{
    int ret = 0;

    if (logs->file[LOG_LAT] && logs->avg_ms) {
        flush_windows(logs, t_ms);
    }
    for (int k = 0; k < LOG_KINDS; k++) {
        if (logs->file[k] && (ferror(logs->file[k]) | fclose(logs->file[k])) &&
            !ret) {
            snprintf(err, err_size, "writing the %s log failed: %s",
                     suffixes[k], strerror(errno));
            ret = -1;
        }
        logs->file[k] = NULL;
    }
    return ret;
}

/* ---- the I/O log ---------------------------------------------------------- */

int iolog_open(struct iolog *log, const char *path, const char *name,
               char *err, size_t err_size)
{
    log->name = name;
    log->file = fopen(path, "a");
    if (!log->file) {
        snprintf(err, err_size, "write_iolog: %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(log->file, "fio version 3 iolog\n0 %s add\n0 %s open\n", name,
            name);
    return 0;
}

void iolog_io(struct iolog *log, uint64_t t_us, int dir, uint64_t offset,
              uint64_t bytes)
{
    static const char *const actions[] = { "read", "write", "trim", "sync" };

    if (log->file) {
        fprintf(log->file, "%llu %s %s %llu %llu\n", (unsigned long long)t_us,
                log->name, actions[dir], (unsigned long long)offset,
                (unsigned long long)bytes);
    }
}

int iolog_close(struct iolog *log, uint64_t t_us, char *err,
                size_t err_size)
{
    if (!log->file) {
        return 0;
    }
    fprintf(log->file, "%llu %s close\n", (unsigned long long)t_us,
            log->name);
    int ret = ferror(log->file) | fclose(log->file);
    log->file = NULL;
    if (ret) {
        snprintf(err, err_size, "write_iolog: cannot write the log");
        return -1;
    }
    return 0;
}

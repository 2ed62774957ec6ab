/*
 * fio's log files (see logs.h).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

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
    if (logs->store_compressed) {
        /* Created now, as a plain log is, so that a path that cannot be
         * written fails before the job runs. */
        size_t len = strlen(path) + 4;
        FILE *probe;
        logs->fz_path[kind] = malloc(len);
        if (logs->fz_path[kind]) {
            snprintf(logs->fz_path[kind], len, "%s.fz", path);
        }
        probe = logs->fz_path[kind] ? fopen(logs->fz_path[kind], "wb") : NULL;
        if (!probe) {
            snprintf(err, err_size, "cannot write log %s.fz: %s", path,
                     strerror(errno));
            return -1;
        }
        fclose(probe);
        logs->file[kind] = open_memstream(&logs->text[kind],
                                          &logs->text_len[kind]);
    } else {
        logs->file[kind] = fopen(path, "w");
    }
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
    logs->prio_values = job->log_prio;
    logs->store_compressed = job->log_store_compressed;
    /* fio compresses a chunk when it fills: log_compression, else the
     * whole log at the end. */
    logs->chunk = job->log_compression ? job->log_compression : SIZE_MAX;
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

/* fio's in-memory sample, as log_store_compressed stores it (native byte
 * order, x86-64 layout): time, value, direction (bit 31: an offset
 * follows), priority (16 bits, then 2 of padding), block size, and with
 * log_offset the offset. */
#define SAMPLE_BYTES 32u
#define SAMPLE_OFFSET_BYTES 40u
#define SAMPLE_HAS_OFFSET 0x80000000u
#define SAMPLE_PRIO_VALUES 0x40000000u  /* log_prio=1 */
#define SAMPLE_FLAGS 0xc0000000u        /* offset, and priority, bits */

/* The priority column: with log_prio=1 the I/O's priority (written
 * 0x%04x), else as fio 1 for a real-time one and 0 for others. */
static unsigned prio_column(bool values, uint16_t ioprio)
{
    return values ? ioprio
                  : (ioprio >> IOPRIO_CLASS_SHIFT) == IOPRIO_CLASS_RT;
}

static void put_sample(const struct job_logs *logs, FILE *f, uint64_t t_ms,
                       uint64_t value, int dir, uint64_t bs, uint16_t ioprio,
                       const uint64_t *offset)
{
    uint8_t rec[SAMPLE_OFFSET_BYTES] = { 0 };
    uint32_t ddir = (uint32_t)dir | (offset ? SAMPLE_HAS_OFFSET : 0) |
                    (logs->prio_values ? SAMPLE_PRIO_VALUES : 0);

    memcpy(rec, &t_ms, 8);
    memcpy(rec + 8, &value, 8);
    memcpy(rec + 16, &ddir, 4);
    memcpy(rec + 20, &ioprio, 2);
    memcpy(rec + 24, &bs, 8);
    if (offset) {
        memcpy(rec + 32, offset, 8);
    }
    fwrite(rec, offset ? SAMPLE_OFFSET_BYTES : SAMPLE_BYTES, 1, f);
}

static void line(const struct job_logs *logs, FILE *f, uint64_t t_ms,
                 uint64_t value, int dir, uint64_t bs, uint64_t offset,
                 uint16_t ioprio)
{
    bool hex = logs->prio_values;
    unsigned prio = prio_column(hex, ioprio);

    if (logs->store_compressed) {
        put_sample(logs, f, t_ms, value, dir, bs, ioprio,
                   logs->offsets ? &offset : NULL);
    } else if (logs->offsets) {
        fprintf(f, hex ? "%" PRIu64 ", %" PRIu64 ", %d, %" PRIu64 ", %"
                         PRIu64 ", 0x%04x\n"
                       : "%" PRIu64 ", %" PRIu64 ", %d, %" PRIu64 ", %"
                         PRIu64 ", %u\n",
                t_ms, value, dir, bs, offset, prio);
    } else {
        fprintf(f, hex ? "%" PRIu64 ", %" PRIu64 ", %d, %" PRIu64
                         ", 0x%04x\n"
                       : "%" PRIu64 ", %" PRIu64 ", %d, %" PRIu64 ", %u\n",
                t_ms, value, dir, bs, prio);
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
                     (uint64_t)(w->sum / w->count), dir, w->bs, 0, 0);
            }
            *w = (struct log_window){ 0 };
        }
    }
}

void logs_io(struct job_logs *logs, uint64_t t_ms, int dir, uint64_t bs,
             uint64_t offset, uint16_t ioprio, uint64_t slat_ns,
             uint64_t clat_ns, uint64_t lat_ns)
{
    const uint64_t values[] = { lat_ns, clat_ns, slat_ns };

    if (!logs->avg_ms) {
        for (int k = LOG_LAT; k <= LOG_SLAT && logs->file[LOG_LAT]; k++) {
            line(logs, logs->file[k], t_ms, values[k], dir, bs, offset,
                 ioprio);
        }
        if (logs->file[LOG_BW]) {       /* as fio: bytes * 10^6 / clat */
            line(logs, logs->file[LOG_BW], t_ms,
                 clat_ns ? bs * 1000000 / clat_ns : 0, dir, bs, offset,
                 ioprio);
        }
        if (logs->file[LOG_IOPS]) {
            line(logs, logs->file[LOG_IOPS], t_ms, 1, dir, bs, offset,
                 ioprio);
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
             dir, bs, 0, 0);
    }
    if (logs->file[LOG_IOPS]) {
        line(logs, logs->file[LOG_IOPS], t_ms, (uint64_t)(iops + 0.5), dir,
             bs, 0, 0);
    }
}

/* Writes the samples to path as fio stores a compressed log: chunks of
 * about `chunk` bytes of whole samples, each compressed as its own zlib
 * stream, one after the other.  0 or -1 (errno set). */
static int write_fz(const char *path, const char *text, size_t len,
                    uint64_t chunk, unsigned sample)
{
    FILE *f = fopen(path, "wb");
    int ret = f ? 0 : -1;

    chunk = chunk < sample ? sample : chunk - chunk % sample;
    for (size_t at = 0; ret == 0 && at < len;) {
        size_t n = len - at < chunk ? len - at : (size_t)chunk;
        uLongf out_len = compressBound((uLong)n);
        Bytef *out = malloc(out_len);
        if (!out || compress2(out, &out_len, (const Bytef *)text + at,
                              (uLong)n, Z_DEFAULT_COMPRESSION) != Z_OK ||
            fwrite(out, out_len, 1, f) != 1) {
            errno = out ? EIO : ENOMEM;
            ret = -1;
        }
        free(out);
        at += n;
    }
    if (f && fclose(f) && ret == 0) {
        ret = -1;
    }
    return ret;
}

int logs_close(struct job_logs *logs, uint64_t t_ms, char *err,
               size_t err_size)
{
    int ret = 0;

    if (logs->file[LOG_LAT] && logs->avg_ms) {
        flush_windows(logs, t_ms);
    }
    for (int k = 0; k < LOG_KINDS; k++) {
        bool failed = logs->file[k] &&
                      (ferror(logs->file[k]) | fclose(logs->file[k]));
        if (!failed && logs->fz_path[k]) {
            failed = write_fz(logs->fz_path[k], logs->text[k],
                              logs->text_len[k], logs->chunk,
                              logs->offsets ? SAMPLE_OFFSET_BYTES
                                            : SAMPLE_BYTES) < 0;
        }
        if (failed && !ret) {
            snprintf(err, err_size, "writing the %s log failed: %s",
                     suffixes[k], strerror(errno));
            ret = -1;
        }
        logs->file[k] = NULL;
        free(logs->text[k]);
        free(logs->fz_path[k]);
        logs->text[k] = logs->fz_path[k] = NULL;
    }
    return ret;
}

/* Prints the samples of one chunk as fio prints a log: whether they have
 * offsets, the first one says. */
static void print_samples(const uint8_t *rec, size_t len, FILE *out)
{
    uint32_t ddir;

    if (len < SAMPLE_BYTES) {
        return;
    }
    memcpy(&ddir, rec + 16, 4);
    bool offsets = ddir & SAMPLE_HAS_OFFSET;
    bool hex = ddir & SAMPLE_PRIO_VALUES;
    size_t size = offsets ? SAMPLE_OFFSET_BYTES : SAMPLE_BYTES;
    for (; len >= size; rec += size, len -= size) {
        uint64_t t_ms, value, bs, offset;
        uint16_t ioprio;
        memcpy(&t_ms, rec, 8);
        memcpy(&value, rec + 8, 8);
        memcpy(&ddir, rec + 16, 4);
        memcpy(&ioprio, rec + 20, 2);
        memcpy(&bs, rec + 24, 8);
        ddir &= ~SAMPLE_FLAGS;
        unsigned prio = prio_column(hex, ioprio);
        if (offsets) {
            memcpy(&offset, rec + 32, 8);
            fprintf(out, hex ? "%" PRIu64 ", %" PRId64 ", %" PRIu32 ", %"
                               PRIu64 ", %" PRIu64 ", 0x%04x\n"
                             : "%" PRIu64 ", %" PRId64 ", %" PRIu32 ", %"
                               PRIu64 ", %" PRIu64 ", %u\n",
                    t_ms, (int64_t)value, ddir, bs, offset, prio);
        } else {
            fprintf(out, hex ? "%" PRIu64 ", %" PRId64 ", %" PRIu32 ", %"
                               PRIu64 ", 0x%04x\n"
                             : "%" PRIu64 ", %" PRId64 ", %" PRIu32 ", %"
                               PRIu64 ", %u\n",
                    t_ms, (int64_t)value, ddir, bs, prio);
        }
    }
}

/* Inflates the zlib streams of in[0, len) one after the other, printing
 * each one's samples. */
static int inflate_streams(const uint8_t *in, size_t len, FILE *out)
{
    while (len > 0) {
        z_stream z = { .next_in = (Bytef *)in, .avail_in = (uInt)len };
        uint8_t *chunk = NULL;
        size_t used = 0, room = 0;
        int zret = Z_OK;
        if (len > UINT32_MAX || inflateInit2(&z, 15 + 32) != Z_OK) {
            return -1;
        }
        while (zret == Z_OK) {
            if (used == room) {
                uint8_t *more = realloc(chunk, room += 1 << 20);
                if (!more) {
                    break;
                }
                chunk = more;
            }
            z.next_out = chunk + used;
            z.avail_out = (uInt)(room - used);
            zret = inflate(&z, Z_NO_FLUSH);
            used = room - z.avail_out;
        }
        size_t consumed = len - z.avail_in;
        inflateEnd(&z);
        if (zret == Z_STREAM_END) {
            print_samples(chunk, used, out);
        }
        free(chunk);
        if (zret != Z_STREAM_END) {
            return -1;
        }
        in += consumed;
        len -= consumed;
    }
    return ferror(out) ? -1 : 0;
}

int logs_inflate(const char *path, FILE *out, char *err, size_t err_size)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *data = NULL;

    if (!f || fstat(fileno(f), &st) < 0 ||
        !(data = malloc(st.st_size ? (size_t)st.st_size : 1)) ||
        (st.st_size && fread(data, (size_t)st.st_size, 1, f) != 1)) {
        snprintf(err, err_size, "inflate-log: cannot read %s: %s", path,
                 strerror(errno ? errno : EIO));
        free(data);
        if (f) {
            fclose(f);
        }
        return -1;
    }
    fclose(f);
    int ret = inflate_streams(data, (size_t)st.st_size, out);
    free(data);
    if (ret < 0) {
        snprintf(err, err_size, "inflate-log: %s is not a log stored "
                 "compressed (log_store_compressed=1)", path);
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

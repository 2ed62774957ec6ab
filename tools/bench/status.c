/*
 * The live status line (see status.h).
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "status.h"

/* fio's letter for a running job: R/W/M sequential reads, writes, a mix
 * (a mix of all reads or all writes is those), D trims; lower case when
 * random. */
static char running_letter(const struct job *job)
{
    char c;

    switch (job->rw) {
    case RW_READ: case RW_RANDREAD:
        c = 'R';
        break;
    case RW_WRITE: case RW_RANDWRITE:
    case RW_TRIMWRITE: case RW_RANDTRIMWRITE:     /* fio: it writes */
        c = 'W';
        break;
    case RW_RW: case RW_RANDRW:
        c = job->rwmixread == 100 ? 'R' : job->rwmixread == 0 ? 'W' : 'M';
        break;
    default:
        c = 'D';
        break;
    }
    return bench_rw_is_random(job->rw) ? (char)tolower(c) : c;
}

static char state_letter(const struct job_result *r)
{
    switch (atomic_load_explicit(&r->progress.state, memory_order_relaxed)) {
    case STATE_WAITING:
        return 'P';
    case STATE_RAMP:
        return '/';
    case STATE_VERIFYING:
        return 'V';
    case STATE_DONE:
        return '_';
    default:
        return running_letter(r->job);
    }
}

/* "[R(2),_(1)]": the instances' states, run-length. */
static size_t states(char *buf, size_t size, const struct job_result *results,
                     unsigned n)
{
    size_t used = (size_t)snprintf(buf, size, "[");

    for (unsigned i = 0; i < n && used < size;) {
        char c = state_letter(&results[i]);
        unsigned run = 1;
        while (i + run < n && state_letter(&results[i + run]) == c) {
            run++;
        }
        used += (size_t)snprintf(buf + used, size - used, "%s%c(%u)",
                                 i ? "," : "", c, run);
        i += run;
    }
    used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "]");
    return used;
}

/* Done fraction and seconds left, from the slowest instance. */
static void progress_of(const struct job_result *results, unsigned n,
                        uint64_t start_ns, uint64_t now_ns, double *fraction,
                        double *eta_sec)
{
    *fraction = 1;
    *eta_sec = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct progress *p = &results[i].progress;
        uint64_t end = atomic_load_explicit(&p->end_ns, memory_order_relaxed);
        uint64_t total = atomic_load_explicit(&p->total_bytes,
                                              memory_order_relaxed);
        double f = 0, left = 0;
        if (atomic_load_explicit(&p->state, memory_order_relaxed) ==
            STATE_DONE) {
            continue;
        }
        if (end && end > start_ns) {
            f = now_ns >= end ? 1 : (double)(now_ns - start_ns) /
                                    (double)(end - start_ns);
            left = now_ns >= end ? 0 : (double)(end - now_ns) / 1e9;
        }
        if (total && total != UINT64_MAX) {
            uint64_t done = 0;
            for (int d = 0; d < DIR_COUNT; d++) {
                done += atomic_load_explicit(&p->bytes[d],
                                             memory_order_relaxed);
            }
            double fb = done >= total ? 1 : (double)done / (double)total;
            double elapsed = (double)(now_ns - start_ns) / 1e9;
            double lb = fb > 0 ? elapsed * (1 - fb) / fb : 0;
            if (!end || fb > f) {
                f = fb;
                left = lb;
            }
        }
        *fraction = f < *fraction ? f : *fraction;
        *eta_sec = left > *eta_sec ? left : *eta_sec;
    }
}

void status_line(char *buf, size_t size, const struct job_result *results,
                 unsigned n, uint64_t start_ns, uint64_t now_ns,
                 struct status_prev *prev)
{
    static const char dir_letter[] = "rwt";
    unsigned running = 0;
    double sec = prev->t_ns && now_ns > prev->t_ns
                 ? (double)(now_ns - prev->t_ns) / 1e9 : 0;
    char bw[128] = "", iops[128] = "";
    size_t bw_len = 0, iops_len = 0;

    for (unsigned i = 0; i < n; i++) {
        running += atomic_load_explicit(&results[i].progress.state,
                                        memory_order_relaxed) != STATE_DONE;
    }
    for (int d = 0; d < DIR_COUNT; d++) {
        uint64_t ios = 0, bytes = 0;
        for (unsigned i = 0; i < n; i++) {
            ios += atomic_load_explicit(&results[i].progress.ios[d],
                                        memory_order_relaxed);
            bytes += atomic_load_explicit(&results[i].progress.bytes[d],
                                          memory_order_relaxed);
        }
        if (sec > 0 && ios > prev->ios[d]) {
            char b[NUM_LEN], o[NUM_LEN];
            num2str(b, (uint64_t)((double)(bytes - prev->bytes[d]) / sec), 4,
                    true, N2S_BYTEPERSEC);
            num2str(o, (uint64_t)((double)(ios - prev->ios[d]) / sec), 4,
                    false, N2S_NONE);
            bw_len += (size_t)snprintf(bw + bw_len, sizeof(bw) - bw_len,
                                       "%s%c=%s", bw_len ? "," : "",
                                       dir_letter[d], b);
            iops_len += (size_t)snprintf(iops + iops_len,
                                         sizeof(iops) - iops_len, "%s%c=%s",
                                         iops_len ? "," : "", dir_letter[d],
                                         o);
        }
        prev->ios[d] = ios;
        prev->bytes[d] = bytes;
    }
    prev->t_ns = now_ns;

    double fraction, eta;
    progress_of(results, n, start_ns, now_ns, &fraction, &eta);
    size_t used = (size_t)snprintf(buf, size, "Jobs: %u (f=%u): ", running,
                                   running);
    if (used < size) {
        used += states(buf + used, size - used, results, n);
    }
    unsigned eta_s = (unsigned)(eta + 0.5);
    if (used < size) {
        snprintf(buf + used, size - used,
                 "[%.1f%%][%s][%s IOPS][eta %02um:%02us]", 100 * fraction,
                 bw_len ? bw : "-", iops_len ? iops : "-", eta_s / 60,
                 eta_s % 60);
    }
}

/*
 * The SVG report (see plot.h): a summary of each job, then four charts
 * drawn by one small chart helper (axes fitted to the data, 1-2-5 ticks,
 * linear, log or "nines" scales), each with its legend on the right.
 *
 * Every number goes through fmt_num, which formats with integers: the
 * locale never changes the decimal point and NaN or inf cannot appear.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plot.h"

#define WIDTH 1000
#define PLOT_X 80               /* the plot area, inside a chart */
#define PLOT_Y 40
#define PLOT_W 690
#define PLOT_H 230
#define CHART_H 330
#define LEGEND_X (PLOT_X + PLOT_W + 20)
#define LEGEND_ROW 18
#define SUMMARY_H(jobs) (50 + 40 * (jobs))
#define MAX_POINTS 1000         /* per line: longer series are averaged */
#define MAX_BARS 48             /* histogram bars per line */
#define MAX_TICKS 32

static const char *const dir_names[] = { "read", "write", "trim" };
static const char *const dashes[] = { "", "7 3", "2 3" };
static const char *const palette[] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
};
static const double default_pcts[] = {
    1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99, 99.5, 99.9, 99.95,
    99.99,
};
static const struct job no_job = { .name = "job" };

/* One direction with I/O of one job: a line (or bars) in every chart. */
struct line {
    const struct job_result *r;     /* merged over the job's instances */
    int dir;
};

struct report {
    FILE *out;
    struct job_result *jobs;
    unsigned nr_jobs;
    struct line *lines;
    unsigned nr_lines;
};

/* ---- numbers and text --------------------------------------------------- */

/* v with up to decimals (at most 3) digits after the point, trailing
 * zeros dropped. */
static void fmt_num(char *buf, size_t size, double v, int decimals)
{
    uint64_t scale = 1;

    if (!isfinite(v)) {
        v = 0;
    }
    if (fabs(v) >= 1e15) {
        snprintf(buf, size, "%.0f", v);     /* no decimal point */
        return;
    }
    for (int i = 0; i < decimals && i < 3; i++) {
        scale *= 10;
    }
    uint64_t r = (uint64_t)llround(fabs(v) * (double)scale);
    uint64_t frac = r % scale;
    int len = snprintf(buf, size, "%s%" PRIu64, v < 0 && r ? "-" : "",
                       r / scale);
    int digits = decimals < 3 ? decimals : 3;

    if (!frac || len < 0 || (size_t)len >= size) {
        return;
    }
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    snprintf(buf + len, size - (size_t)len, ".%0*" PRIu64, digits, frac);
}

/* A coordinate, for "%s": NUM(x) lives until the end of the statement's
 * block, so several can be passed to one fprintf. */
#define NUM(v) num_str((char[32]){ 0 }, (v))

static const char *num_str(char *buf, double v)
{
    fmt_num(buf, 32, v, 1);
    return buf;
}

static void append(char *buf, size_t size, const char *s)
{
    size_t len = strlen(buf);

    snprintf(buf + len, size - len, "%s", s);
}

/* 1500 -> 1.5k */
static void fmt_si(char *buf, size_t size, double v, int decimals)
{
    static const char *const prefixes[] = { "", "k", "M", "G", "T", "P", "E" };
    int p = 0;

    while (fabs(v) >= 1000 && p < 6) {
        v /= 1000;
        p++;
    }
    fmt_num(buf, size, v, decimals);
    append(buf, size, prefixes[p]);
}

/* 1536 -> 1.5KiB */
static void fmt_bytes(char *buf, size_t size, double v)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB",
                                         "PiB", "EiB" };
    int u = 0;

    while (v >= 1024 && u < 6) {
        v /= 1024;
        u++;
    }
    fmt_num(buf, size, v, 1);
    append(buf, size, units[u]);
}

/* 2500 -> 2.5µs; 2.5e12 -> 2.5ks */
static void fmt_ns(char *buf, size_t size, double ns, int decimals)
{
    static const char *const units[] = { "ns", "\xc2\xb5s", "ms", "s" };
    int u = 0;

    while (ns >= 1000 && u < 3) {
        ns /= 1000;
        u++;
    }
    fmt_si(buf, size, ns, decimals);
    append(buf, size, units[u]);
}

/* The code point of the UTF-8 character at s (its length in *len), or -1
 * for a byte that starts none. */
static long utf8_char(const unsigned char *s, unsigned *len)
{
    static const long min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    unsigned n = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2
                 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
                 : s[0] >= 0xf0 && s[0] < 0xf5 ? 4 : 0;
    long cp;

    *len = 1;
    if (!n) {
        return -1;
    }
    cp = n == 1 ? s[0] : s[0] & (0x3f >> (n - 1));
    for (unsigned i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return -1;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *len = n;
    return cp >= min[n] ? cp : -1;
}

static bool xml_char(long cp)
{
    return cp == '\t' || (cp >= 0x20 && cp < 0xd800)
           || (cp >= 0xe000 && cp <= 0xfffd)
           || (cp >= 0x10000 && cp <= 0x10ffff);
}

static size_t utf8_count(const char *s)
{
    size_t n = 0;

    for (unsigned len; *s; s += len, n++) {
        utf8_char((const unsigned char *)s, &len);
    }
    return n;
}

/* s as XML character data, cut to max characters with an ellipsis;
 * characters XML cannot hold and broken UTF-8 become '?'. */
static void put_text(FILE *out, const char *s, size_t max)
{
    size_t keep = utf8_count(s) > max ? max - 1 : max;

    for (unsigned len; *s && keep; s += len, keep--) {
        long cp = utf8_char((const unsigned char *)s, &len);
        if (!xml_char(cp)) {
            fputc('?', out);
        } else if (cp == '<' || cp == '>' || cp == '&' || cp == '"') {
            fputs(cp == '<' ? "&lt;" : cp == '>' ? "&gt;"
                  : cp == '&' ? "&amp;" : "&quot;", out);
        } else {
            fwrite(s, 1, len, out);
        }
    }
    if (*s) {
        fputs("\xe2\x80\xa6", out);
    }
}

/* ---- axes --------------------------------------------------------------- */

enum axis_kind {
    AXIS_LINEAR,
    AXIS_LOG,
    AXIS_NINES,     /* percentiles: x = -log10(1 - p/100), 99.9 -> 3 */
};

struct axis {
    enum axis_kind kind;
    double min, max, step;      /* step: linear ticks */
    void (*label)(char *buf, size_t size, const struct axis *a, double v);
    const char *title;
};

/* Digits after the point that tick labels step apart need. */
static int step_decimals(double step)
{
    return step >= 1 ? 0 : (int)fmin(3, ceil(-log10(step) - 1e-9));
}

static void label_plain(char *buf, size_t size, const struct axis *a,
                        double v)
{
    fmt_num(buf, size, v, step_decimals(a->step));
}

static void label_si(char *buf, size_t size, const struct axis *a, double v)
{
    double scaled = a->step;

    /* The step in the unit of this label's prefix, as fmt_si picks it. */
    for (double m = fabs(v), p = 0; m >= 1000 && p < 6; m /= 1000, p++) {
        scaled /= 1000;
    }
    fmt_si(buf, size, v, step_decimals(scaled));
}

/* Seconds: plain, or 100k, 200k... for absurdly long runs. */
static void label_time(char *buf, size_t size, const struct axis *a,
                       double v)
{
    if (a->max >= 1e5) {
        label_si(buf, size, a, v);
    } else {
        label_plain(buf, size, a, v);
    }
}

static void label_ns(char *buf, size_t size, const struct axis *a, double v)
{
    (void)a;
    fmt_ns(buf, size, v, 1);
}

static void label_nines(char *buf, size_t size, const struct axis *a,
                        double v)
{
    (void)a;
    fmt_num(buf, size, 100 * (1 - pow(10, -v)), 3);
}

/* The 1-2-5 step that cuts span into about ticks parts. */
static double nice_step(double span, int ticks)
{
    double raw = span / ticks;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;

    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* 0 to hi, rounded up to a tick. */
static void axis_linear(struct axis *a, double hi)
{
    if (!isfinite(hi) || hi <= 0) {
        hi = 1;
    }
    a->kind = AXIS_LINEAR;
    a->min = 0;
    a->step = nice_step(hi, 6);
    a->max = ceil(hi / a->step) * a->step;
    if (a->max < hi) {
        a->max += a->step;
    }
}

/* The 1, 2 or 5 times a power of ten next to v: below it or above it. */
static double round125(double v, bool up)
{
    double mag = pow(10, floor(log10(v)));
    double f = v / mag;

    if (up) {
        return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    }
    return (f >= 5 ? 5 : f >= 2 ? 2 : 1) * mag;
}

/* lo to hi (both > 0), widened to 1-2-5 values. */
static void axis_log(struct axis *a, double lo, double hi)
{
    lo = isfinite(lo) && lo > 0.5 ? lo : 0.5;
    hi = isfinite(hi) && hi > lo ? hi : lo;
    a->kind = AXIS_LOG;
    a->min = round125(lo, false);
    a->max = round125(hi, true);
    if (a->max <= a->min) {
        a->max = round125(a->min * 1.5, true);
    }
    a->step = 0;
}

/* Percentiles up to 100 * (1 - 10^-ceil(hi)). */
static void axis_nines(struct axis *a, double hi)
{
    a->kind = AXIS_NINES;
    a->min = 0;
    a->max = fmax(1, ceil(hi - 1e-6));
    a->step = 1;
}

static int ticks_linear(const struct axis *a, double *t)
{
    int n = 0;

    for (double v = a->min; v <= a->max * (1 + 1e-9) && n < MAX_TICKS;
         v = a->min + n * a->step) {
        t[n++] = v;
    }
    return n;
}

/* 1-2-5 over up to three decades, else every decade or every few. */
static int ticks_log(const struct axis *a, double *t)
{
    int d0 = (int)floor(log10(a->min) + 1e-9);
    int d1 = (int)ceil(log10(a->max) - 1e-9);
    int every = (d1 - d0 + 9) / 10;
    int n = 0;

    for (int d = d0; d <= d1; d++) {
        for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
            double v = m * pow(10, d);
            bool shown = d1 - d0 <= 3 || (m == 1 && (d - d0) % every == 0);
            if (shown && v >= a->min * (1 - 1e-9)
                && v <= a->max * (1 + 1e-9) && n < MAX_TICKS) {
                t[n++] = v;
            }
        }
    }
    return n;
}

static int ticks_nines(const struct axis *a, double *t)
{
    int n = 0;

    t[n++] = 0;
    t[n++] = log10(2);      /* the median */
    for (int k = 1; k <= a->max && n < MAX_TICKS; k++) {
        t[n++] = k;
    }
    return n;
}

static int axis_ticks(const struct axis *a, double *t)
{
    switch (a->kind) {
    case AXIS_LOG:
        return ticks_log(a, t);
    case AXIS_NINES:
        return ticks_nines(a, t);
    default:
        return ticks_linear(a, t);
    }
}

/* Where v falls on the axis, from 0 to 1 (clamped). */
static double axis_frac(const struct axis *a, double v)
{
    double lo = a->min, hi = a->max;

    if (a->kind == AXIS_LOG) {
        v = log10(fmax(v, lo));
        lo = log10(lo);
        hi = log10(hi);
    }
    double f = (v - lo) / (hi - lo);
    return isfinite(f) ? fmin(fmax(f, 0), 1) : 0;
}

/* ---- charts ------------------------------------------------------------- */

struct chart {
    FILE *out;
    struct axis x, y;
};

static double chart_x(const struct chart *c, double v)
{
    return PLOT_X + PLOT_W * axis_frac(&c->x, v);
}

static double chart_y(const struct chart *c, double v)
{
    return PLOT_Y + PLOT_H * (1 - axis_frac(&c->y, v));
}

static void chart_open(FILE *out, const char *id, const char *title,
                       double top)
{
    fprintf(out, "<g id=\"chart-%s\" transform=\"translate(0,%s)\">\n"
            "<text x=\"%d\" y=\"24\" font-size=\"15\" font-weight=\"bold\">"
            "%s</text>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
            "fill=\"#fafafa\" stroke=\"#999\"/>\n", id, NUM(top), PLOT_X,
            title, PLOT_X, PLOT_Y, PLOT_W, PLOT_H);
}

static void chart_close(FILE *out)
{
    fputs("</g>\n", out);
}

static void chart_message(FILE *out, const char *msg)
{
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
            "font-size=\"16\" fill=\"#666\">%s</text>\n", PLOT_X + PLOT_W / 2,
            PLOT_Y + PLOT_H / 2, msg);
}

static void grid_x(const struct chart *c)
{
    double t[MAX_TICKS];
    int n = axis_ticks(&c->x, t);
    char label[32];

    for (int i = 0; i < n; i++) {
        double x = chart_x(c, t[i]);
        c->x.label(label, sizeof(label), &c->x, t[i]);
        fprintf(c->out, "<line x1=\"%s\" y1=\"%d\" x2=\"%s\" y2=\"%d\"/>\n"
                "<text class=\"xtick\" x=\"%s\" y=\"%d\" stroke=\"none\" "
                "text-anchor=\"middle\">%s</text>\n", NUM(x), PLOT_Y, NUM(x),
                PLOT_Y + PLOT_H + 4, NUM(x), PLOT_Y + PLOT_H + 17, label);
    }
}

static void grid_y(const struct chart *c)
{
    double t[MAX_TICKS];
    int n = axis_ticks(&c->y, t);
    char label[32];

    for (int i = 0; i < n; i++) {
        double y = chart_y(c, t[i]);
        c->y.label(label, sizeof(label), &c->y, t[i]);
        fprintf(c->out, "<line x1=\"%d\" y1=\"%s\" x2=\"%d\" y2=\"%s\"/>\n"
                "<text class=\"ytick\" x=\"%d\" y=\"%s\" stroke=\"none\" "
                "text-anchor=\"end\">%s</text>\n", PLOT_X - 4, NUM(y),
                PLOT_X + PLOT_W, NUM(y), PLOT_X - 7, NUM(y + 4), label);
    }
}

/* Grid lines, tick labels and axis titles. */
static void chart_grid(const struct chart *c)
{
    int mid = PLOT_Y + PLOT_H / 2;

    fputs("<g stroke=\"#e0e0e0\" fill=\"#333\" font-size=\"11\">\n", c->out);
    grid_x(c);
    grid_y(c);
    fprintf(c->out, "</g>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" "
            "height=\"%d\" fill=\"none\" stroke=\"#999\"/>\n", PLOT_X, PLOT_Y,
            PLOT_W, PLOT_H);
    fprintf(c->out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">"
            "%s</text>\n<text x=\"18\" y=\"%d\" text-anchor=\"middle\" "
            "transform=\"rotate(-90 18 %d)\">%s</text>\n",
            PLOT_X + PLOT_W / 2, PLOT_Y + PLOT_H + 36, c->x.title, mid, mid,
            c->y.title);
}

static const char *line_color(unsigned i)
{
    return palette[i % (sizeof(palette) / sizeof(palette[0]))];
}

/* Stroke attributes of line i: a colour each, dashes by direction. */
static void put_stroke(FILE *out, const struct report *rep, unsigned i)
{
    int dir = rep->lines[i].dir;

    fprintf(out, " stroke=\"%s\"", line_color(i));
    if (*dashes[dir]) {
        fprintf(out, " stroke-dasharray=\"%s\"", dashes[dir]);
    }
}

static void legend_entry(const struct report *rep, unsigned i, double y,
                         bool swatch)
{
    FILE *out = rep->out;
    const struct line *l = &rep->lines[i];

    if (swatch) {
        fprintf(out, "<rect x=\"%d\" y=\"%s\" width=\"24\" height=\"10\" "
                "fill=\"%s\"/>\n", LEGEND_X, NUM(y - 5), line_color(i));
    } else {
        fprintf(out, "<line x1=\"%d\" y1=\"%s\" x2=\"%d\" y2=\"%s\" "
                "stroke-width=\"2\"", LEGEND_X, NUM(y), LEGEND_X + 24, NUM(y));
        put_stroke(out, rep, i);
        fputs("/>\n", out);
    }
    fprintf(out, "<text x=\"%d\" y=\"%s\">", LEGEND_X + 30, NUM(y + 4));
    put_text(out, l->r->job ? l->r->job->name : no_job.name, 17);
    fprintf(out, " %s</text>\n", dir_names[l->dir]);
}

/* Every line, as many as fit beside the plot area. */
static void chart_legend(const struct report *rep, bool swatch)
{
    unsigned fit = PLOT_H / LEGEND_ROW;
    unsigned shown = rep->nr_lines <= fit ? rep->nr_lines : fit - 1;

    for (unsigned i = 0; i < shown; i++) {
        legend_entry(rep, i, PLOT_Y + 10 + i * LEGEND_ROW, swatch);
    }
    if (shown < rep->nr_lines) {
        fprintf(rep->out, "<text x=\"%d\" y=\"%d\" fill=\"#666\">+%u more"
                "</text>\n", LEGEND_X + 30, PLOT_Y + 14 + shown * LEGEND_ROW,
                rep->nr_lines - shown);
    }
}

/* ---- IOPS and bandwidth over time --------------------------------------- */

static size_t series_stride(const struct series *s)
{
    return s->count > MAX_POINTS ? (s->count + MAX_POINTS - 1) / MAX_POINTS
                                 : 1;
}

/* Per second over points [i, end) of s (I/Os or bytes); their end time,
 * in seconds, in *t. */
static double series_rate(const struct series *s, int dir, bool bytes,
                          size_t i, size_t end, double *t)
{
    const struct series_point *p = s->points;
    uint64_t interval = s->interval_ms ? s->interval_ms : 500;
    uint64_t start = i ? p[i - 1].t_ms
                       : p[0].t_ms - (p[0].t_ms < interval ? p[0].t_ms
                                                           : interval);
    uint64_t stop = p[end - 1].t_ms;
    double sum = 0;

    for (size_t k = i; k < end; k++) {
        sum += (double)(bytes ? p[k].bytes[dir] : p[k].ios[dir]);
    }
    double ms = stop > start ? (double)(stop - start)
                             : (double)((end - i) * interval);
    *t = (double)stop / 1000;
    return sum * 1000 / ms;
}

/* The largest rate and time of line l's (averaged) points. */
static void series_range(const struct line *l, bool bytes, double *tmax,
                         double *vmax)
{
    const struct series *s = &l->r->series;
    size_t stride = series_stride(s);

    for (size_t i = 0; i < s->count; i += stride) {
        size_t end = i + stride < s->count ? i + stride : s->count;
        double t, v = series_rate(s, l->dir, bytes, i, end, &t);
        *tmax = fmax(*tmax, t);
        *vmax = fmax(*vmax, v);
    }
}

static void draw_series(const struct chart *c, const struct report *rep,
                        unsigned li, bool bytes, double div)
{
    const struct line *l = &rep->lines[li];
    const struct series *s = &l->r->series;
    size_t stride = series_stride(s);
    double x = 0, y = 0;

    if (!s->count) {
        return;
    }
    fputs("<polyline fill=\"none\" stroke-width=\"1.5\" "
          "stroke-linejoin=\"round\"", c->out);
    put_stroke(c->out, rep, li);
    fputs(" points=\"", c->out);
    for (size_t i = 0; i < s->count; i += stride) {
        size_t end = i + stride < s->count ? i + stride : s->count;
        double t, v = series_rate(s, l->dir, bytes, i, end, &t);
        x = chart_x(c, t);
        y = chart_y(c, v / div);
        fprintf(c->out, "%s%s,%s", i ? " " : "", NUM(x), NUM(y));
    }
    fputs("\"/>\n", c->out);
    if (s->count == 1) {
        fprintf(c->out, "<circle cx=\"%s\" cy=\"%s\" r=\"3\" fill=\"%s\"/>\n",
                NUM(x), NUM(y), line_color(li));
    }
}

/* Bytes per second to a unit that keeps labels short: MiB/s by default. */
static double bw_unit(double max, char *title, size_t size)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB",
                                         "EiB" };
    int u = max < 1024 * 1024 ? 0 : 1;
    double div = u ? 1024 * 1024 : 1024;

    while (max / div >= 10000 && u < 5) {
        div *= 1024;
        u++;
    }
    snprintf(title, size, "Bandwidth (%s/s)", units[u]);
    return div;
}

static void chart_rate(const struct report *rep, bool bytes, double top)
{
    struct chart c = { .out = rep->out };
    double tmax = 0, vmax = 0, div = 1;
    bool any = false;
    char title[32] = "IOPS";

    for (unsigned i = 0; i < rep->nr_lines; i++) {
        any |= rep->lines[i].r->series.count > 0;
        series_range(&rep->lines[i], bytes, &tmax, &vmax);
    }
    chart_open(c.out, bytes ? "bw" : "iops", bytes ? "Bandwidth over time"
               : "IOPS over time", top);
    if (bytes) {
        div = bw_unit(vmax, title, sizeof(title));
    }
    axis_linear(&c.x, tmax);
    c.x.label = label_time;
    c.x.title = "Time (s)";
    axis_linear(&c.y, vmax / div);
    c.y.label = bytes ? label_plain : label_si;
    c.y.title = title;
    if (any) {
        chart_grid(&c);
        for (unsigned i = 0; i < rep->nr_lines; i++) {
            draw_series(&c, rep, i, bytes, div);
        }
    } else {
        chart_message(c.out, "no samples");
    }
    chart_legend(rep, false);
    chart_close(c.out);
}

/* ---- latency percentiles ------------------------------------------------ */

/* The job's percentiles (fio's list by default), sorted, in pcts. */
static unsigned pct_list(const struct job *job, double *pcts)
{
    const double *from = default_pcts;
    unsigned n = sizeof(default_pcts) / sizeof(default_pcts[0]);

    if (job && job->nr_percentiles) {
        from = job->percentiles;
        n = job->nr_percentiles < MAX_PERCENTILES ? job->nr_percentiles
                                                  : MAX_PERCENTILES;
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned k = i;
        for (; k > 0 && pcts[k - 1] > from[i]; k--) {
            pcts[k] = pcts[k - 1];
        }
        pcts[k] = from[i];
    }
    return n;
}

static double nines(double pct)
{
    return -log10(1 - fmin(fmax(pct, 0), 99.9999) / 100);
}

static double pct_value(const struct lat_stats *s, double pct)
{
    return fmax(1, (double)lat_percentile(s, pct));
}

static void pct_range(const struct report *rep, double *xmax, double *lo,
                      double *hi)
{
    double pcts[MAX_PERCENTILES];

    for (unsigned i = 0; i < rep->nr_lines; i++) {
        const struct job_result *r = rep->lines[i].r;
        const struct lat_stats *s = &r->dir[rep->lines[i].dir].clat;
        unsigned n = s->count ? pct_list(r->job, pcts) : 0;
        for (unsigned k = 0; k < n; k++) {
            double v = pct_value(s, pcts[k]);
            *xmax = fmax(*xmax, nines(pcts[k]));
            *lo = fmin(*lo, v);
            *hi = fmax(*hi, v);
        }
    }
}

static void draw_pcts(const struct chart *c, const struct report *rep,
                      unsigned li)
{
    const struct job_result *r = rep->lines[li].r;
    const struct lat_stats *s = &r->dir[rep->lines[li].dir].clat;
    double pcts[MAX_PERCENTILES];
    unsigned n = pct_list(r->job, pcts);

    if (!s->count) {
        return;
    }
    fputs("<polyline fill=\"none\" stroke-width=\"1.5\"", c->out);
    put_stroke(c->out, rep, li);
    fputs(" points=\"", c->out);
    for (unsigned k = 0; k < n; k++) {
        fprintf(c->out, "%s%s,%s", k ? " " : "",
                NUM(chart_x(c, nines(pcts[k]))),
                NUM(chart_y(c, pct_value(s, pcts[k]))));
    }
    fprintf(c->out, "\"/>\n<g fill=\"%s\">\n", line_color(li));
    for (unsigned k = 0; k < n; k++) {
        fprintf(c->out, "<circle cx=\"%s\" cy=\"%s\" r=\"2.5\"/>\n",
                NUM(chart_x(c, nines(pcts[k]))),
                NUM(chart_y(c, pct_value(s, pcts[k]))));
    }
    fputs("</g>\n", c->out);
}

static void chart_pcts(const struct report *rep, double top)
{
    struct chart c = { .out = rep->out };
    double xmax = 0, lo = INFINITY, hi = 0;

    pct_range(rep, &xmax, &lo, &hi);
    chart_open(c.out, "pct", "Completion latency percentiles", top);
    axis_nines(&c.x, xmax);
    c.x.label = label_nines;
    c.x.title = "Percentile (%)";
    axis_log(&c.y, lo, hi);
    c.y.label = label_ns;
    c.y.title = "Completion latency";
    if (hi > 0) {
        chart_grid(&c);
        for (unsigned i = 0; i < rep->nr_lines; i++) {
            draw_pcts(&c, rep, i);
        }
    } else {
        chart_message(c.out, "no latency samples");
    }
    chart_legend(rep, false);
    chart_close(c.out);
}

/* ---- latency histogram -------------------------------------------------- */

/* Histogram buckets first..last, group of them to a bar. */
struct bins {
    unsigned first, last, group;
};

/* The smallest latency bar k holds. */
static double bar_low(const struct bins *bins, unsigned k)
{
    return (double)lat_bucket_low(k * bins->group);
}

static uint64_t bucket_sum(const struct lat_stats *s, unsigned from,
                           unsigned to)
{
    uint64_t sum = 0;

    for (unsigned b = from; b < to && b < LAT_BUCKETS; b++) {
        sum += s->buckets[b];
    }
    return sum;
}

static const struct lat_stats *line_clat(const struct line *l)
{
    return &l->r->dir[l->dir].clat;
}

/* The buckets in use, grouped to at most MAX_BARS bars; false if none. */
static bool hist_bins(const struct report *rep, struct bins *bins)
{
    bins->first = LAT_BUCKETS;
    bins->last = 0;
    for (unsigned i = 0; i < rep->nr_lines; i++) {
        const struct lat_stats *s = line_clat(&rep->lines[i]);
        for (unsigned b = 0; b < LAT_BUCKETS; b++) {
            if (s->buckets[b]) {
                bins->first = b < bins->first ? b : bins->first;
                bins->last = b > bins->last ? b : bins->last;
            }
        }
    }
    bins->group = 1;
    while (bins->group < LAT_SUB && bins->last / bins->group
           - bins->first / bins->group >= MAX_BARS) {
        bins->group *= 2;
    }
    return bins->first <= bins->last;
}

/* Percent of line l's samples in bar k. */
static double bar_share(const struct line *l, const struct bins *bins,
                        unsigned k)
{
    const struct lat_stats *s = line_clat(l);
    uint64_t total = bucket_sum(s, 0, LAT_BUCKETS);
    uint64_t in = bucket_sum(s, k * bins->group, (k + 1) * bins->group);

    return total ? 100.0 * (double)in / (double)total : 0;
}

static double hist_max(const struct report *rep, const struct bins *bins)
{
    double max = 0;

    for (unsigned i = 0; i < rep->nr_lines; i++) {
        for (unsigned k = bins->first / bins->group;
             k <= bins->last / bins->group; k++) {
            max = fmax(max, bar_share(&rep->lines[i], bins, k));
        }
    }
    return max;
}

/* Line li's bars, slot of nr_slots in each bin, as one path. */
static void draw_bars(const struct chart *c, const struct report *rep,
                      unsigned li, const struct bins *bins, unsigned slot,
                      unsigned nr_slots)
{
    double base = PLOT_Y + PLOT_H;

    fprintf(c->out, "<path fill=\"%s\" d=\"", line_color(li));
    for (unsigned k = bins->first / bins->group;
         k <= bins->last / bins->group; k++) {
        double share = bar_share(&rep->lines[li], bins, k);
        if (share <= 0) {
            continue;
        }
        double x0 = chart_x(c, bar_low(bins, k));
        double w = (chart_x(c, bar_low(bins, k + 1)) - x0) / nr_slots;
        double gap = w > 4 ? 0.5 : 0;
        double left = x0 + slot * w + gap, right = left + w - 2 * gap;
        double y = fmin(chart_y(c, share), base - 1);    /* 1 px at least */
        fprintf(c->out, "M%s,%sH%sV%sH%sZ", NUM(left), NUM(y), NUM(right),
                NUM(base), NUM(left));
    }
    fputs("\"/>\n", c->out);
}

static void draw_hist(const struct chart *c, const struct report *rep,
                      const struct bins *bins)
{
    unsigned nr_slots = 0, slot = 0;

    for (unsigned i = 0; i < rep->nr_lines; i++) {
        nr_slots += bucket_sum(line_clat(&rep->lines[i]), 0, LAT_BUCKETS) > 0;
    }
    for (unsigned i = 0; i < rep->nr_lines; i++) {
        if (bucket_sum(line_clat(&rep->lines[i]), 0, LAT_BUCKETS)) {
            draw_bars(c, rep, i, bins, slot++, nr_slots);
        }
    }
}

static void chart_hist(const struct report *rep, double top)
{
    struct chart c = { .out = rep->out };
    struct bins bins;
    bool any = hist_bins(rep, &bins);

    chart_open(c.out, "hist", "Completion latency histogram", top);
    if (any) {
        axis_log(&c.x, bar_low(&bins, bins.first / bins.group),
                 bar_low(&bins, bins.last / bins.group + 1));
        c.x.label = label_ns;
        c.x.title = "Completion latency";
        axis_linear(&c.y, hist_max(rep, &bins));
        c.y.label = label_plain;
        c.y.title = "I/Os (%)";
        chart_grid(&c);
        draw_hist(&c, rep, &bins);
    } else {
        chart_message(c.out, "no latency samples");
    }
    chart_legend(rep, true);
    chart_close(c.out);
}

/* ---- summary ------------------------------------------------------------ */

static void summary_options(FILE *out, const struct job *job)
{
    char bs[64], hi[32];

    fmt_bytes(bs, sizeof(bs), (double)job->bs);
    if (job->bs_min && job->bs_max > job->bs_min) {
        fmt_bytes(bs, sizeof(bs), (double)job->bs_min);
        fmt_bytes(hi, sizeof(hi), (double)job->bs_max);
        append(bs, sizeof(bs), "-");
        append(bs, sizeof(bs), hi);
    }
    fprintf(out, "  rw=%s  bs=%s  iodepth=%u  numjobs=%u  engine=%s",
            bench_rw_name(job->rw), bs, job->iodepth, job->numjobs,
            bench_engine_name(job->engine));
}

static void summary_numbers(FILE *out, const struct job_result *r)
{
    double sec = (double)r->runtime_ns / 1e9, ios = 0, bytes = 0;
    double lat_sum = 0, lat_count = 0;
    char iops[32] = "-", bw[32] = "-", lat[32] = "-", run[32];

    for (int d = 0; d < DIR_COUNT; d++) {
        ios += (double)r->dir[d].ios;
        bytes += (double)r->dir[d].bytes;
        lat_sum += r->dir[d].clat.sum_ns;
        lat_count += (double)r->dir[d].clat.count;
    }
    if (sec > 0) {
        fmt_si(iops, sizeof(iops), ios / sec, 1);
        fmt_bytes(bw, sizeof(bw), bytes / sec);
        append(bw, sizeof(bw), "/s");
    }
    if (lat_count > 0) {
        fmt_ns(lat, sizeof(lat), lat_sum / lat_count, 1);
    }
    fmt_num(run, sizeof(run), sec, 2);
    fprintf(out, "IOPS=%s, BW=%s, mean clat=%s, runtime=%ss", iops, bw, lat,
            run);
}

static void summary_job(FILE *out, const struct job_result *r, double y)
{
    const struct job *job = r->job ? r->job : &no_job;

    fprintf(out, "<text x=\"20\" y=\"%s\" font-size=\"14\">"
            "<tspan font-weight=\"bold\">", NUM(y));
    put_text(out, job->name, 40);
    fputs("</tspan>", out);
    summary_options(out, job);
    fprintf(out, "</text>\n<text x=\"20\" y=\"%s\" fill=\"#444\">",
            NUM(y + 18));
    summary_numbers(out, r);
    if (r->error) {
        fputs(", <tspan fill=\"#c00\">error: ", out);
        put_text(out, r->errmsg[0] ? r->errmsg : strerror(-r->error), 80);
        fputs("</tspan>", out);
    }
    fputs("</text>\n", out);
}

static void write_summary(const struct report *rep)
{
    fputs("<g id=\"summary\">\n<text x=\"20\" y=\"32\" font-size=\"20\" "
          "font-weight=\"bold\">coblk-bench report</text>\n", rep->out);
    for (unsigned i = 0; i < rep->nr_jobs; i++) {
        summary_job(rep->out, &rep->jobs[i], 60 + 40 * i);
    }
    fputs("</g>\n", rep->out);
}

/* ---- the report --------------------------------------------------------- */

static bool has_io(const struct job_result *r, int dir)
{
    if (r->dir[dir].ios || r->dir[dir].clat.count) {
        return true;
    }
    for (size_t i = 0; i < r->series.count; i++) {
        if (r->series.points[i].ios[dir]) {
            return true;
        }
    }
    return false;
}

/* One merged result per job, in the order jobs first appear. */
static int merge_jobs(struct report *rep, const struct job_result *results,
                      unsigned n)
{
    rep->jobs = calloc(n ? n : 1, sizeof(*rep->jobs));
    rep->lines = calloc((n ? n : 1) * DIR_COUNT, sizeof(*rep->lines));
    if (!rep->jobs || !rep->lines) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned j = 0;
        while (j < rep->nr_jobs && rep->jobs[j].job != results[i].job) {
            j++;
        }
        if (j == rep->nr_jobs) {
            bench_result_init(&rep->jobs[rep->nr_jobs++], results[i].job, 0);
            rep->jobs[j].series.interval_ms = results[i].series.interval_ms;
        }
        if (bench_result_merge(&rep->jobs[j], &results[i])) {
            return -ENOMEM;
        }
    }
    for (unsigned j = 0; j < rep->nr_jobs; j++) {
        for (int d = 0; d < DIR_COUNT; d++) {
            if (has_io(&rep->jobs[j], d)) {
                rep->lines[rep->nr_lines++] =
                    (struct line){ .r = &rep->jobs[j], .dir = d };
            }
        }
    }
    return 0;
}

static void report_free(struct report *rep)
{
    for (unsigned j = 0; rep->jobs && j < rep->nr_jobs; j++) {
        bench_result_free(&rep->jobs[j]);
    }
    free(rep->jobs);
    free(rep->lines);
}

static void write_svg(const struct report *rep)
{
    FILE *out = rep->out;
    int top = SUMMARY_H(rep->nr_jobs);
    int height = top + (rep->nr_lines ? 4 * CHART_H : 60);

    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
            "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
            "font-size=\"12\">\n<title>coblk-bench report</title>\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n", WIDTH,
            height, WIDTH, height);
    write_summary(rep);
    if (!rep->nr_lines) {
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                "font-size=\"16\" fill=\"#666\">no I/O</text>\n", WIDTH / 2,
                top + 30);
    } else {
        chart_rate(rep, false, top);
        chart_rate(rep, true, top + CHART_H);
        chart_pcts(rep, top + 2 * CHART_H);
        chart_hist(rep, top + 3 * CHART_H);
    }
    fputs("</svg>\n", out);
}

int plot_svg(const char *path, const struct job_result *results, unsigned n,
             char *err, size_t err_size)
{
    struct report rep = { 0 };
    int ret = merge_jobs(&rep, results, n);

    if (ret) {
        snprintf(err, err_size, "%s: %s", path, strerror(-ret));
        report_free(&rep);
        return -1;
    }
    rep.out = fopen(path, "w");
    if (!rep.out) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        report_free(&rep);
        return -1;
    }
    write_svg(&rep);
    ret = ferror(rep.out) ? EIO : 0;
    if (fclose(rep.out) && !ret) {
        ret = errno;
    }
    report_free(&rep);
    if (ret) {
        snprintf(err, err_size, "%s: %s", path, strerror(ret));
        return -1;
    }
    return 0;
}

/*
 * rbd:POOL[/NAMESPACE]/IMAGE[@SNAPSHOT][:conf=PATH][:id=USER][:KEY=VALUE...]
 * a Ceph RBD image through librbd, as QEMU writes the spec: a backslash
 * makes the next ':', '/', '@' or '=' part of a name or value; conf names the ceph.conf (else librbd's search and
 * CEPH_CONF), id the client (admin when none); any other KEY is a Ceph
 * option (key=..., mon_host=..., rados_osd_op_timeout=...).  A snapshot
 * opens read-only.
 *
 * Requests are librbd's asynchronous calls.  Their completions run on
 * librbd's threads, where the callback only records the result and wakes
 * the request's coroutine with coblk_aio_co_wake(): from a foreign thread
 * that always schedules it on the coroutine's own context, so the wake
 * cannot overtake the yield, and nothing on the request path takes a lock
 * of ours.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "blk-int.h"
#include "rbd-lib.h"

typedef struct rbd_state {
    rados_t cluster;
    rados_ioctx_t io;
    rbd_image_t image;
    /* The snapshots, listed when info first asks (kept until close). */
    bool snapshots_listed;
    unsigned nr_snapshots;
    struct coblk_snapshot_info *snapshots;
    char **snapshot_names;
} rbd_state;

/* The spec, cut up (in one buffer of our own). */
struct rbd_spec {
    char *buf;
    const char *pool, *ns, *image, *snapshot;
    const char *conf, *id;
    /* The other KEY=VALUE pairs, for rados_conf_set(). */
    const char **keys, **values;
    unsigned nr_options;
};

static void spec_free(struct rbd_spec *sp)
{
    free(sp->buf);
    free(sp->keys);
    free(sp->values);
}

/* The first ch in s that no backslash escapes, or NULL. */
static char *find_unescaped(char *s, char ch)
{
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
        } else if (*s == ch) {
            return s;
        }
    }
    return NULL;
}

/* Cuts s at its first unescaped ch: returns what follows, or NULL. */
static char *cut(char *s, char ch)
{
    char *at = find_unescaped(s, ch);

    if (!at) {
        return NULL;
    }
    *at = '\0';
    return at + 1;
}

/* Removes s's escapes, in place: after cutting, so that an escaped
 * ':', '/', '@' or '=' is a character of the name or value. */
static char *unescape(char *s)
{
    char *out = s;

    for (char *in = s; *in; in++) {
        if (*in == '\\' && in[1]) {
            in++;
        }
        *out++ = *in;
    }
    *out = '\0';
    return s;
}

/* The spec itself is not repeated: it may hold a key. */
static int bad_name(void)
{
    return blk_error(-EINVAL, "rbd: the spec does not start with "
                     "POOL[/NAMESPACE]/IMAGE[@SNAPSHOT] (then "
                     ":conf=PATH, :id=USER, :KEY=VALUE...)");
}

/* POOL[/NAMESPACE]/IMAGE[@SNAPSHOT], in place. */
static int parse_name(struct rbd_spec *sp, char *name)
{
    char *snapshot = cut(name, '@');
    char *rest = cut(name, '/');
    char *image = rest ? cut(rest, '/') : NULL;

    if (!rest || (image && find_unescaped(image, '/'))) {
        return bad_name();
    }
    sp->pool = unescape(name);
    sp->ns = image ? unescape(rest) : NULL;
    sp->image = unescape(image ? image : rest);
    sp->snapshot = snapshot ? unescape(snapshot) : NULL;
    if (!*sp->pool || !*sp->image || (sp->ns && !*sp->ns) ||
        (sp->snapshot && !*sp->snapshot)) {
        return bad_name();
    }
    return 0;
}

static int parse_option(struct rbd_spec *sp, char *field, unsigned n)
{
    char *value = cut(field, '=');
    const char *key = unescape(field);

    if (!value || !*key) {
        return blk_error(-EINVAL, "rbd: option %u of the spec is no "
                         "KEY=VALUE", n);
    }
    unescape(value);
    bool named = !strcmp(key, "conf") || !strcmp(key, "id");
    if (named && !*value) {
        return blk_error(-EINVAL, "rbd: %s= needs a value", key);
    }
    if (!strcmp(key, "conf")) {
        sp->conf = value;
    } else if (!strcmp(key, "id")) {
        sp->id = value;
    } else {
        sp->keys[sp->nr_options] = key;
        sp->values[sp->nr_options++] = value;
    }
    return 0;
}

static int parse_spec(const char *args, struct rbd_spec *sp)
{
    size_t fields = 1;

    for (const char *c = args; *c; c++) {
        fields += *c == ':';
    }
    *sp = (struct rbd_spec){ .buf = strdup(args),
                             .keys = calloc(fields, sizeof(char *)),
                             .values = calloc(fields, sizeof(char *)) };
    if (!sp->buf || !sp->keys || !sp->values) {
        spec_free(sp);
        return blk_error(-ENOMEM, "out of memory");
    }
    char *field = sp->buf, *rest = cut(field, ':');
    int ret = parse_name(sp, field);
    for (unsigned n = 1; ret == 0 && rest; n++) {
        field = rest;
        rest = cut(field, ':');
        ret = parse_option(sp, field, n);
    }
    if (ret < 0) {
        spec_free(sp);
    }
    return ret;
}

/* Connects to the cluster the spec names, and opens the pool's I/O
 * context (in its namespace). */
static int connect_pool(rbd_state *s, const struct rbd_spec *sp)
{
    int ret = rbd_lib.rados_create(&s->cluster, sp->id);

    if (ret < 0) {
        return blk_error(ret, "rbd: cannot set up a Ceph client: %s",
                         strerror(-ret));
    }
    /* Our default, which the configuration may change: librados runs
     * completion callbacks on one thread instead of two.  Ours only wakes
     * a coroutine; a second thread added wakeups (measured: a sixth less
     * CPU per 4k read at the same rate). */
    rbd_lib.rados_conf_set(s->cluster, "librados_thread_count", "1");
    ret = rbd_lib.rados_conf_read_file(s->cluster, sp->conf);
    if (ret < 0 && sp->conf) {
        return blk_error(ret, "rbd: cannot read the Ceph configuration "
                         "'%s': %s", sp->conf, strerror(-ret));
    }
    ret = rbd_lib.rados_conf_parse_env(s->cluster, NULL);
    for (unsigned i = 0; ret >= 0 && i < sp->nr_options; i++) {
        ret = rbd_lib.rados_conf_set(s->cluster, sp->keys[i], sp->values[i]);
        if (ret < 0) {
            return blk_error(ret, "rbd: bad Ceph option %s: %s",
                             sp->keys[i], strerror(-ret));
        }
    }
    ret = ret < 0 ? ret : rbd_lib.rados_connect(s->cluster);
    if (ret < 0) {
        return blk_error(ret, "rbd: cannot connect to the Ceph cluster as "
                         "client.%s (check the monitors in %s, and the key): "
                         "%s", sp->id ? sp->id : "admin",
                         sp->conf ? sp->conf : "ceph.conf", strerror(-ret));
    }
    ret = rbd_lib.rados_ioctx_create(s->cluster, sp->pool, &s->io);
    if (ret < 0) {
        s->io = NULL;
        return blk_error(ret, "rbd: %s pool '%s'",
                         ret == -ENOENT ? "there is no" : "cannot open the",
                         sp->pool);
    }
    rbd_lib.rados_ioctx_set_namespace(s->io, sp->ns ? sp->ns : "");
    return 0;
}

static int open_image(rbd_state *s, const struct rbd_spec *sp, int flags)
{
    bool rdonly = (flags & COBLK_OPEN_RDONLY) || sp->snapshot;

    if (sp->snapshot && !(flags & COBLK_OPEN_RDONLY)) {
        return blk_error(-EINVAL, "rbd: a snapshot opens read-only "
                         "(@%s)", sp->snapshot);
    }
    int ret = rdonly ? rbd_lib.rbd_open_read_only(s->io, sp->image,
                                                  &s->image, sp->snapshot)
                     : rbd_lib.rbd_open(s->io, sp->image, &s->image, NULL);
    if (ret == -ENOENT) {
        return blk_error(ret, sp->snapshot
                                  ? "rbd: no image '%s' with a snapshot "
                                    "'%s' in pool '%s'"
                                  : "rbd: no image '%s'%.0s in pool '%s'",
                         sp->image, sp->snapshot ? sp->snapshot : "",
                         sp->pool);
    }
    if (ret < 0) {
        s->image = NULL;
        return blk_error(ret, "rbd: cannot open image '%s': %s", sp->image,
                         strerror(-ret));
    }
    return 0;
}

static void forget_snapshots(rbd_state *s)
{
    for (unsigned i = 0; i < s->nr_snapshots; i++) {
        free(s->snapshot_names[i]);
    }
    free(s->snapshot_names);
    free(s->snapshots);
}

static void disconnect(rbd_state *s)
{
    forget_snapshots(s);
    if (s->image) {
        rbd_lib.rbd_close(s->image);
    }
    if (s->io) {
        rbd_lib.rados_ioctx_destroy(s->io);
    }
    if (s->cluster) {
        rbd_lib.rados_shutdown(s->cluster);
    }
    free(s);
}

/* A new client connected to the pool sp names: *out to disconnect(). */
static int connect_new(const struct rbd_spec *sp, rbd_state **out)
{
    int ret = rbd_lib_load();
    if (ret < 0) {
        return ret;
    }
    rbd_state *s = calloc(1, sizeof(*s));
    ret = s ? connect_pool(s, sp) : blk_error(-ENOMEM, "out of memory");
    if (ret < 0) {
        if (s) {
            disconnect(s);
        }
        return ret;
    }
    *out = s;
    return 0;
}

static int rbd_open_dev(struct coblk_dev *dev, const char *args)
{
    struct rbd_spec sp;
    rbd_state *s = NULL;
    int ret = parse_spec(args, &sp);

    if (ret < 0) {
        return ret;
    }
    ret = connect_new(&sp, &s);
    if (ret == 0) {
        ret = open_image(s, &sp, dev->flags);
    }
    spec_free(&sp);
    uint64_t size;
    if (ret == 0 && (ret = rbd_lib.rbd_get_size(s->image, &size)) < 0) {
        blk_error(ret, "rbd: cannot read the image's size: %s",
                  strerror(-ret));
    }
    if (ret < 0) {
        if (s) {
            disconnect(s);
        }
        return ret;
    }
    dev->opaque = s;
    dev->size = size;
    return 0;
}

static void rbd_close_dev(struct coblk_dev *dev)
{
    disconnect(dev->opaque);
}

/* ---- requests ------------------------------------------------------------------ */

/* A request waiting for its completion, on its coroutine's stack. */
struct rbd_wait {
    coblk_co *co;
    ssize_t ret;
};

/* On one of librbd's threads. */
static void request_done(rbd_completion_t c, void *arg)
{
    struct rbd_wait *w = arg;

    w->ret = rbd_lib.rbd_aio_get_return_value(c);
    rbd_lib.rbd_aio_release(c);
    coblk_aio_co_wake(w->co);
}

enum rbd_op { RBD_READ, RBD_WRITE, RBD_FLUSH, RBD_DISCARD, RBD_ZEROES };

/* What one request does: an operation and its range, buffers and flags. */
struct rbd_call {
    enum rbd_op op;
    uint64_t offset, bytes;
    const struct iovec *iov;
    unsigned iovcnt;
    int zero_flags;
};

static int start(rbd_image_t image, const struct rbd_call *r,
                 rbd_completion_t c)
{
    switch (r->op) {
    case RBD_READ:
        return rbd_lib.rbd_aio_readv(image, r->iov, (int)r->iovcnt,
                                     r->offset, c);
    case RBD_WRITE:
        return rbd_lib.rbd_aio_writev(image, r->iov, (int)r->iovcnt,
                                      r->offset, c);
    case RBD_FLUSH:
        return rbd_lib.rbd_aio_flush(image, c);
    case RBD_DISCARD:
        return rbd_lib.rbd_aio_discard(image, r->offset, r->bytes, c);
    case RBD_ZEROES:
        return rbd_lib.rbd_aio_write_zeroes(image, r->offset, r->bytes, c,
                                            r->zero_flags, 0);
    }
    return -EINVAL;
}

/* Runs one librbd call and waits for it: 0 or a negative errno. */
static int coroutine_fn call(struct coblk_dev *dev, const struct rbd_call *r)
{
    rbd_state *s = dev->opaque;
    struct rbd_wait w = { .co = coblk_co_self() };
    rbd_completion_t c;
    int ret = rbd_lib.rbd_aio_create_completion(&w, request_done, &c);

    if (ret < 0) {
        return ret;
    }
    ret = start(s->image, r, c);
    if (ret < 0) {
        rbd_lib.rbd_aio_release(c);
        return ret;
    }
    coblk_co_yield();
    if (w.ret < 0) {
        return (int)w.ret;
    }
    /* In bounds (the generic path checks), a read gets every byte. */
    return r->op == RBD_READ && (uint64_t)w.ret != r->bytes ? -EIO : 0;
}

static int coroutine_fn rbd_co_preadv(struct coblk_dev *dev, uint64_t offset,
                                      uint64_t bytes, const struct iovec *iov,
                                      unsigned iovcnt)
{
    return call(dev, &(struct rbd_call){ RBD_READ, offset, bytes, iov,
                                         iovcnt, 0 });
}

static int coroutine_fn rbd_co_flush(struct coblk_dev *dev)
{
    return call(dev, &(struct rbd_call){ .op = RBD_FLUSH });
}

static int coroutine_fn rbd_co_pwritev(struct coblk_dev *dev,
                                       uint64_t offset, uint64_t bytes,
                                       const struct iovec *iov,
                                       unsigned iovcnt, int req_flags)
{
    int ret = call(dev, &(struct rbd_call){ RBD_WRITE, offset, bytes, iov,
                                            iovcnt, 0 });

    /* RBD has no forced unit access: a flush after the write. */
    return ret == 0 && (req_flags & COBLK_REQ_F_FUA) ? rbd_co_flush(dev)
                                                     : ret;
}

static int coroutine_fn rbd_co_pdiscard(struct coblk_dev *dev,
                                        uint64_t offset, uint64_t bytes)
{
    return call(dev, &(struct rbd_call){ RBD_DISCARD, offset, bytes, NULL,
                                         0, 0 });
}

static int coroutine_fn rbd_co_pwrite_zeroes(struct coblk_dev *dev,
                                             uint64_t offset, uint64_t bytes,
                                             int req_flags)
{
    /* Without leave to unmap, the zeroes stay allocated. */
    int zero_flags = req_flags & COBLK_REQ_F_UNMAP
                         ? 0 : RBD_WRITE_ZEROES_FLAG_THICK_PROVISION;
    return call(dev, &(struct rbd_call){ RBD_ZEROES, offset, bytes, NULL, 0,
                                         zero_flags });
}

/* ---- block status -------------------------------------------------------------- */

/* A walk over the objects of [start, start + bytes) (rbd_diff_iterate2):
 * how far from start the range is of one kind, allocated or not. */
struct diff_walk {
    rbd_image_t image;
    uint64_t start, bytes;
    uint64_t len;               /* out */
    bool exists;                /* out */
    int ret;                    /* out */
};

/* The callback's "found it": no librbd error has this value. */
#define DIFF_FOUND (-9000)

static int diff_extent(uint64_t offset, size_t len, int exists, void *arg)
{
    struct diff_walk *w = arg;

    /* Whole objects: one may start before the range, or end in it. */
    if (!exists || offset + len <= w->start) {
        return 0;
    }
    w->exists = offset <= w->start;
    w->len = w->exists ? offset + len - w->start : offset - w->start;
    return DIFF_FOUND;
}

/* On a worker thread: librbd's walk waits for the cluster. */
static int diff_walk(void *opaque)
{
    struct diff_walk *w = opaque;

    w->exists = false;
    w->len = w->bytes;
    w->ret = rbd_lib.rbd_diff_iterate2(w->image, NULL, w->start, w->bytes,
                                       1, 1, diff_extent, w);
    return 0;
}

/* Whether librbd can tell allocation cheaply (an object map, valid). */
static bool fast_diff(rbd_image_t image)
{
    uint64_t features, flags;

    return rbd_lib.rbd_get_features(image, &features) == 0 &&
           (features & RBD_FEATURE_FAST_DIFF) &&
           rbd_lib.rbd_get_flags(image, &flags) == 0 &&
           !(flags & RBD_FLAG_FAST_DIFF_INVALID);
}

/* Objects that exist hold data; the rest reads as zeroes, as QEMU tells
 * it.  Without an object map, all is data. */
static int coroutine_fn rbd_co_block_status(struct coblk_dev *dev,
                                            uint64_t offset, uint64_t bytes,
                                            struct coblk_block_status *out)
{
    rbd_state *s = dev->opaque;
    struct diff_walk w = { .image = s->image, .start = offset,
                           .bytes = bytes, .exists = true, .len = bytes };

    if (fast_diff(s->image)) {
        blk_co_run_in_worker(diff_walk, &w);
        if (w.ret < 0 && w.ret != DIFF_FOUND) {
            return blk_error(w.ret, "rbd: cannot tell the image's "
                             "allocation: %s", strerror(-w.ret));
        }
    }
    *out = (struct coblk_block_status){
        .bytes = w.len < bytes ? w.len : bytes, .host_offset = offset,
        .flags = (w.exists ? COBLK_BS_DATA : COBLK_BS_ZERO) |
                 COBLK_BS_ALLOCATED | COBLK_BS_OFFSET_VALID };
    return 0;
}

/* librbd resizes synchronously: on the loop's thread, but rare. */
static int coroutine_fn rbd_co_truncate(struct coblk_dev *dev, uint64_t size,
                                        enum coblk_prealloc mode)
{
    rbd_state *s = dev->opaque;

    if (mode != COBLK_PREALLOC_OFF) {
        return blk_error(-ENOTSUP, "rbd: images grow without "
                         "preallocation");
    }
    int ret = rbd_lib.rbd_resize(s->image, size);
    return ret < 0 ? blk_error(ret, "rbd: cannot resize the image: %s",
                               strerror(-ret))
                   : 0;
}

/* A new image of size bytes, with librbd's default features. */
static int rbd_create_image(const char *args, uint64_t size)
{
    struct rbd_spec sp;
    rbd_state *s;
    int ret = parse_spec(args, &sp);

    if (ret < 0) {
        return ret;
    }
    /* Refused before connecting, which may take minutes to fail. */
    ret = sp.snapshot ? blk_error(-EINVAL, "rbd: a snapshot (@%s) is made "
                                  "from an image, not created", sp.snapshot)
                      : connect_new(&sp, &s);
    if (ret == 0) {
        rbd_image_options_t opts;
        rbd_lib.rbd_image_options_create(&opts);
        ret = rbd_lib.rbd_create4(s->io, sp.image, size, opts);
        rbd_lib.rbd_image_options_destroy(opts);
        if (ret < 0) {
            blk_error(ret, "rbd: cannot create image '%s' in pool '%s': %s",
                      sp.image, sp.pool, strerror(-ret));
        }
        disconnect(s);
    }
    spec_free(&sp);
    return ret;
}

/* At most this many snapshots are listed: the count is the cluster's. */
#define SNAPSHOTS_MAX 65536

/* librbd's list of the image's snapshots (rbd_snap_list_end() it), or
 * NULL. */
static rbd_snap_info_t *snapshot_list(rbd_state *s, int *n)
{
    int max = 16;

    for (;;) {
        rbd_snap_info_t *snaps = calloc((size_t)max, sizeof(*snaps));
        if (!snaps) {
            return NULL;
        }
        *n = rbd_lib.rbd_snap_list(s->image, snaps, &max);
        if (*n >= 0) {
            return snaps;
        }
        free(snaps);
        if (*n != -ERANGE || max > SNAPSHOTS_MAX) {
            return NULL;
        }
    }
}

/* The snapshots as QEMU lists an RBD image's: named (and identified) by
 * their names, the image's size then as the VM state size, no date. */
static void list_snapshots(rbd_state *s)
{
    int n;
    rbd_snap_info_t *snaps = snapshot_list(s, &n);

    s->snapshots_listed = true;
    if (!snaps) {
        return;
    }
    s->snapshots = calloc((size_t)n + 1, sizeof(*s->snapshots));
    s->snapshot_names = calloc((size_t)n + 1, sizeof(char *));
    for (int i = 0; s->snapshots && s->snapshot_names && i < n; i++) {
        char *name = strdup(snaps[i].name);
        if (!name) {
            break;
        }
        s->snapshot_names[s->nr_snapshots] = name;
        s->snapshots[s->nr_snapshots++] = (struct coblk_snapshot_info){
            .id = name, .name = name, .vm_state_size = snaps[i].size,
            .disk_size = snaps[i].size };
    }
    rbd_lib.rbd_snap_list_end(snaps);
    free(snaps);
}

/* What qemu-img info shows of an RBD image: its object size as the
 * cluster size, and its snapshots. */
static void rbd_info(struct coblk_dev *dev, struct coblk_image_info *info)
{
    rbd_state *s = dev->opaque;
    rbd_image_info_t st;

    if (rbd_lib.rbd_stat(s->image, &st, sizeof(st)) == 0) {
        info->cluster_size = st.obj_size;
    }
    if (!s->snapshots_listed) {
        list_snapshots(s);
    }
    info->nb_snapshots = s->nr_snapshots;
    info->snapshots = s->snapshots;
}

const blk_driver blk_rbd_driver = {
    .name = "rbd",
    .open = rbd_open_dev,
    .close = rbd_close_dev,
    .co_preadv = rbd_co_preadv,
    .co_pwritev = rbd_co_pwritev,
    .co_flush = rbd_co_flush,
    .co_pdiscard = rbd_co_pdiscard,
    .co_pwrite_zeroes = rbd_co_pwrite_zeroes,
    .co_block_status = rbd_co_block_status,
    .co_truncate = rbd_co_truncate,
    .create_image = rbd_create_image,
    .info = rbd_info,
};

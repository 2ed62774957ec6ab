/*
 * librbd and librados, loaded when the first rbd: image is opened or
 * created, not linked: their C++ start-up (Ceph's table of options) cost
 * every program on libcoblk 36 ms at each start, rbd or not (measured: a
 * program that does nothing starts in 3 ms, 39 ms linked with them).
 *
 * The driver calls them as rbd_lib.rbd_open(...), with librbd's own
 * prototypes.
 */
#ifndef COBLK_BLK_RBD_LIB_H
#define COBLK_BLK_RBD_LIB_H

#include <rados/librados.h>
#include <rbd/librbd.h>

/* Every function the driver calls. */
#define RBD_LIB_FUNCTIONS(X)                                                  \
    X(rados_create) X(rados_conf_set) X(rados_conf_read_file)                 \
    X(rados_conf_parse_env) X(rados_connect) X(rados_shutdown)                \
    X(rados_ioctx_create) X(rados_ioctx_destroy) X(rados_ioctx_set_namespace) \
    X(rbd_open) X(rbd_open_read_only) X(rbd_close) X(rbd_get_size)            \
    X(rbd_get_features) X(rbd_get_flags) X(rbd_stat) X(rbd_resize)           \
    X(rbd_create4) X(rbd_image_options_create) X(rbd_image_options_destroy)  \
    X(rbd_snap_list) X(rbd_snap_list_end) X(rbd_diff_iterate2)               \
    X(rbd_aio_create_completion) X(rbd_aio_release)                          \
    X(rbd_aio_get_return_value) X(rbd_aio_readv) X(rbd_aio_writev)           \
    X(rbd_aio_flush) X(rbd_aio_discard) X(rbd_aio_write_zeroes)

#define RBD_LIB_FIELD(fn) __typeof__(fn) *fn;
struct rbd_lib {
    RBD_LIB_FUNCTIONS(RBD_LIB_FIELD)
};
#undef RBD_LIB_FIELD

extern struct rbd_lib rbd_lib;

/* Loads the libraries once (any thread); 0, or -ENOTSUP with a message
 * naming what is missing, at every call after a failure too. */
int rbd_lib_load(void);

#endif

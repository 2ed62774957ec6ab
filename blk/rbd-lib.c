/*
 * Loading librbd and librados at the first use (rbd-lib.h says why).
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "blk-int.h"
#include "rbd-lib.h"

/* The sonames the driver was built against: librados 2, librbd 1. */
#define LIBRADOS "librados.so.2"
#define LIBRBD "librbd.so.1"

struct rbd_lib rbd_lib;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512];    /* empty: loaded */

static void *open_library(const char *name)
{
    /* Never closed: librbd's threads and static objects live until exit. */
    void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);

    if (!handle) {
        snprintf(load_error, sizeof(load_error), "%s", dlerror());
    }
    return handle;
}

static void *symbol(void *rados, void *rbd, const char *name)
{
    void *fn = dlsym(name[1] == 'a' ? rados : rbd, name);   /* rados_, rbd_ */

    if (!fn && !load_error[0]) {
        snprintf(load_error, sizeof(load_error), "%s", dlerror());
    }
    return fn;
}

static void load(void)
{
    void *rados = open_library(LIBRADOS);
    void *rbd = rados ? open_library(LIBRBD) : NULL;

    if (!rbd) {
        return;
    }
#define RBD_LIB_LOAD(fn) rbd_lib.fn = (__typeof__(fn) *)symbol(rados, rbd, #fn);
    RBD_LIB_FUNCTIONS(RBD_LIB_LOAD)
#undef RBD_LIB_LOAD
}

int rbd_lib_load(void)
{
    pthread_once(&load_once, load);
    if (load_error[0]) {
        return blk_error(-ENOTSUP, "rbd: cannot load Ceph's libraries (%s): "
                         "install librbd1", load_error);
    }
    return 0;
}

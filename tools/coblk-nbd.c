/*
 * coblk-nbd: exports a coblk device over NBD with qemu-nbd's command
 * line.  The protocol is libcoblk's (coblk/nbd.h); this file opens the
 * device and the socket, and runs the event loop until told to stop.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "coblk/aio.h"
#include "coblk/coblk.h"
#include "coblk/nbd.h"
#include "guess.h"
#include "nbd/nbd.h"

/* A file's name, or a spec of one of coblk's drivers. */
static bool is_spec(const char *name)
{
    static const char *const drivers[] = { "file:", "raw:", "qcow2:",
                                           "null:", "blkdebug:", "rbd:" };

    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
        if (!strncmp(name, drivers[i], strlen(drivers[i]))) {
            return access(name, F_OK) != 0;
        }
    }
    return false;
}

static struct coblk_dev *open_device(const struct nbd_options *o)
{
    char fmt[16], *spec = NULL;
    const char *name = o->filename;

    if (is_spec(name) && !o->format) {
        spec = strdup(name);
    } else {
        if (o->format) {
            snprintf(fmt, sizeof(fmt), "%s", o->format);
        } else if (coblk_probe(name, fmt, sizeof(fmt)) < 0) {
            nbd_error("Failed to blk_new_open '%s': %s", name,
                      coblk_last_error());
            return NULL;
        } else if (!strcmp(fmt, "raw") && !o->read_only) {
            warn_guessed_raw(name);
        }
        if (strcmp(fmt, "raw") && strcmp(fmt, "qcow2")) {
            nbd_error("Unknown file format '%s'", fmt);
            return NULL;
        }
        /* A guessed raw image must stay raw (raw's probed=on). */
        bool probed_raw = !o->format && !strcmp(fmt, "raw");
        if (asprintf(&spec, "%s:%sfile:%s", fmt,
                     probed_raw ? "probed=on:" : "", name) < 0) {
            spec = NULL;
        }
    }
    if (!spec) {
        nbd_error("out of memory");
        return NULL;
    }
    struct coblk_dev *dev;
    int flags = COBLK_OPEN_LOCK | (o->read_only ? COBLK_OPEN_RDONLY : 0) |
                (o->direct ? COBLK_OPEN_DIRECT : 0) |
                (o->no_flush ? COBLK_OPEN_NO_FLUSH : 0);
    int ret = coblk_dev_open(spec, flags, &dev);
    free(spec);
    if (ret < 0) {
        nbd_error("Failed to blk_new_open '%s': %s", name,
                  coblk_last_error());
        return NULL;
    }
    return dev;
}

/* --fork: the parent waits for the child to listen, then leaves. */
static int daemonize(int *ready_fd)
{
    int pipefd[2];

    if (pipe(pipefd) < 0) {
        nbd_error("pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        nbd_error("fork: %s", strerror(errno));
        return -1;
    }
    if (pid > 0) {
        char ok;
        close(pipefd[1]);
        _exit(read(pipefd[0], &ok, 1) == 1 ? 0 : 1);
    }
    close(pipefd[0]);
    setsid();
    *ready_fd = pipefd[1];
    return 0;
}

static bool write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");

    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
        nbd_error("Cannot write pid file '%s': %s", path, strerror(errno));
        return false;
    }
    return true;
}

static volatile bool stop;

/* Waits for SIGINT or SIGTERM on a signalfd, in the event loop. */
static void coroutine_fn wait_for_signal(void *opaque)
{
    int fd = *(int *)opaque;
    struct signalfd_siginfo info;

    while (coblk_co_wait_fd(fd, POLLIN) >= 0 &&
           read(fd, &info, sizeof(info)) != sizeof(info)) {
    }
    stop = true;
}

/* Blocks SIGINT and SIGTERM, to be read from a signalfd. */
static int signal_fd(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

static bool served_enough(struct coblk_nbd_server *srv, bool persistent)
{
    struct coblk_nbd_server_stats st;

    coblk_nbd_server_stats(srv, &st, sizeof(st));
    return !persistent && st.clients == 0 && st.clients_done > 0;
}

static int serve(const struct nbd_options *o, struct coblk_dev *dev,
                 int listen_fd, int ready_fd)
{
    struct coblk_nbd_export_opts eo = {
        .name = o->export_name, .description = o->description,
        .read_only = o->read_only, .max_clients = o->shared,
        .allocation_depth = o->allocation_depth,
        .handshake_limit = o->handshake_limit,
    };
    struct coblk_nbd_server *srv;
    int sfd = signal_fd();

    if (sfd < 0 || coblk_nbd_server_new(dev, &eo, sizeof(eo), &srv) < 0 ||
        coblk_nbd_server_listen(srv, listen_fd) < 0) {
        nbd_error("cannot serve: %s", sfd < 0 ? strerror(errno)
                                             : coblk_last_error());
        return 1;
    }
    coblk_co *waiter = coblk_co_create(wait_for_signal, &sfd);
    if (!waiter) {
        nbd_error("out of memory");
        return 1;
    }
    coblk_aio_co_enter(coblk_aio_current(), waiter);
    if (ready_fd >= 0) {
        (void)!write(ready_fd, "1", 1);
        close(ready_fd);
    }
    while (!stop && !served_enough(srv, o->persistent)) {
        coblk_aio_poll(coblk_aio_current(), true);
    }
    coblk_nbd_server_free(srv);
    if (!stop) {
        /* The signal waiter still waits on the ring: a signal to
         * ourselves (blocked, so only the signalfd sees it) ends it. */
        kill(getpid(), SIGTERM);
        while (!stop) {
            coblk_aio_poll(coblk_aio_current(), true);
        }
    }
    close(sfd);
    return 0;
}

int main(int argc, char **argv)
{
    struct nbd_options o;
    int ready_fd = -1;
    int ret = nbd_parse_options(argc, argv, &o);

    if (ret >= 0) {
        return ret;
    }
    if (o.fork && daemonize(&ready_fd) < 0) {
        return 1;
    }
    if (o.pid_file && !write_pid_file(o.pid_file)) {
        return 1;
    }
    struct coblk_dev *dev = open_device(&o);
    if (!dev) {
        return 1;
    }
    int listen_fd = nbd_listen(&o);
    if (listen_fd < 0) {
        coblk_dev_close(dev);
        return 1;
    }
    ret = serve(&o, dev, listen_fd, ready_fd);
    if (o.socket_path) {
        unlink(o.socket_path);
    }
    /* Every write a client saw acknowledged is on stable storage before
     * the server is gone, flushed or not. */
    if (!o.read_only && coblk_flush(dev) < 0) {
        nbd_error("flushing: %s", coblk_last_error());
        ret = 1;
    }
    if (coblk_dev_close(dev) < 0) {
        nbd_error("%s", coblk_last_error());
        ret = 1;
    }
    if (o.pid_file) {
        unlink(o.pid_file);
    }
    return ret;
}

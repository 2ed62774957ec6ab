#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"

int run_in_child(void (*fn)(void *), void *arg, char *err, size_t err_size)
{
    int fds[2];
    size_t used = 0;
    int status = -1;

    if (pipe(fds) < 0) {
        perror("pipe");
        abort();
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        abort();
    }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    for (;;) {
        char sink[256];
        char *dst = used + 1 < err_size ? err + used : sink;
        size_t room = used + 1 < err_size ? err_size - 1 - used : sizeof(sink);
        ssize_t n = read(fds[0], dst, room);
        if (n <= 0) {
            break;
        }
        if (dst != sink) {
            used += (size_t)n;
        }
    }
    err[used] = '\0';
    close(fds[0]);
    waitpid(pid, &status, 0);
    return status;
}

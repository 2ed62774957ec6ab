/*
 * Coroutine stacks: one anonymous mapping each, a PROT_NONE guard page at
 * the bottom so an overflow faults instead of corrupting a neighbour, and
 * the coblk_co itself at the top so a coroutine is one mapping and no
 * malloc.  Pages are committed only when touched (MAP_NORESERVE).
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#ifdef HAVE_VALGRIND_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#include "coroutine-int.h"

/* Stack colouring: without it every coroutine's hot top of stack and its
 * coblk_co sit at the same offset in a page, hence in the same few L1 cache
 * sets, and a few dozen coroutines in turn evict each other.  Steps of 9
 * cache lines visit all 64 line offsets of a page before repeating. */
#define COLOUR_STEP (9 * 64)
#define COLOUR_SPAN 4096

static atomic_uint colour_counter;

static size_t round_up(size_t n, size_t align)
{
    return (n + align - 1) & ~(align - 1);
}

coblk_co *co_stack_new(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t header = round_up(sizeof(coblk_co), 64);
    size_t colour = (atomic_fetch_add_explicit(&colour_counter, 1,
                                               memory_order_relaxed) *
                     COLOUR_STEP) % COLOUR_SPAN;
    size_t map_size = page + round_up(size + header + COLOUR_SPAN, page);

    char *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                     -1, 0);
    if (map == MAP_FAILED) {
        return NULL;
    }
    if (mprotect(map, page, PROT_NONE) < 0) {
        int saved = errno;
        munmap(map, map_size);
        errno = saved;
        return NULL;
    }

    /* Fresh anonymous memory is zero: every field starts NULL/0. */
    coblk_co *co = (coblk_co *)(map + map_size - header - colour);
    co->stack.guard = map;
    co->stack.base = map + page;
    co->stack.size = (size_t)((char *)co - (map + page));
    co->stack.map_size = map_size;
    co->stack_asked = size;
#ifdef HAVE_VALGRIND_VALGRIND_H
    co->stack.valgrind_id = VALGRIND_STACK_REGISTER(
        co->stack.base, (char *)co->stack.base + co->stack.size);
#endif
    return co;
}

void co_stack_free(coblk_co *co)
{
#ifdef HAVE_VALGRIND_VALGRIND_H
    VALGRIND_STACK_DEREGISTER(co->stack.valgrind_id);
#endif
    munmap(co->stack.guard, co->stack.map_size);
}

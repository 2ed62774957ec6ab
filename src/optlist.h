/*
 * Comma-separated option lists, as QEMU writes them: items split at a
 * single comma, and ",," stands for a comma inside an item (a file name
 * such as "a,b.qcow2" is written "a,,b.qcow2").  Shared by the library's
 * option parser and coblk-img's -o.
 */
#ifndef COBLK_OPTLIST_H
#define COBLK_OPTLIST_H

#include <stddef.h>

/* The next item of the list at *at, unescaped in place; *at moves past
 * it.  NULL at the end (empty items are skipped). */
static inline char *optlist_next(char **at)
{
    while (*at && **at == ',' && (*at)[1] != ',') {
        (*at)++;                        /* an empty item */
    }
    if (!*at || !**at) {
        return NULL;
    }
    char *item = *at, *in = *at, *out = *at;
    while (*in && (*in != ',' || in[1] == ',')) {
        *out++ = *in;
        in += *in == ',' ? 2 : 1;
    }
    *at = *in ? in + 1 : NULL;
    *out = '\0';
    return item;
}

#endif /* COBLK_OPTLIST_H */

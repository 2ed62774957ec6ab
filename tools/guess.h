/*
 * What the tools say of an image whose format they guessed raw: qemu-img's
 * and qemu-nbd's words (the library keeps the promise: raw's probed=on).
 */
#ifndef COBLK_TOOLS_GUESS_H
#define COBLK_TOOLS_GUESS_H

#include <stdio.h>

static inline void warn_guessed_raw(const char *name)
{
    fprintf(stderr, "WARNING: Image format was not specified for '%s' and "
            "probing guessed raw.\n"
            "         Automatically detecting the format is dangerous for "
            "raw images, write operations on block 0 will be restricted.\n"
            "         Specify the 'raw' format explicitly to remove the "
            "restrictions.\n", name);
}

#endif /* COBLK_TOOLS_GUESS_H */

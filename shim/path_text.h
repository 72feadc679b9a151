/* path_text.h — the spelling of a path, as text: shared by the shim (passthrough.c,
 * snapshot_answers.c) and the supervisor's fast path on the master's side
 * (launcher/fastpath.c), which decide alike whether a path may be passed through. */
#ifndef LIBCFAKE_PATH_TEXT_H
#define LIBCFAKE_PATH_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Whether the path (n bytes) has a "." or ".." component. */
static inline bool has_dot_component(const char *path, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        size_t k = j - i;
        if ((k == 1 && path[i] == '.') || (k == 2 && path[i] == '.' && path[i + 1] == '.'))
            return true;
        i = j + 1;
    }
    return false;
}

/* Whether path (n bytes) is in the metadata snapshot's form: absolute, without "." or ".."
 * components, empty components (a repeated slash) or a trailing slash, unless it is "/". */
static inline bool snapshot_form(const char *path, size_t n)
{
    if (n == 0 || path[0] != '/')
        return false;
    if (n == 1)
        return true;
    if (path[n - 1] == '/')
        return false;
    for (size_t i = 1; i < n; i++)
        if (path[i] == '/' && path[i - 1] == '/')
            return false;
    return !has_dot_component(path, n);
}

#endif

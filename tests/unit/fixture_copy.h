/* fixture_copy.h - a temporary model folder whose files are symlinks to a
 * fixture's, for tests that change one file of it (test_model, test_config5).
 * Header-only, like check.h. */
#ifndef FIXTURE_COPY_H
#define FIXTURE_COPY_H
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/file.h"

/* mkdtemp("/tmp/<prefix>_XXXXXX") holding a symlink to every entry of src
 * except dot files and the names in skip (NULL-terminated, may be NULL).
 * Returns the malloc'd folder, or NULL (after a line on stderr) when the
 * folder or a link cannot be made.  Free it with fixture_copy_free. */
static char *fixture_copy(const char *src, const char *prefix, const char *const *skip) {
    char tmpl[128];
    snprintf(tmpl, sizeof tmpl, "/tmp/%s_XXXXXX", prefix);
    if (!mkdtemp(tmpl)) return NULL;
    char *dir = strdup(tmpl);
    DIR *d = opendir(src);
    struct dirent *de;
    int ok = d != NULL && dir != NULL;
    while (ok && (de = readdir(d))) {
        int skipped = de->d_name[0] == '.';
        for (size_t i = 0; skip && skip[i] && !skipped; i++) skipped = !strcmp(de->d_name, skip[i]);
        if (skipped) continue;
        char *from = mt_path_join(src, de->d_name), *to = mt_path_join(dir, de->d_name);
        char *abs = realpath(from, NULL);
        if (!abs || symlink(abs, to) != 0) {
            fprintf(stderr, "fixture_copy: cannot link %s\n", from);
            ok = 0;
        }
        free(abs);
        free(from);
        free(to);
    }
    if (d) closedir(d);
    if (!ok) {
        if (dir) mt_remove_tree(dir);
        free(dir);
        return NULL;
    }
    return dir;
}

/* Removes the folder and what is in it (the links, not their targets); frees dir.  NULL is fine. */
static void fixture_copy_free(char *dir) {
    if (!dir) return;
    mt_remove_tree(dir);
    free(dir);
}
#endif

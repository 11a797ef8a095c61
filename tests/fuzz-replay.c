/* SPDX-License-Identifier: MIT */
/*
 * Runs a fuzz target (LLVMFuzzerTestOneInput) on files: its seed corpus in
 * `make check`, or a crash file the fuzzer found:
 *
 *   NAME [FILE-OR-DIRECTORY...]
 *
 * Without arguments it runs $top_srcdir/FUZZ_CORPUS (a define: the target's
 * corpus folder).  A failing input aborts (the target's own checks, or a
 * sanitizer's).  A target may define fuzz_replay_check(), called at the end:
 * a non-zero return fails the run (shmring's looks for shm objects left
 * behind).  Shared by every fuzz target's replay program.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_CORPUS
#error "FUZZ_CORPUS: the seed corpus, relative to the top of the source tree"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int fuzz_replay_check(void) __attribute__((weak));

static const char *name = "fuzz-replay";
static unsigned n_run;

static int run_file(const char *path) {
        FILE *f = fopen(path, "rbe");
        uint8_t *buf = NULL, *exact;
        size_t n = 0, cap = 0, k;

        if (!f) {
                fprintf(stderr, "%s: %s: %s\n", name, path, strerror(errno));
                return -1;
        }
        do {
                if (n == cap) {
                        uint8_t *b = realloc(buf, cap = cap ? 2 * cap : 4096);

                        if (!b) {
                                fclose(f);
                                free(buf);
                                return -1;
                        }
                        buf = b;
                }
                k = fread(buf + n, 1, cap - n, f);
                n += k;
        } while (k > 0);
        fclose(f);
        /* A copy of exactly n bytes, so that a read past the input is caught. */
        exact = malloc(n ? n : 1);
        if (!exact) {
                free(buf);
                return -1;
        }
        memcpy(exact, buf, n);
        free(buf);
        fprintf(stderr, "%s: %s (%zu bytes)\n", name, path, n);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
        n_run++;
        return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_path(const char *path) {
        struct dirent **list;
        struct stat st;
        int n, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "%s: %s: %s\n", name, path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return run_file(path);
        n = scandir(path, &list, NULL, by_name);
        if (n < 0) {
                fprintf(stderr, "%s: %s: %s\n", name, path, strerror(errno));
                return -1;
        }
        for (int i = 0; i < n; i++) {
                char sub[4096];

                if (list[i]->d_name[0] != '.') {
                        snprintf(sub, sizeof(sub), "%s/%s", path, list[i]->d_name);
                        if (run_file(sub) < 0)
                                r = -1;
                }
                free(list[i]);
        }
        free(list);
        return r;
}

int main(int argc, char **argv) {
        const char *slash = strrchr(argv[0], '/');
        int r = 0;

        name = slash ? slash + 1 : argv[0];
        if (argc < 2) {
                const char *top = getenv("top_srcdir");
                char corpus[4096];

                snprintf(corpus, sizeof(corpus), "%s/%s", top ? top : ".", FUZZ_CORPUS);
                r = run_path(corpus);
        }
        for (int i = 1; i < argc; i++)
                if (run_path(argv[i]) < 0)
                        r = -1;
        if (r < 0)
                return 99;
        if (n_run == 0) {
                fprintf(stderr, "%s: no inputs\n", name);
                return 99;
        }
        if (fuzz_replay_check && fuzz_replay_check() != 0)
                return 1;
        fprintf(stderr, "%s: %u inputs, no crash\n", name, n_run);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Runs the notify parser's fuzz target (fuzz-notify.c) on files: the seed
 * corpus in `make check`, or a crash file `make fuzz` found:
 *
 *   fuzz-notify-replay [FILE-OR-DIRECTORY...]
 *
 * Without arguments: $top_srcdir/tests/supervisor/notify-corpus.  A failing
 * input aborts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned n_run;

static int run_file(const char *path) {
        FILE *f = fopen(path, "rbe");
        uint8_t *buf = NULL, *exact;
        size_t n = 0, cap = 0, k;

        if (!f) {
                fprintf(stderr, "fuzz-notify-replay: %s: %s\n", path, strerror(errno));
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
        fprintf(stderr, "fuzz-notify-replay: %s (%zu bytes)\n", path, n);
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
                fprintf(stderr, "fuzz-notify-replay: %s: %s\n", path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return run_file(path);
        n = scandir(path, &list, NULL, by_name);
        if (n < 0)
                return -1;
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
        int r = 0;

        if (argc < 2) {
                const char *top = getenv("top_srcdir");
                char corpus[4096];

                snprintf(corpus, sizeof(corpus), "%s/tests/supervisor/notify-corpus", top ? top : ".");
                r = run_path(corpus);
        }
        for (int i = 1; i < argc; i++)
                if (run_path(argv[i]) < 0)
                        r = -1;
        if (r < 0)
                return 99;
        if (n_run == 0) {
                fprintf(stderr, "fuzz-notify-replay: no inputs\n");
                return 99;
        }
        fprintf(stderr, "fuzz-notify-replay: %u inputs, no crash\n", n_run);
        return 0;
}

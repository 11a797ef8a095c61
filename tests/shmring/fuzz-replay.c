/* SPDX-License-Identifier: MIT */
/*
 * Runs a fuzz target (LLVMFuzzerTestOneInput) on files: the seed corpus in
 * `make check`, or a crash file the fuzzer found:
 *
 *   fuzz-replay [FILE-OR-DIRECTORY...]
 *
 * Without arguments it runs $top_srcdir/tests/shmring/corpus.  A failing
 * input aborts (the target's own checks, or a sanitizer's).  At the end it
 * checks that the target left no shm object of this process behind.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned n_run;

static int run_file(const char *path) {
        FILE *f = fopen(path, "rbe");
        uint8_t *buf = NULL;
        size_t n = 0, cap = 0;

        if (!f) {
                fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
                return -1;
        }
        for (;;) {
                if (n == cap) {
                        uint8_t *b;
                        cap = cap ? 2 * cap : 4096;
                        b = realloc(buf, cap);
                        if (!b) {
                                fclose(f);
                                free(buf);
                                return -1;
                        }
                        buf = b;
                }
                size_t k = fread(buf + n, 1, cap - n, f);
                if (k == 0)
                        break;
                n += k;
        }
        fclose(f);
        fprintf(stderr, "fuzz-replay: %s (%zu bytes)\n", path, n);
        /* A copy of exactly n bytes, so that a read past the input is caught. */
        uint8_t *exact = malloc(n ? n : 1);
        if (!exact) {
                free(buf);
                return -1;
        }
        memcpy(exact, buf, n);
        free(buf);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
        n_run++;
        return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int run_path(const char *path) {
        struct stat st;
        struct dirent **list;
        int n, r = 0;

        if (stat(path, &st) < 0) {
                fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return run_file(path);
        n = scandir(path, &list, NULL, by_name);
        if (n < 0) {
                fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
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

/* Shm objects of this process's fuzz runs still there. */
static unsigned leftovers(void) {
        char mark[64];
        DIR *d = opendir("/dev/shm");
        struct dirent *de;
        unsigned n = 0;

        if (!d)
                return 0;
        snprintf(mark, sizeof(mark), "-fuzz-%d-", (int) getpid());
        while ((de = readdir(d)))
                if (strstr(de->d_name, mark)) {
                        fprintf(stderr, "fuzz-replay: left behind: /dev/shm/%s\n", de->d_name);
                        (void) unlinkat(dirfd(d), de->d_name, 0);
                        n++;
                }
        closedir(d);
        return n;
}

int main(int argc, char **argv) {
        int r = 0;

        if (argc < 2) {
                const char *top = getenv("top_srcdir");
                char corpus[4096];

                snprintf(corpus, sizeof(corpus), "%s/tests/shmring/corpus", top ? top : ".");
                r = run_path(corpus);
        }
        for (int i = 1; i < argc; i++)
                if (run_path(argv[i]) < 0)
                        r = -1;
        if (r < 0)
                return 99;
        if (n_run == 0) {
                fprintf(stderr, "fuzz-replay: no inputs\n");
                return 99;
        }
        if (leftovers() > 0)
                return 1;
        fprintf(stderr, "fuzz-replay: %u inputs, no crash\n", n_run);
        return 0;
}

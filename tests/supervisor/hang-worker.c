/* SPDX-License-Identifier: MIT */
/*
 * A worker that hangs where a test wants it, for the hang diagnosis tests.
 * Built with -g -O0 -fno-inline so that a stack tool names the functions.
 *
 *   hang-worker [--ready FIFO] [--threads N] [--nccl-lines K] MODE [MODE...]
 *
 * Rank R (from $RANK) hangs in MODES[R % count], in its main thread and in
 * N more threads: read (a pipe no one writes), nanosleep, or futex (a
 * FUTEX_WAIT no one wakes), each in a function of its own (hang_in_read,
 * hang_in_nanosleep, hang_in_futex).  --nccl-lines K: first writes K lines
 * to $NCCL_DEBUG_FILE (%h and %p expanded as NCCL does).  --ready FIFO:
 * once the threads are started, writes "ready RANK PID\n" there (the test
 * then waits for every thread to be in its system call, from /proc).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int my_rank(void) {
        const char *r = getenv("RANK");
        return r ? atoi(r) : 0;
}

__attribute__((noinline)) static void hang_in_read(void) {
        int fds[2];
        char c;

        if (pipe(fds) < 0)
                abort();
        /* The write end stays open: read() waits for ever. */
        for (;;)
                (void) !read(fds[0], &c, 1);
}

__attribute__((noinline)) static void hang_in_nanosleep(void) {
        for (;;) {
                struct timespec ts = { .tv_sec = 3600 };

                nanosleep(&ts, NULL);
        }
}

static uint32_t futex_word;

__attribute__((noinline)) static void hang_in_futex(void) {
        for (;;)
                syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

static void hang(const char *mode) {
        if (strcmp(mode, "read") == 0)
                hang_in_read();
        else if (strcmp(mode, "nanosleep") == 0)
                hang_in_nanosleep();
        else if (strcmp(mode, "futex") == 0)
                hang_in_futex();
        fprintf(stderr, "hang-worker: unknown mode %s\n", mode);
        exit(2);
}

static void *thread_main(void *mode) {
        hang(mode);
        return NULL;
}

static void write_nccl_lines(int n) {
        const char *pattern = getenv("NCCL_DEBUG_FILE");
        char path[4096], host[256] = "", *o = path;
        FILE *f;

        if (!pattern) {
                fprintf(stderr, "hang-worker: NCCL_DEBUG_FILE is not set\n");
                exit(2);
        }
        (void) gethostname(host, sizeof(host) - 1);
        host[strcspn(host, ".")] = 0;
        for (const char *p = pattern; *p && o < path + sizeof(path) - 64; p++) {
                if (p[0] == '%' && p[1] == 'p') {
                        o += sprintf(o, "%d", (int) getpid());
                        p++;
                } else if (p[0] == '%' && p[1] == 'h') {
                        o += sprintf(o, "%.60s", host);
                        p++;
                } else
                        *o++ = *p;
        }
        *o = 0;
        f = fopen(path, "w");
        if (!f) {
                fprintf(stderr, "hang-worker: %s: %s\n", path, strerror(errno));
                exit(2);
        }
        for (int i = 0; i < n; i++)
                fprintf(f, "%s:%d:%d [0] NCCL INFO fake line %d of rank %d\n", host, (int) getpid(), (int) getpid(), i,
                        my_rank());
        fclose(f);
}

int main(int argc, char **argv) {
        const char *ready = NULL, *mode;
        int threads = 0, nccl_lines = -1, first_mode, n_modes;

        int i = 1;
        for (; i < argc; i++) {
                if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
                        ready = argv[++i];
                else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
                        threads = atoi(argv[++i]);
                else if (strcmp(argv[i], "--nccl-lines") == 0 && i + 1 < argc)
                        nccl_lines = atoi(argv[++i]);
                else
                        break;
        }
        first_mode = i;
        n_modes = argc - first_mode;
        if (n_modes <= 0) {
                fprintf(stderr, "usage: hang-worker [--ready FIFO] [--threads N] [--nccl-lines K] MODE...\n");
                return 2;
        }
        mode = argv[first_mode + my_rank() % n_modes];

        if (nccl_lines >= 0)
                write_nccl_lines(nccl_lines);
        for (int t = 0; t < threads; t++) {
                pthread_t th;

                if (pthread_create(&th, NULL, thread_main, (void *) mode) != 0)
                        abort();
        }
        if (ready) {
                char line[64];
                int fd = open(ready, O_WRONLY | O_CLOEXEC), n;

                if (fd < 0) {
                        fprintf(stderr, "hang-worker: %s: %s\n", ready, strerror(errno));
                        return 2;
                }
                n = snprintf(line, sizeof(line), "ready %d %d\n", my_rank(), (int) getpid());
                (void) !write(fd, line, (size_t) n);
                close(fd);
        }
        hang(mode);
        return 0;
}

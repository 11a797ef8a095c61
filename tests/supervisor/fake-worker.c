/* SPDX-License-Identifier: MIT */
/*
 * A fake worker for ringmaster's tests and benchmarks.
 *
 *   fake-worker [--ready FIFO] [--go FIFO] [--rank R] ACTION [ARGS] [--others ACTION [ARGS]]
 *
 * With --rank R, rank R (from $RANK) does ACTION and every other rank does
 * the --others action (default: hang).  --ready FIFO: once set up (signal
 * dispositions in place), each rank writes "ready RANK PID\n" there.
 * --go FIFO: the acting rank waits for a line on it before acting, so that
 * a test can make it act once every rank is ready.
 *
 * Actions:
 *   true | exit CODE | segv | abort | hang | ignore-term | sleep SECS
 *   flood BYTES nl|nonl      BYTES to stderr, in lines of 100 or without newlines
 *   binary                   control bytes, invalid UTF-8, NULs to stdout and stderr
 *   orphan PIDFILE           leave a grandchild behind (its pid in PIDFILE), exit 0
 *   env                      print the environment, one "env KEY=VALUE" per line
 *   lines N LEN              N lines of LEN bytes to stdout, each in several writes
 *   error-file MESSAGE       write a torchrun error file, then exit 1
 *   fail-until K             exit 1 while TORCHELASTIC_RESTART_COUNT < K, else 0
 *   crash-stamp              print CLOCK_MONOTONIC (ns) to stderr, then SIGSEGV
 *   script STEP...           notify steps in order (through rm_notify.h, the C API under test):
 *     phase=NAME end=NAME progress=D/T ready status=TEXT watchdog trigger extend=USEC
 *     stopping errno=N raw=TEXT (\n: newline)   one datagram each; a failed or
 *                              disabled send exits 80
 *     garbage                  bad datagrams (oversized, not UTF-8, no '=', READY=2, empty,
 *                              a NUL, READY=1 with an fd) straight to the socket
 *     child=STEP grandchild=STEP  the step from a child (grandchild) process, waited for
 *     heartbeat=SECS           WATCHDOG=1 every SECS, for ever
 *     sleep=SECS | hang | spin (busy, for ever) | exit=CODE
 *     wait-fifo=PATH           block reading a FIFO (a barrier nobody releases)
 *     stamp=LABEL              print "stamp LABEL <CLOCK_MONOTONIC ns>" to stderr
 *     tell=FIFO                write "ready RANK PID" to FIFO (as --ready), at this point
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rm_notify.h"

static int my_rank(void) {
        const char *r = getenv("RANK");
        return r ? atoi(r) : 0;
}

static void write_all(int fd, const void *buf, size_t n) {
        const char *p = buf;

        while (n > 0) {
                ssize_t k = write(fd, p, n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        fprintf(stderr, "fake-worker: write: %s\n", strerror(errno));
                        _exit(90);
                }
                p += k;
                n -= (size_t) k;
        }
}

static void say_ready(const char *fifo) {
        char line[64];
        int fd, n;

        if (!fifo)
                return;
        fd = open(fifo, O_WRONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "fake-worker: %s: %s\n", fifo, strerror(errno));
                _exit(91);
        }
        n = snprintf(line, sizeof(line), "ready %d %d\n", my_rank(), (int) getpid());
        write_all(fd, line, (size_t) n);
        close(fd);
}

static void wait_go(const char *fifo) {
        char c;
        int fd;

        if (!fifo)
                return;
        fd = open(fifo, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "fake-worker: %s: %s\n", fifo, strerror(errno));
                _exit(92);
        }
        while (read(fd, &c, 1) < 0 && errno == EINTR)
                ;
        close(fd);
}

static void no_core_dumps(void) {
        struct rlimit rl = { 0, 0 };
        (void) setrlimit(RLIMIT_CORE, &rl);
}

static int flood(unsigned long long bytes, int newlines) {
        static char buf[65500];   /* whole 100-byte lines */
        unsigned long long done = 0;

        memset(buf, 'x', sizeof(buf));
        if (newlines)
                for (size_t i = 99; i < sizeof(buf); i += 100)
                        buf[i] = '\n';
        while (done < bytes) {
                size_t n = sizeof(buf);

                if (bytes - done < n)
                        n = (size_t) (bytes - done);
                write_all(2, buf, n);
                done += n;
        }
        printf("flood done %llu\n", done);
        return 0;
}

static int binary(void) {
        unsigned char junk[256 + 16];

        for (int i = 0; i < 256; i++)
                junk[i] = (unsigned char) i;
        memcpy(junk + 256, "\xff\xfe\xc3(\xe2\x82\0\x1b[31mred\n", 16);
        write_all(1, junk, sizeof(junk));
        write_all(2, junk, sizeof(junk));
        write_all(1, "after binary\n", 13);
        /* Valid UTF-8 passes through unchanged. */
        write_all(2, "utf8: caf\xc3\xa9 \xe2\x9c\x93\n", 16);
        return 0;
}

static int orphan(const char *pidfile) {
        pid_t child = fork();
        int status;

        if (child < 0)
                return 93;
        if (child == 0) {
                pid_t grandchild = fork();

                if (grandchild < 0)
                        _exit(94);
                if (grandchild == 0) {
                        char tmp[4096], line[32];
                        int fd, n;

                        /* Its own session, so that no group signal reaches it: only the subreaper can. */
                        setsid();
                        /* Published atomically, so that the test never reads half a pid. */
                        snprintf(tmp, sizeof(tmp), "%s.tmp", pidfile);
                        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                        n = snprintf(line, sizeof(line), "%d\n", (int) getpid());
                        write_all(fd, line, (size_t) n);
                        close(fd);
                        rename(tmp, pidfile);
                        for (;;)
                                pause();
                }
                _exit(0);
        }
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                ;
        /* The grandchild is now an orphan (its parent exited); wait until it is set up. */
        while (access(pidfile, F_OK) < 0)
                usleep(1000);
        printf("orphan left behind\n");
        return 0;
}

static int print_env(void) {
        extern char **environ;

        for (char **e = environ; *e; e++)
                printf("env %s\n", *e);
        return 0;
}

static int lines(long n, long len) {
        char *buf = malloc((size_t) len + 1);
        int rank = my_rank();

        if (!buf)
                return 95;
        for (long i = 0; i < n; i++) {
                int h = snprintf(buf, (size_t) len + 1, "r%d-%ld-", rank, i);

                for (long k = h; k < len; k++)
                        buf[k] = (char) ('a' + (k + rank) % 26);
                buf[len] = '\n';
                /* Three pieces with yields in between: the supervisor must reassemble them. */
                write_all(1, buf, (size_t) len / 3);
                sched_yield();
                write_all(1, buf + len / 3, (size_t) len / 3);
                sched_yield();
                write_all(1, buf + 2 * (len / 3), (size_t) (len + 1 - 2 * (len / 3)));
        }
        free(buf);
        return 0;
}

static int error_file(const char *message) {
        const char *path = getenv("TORCHELASTIC_ERROR_FILE");
        FILE *f;

        if (!path)
                return 96;
        f = fopen(path, "w");
        if (!f)
                return 97;
        /* The shape torch.distributed.elastic's @record writes. */
        fprintf(f,
                "{\"message\": {\"message\": \"%s\", \"extraInfo\": {\"py_callstack\": "
                "\"Traceback (most recent call last):\\n  File \\\"worker.py\\\", line 7, in <module>\\n    "
                "main()\\nRuntimeError: %s\\n\", \"timestamp\": \"1700000000\"}}}\n",
                message, message);
        fclose(f);
        fprintf(stderr, "RuntimeError: %s\n", message);
        return 1;
}

static int fail_until(int k) {
        const char *c = getenv("TORCHELASTIC_RESTART_COUNT");
        int count = c ? atoi(c) : -1;
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        printf("attempt restart_count=%d at %lld.%09ld\n", count, (long long) ts.tv_sec, ts.tv_nsec);
        return count < k ? 1 : 0;
}

static int crash_stamp(void) {
        struct timespec ts;

        no_core_dumps();
        clock_gettime(CLOCK_MONOTONIC, &ts);
        fprintf(stderr, "crash-stamp %lld\n", (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec);
        fflush(stderr);
        raise(SIGSEGV);
        return 98;
}

static void sleep_seconds(double s) {
        struct timespec ts = { (time_t) s, (long) ((s - (double) (time_t) s) * 1e9) };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static void notified(const char *step, int r) {
        if (r > 0)
                return;
        fprintf(stderr, "fake-worker: rank %d: %s: %s\n", my_rank(), step,
                r == 0 ? "no notify socket set" : strerror(-r));
        _exit(80);
}

/* A datagram as it is, with an fd attached when fd >= 0 (bypassing the C API's checks). */
static void send_raw(const void *data, size_t len, int fd) {
        const char *e = getenv("RINGMASTER_NOTIFY_SOCKET");
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { (void *) data, len };
        struct msghdr mh = { .msg_name = &sa, .msg_iov = &iov, .msg_iovlen = 1 };
        int s;

        if (!e || strlen(e) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "fake-worker: garbage: bad RINGMASTER_NOTIFY_SOCKET\n");
                _exit(80);
        }
        strcpy(sa.sun_path, e);
        mh.msg_namelen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(e) + 1);
        if (e[0] == '@') {
                sa.sun_path[0] = 0;
                mh.msg_namelen--;
        }
        if (fd >= 0) {
                struct cmsghdr *c;

                memset(&control, 0, sizeof(control));
                mh.msg_control = &control;
                mh.msg_controllen = sizeof(control);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s < 0 || sendmsg(s, &mh, MSG_NOSIGNAL) < 0) {
                fprintf(stderr, "fake-worker: garbage: %s\n", strerror(errno));
                _exit(80);
        }
        close(s);
}

static void send_garbage(void) {
        static char big[5000];

        memset(big, 'x', sizeof(big));
        memcpy(big, "STATUS=", 7);
        send_raw(big, sizeof(big), -1);                     /* oversized */
        send_raw("STATUS=\xff\xfe", 9, -1);                  /* not UTF-8 */
        send_raw("READY", 5, -1);                           /* no '=' */
        send_raw("READY=2", 7, -1);                         /* a value READY does not take */
        send_raw("", 0, -1);                                /* empty */
        send_raw("READY=1\0X=1", 11, -1);                   /* a NUL */
        send_raw("READY=1", 7, 0);                          /* an fd: dropped, so not ready */
        fprintf(stderr, "fake-worker: rank %d: garbage sent\n", my_rank());
}

static void script_step(const char *step);

/* Runs step in a child (depth 1) or a grandchild (depth 2), and waits for it. */
static void in_descendant(const char *step, int depth) {
        pid_t child = fork();
        int status;

        if (child < 0)
                _exit(80);
        if (child == 0) {
                if (depth > 1)
                        in_descendant(step, depth - 1);
                else
                        script_step(step);
                /* Taken as the rank's only while this process exists: wait until it was read. */
                notified("barrier", rm_notify_barrier(10000000));
                _exit(0);
        }
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                _exit(80);
}

static void script_step(const char *step) {
        const char *v = strchr(step, '=');
        struct timespec ts;

        v = v ? v + 1 : "";
        if (strncmp(step, "phase=", 6) == 0)
                notified(step, rm_phase(v));
        else if (strncmp(step, "end=", 4) == 0)
                notified(step, rm_phase_end(v));
        else if (strncmp(step, "progress=", 9) == 0)
                notified(step, rm_progress(strtoull(v, NULL, 10), strtoull(strchr(v, '/') + 1, NULL, 10)));
        else if (strcmp(step, "ready") == 0)
                notified(step, rm_ready());
        else if (strncmp(step, "status=", 7) == 0)
                notified(step, rm_status("%s", v));
        else if (strcmp(step, "watchdog") == 0)
                notified(step, rm_heartbeat());
        else if (strcmp(step, "trigger") == 0)
                notified(step, rm_notify("WATCHDOG=trigger"));
        else if (strncmp(step, "extend=", 7) == 0)
                notified(step, rm_extend_timeout(strtoull(v, NULL, 10)));
        else if (strcmp(step, "stopping") == 0)
                notified(step, rm_stopping());
        else if (strncmp(step, "errno=", 6) == 0)
                notified(step, rm_notify_errno(atoi(v)));
        else if (strncmp(step, "raw=", 4) == 0) {
                char text[4200];
                size_t n = 0;

                for (const char *p = v; *p && n < sizeof(text) - 1; p++)
                        if (p[0] == '\\' && p[1] == 'n') {
                                text[n++] = '\n';
                                p++;
                        } else
                                text[n++] = *p;
                text[n] = 0;
                notified(step, rm_notify(text));
        } else if (strcmp(step, "garbage") == 0)
                send_garbage();
        else if (strncmp(step, "child=", 6) == 0)
                in_descendant(v, 1);
        else if (strncmp(step, "grandchild=", 11) == 0)
                in_descendant(v, 2);
        else if (strncmp(step, "heartbeat=", 10) == 0)
                for (;;) {
                        notified(step, rm_heartbeat());
                        sleep_seconds(atof(v));
                }
        else if (strncmp(step, "sleep=", 6) == 0)
                sleep_seconds(atof(v));
        else if (strcmp(step, "hang") == 0)
                for (;;)
                        pause();
        else if (strcmp(step, "spin") == 0)
                for (volatile unsigned long i = 0;; i++)
                        ;
        else if (strncmp(step, "exit=", 5) == 0) {
                fflush(stdout);
                _exit(atoi(v));
        } else if (strncmp(step, "wait-fifo=", 10) == 0) {
                char c;
                int fd = open(v, O_RDONLY | O_CLOEXEC);

                if (fd < 0) {
                        fprintf(stderr, "fake-worker: %s: %s\n", v, strerror(errno));
                        _exit(80);
                }
                while (read(fd, &c, 1) < 0 && errno == EINTR)
                        ;
                close(fd);
        } else if (strncmp(step, "tell=", 5) == 0)
                say_ready(v);
        else if (strncmp(step, "stamp=", 6) == 0) {
                clock_gettime(CLOCK_MONOTONIC, &ts);
                fprintf(stderr, "stamp %s %lld\n", v, (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec);
                fflush(stderr);
        } else {
                fprintf(stderr, "fake-worker: unknown script step '%s'\n", step);
                _exit(99);
        }
}

/* Runs one action; argv points at its name. */
static int act(char **argv, const char *ready, const char *go) {
        const char *a = argv[0];

        if (strcmp(a, "ignore-term") == 0)
                signal(SIGTERM, SIG_IGN);
        say_ready(ready);
        wait_go(go);

        if (strcmp(a, "true") == 0)
                return 0;
        if (strcmp(a, "exit") == 0 && argv[1])
                return atoi(argv[1]);
        if (strcmp(a, "segv") == 0) {
                volatile int *p = NULL;

                no_core_dumps();
                *p = 1;
                return 98;
        }
        if (strcmp(a, "abort") == 0) {
                no_core_dumps();
                abort();
        }
        if (strcmp(a, "hang") == 0 || strcmp(a, "ignore-term") == 0) {
                for (;;)
                        pause();
        }
        if (strcmp(a, "sleep") == 0 && argv[1]) {
                double s = atof(argv[1]);
                struct timespec ts = { (time_t) s, (long) ((s - (double) (time_t) s) * 1e9) };

                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
                return 0;
        }
        if (strcmp(a, "flood") == 0 && argv[1] && argv[2])
                return flood(strtoull(argv[1], NULL, 10), strcmp(argv[2], "nl") == 0);
        if (strcmp(a, "binary") == 0)
                return binary();
        if (strcmp(a, "orphan") == 0 && argv[1])
                return orphan(argv[1]);
        if (strcmp(a, "env") == 0)
                return print_env();
        if (strcmp(a, "lines") == 0 && argv[1] && argv[2])
                return lines(atol(argv[1]), atol(argv[2]));
        if (strcmp(a, "error-file") == 0 && argv[1])
                return error_file(argv[1]);
        if (strcmp(a, "fail-until") == 0 && argv[1])
                return fail_until(atoi(argv[1]));
        if (strcmp(a, "crash-stamp") == 0)
                return crash_stamp();
        if (strcmp(a, "script") == 0) {
                for (char **step = argv + 1; *step; step++)
                        script_step(*step);
                return 0;
        }
        fprintf(stderr, "fake-worker: unknown action '%s'\n", a);
        return 99;
}

int main(int argc, char **argv) {
        const char *ready = NULL, *go = NULL;
        char **action, **others = NULL;
        static char *hang[] = { "hang", NULL };
        int i = 1, rank = -1;

        setvbuf(stdout, NULL, _IOLBF, 0);
        for (; i < argc; i++) {
                if (strcmp(argv[i], "--ready") == 0 && i + 1 < argc)
                        ready = argv[++i];
                else if (strcmp(argv[i], "--go") == 0 && i + 1 < argc)
                        go = argv[++i];
                else if (strcmp(argv[i], "--rank") == 0 && i + 1 < argc)
                        rank = atoi(argv[++i]);
                else
                        break;
        }
        if (i >= argc) {
                fprintf(stderr, "usage: fake-worker [--ready FIFO] [--go FIFO] [--rank R] ACTION [ARGS] "
                                "[--others ACTION [ARGS]]\n");
                return 2;
        }
        action = argv + i;
        for (int k = i; k < argc; k++)
                if (strcmp(argv[k], "--others") == 0) {
                        argv[k] = NULL;
                        others = argv + k + 1;
                        break;
                }
        if (rank >= 0 && my_rank() != rank)
                return act(others && others[0] ? others : hang, ready, NULL);
        return act(action, ready, go);
}

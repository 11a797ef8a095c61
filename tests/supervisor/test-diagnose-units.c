/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the hang diagnosis's parts: system call names, the /proc
 * snapshot of a process tree blocked in read, Python command detection,
 * the workers' PYTHONPATH, stack tool lookup and arguments, and the
 * merging of identical thread stacks for the text report.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "options.h"
#include "proctree.h"
#include "python-hooks.h"
#include "stack.h"
#include "util.h"

#include "unit.h"

#define CHECK1(cond) CHECK(cond, "%s", #cond)

static bool streq(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

static void test_syscall_names(void) {
        CHECK1(streq(syscall_name(SYS_read), "read"));
        CHECK1(streq(syscall_name(SYS_write), "write"));
        CHECK1(streq(syscall_name(SYS_futex), "futex"));
        CHECK1(streq(syscall_name(SYS_nanosleep), "nanosleep"));
        CHECK1(streq(syscall_name(SYS_clock_nanosleep), "clock_nanosleep"));
        CHECK1(streq(syscall_name(SYS_epoll_pwait), "epoll_pwait"));
        CHECK1(streq(syscall_name(SYS_ppoll), "ppoll"));
        CHECK1(streq(syscall_name(SYS_recvmsg), "recvmsg"));
        CHECK1(streq(syscall_name(SYS_wait4), "wait4"));
        CHECK1(syscall_name(99999) == NULL);
        CHECK1(syscall_name(-1) == NULL);
        CHECK1(streq(proc_state_name('D'), "disk sleep"));
        CHECK1(streq(proc_state_name('?'), "unknown"));
}

/* Waits (bounded) until pid sleeps in the kernel: it is about to, once it wrote its readiness. */
static bool wait_sleeping(pid_t pid) {
        for (int i = 0; i < 5000; i++) {
                struct process_snapshot *l = NULL;
                size_t n = 0;
                bool asleep;

                if (proc_snapshot_tree(pid, 1, 0, &l, &n) < 0)
                        return false;
                asleep = l[0].state == 'S' && l[0].wchan[0];
                process_snapshots_free(l, n);
                if (asleep)
                        return true;
                nanosleep(&(struct timespec) { .tv_nsec = 1000000 }, NULL);
        }
        return false;
}

static void test_snapshot(void) {
        int block[2], ready[2];
        pid_t child, grandchild = 0;
        struct process_snapshot *l = NULL;
        size_t n = 0;
        char c;

        CHECK1(pipe2(block, O_CLOEXEC) == 0 && pipe2(ready, O_CLOEXEC) == 0);
        child = fork();
        CHECK1(child >= 0);
        if (child == 0) {
                pid_t g;

                close(block[1]);        /* EOF once the test closes its end */
                g = fork();
                if (g == 0) {
                        (void) !write(ready[1], "g", 1);
                        (void) !read(block[0], &c, 1);
                        _exit(0);
                }
                (void) !write(ready[1], "c", 1);
                (void) !read(block[0], &c, 1);
                (void) waitpid(g, NULL, 0);
                _exit(0);
        }
        CHECK1(read(ready[0], &c, 1) == 1 && read(ready[0], &c, 1) == 1);
        CHECK1(wait_sleeping(child));

        CHECK1(proc_snapshot_tree(child, 8, 16, &l, &n) == 0);
        CHECK1(n == 2);
        if (n == 2) {
                grandchild = l[1].pid;
                CHECK1(l[0].pid == child && l[0].ppid == getpid());
                CHECK1(l[1].ppid == child);
                CHECK1(wait_sleeping(grandchild));
                CHECK1(l[0].state == 'S' && streq(l[0].syscall, "read") && l[0].wchan[0]);
                CHECK1(l[0].n_threads == 1 && l[0].n_threads_listed == 1 && l[0].threads[0].tid == child);
                CHECK1(streq(l[0].threads[0].syscall, "read") && l[0].threads[0].state == 'S');
                CHECK1(strlen(l[0].exe) > 0 && l[0].start_time > 0);
                CHECK1(!l[0].catches_sigusr1);
        }
        l = process_snapshots_free(l, n);

        /* max_processes bounds the walk; max_threads the listing, not the count. */
        CHECK1(proc_snapshot_tree(child, 1, 0, &l, &n) == 0 && n == 1 && l[0].n_threads_listed == 0 &&
              l[0].n_threads == 1);
        l = process_snapshots_free(l, n);

        close(block[1]);        /* both read EOF and exit */
        CHECK1(waitpid(child, NULL, 0) == child);
        CHECK1(proc_snapshot_tree(child, 1, 0, &l, &n) == -ESRCH);
        close(block[0]);
        close(ready[0]);
        close(ready[1]);
        (void) grandchild;
}

static void test_python_names(void) {
        CHECK1(is_python_name("python"));
        CHECK1(is_python_name("python3"));
        CHECK1(is_python_name("python3.11"));
        CHECK1(is_python_name("python3.13t"));
        CHECK1(is_python_name("python3.7m"));
        CHECK1(!is_python_name("python3-config"));
        CHECK1(!is_python_name("python3.11-config"));
        CHECK1(!is_python_name("pythonista"));
        CHECK1(!is_python_name("py"));
        CHECK1(!is_python_name("ipython"));
}

static char *write_script(const char *dir, const char *name, const char *text) {
        char *path = NULL;
        FILE *f;

        CHECK1(asprintf(&path, "%s/%s", dir, name) > 0);
        f = fopen(path, "w");
        CHECK1(f);
        if (f) {
                fputs(text, f);
                fclose(f);
        }
        chmod(path, 0755);
        return path;
}

static void test_command_is_python(const char *dir) {
        char *python3[] = { "python3", "-c", "pass", NULL };
        char *full[] = { "/usr/local/bin/python3.11", "x.py", NULL };
        char *env_python[] = { "env", "-u", "X", "FOO=1", "python3", "-m", "torch.distributed.run", NULL };
        char *env_other[] = { "/usr/bin/env", "FOO=1", "bash", NULL };
        char *plain[] = { "./worker", NULL };
        char *s1 = write_script(dir, "torchrun", "#!/usr/bin/python3.11\nimport sys\n");
        char *s2 = write_script(dir, "serve", "#!/usr/bin/env -S python3 -u\n");
        char *s3 = write_script(dir, "run.sh", "#!/bin/sh\nexec python3 x.py\n");
        char *missing = NULL;
        char *paths1[] = { s1, NULL }, *paths2[] = { s2, NULL }, *paths3[] = { s3, NULL };
        char *paths_missing_first[3] = { NULL, s1, NULL };
        char *argv_script[] = { "torchrun", NULL };

        CHECK1(asprintf(&missing, "%s/nope/torchrun", dir) > 0);
        paths_missing_first[0] = missing;

        CHECK1(command_is_python(python3, NULL));
        CHECK1(command_is_python(full, NULL));
        CHECK1(command_is_python(env_python, NULL));
        CHECK1(!command_is_python(env_other, NULL));
        CHECK1(!command_is_python(plain, NULL));
        CHECK1(command_is_python(argv_script, paths1));
        CHECK1(command_is_python(argv_script, paths2));
        CHECK1(!command_is_python(argv_script, paths3));
        /* The first candidate that exists is the one execvp runs. */
        CHECK1(command_is_python(argv_script, paths_missing_first));
        free(s1);
        free(s2);
        free(s3);
        free(missing);
}

static void test_pythonpath(const char *dir) {
        char *s = NULL, *hook = NULL, *pkg = NULL, *h = NULL, *got_hook = NULL, *got_pkg = NULL;

        CHECK1(python_hooks_pythonpath("/h", "/p", NULL, &s) == 0 && streq(s, "/h:/p"));
        free(s);
        CHECK1(python_hooks_pythonpath("/h", NULL, "/a::/b", &s) == 0 && streq(s, "/h:/a::/b"));
        free(s);
        CHECK1(python_hooks_pythonpath("/h", "/p", "", &s) == 0 && streq(s, "/h:/p"));
        free(s);

        /* RINGMASTER_PYTHON_HOOK_DIR: the package is its parent when that holds ringmaster/. */
        CHECK1(asprintf(&pkg, "%s/pkg", dir) > 0 && asprintf(&hook, "%s/pkg/hook", dir) > 0);
        CHECK1(mkdir(pkg, 0755) == 0 && mkdir(hook, 0755) == 0);
        CHECK1(asprintf(&h, "%s/ringmaster", pkg) > 0 && mkdir(h, 0755) == 0);
        free(write_script(h, "__init__.py", ""));
        setenv("RINGMASTER_PYTHON_HOOK_DIR", hook, 1);
        CHECK1(python_hook_dirs(&got_hook, &got_pkg) == 0);
        CHECK1(streq(got_hook, hook) && streq(got_pkg, pkg));
        free(got_hook);
        free(got_pkg);
        got_hook = got_pkg = NULL;
        setenv("RINGMASTER_PYTHON_HOOK_DIR", "/nonexistent/hook", 1);
        CHECK1(python_hook_dirs(&got_hook, &got_pkg) == -ENOENT && !got_hook);
        unsetenv("RINGMASTER_PYTHON_HOOK_DIR");
        free(hook);
        free(pkg);
        free(h);
}

static void test_stack_tool_lookup(const char *dir) {
        char *only_gdb = NULL, *both = NULL, *none = NULL, *path = NULL, **argv = NULL;
        const char *saved = getenv("PATH");
        char *saved_copy = saved ? strdup(saved) : NULL;
        enum stack_tool t = STACK_TOOL_NONE;

        CHECK1(asprintf(&only_gdb, "%s/only-gdb", dir) > 0 && mkdir(only_gdb, 0755) == 0);
        CHECK1(asprintf(&both, "%s/both", dir) > 0 && mkdir(both, 0755) == 0);
        CHECK1(asprintf(&none, "%s/none", dir) > 0 && mkdir(none, 0755) == 0);
        free(write_script(only_gdb, "gdb", "#!/bin/sh\n"));
        free(write_script(both, "gdb", "#!/bin/sh\n"));
        free(write_script(both, "eu-stack", "#!/bin/sh\n"));
        free(write_script(none, "eu-stack.txt", ""));

        setenv("PATH", both, 1);
        CHECK1(stack_tool_find(STACK_TOOL_AUTO, &t, &path) == 0 && t == STACK_TOOL_EU_STACK);
        free(path);
        path = NULL;
        CHECK1(stack_tool_find(STACK_TOOL_GDB, &t, &path) == 0 && t == STACK_TOOL_GDB);
        free(path);
        path = NULL;
        setenv("PATH", only_gdb, 1);
        CHECK1(stack_tool_find(STACK_TOOL_AUTO, &t, &path) == 0 && t == STACK_TOOL_GDB);
        free(path);
        path = NULL;
        CHECK1(stack_tool_find(STACK_TOOL_EU_STACK, &t, &path) == -ENOENT && !path);
        setenv("PATH", none, 1);
        CHECK1(stack_tool_find(STACK_TOOL_AUTO, &t, &path) == -ENOENT && !path);
        CHECK1(stack_tool_find(STACK_TOOL_NONE, &t, &path) == -ENOENT);
        /* Relative folders are not searched. */
        setenv("PATH", ".", 1);
        CHECK1(stack_tool_find(STACK_TOOL_AUTO, &t, &path) == -ENOENT);
        if (saved_copy)
                setenv("PATH", saved_copy, 1);
        free(saved_copy);

        CHECK1(stack_tool_parse("eu-stack", &t) == 0 && t == STACK_TOOL_EU_STACK);
        CHECK1(stack_tool_parse("auto", &t) == 0 && t == STACK_TOOL_AUTO);
        CHECK1(stack_tool_parse("lldb", &t) == -EINVAL);
        CHECK1(stack_tool_argv(STACK_TOOL_GDB, "/usr/bin/gdb", 42, &argv) == 0);
        if (argv) {
                bool batch = false, bt = false, pid = false;

                for (size_t i = 0; argv[i]; i++) {
                        batch |= streq(argv[i], "-batch");
                        bt |= streq(argv[i], "thread apply all bt");
                        pid |= streq(argv[i], "-p") && streq(argv[i + 1], "42");
                }
                CHECK1(streq(argv[0], "/usr/bin/gdb") && batch && bt && pid);
        }
        argv = strv_free(argv);
        CHECK1(stack_tool_argv(STACK_TOOL_EU_STACK, "/usr/bin/eu-stack", 7, &argv) == 0 && strv_length(argv) == 3 &&
              streq(argv[1], "-p") && streq(argv[2], "7"));
        argv = strv_free(argv);
        free(only_gdb);
        free(both);
        free(none);
}

static bool strv_equal(char *const *a, const char *const *b) {
        size_t i = 0;

        for (; a && a[i] && b[i]; i++)
                if (strcmp(a[i], b[i]) != 0) {
                        fprintf(stderr, "  line %zu: '%s' != '%s'\n", i, a[i], b[i]);
                        return false;
                }
        if ((a && a[i]) || b[i]) {
                fprintf(stderr, "  lengths differ at %zu\n", i);
                return false;
        }
        return true;
}

static void test_collapse(void) {
        char *eu[] = {
                "PID 10 - process",
                "TID 10:", "#0  0x00007f01 read", "#1  0x0000550a hang_in_read", "#2  0x0000550b main",
                "TID 11:", "#0  0x00007f01 read", "#1  0x0000550a hang_in_read", "#2  0x0000550c thread_main",
                "TID 12:", "#0  0x00007f02 read", "#1  0x0000550d hang_in_read", "#2  0x0000550e thread_main", NULL,
        };
        const char *eu_want[] = {
                "TID 10:", "#0  0x00007f01 read", "#1  0x0000550a hang_in_read", "#2  0x0000550b main",
                "TID 11:", "  (and 1 more thread with the same stack)", "#0  0x00007f01 read",
                "#1  0x0000550a hang_in_read", "#2  0x0000550c thread_main", NULL,
        };
        char *gdb[] = {
                "[New LWP 12]", "Thread 3 (Thread 0x7f3 (LWP 12) \"w\"):",
                "#0  __GI___libc_read (nbytes=1, buf=0x7f1, fd=5) at read.c:26",
                "#1  0x000055 in hang_in_read (fd=5) at w.c:3",
                "", "Thread 2 (Thread 0x7f2 (LWP 11) \"w\"):",
                "#0  __GI___libc_read (nbytes=1, buf=0x7f9, fd=3) at read.c:26",
                "#1  0x000056 in hang_in_read (fd=(int) (3)) at w.c:3",
                "[Inferior 1 (process 10) detached]", NULL,
        };
        const char *gdb_want[] = {
                "Thread 3 (Thread 0x7f3 (LWP 12) \"w\"):", "  (and 1 more thread with the same stack)",
                "#0  __GI___libc_read (nbytes=1, buf=0x7f1, fd=5) at read.c:26",
                "#1  0x000055 in hang_in_read (fd=5) at w.c:3", NULL,
        };
        char *py[] = {
                "Thread 0x00007f1 (most recent call first):", "  File \"t.py\", line 3 in wait", "",
                "Thread 0x00007f2 (most recent call first):", "  File \"t.py\", line 3 in wait", "",
                "Current thread 0x00007f3 (most recent call first):",
                "  File \"t.py\", line 6 in hang_in_init_process_group",
                "  File \"t.py\", line 9 in <module>", NULL,
        };
        const char *py_want[] = {
                "Thread 0x00007f1 (most recent call first):", "  (and 1 more thread with the same stack)",
                "  File \"t.py\", line 3 in wait",
                "Current thread 0x00007f3 (most recent call first):",
                "  File \"t.py\", line 6 in hang_in_init_process_group",
                "  File \"t.py\", line 9 in <module>", NULL,
        };
        char *other[] = { "no threads here", "#0 but a frame", NULL };
        const char *other_want[] = { "no threads here", "#0 but a frame", NULL };
        char **out = NULL;

        CHECK1(stack_collapse(eu, STACK_FORMAT_EU_STACK, &out) == 0 && strv_equal(out, eu_want));
        out = strv_free(out);
        CHECK1(stack_collapse(gdb, STACK_FORMAT_GDB, &out) == 0 && strv_equal(out, gdb_want));
        out = strv_free(out);
        CHECK1(stack_collapse(py, STACK_FORMAT_PYTHON, &out) == 0 && strv_equal(out, py_want));
        out = strv_free(out);
        CHECK1(stack_collapse(other, STACK_FORMAT_EU_STACK, &out) == 0 && strv_equal(out, other_want));
        out = strv_free(out);
}

/* Ranks stuck in one collective: the same stack but for addresses, arguments and thread ids. */
static void test_same(void) {
        char *rank0[] = { "TID 100:", "#0  0x00007f1 clock_nanosleep@GLIBC_2.2.5", "#1  0x00007f2 ncclCommInitRank",
                          "TID 101:", "#0  0x00007f3 epoll_wait", NULL };
        char *rank1[] = { "TID 200:", "#0  0x00007a1 clock_nanosleep@GLIBC_2.2.5", "#1  0x00007a2 ncclCommInitRank",
                          "TID 201:", "#0  0x00007a3 epoll_wait", NULL };
        char *elsewhere[] = { "TID 300:", "#0  0x00007b1 clock_nanosleep@GLIBC_2.2.5", "#1  0x00007b2 ncclAllReduce",
                              "TID 301:", "#0  0x00007b3 epoll_wait", NULL };
        char *fewer_threads[] = { "TID 400:", "#0  0x00007c1 clock_nanosleep@GLIBC_2.2.5",
                                  "#1  0x00007c2 ncclCommInitRank", NULL };
        char *gdb0[] = { "Thread 1 (Thread 0x7f00 (LWP 100) \"python3\"):", "#0  0x00007f1 in poll (fds=0x1, n=2) at p.c:1",
                         NULL };
        char *gdb1[] = { "Thread 1 (Thread 0x7e00 (LWP 200) \"python3\"):", "#0  0x00007e1 in poll (fds=0x9, n=2) at p.c:1",
                         NULL };
        char *py0[] = { "Current thread 0x00007f00 (most recent call first):",
                        "  File \"w.py\", line 3 in init_process_group", NULL };
        char *py1[] = { "Current thread 0x00007e00 (most recent call first):",
                        "  File \"w.py\", line 4 in init_process_group", NULL };

        CHECK1(stack_same(rank0, rank1, STACK_FORMAT_EU_STACK));
        CHECK1(!stack_same(rank0, elsewhere, STACK_FORMAT_EU_STACK));
        CHECK1(!stack_same(rank0, fewer_threads, STACK_FORMAT_EU_STACK));
        CHECK1(!stack_same(fewer_threads, rank0, STACK_FORMAT_EU_STACK));
        CHECK1(stack_same(gdb0, gdb1, STACK_FORMAT_GDB));
        CHECK1(!stack_same(py0, py1, STACK_FORMAT_PYTHON));      /* another line is another place */
        CHECK1(stack_same(py0, py0, STACK_FORMAT_PYTHON));
}

int main(void) {
        char dir[] = "/tmp/test-diagnose-units-XXXXXX";
        char cmd[128];

        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 99;
        }
        test_syscall_names();
        test_snapshot();
        test_python_names();
        test_command_is_python(dir);
        test_pythonpath(dir);
        test_stack_tool_lookup(dir);
        test_collapse();
        test_same();
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        (void) !system(cmd);
        if (failures) {
                fprintf(stderr, "%d check(s) failed\n", failures);
                return 1;
        }
        printf("all checks passed\n");
        return 0;
}

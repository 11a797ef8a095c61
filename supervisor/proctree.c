/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "parse-util.h"
#include "proctree.h"
#include "util.h"

/* ------------------------------------------------------------ system call names */

struct syscall_entry {
        int nr;
        const char *name;
};

/*
 * The calls a hung process is found in, and the common others; numbers from
 * the kernel's uapi headers (asm/unistd_64.h, asm-generic/unistd.h).
 */
#if defined(__x86_64__)
static const struct syscall_entry syscall_table[] = {
        { 0, "read" },
        { 1, "write" },
        { 2, "open" },
        { 3, "close" },
        { 4, "stat" },
        { 5, "fstat" },
        { 6, "lstat" },
        { 7, "poll" },
        { 8, "lseek" },
        { 9, "mmap" },
        { 10, "mprotect" },
        { 11, "munmap" },
        { 12, "brk" },
        { 13, "rt_sigaction" },
        { 14, "rt_sigprocmask" },
        { 16, "ioctl" },
        { 17, "pread64" },
        { 18, "pwrite64" },
        { 19, "readv" },
        { 20, "writev" },
        { 21, "access" },
        { 22, "pipe" },
        { 23, "select" },
        { 24, "sched_yield" },
        { 25, "mremap" },
        { 26, "msync" },
        { 28, "madvise" },
        { 33, "dup2" },
        { 34, "pause" },
        { 35, "nanosleep" },
        { 40, "sendfile" },
        { 41, "socket" },
        { 42, "connect" },
        { 43, "accept" },
        { 44, "sendto" },
        { 45, "recvfrom" },
        { 46, "sendmsg" },
        { 47, "recvmsg" },
        { 48, "shutdown" },
        { 49, "bind" },
        { 50, "listen" },
        { 56, "clone" },
        { 57, "fork" },
        { 58, "vfork" },
        { 59, "execve" },
        { 60, "exit" },
        { 61, "wait4" },
        { 62, "kill" },
        { 65, "semop" },
        { 69, "msgsnd" },
        { 70, "msgrcv" },
        { 72, "fcntl" },
        { 73, "flock" },
        { 74, "fsync" },
        { 75, "fdatasync" },
        { 82, "rename" },
        { 83, "mkdir" },
        { 87, "unlink" },
        { 89, "readlink" },
        { 128, "rt_sigtimedwait" },
        { 130, "rt_sigsuspend" },
        { 157, "prctl" },
        { 202, "futex" },
        { 203, "sched_setaffinity" },
        { 204, "sched_getaffinity" },
        { 208, "io_getevents" },
        { 209, "io_submit" },
        { 217, "getdents64" },
        { 219, "restart_syscall" },
        { 220, "semtimedop" },
        { 230, "clock_nanosleep" },
        { 231, "exit_group" },
        { 232, "epoll_wait" },
        { 233, "epoll_ctl" },
        { 234, "tgkill" },
        { 243, "mq_timedreceive" },
        { 247, "waitid" },
        { 257, "openat" },
        { 262, "newfstatat" },
        { 270, "pselect6" },
        { 271, "ppoll" },
        { 275, "splice" },
        { 281, "epoll_pwait" },
        { 288, "accept4" },
        { 292, "dup3" },
        { 293, "pipe2" },
        { 299, "recvmmsg" },
        { 307, "sendmmsg" },
        { 318, "getrandom" },
        { 326, "copy_file_range" },
        { 332, "statx" },
        { 426, "io_uring_enter" },
        { 434, "pidfd_open" },
        { 435, "clone3" },
        { 436, "close_range" },
        { 441, "epoll_pwait2" },
        { 449, "futex_waitv" },
};
#elif defined(__aarch64__)
static const struct syscall_entry syscall_table[] = {
        { 2, "io_submit" },
        { 4, "io_getevents" },
        { 21, "epoll_ctl" },
        { 22, "epoll_pwait" },
        { 24, "dup3" },
        { 25, "fcntl" },
        { 29, "ioctl" },
        { 32, "flock" },
        { 56, "openat" },
        { 57, "close" },
        { 59, "pipe2" },
        { 61, "getdents64" },
        { 62, "lseek" },
        { 63, "read" },
        { 64, "write" },
        { 65, "readv" },
        { 66, "writev" },
        { 67, "pread64" },
        { 68, "pwrite64" },
        { 71, "sendfile" },
        { 72, "pselect6" },
        { 73, "ppoll" },
        { 76, "splice" },
        { 79, "newfstatat" },
        { 80, "fstat" },
        { 82, "fsync" },
        { 83, "fdatasync" },
        { 93, "exit" },
        { 94, "exit_group" },
        { 95, "waitid" },
        { 98, "futex" },
        { 101, "nanosleep" },
        { 115, "clock_nanosleep" },
        { 122, "sched_setaffinity" },
        { 123, "sched_getaffinity" },
        { 124, "sched_yield" },
        { 128, "restart_syscall" },
        { 129, "kill" },
        { 131, "tgkill" },
        { 133, "rt_sigsuspend" },
        { 134, "rt_sigaction" },
        { 135, "rt_sigprocmask" },
        { 137, "rt_sigtimedwait" },
        { 167, "prctl" },
        { 183, "mq_timedreceive" },
        { 188, "msgrcv" },
        { 189, "msgsnd" },
        { 192, "semtimedop" },
        { 193, "semop" },
        { 198, "socket" },
        { 200, "bind" },
        { 201, "listen" },
        { 202, "accept" },
        { 203, "connect" },
        { 206, "sendto" },
        { 207, "recvfrom" },
        { 210, "shutdown" },
        { 211, "sendmsg" },
        { 212, "recvmsg" },
        { 214, "brk" },
        { 215, "munmap" },
        { 216, "mremap" },
        { 220, "clone" },
        { 221, "execve" },
        { 222, "mmap" },
        { 226, "mprotect" },
        { 227, "msync" },
        { 233, "madvise" },
        { 242, "accept4" },
        { 243, "recvmmsg" },
        { 260, "wait4" },
        { 269, "sendmmsg" },
        { 278, "getrandom" },
        { 285, "copy_file_range" },
        { 291, "statx" },
        { 426, "io_uring_enter" },
        { 434, "pidfd_open" },
        { 435, "clone3" },
        { 436, "close_range" },
        { 441, "epoll_pwait2" },
        { 449, "futex_waitv" },
};
#else
static const struct syscall_entry syscall_table[] = { { -1, NULL } };
#endif

const char *syscall_name(long nr) {
        for (size_t i = 0; i < ELEMENTSOF(syscall_table); i++)
                if (syscall_table[i].nr == nr && syscall_table[i].name)
                        return syscall_table[i].name;
        return NULL;
}

/* ------------------------------------------------------------ one file each */

const char *proc_state_name(char state) {
        switch (state) {
        case 'R': return "running";
        case 'S': return "sleeping";
        case 'D': return "disk sleep";
        case 'T': return "stopped";
        case 't': return "tracing stop";
        case 'Z': return "zombie";
        case 'X': return "dead";
        case 'I': return "idle";
        case 'P': return "parked";
        case 'W': return "waking";
        default: return "unknown";
        }
}

bool is_python_name(const char *name) {
        const char *p;

        if (!startswith(name, "python"))
                return false;
        p = name + strlen("python");
        p += strspn(p, "0123456789.");
        /* Debug, pymalloc and free-threaded builds: python3.11d, python3.7m, python3.13t. */
        p += strspn(p, "dmt");
        return *p == 0;
}

/* Reads a small /proc file into buf, without its trailing newline. */
static int read_small(const char *path, char *buf, size_t size) {
        _cleanup_free_ char *text = NULL;
        size_t n = 0;
        int r;

        r = read_file_bounded(AT_FDCWD, path, 4096, &text, &n);
        if (r < 0)
                return r;
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
                text[--n] = 0;
        snprintf(buf, size, "%s", text);
        return 0;
}

static void task_path(char *buf, size_t size, pid_t pid, pid_t tid, const char *file) {
        if (tid > 0)
                snprintf(buf, size, "/proc/%d/task/%d/%s", (int) pid, (int) tid, file);
        else
                snprintf(buf, size, "/proc/%d/%s", (int) pid, file);
}

int proc_read_syscall(pid_t pid, pid_t tid, char *buf, size_t size) {
        char path[96], text[256];
        const char *name;
        long nr;
        int r;

        task_path(path, sizeof(path), pid, tid, "syscall");
        r = read_small(path, text, sizeof(text));
        if (r < 0)
                return r;
        if (startswith(text, "running")) {
                snprintf(buf, size, "running");
                return 0;
        }
        if (sscanf(text, "%ld", &nr) != 1)
                return -EBADMSG;
        if (nr < 0) {
                snprintf(buf, size, "none");
                return 0;
        }
        name = syscall_name(nr);
        if (name)
                snprintf(buf, size, "%s", name);
        else
                snprintf(buf, size, "#%ld", nr);
        return 0;
}

static void read_wchan(pid_t pid, pid_t tid, char *buf, size_t size) {
        char path[96];

        task_path(path, sizeof(path), pid, tid, "wchan");
        /* "0" while running. */
        if (read_small(path, buf, size) < 0 || strcmp(buf, "0") == 0)
                buf[0] = 0;
}

/* The one parser of /proc/PID/stat (and of a thread's). */
struct stat_fields {
        char comm[32];
        char state;
        int ppid;
        int pgrp;
        unsigned long utime, stime;
        long num_threads;
        unsigned long long start_time;
        int exit_code;                  /* field 52 (Linux 3.5+): a zombie's wait status; -1 unknown */
};

static int read_stat_fields(pid_t pid, pid_t tid, struct stat_fields *ret) {
        _cleanup_free_ char *text = NULL;
        char path[96], *open_paren, *close_paren;
        struct stat_fields f = {};
        size_t len;
        int r;

        task_path(path, sizeof(path), pid, tid, "stat");
        r = read_file_bounded(AT_FDCWD, path, 4096, &text, NULL);
        if (r < 0)
                return r;
        open_paren = strchr(text, '(');
        close_paren = strrchr(text, ')');
        if (!open_paren || !close_paren || close_paren < open_paren)
                return -EBADMSG;
        /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
           cutime cstime priority nice num_threads itrealvalue starttime */
        if (sscanf(close_paren + 1, " %c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %ld %*d %llu",
                   &f.state, &f.ppid, &f.pgrp, &f.utime, &f.stime, &f.num_threads, &f.start_time) != 7)
                return -EBADMSG;
        len = MIN((size_t) (close_paren - open_paren - 1), sizeof(f.comm) - 1);
        memcpy(f.comm, open_paren + 1, len);
        f.comm[len] = 0;
        /* The last field, exit_code (52nd; the state is the 3rd, the first after ')'). */
        f.exit_code = -1;
        {
                const char *q = close_paren + 2;
                int field = 3;

                while (q && *q && field < 52) {
                        q = strchr(q, ' ');
                        if (q)
                                q++;
                        field++;
                }
                if (q && *q && field == 52)
                        f.exit_code = atoi(q);
        }
        *ret = f;
        return 0;
}

int proc_read_start_time(pid_t pid, unsigned long long *ret) {
        struct stat_fields f;
        int r;

        r = read_stat_fields(pid, 0, &f);
        if (r < 0)
                return r;
        *ret = f.start_time;
        return 0;
}

int proc_read_stat(pid_t pid, struct proc_stat *ret) {
        struct stat_fields f;
        int r;

        r = read_stat_fields(pid, 0, &f);
        if (r < 0)
                return r;
        *ret = (struct proc_stat) { .state = f.state, .ppid = f.ppid, .pgrp = f.pgrp, .start_time = f.start_time,
                                    .exit_code = f.exit_code };
        memcpy(ret->comm, f.comm, sizeof(ret->comm));
        return 0;
}

int proc_read_wchan(pid_t pid, char *buf, size_t size) {
        char path[96];

        task_path(path, sizeof(path), pid, 0, "wchan");
        return read_small(path, buf, size);
}

unsigned long proc_self_peak_rss_kib(void) {
        _cleanup_free_ char *text = NULL;
        unsigned long kib = 0;
        const char *p;

        if (read_file_bounded(AT_FDCWD, "/proc/self/status", 1 << 16, &text, NULL) < 0)
                return 0;
        p = strstr(text, "\nVmHWM:");
        if (p)
                (void) sscanf(p + 7, " %lu", &kib);
        return kib;
}

static bool catches_signal(pid_t pid, int sig) {
        _cleanup_free_ char *text = NULL;
        unsigned long long mask;
        char path[64];
        const char *p;

        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        if (read_file_bounded(AT_FDCWD, path, 1 << 16, &text, NULL) < 0)
                return false;
        p = strstr(text, "\nSigCgt:");
        if (!p || sscanf(p + strlen("\nSigCgt:"), " %llx", &mask) != 1)
                return false;
        return (mask >> (sig - 1)) & 1;
}

/* ------------------------------------------------------------ children */

static int pids_add(pid_t **l, size_t *n, pid_t pid) {
        pid_t *m;

        for (size_t i = 0; i < *n; i++)
                if ((*l)[i] == pid)
                        return 0;
        m = realloc(*l, (*n + 1) * sizeof(pid_t));
        if (!m)
                return -ENOMEM;
        *l = m;
        m[(*n)++] = pid;
        return 0;
}

static int children_from_proc_scan(pid_t pid, pid_t **l, size_t *n) {
        DIR *d = opendir("/proc");
        int r = 0;

        if (!d)
                return -errno;
        for (struct dirent *de; r >= 0 && (de = readdir(d));) {
                struct stat_fields f;
                long long v;

                if (parse_int_range(de->d_name, 1, INT32_MAX, &v) < 0)
                        continue;
                if (read_stat_fields((pid_t) v, 0, &f) == 0 && f.ppid == pid)
                        r = pids_add(l, n, (pid_t) v);
        }
        closedir(d);
        return r;
}

/* Whether the kernel has /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN). */
static bool have_children_files(void) {
        static int have = -1;

        if (have < 0) {
                char path[64];

                snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int) getpid());
                have = access(path, F_OK) == 0;
        }
        return have;
}

int proc_children_of(pid_t pid, pid_t **ret, size_t *ret_n) {
        _cleanup_free_ pid_t *l = NULL;
        char path[64];
        size_t n = 0;
        DIR *d;
        int r = 0;

        snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
        if (!have_children_files()) {
                if (access(path, F_OK) < 0)
                        return -ESRCH;
                r = children_from_proc_scan(pid, &l, &n);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(l);
                *ret_n = n;
                return 0;
        }
        d = opendir(path);
        if (!d)
                return errno == ENOENT ? -ESRCH : -errno;
        for (struct dirent *de; r >= 0 && (de = readdir(d));) {
                _cleanup_free_ char *text = NULL;
                char file[300];

                if (de->d_name[0] == '.')
                        continue;
                snprintf(file, sizeof(file), "/proc/%d/task/%s/children", (int) pid, de->d_name);
                if (read_file_bounded(AT_FDCWD, file, 1 << 20, &text, NULL) < 0)
                        continue;       /* the thread ended meanwhile */
                for (char *p = text, *save = NULL, *t; (t = strtok_r(p, " \n", &save)); p = NULL) {
                        long long v;

                        if (parse_int_range(t, 1, INT32_MAX, &v) == 0)
                                r = pids_add(&l, &n, (pid_t) v);
                }
        }
        closedir(d);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        *ret_n = n;
        return 0;
}

/* ------------------------------------------------------------ a process */

static int snapshot_threads(struct process_snapshot *p, size_t max_threads) {
        char path[64];
        DIR *d;

        snprintf(path, sizeof(path), "/proc/%d/task", (int) p->pid);
        d = opendir(path);
        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d));) {
                struct thread_snapshot *t, *m;
                struct stat_fields f;
                long long v;

                if (parse_int_range(de->d_name, 1, INT32_MAX, &v) < 0)
                        continue;
                if (read_stat_fields(p->pid, (pid_t) v, &f) < 0)
                        continue;       /* ended meanwhile */
                p->n_threads++;
                if (p->n_threads_listed >= max_threads)
                        continue;
                m = realloc(p->threads, (p->n_threads_listed + 1) * sizeof(*m));
                if (!m) {
                        closedir(d);
                        return -ENOMEM;
                }
                p->threads = m;
                t = &m[p->n_threads_listed++];
                *t = (struct thread_snapshot) { .tid = (pid_t) v, .state = f.state };
                snprintf(t->comm, sizeof(t->comm), "%s", f.comm);
                read_wchan(p->pid, t->tid, t->wchan, sizeof(t->wchan));
                if (proc_read_syscall(p->pid, t->tid, t->syscall, sizeof(t->syscall)) < 0)
                        snprintf(t->syscall, sizeof(t->syscall), "?");
        }
        closedir(d);
        /* readdir's order is the kernel's (by tid); keep it, the main thread first. */
        return 0;
}

static int snapshot_process(pid_t pid, size_t max_threads, struct process_snapshot *ret) {
        struct process_snapshot p = { .pid = pid };
        struct stat_fields f;
        char path[64];
        long ticks = sysconf(_SC_CLK_TCK);
        ssize_t n;
        int r;

        r = read_stat_fields(pid, 0, &f);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        p.ppid = f.ppid;
        p.state = f.state;
        p.start_time = f.start_time;
        p.cpu_s = (double) (f.utime + f.stime) / (double) (ticks > 0 ? ticks : 100);
        snprintf(p.comm, sizeof(p.comm), "%s", f.comm);
        snprintf(path, sizeof(path), "/proc/%d/exe", (int) pid);
        n = readlink(path, p.exe, sizeof(p.exe) - 1);
        p.exe[n > 0 ? n : 0] = 0;
        read_wchan(pid, 0, p.wchan, sizeof(p.wchan));
        if (proc_read_syscall(pid, 0, p.syscall, sizeof(p.syscall)) < 0)
                snprintf(p.syscall, sizeof(p.syscall), "?");
        p.catches_sigusr1 = catches_signal(pid, SIGUSR1);
        r = snapshot_threads(&p, max_threads);
        if (r == -ENOMEM) {
                free(p.threads);
                return r;
        }
        *ret = p;
        return 0;
}

struct process_snapshot *process_snapshots_free(struct process_snapshot *l, size_t n) {
        for (size_t i = 0; l && i < n; i++)
                free(l[i].threads);
        free(l);
        return NULL;
}

int proc_snapshot_tree(pid_t root, size_t max_processes, size_t max_threads, struct process_snapshot **ret,
                       size_t *ret_n) {
        struct process_snapshot *l = NULL;
        size_t n = 0;
        int r;

        if (max_processes == 0)
                return -EINVAL;
        l = calloc(max_processes, sizeof(*l));
        if (!l)
                return -ENOMEM;
        r = snapshot_process(root, max_threads, &l[0]);
        if (r < 0) {
                free(l);
                return r;
        }
        n = 1;
        /* Breadth first: l[i]'s children are appended while i walks the list. */
        for (size_t i = 0; i < n && n < max_processes; i++) {
                _cleanup_free_ pid_t *kids = NULL;
                size_t n_kids = 0;

                if (proc_children_of(l[i].pid, &kids, &n_kids) < 0)
                        continue;
                for (size_t k = 0; k < n_kids && n < max_processes; k++) {
                        r = snapshot_process(kids[k], max_threads, &l[n]);
                        if (r == -ENOMEM) {
                                process_snapshots_free(l, n);
                                return r;
                        }
                        if (r == 0)
                                n++;
                }
        }
        *ret = l;
        *ret_n = n;
        return 0;
}

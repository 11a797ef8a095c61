/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_PROCTREE_H
#define RINGMASTER_PROCTREE_H

/*
 * What /proc says about processes, with one parser of /proc/PID/stat:
 *
 *   - one process: its state, parent, group and name, its wait channel
 *     (job.c's orphans and teardown);
 *   - a process's children (job.c's orphan scan: the supervisor's own);
 *   - a snapshot of a process and its descendants, for the hang diagnosis:
 *     each process's state, wait channel, current system call, CPU time,
 *     executable, and each of its threads' state, wait channel and system
 *     call.
 *
 * Reading /proc never blocks on the process.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct thread_snapshot {
        pid_t tid;
        char comm[32];
        char state;                      /* R, S, D, T, t, Z, ...; '?' unknown */
        char wchan[64];                  /* "" when running or unknown */
        char syscall[32];                /* see proc_read_syscall() */
};

struct process_snapshot {
        pid_t pid, ppid;
        unsigned long long start_time;   /* clock ticks after boot: with the pid, names the process */
        char comm[32];
        char exe[256];                   /* "" when unreadable */
        char state;
        char wchan[64];
        char syscall[32];
        double cpu_s;                    /* user + system */
        bool catches_sigusr1;            /* a handler is installed (SigCgt) */
        size_t n_threads;                /* all of them */
        struct thread_snapshot *threads; /* the first ones, at most the max asked */
        size_t n_threads_listed;
};

/*
 * root first, then its descendants (breadth first), at most max_processes
 * in all and max_threads threads listed per process.  -ESRCH when root is
 * gone.
 */
int proc_snapshot_tree(pid_t root, size_t max_processes, size_t max_threads, struct process_snapshot **ret,
                       size_t *ret_n);
struct process_snapshot *process_snapshots_free(struct process_snapshot *l, size_t n);

/* ------------------------------------------------------------ one process */

struct proc_stat {
        char state;          /* R, S, D, Z, T... */
        pid_t ppid;
        pid_t pgrp;
        char comm[32];
        unsigned long long start_time;  /* clock ticks after boot: a reused pid is another process */
        int exit_code;       /* a zombie's wait status (state Z); -1: unknown */
};

int proc_read_stat(pid_t pid, struct proc_stat *ret);
/* The kernel function it sleeps in ("0" or "" when running or unknown). */
int proc_read_wchan(pid_t pid, char *buf, size_t size);
/* Peak resident set of the supervisor (VmHWM) in KiB; 0 when unknown. */
unsigned long proc_self_peak_rss_kib(void);

/*
 * The process's children (every thread's, zombies included), from
 * /proc/PID/task/TID/children or a /proc scan.  Of getpid(): the orphans
 * re-parented to the supervisor as a subreaper show up here.
 */
int proc_children_of(pid_t pid, pid_t **ret, size_t *ret_n);

/* Field 22 of /proc/PID/stat. */
int proc_read_start_time(pid_t pid, unsigned long long *ret);

/*
 * /proc/PID/task/TID/syscall (tid 0: /proc/PID/syscall) as a word: the
 * system call's name ("read", "futex"), "#N" for a number not in the
 * table, "running", or "none" (in the kernel, not in a system call).
 */
int proc_read_syscall(pid_t pid, pid_t tid, char *buf, size_t size);

/* The name of system call nr on this architecture (x86-64, aarch64), or NULL. */
const char *syscall_name(long nr);

/* "running", "sleeping", "disk sleep", "stopped", ... for a state letter. */
const char *proc_state_name(char state);

/* python, python3, python3.11, python3.13t, ... (a file name, without the folder). */
bool is_python_name(const char *name);

#endif

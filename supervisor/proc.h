/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_PROC_H
#define RINGMASTER_PROC_H

/* What /proc says about processes: the supervisor's children, a process's state. */

#include <stddef.h>
#include <sys/types.h>

/*
 * The supervisor's direct children (zombies included): orphans re-parented
 * to it as a subreaper show up here.  From /proc/self/task/TID/children,
 * or by scanning /proc/PID/stat where that file does not exist.
 */
int proc_children(pid_t **ret, size_t *ret_n);

struct proc_stat {
        char state;          /* R, S, D, Z, T... */
        pid_t ppid;
        pid_t pgrp;
        char comm[32];
};

int proc_read_stat(pid_t pid, struct proc_stat *ret);
/* The kernel function it sleeps in ("0" or "" when running or unknown). */
int proc_read_wchan(pid_t pid, char *buf, size_t size);
/* Peak resident set of the supervisor (VmHWM) in KiB; 0 when unknown. */
unsigned long proc_self_peak_rss_kib(void);

#endif

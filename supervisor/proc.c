/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "parse-util.h"
#include "proc.h"
#include "util.h"

static int pids_append(pid_t **l, size_t *n, size_t *cap, pid_t pid) {
        for (size_t i = 0; i < *n; i++)
                if ((*l)[i] == pid)
                        return 0;
        if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 16;
                pid_t *m = realloc(*l, c * sizeof(pid_t));

                if (!m)
                        return -ENOMEM;
                *l = m;
                *cap = c;
        }
        (*l)[(*n)++] = pid;
        return 0;
}

/* Children listed by /proc/self/task/TID/children for every thread; -ENOENT when the kernel lacks it. */
static int children_from_task_files(pid_t **l, size_t *n, size_t *cap) {
        DIR *d = opendir("/proc/self/task");
        int r = 0;

        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d)) && r >= 0;) {
                char path[300];
                _cleanup_free_ char *text = NULL;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "/proc/self/task/%s/children", de->d_name);
                r = read_file_bounded(AT_FDCWD, path, 1 << 20, &text, NULL);
                if (r < 0)
                        break;
                for (char *p = text, *save = NULL, *t; (t = strtok_r(p, " \n", &save)); p = NULL) {
                        long long v;

                        if (parse_int_range(t, 1, INT32_MAX, &v) == 0)
                                r = pids_append(l, n, cap, (pid_t) v);
                }
        }
        closedir(d);
        return r;
}

int proc_children(pid_t **ret, size_t *ret_n) {
        pid_t *l = NULL, self = getpid();
        size_t n = 0, cap = 0;
        DIR *d;
        int r;

        r = children_from_task_files(&l, &n, &cap);
        if (r >= 0) {
                *ret = l;
                *ret_n = n;
                return 0;
        }
        free(l);
        l = NULL;
        n = cap = 0;
        if (r == -ENOMEM)
                return r;

        d = opendir("/proc");
        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d));) {
                struct proc_stat st;
                long long v;

                if (parse_int_range(de->d_name, 1, INT32_MAX, &v) < 0)
                        continue;
                if (proc_read_stat((pid_t) v, &st) == 0 && st.ppid == self && pids_append(&l, &n, &cap, (pid_t) v) < 0) {
                        closedir(d);
                        free(l);
                        return -ENOMEM;
                }
        }
        closedir(d);
        *ret = l;
        *ret_n = n;
        return 0;
}

int proc_read_stat(pid_t pid, struct proc_stat *ret) {
        _cleanup_free_ char *text = NULL;
        char path[64], *open_paren, *close_paren;
        int ppid, pgrp;
        char state;
        size_t len;
        int r;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        r = read_file_bounded(AT_FDCWD, path, 4096, &text, NULL);
        if (r < 0)
                return r;
        /* "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses. */
        open_paren = strchr(text, '(');
        close_paren = strrchr(text, ')');
        if (!open_paren || !close_paren || close_paren < open_paren)
                return -EBADMSG;
        if (sscanf(close_paren + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
                return -EBADMSG;
        len = MIN((size_t) (close_paren - open_paren - 1), sizeof(ret->comm) - 1);
        memcpy(ret->comm, open_paren + 1, len);
        ret->comm[len] = 0;
        ret->state = state;
        ret->ppid = ppid;
        ret->pgrp = pgrp;
        return 0;
}

int proc_read_wchan(pid_t pid, char *buf, size_t size) {
        _cleanup_free_ char *text = NULL;
        char path[64];
        int r;

        snprintf(path, sizeof(path), "/proc/%d/wchan", (int) pid);
        r = read_file_bounded(AT_FDCWD, path, 256, &text, NULL);
        if (r < 0)
                return r;
        snprintf(buf, size, "%s", text);
        return 0;
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

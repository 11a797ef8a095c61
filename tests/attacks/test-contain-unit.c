/* SPDX-License-Identifier: MIT */
/*
 * contain.c on its own, in each mode this host gives: a stand-in for
 * ringmaster sets up containment, starts two "ranks" (each joins the job's
 * cgroup, leads a session, and starts a child in its session, one in a
 * session of its own, and a double-forked one), and is SIGKILLed.  Nothing
 * of the job may be left within 5 s.  Then the clean end: contain_free()
 * with a leftover process kills it (cgroup) and removes the cgroup.
 *
 * Run as root it tests the cgroup mode (when the host has a writable
 * cgroup v2 with cgroup.kill) and the watcher mode; as another user (the
 * test re-runs itself as nobody when root), the modes that user gets.
 */
#include <dirent.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "contain.h"
#include "util.h"
#include "../supervisor/unit.h"

static char run_id[64];

/* Processes whose environment has the marker (zombies have none); sleeps_only: the job's sleeps only. */
static int count_marked(bool sleeps_only) {
        char marker[128], path[300], buf[8192];
        struct dirent *e;
        int n = 0;
        DIR *d;

        snprintf(marker, sizeof(marker), "RM_CONTAIN_TEST=%s", run_id);
        d = opendir("/proc");
        if (!d)
                return -1;
        while ((e = readdir(d))) {
                FILE *f;
                size_t k;

                if (e->d_name[0] < '1' || e->d_name[0] > '9')
                        continue;
                /* The job's lasting processes are sleeps; the shells that start them come and go. */
                snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
                f = sleeps_only ? fopen(path, "re") : NULL;
                if (sleeps_only) {
                        if (!f)
                                continue;
                        k = fread(buf, 1, sizeof(buf) - 1, f);
                        fclose(f);
                        buf[k] = '\0';
                        if (strcmp(buf, "sleep\n") != 0)
                                continue;
                }
                snprintf(path, sizeof(path), "/proc/%s/environ", e->d_name);
                f = fopen(path, "re");
                if (!f)
                        continue;
                k = fread(buf, 1, sizeof(buf) - 1, f);
                fclose(f);
                buf[k] = '\0';
                for (size_t i = 0; i < k; i += strlen(buf + i) + 1)
                        if (strcmp(buf + i, marker) == 0) {
                                n++;
                                break;
                        }
        }
        closedir(d);
        return n;
}

/* A "rank": joins the job, leads a session, and runs a shell that starts the three kinds of descendant. */
static void start_rank(struct contain *c, int ready_fd) {
        pid_t pid = fork();

        if (pid < 0)
                _exit(2);
        if (pid == 0) {
                char m1[128];
                char *envp[] = { m1, (char *) "PATH=/usr/bin:/bin", NULL };

                snprintf(m1, sizeof(m1), "RM_CONTAIN_TEST=%s", run_id);
                if (contain_child_join(c) < 0 || setsid() < 0)
                        _exit(3);
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (dup2(ready_fd, 3) < 0)
                        _exit(3);
                execle("/bin/sh", "sh", "-c",
                       "sleep 3001 & setsid sleep 3002 & (setsid sh -c 'sleep 3003 &' &); sleep 0.2; "
                       "echo r >&3; exec 3>&-; exec sleep 3004", (char *) NULL, envp);
                _exit(127);
        }
        contain_rank_started(c, pid);
}

/* Runs one mode: 1 passed, 0 skipped. */
static int run_mode(enum contain_mode mode) {
        int ready[2];
        pid_t sup;
        int status, left = -1;

        snprintf(run_id, sizeof(run_id), "t-contain-%s-%d", contain_mode_name(mode), (int) getpid());
        if (pipe(ready) < 0)
                return 0;
        sup = fork();
        if (sup == 0) {
                struct contain *c = NULL;
                const char *why = NULL;
                char marker[128];
                int r;

                snprintf(marker, sizeof(marker), "RM_CONTAIN_TEST=%s", run_id);
                r = contain_new(run_id, marker, mode, &c, &why);

                if (r == -EOPNOTSUPP) {
                        printf("# %s mode not available: %s\n", contain_mode_name(mode), why);
                        fflush(stdout);
                        _exit(77);
                }
                if (r < 0)
                        _exit(4);
                (void) prctl(PR_SET_CHILD_SUBREAPER, 1);
                for (int i = 0; i < 2; i++)
                        start_rank(c, ready[1]);
                pause();
                _exit(0);
        }
        close(ready[1]);
        for (int i = 0; i < 2; i++) {
                char ch[2];

                if (read(ready[0], ch, 2) != 2) {
                        waitpid(sup, &status, 0);
                        close(ready[0]);
                        if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
                                return 0;
                        CHECK(0, "%s: the stand-in failed (status %#x)", contain_mode_name(mode), status);
                        return 1;
                }
        }
        close(ready[0]);
        /* Each rank said "r" after starting its descendants; the double-forked one may lag on a busy host. */
        for (int i = 0; i < 500 && count_marked(true) < 8; i++)
                usleep(20000);
        CHECK(count_marked(true) >= 8, "%s: the job is up (%d sleeps)", contain_mode_name(mode), count_marked(true));
        kill(sup, SIGKILL);
        waitpid(sup, &status, 0);
        for (int i = 0; i < 500; i++) {
                struct timespec ts = { 0, 10 * 1000 * 1000 };

                left = count_marked(false);
                if (left == 0)
                        break;
                nanosleep(&ts, NULL);
        }
        CHECK(left == 0, "%s: %d processes of the job outlived the SIGKILLed supervisor", contain_mode_name(mode), left);
        printf("# %s: %d left after the supervisor's SIGKILL\n", contain_mode_name(mode), left);
        return 1;
}

/* The clean end in cgroup mode: a leftover is killed and the cgroup removed. */
static void clean_end_cgroup(void) {
        struct contain *c = NULL;
        const char *why = NULL;
        char *dir;
        pid_t pid;
        int status;

        snprintf(run_id, sizeof(run_id), "t-contain-end-%d", (int) getpid());
        if (contain_new(run_id, "RM_CONTAIN_TEST=end", CONTAIN_CGROUP, &c, &why) < 0)
                return;
        dir = strdup(contain_cgroup_path(c));
        pid = fork();
        if (pid == 0) {
                if (contain_child_join(c) < 0)
                        _exit(3);
                pause();
                _exit(0);
        }
        /* It joined before pause (the join is its first act); wait until the cgroup shows it. */
        for (int i = 0; i < 500; i++) {
                char path[4200], buf[64] = "";
                FILE *f;

                snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
                f = fopen(path, "re");
                if (f && fgets(buf, sizeof(buf), f) && atoi(buf) == pid) {
                        fclose(f);
                        break;
                }
                if (f)
                        fclose(f);
                usleep(10000);
        }
        CHECK(contain_kill(c) == 1, "contain_kill counts the one leftover");
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the leftover was killed (status %#x)", status);
        c = contain_free(c);
        CHECK(access(dir, F_OK) < 0, "the job's cgroup %s was removed", dir);
        free(dir);
}

int main(int argc, char **argv) {
        int ran = 0;

        setvbuf(stdout, NULL, _IOLBF, 0);
        ran += run_mode(CONTAIN_CGROUP);
        ran += run_mode(CONTAIN_WATCHER);
        ran += run_mode(CONTAIN_AUTO);
        clean_end_cgroup();
        /* As root: the same as an unprivileged user (nobody), in a child. */
        if (geteuid() == 0 && argc == 1) {
                pid_t pid = fork();
                int status;

                if (pid == 0) {
                        if (setgid(65534) < 0 || setuid(65534) < 0)
                                _exit(77);
                        execl("/proc/self/exe", argv[0], "--unprivileged", (char *) NULL);
                        _exit(77);
                }
                waitpid(pid, &status, 0);
                CHECK(WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 77),
                      "the unprivileged run passed (status %#x)", status);
        }
        if (ran == 0)
                return 77;
        return failures ? 1 : 0;
}

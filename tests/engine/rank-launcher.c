/* SPDX-License-Identifier: MIT */
/* A stand-in for `ringmaster run` in tests: segment, run directory, ranks. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rank-launcher.h"
#include "rm_run_layout.h"
#include "shmring.h"

extern char **environ;

struct rmtest_job {
        struct shmring *seg;
        uint32_t nranks;
        char run_id[SHMRING_RUN_ID_MAX + 1];
        char run_dir[256];
        char exe[4096];
        pid_t pids[RMTEST_MAX_RANKS];
        int status[RMTEST_MAX_RANKS];
        bool reaped[RMTEST_MAX_RANKS];
};

double rmtest_now(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

uint64_t rmtest_env_u64(const char *name, uint64_t def) {
        const char *v = getenv(name);
        char *end;
        unsigned long long n;

        if (!v || !v[0])
                return def;
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno || *end) {
                fprintf(stderr, "ignoring %s='%s': not a number\n", name, v);
                return def;
        }
        return n;
}

int rmtest_job_new(uint32_t nranks, struct rmtest_job **ret) {
        struct rm_run_spec spec;
        struct rmtest_job *j;
        sigset_t set;
        ssize_t n;
        int r;

        if (nranks == 0 || nranks > RMTEST_MAX_RANKS)
                return -EINVAL;
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->nranks = nranks;
        snprintf(j->run_id, sizeof(j->run_id), "rmtest-%d", (int) getpid());
        snprintf(j->run_dir, sizeof(j->run_dir), "%s/rmtest-run.XXXXXX", getenv("TMPDIR") ?: "/tmp");
        if (!mkdtemp(j->run_dir)) {
                r = -errno;
                free(j);
                return r;
        }
        n = readlink("/proc/self/exe", j->exe, sizeof(j->exe) - 1);
        if (n < 0) {
                r = -errno;
                rmdir(j->run_dir);
                free(j);
                return r;
        }
        j->exe[n] = '\0';

        r = rm_run_spec(nranks, j->run_id, 0, NULL, &spec);
        if (r >= 0)
                r = shmring_create(&spec.spec, &j->seg);
        if (r < 0) {
                rmdir(j->run_dir);
                free(j);
                return r;
        }
        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        sigprocmask(SIG_BLOCK, &set, NULL);
        *ret = j;
        return 0;
}

const char *rmtest_job_run_dir(const struct rmtest_job *j) {
        return j->run_dir;
}

struct shmring *rmtest_job_segment(const struct rmtest_job *j) {
        return j->seg;
}

static bool env_is_ours(const char *kv) {
        static const char *const ours[] = {
                "RINGMASTER_SHM=", "RINGMASTER_RUN_ID=", "RINGMASTER_RUN_DIR=", "RANK=",
                "LOCAL_RANK=",     "WORLD_SIZE=",        "LOCAL_WORLD_SIZE=",
        };

        for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
                if (strncmp(kv, ours[i], strlen(ours[i])) == 0)
                        return true;
        return false;
}

int rmtest_job_spawn(struct rmtest_job *j, uint32_t rank, const char *mode, char *const *extra_env) {
        return rmtest_job_spawn_wrapped(j, rank, mode, extra_env, NULL);
}

int rmtest_job_spawn_wrapped(struct rmtest_job *j, uint32_t rank, const char *mode, char *const *extra_env,
                             const char *const *wrapper) {
        char vars[7][512];
        char **envp;
        size_t n_env = 0, n = 0, n_wrap = 0;
        char *argv[16];
        const char *path;
        pid_t pid;

        if (rank >= j->nranks || j->pids[rank] > 0)
                return -EINVAL;
        for (char **e = environ; *e; e++)
                n_env++;
        for (char *const *e = extra_env; e && *e; e++)
                n_env++;
        envp = calloc(n_env + 8, sizeof(char *));
        if (!envp)
                return -ENOMEM;
        snprintf(vars[0], sizeof(vars[0]), "RINGMASTER_SHM=%s", shmring_name(j->seg));
        snprintf(vars[1], sizeof(vars[1]), "RINGMASTER_RUN_ID=%s", j->run_id);
        snprintf(vars[2], sizeof(vars[2]), "RINGMASTER_RUN_DIR=%s", j->run_dir);
        snprintf(vars[3], sizeof(vars[3]), "RANK=%" PRIu32, rank);
        snprintf(vars[4], sizeof(vars[4]), "LOCAL_RANK=%" PRIu32, rank);
        snprintf(vars[5], sizeof(vars[5]), "WORLD_SIZE=%" PRIu32, j->nranks);
        snprintf(vars[6], sizeof(vars[6]), "LOCAL_WORLD_SIZE=%" PRIu32, j->nranks);
        for (char **e = environ; *e; e++)
                if (!env_is_ours(*e))
                        envp[n++] = *e;
        for (int i = 0; i < 7; i++)
                envp[n++] = vars[i];
        /* getenv() returns the first match: extras go first, so they win. */
        if (extra_env) {
                size_t k = 0;

                for (char *const *e = extra_env; *e; e++)
                        k++;
                memmove(envp + k, envp, n * sizeof(char *));
                for (size_t i = 0; i < k; i++)
                        envp[i] = extra_env[i];
                n += k;
        }
        envp[n] = NULL;
        for (; wrapper && wrapper[n_wrap]; n_wrap++) {
                if (n_wrap >= 12) {
                        free(envp);
                        return -E2BIG;
                }
                argv[n_wrap] = (char *) wrapper[n_wrap];
        }
        argv[n_wrap] = j->exe;
        argv[n_wrap + 1] = (char *) "--rank";
        argv[n_wrap + 2] = (char *) mode;
        argv[n_wrap + 3] = NULL;
        path = j->exe;
        if (n_wrap) {
                /* Search PATH here: only async-signal-safe calls after fork(). */
                static char found[4096];
                const char *dirs = getenv("PATH") ?: "/usr/bin:/bin";

                path = argv[0];
                while (!strchr(argv[0], '/') && *dirs) {
                        size_t len = strcspn(dirs, ":");

                        snprintf(found, sizeof(found), "%.*s/%s", (int) len, dirs, argv[0]);
                        if (access(found, X_OK) == 0) {
                                path = found;
                                break;
                        }
                        dirs += len + (dirs[len] == ':');
                }
        }

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid < 0) {
                free(envp);
                return -errno;
        }
        if (pid == 0) {
                /* Only async-signal-safe calls from here to exec. */
                sigset_t none;

                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                execve(path, argv, envp);
                _exit(127);
        }
        free(envp);
        j->pids[rank] = pid;
        return 0;
}

int rmtest_job_spawn_all(struct rmtest_job *j, const char *mode) {
        for (uint32_t i = 0; i < j->nranks; i++) {
                int r = rmtest_job_spawn(j, i, mode, NULL);

                if (r < 0)
                        return r;
        }
        return 0;
}

static void reap(struct rmtest_job *j) {
        for (uint32_t i = 0; i < j->nranks; i++) {
                int st;

                if (j->pids[i] <= 0 || j->reaped[i])
                        continue;
                if (waitpid(j->pids[i], &st, WNOHANG) == j->pids[i]) {
                        j->reaped[i] = true;
                        j->status[i] = st;
                }
        }
}

static bool all_reaped(const struct rmtest_job *j) {
        for (uint32_t i = 0; i < j->nranks; i++)
                if (j->pids[i] > 0 && !j->reaped[i])
                        return false;
        return true;
}

int rmtest_job_wait(struct rmtest_job *j, int64_t timeout_ns) {
        double deadline = rmtest_now() + (double) timeout_ns / 1e9;
        sigset_t set;
        int failed = 0, skipped = 0;

        sigemptyset(&set);
        sigaddset(&set, SIGCHLD);
        for (;;) {
                double left;
                struct timespec ts;

                reap(j);
                if (all_reaped(j))
                        break;
                left = deadline - rmtest_now();
                if (left <= 0) {
                        for (uint32_t i = 0; i < j->nranks; i++)
                                if (j->pids[i] > 0 && !j->reaped[i]) {
                                        fprintf(stderr, "rank %u (pid %d) still running after %.1f s: killing it\n",
                                                i, (int) j->pids[i], (double) timeout_ns / 1e9);
                                        kill(j->pids[i], SIGKILL);
                                        waitpid(j->pids[i], &j->status[i], 0);
                                        j->reaped[i] = true;
                                }
                        return -ETIMEDOUT;
                }
                ts.tv_sec = (time_t) left;
                ts.tv_nsec = (long) ((left - (double) ts.tv_sec) * 1e9);
                (void) sigtimedwait(&set, NULL, &ts);   /* SIGCHLD, or the deadline */
        }
        for (uint32_t i = 0; i < j->nranks; i++) {
                int st = j->status[i];

                if (j->pids[i] <= 0)
                        continue;
                if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                        continue;
                if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
                        skipped++;
                        continue;
                }
                if (WIFSIGNALED(st))
                        fprintf(stderr, "rank %u killed by signal %d\n", i, WTERMSIG(st));
                else
                        fprintf(stderr, "rank %u exited with %d\n", i, WEXITSTATUS(st));
                failed++;
        }
        if (failed == 0 && skipped > 0)
                return 77;
        return failed;
}

int rmtest_job_status(const struct rmtest_job *j, uint32_t rank) {
        return rank < j->nranks ? j->status[rank] : -1;
}

struct rmtest_job *rmtest_job_free(struct rmtest_job *j) {
        DIR *d;

        if (!j)
                return NULL;
        for (uint32_t i = 0; i < j->nranks; i++)
                if (j->pids[i] > 0 && !j->reaped[i]) {
                        kill(j->pids[i], SIGKILL);
                        waitpid(j->pids[i], NULL, 0);
                }
        if (j->seg) {
                shmring_unlink(j->seg);
                j->seg = shmring_close(j->seg);
        }
        d = opendir(j->run_dir);
        if (d) {
                struct dirent *de;

                while ((de = readdir(d)))
                        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                                unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        rmdir(j->run_dir);
        free(j);
        return NULL;
}

struct rm_worker *rmtest_rank_open(void) {
        struct rm_worker *w;
        int r = rm_worker_open(&w);

        if (r < 0) {
                fprintf(stderr, "rm_worker_open: %s (%s)\n", strerror(-r), rm_last_error());
                exit(1);
        }
        return w;
}

int rmtest_barrier(struct rm_worker *w, const char *name, int64_t timeout_ns) {
        char key[64];
        char buf[8];
        int64_t g;

        snprintf(key, sizeof(key), "test/%s/%" PRIu32, name, rm_worker_rank(w));
        g = shmring_kv_put(rm_worker_segment(w), RM_KV_TABLE, key, "1", 1);
        if (g < 0)
                return (int) g;
        for (uint32_t i = 0; i < rm_worker_world_size(w); i++) {
                ssize_t n;

                snprintf(key, sizeof(key), "test/%s/%" PRIu32, name, i);
                n = shmring_kv_get(rm_worker_segment(w), RM_KV_TABLE, key, 0, buf, sizeof(buf), NULL, timeout_ns);
                /* A rank that passed the barrier and exited since still passed it. */
                if (n < 0 && n != -EOWNERDEAD) {
                        fprintf(stderr, "rank %" PRIu32 ": barrier %s: waiting for rank %" PRIu32 ": %s\n",
                                rm_worker_rank(w), name, i, strerror((int) -n));
                        return (int) n;
                }
        }
        return 0;
}

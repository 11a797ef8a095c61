/* SPDX-License-Identifier: MIT */
/* rm_worker_open(): the run as the supervisor describes it in the environment. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "shmring.h"

/* ----------------------------------------------------------- environment */

static int env_u32(const char *name, uint32_t *ret) {
        const char *v = getenv(name);
        unsigned long long n;
        char *end;

        if (!v)
                return rmpriv_fail(-EINVAL, "%s is not set (ringmaster gives every rank RANK, WORLD_SIZE, "
                                            "LOCAL_RANK and LOCAL_WORLD_SIZE)", name);
        if (v[0] < '0' || v[0] > '9')
                return rmpriv_fail(-EINVAL, "%s='%.64s' is not a non-negative decimal number", name, v);
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno != 0 || *end != '\0')
                return rmpriv_fail(-EINVAL, "%s='%.64s' is not a non-negative decimal number", name, v);
        if (n > RM_WORKER_MAX_RANKS)
                return rmpriv_fail(-EINVAL, "%s=%llu is out of range (at most %u)", name, n, RM_WORKER_MAX_RANKS);
        *ret = (uint32_t) n;
        return 0;
}

_public_ int rm_worker_open(struct rm_worker **ret) {
        struct rm_worker *w;
        struct shmring_info info;
        const char *shm, *run_id, *run_dir;
        struct stat st;
        int r;

        check_arg(ret, -EINVAL);
        rmpriv_clear_error();

        shm = getenv("RINGMASTER_SHM");
        if (!shm || !shm[0])
                return rmpriv_fail(-ENXIO, "RINGMASTER_SHM is not set: this process is not running under ringmaster");
        run_id = getenv("RINGMASTER_RUN_ID");
        if (!run_id)
                return rmpriv_fail(-EINVAL, "RINGMASTER_RUN_ID is not set (RINGMASTER_SHM is)");
        if (!rm_name_valid(run_id, SHMRING_RUN_ID_MAX, false))
                return rmpriv_fail(-EINVAL, "RINGMASTER_RUN_ID='%.80s' is not a run id (1..64 of [A-Za-z0-9._-])",
                                   run_id);
        run_dir = getenv("RINGMASTER_RUN_DIR");
        if (!run_dir)
                return rmpriv_fail(-EINVAL, "RINGMASTER_RUN_DIR is not set (RINGMASTER_SHM is)");
        if (run_dir[0] != '/')
                return rmpriv_fail(-EINVAL, "RINGMASTER_RUN_DIR='%.200s' is not an absolute path", run_dir);
        if (stat(run_dir, &st) < 0)
                return rmpriv_fail(-errno, "RINGMASTER_RUN_DIR='%.200s': %s", run_dir, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return rmpriv_fail(-ENOTDIR, "RINGMASTER_RUN_DIR='%.200s' is not a directory", run_dir);

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        pthread_mutex_init(&w->lock, NULL);
        r = env_u32("WORLD_SIZE", &w->world_size);
        if (r < 0)
                goto fail;
        r = env_u32("RANK", &w->rank);
        if (r < 0)
                goto fail;
        r = env_u32("LOCAL_WORLD_SIZE", &w->local_world_size);
        if (r < 0)
                goto fail;
        r = env_u32("LOCAL_RANK", &w->local_rank);
        if (r < 0)
                goto fail;
        if (w->world_size == 0) {
                r = rmpriv_fail(-EINVAL, "WORLD_SIZE=0: a run has at least one rank");
                goto fail;
        }
        if (w->rank >= w->world_size) {
                r = rmpriv_fail(-EINVAL, "RANK=%u is not below WORLD_SIZE=%u", w->rank, w->world_size);
                goto fail;
        }
        if (w->local_world_size == 0 || w->local_world_size > w->world_size) {
                r = rmpriv_fail(-EINVAL, "LOCAL_WORLD_SIZE=%u is not in 1..WORLD_SIZE=%u", w->local_world_size,
                                w->world_size);
                goto fail;
        }
        if (w->local_rank >= w->local_world_size) {
                r = rmpriv_fail(-EINVAL, "LOCAL_RANK=%u is not below LOCAL_WORLD_SIZE=%u", w->local_rank,
                                w->local_world_size);
                goto fail;
        }
        snprintf(w->run_id, sizeof(w->run_id), "%s", run_id);
        w->run_dir = strdup(run_dir);
        if (!w->run_dir) {
                r = -ENOMEM;
                goto fail;
        }

        r = shmring_attach(shm, 0, &w->seg);
        if (r < 0) {
                rmpriv_set_error("Failed to attach to RINGMASTER_SHM='%.100s': %s", shm, strerror(-r));
                goto fail;
        }
        r = shmring_get_info(w->seg, &info);
        if (r < 0) {
                rmpriv_set_error("Failed to read segment %.100s: %s", shm, strerror(-r));
                goto fail;
        }
        if (strcmp(info.run_id, w->run_id) != 0) {
                r = rmpriv_fail(-EINVAL, "RINGMASTER_SHM='%.100s' belongs to run '%s', not RINGMASTER_RUN_ID='%s'",
                                shm, info.run_id, w->run_id);
                goto fail;
        }

        *ret = w;
        return 0;
fail:
        rm_worker_close(w);
        return r;
}

_public_ struct rm_worker *rm_worker_close(struct rm_worker *w) {
        if (!w)
                return NULL;
        w->fds = fdshare_free(w->fds);
        w->seg = shmring_close(w->seg);
        free(w->run_dir);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return NULL;
}

_public_ uint32_t rm_worker_rank(const struct rm_worker *w) {
        return w->rank;
}

_public_ uint32_t rm_worker_world_size(const struct rm_worker *w) {
        return w->world_size;
}

_public_ uint32_t rm_worker_local_rank(const struct rm_worker *w) {
        return w->local_rank;
}

_public_ uint32_t rm_worker_local_world_size(const struct rm_worker *w) {
        return w->local_world_size;
}

_public_ const char *rm_worker_run_id(const struct rm_worker *w) {
        return w->run_id;
}

_public_ const char *rm_worker_run_dir(const struct rm_worker *w) {
        return w->run_dir;
}

_public_ struct shmring *rm_worker_segment(const struct rm_worker *w) {
        return w->seg;
}

/* SPDX-License-Identifier: MIT */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "environ.h"
#include "rm_announce.h"
#include "rm_notify.h"
#include "util.h"

/* Variables set for each worker, and those that must not leak to it. */
static const char *const replaced[] = {
        "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
        "ROLE_RANK", "ROLE_NAME", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
        "TORCHELASTIC_RUN_ID", "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS",
        "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_ERROR_FILE",
        "RINGMASTER_RUN_ID", "RINGMASTER_RUN_DIR", "RINGMASTER_SHM", "RINGMASTER_NPROC",
        RM_NOTIFY_SOCKET_ENV, RM_ANNOUNCE_CAPTURE_ENV, RM_ANNOUNCE_CAPTURED_ENV,
        /* The supervisor's own service plumbing: true of it, not of its workers. */
        "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
        "JOURNAL_STREAM",
};

static bool is_name(const char *entry, size_t n, const char *name) {
        return strlen(name) == n && strncmp(entry, name, n) == 0;
}

static bool is_replaced(const char *entry, const struct worker_env *w) {
        size_t n = strcspn(entry, "=");

        for (size_t i = 0; i < ELEMENTSOF(replaced); i++)
                if (is_name(entry, n, replaced[i]))
                        return true;
        return (w->cuda_visible_devices && is_name(entry, n, "CUDA_VISIBLE_DEVICES")) ||
               (w->pythonpath && is_name(entry, n, "PYTHONPATH")) ||
               (w->nccl_debug_file && is_name(entry, n, "NCCL_DEBUG_FILE"));
}

static bool has_var(char *const *env, const char *name) {
        size_t n = strlen(name);

        for (size_t i = 0; env && env[i]; i++)
                if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
                        return true;
        return false;
}

int worker_environ(char *const *base, const struct worker_env *w, char ***ret) {
        _cleanup_strv_free_ char **env = calloc(1, sizeof(char *));
        int r = 0, nnodes, global;

        if (!env)
                return -ENOMEM;
        for (size_t i = 0; base && base[i]; i++)
                if (!is_replaced(base[i], w) && strv_extend(&env, base[i]) < 0)
                        return -ENOMEM;

        /* torchrun's contract for one role on equal nodes: global = node * ranks per node + local. */
        nnodes = w->nnodes > 0 ? w->nnodes : 1;
        global = w->node_rank * w->nproc + w->rank;
        r |= strv_extendf(&env, "RANK=%d", global);
        r |= strv_extendf(&env, "LOCAL_RANK=%d", w->rank);
        r |= strv_extendf(&env, "WORLD_SIZE=%d", nnodes * w->nproc);
        r |= strv_extendf(&env, "LOCAL_WORLD_SIZE=%d", w->nproc);
        r |= strv_extendf(&env, "GROUP_RANK=%d", w->node_rank);
        r |= strv_extendf(&env, "GROUP_WORLD_SIZE=%d", nnodes);
        r |= strv_extendf(&env, "ROLE_RANK=%d", global);
        r |= strv_extendf(&env, "ROLE_NAME=%s", w->role);
        r |= strv_extendf(&env, "ROLE_WORLD_SIZE=%d", nnodes * w->nproc);
        r |= strv_extendf(&env, "MASTER_ADDR=%s", w->master_addr);
        r |= strv_extendf(&env, "MASTER_PORT=%d", w->master_port);
        r |= strv_extendf(&env, "TORCHELASTIC_RUN_ID=%s", w->run_id);
        r |= strv_extendf(&env, "TORCHELASTIC_RESTART_COUNT=%d", w->restart_count);
        r |= strv_extendf(&env, "TORCHELASTIC_MAX_RESTARTS=%d", w->max_restarts);
        /* No agent-side TCPStore here: rank 0 hosts it, as with plain env:// init. */
        r |= strv_extendf(&env, "TORCHELASTIC_USE_AGENT_STORE=False");
        r |= strv_extendf(&env, "TORCHELASTIC_ERROR_FILE=%s", w->error_file);
        if (!has_var(base, "OMP_NUM_THREADS") && w->nproc > 1)
                r |= strv_extendf(&env, "OMP_NUM_THREADS=1");
        if (!has_var(base, "TORCH_NCCL_ASYNC_ERROR_HANDLING"))
                r |= strv_extendf(&env, "TORCH_NCCL_ASYNC_ERROR_HANDLING=1");
        if (w->cuda_visible_devices)
                r |= strv_extendf(&env, "CUDA_VISIBLE_DEVICES=%s", w->cuda_visible_devices);
        if (w->pythonpath)
                r |= strv_extendf(&env, "PYTHONPATH=%s", w->pythonpath);
        if (w->python_faulthandler && !has_var(base, "PYTHONFAULTHANDLER"))
                r |= strv_extendf(&env, "PYTHONFAULTHANDLER=1");
        if (w->nccl_debug_file)
                r |= strv_extendf(&env, "NCCL_DEBUG_FILE=%s", w->nccl_debug_file);

        r |= strv_extendf(&env, "RINGMASTER_RUN_ID=%s", w->run_id);
        r |= strv_extendf(&env, "RINGMASTER_RUN_DIR=%s", w->run_dir);
        r |= strv_extendf(&env, "RINGMASTER_NPROC=%d", w->nproc);
        if (w->shm_name)
                r |= strv_extendf(&env, "RINGMASTER_SHM=%s", w->shm_name);
        if (w->notify_socket) {
                /* systemd's variable too, so that a program calling sd_notify() talks to ringmaster. */
                r |= strv_extendf(&env, "NOTIFY_SOCKET=%s", w->notify_socket);
                r |= strv_extendf(&env, RM_NOTIFY_SOCKET_ENV "=%s", w->notify_socket);
                /* Spawned workers may hand over pipes of their own (docs/spawned-workers.md). */
                if (w->worker_capture)
                        r |= strv_extend(&env, RM_ANNOUNCE_CAPTURE_ENV "=1");
        }
        if (r < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(env);
        return 0;
}

int find_free_port(int *ret) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY) };
        socklen_t len = sizeof(sa);
        _cleanup_close_ int fd = -EBADF;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        *ret = ntohs(sa.sin_port);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* Peers: registration of attached processes, and whether one is still alive. */

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/*
 * Reads a process's state letter and start time (field 22 of
 * /proc/PID/stat, in clock ticks since boot).  The pair (pid, start time)
 * names one process for the life of the system, as a pid alone does not.
 */
int proc_start_time(pid_t pid, uint64_t *ret_start, char *ret_state) {
        char path[64], buf[1024], *p, *end;
        unsigned long long start;
        ssize_t n;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return n < 0 ? -errno : -ESRCH;
        buf[n] = '\0';

        /* The command name may hold spaces and parentheses: skip to the last ')'. */
        p = strrchr(buf, ')');
        if (!p || p[1] != ' ' || !p[2])
                return -EBADMSG;
        p += 2;
        if (ret_state)
                *ret_state = *p;
        /* p is field 3 (state); start time is field 22, 19 fields on. */
        for (int field = 3; field < 22; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EBADMSG;
                p++;
        }
        errno = 0;
        start = strtoull(p, &end, 10);
        if (errno != 0 || end == p)
                return -EBADMSG;
        *ret_start = start;
        return 0;
}

int self_pidns(uint64_t *ret) {
        struct stat st;

        if (stat("/proc/self/ns/pid", &st) < 0)
                return -errno;
        *ret = (uint64_t) st.st_ino;
        return 0;
}

/*
 * 1 when the process (pid, start) is gone: no such pid, a zombie, or the
 * pid now names a younger process.  0 when it lives, or when it cannot be
 * told from here (another pid namespace: its pid means nothing to us).
 */
static int process_gone(const struct shmring *s, pid_t pid, uint64_t start, uint64_t pidns) {
        uint64_t now_start;
        char state = '?';
        int r;

        if (pid <= 0)
                return 1;
        if (pidns != s->pidns)
                return 0;
        r = proc_start_time(pid, &now_start, &state);
        if (r == -ENOENT || r == -ESRCH)
                return 1;
        if (r < 0)
                return 0;
        if (state == 'Z' || state == 'X' || state == 'x')
                return 1;
        return now_start != start;
}

int owner_dead(const struct shmring *s, uint64_t owner) {
        const struct shm_peer *peer;
        uint32_t idx, inc, state;
        uint64_t start, pidns;
        pid_t pid;

        if (owner == 0)
                return 1;
        idx = SHM_OWNER_PEER(owner);
        if (idx >= s->max_peers)
                return 1;                       /* a corrupt owner owns nothing */
        peer = &s->peers[idx];

        /* Read the record between two looks at its incarnation, like a seqlock:
         * a record reclaimed meanwhile belongs to someone else. */
        inc = atomic_load_explicit((_Atomic uint32_t *) &peer->incarnation, memory_order_acquire);
        if (inc != SHM_OWNER_INC(owner))
                return 1;
        state = atomic_load_explicit((_Atomic uint32_t *) &peer->state, memory_order_acquire);
        if (state == SHM_PEER_FREE || state == SHM_PEER_DEAD)
                return 1;
        if (state != SHM_PEER_LIVE)
                return 0;                       /* being registered */
        pid = (pid_t) __atomic_load_n(&peer->pid, __ATOMIC_RELAXED);
        start = __atomic_load_n(&peer->start_time, __ATOMIC_RELAXED);
        pidns = __atomic_load_n(&peer->pidns, __ATOMIC_RELAXED);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit((_Atomic uint32_t *) &peer->incarnation, memory_order_relaxed) != inc)
                return 1;

        return process_gone(s, pid, start, pidns);
}

/* The creator check of shmring_cleanup_stale(), which has no attached segment. */
int creator_gone(uint32_t pid, uint64_t start, uint64_t pidns) {
        struct shmring probe = {};

        if (self_pidns(&probe.pidns) < 0)
                return 0;
        return process_gone(&probe, (pid_t) pid, start, pidns);
}

static bool peer_claim(struct shm_peer *peer, uint32_t from) {
        uint32_t expected = from;

        return atomic_compare_exchange_strong_explicit(&peer->state, &expected, SHM_PEER_CLAIMED,
                                                       memory_order_acq_rel, memory_order_relaxed);
}

/* Claims a free record, or else the record of a process that died without detaching. */
static int peer_claim_any(struct shmring *s, uint32_t *ret_idx) {
        for (uint32_t idx = 0; idx < s->max_peers; idx++)
                if (peer_claim(&s->peers[idx], SHM_PEER_FREE)) {
                        *ret_idx = idx;
                        return 0;
                }

        for (uint32_t idx = 0; idx < s->max_peers; idx++) {
                struct shm_peer *peer = &s->peers[idx];
                uint32_t state = atomic_load_explicit(&peer->state, memory_order_acquire);
                uint32_t inc = atomic_load_explicit(&peer->incarnation, memory_order_acquire);

                if (state != SHM_PEER_LIVE && state != SHM_PEER_DEAD)
                        continue;
                if (owner_dead(s, SHM_OWNER(idx, inc)) && peer_claim(peer, state)) {
                        *ret_idx = idx;
                        return 0;
                }
        }
        return -EUSERS;
}

int peer_register(struct shmring *s) {
        struct shm_peer *peer;
        uint32_t idx, inc;
        uint64_t start;
        int r;

        r = proc_start_time(s->pid, &start, NULL);
        if (r < 0)
                return r;
        r = peer_claim_any(s, &idx);
        if (r < 0)
                return r;

        peer = &s->peers[idx];
        do
                inc = atomic_fetch_add_explicit(&peer->incarnation, 1, memory_order_acq_rel) + 1;
        while (inc == 0);
        peer->pid = (uint32_t) s->pid;
        peer->uid = (uint32_t) geteuid();
        peer->start_time = start;
        peer->pidns = s->pidns;
        atomic_store_explicit(&peer->state, SHM_PEER_LIVE, memory_order_release);

        s->self_peer = idx;
        s->self_owner = SHM_OWNER(idx, inc);
        return 0;
}

void peer_unregister(struct shmring *s) {
        struct shm_peer *peer;
        uint32_t expected;

        if (s->self_owner == 0)
                return;
        peer = &s->peers[s->self_peer];
        /* Only our own incarnation: a record someone reclaimed is theirs now. */
        if (atomic_load_explicit(&peer->incarnation, memory_order_acquire) == SHM_OWNER_INC(s->self_owner)) {
                expected = SHM_PEER_LIVE;
                if (!atomic_compare_exchange_strong_explicit(&peer->state, &expected, SHM_PEER_FREE,
                                                             memory_order_release, memory_order_relaxed)) {
                        expected = SHM_PEER_DEAD;
                        atomic_compare_exchange_strong_explicit(&peer->state, &expected, SHM_PEER_FREE,
                                                                memory_order_release, memory_order_relaxed);
                }
        }
        s->self_owner = 0;
}

unsigned peer_count_live(const struct shmring *s) {
        unsigned n = 0;

        for (uint32_t i = 0; i < s->max_peers; i++)
                n += atomic_load_explicit(&s->peers[i].state, memory_order_relaxed) == SHM_PEER_LIVE;
        return n;
}

_public_ int shmring_mark_dead(struct shmring *s, pid_t pid) {
        int marked = 0;

        check_arg(s, -EINVAL);
        check_arg(pid > 0, -EINVAL);

        for (uint32_t i = 0; i < s->max_peers; i++) {
                struct shm_peer *peer = &s->peers[i];
                uint32_t expected = SHM_PEER_LIVE;

                if (__atomic_load_n(&peer->pid, __ATOMIC_RELAXED) != (uint32_t) pid ||
                    __atomic_load_n(&peer->pidns, __ATOMIC_RELAXED) != s->pidns)
                        continue;
                if (atomic_compare_exchange_strong_explicit(&peer->state, &expected, SHM_PEER_DEAD,
                                                            memory_order_acq_rel, memory_order_relaxed))
                        marked++;
        }
        if (marked > 0) {
                atomic_fetch_add_explicit(&s->hdr->dead_epoch, 1, memory_order_release);
                segment_wake_all(s);
        }
        return marked;
}

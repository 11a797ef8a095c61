/* SPDX-License-Identifier: MIT */
/* Key-value tables: small named records published by one process, read by any. */

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* How long a put waits for another process's put or del to finish. */
#define TABLE_LOCK_TIMEOUT_NS INT64_C(10000000000)

uint64_t table_region_size(const struct shmring_table_spec *t, uint32_t *ret_stride) {
        uint32_t stride = (uint32_t) ALIGN_UP(SHM_ENTRY_HEADER + (uint64_t) t->value_size, SHM_LINE);

        if (ret_stride)
                *ret_stride = stride;
        return ALIGN_UP(sizeof(struct shm_table) + (uint64_t) t->entries * stride, SHM_REGION_ALIGN);
}

int table_geom_load(struct table_geom *t, const struct shm_region *reg, unsigned char *region, uint64_t region_size) {
        const struct shm_table *h = (const struct shm_table *) region;
        uint32_t entries, value_size, stride;

        if (region_size < sizeof(struct shm_table))
                return -EBADMSG;
        entries = __atomic_load_n(&h->entries, __ATOMIC_RELAXED);
        value_size = __atomic_load_n(&h->value_size, __ATOMIC_RELAXED);
        stride = __atomic_load_n(&h->entry_stride, __ATOMIC_RELAXED);
        if (entries == 0 || entries > SHM_MAX_TABLE_ENTRIES || value_size == 0 || value_size > SHM_MAX_VALUE)
                return -EBADMSG;
        if (stride != ALIGN_UP(SHM_ENTRY_HEADER + (uint64_t) value_size, SHM_LINE))
                return -EBADMSG;
        if (sizeof(struct shm_table) + (uint64_t) entries * stride > region_size)
                return -EBADMSG;

        memcpy(t->name, reg->name, sizeof(t->name));
        t->name[SHMRING_CHANNEL_NAME_MAX] = '\0';
        t->entries = entries;
        t->value_size = value_size;
        t->entry_stride = stride;
        t->hdr = (struct shm_table *) region;
        t->first = region + sizeof(struct shm_table);
        return 0;
}

static bool key_valid(const char *key) {
        size_t n;

        if (!key)
                return false;
        n = strnlen(key, SHMRING_KEY_MAX + 1);
        if (n == 0 || n > SHMRING_KEY_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (key[i] <= ' ' || key[i] > '~')
                        return false;
        return true;
}

static const struct table_geom *table_find(const struct shmring *s, const char *name) {
        for (uint32_t i = 0; i < s->n_tables; i++)
                if (strcmp(s->tables[i].name, name) == 0)
                        return &s->tables[i];
        return NULL;
}

static int table_lock(struct shmring *s, const struct table_geom *t) {
        uint64_t deadline = now_ns() + TABLE_LOCK_TIMEOUT_NS;

        for (;;) {
                uint64_t cur = 0;

                if (atomic_compare_exchange_strong_explicit(&t->hdr->lock, &cur, s->self_owner,
                                                            memory_order_acquire, memory_order_relaxed))
                        return 0;
                /* A holder that died mid-update left its entry's seq odd: the next
                 * writer of that entry makes it even again. */
                if (owner_dead(s, cur) &&
                    atomic_compare_exchange_strong_explicit(&t->hdr->lock, &cur, s->self_owner,
                                                            memory_order_acquire, memory_order_relaxed))
                        return 0;
                if (now_ns() > deadline)
                        return -ETIMEDOUT;
                sched_yield();
        }
}

static void table_unlock(struct shmring *s, const struct table_geom *t) {
        atomic_store_explicit(&t->hdr->lock, 0, memory_order_release);
        atomic_fetch_add_explicit(&t->hdr->change.seq, 1, memory_order_release);
        futex_wake(&t->hdr->change.seq, INT32_MAX);
}

/* Under the lock: the entry holding key, else a free one (*ret_new set), else NULL. */
static struct shm_entry *entry_for_put(const struct table_geom *t, const char *key, bool *ret_new) {
        struct shm_entry *free_entry = NULL;

        for (uint32_t i = 0; i < t->entries; i++) {
                struct shm_entry *e = table_entry(t, i);

                if (!atomic_load_explicit(&e->used, memory_order_relaxed)) {
                        if (!free_entry)
                                free_entry = e;
                        continue;
                }
                if (strncmp(e->key, key, sizeof(e->key)) == 0) {
                        *ret_new = false;
                        return e;
                }
        }
        *ret_new = true;
        return free_entry;
}

/* Seqlock write side: make seq odd, fence, write, then seq even with release. */
static void entry_begin(struct shm_entry *e) {
        uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);

        /* Already odd only if a writer died half-way; it stays odd until entry_end(). */
        atomic_store_explicit(&e->seq, seq | 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_release);
}

static void entry_end(struct shm_entry *e) {
        uint32_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);

        atomic_store_explicit(&e->seq, (seq | 1) + 1, memory_order_release);
}

_public_ int64_t shmring_kv_put(struct shmring *s, const char *table, const char *key, const void *value, size_t len) {
        const struct table_geom *t;
        struct shm_entry *e;
        uint64_t gen;
        bool is_new;
        int r;

        check_arg(s && table, -EINVAL);
        check_arg(key_valid(key), -EINVAL);
        check_arg(value || len == 0, -EINVAL);
        if (s->self_owner == 0)
                return -EPERM;
        t = table_find(s, table);
        if (!t)
                return -ENOENT;
        if (len > t->value_size)
                return -EMSGSIZE;

        r = table_lock(s, t);
        if (r < 0)
                return r;
        e = entry_for_put(t, key, &is_new);
        if (!e) {
                table_unlock(s, t);
                return -ENOSPC;
        }
        /* The counter is shared: any process of the job can scribble it.  A
         * generation must be positive as an int64_t, or it reads as an errno. */
        gen = t->hdr->next_generation + 1;
        if (gen == 0 || gen > (uint64_t) INT64_MAX) {
                table_unlock(s, t);
                return -EBADMSG;
        }
        t->hdr->next_generation = gen;
        entry_begin(e);
        if (is_new) {
                memset(e->key, 0, sizeof(e->key));
                memcpy(e->key, key, strlen(key));
        }
        if (len > 0)
                memcpy(e->value, value, len);
        e->len = (uint32_t) len;
        e->owner = s->self_owner;
        e->generation = gen;
        atomic_store_explicit(&e->used, 1, memory_order_relaxed);
        entry_end(e);
        table_unlock(s, t);
        return (int64_t) gen;
}

_public_ int shmring_kv_del(struct shmring *s, const char *table, const char *key) {
        const struct table_geom *t;
        struct shm_entry *e;
        bool is_new;
        int r;

        check_arg(s && table, -EINVAL);
        check_arg(key_valid(key), -EINVAL);
        if (s->self_owner == 0)
                return -EPERM;
        t = table_find(s, table);
        if (!t)
                return -ENOENT;

        r = table_lock(s, t);
        if (r < 0)
                return r;
        e = entry_for_put(t, key, &is_new);
        if (!e || is_new) {
                table_unlock(s, t);
                return -ENOENT;
        }
        entry_begin(e);
        atomic_store_explicit(&e->used, 0, memory_order_relaxed);
        entry_end(e);
        table_unlock(s, t);
        return 0;
}

_public_ int shmring_table_info(const struct shmring *s, uint32_t index, struct shmring_table_info *ret) {
        const struct table_geom *t;

        check_arg(s, -EINVAL);
        check_arg(ret, -EINVAL);
        if (index >= s->n_tables)
                return -ENOENT;
        t = &s->tables[index];
        *ret = (struct shmring_table_info) {
                .entries = t->entries,
                .value_size = t->value_size,
        };
        memcpy(ret->name, t->name, sizeof(ret->name));
        return 0;
}

struct kv_lookup {
        struct shmring *seg;
        const struct table_geom *t;
        const char *key;
        size_t key_len;
        uint64_t min_generation;
        void *buf;
        size_t size;
        struct shmring_kv_info info;
        uint64_t owner;
};

/* One lock-free pass over the table: 1 found (and copied), 0 not (yet), < 0 error. */
static int kv_ready(void *ctx) {
        struct kv_lookup *l = ctx;

        for (uint32_t i = 0; i < l->t->entries; i++) {
                struct shm_entry *e = table_entry(l->t, i);
                uint32_t seq = atomic_load_explicit(&e->seq, memory_order_acquire);
                char key[sizeof(e->key)];
                uint32_t len;
                uint64_t gen, owner;

                /* Being written: its writer's unlock wakes us to look again.  (Skipped
                 * rather than waited on: a writer that died there must not block
                 * lookups of every other key.) */
                if (seq & 1)
                        continue;
                if (!atomic_load_explicit(&e->used, memory_order_relaxed))
                        continue;
                memcpy(key, e->key, sizeof(key));
                len = __atomic_load_n(&e->len, __ATOMIC_RELAXED);
                gen = __atomic_load_n(&e->generation, __ATOMIC_RELAXED);
                owner = __atomic_load_n(&e->owner, __ATOMIC_RELAXED);
                if (memcmp(key, l->key, l->key_len + 1) != 0)
                        continue;
                if (len > l->t->value_size)
                        return -EBADMSG;
                if (len > l->size) {
                        atomic_thread_fence(memory_order_acquire);
                        return atomic_load_explicit(&e->seq, memory_order_relaxed) == seq ? -EMSGSIZE : 0;
                }
                if (len > 0)
                        memcpy(l->buf, e->value, len);
                atomic_thread_fence(memory_order_acquire);
                if (atomic_load_explicit(&e->seq, memory_order_relaxed) != seq)
                        return 0;               /* changed under us: look again */
                if (gen < l->min_generation)
                        return 0;
                l->info = (struct shmring_kv_info) {
                        .generation = gen,
                        .len = len,
                };
                l->owner = owner;
                return 1;
        }
        return 0;
}

static const struct wait_ops kv_wait_ops = {
        .ready = kv_ready,
        .check_peers = wait_no_peers,
};

_public_ ssize_t shmring_kv_get(struct shmring *s, const char *table, const char *key, uint64_t min_generation,
                                void *buf, size_t size, struct shmring_kv_info *ret_info, int64_t timeout_ns) {
        struct kv_lookup l;
        struct port waiter;
        int r;

        check_arg(s && table, -EINVAL);
        check_arg(key_valid(key), -EINVAL);
        check_arg(buf || size == 0, -EINVAL);
        l = (struct kv_lookup) {
                .seg = s,
                .t = table_find(s, table),
                .key = key,
                .key_len = strlen(key),
                .min_generation = min_generation,
                .buf = buf,
                .size = size,
        };
        if (!l.t)
                return -ENOENT;

        /* Lookups are rare (start-up, a new tensor): a short spin, then sleep. */
        waiter = (struct port) {
                .seg = s,
                .spin_ns = default_spin_ns(),
                .liveness_ns = default_liveness_ns(),
        };
        r = port_wait(&waiter, &l.t->hdr->change, &kv_wait_ops, &l, timeout_ns);
        if (r < 0)
                return r;
        if (owner_dead(s, l.owner))
                return -EOWNERDEAD;
        if (SHM_OWNER_PEER(l.owner) < s->max_peers)
                l.info.owner_pid = (pid_t) __atomic_load_n(&s->peers[SHM_OWNER_PEER(l.owner)].pid, __ATOMIC_RELAXED);
        if (ret_info)
                *ret_info = l.info;
        return (ssize_t) l.info.len;
}

/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_WORKER_MESSAGE_H
#define RINGMASTER_WORKER_MESSAGE_H

/*
 * The keys of a notify datagram that announce a worker an engine spawned
 * (docs/spawned-workers.md): who it is, the group it joins, how it ends.
 * worker_message_parse() is a pure function of the datagram's bytes, run
 * after notify_parse() accepted them (valid UTF-8, KEY=VALUE lines); the
 * other keys are notify_parse()'s and are skipped here.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "rm_announce.h"

/* The wire's limits are rm_announce.h's (one contract with the worker side). */
#define WORKER_ARGV_MAX RM_ANNOUNCE_ARGV_MAX
#define WORKER_NAME_MAX RM_ANNOUNCE_NAME_MAX
#define WORKER_GROUP_KEY_MAX RM_ANNOUNCE_GROUP_KEY_MAX
#define WORKER_EXCEPTION_MAX RM_ANNOUNCE_EXCEPTION_MAX
/* The largest group world taken (a larger one is not a tensor-parallel group). */
#define WORKER_GROUP_WORLD_MAX RM_ANNOUNCE_GROUP_WORLD_MAX

enum worker_key {
        WORKER_KEY_ANNOUNCE = 1u << 0,   /* X_RINGMASTER_WORKER=python|native (+ PPID, ARGV, NAME, INDEX) */
        WORKER_KEY_CAPTURE = 1u << 1,    /* X_RINGMASTER_CAPTURE=1: three descriptors came with it */
        WORKER_KEY_GROUP = 1u << 2,      /* X_RINGMASTER_GROUP, _GROUP_RANK, _GROUP_WORLD */
        WORKER_KEY_EXIT = 1u << 3,       /* X_RINGMASTER_WORKER_EXIT=0..255 */
        WORKER_KEY_EXCEPTION = 1u << 4,  /* X_RINGMASTER_WORKER_EXCEPTION=Type: message */
        WORKER_KEY_EXEC = 1u << 5,       /* X_RINGMASTER_WORKER_EXEC=1 */
};

struct worker_message {
        unsigned keys;                   /* enum worker_key bits; 0: none of them */
        bool native;                     /* X_RINGMASTER_WORKER=native (else python) */
        pid_t ppid;                      /* 0: not given */
        int index;                       /* -1: not given */
        int group_rank, group_world;
        int exit_code;
        char argv[WORKER_ARGV_MAX + 1];
        char name[WORKER_NAME_MAX + 1];  /* "": not given */
        char group_key[WORKER_GROUP_KEY_MAX + 1];
        char exception[WORKER_EXCEPTION_MAX + 1];
};

/*
 * Returns 0 (ret written; ret->keys 0 when the datagram has no worker key)
 * or -EINVAL: a worker key with a value it does not take (a kind other
 * than python/native, CAPTURE without the announce, a group without its
 * rank and world, rank >= world, an exit status > 255, a text too long).
 * Control characters in texts become '?'.
 */
int worker_message_parse(const void *data, size_t size, struct worker_message *ret);

#endif

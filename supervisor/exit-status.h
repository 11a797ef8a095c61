/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_EXIT_STATUS_H
#define RINGMASTER_EXIT_STATUS_H

/*
 * ringmaster's exit statuses (ringmaster(1), EXIT STATUS; docs/supervisor.md).
 *
 *   0          every rank exited 0
 *   1..255     otherwise the first failing rank's status: its exit code, or
 *              128 + n when signal n killed it (126/127: its command could not
 *              be executed / was not found, as in a shell)
 *   128 + n    ringmaster was stopped by signal n (SIGINT, SIGTERM, SIGHUP,
 *              SIGQUIT) before any rank failed
 *
 * and three codes of its own, chosen (as s6 does) away from the values that
 * programs commonly use:
 */
enum {
        EXIT_RM_USAGE = 100,     /* bad command line or environment: nothing was started */
        EXIT_RM_INTERNAL = 111,  /* ringmaster itself failed (resources, fork, /dev/shm...) */
        EXIT_RM_NODE_FAILED = 112, /* another node of the job failed, or was lost (--store): this one stopped */
        EXIT_RM_DEADLINE = 124,  /* a deadline passed: ready, phase, straggler or watchdog (deadline.h) */
};

#endif

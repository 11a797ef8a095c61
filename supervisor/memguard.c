/* SPDX-License-Identifier: MIT */
/* A SIGBUS guard around the supervisor's touches of the shared segment (memguard.h). */

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include "memguard.h"

static sigjmp_buf guard_jump;
static volatile sig_atomic_t guard_active;

static void on_sigbus(int sig, siginfo_t *si, void *ctx) {
        (void) si;
        (void) ctx;
        if (guard_active) {
                guard_active = 0;
                siglongjmp(guard_jump, 1);
        }
        /* Not ours: the default action (returning re-runs the access, which faults again). */
        signal(sig, SIG_DFL);
}

int memguard_run(int (*fn)(void *userdata), void *userdata) {
        struct sigaction sa = { .sa_sigaction = on_sigbus, .sa_flags = SA_SIGINFO }, old;
        sigset_t bus, saved;
        int r;

        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGBUS, &sa, &old) < 0)
                return -errno;
        /* A blocked SIGBUS from a fault kills regardless of the handler: make sure it is not. */
        sigemptyset(&bus);
        sigaddset(&bus, SIGBUS);
        (void) sigprocmask(SIG_UNBLOCK, &bus, &saved);
        /* savemask 1: the jump restores the mask the handler ran under. */
        if (sigsetjmp(guard_jump, 1) == 0) {
                guard_active = 1;
                r = fn(userdata);
                guard_active = 0;
        } else
                r = -EFAULT;
        (void) sigprocmask(SIG_SETMASK, &saved, NULL);
        (void) sigaction(SIGBUS, &old, NULL);
        return r;
}

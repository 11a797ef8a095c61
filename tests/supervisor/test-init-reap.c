/* SPDX-License-Identifier: MIT */
/*
 * init_reap_unclaimed() (supervisor/init.c), the SIGCHLD-side reaper of a
 * container's init: it reaps zombie children nobody claims, and never one
 * that is claimed (a rank's, whose exit sd-event's child source must get).
 *
 * Three children exit: A and C unclaimed, B claimed.  However many times it
 * runs, B stays a waitable zombie; once B is reaped by its "owner", the rest
 * go; in all, exactly A and C were reaped by it.
 */
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"
#include "util.h"

#include "unit.h"

static pid_t claimed_pid;
static unsigned claim_checks;

static bool is_claimed(pid_t pid, void *userdata) {
        claim_checks++;
        return pid == claimed_pid;
}

static pid_t child_exiting(int code) {
        pid_t pid = fork();

        if (pid < 0) {
                perror("fork");
                exit(99);
        }
        if (pid == 0)
                _exit(code);
        return pid;
}

/* Waits (without reaping) until pid is a zombie: an event, not a poll. */
static void wait_zombie(pid_t pid) {
        siginfo_t si = {};

        if (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOWAIT) < 0) {
                perror("waitid");
                exit(99);
        }
}

static bool waitable(pid_t pid) {
        siginfo_t si = {};

        return waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

int main(void) {
        pid_t a, b, c;
        size_t reaped = 0, n;
        siginfo_t si = {};

        /* Nothing to reap: no children at all (ECHILD). */
        CHECK(init_reap_unclaimed(is_claimed, NULL) == 0, "no children: nothing reaped");

        a = child_exiting(1);
        b = child_exiting(2);
        c = child_exiting(3);
        claimed_pid = b;
        wait_zombie(a);
        wait_zombie(b);
        wait_zombie(c);

        for (int i = 0; i < 3; i++) {
                reaped += init_reap_unclaimed(is_claimed, NULL);
                CHECK(waitable(b), "pass %d: the claimed zombie %d is left for its owner", i, (int) b);
        }
        CHECK(claim_checks > 0, "it asked whose each zombie is");
        CHECK(reaped <= 2, "at most the two unclaimed ones reaped so far (%zu)", reaped);

        /* The owner reaps B (as sd-event would); then the rest go. */
        CHECK(waitid(P_PID, (id_t) b, &si, WEXITED) == 0 && si.si_status == 2, "the owner gets B's exit status 2");
        n = init_reap_unclaimed(is_claimed, NULL);
        reaped += n;
        CHECK(reaped == 2, "A and C reaped, nothing else (%zu)", reaped);
        CHECK(!waitable(a) && !waitable(c), "A and C are gone");
        CHECK(init_reap_unclaimed(is_claimed, NULL) == 0, "nothing left to reap");
        CHECK(waitid(P_ALL, 0, &si, WEXITED | WNOHANG) < 0 && errno == ECHILD, "no child left at all");

        if (failures) {
                printf("%d check(s) failed\n", failures);
                return 1;
        }
        printf("all checks passed\n");
        return 0;
}

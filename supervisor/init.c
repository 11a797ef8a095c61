/* SPDX-License-Identifier: MIT */
#include <sys/wait.h>

#include "init.h"
#include "log.h"
#include "options.h"
#include "util.h"

/* What tini forwards that means something to a worker; SIGUSR2 unless it is --diagnose-signal. */
static const int forwarded_candidates[] = { SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGVTALRM, SIGPROF,
                                            SIGURG, SIGCONT, SIGPWR };

struct init_forwarder {
        void (*forward)(int sig, void *userdata);
        void *userdata;
        sd_event_source *sources[ELEMENTSOF(forwarded_candidates)];
};

bool init_wanted(const struct run_options *o) {
        return o->init || getpid() == 1;
}

void init_forwarded_signals(const struct run_options *o, const sigset_t *ignored, sigset_t *ret) {
        sigemptyset(ret);
        for (size_t i = 0; i < ELEMENTSOF(forwarded_candidates); i++) {
                int sig = forwarded_candidates[i];

                /* The diagnosis' own; and what the ranks ignore anyway (ringmaster's parent ignored it). */
                if (sig != o->diagnose_signal && sigismember(ignored, sig) != 1)
                        sigaddset(ret, sig);
        }
}

static int on_forwarded_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct init_forwarder *f = userdata;

        f->forward((int) si->ssi_signo, f->userdata);
        return 0;
}

int init_forwarder_new(sd_event *event, const sigset_t *forwarded, void (*forward)(int sig, void *userdata),
                       void *userdata, struct init_forwarder **ret) {
        struct init_forwarder *f;
        int r;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->forward = forward;
        f->userdata = userdata;
        for (size_t i = 0; i < ELEMENTSOF(forwarded_candidates); i++) {
                if (sigismember(forwarded, forwarded_candidates[i]) != 1)
                        continue;
                r = sd_event_add_signal(event, &f->sources[i], forwarded_candidates[i], on_forwarded_signal, f);
                if (r < 0) {
                        init_forwarder_free(f);
                        return r;
                }
        }
        *ret = f;
        return 0;
}

struct init_forwarder *init_forwarder_free(struct init_forwarder *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(f->sources); i++)
                sd_event_source_disable_unref(f->sources[i]);
        free(f);
        return NULL;
}

size_t init_reap_unclaimed(bool (*claimed)(pid_t pid, void *userdata), void *userdata) {
        size_t n = 0;

        for (;;) {
                siginfo_t si = {};
                pid_t pid;

                /* A look without reaping: the first zombie child, if any (ECHILD: no child at all). */
                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid <= 0)
                        break;
                /*
                 * A rank's or a tracked orphan's: its child source reaps it
                 * (after its callback, which scans for orphans again).  The
                 * zombies behind it wait for that scan or the next SIGCHLD.
                 */
                if (claimed(si.si_pid, userdata))
                        break;
                pid = si.si_pid;
                if (waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG) < 0)
                        break;
                n++;
                log_debug("reaped process %d, a zombie nobody claimed", (int) pid);
        }
        return n;
}

/* SPDX-License-Identifier: MIT */
#include "exit-status.h"
#include "json.h"
#include "options.h"
#include "run-model.h"

bool run_will_restart(const struct run_model *run) {
        return (run->first_failure >= 0 || run->deadline.kind != DEADLINE_NONE) && run->stop_signal == 0 &&
               run->internal_error == 0 && !run->gave_up && !run->restart_across_nodes &&
               run->restart_count < run->options->max_restarts;
}

bool run_stopped_gracefully(const struct run_model *run, int *ret_rank) {
        bool forwarded = false;
        int first = -1;

        if (run->stop_signal <= 0 || run->first_failure >= 0 || run->first_failure_worker >= 0 ||
            run->internal_error != 0 || run->deadline.kind != DEADLINE_NONE || run->node_failure.set || run->gave_up ||
            !run->ranks)
                return false;
        for (int i = 0; i < run->nproc; i++) {
                const struct rank *r = &run->ranks[i];

                if (rank_state_is_alive(r->state) || r->last_signal_sent == SIGKILL)
                        return false;
                if (r->last_signal_sent != 0)
                        forwarded = true;
                if (((r->state == RANK_EXITED && r->exit_code != 0) || r->state == RANK_SIGNALLED) &&
                    (first < 0 || r->ended_usec < run->ranks[first].ended_usec))
                        first = i;
        }
        if (!forwarded)
                return false;
        *ret_rank = first;
        return true;
}

int run_exit_status_rank(const struct run_model *run) {
        int rank;

        if (run->internal_error != 0 || run->deadline.kind != DEADLINE_NONE)
                return -1;
        if (run_stopped_gracefully(run, &rank))
                return rank;
        return run->first_failure;
}

int run_exit_status(const struct run_model *run) {
        int rank = run_exit_status_rank(run);

        if (run->internal_error != 0)
                return EXIT_RM_INTERNAL;
        if (run->deadline.kind != DEADLINE_NONE)
                return EXIT_RM_DEADLINE;
        if (run->first_failure_worker >= 0)
                return worker_exit_status(run->workers.workers[run->first_failure_worker]);
        if (rank >= 0) {
                const struct rank *r = &run->ranks[rank];

                return r->state == RANK_SIGNALLED ? 128 + r->exit_signal : r->exit_code;
        }
        if (run->node_failure.set)
                return run->node_failure.deadline ? EXIT_RM_DEADLINE : EXIT_RM_NODE_FAILED;
        if (run->stop_signal > 0 && !run_stopped_gracefully(run, &rank))
                return 128 + run->stop_signal;
        return 0;
}

pid_t run_rank_pid(const struct run_model *run, int rank) {
        if (rank < 0 || rank >= run->nproc || !run->ranks || run->ranks[rank].state == RANK_IDLE)
                return 0;
        return run->ranks[rank].pid;
}

pid_t run_rank_pid_of(int rank, void *userdata) {
        return run_rank_pid(userdata, rank);
}

const struct json_value *rank_error_file_message(const struct rank *r, const struct json_value **ret_traceback) {
        const struct json_value *m = json_object_get(r->error_file, "message"), *tb = NULL;

        if (m && m->type == JSON_OBJECT) {
                tb = json_object_get(json_object_get(m, "extraInfo"), "py_callstack");
                m = json_object_get(m, "message");
        }
        *ret_traceback = tb && tb->type == JSON_STRING ? tb : NULL;
        return m && m->type == JSON_STRING ? m : NULL;
}

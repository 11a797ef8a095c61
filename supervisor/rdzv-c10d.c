/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "parse-util.h"
#include "rendezvous.h"
#include "util.h"

#define HELPER "python3 -m ringmaster.rdzv_c10d"
/* Beyond the join timeout: the helper imports torch first (seconds on a busy machine). */
#define IMPORT_ALLOWANCE_USEC (120 * USEC_PER_SEC)

static int helper_argv(const struct rdzv_config *cfg, const char *python, char ***ret) {
        char **argv = NULL;
        int r = 0;

        r |= strv_extend(&argv, python);
        r |= strv_extend(&argv, "-m");
        r |= strv_extend(&argv, "ringmaster.rdzv_c10d");
        r |= strv_extend(&argv, "--endpoint");
        r |= strv_extend(&argv, cfg->endpoint);
        r |= strv_extend(&argv, "--run-id");
        r |= strv_extend(&argv, cfg->run_id);
        r |= strv_extend(&argv, "--min");
        r |= strv_extendf(&argv, "%d", cfg->min_nodes);
        r |= strv_extend(&argv, "--max");
        r |= strv_extendf(&argv, "%d", cfg->max_nodes);
        r |= strv_extend(&argv, "--last-call");
        r |= strv_extendf(&argv, "%.3f", (double) cfg->last_call_usec / USEC_PER_SEC);
        r |= strv_extend(&argv, "--join-timeout");
        r |= strv_extendf(&argv, "%.3f", (double) cfg->join_timeout_usec / USEC_PER_SEC);
        r |= strv_extend(&argv, "--host");
        r |= strv_extend(&argv, cfg->host);
        if (cfg->addr) {
                r |= strv_extend(&argv, "--addr");
                r |= strv_extend(&argv, cfg->addr);
        }
        if (r < 0) {
                strv_free(argv);
                return -ENOMEM;
        }
        *ret = argv;
        return 0;
}

/* The helper's one line: the result, or its error. */
static int parse_answer(const struct rdzv_config *cfg, const char *line, struct rdzv_result *ret, char **ret_error) {
        struct json_value *v = NULL;
        const struct json_value *err, *rank, *nnodes, *master;
        long long rk, nn;
        int r;

        if (json_parse(line, strlen(line), &v) < 0)
                return error_setf(ret_error, -EBADMSG, "the c10d rendezvous (" HELPER "): not an answer: %s", line);
        err = json_object_get(v, "error");
        rank = json_object_get(v, "node_rank");
        nnodes = json_object_get(v, "nnodes");
        master = json_object_get(v, "master_addr");
        if (err && err->type == JSON_STRING)
                r = error_setf(ret_error, -EBUSY, "%s", err->text);
        else if (!rank || rank->type != JSON_NUMBER || !nnodes || nnodes->type != JSON_NUMBER || !master ||
                 master->type != JSON_STRING || parse_int_range(nnodes->text, 1, cfg->max_nodes, &nn) < 0 ||
                 parse_int_range(rank->text, 0, nn - 1, &rk) < 0)
                r = error_setf(ret_error, -EBADMSG, "the c10d rendezvous (" HELPER "): not an answer: %s", line);
        else {
                *ret = (struct rdzv_result) { .node_rank = (int) rk, .nnodes = (int) nn,
                                              .master_addr = strdup(master->text) };
                r = ret->master_addr ? 0 : -ENOMEM;
        }
        json_value_free(v);
        return r;
}

int rdzv_c10d_join(const struct rdzv_config *cfg, const char *python, const char *pythonpath,
                   struct rdzv_result *ret, char **ret_error) {
        _cleanup_strv_free_ char **argv = NULL;
        int in[2] = { -EBADF, -EBADF }, out[2] = { -EBADF, -EBADF }, status = 0, r;
        uint64_t deadline = cfg->join_timeout_usec ? now_usec() + cfg->join_timeout_usec + IMPORT_ALLOWANCE_USEC : 0;
        char buf[4096];
        size_t len = 0;
        bool answered = false, eof = false;
        pid_t pid;

        *ret = (struct rdzv_result) {};
        r = helper_argv(cfg, python, &argv);
        if (r < 0)
                return r;
        if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
                r = -errno;
                goto done;
        }
        pid = fork();
        if (pid < 0) {
                r = -errno;
                goto done;
        }
        if (pid == 0) {
                /* The helper: our stop signals are blocked here (they come through the event loop); not there. */
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGPIPE, SIG_DFL);
                if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0)
                        _exit(127);
                if (pythonpath)
                        setenv("PYTHONPATH", pythonpath, 1);
                execvp(argv[0], argv);
                fprintf(stderr, "ringmaster: cannot run %s: %s\n", argv[0], strerror(errno));
                _exit(127);
        }
        in[0] = safe_close(in[0]);
        out[1] = safe_close(out[1]);

        /* Its answer, then its end (the host keeps the store until every node has the answer). */
        while (!eof) {
                struct pollfd p = { .fd = out[0], .events = POLLIN };
                int sig = rdzv_stop_signal_pending(cfg->stop_signals);

                if (sig) {
                        ret->signal = sig;
                        r = error_setf(ret_error, -EINTR, "stopped by signal %d while waiting for the other nodes to "
                                       "join", sig);
                        break;
                }
                if (deadline && now_usec() >= deadline) {
                        r = error_setf(ret_error, -ETIMEDOUT, "the c10d rendezvous (" HELPER ") did not answer within "
                                       "the join timeout");
                        break;
                }
                if (poll(&p, 1, 200) <= 0)
                        continue;
                ssize_t n = read(out[0], buf + len, sizeof(buf) - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        eof = true;
                        break;
                }
                len += (size_t) n;
                buf[len] = 0;
                char *nl = strchr(buf, '\n');
                if (nl && !answered) {
                        *nl = 0;
                        r = parse_answer(cfg, buf, ret, ret_error);
                        if (r < 0)
                                break;
                        answered = true;
                }
                if (answered || len == sizeof(buf) - 1)
                        len = 0;        /* whatever follows is not ours to read */
        }
        /* Its stdin closes: a helper still waiting stops. */
        in[1] = safe_close(in[1]);
        if (!eof || r < 0)
                (void) kill(pid, SIGTERM);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r == 0 && !answered)
                r = error_setf(ret_error, -EBUSY, "the c10d rendezvous helper (%s -m ringmaster.rdzv_c10d) ended "
                               "(status %d) without an answer: its error is above (is ringmaster's Python package "
                               "on this node?)", argv[0], WIFEXITED(status) ? WEXITSTATUS(status) : -1);
done:
        safe_close(in[0]);
        safe_close(in[1]);
        safe_close(out[0]);
        safe_close(out[1]);
        if (r < 0) {
                free(ret->master_addr);
                ret->master_addr = NULL;
        }
        return r;
}

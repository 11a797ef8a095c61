/* SPDX-License-Identifier: MIT */
/*
 * torchrun's command line into `ringmaster run`'s (torchrun-cli.c): every
 * option's mapping, both spellings, argparse's prefixes, PET_* defaults,
 * and the refusals with their reasons.
 */
#include <errno.h>
#include <string.h>

#include "torchrun-cli.h"
#include "unit.h"
#include "util.h"

/* Translates a space-separated command line; returns the run command line joined by spaces, or "ERR: ...". */
static char *translate(char *const *env, const char *cmdline, int *ret) {
        static char out[8192];
        char buf[2048], *argv[64], *save = NULL;
        int argc = 0;
        char **run = NULL, *err = NULL;
        size_t n = 0;

        snprintf(buf, sizeof(buf), "%s", cmdline);
        for (char *t = strtok_r(buf, " ", &save); t && argc < 63; t = strtok_r(NULL, " ", &save))
                argv[argc++] = t;
        argv[argc] = NULL;
        *ret = torchrun_translate(argc, argv, env, &run, &err);
        out[0] = 0;
        if (*ret < 0)
                snprintf(out, sizeof(out), "ERR: %s", err ? err : "(no message)");
        else
                for (size_t i = 0; run && run[i]; i++)
                        n += (size_t) snprintf(out + n, sizeof(out) - n, "%s%s", i ? " " : "", run[i]);
        free(err);
        strv_free(run);
        return out;
}

static void maps(char *const *env, const char *cmdline, const char *want) {
        int r;
        const char *got = translate(env, cmdline, &r);

        CHECK(r == 1 && strcmp(got, want) == 0, "%s\n    got:  %s\n    want: %s", cmdline, got, want);
}

static void refuses(char *const *env, const char *cmdline, const char *needle) {
        int r;
        const char *got = translate(env, cmdline, &r);

        CHECK(r == -EINVAL && strstr(got, needle), "%s\n    got:  %s (%d)\n    want an error with '%s'", cmdline, got,
              r, needle);
}

#define TAIL "--role default --max-restarts 0 --grace 30 --prefix=none"

int main(void) {
        char *none[] = { NULL };
        int r;

        /* One node: torchrun's own defaults. */
        maps(none, "torchrun train.py", "run --nodes-from=none --master-addr 127.0.0.1 -n 1 " TAIL
                                        " -- python3 -u train.py");
        maps(none, "torchrun --nproc-per-node 2 --master-addr 127.0.0.1 --master-port 1234 train.py --lr 3",
             "run --nodes-from=none --master-addr 127.0.0.1 --master-port 1234 -n 2 " TAIL
             " -- python3 -u train.py --lr 3");
        /* Both spellings, '=', argparse's unambiguous prefixes. */
        maps(none, "torchrun --nproc_per_node=4 x.py", "run --nodes-from=none --master-addr 127.0.0.1 -n 4 " TAIL
                                                       " -- python3 -u x.py");
        maps(none, "torchrun --nproc 4 x.py", "run --nodes-from=none --master-addr 127.0.0.1 -n 4 " TAIL
                                              " -- python3 -u x.py");
        maps(none, "torchrun --nproc-per-node=gpu x.py", "run --nodes-from=none --master-addr 127.0.0.1 -n gpu " TAIL
                                                         " -- python3 -u x.py");
        /* Options after the script are the script's. */
        maps(none, "torchrun x.py --nnodes 2", "run --nodes-from=none --master-addr 127.0.0.1 -n 1 " TAIL
                                               " -- python3 -u x.py --nnodes 2");
        /* PET_* are the defaults; the command line wins. */
        char *pet[] = { "PET_NPROC_PER_NODE=3", "PET_MAX_RESTARTS=2", "PET_STANDALONE=1", NULL };
        maps(pet, "torchrun x.py", "run --nodes-from=none -n 3 --role default --max-restarts 2 --grace 30 "
                                   "--prefix=none -- python3 -u x.py");
        maps(pet, "torchrun --nproc-per-node 5 x.py", "run --nodes-from=none -n 5 --role default --max-restarts 2 "
                                                      "--grace 30 --prefix=none -- python3 -u x.py");
        char *badpet[] = { "PET_STANDALONE=yes", NULL };
        refuses(badpet, "torchrun x.py", "PET_STANDALONE='yes'");

        /* How the script runs. */
        char *pyexec[] = { "PYTHON_EXEC=/opt/py/bin/python3.11", NULL };
        maps(pyexec, "torchrun -m pkg.serve --port 1", "run --nodes-from=none --master-addr 127.0.0.1 -n 1 " TAIL
                                                       " -- /opt/py/bin/python3.11 -u -m pkg.serve --port 1");
        maps(none, "torchrun --no-python ./a.out 1", "run --nodes-from=none --master-addr 127.0.0.1 -n 1 " TAIL
                                                     " -- ./a.out 1");
        maps(none, "torchrun --run-path /abs/x.py 1",
             "run --nodes-from=none --master-addr 127.0.0.1 -n 1 " TAIL
             " -- python3 -u -c import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], "
             "run_name='__main__') /abs/x.py 1");
        refuses(none, "torchrun --no-python -m x", "'--no-python' flag and the '--module'");
        refuses(none, "torchrun --nproc-per-node 2", "no training script");

        /* Several nodes, static. */
        maps(none, "torchrun --nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --nproc-per-node 8 x.py",
             "run --nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --master-port 29500 -n 8 " TAIL
             " -- python3 -u x.py");
        maps(none, "torchrun --nnodes=2:2 --node_rank=0 --master_addr=h --master_port=7 x.py",
             "run --nnodes 2 --node-rank 0 --master-addr h --master-port 7 -n 1 " TAIL " -- python3 -u x.py");
        /* Static with an endpoint: that is where rank 0 listens. */
        maps(none, "torchrun --nnodes 2 --node-rank 1 --rdzv-endpoint n0:6000 x.py",
             "run --nnodes 2 --node-rank 1 --master-addr n0 --master-port 6000 -n 1 " TAIL " -- python3 -u x.py");
        refuses(none, "torchrun --nnodes 1:4 x.py", "with --rdzv-backend static ringmaster cannot number nodes");
        refuses(none, "torchrun --nnodes 1:4 --master-addr h x.py", "give --rdzv-backend c10d");
        refuses(none, "torchrun --nnodes 0 x.py", "--nnodes '0'");
        refuses(none, "torchrun --nnodes 2 --node-rank 2 --master-addr h x.py", "--node-rank 2 is not below");
        refuses(none, "torchrun --standalone --nnodes 2 x.py", "--standalone is one node");
        /* c10d: node ranks from the launcher, else through a TCPStore at the endpoint (no --node-rank passed on). */
        maps(none, "torchrun --nnodes 2 --rdzv-backend c10d --rdzv-endpoint [fd00::1]:29400 --rdzv-id job7 x.py",
             "run --nnodes 2 --master-addr fd00::1 --master-port 29400 --rendezvous c10d://[fd00::1]:29400 -n 1 "
             "--run-id job7 --role default --max-restarts 0 --grace 30 --prefix=none -- python3 -u x.py");
        maps(none, "torchrun --nnodes 2 --rdzv-backend c10d --rdzv-endpoint n0 x.py",
             "run --nnodes 2 --master-addr n0 --master-port 29400 --rendezvous c10d://n0:29400 -n 1 " TAIL
             " -- python3 -u x.py");
        maps(none, "torchrun --nnodes 1:4 --rdzv-backend c10d --rdzv-endpoint n0:5000 --rdzv-conf last_call_timeout=2 x.py",
             "run --nnodes 1:4 --master-addr n0 --master-port 5000 --rendezvous c10d://n0:5000 --last-call-timeout 2s "
             "-n 1 " TAIL
             " -- python3 -u x.py");
        maps(none, "torchrun --nnodes 2 --node-rank 1 --rdzv-backend c10d --rdzv-endpoint n0 x.py",
             "run --nnodes 2 --node-rank 1 --master-addr n0 --master-port 29400 -n 1 " TAIL " -- python3 -u x.py");
        refuses(none, "torchrun --nnodes 2 --rdzv-backend c10d x.py", "needs --rdzv-endpoint");
        refuses(none, "torchrun --nnodes 2 --rdzv-backend c10d --rdzv-endpoint fd00::1 x.py", "IPv6");
        refuses(none, "torchrun --rdzv-backend zookeeper x.py", "--rdzv-backend 'zookeeper'");
        /* etcd: the store; no --master-port unless given (node 0 of the rendezvous picks one and publishes it). */
        maps(none, "torchrun --nnodes 4 --rdzv-backend etcd-v3 --rdzv-endpoint etcd:2379 --rdzv-id j "
                   "--rdzv-conf join_timeout=90,read_timeout=5 x.py",
             "run --nnodes 4 --store etcd://etcd:2379 --join-timeout 90s "
             "-n 1 --run-id j " "--role default --max-restarts 0 --grace 30 --prefix=none -- python3 -u x.py");
        /* etcd, elastic: the store's rendezvous numbers the nodes; node 0 publishes MASTER_ADDR (unless given). */
        maps(none, "torchrun --nnodes 2:4 --rdzv-backend etcd-v3 --rdzv-endpoint etcd:2379 --rdzv-id j "
                   "--rdzv-conf last_call_timeout=5,join_timeout=60 x.py",
             "run --nnodes 2:4 --store etcd://etcd:2379 --join-timeout 60s --last-call-timeout 5s "
             "-n 1 --run-id j " TAIL " -- python3 -u x.py");
        maps(none, "torchrun --nnodes 3 --rdzv-backend etcd-v3 --rdzv-endpoint etcd:2379 --rdzv-id j --master-addr m x.py",
             "run --nnodes 3 --store etcd://etcd:2379 --master-addr m -n 1 --run-id j " TAIL
             " -- python3 -u x.py");
        refuses(none, "torchrun --nnodes 2:4 --node-rank 1 --rdzv-backend etcd-v3 --rdzv-endpoint e:2379 --rdzv-id j "
                      "x.py", "leave --node-rank out");
        /* etcd over TLS: the etcd backend's rdzv-conf keys, and etcd-v3's; protocol=https alone: the system's CAs. */
        maps(none, "torchrun --nnodes 2 --rdzv-backend etcd --rdzv-endpoint e:2379 --rdzv-id j "
                   "--rdzv-conf protocol=https,cacert=/ca.pem,cert=/c.pem,key=/c.key x.py",
             "run --nnodes 2 --store etcd://https://e:2379 --store-cacert /ca.pem --store-cert /c.pem --store-key "
             "/c.key -n 1 --run-id j " TAIL " -- python3 -u x.py");
        maps(none, "torchrun --nnodes 2 --rdzv-backend etcd-v3 --rdzv-endpoint e:2379 --rdzv-id j "
                   "--rdzv-conf ca_cert=/ca.pem,ssl_cert=/c.pem,ssl_cert_key=/c.key x.py",
             "run --nnodes 2 --store etcd://https://e:2379 --store-cacert /ca.pem --store-cert /c.pem --store-key "
             "/c.key -n 1 --run-id j " TAIL " -- python3 -u x.py");
        maps(none, "torchrun --nnodes 2 --rdzv-backend etcd-v3 --rdzv-endpoint e:2379 --rdzv-id j "
                   "--rdzv-conf protocol=https x.py",
             "run --nnodes 2 --store etcd://https://e:2379 -n 1 --run-id j " TAIL
             " -- python3 -u x.py");
        refuses(none, "torchrun --nnodes 2 --rdzv-backend etcd-v3 --rdzv-endpoint e:2379 --rdzv-id j "
                      "--rdzv-conf protocol=gopher x.py", "protocol=gopher: give http or https");
        refuses(none, "torchrun --nnodes 2 --rdzv-backend c10d --rdzv-endpoint n0:29400 --rdzv-conf cacert=/ca.pem x.py",
                "are etcd's");
        refuses(none, "torchrun --rdzv-conf last_call_timeout=x x.py", "last_call_timeout=x: give seconds");
        refuses(none, "torchrun --nnodes 2 --rdzv-backend etcd --rdzv-endpoint e:2379 x.py", "needs --rdzv-id");
        refuses(none, "torchrun --rdzv-conf bogus=1 x.py", "'bogus' is not a key");
        refuses(none, "torchrun --rdzv-conf join_timeout x.py", "is not KEY=VALUE");

        /* Restarts, shutdown, role. */
        maps(none, "torchrun --max-restarts 3 --role trainer --shutdown-timeout 5 x.py",
             "run --nodes-from=none --master-addr 127.0.0.1 -n 1 --role trainer --max-restarts 3 --grace 5 "
             "--prefix=none -- python3 -u x.py");
        char *shutdown[] = { "TORCH_ELASTIC_SHUTDOWN_TIMEOUT=7", NULL };
        maps(shutdown, "torchrun x.py", "run --nodes-from=none --master-addr 127.0.0.1 -n 1 --role default "
                                        "--max-restarts 0 --grace 7 --prefix=none -- python3 -u x.py");
        refuses(none, "torchrun --max-restarts -1 x.py", "--max-restarts '-1'");

        /* Output. */
        maps(none, "torchrun --tee 3 x.py", "run --nodes-from=none --master-addr 127.0.0.1 -n 1 --role default "
                                            "--max-restarts 0 --grace 30 --prefix torchrun --log-dir "
                                            "/tmp/torchelastic -- python3 -u x.py");
        maps(none, "torchrun -t3 --log-dir /var/log/t --log-line-prefix-template ${hostname}:${rank}:% x.py",
             "run --nodes-from=none --master-addr 127.0.0.1 -n 1 --role default --max-restarts 0 --grace 30 "
             "--prefix %h:%r:%% --log-dir /var/log/t -- python3 -u x.py");
        refuses(none, "torchrun -t3 --log-line-prefix-template ${pid} x.py", "only ${role_name}");
        maps(none, "torchrun -r 3 --log-dir /l x.py", "run --nodes-from=none --master-addr 127.0.0.1 -n 1 " TAIL
                                                      " --log-dir /l --console-ranks none -- python3 -u x.py");
        maps(none, "torchrun --redirects 0:3 --log-dir /l x.py", "run --nodes-from=none --master-addr 127.0.0.1 -n 1 "
                                                                 TAIL " --log-dir /l --console-ranks 1-1023 -- "
                                                                 "python3 -u x.py");
        maps(none, "torchrun --local-ranks-filter 0,2,3 x.py", "run --nodes-from=none --master-addr 127.0.0.1 -n 1 "
                                                               TAIL " --console-ranks 0,2-3 -- python3 -u x.py");
        maps(none, "torchrun --local_ranks_filter=0,1 -r 1:3 x.py",
             "run --nodes-from=none --master-addr 127.0.0.1 -n 1 " TAIL " --log-dir /tmp/torchelastic "
             "--console-ranks 0 -- python3 -u x.py");
        refuses(none, "torchrun --redirects 1 x.py", "both streams");
        refuses(none, "torchrun --redirects 0:2 x.py", "both streams");
        refuses(none, "torchrun --tee 4 x.py", "--tee '4'");
        refuses(none, "torchrun --local-ranks-filter a x.py", "--local-ranks-filter 'a'");

        /* Accepted with no effect, and refused. */
        maps(none, "torchrun --monitor-interval 0.5 --start-method fork --event-log-handler null x.py",
             "run --nodes-from=none --master-addr 127.0.0.1 -n 1 " TAIL " -- python3 -u x.py");
        refuses(none, "torchrun --monitor-interval 0 x.py", "--monitor-interval '0'");
        refuses(none, "torchrun --start-method thread x.py", "--start-method 'thread'");
        refuses(none, "torchrun --event-log-handler console x.py", "torchelastic event handlers");
        refuses(none, "torchrun --virtual-local-rank x.py", "--bind-gpu visible");
        refuses(none, "torchrun --numa-binding node x.py", "numactl");
        refuses(none, "torchrun --logs-specs mine x.py", "LogsSpecs");
        refuses(none, "torchrun --duplicate-stdout-filters a,b x.py", "--duplicate-stdout-filters");
        refuses(none, "torchrun --signals-to-handle SIGTERM,SIGUSR1 x.py", "SIGUSR1 is not forwarded");
        maps(none, "torchrun --signals-to-handle SIGTERM,SIGINT x.py",
             "run --nodes-from=none --master-addr 127.0.0.1 -n 1 " TAIL " -- python3 -u x.py");
        refuses(none, "torchrun --nproc-per-node xpu x.py", "--nproc-per-node 'xpu'");
        refuses(none, "torchrun --bogus x.py", "'--bogus'");
        refuses(none, "torchrun --n 2 x.py", "ambiguous");
        refuses(none, "torchrun --nnodes", "needs a value");

        /* Help and --dry-run. */
        translate(none, "torchrun --help", &r);
        CHECK(r == 0, "--help: %d", r);
        translate(none, "torchrun -h x.py", &r);
        CHECK(r == 0, "-h: %d", r);
        translate(none, "torchrun --dry-run x.py", &r);
        CHECK(r == 2, "--dry-run: %d", r);

        printf("%s\n", failures ? "FAILED" : "ok");
        return failures ? 1 : 0;
}

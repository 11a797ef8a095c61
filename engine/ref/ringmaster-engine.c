/* SPDX-License-Identifier: MIT */
/*
 * ringmaster-engine: the reference tensor-parallel engine, one process per
 * rank under `ringmaster run -n N`.  See ringmaster-engine(1).
 *
 * Each rank: start -> [cuda-init] -> load-weights (its shard, with
 * progress) -> allreduce-init | nccl-init (the control-plane channels of the
 * run segment, the collective) -> warmup (an all-reduce checked against the
 * known sum, one forward step) -> READY -> serve (serve.c).  Every phase is
 * reported to ringmaster (rm_notify.h), so a rank stuck in one is named by
 * the supervisor's deadlines; --fail-rank/--fail-at/--fail-how make a rank
 * crash, hang or exit at a chosen phase for the tests.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "collective.h"
#include "llama-config.h"
#include "rm_notify.h"
#include "rm_run_layout.h"
#include "rm_worker.h"
#include "safetensors.h"
#include "serve.h"
#include "shmring.h"

enum device_choice { DEVICE_AUTO, DEVICE_CPU, DEVICE_GPU };
enum fail_how { FAIL_NONE, FAIL_CRASH, FAIL_HANG, FAIL_EXIT };

static const char *const fail_phases[] = {
        "start", "cuda-init", "load-weights", "allreduce-init", "nccl-init", "warmup", "serve", NULL,
};

static struct {
        const char *model;
        const char *requests;
        const char *output;
        const char *step_log;
        const char *logits_out;
        enum device_choice device;
        int max_batch;
        int max_seq_len;
        int max_step_tokens;
        int max_new_tokens;
        int threads;
        const char *allreduce;
        size_t two_shot_min;
        double collective_timeout;
        double step_timeout;
        bool quiet;
        bool ignore_eos;
        bool no_cuda_graphs;
        bool profile_kernels;
        const char *bench_allreduce;
        int bench_iters;
        int spin_us;
        int fail_rank;
        const char *fail_at;
        enum fail_how fail_how;
        uint64_t fail_step;
} opt = {
        .requests = "-",
        .max_batch = 16,
        .max_step_tokens = 512,
        .max_new_tokens = 16,
        .allreduce = "auto",
        .collective_timeout = 300,
        .step_timeout = 300,
        .bench_iters = 200,
        .spin_us = -1,
        .fail_rank = -1,
        .fail_step = 1,
};

static int my_rank;
static struct timeline timeline;

static int64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void heartbeat(void) {
        static int64_t last;
        int64_t now = mono_ns();
        if (now - last > 500000000) {
                rm_heartbeat();
                last = now;
        }
}

static void inject(const char *where) {
        fprintf(stderr, "ringmaster-engine: rank %d: injected failure (%s) at %s\n", my_rank,
                opt.fail_how == FAIL_CRASH ? "crash" : opt.fail_how == FAIL_HANG ? "hang" : "exit", where);
        fflush(stderr);
        switch (opt.fail_how) {
        case FAIL_CRASH:
                signal(SIGSEGV, SIG_DFL);
                raise(SIGSEGV);
                abort();
        case FAIL_HANG:
                for (;;)
                        pause();
        case FAIL_EXIT:
                exit(3);
        case FAIL_NONE:
                break;
        }
}

/* Enters a phase: tells ringmaster, notes the time, and fails here when asked to. */
static void phase(const char *name) {
        rm_phase(name);
        timeline_mark(&timeline, name);
        if (opt.fail_how != FAIL_NONE && opt.fail_rank == my_rank && strcmp(opt.fail_at, name) == 0 &&
            strcmp(name, "serve") != 0)
                inject(name);
}

static void at_step(uint64_t step) {
        if (opt.fail_how != FAIL_NONE && opt.fail_rank == my_rank && strcmp(opt.fail_at, "serve") == 0 &&
            step == opt.fail_step) {
                char where[64];
                snprintf(where, sizeof(where), "serve, step %" PRIu64, step);
                inject(where);
        }
}

static void progress(uint64_t done, uint64_t total) {
        rm_progress(done, total);
        heartbeat();
}

static void usage(FILE *f) {
        fputs("Usage: ringmaster run -n N -- ringmaster-engine --model DIR [OPTIONS]\n"
              "       ringmaster-engine --model DIR [OPTIONS]            (one rank, without ringmaster)\n"
              "\n"
              "The reference tensor-parallel engine: a Llama-architecture model from a Hugging Face\n"
              "checkpoint folder (config.json + safetensors), split over the ranks of the run.\n"
              "Requests are JSON lines: {\"id\": \"a\", \"prompt\": [1, 2, 3], \"max_new_tokens\": 16}.\n"
              "Each finished request is written as a JSON line; the summary goes to standard error.\n"
              "\n"
              "  --model DIR               the checkpoint folder\n"
              "  --requests FILE           the requests (default -, standard input)\n"
              "  --output FILE             the answers (default: standard output)\n"
              "  --device cpu|gpu|auto     auto (default): the GPU when one is visible and the GPU path is built\n"
              "  --max-batch N             sequences in flight, KV-cache slots (default 16)\n"
              "  --max-seq-len N           positions per slot (default: max_position_embeddings, at most 4096)\n"
              "  --max-step-tokens N       tokens per step; longer prompts are prefilled in chunks (default 512)\n"
              "  --max-new-tokens N        for requests that do not say (default 16)\n"
              "  --threads N               CPU: BLAS threads per rank (default: the CPUs / local ranks)\n"
              "  --allreduce ALGO          CPU: auto, one-shot, two-shot; GPU: auto (custom, else NCCL), custom, nccl\n"
              "  --two-shot-min BYTES      CPU auto: two-shot from this size on (default 4K from 4 ranks, else 256K)\n"
              "  --spin-us N               how long a rank spins for the next message before sleeping (default:\n"
              "                            2000 when every rank has its CPUs to itself, else shmring's 50)\n"
              "  --collective-timeout SECS a rank missing from a collective this long fails it (default 300)\n"
              "  --step-timeout SECS       rank 0 waiting for a rank's step result (default 300)\n"
              "  --step-log FILE           one JSON line per step: its split in microseconds\n"
              "  --logits-out FILE         the logits of every sampled position, as JSON lines\n"
              "  --bench-allreduce SIZES   time the all-reduce at these sizes (bytes, K, M; comma-separated), exit\n"
              "  --bench-iters N           iterations per size (default 200)\n"
              "  --no-cuda-graphs          GPU: launch every step's kernels one by one\n"
              "  --profile-kernels         GPU: time each kernel of the decode steps (CUDA events, no graphs);\n"
              "                            the split per step is printed at the end\n"
              "  --ignore-eos              generate max_new_tokens whatever the tokens (benchmarks)\n"
              "  --quiet                   no summary\n"
              "  --fail-rank R --fail-at PHASE --fail-how crash|hang|exit [--fail-step N]\n"
              "                            fault injection for tests; PHASE: start, cuda-init, load-weights,\n"
              "                            allreduce-init, nccl-init, warmup, serve (at step N, default 1)\n"
              "  -h, --help, --version\n",
              f);
}

static int parse_int(const char *name, const char *s, int min, int max, int *ret) {
        char *end;
        long v;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || *end || end == s || v < min || v > max) {
                fprintf(stderr, "ringmaster-engine: %s wants an integer from %d to %d, not '%s'\n", name, min, max, s);
                return -EINVAL;
        }
        *ret = (int) v;
        return 0;
}

static int parse_size(const char *s, size_t *ret) {
        char *end;
        double v;
        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || v < 0)
                return -EINVAL;
        if (*end == 'K' || *end == 'k')
                v *= 1024, end++;
        else if (*end == 'M' || *end == 'm')
                v *= 1024 * 1024, end++;
        else if (*end == 'G' || *end == 'g')
                v *= 1024.0 * 1024 * 1024, end++;
        if (*end)
                return -EINVAL;
        *ret = (size_t) v;
        return 0;
}

static int parse_options(int argc, char **argv) {
        enum {
                O_MODEL = 256, O_REQUESTS, O_OUTPUT, O_DEVICE, O_MAX_BATCH, O_MAX_SEQ_LEN, O_MAX_STEP_TOKENS,
                O_MAX_NEW_TOKENS, O_THREADS, O_ALLREDUCE, O_TWO_SHOT_MIN, O_COLL_TIMEOUT, O_STEP_TIMEOUT, O_STEP_LOG,
                O_LOGITS_OUT, O_BENCH, O_BENCH_ITERS, O_QUIET, O_IGNORE_EOS, O_SPIN_US, O_NO_CUDA_GRAPHS, O_PROFILE_KERNELS, O_FAIL_RANK, O_FAIL_AT, O_FAIL_HOW, O_FAIL_STEP,
                O_VERSION,
        };
        static const struct option longopts[] = {
                { "model", required_argument, NULL, O_MODEL },
                { "requests", required_argument, NULL, O_REQUESTS },
                { "output", required_argument, NULL, O_OUTPUT },
                { "device", required_argument, NULL, O_DEVICE },
                { "max-batch", required_argument, NULL, O_MAX_BATCH },
                { "max-seq-len", required_argument, NULL, O_MAX_SEQ_LEN },
                { "max-step-tokens", required_argument, NULL, O_MAX_STEP_TOKENS },
                { "max-new-tokens", required_argument, NULL, O_MAX_NEW_TOKENS },
                { "threads", required_argument, NULL, O_THREADS },
                { "allreduce", required_argument, NULL, O_ALLREDUCE },
                { "two-shot-min", required_argument, NULL, O_TWO_SHOT_MIN },
                { "collective-timeout", required_argument, NULL, O_COLL_TIMEOUT },
                { "step-timeout", required_argument, NULL, O_STEP_TIMEOUT },
                { "step-log", required_argument, NULL, O_STEP_LOG },
                { "logits-out", required_argument, NULL, O_LOGITS_OUT },
                { "bench-allreduce", required_argument, NULL, O_BENCH },
                { "bench-iters", required_argument, NULL, O_BENCH_ITERS },
                { "quiet", no_argument, NULL, O_QUIET },
                { "ignore-eos", no_argument, NULL, O_IGNORE_EOS },
                { "spin-us", required_argument, NULL, O_SPIN_US },
                { "no-cuda-graphs", no_argument, NULL, O_NO_CUDA_GRAPHS },
                { "profile-kernels", no_argument, NULL, O_PROFILE_KERNELS },
                { "fail-rank", required_argument, NULL, O_FAIL_RANK },
                { "fail-at", required_argument, NULL, O_FAIL_AT },
                { "fail-how", required_argument, NULL, O_FAIL_HOW },
                { "fail-step", required_argument, NULL, O_FAIL_STEP },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, O_VERSION },
                {},
        };
        int c, v;

        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case O_MODEL: opt.model = optarg; break;
                case O_REQUESTS: opt.requests = optarg; break;
                case O_OUTPUT: opt.output = optarg; break;
                case O_DEVICE:
                        if (strcmp(optarg, "cpu") == 0)
                                opt.device = DEVICE_CPU;
                        else if (strcmp(optarg, "gpu") == 0 || strcmp(optarg, "cuda") == 0)
                                opt.device = DEVICE_GPU;
                        else if (strcmp(optarg, "auto") == 0)
                                opt.device = DEVICE_AUTO;
                        else {
                                fprintf(stderr, "ringmaster-engine: --device is cpu, gpu or auto, not '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case O_MAX_BATCH:
                        if (parse_int("--max-batch", optarg, 1, 4096, &opt.max_batch) < 0)
                                return -EINVAL;
                        break;
                case O_MAX_SEQ_LEN:
                        if (parse_int("--max-seq-len", optarg, 1, 1 << 20, &opt.max_seq_len) < 0)
                                return -EINVAL;
                        break;
                case O_MAX_STEP_TOKENS:
                        if (parse_int("--max-step-tokens", optarg, 1, 1 << 20, &opt.max_step_tokens) < 0)
                                return -EINVAL;
                        break;
                case O_MAX_NEW_TOKENS:
                        if (parse_int("--max-new-tokens", optarg, 1, 1 << 24, &opt.max_new_tokens) < 0)
                                return -EINVAL;
                        break;
                case O_THREADS:
                        if (parse_int("--threads", optarg, 1, 1024, &opt.threads) < 0)
                                return -EINVAL;
                        break;
                case O_ALLREDUCE: opt.allreduce = optarg; break;
                case O_TWO_SHOT_MIN:
                        if (parse_size(optarg, &opt.two_shot_min) < 0) {
                                fprintf(stderr, "ringmaster-engine: --two-shot-min wants a size, not '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case O_COLL_TIMEOUT:
                case O_STEP_TIMEOUT: {
                        char *end;
                        double d = strtod(optarg, &end);
                        if (*end || end == optarg || !(d > 0)) {
                                fprintf(stderr, "ringmaster-engine: %s wants seconds (> 0), not '%s'\n",
                                        c == O_COLL_TIMEOUT ? "--collective-timeout" : "--step-timeout", optarg);
                                return -EINVAL;
                        }
                        *(c == O_COLL_TIMEOUT ? &opt.collective_timeout : &opt.step_timeout) = d;
                        break;
                }
                case O_STEP_LOG: opt.step_log = optarg; break;
                case O_LOGITS_OUT: opt.logits_out = optarg; break;
                case O_BENCH: opt.bench_allreduce = optarg; break;
                case O_BENCH_ITERS:
                        if (parse_int("--bench-iters", optarg, 1, 10000000, &opt.bench_iters) < 0)
                                return -EINVAL;
                        break;
                case O_QUIET: opt.quiet = true; break;
                case O_IGNORE_EOS: opt.ignore_eos = true; break;
                case O_NO_CUDA_GRAPHS: opt.no_cuda_graphs = true; break;
                case O_PROFILE_KERNELS: opt.profile_kernels = true; break;
                case O_SPIN_US:
                        if (parse_int("--spin-us", optarg, 0, 10000000, &opt.spin_us) < 0)
                                return -EINVAL;
                        break;
                case O_FAIL_RANK:
                        if (parse_int("--fail-rank", optarg, 0, RM_RUN_MAX_RANKS - 1, &opt.fail_rank) < 0)
                                return -EINVAL;
                        break;
                case O_FAIL_AT: {
                        bool ok = false;
                        for (int i = 0; fail_phases[i]; i++)
                                ok |= strcmp(optarg, fail_phases[i]) == 0;
                        if (!ok) {
                                fprintf(stderr,
                                        "ringmaster-engine: --fail-at: unknown phase '%s' (start, cuda-init, load-weights, "
                                        "allreduce-init, nccl-init, warmup, serve)\n",
                                        optarg);
                                return -EINVAL;
                        }
                        opt.fail_at = optarg;
                        break;
                }
                case O_FAIL_HOW:
                        if (strcmp(optarg, "crash") == 0)
                                opt.fail_how = FAIL_CRASH;
                        else if (strcmp(optarg, "hang") == 0)
                                opt.fail_how = FAIL_HANG;
                        else if (strcmp(optarg, "exit") == 0)
                                opt.fail_how = FAIL_EXIT;
                        else {
                                fprintf(stderr, "ringmaster-engine: --fail-how is crash, hang or exit, not '%s'\n", optarg);
                                return -EINVAL;
                        }
                        break;
                case O_FAIL_STEP:
                        if (parse_int("--fail-step", optarg, 1, INT_MAX, &v) < 0)
                                return -EINVAL;
                        opt.fail_step = (uint64_t) v;
                        break;
                case 'h':
                        usage(stdout);
                        exit(0);
                case O_VERSION:
                        printf("ringmaster-engine %s\n", PACKAGE_VERSION);
                        exit(0);
                default:
                        fprintf(stderr, "Try 'ringmaster-engine --help'.\n");
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "ringmaster-engine: unexpected argument '%s' (try --help)\n", argv[optind]);
                return -EINVAL;
        }
        if (!opt.model && !opt.bench_allreduce) {
                fprintf(stderr, "ringmaster-engine: --model DIR is required: a Hugging Face checkpoint folder "
                                "(config.json and model.safetensors)\n");
                return -EINVAL;
        }
        if ((opt.fail_rank >= 0) != (opt.fail_at != NULL) || (opt.fail_at != NULL) != (opt.fail_how != FAIL_NONE)) {
                fprintf(stderr, "ringmaster-engine: --fail-rank, --fail-at and --fail-how go together\n");
                return -EINVAL;
        }
        if (opt.max_step_tokens < opt.max_batch) {
                fprintf(stderr, "ringmaster-engine: --max-step-tokens (%d) must be at least --max-batch (%d): every "
                                "running sequence decodes one token a step\n",
                        opt.max_step_tokens, opt.max_batch);
                return -EINVAL;
        }
        return 0;
}

static int cpus_available(void) {
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof(set), &set) == 0)
                return CPU_COUNT(&set);
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (int) n : 1;
}

/* The all-reduce timing mode: every size, opt.bench_iters times; rank 0 prints. */
static int bench_allreduce(struct collective *coll, int rank, int world) {
        const char *p = opt.bench_allreduce;
        int r = 0;

        if (rank == 0)
                printf("%-10s %-10s %12s %12s %12s\n", "bytes", "collective", "mean_us", "p50_us", "busbw_GBps");
        while (*p) {
                char tok[32];
                size_t len = strcspn(p, ","), bytes;
                snprintf(tok, sizeof(tok), "%.*s", (int) (len < 31 ? len : 31), p);
                p += len + (p[len] == ',');
                if (parse_size(tok, &bytes) < 0 || bytes < 4) {
                        fprintf(stderr, "ringmaster-engine: --bench-allreduce: '%s' is not a size of at least 4 bytes\n",
                                tok);
                        return -EINVAL;
                }
                size_t n = bytes / 4;
                float *buf = malloc(n * sizeof(float));
                int64_t *t = malloc((size_t) opt.bench_iters * sizeof(int64_t));
                if (!buf || !t) {
                        free(buf);
                        free(t);
                        return -ENOMEM;
                }
                for (int it = -10; it < opt.bench_iters; it++) {
                        for (size_t i = 0; i < n; i++)
                                buf[i] = (float) (rank + 1 + (int) (i % 7));
                        int64_t t0 = mono_ns();
                        r = collective_allreduce(coll, buf, n, COLL_F32, NULL);
                        if (r < 0) {
                                fprintf(stderr, "ringmaster-engine: all-reduce: %s\n", collective_error(coll));
                                free(buf);
                                free(t);
                                return r;
                        }
                        if (it >= 0)
                                t[it] = mono_ns() - t0;
                        for (size_t i = 0; i < n; i++)
                                if (buf[i] != (float) (world * (world + 1) / 2 + world * (int) (i % 7))) {
                                        fprintf(stderr, "ringmaster-engine: all-reduce of %zu bytes: element %zu is %g, want %d\n",
                                                bytes, i, buf[i], world * (world + 1) / 2 + world * (int) (i % 7));
                                        free(buf);
                                        free(t);
                                        return -EIO;
                                }
                }
                double sum = 0;
                for (int i = 0; i < opt.bench_iters; i++)
                        sum += (double) t[i];
                for (int i = 1; i < opt.bench_iters; i++)         /* insertion sort: small */
                        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
                                int64_t x = t[j];
                                t[j] = t[j - 1];
                                t[j - 1] = x;
                        }
                double mean = sum / opt.bench_iters / 1e3;
                if (rank == 0)
                        printf("%-10zu %-10s %12.2f %12.2f %12.3f\n", n * 4, coll->ops->name, mean,
                               (double) t[opt.bench_iters / 2] / 1e3,
                               2.0 * (world - 1) / world * (double) (n * 4) / (mean * 1e3));
                free(buf);
                free(t);
        }
        fflush(stdout);
        return 0;
}

int main(int argc, char **argv) {
        struct rm_worker *w = NULL;
        struct st_folder *st = NULL;
        struct backend *b = NULL;
        struct collective *coll = NULL;
        struct shmring_tx *sched_tx = NULL, *results_tx = NULL;
        struct shmring_rx *sched_rx = NULL, *results_rx = NULL;
        struct llama_config cfg = { 0 };
        struct llama_shard shard = { 0 };
        struct backend_opts bo = { 0 };
        FILE *out = stdout, *step_log = NULL, *logits_out = NULL;
        int in_fd = -1, rank = 0, world = 1, local_world = 1, r;
        bool use_gpu = false, shared_gpu = false;
        char err[1024] = "";
        int64_t start_ns = mono_ns();

        if (parse_options(argc, argv) < 0)
                return 2;

        r = rm_worker_open(&w);
        if (r == -ENXIO) {
                const char *ws = getenv("WORLD_SIZE");
                if (ws && strcmp(ws, "1") != 0) {
                        fprintf(stderr, "ringmaster-engine: WORLD_SIZE=%s but not under ringmaster: start the ranks with "
                                        "'ringmaster run -n %s -- ringmaster-engine ...'\n",
                                ws, ws);
                        return 2;
                }
                w = NULL;
        } else if (r < 0) {
                fprintf(stderr, "ringmaster-engine: joining the run: %s\n", rm_last_error());
                return 1;
        } else {
                rank = (int) rm_worker_rank(w);
                world = (int) rm_worker_world_size(w);
                local_world = (int) rm_worker_local_world_size(w);
        }
        my_rank = rank;
        timeline_mark(&timeline, "start");
        if (opt.fail_how != FAIL_NONE && opt.fail_rank == rank && strcmp(opt.fail_at, "start") == 0)
                inject("start");

        use_gpu = opt.device == DEVICE_GPU;
#ifdef HAVE_CUDA
        /* auto: the GPU when every rank of this host has one of its own (NCCL refuses two ranks on one). */
        if (opt.device == DEVICE_AUTO && !opt.bench_allreduce) {
                int ndev = gpu_device_count();
                use_gpu = ndev >= local_world;
                if (ndev > 0 && !use_gpu && rank == 0)
                        fprintf(stderr, "ringmaster-engine: %d GPU%s for %d ranks on this host: running on the CPU "
                                        "(--device gpu to insist)\n",
                                ndev, ndev == 1 ? "" : "s", local_world);
        }
#endif
        if (use_gpu) {
#ifdef HAVE_CUDA
                phase("cuda-init");
                int ndev = gpu_device_count();
                if (ndev <= 0) {
                        fprintf(stderr, "ringmaster-engine: rank %d: --device gpu, but no CUDA device is visible\n", rank);
                        r = -ENODEV;
                        goto out;
                }
                bo.device = (int) (w ? rm_worker_local_rank(w) : 0) % ndev;
                /* Fewer GPUs than ranks here: they share (NCCL refuses that; the custom all-reduce takes it). */
                shared_gpu = ndev < local_world;
                if (shared_gpu && rank == 0)
                        fprintf(stderr, "ringmaster-engine: %d ranks share %d GPU%s on this host: the custom all-reduce, "
                                        "without NCCL\n",
                                local_world, ndev, ndev == 1 ? "" : "s");
                r = gpu_init_device(bo.device, err, sizeof(err));
                if (r < 0) {
                        fprintf(stderr, "ringmaster-engine: rank %d: %s\n", rank, err);
                        goto out;
                }
#else
                fprintf(stderr, "ringmaster-engine: --device gpu, but this build has no GPU path (configure found no "
                                "CUDA toolkit: ./configure --with-cuda=DIR)\n");
                r = -EOPNOTSUPP;
                goto out;
#endif
        }

        if (opt.model) {
                phase("load-weights");
                r = llama_config_read(opt.model, &cfg, err, sizeof(err));
                if (r >= 0)
                        r = llama_shard_for(&cfg, rank, world, &shard, err, sizeof(err));
                if (r >= 0)
                        r = st_open_folder(opt.model, &st, err, sizeof(err));
                if (r < 0) {
                        fprintf(stderr, "ringmaster-engine: rank %d: %s\n", rank, err);
                        goto out;
                }
                bo.max_slots = opt.max_batch;
                bo.max_seq_len = opt.max_seq_len ? opt.max_seq_len
                                                 : (cfg.max_positions < 4096 ? cfg.max_positions : 4096);
                bo.max_step_tokens = opt.max_step_tokens;
                bo.threads = opt.threads ? opt.threads : (cpus_available() / local_world > 0 ? cpus_available() / local_world : 1);
                bo.progress = progress;
                bo.cuda_graphs = !opt.no_cuda_graphs;
                bo.profile_kernels = opt.profile_kernels;
                bo.rank = rank;
                if (use_gpu)
                        r = backend_gpu_new(&cfg, &shard, st, NULL, &bo, &b, err, sizeof(err));
                else
                        r = backend_cpu_new(&cfg, &shard, st, NULL, &bo, &b, err, sizeof(err));
                if (r < 0) {
                        fprintf(stderr, "ringmaster-engine: rank %d: loading %s: %s\n", rank, opt.model, err);
                        goto out;
                }
                st = st_close(st);            /* the shard is copied: unmap the files */
        }

        phase(use_gpu ? "nccl-init" : "allreduce-init");
        if (w && world > 1) {
                struct shmring *seg = rm_worker_segment(w);
                int64_t tmo = (int64_t) (opt.collective_timeout * 1e9);
                /* Between steps a rank waits for the next message: spinning keeps that wait at
                   the cache line's latency instead of a futex wake-up, where a core can be spared. */
                int spin_us = opt.spin_us >= 0 ? opt.spin_us
                              : cpus_available() >= local_world * (use_gpu ? 1 : (bo.threads > 0 ? bo.threads : 1)) ? 2000
                                                                                                          : 0;
                struct shmring_port_opts po = { .index = -1, .spin_ns = spin_us > 0 ? (int64_t) spin_us * 1000 : 0 };
                if (rank == 0) {
                        r = shmring_tx_open(seg, RM_CHANNEL_SCHED, &po, &sched_tx);
                        if (r >= 0)
                                r = shmring_rx_open(seg, RM_CHANNEL_RESULTS, &po, &results_rx);
                } else {
                        r = shmring_rx_open(seg, RM_CHANNEL_SCHED, &po, &sched_rx);
                        if (r >= 0)
                                r = shmring_tx_open(seg, RM_CHANNEL_RESULTS, &po, &results_tx);
                }
                if (r < 0) {
                        fprintf(stderr, "ringmaster-engine: rank %d: opening the run's channels: %s\n", rank, strerror(-r));
                        goto out;
                }
                if (use_gpu) {
#ifdef HAVE_CUDA
                        /* The largest all-reduce: a step's hidden states (fp32 partial sums), so that none needs NCCL. */
                        size_t max_bytes = opt.model ? (size_t) opt.max_step_tokens * (size_t) cfg.hidden * 4 : 0;
                        r = gpu_collective_new(w, opt.allreduce, shared_gpu, max_bytes, tmo, &coll, err, sizeof(err));
#endif
                } else {
                        struct shm_allreduce_opts so = {
                                .two_shot_min_bytes = opt.two_shot_min,
                                .timeout_ns = tmo,
                                .idle = heartbeat,
                        };
                        if (strcmp(opt.allreduce, "one-shot") == 0)
                                so.algo = SHM_ALLREDUCE_ONE_SHOT;
                        else if (strcmp(opt.allreduce, "two-shot") == 0)
                                so.algo = SHM_ALLREDUCE_TWO_SHOT;
                        else if (strcmp(opt.allreduce, "auto") != 0) {
                                fprintf(stderr, "ringmaster-engine: --allreduce on the CPU is auto, one-shot or two-shot, "
                                                "not '%s'\n",
                                        opt.allreduce);
                                r = -EINVAL;
                                goto out;
                        }
                        r = collective_shm_new(w, &so, &coll, err, sizeof(err));
                }
                if (r < 0) {
                        fprintf(stderr, "ringmaster-engine: rank %d: %s\n", rank, err);
                        goto out;
                }
                if (rank == 0) {
                        r = shmring_tx_wait_readers(sched_tx, (uint32_t) world - 1, tmo);
                        if (r < world - 1) {
                                fprintf(stderr, "ringmaster-engine: rank 0: only %d of %d ranks attached to the step "
                                                "channel within the collective timeout\n",
                                        r < 0 ? 0 : r, world - 1);
                                r = -ETIMEDOUT;
                                goto out;
                        }
                }
        } else {
                struct shm_allreduce_opts so = { 0 };
                r = collective_shm_new(NULL, &so, &coll, err, sizeof(err));
                if (r < 0)
                        goto out;
        }
        if (b)
                b->coll = coll;

        phase("warmup");
        {
                /* The collective must give the known sum before anything depends on it. */
                float check[64];
                for (int i = 0; i < 64; i++)
                        check[i] = (float) (rank + 1);
#ifdef HAVE_CUDA
                if (use_gpu && world > 1) {
                        r = gpu_collective_check(coll, rank, world, err, sizeof(err));
                        if (r < 0) {
                                fprintf(stderr, "ringmaster-engine: rank %d: %s\n", rank, err);
                                goto out;
                        }
                }
#endif
                if (!use_gpu) {
                        r = collective_allreduce(coll, check, 64, COLL_F32, NULL);
                        if (r < 0 || check[0] != (float) (world * (world + 1) / 2) || check[63] != check[0]) {
                                fprintf(stderr, "ringmaster-engine: rank %d: the warm-up all-reduce %s\n", rank,
                                        r < 0 ? collective_error(coll) : "gave a wrong sum");
                                r = r < 0 ? r : -EIO;
                                goto out;
                        }
                }
                if (b) {
                        struct step_seq seq = { .slot = 0, .pos = 0, .n_tokens = 1, .sample = 1 };
                        int32_t tok = 0;
                        struct result_sample smp;
                        struct step_output o = { .samples = &smp };
                        r = b->ops->forward(b, &seq, 1, &tok, 1, &o);
                        if (r < 0) {
                                fprintf(stderr, "ringmaster-engine: rank %d: warm-up step: %s\n", rank, b->error);
                                goto out;
                        }
                }
        }
        rm_phase_end("warmup");
        rm_ready();
        timeline_mark(&timeline, "ready");

        if (opt.bench_allreduce) {
                r = bench_allreduce(coll, rank, world);
                goto out;
        }

        timeline_mark(&timeline, "serve");
        if (rank == 0) {
                if (strcmp(opt.requests, "-") == 0)
                        in_fd = STDIN_FILENO;
                else if ((in_fd = open(opt.requests, O_RDONLY | O_CLOEXEC)) < 0) {
                        r = -errno;
                        fprintf(stderr, "ringmaster-engine: --requests %s: %s\n", opt.requests, strerror(errno));
                        goto out;
                }
                if (opt.output && !(out = fopen(opt.output, "we"))) {
                        r = -errno;
                        fprintf(stderr, "ringmaster-engine: --output %s: %s\n", opt.output, strerror(errno));
                        goto out;
                }
                if (opt.step_log && !(step_log = fopen(opt.step_log, "we"))) {
                        r = -errno;
                        fprintf(stderr, "ringmaster-engine: --step-log %s: %s\n", opt.step_log, strerror(errno));
                        goto out;
                }
                if (opt.logits_out && !(logits_out = fopen(opt.logits_out, "we"))) {
                        r = -errno;
                        fprintf(stderr, "ringmaster-engine: --logits-out %s: %s\n", opt.logits_out, strerror(errno));
                        goto out;
                }
        }
        struct serve_args sa = {
                .backend = b,
                .rank = rank,
                .world = world,
                .sched_tx = sched_tx,
                .results_rx = results_rx,
                .sched_rx = sched_rx,
                .results_tx = results_tx,
                .timeline = &timeline,
                .start_ns = start_ns,
                .step_timeout_ns = (int64_t) (opt.step_timeout * 1e9),
                .in_fd = in_fd,
                .out = out,
                .step_log = step_log,
                .logits_out = logits_out,
                .summary = opt.quiet ? NULL : stderr,
                .sched = {
                        .max_slots = opt.max_batch,
                        .max_seq_len = bo.max_seq_len,
                        .max_step_tokens = opt.max_step_tokens,
                        .vocab = cfg.vocab,
                        .n_eos = opt.ignore_eos ? 0 : cfg.n_eos,
                        .eos = cfg.eos,
                        .default_max_new_tokens = opt.max_new_tokens,
                },
                .at_step = at_step,
                .heartbeat = heartbeat,
        };
        r = rank == 0 ? serve_rank0(&sa) : serve_worker(&sa);
        rm_stopping();

out:
        if (step_log)
                fclose(step_log);
        if (logits_out)
                fclose(logits_out);
        if (out && out != stdout)
                fclose(out);
        if (in_fd > STDIN_FILENO)
                close(in_fd);
        b = backend_free(b);
        coll = collective_free(coll);
        sched_tx = shmring_tx_close(sched_tx);
        results_tx = shmring_tx_close(results_tx);
        sched_rx = shmring_rx_close(sched_rx);
        results_rx = shmring_rx_close(results_rx);
        st_close(st);
        rm_worker_close(w);
        if (r == -EBADMSG)
                return 65;            /* some requests were rejected (each one answered with its error) */
        return r < 0 ? 1 : 0;
}

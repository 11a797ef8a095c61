/* SPDX-License-Identifier: MIT */
/*
 * shmring-bench: measures libshmring against the baselines that bound it,
 * on this machine, in one run, and checks the figures against the targets
 * of the foundation issue.  See docs/bench-shmring.md.
 */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define EXIT_USAGE 2

/* ------------------------------------------------------------ machine */

struct cpu_topology {
        int cpu;
        int package;
        int node;
        bool primary;                      /* the first hardware thread of its core */
};

struct machine {
        char cpu_model[128];
        long cpus_online;
        unsigned cpus_allowed;
        unsigned sockets;
        unsigned numa_nodes;
        bool virtualized;
        struct utsname uts;
        char clocksource[32];
        double clock_read_ns;
        char date[32];
        double loadavg;                    /* runnable tasks, last minute, at the start */
        cpu_set_t allowed;
};

static int read_line(const char *path, char *buf, size_t size) {
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return -errno;
        if (!fgets(buf, (int) size, f)) {
                fclose(f);
                return -ENODATA;
        }
        fclose(f);
        n = strlen(buf);
        while (n > 0 && isspace((unsigned char) buf[n - 1]))
                buf[--n] = '\0';
        return 0;
}

static int read_cpu_int(int cpu, const char *file, int fallback) {
        char path[128], buf[64];

        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, file);
        if (read_line(path, buf, sizeof(buf)) < 0)
                return fallback;
        return atoi(buf);
}

static int cpu_node(int cpu) {
        char path[64];
        struct dirent *de;
        DIR *d;
        int node = 0;

        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d", cpu);
        d = opendir(path);
        if (!d)
                return 0;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, "node", 4) == 0 && isdigit((unsigned char) de->d_name[4])) {
                        node = atoi(de->d_name + 4);
                        break;
                }
        closedir(d);
        return node;
}

static struct cpu_topology cpu_topology(int cpu) {
        char path[128], buf[256];
        struct cpu_topology t = { .cpu = cpu, .primary = true };

        t.package = read_cpu_int(cpu, "physical_package_id", 0);
        t.node = cpu_node(cpu);
        /* "0,64" or "0-1": the first number is the core's first thread. */
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", cpu);
        if (read_line(path, buf, sizeof(buf)) == 0)
                t.primary = atoi(buf) == cpu;
        return t;
}

static double measure_clock_read_ns(void) {
        enum { READS = 200000 };
        uint64_t start = bench_now_ns();

        for (unsigned i = 0; i < READS; i++)
                (void) bench_now_ns();
        return (double) (bench_now_ns() - start) / READS;
}

static void machine_describe(struct machine *m) {
        char line[512];
        FILE *f;
        DIR *d;
        struct dirent *de;
        int packages[BENCH_MAX_CPUS];
        time_t now = time(NULL);
        struct tm tm;

        snprintf(m->cpu_model, sizeof(m->cpu_model), "unknown");
        f = fopen("/proc/cpuinfo", "re");
        if (f) {
                bool have_model = false;

                while (fgets(line, sizeof(line), f)) {
                        char *colon = strchr(line, ':');
                        char *value;

                        if (!colon)
                                continue;
                        value = colon + 1 + strspn(colon + 1, " \t");
                        value[strcspn(value, "\n")] = '\0';
                        if (!have_model && (strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0)) {
                                snprintf(m->cpu_model, sizeof(m->cpu_model), "%s", value);
                                have_model = true;
                        }
                        if (strncmp(line, "flags", 5) == 0 && strstr(value, " hypervisor"))
                                m->virtualized = true;
                }
                fclose(f);
        }
        m->cpus_online = sysconf(_SC_NPROCESSORS_ONLN);
        CPU_ZERO(&m->allowed);
        if (sched_getaffinity(0, sizeof(m->allowed), &m->allowed) < 0)
                CPU_SET(0, &m->allowed);
        m->cpus_allowed = (unsigned) CPU_COUNT(&m->allowed);

        m->sockets = 0;
        for (int cpu = 0; cpu < BENCH_MAX_CPUS && cpu < m->cpus_online * 4; cpu++) {
                char path[96];
                int package;
                bool seen = false;

                snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
                if (read_line(path, line, sizeof(line)) < 0)
                        continue;
                package = atoi(line);
                for (unsigned i = 0; i < m->sockets; i++)
                        seen |= packages[i] == package;
                if (!seen)
                        packages[m->sockets++] = package;
        }
        if (m->sockets == 0)
                m->sockets = 1;

        m->numa_nodes = 0;
        d = opendir("/sys/devices/system/node");
        if (d) {
                while ((de = readdir(d)))
                        if (strncmp(de->d_name, "node", 4) == 0 && isdigit((unsigned char) de->d_name[4]))
                                m->numa_nodes++;
                closedir(d);
        }
        if (m->numa_nodes == 0)
                m->numa_nodes = 1;

        if (uname(&m->uts) < 0)
                memset(&m->uts, 0, sizeof(m->uts));
        if (read_line("/sys/devices/system/clocksource/clocksource0/current_clocksource", m->clocksource,
                      sizeof(m->clocksource)) < 0)
                snprintf(m->clocksource, sizeof(m->clocksource), "unknown");
        m->clock_read_ns = measure_clock_read_ns();
        if (read_line("/proc/loadavg", line, sizeof(line)) == 0)
                m->loadavg = strtod(line, NULL);
        gmtime_r(&now, &tm);
        strftime(m->date, sizeof(m->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/*
 * The default CPUs, best first: one core per process (the first hardware
 * thread of each core), from the NUMA node and socket with the most allowed
 * cores, CPU 0 (which takes the most interrupts) last among those; then the
 * other nodes' cores; then the second threads of cores.
 */
static int compare_cpu(const void *a, const void *b) {
        int x = *(const int *) a, y = *(const int *) b;

        return (x == 0) - (y == 0) ?: x - y;
}

static void choose_default_cpus(const struct machine *m, struct bench_config *cfg) {
        static struct cpu_topology topo[BENCH_MAX_CPUS];
        unsigned n = 0, best = 0, best_count = 0;
        int *out = cfg->cpus;

        for (int cpu = 0; cpu < BENCH_MAX_CPUS; cpu++)
                if (CPU_ISSET(cpu, &m->allowed))
                        topo[n++] = cpu_topology(cpu);

        for (unsigned i = 0; i < n; i++) {
                unsigned count = 0;

                for (unsigned j = 0; j < n; j++)
                        count += topo[j].primary && topo[j].node == topo[i].node &&
                                 topo[j].package == topo[i].package;
                if (count > best_count) {
                        best_count = count;
                        best = i;
                }
        }

        cfg->n_cpus = 0;
        for (unsigned pass = 0; pass < 3; pass++) {
                unsigned first = cfg->n_cpus;

                for (unsigned i = 0; i < n; i++) {
                        bool home = topo[i].node == topo[best].node && topo[i].package == topo[best].package;

                        if ((pass == 0 && topo[i].primary && home) || (pass == 1 && topo[i].primary && !home) ||
                            (pass == 2 && !topo[i].primary))
                                out[cfg->n_cpus++] = topo[i].cpu;
                }
                if (pass == 0)
                        qsort(out + first, cfg->n_cpus - first, sizeof(int), compare_cpu);
        }
}

/* "0-3,8,10-11" */
static int parse_cpus(const char *text, const struct machine *m, struct bench_config *cfg) {
        const char *p = text;

        cfg->n_cpus = 0;
        while (*p) {
                char *end;
                long first, last;

                first = strtol(p, &end, 10);
                if (end == p || first < 0)
                        goto invalid;
                last = first;
                if (*end == '-') {
                        p = end + 1;
                        last = strtol(p, &end, 10);
                        if (end == p || last < first)
                                goto invalid;
                }
                for (long cpu = first; cpu <= last; cpu++) {
                        if (cpu >= BENCH_MAX_CPUS || !CPU_ISSET((int) cpu, &m->allowed)) {
                                fprintf(stderr, "shmring-bench: --cpus: CPU %ld is not one this process may run on "
                                        "(see taskset -p %d)\n", cpu, (int) getpid());
                                return -EINVAL;
                        }
                        for (unsigned i = 0; i < cfg->n_cpus; i++)
                                if (cfg->cpus[i] == cpu) {
                                        fprintf(stderr, "shmring-bench: --cpus: CPU %ld is listed twice\n", cpu);
                                        return -EINVAL;
                                }
                        cfg->cpus[cfg->n_cpus++] = (int) cpu;
                }
                if (*end == ',')
                        end++;
                else if (*end)
                        goto invalid;
                p = end;
        }
        if (cfg->n_cpus == 0)
                goto invalid;
        return 0;
invalid:
        fprintf(stderr, "shmring-bench: --cpus: '%s' is not a CPU list like 0-3,8\n", text);
        return -EINVAL;
}

/* ------------------------------------------------------------- targets */

enum target_status { TARGET_MET, TARGET_NOT_MET, TARGET_NA };

struct target {
        const char *id;
        const char *description;
        enum target_status status;
        char detail[400];
};

static const char *target_status_name(enum target_status s) {
        return s == TARGET_MET ? "met" : s == TARGET_NOT_MET ? "not met" : "n/a";
}

/* The row the target needs, or NULL with the target marked n/a. */
static const struct bench_row *target_row(struct target *t, const char *id) {
        const struct bench_row *row = bench_row_find(id);

        if (!row) {
                t->status = TARGET_NA;
                snprintf(t->detail, sizeof(t->detail), "%s was not measured in this run (--only)", id);
                return NULL;
        }
        if (row->status != BENCH_OK) {
                t->status = TARGET_NA;
                snprintf(t->detail, sizeof(t->detail), "%s: %s", id, row->reason);
                return NULL;
        }
        return row;
}

static void stream_vs_naive(struct target *t, const char *shm_id, const char *naive_id) {
        const struct bench_row *stream, *naive;

        if ((stream = target_row(t, shm_id)) && (naive = target_row(t, naive_id))) {
                double rate = (double) stream->messages / stream->seconds;
                double base = (double) naive->messages / naive->seconds;

                t->status = rate >= 0.8 * base ? TARGET_MET : TARGET_NOT_MET;
                snprintf(t->detail, sizeof(t->detail), "%.2f vs %.2f M msg/s (%.0f%%)", rate / 1e6, base / 1e6,
                         100 * rate / base);
        }
}

static unsigned evaluate_targets(struct target *targets) {
        const struct bench_row *shm, *cache, *unix_dgram, *wake, *stream, *bcast;
        char a[32], b[32], c[32];
        unsigned n = 0;
        struct target *t;

        t = &targets[n++];
        *t = (struct target) { .id = "spin_vs_cacheline",
                               .description = "one-way p50, 64 B spin <= 2 x cache-line ping-pong" };
        if ((shm = target_row(t, "shmring_64_spin")) && (cache = target_row(t, "cacheline"))) {
                t->status = shm->latency.p50 <= 2 * cache->latency.p50 ? TARGET_MET : TARGET_NOT_MET;
                snprintf(t->detail, sizeof(t->detail), "%s vs 2 x %s = %s (%.2f x)",
                         bench_format_ns(shm->latency.p50, a, sizeof(a)),
                         bench_format_ns(cache->latency.p50, b, sizeof(b)),
                         bench_format_ns(2 * cache->latency.p50, c, sizeof(c)),
                         shm->latency.p50 / cache->latency.p50);
        }

        t = &targets[n++];
        *t = (struct target) { .id = "spin_vs_unix",
                               .description = "one-way p50, 64 B spin >= 10 x faster than a unix socket" };
        if ((shm = target_row(t, "shmring_64_spin")) && (unix_dgram = target_row(t, "unix_dgram_64"))) {
                double ratio = unix_dgram->latency.p50 / shm->latency.p50;

                t->status = ratio >= 10 ? TARGET_MET : TARGET_NOT_MET;
                snprintf(t->detail, sizeof(t->detail), "%s vs %s: %.1f x faster",
                         bench_format_ns(shm->latency.p50, a, sizeof(a)),
                         bench_format_ns(unix_dgram->latency.p50, b, sizeof(b)), ratio);
        }

        t = &targets[n++];
        *t = (struct target) { .id = "blocking_wake", .description = "blocking-mode wake p50 (64 B) <= 5 us" };
        if ((wake = target_row(t, "shmring_64_blocking")) && wake->shared_cpus) {
                t->status = TARGET_NA;
                snprintf(t->detail, sizeof(t->detail), "both processes ran on one CPU (%s): a context switch, "
                         "not a wake across CPUs", bench_format_ns(wake->latency.p50, a, sizeof(a)));
        } else if (wake) {
                t->status = wake->latency.p50 <= 5000 ? TARGET_MET : TARGET_NOT_MET;
                snprintf(t->detail, sizeof(t->detail), "%s", bench_format_ns(wake->latency.p50, a, sizeof(a)));
        }

        t = &targets[n++];
        *t = (struct target) { .id = "stream_64", .description = ">= 20 M msg/s at 64 B one-to-one" };
        if ((stream = target_row(t, "shmring_stream_64"))) {
                double rate = (double) stream->messages / stream->seconds;

                t->status = rate >= 20e6 ? TARGET_MET : TARGET_NOT_MET;
                snprintf(t->detail, sizeof(t->detail), "%.2f M msg/s", rate / 1e6);
        }

        t = &targets[n++];
        *t = (struct target) { .id = "stream_vs_naive",
                               .description = "64 B stream >= 80% of a naive spin ring's, copying, same run" };
        stream_vs_naive(t, "shmring_stream_64", "naive_stream_64");

        t = &targets[n++];
        *t = (struct target) { .id = "stream_vs_naive_zc",
                               .description = "64 B stream >= 80% of a naive spin ring's, zero-copy, same run" };
        stream_vs_naive(t, "shmring_stream_64_zc", "naive_stream_64_zc");

        t = &targets[n++];
        *t = (struct target) { .id = "broadcast_8",
                               .description = "broadcast 1->8 p99 <= 2 us, spin (where >= 9 cores exist)" };
        if ((bcast = target_row(t, "broadcast_spin_8"))) {
                t->status = bcast->latency.p99 <= 2000 ? TARGET_MET : TARGET_NOT_MET;
                snprintf(t->detail, sizeof(t->detail), "%s (slowest reader of each message: p99 %s)",
                         bench_format_ns(bcast->latency.p99, a, sizeof(a)),
                         bench_format_ns(bcast->slowest.p99, b, sizeof(b)));
        }
        return n;
}

/* ---------------------------------------------------------------- json */

struct json {
        FILE *f;
        unsigned depth;
        bool first[16];
};

static void json_string_value(FILE *f, const char *s) {
        fputc('"', f);
        for (; s && *s; s++) {
                unsigned char ch = (unsigned char) *s;

                if (ch == '"' || ch == '\\')
                        fprintf(f, "\\%c", ch);
                else if (ch == '\n')
                        fputs("\\n", f);
                else if (ch < 0x20 || ch == 0x7f)
                        fprintf(f, "\\u%04x", ch);
                else
                        fputc(ch, f);
        }
        fputc('"', f);
}

static void json_key(struct json *j, const char *key) {
        if (!j->first[j->depth])
                fputc(',', j->f);
        j->first[j->depth] = false;
        fprintf(j->f, "\n%*s", (int) j->depth * 2, "");
        if (key) {
                json_string_value(j->f, key);
                fputs(": ", j->f);
        }
}

static void json_open(struct json *j, const char *key, char bracket) {
        json_key(j, key);
        fputc(bracket, j->f);
        j->first[++j->depth] = true;
}

static void json_close(struct json *j, char bracket) {
        bool empty = j->first[j->depth];

        j->depth--;
        if (!empty)
                fprintf(j->f, "\n%*s", (int) j->depth * 2, "");
        fputc(bracket, j->f);
}

static void json_str(struct json *j, const char *key, const char *value) {
        json_key(j, key);
        if (value)
                json_string_value(j->f, value);
        else
                fputs("null", j->f);
}

static void json_num(struct json *j, const char *key, double value) {
        json_key(j, key);
        if (value != value || value > 1e300 || value < -1e300)
                fputs("null", j->f);
        else
                fprintf(j->f, "%.10g", value);
}

static void json_uint(struct json *j, const char *key, uint64_t value) {
        json_key(j, key);
        fprintf(j->f, "%" PRIu64, value);
}

static void json_bool(struct json *j, const char *key, bool value) {
        json_key(j, key);
        fputs(value ? "true" : "false", j->f);
}

static void json_stats(struct json *j, const char *key, const struct bench_stats *s) {
        json_open(j, key, '{');
        json_uint(j, "samples", s->samples);
        json_num(j, "p50_ns", s->p50);
        json_num(j, "p99_ns", s->p99);
        json_num(j, "p999_ns", s->p999);
        json_num(j, "min_ns", s->min);
        json_num(j, "max_ns", s->max);
        json_num(j, "mean_ns", s->mean);
        json_close(j, '}');
}

static void json_row(struct json *j, const struct bench_row *row) {
        json_open(j, row->id, '{');
        json_str(j, "label", row->label);
        json_str(j, "transport", row->transport);
        json_str(j, "mode", row->mode);
        json_uint(j, "size", row->size);
        if (strcmp(row->section, "broadcast") == 0)
                json_uint(j, "readers", row->readers);
        json_str(j, "status", row->status == BENCH_OK ? "ok" : row->status == BENCH_NA ? "n/a" : "error");
        if (row->status != BENCH_OK)
                json_str(j, "reason", row->reason);
        json_str(j, "cpus", row->cpus);
        json_bool(j, "shared_cpus", row->shared_cpus);
        if (row->status == BENCH_OK)
                json_uint(j, "preemptions", row->preemptions);
        if (row->status == BENCH_OK && row->is_rate) {
                json_uint(j, "messages", row->messages);
                json_uint(j, "bytes", row->bytes);
                json_num(j, "seconds", row->seconds);
                json_num(j, "messages_per_s", (double) row->messages / row->seconds);
                json_num(j, "mib_per_s", (double) row->bytes / (1024.0 * 1024.0) / row->seconds);
        } else if (row->status == BENCH_OK) {
                /* The one-way figures, flat, and again as an object. */
                json_uint(j, "samples", row->latency.samples);
                json_num(j, "p50_ns", row->latency.p50);
                json_num(j, "p99_ns", row->latency.p99);
                json_num(j, "p999_ns", row->latency.p999);
                json_num(j, "min_ns", row->latency.min);
                json_num(j, "max_ns", row->latency.max);
                json_num(j, "mean_ns", row->latency.mean);
                if (strcmp(row->section, "broadcast") == 0)
                        json_stats(j, "slowest_reader", &row->slowest);
        }
        json_close(j, '}');
}

static int write_json(FILE *f, const struct bench_config *cfg, const struct machine *m, int argc, char **argv,
                      const struct target *targets, unsigned n_targets) {
        static const char *const sections[] = { "latency", "broadcast", "throughput" };
        struct json j = { .f = f, .first = { true } };
        char command[4096] = "";
        size_t used = 0;

        for (int i = 0; i < argc && used < sizeof(command); i++)
                used += (size_t) snprintf(command + used, sizeof(command) - used, "%s%s", i ? " " : "", argv[i]);

        json_open(&j, NULL, '{');
        json_str(&j, "program", "shmring-bench");
        json_str(&j, "version", PACKAGE_VERSION);
        json_str(&j, "date", m->date);
        json_str(&j, "command_line", command);
        json_open(&j, "argv", '[');
        for (int i = 0; i < argc; i++)
                json_str(&j, NULL, argv[i]);
        json_close(&j, ']');
        json_str(&j, "mode", cfg->mode_name);

        json_open(&j, "settings", '{');
        json_uint(&j, "spin_samples", cfg->spin_samples);
        json_uint(&j, "blocking_samples", cfg->blocking_samples);
        json_uint(&j, "broadcast_messages", cfg->broadcast_messages);
        json_uint(&j, "warmup", cfg->warmup);
        json_uint(&j, "stream_messages", cfg->stream_messages);
        json_uint(&j, "big_messages", cfg->big_messages);
        json_close(&j, '}');

        json_open(&j, "machine", '{');
        json_str(&j, "cpu_model", m->cpu_model);
        json_uint(&j, "cpus_online", (uint64_t) m->cpus_online);
        json_uint(&j, "cpus_allowed", m->cpus_allowed);
        json_uint(&j, "sockets", m->sockets);
        json_uint(&j, "numa_nodes", m->numa_nodes);
        json_bool(&j, "virtualized", m->virtualized);
        json_str(&j, "kernel", m->uts.release);
        json_str(&j, "kernel_version", m->uts.version);
        json_str(&j, "arch", m->uts.machine);
        json_str(&j, "clocksource", m->clocksource);
        json_num(&j, "clock_read_ns", m->clock_read_ns);
        json_num(&j, "loadavg", m->loadavg);
        json_open(&j, "cpus_used", '[');
        for (unsigned i = 0; i < cfg->n_cpus; i++)
                json_uint(&j, NULL, (uint64_t) cfg->cpus[i]);
        json_close(&j, ']');
        json_close(&j, '}');

        for (unsigned s = 0; s < 3; s++) {
                json_open(&j, sections[s], '{');
                for (unsigned i = 0; i < bench_n_rows(); i++)
                        if (strcmp(bench_row_at(i)->section, sections[s]) == 0)
                                json_row(&j, bench_row_at(i));
                json_close(&j, '}');
        }

        json_open(&j, "targets", '[');
        for (unsigned i = 0; i < n_targets; i++) {
                json_open(&j, NULL, '{');
                json_str(&j, "id", targets[i].id);
                json_str(&j, "description", targets[i].description);
                json_str(&j, "status", target_status_name(targets[i].status));
                json_str(&j, "detail", targets[i].detail);
                json_close(&j, '}');
        }
        json_close(&j, ']');
        json_close(&j, '}');
        fputc('\n', f);
        return ferror(f) ? -EIO : 0;
}

/* ---------------------------------------------------------------- main */

static const struct {
        const char *name;
        unsigned bit;
        const char *what;
} section_names[] = {
        { "baselines", BENCH_SECTION_BASELINES, "cache-line, pipe, unix socket and eventfd ping-pongs" },
        { "pingpong", BENCH_SECTION_PINGPONG, "shmring one-way latency, 64 B and 4 KiB, spin and blocking" },
        { "broadcast", BENCH_SECTION_BROADCAST, "shmring 1 -> 1, 2, 4, 8 readers, spin and blocking" },
        { "throughput", BENCH_SECTION_THROUGHPUT, "streaming at 64 B and 1 MiB, shmring, a naive ring, pipe/socket" },
        { "oversubscribed", BENCH_SECTION_OVERSUBSCRIBED,
          "broadcast 1 -> 1, 2, 4, 8 under the auto, spin-50us and yield policies, on shared CPUs" },
};

/* Every row, by its id (the key in the JSON) and its section. */
static const struct {
        const char *id;
        unsigned section;
} row_ids[] = {
        { "cacheline", BENCH_SECTION_BASELINES },
        { "pipe_64", BENCH_SECTION_BASELINES },
        { "pipe_4096", BENCH_SECTION_BASELINES },
        { "unix_dgram_64", BENCH_SECTION_BASELINES },
        { "unix_dgram_4096", BENCH_SECTION_BASELINES },
        { "eventfd", BENCH_SECTION_BASELINES },
        { "shmring_64_spin", BENCH_SECTION_PINGPONG },
        { "shmring_4096_spin", BENCH_SECTION_PINGPONG },
        { "shmring_64_blocking", BENCH_SECTION_PINGPONG },
        { "shmring_4096_blocking", BENCH_SECTION_PINGPONG },
        { "broadcast_spin_1", BENCH_SECTION_BROADCAST },
        { "broadcast_spin_2", BENCH_SECTION_BROADCAST },
        { "broadcast_spin_4", BENCH_SECTION_BROADCAST },
        { "broadcast_spin_8", BENCH_SECTION_BROADCAST },
        { "broadcast_blocking_1", BENCH_SECTION_BROADCAST },
        { "broadcast_blocking_2", BENCH_SECTION_BROADCAST },
        { "broadcast_blocking_4", BENCH_SECTION_BROADCAST },
        { "broadcast_blocking_8", BENCH_SECTION_BROADCAST },
        { "broadcast_auto_1", BENCH_SECTION_OVERSUBSCRIBED },
        { "broadcast_auto_2", BENCH_SECTION_OVERSUBSCRIBED },
        { "broadcast_auto_4", BENCH_SECTION_OVERSUBSCRIBED },
        { "broadcast_auto_8", BENCH_SECTION_OVERSUBSCRIBED },
        { "broadcast_spin_50us_1", BENCH_SECTION_OVERSUBSCRIBED },
        { "broadcast_spin_50us_2", BENCH_SECTION_OVERSUBSCRIBED },
        { "broadcast_spin_50us_4", BENCH_SECTION_OVERSUBSCRIBED },
        { "broadcast_spin_50us_8", BENCH_SECTION_OVERSUBSCRIBED },
        { "broadcast_yield_1", BENCH_SECTION_OVERSUBSCRIBED },
        { "broadcast_yield_2", BENCH_SECTION_OVERSUBSCRIBED },
        { "broadcast_yield_4", BENCH_SECTION_OVERSUBSCRIBED },
        { "broadcast_yield_8", BENCH_SECTION_OVERSUBSCRIBED },
        { "shmring_stream_64", BENCH_SECTION_THROUGHPUT },
        { "shmring_stream_1m", BENCH_SECTION_THROUGHPUT },
        { "shmring_stream_64_zc", BENCH_SECTION_THROUGHPUT },
        { "naive_stream_64", BENCH_SECTION_THROUGHPUT },
        { "naive_stream_64_zc", BENCH_SECTION_THROUGHPUT },
        { "pipe_stream_64", BENCH_SECTION_THROUGHPUT },
        { "unix_dgram_stream_64", BENCH_SECTION_THROUGHPUT },
        { "pipe_stream_1m", BENCH_SECTION_THROUGHPUT },
};

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* --only a,b,c: section names and row ids. */
static int parse_only(const char *text, struct bench_config *cfg) {
        char *names = strdup(text), *save = NULL;
        int r = 0;

        if (!names)
                return -ENOMEM;
        cfg->sections = cfg->whole_sections = 0;
        cfg->n_only_rows = 0;
        for (char *name = strtok_r(names, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
                size_t i;

                for (i = 0; i < ELEMENTSOF(section_names); i++)
                        if (strcmp(name, section_names[i].name) == 0)
                                break;
                if (i < ELEMENTSOF(section_names)) {
                        cfg->sections |= section_names[i].bit;
                        cfg->whole_sections |= section_names[i].bit;
                        continue;
                }
                for (i = 0; i < ELEMENTSOF(row_ids); i++)
                        if (strcmp(name, row_ids[i].id) == 0)
                                break;
                if (i == ELEMENTSOF(row_ids) || cfg->n_only_rows == ELEMENTSOF(cfg->only_rows)) {
                        fprintf(stderr, "shmring-bench: --only: unknown section or row '%s' (sections: baselines, "
                                "pingpong, broadcast, throughput; rows: see --help)\n", name);
                        r = -EINVAL;
                        break;
                }
                cfg->sections |= row_ids[i].section;
                cfg->only_rows[cfg->n_only_rows++] = row_ids[i].id;
        }
        free(names);
        if (r == 0 && !cfg->sections) {
                fprintf(stderr, "shmring-bench: --only needs a section or row name\n");
                r = -EINVAL;
        }
        return r;
}

static void help(void) {
        printf("Usage: shmring-bench [OPTIONS]\n"
               "\n"
               "Measures libshmring's one-way latency, broadcast latency and throughput on this\n"
               "machine, beside baselines measured in the same run (a cache-line ping-pong, a pipe,\n"
               "a unix datagram socket, an eventfd), prints a table and checks the targets.\n"
               "\n"
               "  --quick        fewer samples (about 10-20 s on two cores)\n"
               "  --smoke        a handful of samples: checks that everything runs; figures are noise\n"
               "  --json FILE    also write every figure, the machine and the command line as JSON\n"
               "  --cpus LIST    the CPUs to use, best first, e.g. 2-9 or 4,6,8 (default: one core\n"
               "                 per process from one NUMA node and socket)\n"
               "  --only LIST    run only these sections (comma-separated):\n");
        for (size_t i = 0; i < ELEMENTSOF(section_names); i++)
                printf("                   %-14s %s\n", section_names[i].name, section_names[i].what);
        printf("                 or single rows, by their JSON name:");
        for (size_t i = 0; i < ELEMENTSOF(row_ids); i++)
                printf("%s%s", i % 4 == 0 ? "\n                   " : " ", row_ids[i].id);
        printf("\n  -h, --help     show this help\n"
               "\n"
               "Exit status: 0 when every figure was measured (targets met or not), 1 when a\n"
               "measurement failed, 2 on a usage error.\n");
}

static void set_mode(struct bench_config *cfg, const char *mode) {
        cfg->mode_name = mode;
        if (strcmp(mode, "smoke") == 0) {
                cfg->spin_samples = 200;
                cfg->blocking_samples = 200;
                cfg->broadcast_messages = 100;
                cfg->warmup = 20;
                cfg->stream_messages = 20000;
                cfg->big_messages = 8;
        } else if (strcmp(mode, "quick") == 0) {
                cfg->spin_samples = 20000;
                cfg->blocking_samples = 10000;
                cfg->broadcast_messages = 5000;
                cfg->warmup = 2000;
                cfg->stream_messages = 2000000;
                cfg->big_messages = 500;
        } else {
                cfg->spin_samples = 100000;
                cfg->blocking_samples = 100000;
                cfg->broadcast_messages = 50000;
                cfg->warmup = 10000;
                cfg->stream_messages = 20000000;
                cfg->big_messages = 4000;
        }
}

static void print_cpu_list(const struct bench_config *cfg, char *buf, size_t size) {
        size_t used = 0;

        buf[0] = '\0';
        for (unsigned i = 0; i < cfg->n_cpus && used + 16 < size; i++)
                used += (size_t) snprintf(buf + used, size - used, "%s%d", i ? "," : "", cfg->cpus[i]);
        if (cfg->n_cpus > 0 && used + 16 >= size)
                snprintf(buf + used, size - used, ",...");
}

int main(int argc, char **argv) {
        enum { OPT_QUICK = 0x100, OPT_SMOKE, OPT_JSON, OPT_CPUS, OPT_ONLY };
        static const struct option options[] = {
                { "quick", no_argument, NULL, OPT_QUICK },
                { "smoke", no_argument, NULL, OPT_SMOKE },
                { "json", required_argument, NULL, OPT_JSON },
                { "cpus", required_argument, NULL, OPT_CPUS },
                { "only", required_argument, NULL, OPT_ONLY },
                { "help", no_argument, NULL, 'h' },
                {}
        };
        static struct bench_config cfg;
        static struct machine machine;
        struct target targets[12];
        const char *json_path = NULL, *cpus_text = NULL;
        unsigned n_targets, failed = 0;
        char cpu_list[256], clock_text[32];
        FILE *json = NULL;
        int opt;

        set_mode(&cfg, "full");
        cfg.sections = cfg.whole_sections = BENCH_SECTION_ALL;
        cfg.worker_timeout_s = 120;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_QUICK:
                        set_mode(&cfg, "quick");
                        break;
                case OPT_SMOKE:
                        set_mode(&cfg, "smoke");
                        break;
                case OPT_JSON:
                        json_path = optarg;
                        break;
                case OPT_CPUS:
                        cpus_text = optarg;
                        break;
                case OPT_ONLY:
                        if (parse_only(optarg, &cfg) < 0)
                                return EXIT_USAGE;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                default:
                        fprintf(stderr, "Try 'shmring-bench --help'.\n");
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "shmring-bench: unexpected argument '%s'; try 'shmring-bench --help'.\n", argv[optind]);
                return EXIT_USAGE;
        }

        machine_describe(&machine);
        if (cpus_text) {
                if (parse_cpus(cpus_text, &machine, &cfg) < 0)
                        return EXIT_USAGE;
        } else {
                choose_default_cpus(&machine, &cfg);
        }
        /* Open the output now: a bad path fails before the run, not after it. */
        if (json_path) {
                json = fopen(json_path, "we");
                if (!json) {
                        fprintf(stderr, "shmring-bench: cannot write %s: %s\n", json_path, strerror(errno));
                        return EXIT_FAILURE;
                }
        }
        if (cfg.sections & (BENCH_SECTION_PINGPONG | BENCH_SECTION_BROADCAST | BENCH_SECTION_THROUGHPUT |
                            BENCH_SECTION_OVERSUBSCRIBED)) {
                char reason[512];

                if (bench_shmring_init(reason, sizeof(reason)) < 0) {
                        fprintf(stderr, "shmring-bench: %s\n", reason);
                        if (json)
                                fclose(json);
                        return EXIT_FAILURE;
                }
        }

        print_cpu_list(&cfg, cpu_list, sizeof(cpu_list));
        printf("shmring-bench %s, %s mode, %s\n", PACKAGE_VERSION, cfg.mode_name, machine.date);
        printf("machine: %s; %ld CPUs online, %u allowed, %u socket(s), %u NUMA node(s)%s\n", machine.cpu_model,
               machine.cpus_online, machine.cpus_allowed, machine.sockets, machine.numa_nodes,
               machine.virtualized ? "; virtual machine" : "");
        printf("kernel: %s %s %s; load average %.2f at the start%s\n", machine.uts.sysname, machine.uts.release,
               machine.uts.machine, machine.loadavg,
               machine.loadavg >= 0.5 ? " (other work runs here: spin rows will show it)" : "");
        printf("CPUs used, in order: %s%s\n", cpu_list, cpus_text ? " (--cpus)" : "");
        printf("clock: CLOCK_MONOTONIC (%s), %s a read; a ping-pong sample holds one read\n", machine.clocksource,
               bench_format_ns(machine.clock_read_ns, clock_text, sizeof(clock_text)));

        if (cfg.sections & (BENCH_SECTION_BASELINES | BENCH_SECTION_PINGPONG)) {
                bench_section_print("one-way latency (ping-pong round trip / 2)",
                                    "  samples        p50        p99      p99.9");
                if (cfg.sections & BENCH_SECTION_BASELINES)
                        bench_baseline_cacheline(&cfg);
                if (cfg.sections & BENCH_SECTION_PINGPONG)
                        bench_shmring_pingpong(&cfg);
                if (cfg.sections & BENCH_SECTION_BASELINES)
                        bench_baseline_blocking(&cfg);
        }
        if (cfg.sections & BENCH_SECTION_BROADCAST) {
                bench_section_print("broadcast one-way latency (receive - send)",
                                    "  samples        p50        p99      p99.9");
                bench_shmring_broadcast(&cfg);
        }
        if (cfg.sections & BENCH_SECTION_OVERSUBSCRIBED) {
                bench_section_print("broadcast on shared CPUs: auto, spin 50 us, yield policies",
                                    "  samples        p50        p99      p99.9");
                bench_shmring_oversubscribed(&cfg);
        }
        if (cfg.sections & BENCH_SECTION_THROUGHPUT) {
                bench_section_print("throughput (one writer, one reader)", "         rate");
                bench_shmring_throughput(&cfg);
                bench_baseline_throughput(&cfg);
        }

        n_targets = evaluate_targets(targets);
        printf("\ntargets\n");
        for (unsigned i = 0; i < n_targets; i++)
                printf("  %-8s %s: %s\n", target_status_name(targets[i].status), targets[i].description,
                       targets[i].detail);

        for (unsigned i = 0; i < bench_n_rows(); i++)
                failed += bench_row_at(i)->status == BENCH_ERROR;
        if (json) {
                int r = write_json(json, &cfg, &machine, argc, argv, targets, n_targets);

                if (fclose(json) != 0 || r < 0) {
                        fprintf(stderr, "shmring-bench: writing %s failed\n", json_path);
                        return EXIT_FAILURE;
                }
        }
        if (failed) {
                fprintf(stderr, "shmring-bench: %u measurement(s) failed (ERROR rows above)\n", failed);
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

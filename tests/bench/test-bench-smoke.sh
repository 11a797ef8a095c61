#!/bin/sh
# shmring-bench runs: a --smoke run (a handful of samples in every section)
# exits 0 and writes JSON that parses and holds every figure, the machine and
# the command line; usage errors exit 2.  No timing is asserted: the figures
# of a smoke run on a busy machine are noise.
set -u
bench="${top_builddir:?}/tests/bench/shmring-bench"
command -v python3 >/dev/null 2>&1 || { echo "python3 is missing: skipped"; exit 77; }

tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT

fail() {
        echo "FAIL: $*"
        exit 1
}

"$bench" --help > "$tmp/help" || fail "--help exited $?"
grep -q -- '--json FILE' "$tmp/help" || fail "--help does not describe --json"

"$bench" --only nosuch > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "--only nosuch exited $rc, not 2"
grep -q "unknown section or row 'nosuch'" "$tmp/out" || fail "--only nosuch: $(cat "$tmp/out")"

"$bench" --cpus 100000 > "$tmp/out" 2>&1
rc=$?
[ $rc -eq 2 ] || fail "--cpus 100000 exited $rc, not 2"

"$bench" --smoke --json "$tmp/bench.json" > "$tmp/table" 2>&1
rc=$?
cat "$tmp/table"
[ $rc -eq 0 ] || fail "shmring-bench --smoke exited $rc"
grep -q '^targets' "$tmp/table" || fail "no targets in the table"

python3 - "$tmp/bench.json" <<'EOF' || fail "the JSON is incomplete"
import json, sys

doc = json.load(open(sys.argv[1]))
problems = []

def need(obj, keys, where):
    for k in keys:
        if k not in obj:
            problems.append("%s: no %r" % (where, k))

need(doc, ["program", "version", "date", "command_line", "argv", "mode", "settings", "machine",
           "latency", "broadcast", "throughput", "targets"], "top level")
need(doc["machine"], ["cpu_model", "cpus_online", "cpus_allowed", "sockets", "numa_nodes", "kernel",
                      "arch", "clocksource", "clock_read_ns", "loadavg", "cpus_used"], "machine")
if doc["mode"] != "smoke":
    problems.append("mode is %r, not 'smoke'" % doc["mode"])
if "--smoke" not in doc["argv"] or "--smoke" not in doc["command_line"]:
    problems.append("the command line is not recorded")
settings = doc["settings"]
cpus = len(doc["machine"]["cpus_used"])

expected = {
    "latency": ["cacheline", "shmring_64_spin", "shmring_4096_spin", "shmring_64_blocking",
                "shmring_4096_blocking", "pipe_64", "pipe_4096", "unix_dgram_64", "unix_dgram_4096",
                "eventfd"],
    "broadcast": ["broadcast_%s_%d" % (m, n) for m in ("spin", "blocking", "auto", "spin_50us", "yield")
                  for n in (1, 2, 4, 8)],
    "throughput": ["shmring_stream_64", "shmring_stream_64_zc", "shmring_stream_1m", "naive_stream_64",
                   "naive_stream_64_zc", "pipe_stream_64", "unix_dgram_stream_64", "pipe_stream_1m"],
}
for section, ids in expected.items():
    for rid in ids:
        row = doc[section].get(rid)
        where = "%s.%s" % (section, rid)
        if row is None:
            problems.append(where + ": missing")
            continue
        need(row, ["label", "transport", "mode", "size", "status", "cpus"], where)
        status = row.get("status")
        if status == "n/a":
            # Only spin-mode rows that need more CPUs than there are may be n/a.
            needed = row.get("readers", 1) + 1
            if row.get("mode") != "spin" or cpus >= needed:
                problems.append("%s: n/a with %d CPUs: %s" % (where, cpus, row.get("reason")))
            continue
        if status != "ok":
            problems.append("%s: status %r: %s" % (where, status, row.get("reason")))
            continue
        need(row, ["preemptions", "shared_cpus"], where)
        if section == "throughput":
            need(row, ["messages", "bytes", "seconds", "messages_per_s", "mib_per_s"], where)
            if not row.get("messages_per_s", 0) > 0:
                problems.append(where + ": no rate")
        else:
            need(row, ["samples", "p50_ns", "p99_ns", "p999_ns", "min_ns", "max_ns", "mean_ns"], where)
            want = settings["broadcast_messages"] * row["readers"] if section == "broadcast" else \
                settings["spin_samples"] if row["mode"] == "spin" else settings["blocking_samples"]
            if row.get("samples") != want:
                problems.append("%s: %r samples, expected %d" % (where, row.get("samples"), want))
            if not 0 <= row["min_ns"] <= row["p50_ns"] <= row["p99_ns"] <= row["p999_ns"] <= row["max_ns"]:
                problems.append(where + ": percentiles out of order")
            if section == "broadcast":
                need(row, ["readers", "slowest_reader"], where)

ids = [t.get("id") for t in doc["targets"]]
if ids != ["spin_vs_cacheline", "spin_vs_unix", "blocking_wake", "stream_64", "stream_vs_naive",
           "stream_vs_naive_zc", "broadcast_8"]:
    problems.append("targets: %r" % ids)
for t in doc["targets"]:
    need(t, ["id", "description", "status", "detail"], "target %s" % t.get("id"))
    if t.get("status") not in ("met", "not met", "n/a"):
        problems.append("target %s: status %r" % (t.get("id"), t.get("status")))

for p in problems:
    print("JSON:", p)
sys.exit(1 if problems else 0)
EOF
echo "ok"

# SPDX-License-Identifier: MIT
"""ringmaster under a real srun.  Debian's Slurm runs on this one machine
from a folder the test owns: munged with its own key, slurmctld, and two
slurmd, nodes n1 and n2 (both this machine, on ports of their own).  Each
srun starts one ringmaster per node (-N2 --ntasks-per-node=1), which reads
its place in the job from the step's SLURM_* variables.  Cases:

  env    ringmaster run -n 2 on each node: every rank's RANK, LOCAL_RANK,
         WORLD_SIZE, GROUP_RANK..., MASTER_ADDR = n1 (the first host of the
         step's SLURM_STEP_NODELIST, n[1-2]) and the Slurm node it ran on
  kill   no store: rank 3 (node 1) raises while ranks 0-2 run;
         srun --kill-on-bad-exit=1 ends node 0's ringmaster too (SIGTERM), srun
         exits non-zero within seconds, no rank is left, and node 1's report
         names rank 3 and its exception
  store  --store etcd (Debian's etcd-server), without --kill-on-bad-exit: node 0
         stops by itself (exit 112) and its report names node 1, rank 3 and
         the cause
  gloo   with torch (RM_TORCH_PYTHONPATH): tests/multinode/worker.py's
         all-reduce across the two srun tasks (--master-addr 127.0.0.1: the
         names n1 and n2 do not resolve on this machine)

Skips (77) without root, without Slurm's or munge's programs (apt-get
install slurmctld slurmd slurm-client munge), or when the daemons do not
come up (the reason and their logs are printed).  The store case is left
out without etcd or a ringmaster built without libcurl, the gloo case
without torch.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "supervisor"))
sys.path.insert(0, os.path.join(HERE, os.pardir, "multinode"))
from etcdtest import Etcd, free_port  # noqa: E402
from rmtest import RINGMASTER, TOP_BUILDDIR, check, clean_env, finish, log, skip, wait_gone  # noqa: E402

TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.abspath(os.path.join(HERE, os.pardir, os.pardir))
WORKER = os.path.join(HERE, "worker.py")
GLOO_WORKER = os.path.join(HERE, "..", "multinode", "worker.py")
SCALE = float(os.environ.get("RM_TEST_TIMEOUT_SCALE", "1"))
PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "srun", "sinfo", "scancel")
NODES = ("n1", "n2")


def expect(cond, what, output):
    """check(), with what to look at when it fails."""
    if not check(cond, what):
        log("---- output\n%s\n----" % output[-5000:])


class Unavailable(Exception):
    """Slurm cannot run here: the test skips, saying why."""


class Cluster:
    """munged, slurmctld and one slurmd per node, in the foreground as this test's children, stopped by stop()."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="rm-slurm-")
        os.chmod(self.dir, 0o700)     # munged refuses a key in a folder others may write
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.daemons = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM")}
        self.env["SLURM_CONF"] = self.conf

    def path(self, *names):
        return os.path.join(self.dir, *names)

    def daemon(self, name, argv):
        with open(self.path("log", name + ".out"), "w") as out:
            self.daemons.append((name, subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                                        stderr=subprocess.STDOUT, env=self.env,
                                                        start_new_session=True)))

    def logs(self):
        text = []
        for name in sorted(os.listdir(self.path("log"))):
            with open(self.path("log", name), errors="replace") as f:
                text.append("==== %s\n%s" % (name, "".join(f.readlines()[-15:])))
        return "\n".join(text)

    def wait_for(self, what, ready, timeout):
        deadline = time.monotonic() + timeout * SCALE
        while not ready():
            for name, p in self.daemons:
                if p.poll() is not None:
                    raise Unavailable("%s exited with status %s before %s\n%s"
                                      % (name, p.returncode, what, self.logs()))
            if time.monotonic() > deadline:
                raise Unavailable("no %s within %.0f s\n%s" % (what, timeout * SCALE, self.logs()))
            time.sleep(0.1)

    def write_conf(self):
        lines = [
            "ClusterName=rmtest",
            "SlurmctldHost=localhost",
            "SlurmctldPort=%d" % free_port(),
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "AuthInfo=socket=%s" % self.path("munge", "socket"),
            "StateSaveLocation=%s" % self.path("state"),
            "SlurmdSpoolDir=%s" % self.path("spool", "%n"),
            "SlurmctldPidFile=%s" % self.path("slurmctld.pid"),
            "SlurmdPidFile=%s" % self.path("slurmd-%n.pid"),
            "SlurmctldLogFile=%s" % self.path("log", "slurmctld.log"),
            "SlurmdLogFile=%s" % self.path("log", "slurmd-%n.log"),
            # No cgroups: processes are tracked by process group, tasks are not bound.
            "ProctrackType=proctrack/pgid",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            "MpiDefault=none",
            "ReturnToService=2",
            "KillWait=10",
        ]
        # Several slurmd on one machine: the same NodeHostname, a port each.
        for n in NODES:
            lines.append("NodeName=%s NodeHostname=localhost NodeAddr=127.0.0.1 Port=%d CPUs=1 State=UNKNOWN"
                         % (n, free_port()))
        lines.append("PartitionName=rm Nodes=%s Default=YES MaxTime=10 State=UP" % ",".join(NODES))
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def idle_nodes(self):
        r = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], env=self.env, capture_output=True, text=True)
        states = dict(line.split() for line in r.stdout.splitlines() if len(line.split()) == 2)
        return all(states.get(n) == "idle" for n in NODES)

    def start(self):
        for d in ["munge", "state", "log"] + ["spool/" + n for n in NODES]:
            os.makedirs(self.path(d), mode=0o700)
        key = self.path("munge", "key")
        r = subprocess.run(["mungekey", "-c", "-k", key], capture_output=True, text=True)
        if r.returncode != 0:
            raise Unavailable("mungekey -c failed: %s" % r.stderr.strip())
        self.daemon("munged", ["munged", "-F", "-f", "--key-file", key, "--socket", self.path("munge", "socket"),
                               "--pid-file", self.path("munge", "pid"), "--seed-file", self.path("munge", "seed"),
                               "--log-file", self.path("log", "munged.log")])
        self.wait_for("munge socket", lambda: os.path.exists(self.path("munge", "socket")), 20)
        self.write_conf()
        self.daemon("slurmctld", ["slurmctld", "-D", "-i", "-f", self.conf])
        for n in NODES:
            self.daemon("slurmd-" + n, ["slurmd", "-D", "-N", n, "-f", self.conf])
        self.wait_for("idle nodes %s in sinfo" % ",".join(NODES), self.idle_nodes, 60)

    def stop(self):
        # The jobs first (a case that failed may have left one; SLURM_CONF: this test's own cluster's), then the
        # daemons, the last started first.
        if self.daemons:
            self.cancel_jobs()
        for _, p in reversed(self.daemons):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        self.daemons = []
        shutil.rmtree(self.dir, ignore_errors=True)

    def cancel_jobs(self):
        subprocess.run(["scancel", "-u", "root"], env=self.env, capture_output=True)

    def srun(self, srun_args, rm_args, env, timeout):
        """srun -N2 --ntasks-per-node=1 SRUN_ARGS ringmaster run RM_ARGS; each node its own runtime folder
        (one machine: the nodes' run folders would collide) and its report in FOLDER/nodeI/report.json.
        Returns (exit status or None after the timeout, output, seconds, [report of node 0, node 1])."""
        base = tempfile.mkdtemp(prefix="srun-", dir=self.dir)
        wrapper = 'd=%s/node$SLURM_NODEID; mkdir -p "$d"; rm=$1; shift; ' \
                  'XDG_RUNTIME_DIR=$d exec "$rm" run --report "$d/report.json" "$@"' % base
        argv = ["srun", "-N2", "--ntasks-per-node=1", "--label", "--time=5"] + srun_args + \
            ["sh", "-c", wrapper, "sh", RINGMASTER] + rm_args
        t0 = time.monotonic()
        p = subprocess.Popen(argv, env=dict(env, SLURM_CONF=self.conf), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            out, _ = p.communicate(timeout=timeout * SCALE)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            self.cancel_jobs()
            rc = None
        seconds = time.monotonic() - t0
        reports = []
        for i in range(len(NODES)):
            try:
                with open(os.path.join(base, "node%d" % i, "report.json")) as f:
                    reports.append(json.load(f))
            except (OSError, ValueError):
                reports.append(None)
        log("---- srun %s: exit %s after %.1f s\n%s" % (" ".join(srun_args + rm_args), rc, seconds, out))
        return rc, out, seconds, reports


def base_env():
    """rmtest's clean environment without a launcher's variables (the test may run inside a Slurm job), with
    ringmaster's Python package and torch (RM_TORCH_PYTHONPATH) on PYTHONPATH."""
    env = {k: v for k, v in clean_env().items() if not k.startswith(("SLURM", "LWS_", "PET_"))}
    paths = [os.path.join(TOP_SRCDIR, "engine", "python"), os.environ.get("RM_TORCH_PYTHONPATH"), env.get("PYTHONPATH")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def case_env(cluster):
    folder = tempfile.mkdtemp(prefix="env-", dir=cluster.dir)
    rc, out, _, reports = cluster.srun(["--kill-on-bad-exit=1"], ["-n", "2", "--", sys.executable, WORKER, "env",
                                                                  folder], base_env(), 120)
    expect(rc == 0, "env: srun exits 0 (%s)" % rc, out)
    recs = {}
    for name in os.listdir(folder):
        with open(os.path.join(folder, name)) as f:
            r = json.load(f)
        recs[int(r["RANK"])] = r
    expect(sorted(recs) == [0, 1, 2, 3], "env: ranks 0-3 each wrote a record (%s)" % sorted(recs), out)
    for g, e in sorted(recs.items()):
        node = g // 2
        want = {"RANK": str(g), "LOCAL_RANK": str(g % 2), "WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2",
                "GROUP_RANK": str(node), "GROUP_WORLD_SIZE": "2", "ROLE_RANK": str(g), "ROLE_WORLD_SIZE": "4",
                "MASTER_ADDR": "n1", "MASTER_PORT": "29500", "SLURM_NODEID": str(node), "SLURM_PROCID": str(node),
                "SLURMD_NODENAME": NODES[node], "SLURM_STEP_NODELIST": "n[1-2]"}
        got = {k: e.get(k) for k in want}
        expect(got == want, "env: rank %d's variables, from the srun task on %s" % (g, NODES[node]),
               json.dumps(got) + "\nwant " + json.dumps(want))
    for i, rep in enumerate(reports):
        nodes = (rep or {}).get("nodes") or {}
        expect((nodes.get("source"), nodes.get("nnodes"), nodes.get("node_rank"), nodes.get("first_rank"),
                nodes.get("master_addr")) == ("slurm", 2, i, 2 * i, "n1"),
               "env: node %d's report: placed by Slurm as node %d of 2, ranks from %d, master n1" % (i, i, 2 * i),
               json.dumps(nodes))


def sleeping_ranks(folder):
    """{rank: pid} of the fail case's ranks that wrote their pid (they sleep until stopped)."""
    pids = {}
    for name in os.listdir(folder):
        if name.startswith("pid-") and not name.endswith(".tmp"):
            with open(os.path.join(folder, name)) as f:
                pids[int(name[4:])] = int(f.read())
    return pids


def all_gone(pids):
    """Whether every pid has exited within 15 s (stopped when srun returned, or never)."""
    return wait_gone(list(pids.values()), 15 * SCALE) is not None


def case_kill(cluster):
    folder = tempfile.mkdtemp(prefix="kill-", dir=cluster.dir)
    rc, out, seconds, (rep0, rep1) = cluster.srun(
        ["--kill-on-bad-exit=1"], ["-n", "2", "--", sys.executable, WORKER, "fail", "3", folder], base_env(), 90)
    pids = sleeping_ranks(folder)
    expect(sorted(pids) == [0, 1, 2], "kill: ranks 0, 1 and 2 ran when rank 3 failed (%s)" % sorted(pids), out)
    expect(rc not in (0, None), "kill: srun ends by itself, non-zero (%s after %.1f s; the ranks sleep 600 s)"
           % (rc, seconds), out)
    expect(all_gone(pids), "kill: no rank is left on either node", out)
    expect(rep0 is not None and rep0.get("stop_signal") == "SIGTERM" and rep0.get("exit_status") == 143,
           "kill: node 0's ringmaster was stopped by srun's SIGTERM and stopped its ranks (exit 143)",
           json.dumps(rep0)[:3000])
    ff = (rep1 or {}).get("first_failure") or {}
    first = ((rep1 or {}).get("nodes") or {}).get("first_rank")
    expect(rep1 is not None and rep1.get("exit_status") == 1 and first == 2 and ff.get("rank") == 1,
           "kill: node 1's report: its local rank 1 (rank 3) failed first, exit 1", json.dumps(rep1)[:3000])
    expect("ValueError: rank 3 fails on purpose" in "".join(ff.get("stderr_tail") or []),
           "kill: node 1's report has rank 3's exception", json.dumps(ff))
    expect(re.search(r"^1: ringmaster: =+ run \S+: rank 3 \(node 1's local rank 1\) failed", out, re.M) is not None,
           "kill: node 1's text report names rank 3 globally", out)


def case_store(cluster):
    folder = tempfile.mkdtemp(prefix="store-", dir=cluster.dir)
    with Etcd() as etcd:
        rc, out, seconds, (rep0, rep1) = cluster.srun(
            ["--kill-on-bad-exit=0"], ["--store", "etcd://" + etcd.endpoint, "--run-id", "slurm-store-%d" % os.getpid(),
                                       "-n", "2", "--", sys.executable, WORKER, "fail", "3", folder], base_env(), 90)
    expect(rc not in (0, None), "store: srun ends by itself, non-zero (%s after %.1f s)" % (rc, seconds), out)
    pids = sleeping_ranks(folder)
    expect(sorted(pids) == [0, 1, 2] and all_gone(pids), "store: ranks 0-2 ran, and none is left on either node", out)
    fail = (((rep0 or {}).get("nodes") or {}).get("failure")) or {}
    expect(rep0 is not None and rep0.get("exit_status") == 112 and rep0.get("outcome") == "node-failure"
           and rep0.get("stop_signal") is None,
           "store: node 0 stopped by itself on node 1's failure (exit 112, no signal from srun)",
           json.dumps(rep0)[:3000])
    expect(fail.get("node") == 1 and fail.get("rank") == 3 and "rank 3 fails on purpose" in (fail.get("cause") or ""),
           "store: node 0's report names node 1, rank 3 and the cause", json.dumps(fail))
    # Slurm's names for the nodes (n1, n2), not the machine's (both nodes are this one machine here).
    expect(fail.get("host") == "n2", "store: node 0's report names node 1 by Slurm's name n2 (%s)" % fail.get("host"),
           json.dumps(fail))
    expect(rep0 is not None and rep0.get("host") == "n1" and rep1 is not None and rep1.get("host") == "n2",
           "store: each node's report names its node by Slurm's name (%s, %s)" %
           ((rep0 or {}).get("host"), (rep1 or {}).get("host")), json.dumps(rep0)[:2000])
    expect(rep1 is not None and rep1.get("exit_status") == 1, "store: node 1 exits with rank 3's status 1",
           json.dumps(rep1)[:3000])


def case_gloo(cluster):
    env = dict(base_env(), GLOO_SOCKET_IFNAME="lo")
    rc, out, _, _ = cluster.srun(["--kill-on-bad-exit=1"], ["--master-addr", "127.0.0.1", "-n", "2", "--",
                                                            sys.executable, GLOO_WORKER, "env"], env, 240)
    expect(rc == 0, "gloo: srun exits 0 (%s)" % rc, out)
    dec = json.JSONDecoder()
    recs = sorted((dec.raw_decode(out, m.end())[0] for m in re.finditer(r"MULTINODE ", out)), key=lambda r: r["rank"])
    expect([r["rank"] for r in recs] == [0, 1, 2, 3], "gloo: one record per rank", out)
    for r in recs:
        g = r["rank"]
        expect(r["dist_rank"] == g and r["dist_world"] == 4 and r["sum"] == 10 and
               r["env"]["GROUP_RANK"] == str(g // 2) and r["env"]["MASTER_ADDR"] == "127.0.0.1",
               "gloo: rank %d in a world of 4 across the srun tasks, all-reduce sum 10" % g, json.dumps(r))


def store_usable():
    if not Etcd.available():
        return "no etcd server (apt-get install etcd-server)"
    with open(os.path.join(TOP_BUILDDIR, "config.h")) as f:
        if not re.search(r"^#define HAVE_LIBCURL 1$", f.read(), re.M):
            return "ringmaster was built without libcurl (configure --with-etcd)"
    return None


def main():
    if os.geteuid() != 0:
        skip("slurmd and munged run as root here (the test starts its own); not root")
    missing = [p for p in PROGRAMS if not shutil.which(p)]
    if missing:
        skip("%s not installed (apt-get install slurmctld slurmd slurm-client munge)" % ", ".join(missing))
    cluster = Cluster()
    try:
        try:
            cluster.start()
        except Unavailable as e:
            skip("Slurm does not run here: %s" % e)
        case_env(cluster)
        case_kill(cluster)
        why = store_usable()
        if why:
            log("store case left out: %s" % why)
        else:
            case_store(cluster)
        if subprocess.run([sys.executable, "-c", "import torch.distributed"], env=base_env(),
                          capture_output=True).returncode != 0:
            log("gloo case left out: torch is not installed (RM_TORCH_PYTHONPATH)")
        else:
            case_gloo(cluster)
    finally:
        cluster.stop()
    finish()


if __name__ == "__main__":
    main()

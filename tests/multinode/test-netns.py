# SPDX-License-Identifier: MIT
"""Jobs of several nodes on one machine: each "node" is a network namespace
(tests/multinode/nstest.py) running its own ringmaster; the ranks talk gloo
across the namespaces; etcd (Debian's etcd-server) runs in the hub
namespace.  Cases:

  static     --nnodes 2 --node-rank I: torchrun's environment for 4 ranks on
             2 nodes, and an all-reduce across them
  torchrun   the same job under torchrun and under `ringmaster torchrun` with
             the very same options: the same environment records
  slurm      srun simulated (SLURM_* set, host names in the namespaces'
             /etc/hosts): node ranks and MASTER_ADDR from Slurm
  lws        a LeaderWorkerSet simulated (LWS_* set): the same from LWS
  failure    --store etcd: rank 3 (node 1) raises; both nodes stop, non-zero,
             and node 0's report names node 1, rank 3 and the exception
  straggler  --store etcd: both ranks of node 1 stay short of READY; node 0
             names them within --straggler-timeout + 2 s of rank 0's READY
  rdzv       3 nodes, --store etcd and no --node-rank: the nodes number
             themselves in join order (started 2, 0, 1), MASTER_ADDR is the
             first joiner's address toward etcd, and gloo runs across them
  elastic    `ringmaster torchrun --nnodes 2:3 --rdzv-backend etcd-v3`: a
             third node within the last call joins the same round (world 3)
  c10d       3 nodes, `ringmaster torchrun --rdzv-backend c10d` without
             --node-rank or etcd: the endpoint's node hosts a TCPStore and is
             node 0, the others number themselves through it; gloo runs
             (rank 0 listens on the endpoint's port once the store is gone)

Skips (77) without root/namespaces or torch (RM_TORCH_PYTHONPATH); the
etcd cases skip without etcd-server or a ringmaster built without libcurl.
RM_MULTINODE_CASES picks cases (default: static, slurm, lws; the others
run as test-netns-torchrun.py, test-netns-store.py and test-netns-rdzv.py).
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from etcdtest import Etcd  # noqa: E402
from mntest import RINGMASTER, SCALE, TOP_SRCDIR, check, summary  # noqa: E402
from nstest import Nodes  # noqa: E402

WORKER = os.path.join(HERE, "worker.py")


def base_env():
    env = dict(os.environ)
    paths = [os.path.join(TOP_SRCDIR, "engine", "python")]
    if os.environ.get("RM_TORCH_PYTHONPATH"):
        paths.append(os.environ["RM_TORCH_PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["GLOO_SOCKET_IFNAME"] = "rmeth0"
    for k in list(env):
        if k.startswith(("SLURM_", "LWS_", "PET_")) or k in ("MASTER_ADDR", "MASTER_PORT", "JOB_COMPLETION_INDEX",
                                                          "OMP_NUM_THREADS"):
            del env[k]
    return env


def node_env(env, i):
    """Node i's environment: its own runtime directory, as a machine of its own has (one run id, two run dirs)."""
    env = dict(env)
    env["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="rm-node%d-" % i)
    return env


def run_nodes(nodes, argvs, envs, timeout):
    """Starts one process per node; returns [(rc, output, seconds)]."""
    procs, start = [], time.monotonic()
    for i, argv in enumerate(argvs):
        procs.append(nodes.popen(i, argv, env=node_env(envs[i], i), stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True))
    results = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(1, timeout - (time.monotonic() - start)))
            results.append((p.returncode, out, time.monotonic() - start))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            out, _ = p.communicate()
            results.append((None, out, time.monotonic() - start))
    return results


def records(output):
    dec = json.JSONDecoder()
    return [dec.raw_decode(output, m.end())[0] for m in re.finditer(r"MULTINODE ", output)]


def expect_env(recs, nnodes, nproc, master, what, output):
    recs = sorted(recs, key=lambda r: r["rank"])
    world = nnodes * nproc
    check(len(recs) == world, "%s: one record per rank (%d)" % (what, len(recs)), output)
    for r in recs:
        g, e = r["rank"], r["env"]
        want = {"RANK": str(g), "LOCAL_RANK": str(g % nproc), "WORLD_SIZE": str(world),
                "LOCAL_WORLD_SIZE": str(nproc), "GROUP_RANK": str(g // nproc), "GROUP_WORLD_SIZE": str(nnodes),
                "ROLE_RANK": str(g), "ROLE_WORLD_SIZE": str(world), "MASTER_ADDR": master}
        got = {k: e.get(k) for k in want}
        check(got == want and r["dist_rank"] == g and r["dist_world"] == world and
              r["sum"] == world * (world + 1) // 2, "%s: rank %d's environment and all-reduce" % (what, g),
              json.dumps(r) + "\nwant " + json.dumps(want))
    return recs


def case_static(nodes):
    env = base_env()
    argvs = [[RINGMASTER, "run", "--nnodes", "2", "--node-rank", str(i), "--master-addr", nodes.addr(0),
              "--master-port", "29511", "-n", "2", "--", sys.executable, WORKER, "env"] for i in range(2)]
    res = run_nodes(nodes, argvs, [env, env], 180 * SCALE)
    out = "\n".join(o for _, o, _ in res)
    check(all(rc == 0 for rc, _, _ in res), "static: both nodes exit 0 (%s)" % [rc for rc, _, _ in res], out)
    expect_env(records(out), 2, 2, nodes.addr(0), "static", out)


def case_torchrun(nodes):
    env = base_env()
    recs = {}
    for launcher in ("torchrun", "ringmaster torchrun"):
        head = [sys.executable, "-m", "torch.distributed.run"] if launcher == "torchrun" else [RINGMASTER, "torchrun"]
        argvs = [head + ["--nnodes", "2", "--node-rank", str(i), "--nproc-per-node", "2", "--master-addr",
                         nodes.addr(0), "--master-port", "29512", WORKER, "env"] for i in range(2)]
        res = run_nodes(nodes, argvs, [env, env], 240 * SCALE)
        out = "\n".join(o for _, o, _ in res)
        check(all(rc == 0 for rc, _, _ in res), "torchrun: %s exits 0 on both nodes" % launcher, out)
        recs[launcher] = expect_env(records(out), 2, 2, nodes.addr(0), launcher, out)
        for r in recs[launcher]:
            for k in ("TORCHELASTIC_RUN_ID", "TORCHELASTIC_USE_AGENT_STORE"):
                r["env"][k] = "<set>" if r["env"].get(k) is not None else None
    check(recs["torchrun"] == recs["ringmaster torchrun"], "torchrun: the same records under both launchers",
          json.dumps(recs, indent=1))


def case_slurm(nodes):
    nodes.hosts({"rmnode1": 0, "rmnode2": 1})
    envs = []
    for i in range(2):
        env = base_env()
        env.update({"SLURM_JOB_ID": "4242", "SLURM_STEP_ID": "0", "SLURM_STEP_NUM_NODES": "2",
                    "SLURM_STEP_NUM_TASKS": "2", "SLURM_NODEID": str(i), "SLURM_PROCID": str(i),
                    "SLURM_STEP_NODELIST": "rmnode[1-2]", "SLURM_JOB_NODELIST": "rmnode[1-2]", "SLURM_NNODES": "2"})
        envs.append(env)
    argvs = [[RINGMASTER, "run", "--master-port", "29513", "-n", "2", "--", sys.executable, WORKER, "env"]] * 2
    res = run_nodes(nodes, argvs, envs, 180 * SCALE)
    out = "\n".join(o for _, o, _ in res)
    check(all(rc == 0 for rc, _, _ in res), "slurm: both nodes exit 0", out)
    expect_env(records(out), 2, 2, "rmnode1", "slurm", out)


def case_lws(nodes):
    nodes.hosts({"rmnode1": 0, "rmnode2": 1})
    envs = []
    for i in range(2):
        env = base_env()
        env.update({"LWS_LEADER_ADDRESS": "rmnode1", "LWS_GROUP_SIZE": "2", "LWS_WORKER_INDEX": str(i),
                    "LWS_NAME": "rmtest"})
        envs.append(env)
    argvs = [[RINGMASTER, "run", "--master-port", "29515", "-n", "2", "--", sys.executable, WORKER, "env"]] * 2
    res = run_nodes(nodes, argvs, envs, 180 * SCALE)
    out = "\n".join(o for _, o, _ in res)
    check(all(rc == 0 for rc, _, _ in res), "lws: both nodes exit 0", out)
    expect_env(records(out), 2, 2, "rmnode1", "lws", out)


def store_argv(nodes, etcd, i, run_id, extra, worker_args):
    return [RINGMASTER, "run", "--nnodes", "2", "--node-rank", str(i), "--master-addr", nodes.addr(0),
            "--master-port", "29514", "--store", "etcd://" + etcd.endpoint, "--run-id", run_id, "-n", "2"] + \
        extra + ["--", sys.executable, WORKER] + worker_args


def case_failure(nodes, etcd):
    env = base_env()
    run_id = "fail-%d" % os.getpid()
    argvs = [store_argv(nodes, etcd, i, run_id, [], ["raise", "3"]) for i in range(2)]
    res = run_nodes(nodes, argvs, [env, env], 180 * SCALE)
    (rc0, out0, _), (rc1, out1, _) = res
    check(rc0 not in (0, None) and rc1 not in (0, None), "failure: both nodes exit non-zero (%s, %s)" % (rc0, rc1),
          out0 + out1)
    check(re.search(r"node 1\b", out0) is not None and re.search(r"rank 3\b", out0) is not None,
          "failure: node 0's report names node 1 and rank 3", out0)
    check("rank 3 fails on purpose" in out0 or "ValueError" in out0, "failure: node 0's report has the cause", out0)


def case_straggler(nodes, etcd):
    env = base_env()
    run_id = "strag-%d" % os.getpid()
    timeout = 5
    argvs = [store_argv(nodes, etcd, i, run_id, ["--straggler-timeout", str(timeout)], ["hang-node", "1"])
             for i in range(2)]
    procs = [nodes.popen(i, argvs[i], env=node_env(env, i), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True) for i in range(2)]
    ready_at = named_at = None
    lines = []
    deadline = time.monotonic() + 120 * SCALE
    for line in procs[0].stdout:
        lines.append(line)
        m = re.search(r"READY_AT ([0-9.]+) rank 0", line)
        if m:
            ready_at = float(m.group(1))
        if named_at is None and re.search(r"rank[s]? 2 \(node 1\)", line):
            named_at = time.time()
        if time.monotonic() > deadline:
            break
    rc0 = procs[0].wait(30)
    try:
        out1, _ = procs[1].communicate(timeout=60 * SCALE)
    except subprocess.TimeoutExpired:
        os.killpg(procs[1].pid, 9)
        out1, _ = procs[1].communicate()
    out0 = "".join(lines)
    check(rc0 not in (0, None) and procs[1].returncode not in (0, None),
          "straggler: both nodes stop non-zero (%s, %s)" % (rc0, procs[1].returncode), out0 + out1)
    check(ready_at is not None and named_at is not None, "straggler: node 0 names node 1's ranks", out0)
    if ready_at is not None and named_at is not None:
        late = named_at - ready_at
        print("straggler: named %.1f s after rank 0's READY (--straggler-timeout %d)" % (late, timeout))
        check(late <= timeout + 2, "straggler: within the timeout + 2 s (%.1f s)" % late, out0)


def start_in_order(nodes, order, argvs, envs, gap):
    """Starts node order[0], then order[1] gap seconds later, ...; returns their processes by node."""
    procs = {}
    for k, i in enumerate(order):
        if k:
            time.sleep(gap)
        procs[i] = nodes.popen(i, argvs[i], env=node_env(envs[i], i), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    return procs


def collect(procs, timeout):
    res, end = {}, time.monotonic() + timeout
    for i, p in procs.items():
        try:
            out, _ = p.communicate(timeout=max(1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            out, _ = p.communicate()
        res[i] = (p.returncode, out)
    return res


def case_rdzv(nodes, etcd):
    env = base_env()
    run_id = "rdzv-%d" % os.getpid()
    # No --master-port: node 0 picks a free one and publishes it with its address.
    argvs = [[RINGMASTER, "run", "--nnodes", "3", "--store", "etcd://" + etcd.endpoint, "--run-id", run_id,
              "-n", "1", "--", sys.executable, WORKER, "env"] for _ in range(3)]
    order = [2, 0, 1]
    res = collect(start_in_order(nodes, order, argvs, [env] * 3, 1.0 * SCALE), 240 * SCALE)
    out = "\n".join("==== node %d: exit %s\n%s" % (i, rc, o) for i, (rc, o) in sorted(res.items()))
    check(all(rc == 0 for rc, _ in res.values()), "rdzv: the 3 nodes exit 0 (%s)" % [rc for rc, _ in res.values()],
          out)
    expect_env(records(out), 3, 1, nodes.addr(order[0]), "rdzv (MASTER_ADDR: the first joiner's address)", out)
    ports = {r["env"].get("MASTER_PORT") for r in records(out)}
    check(len(ports) == 1 and None not in ports and ports != {"29500"},
          "rdzv: every rank has the MASTER_PORT node 0 picked and published (%s), not a fixed 29500" % sorted(ports,
                                                                                                           key=str),
          out)
    for k, i in enumerate(order):
        got = [r["env"]["GROUP_RANK"] for r in records(res[i][1])]
        check(got == [str(k)], "rdzv: the namespace started %s is node %d (%s)" % (["first", "second", "third"][k],
                                                                                   k, got), res[i][1])


def case_elastic(nodes, etcd):
    env = base_env()
    run_id = "elastic-%d" % os.getpid()
    argvs = [[RINGMASTER, "torchrun", "--nnodes", "2:3", "--rdzv-backend", "etcd-v3", "--rdzv-endpoint", etcd.endpoint,
              "--rdzv-id", run_id, "--rdzv-conf", "last_call_timeout=%d" % (4 * SCALE), "--master-port", "29518",
              "--nproc-per-node", "1", WORKER, "env"] for _ in range(3)]
    procs = start_in_order(nodes, [0, 1], argvs, [env] * 3, 0.2)
    time.sleep(1.5 * SCALE)       # the round has its MIN (2); the third comes within the last call
    procs.update(start_in_order(nodes, [2], argvs, [env] * 3, 0))
    res = collect(procs, 240 * SCALE)
    out = "\n".join("==== node %d: exit %s\n%s" % (i, rc, o) for i, (rc, o) in sorted(res.items()))
    check(all(rc == 0 for rc, _ in res.values()), "elastic: the 3 nodes exit 0 (%s)" % [rc for rc, _ in res.values()],
          out)
    expect_env(records(out), 3, 1, nodes.addr(0), "elastic (2:3, the third within the last call)", out)


def case_c10d(nodes):
    env = base_env()
    host = 1                      # the endpoint's node: node 0 whatever the start order
    argvs = [[RINGMASTER, "torchrun", "--nnodes", "3", "--rdzv-backend", "c10d", "--rdzv-endpoint",
              "%s:29419" % nodes.addr(host), "--rdzv-conf", "join_timeout=%d" % (120 * SCALE),
              "--nproc-per-node", "1", WORKER, "env"] for _ in range(3)]
    order = [2, 1, 0]
    res = collect(start_in_order(nodes, order, argvs, [env] * 3, 0.5 * SCALE), 240 * SCALE)
    out = "\n".join("==== node %d: exit %s\n%s" % (i, rc, o) for i, (rc, o) in sorted(res.items()))
    check(all(rc == 0 for rc, _ in res.values()), "c10d: the 3 nodes exit 0 (%s)" % [rc for rc, _ in res.values()],
          out)
    expect_env(records(out), 3, 1, nodes.addr(host), "c10d (MASTER_ADDR: the endpoint's node)", out)
    got = [r["env"]["GROUP_RANK"] for r in records(res[host][1])]
    check(got == ["0"], "c10d: the endpoint's namespace is node 0 (%s)" % got, res[host][1])


def main():
    if not Nodes.available():
        print("SKIP: cannot make network namespaces here (needs root and ip netns)")
        return 77
    env = base_env()
    if subprocess.run([sys.executable, "-c", "import torch.distributed"], env=env,
                      capture_output=True).returncode != 0:
        print("SKIP: torch is not installed (RM_TORCH_PYTHONPATH)")
        return 77
    cases = os.environ.get("RM_MULTINODE_CASES", "static,slurm,lws").split(",")
    with Nodes(3 if {"rdzv", "elastic", "c10d"} & set(cases) else 2) as nodes:
        for c in ("static", "torchrun", "slurm", "lws", "c10d"):
            if c in cases:
                globals()["case_" + c](nodes)
        etcd_cases = [c for c in ("failure", "straggler", "rdzv", "elastic") if c in cases]
        if etcd_cases and not Etcd.available():
            print("etcd cases skipped: no etcd server")
        elif etcd_cases:
            with Etcd(host=nodes.hub_addr, netns=nodes.hub) as etcd:
                for c in etcd_cases:
                    globals()["case_" + c](nodes, etcd)
    return summary()


if __name__ == "__main__":
    sys.exit(main())

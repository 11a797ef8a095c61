# SPDX-License-Identifier: MIT
"""--max-restarts across nodes (run-nodes.c): two ringmasters numbered by etcd's rendezvous (loopback etcd, no
torch: the ranks are shell commands).  Rank 1 fails in the first attempt: node 1 records the failure, node 0
stops, both execute themselves again and join round 1, where every rank sees TORCHELASTIC_RESTART_COUNT=1 and
succeeds (both exit 0).  A rank that always fails: after --max-restarts 1 both nodes exit non-zero, saying that
round 1 failed and the restarts are spent.  Without the rendezvous (--node-rank), --max-restarts with two nodes
is still refused.  Skips (77) without etcd-server."""

import base64
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from etcdtest import Etcd  # noqa: E402
from mntest import RINGMASTER, SCALE, check, finish, start_nodes, summary  # noqa: E402


def run_nodes(argvs, timeout):
    return finish(start_nodes(argvs), timeout)


def argv(etcd, run_id, restarts, script):
    return [RINGMASTER, "run", "--nnodes", "2", "--store", "etcd://" + etcd.endpoint, "--run-id", run_id,
            "--max-restarts", str(restarts), "--restart-delay", "1", "--restart-delay-max", "1", "--master-port",
            "29561", "-n", "1", "--", "sh", "-c", script]


def keys(etcd, prefix):
    """Every key under prefix (the test's own v3 gateway call)."""
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    reply = etcd.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end), "keys_only": True})
    return sorted(base64.b64decode(kv["key"]).decode() for kv in reply.get("kvs", []))


def main():
    if not Etcd.available():
        print("SKIP: no etcd server (Debian: apt-get install etcd-server)")
        return 77
    with Etcd() as etcd:
        # Attempt 0: rank 1 fails, rank 0 waits; attempt 1: both succeed.
        script = ('echo "ATTEMPT $TORCHELASTIC_RESTART_COUNT RANK $RANK OF $WORLD_SIZE"; '
                  '[ "$TORCHELASTIC_RESTART_COUNT" -ge 1 ] && exit 0; [ "$RANK" = 1 ] && exit 3; exec sleep 60')
        res = run_nodes([argv(etcd, "restart-%d" % os.getpid(), 2, script)] * 2, 120 * SCALE)
        out = "\n".join("==== node: exit %s\n%s" % r for r in res)
        check(all(rc == 0 for rc, _ in res), "a failure in round 0, a restart, both exit 0 (%s)" % [r for r, _ in res],
              out)
        check("the job failed in round 0" in out and "restart 1 of 2 across nodes" in out,
              "the nodes say round 0 failed and they restart", out)
        for rank in (0, 1):
            check(("ATTEMPT 1 RANK %d OF 2" % rank) in out, "rank %d ran again with TORCHELASTIC_RESTART_COUNT=1" % rank,
                  out)
        check("RINGMASTER_NODE_RESTART" not in out, "the restart's variable is not the ranks'", out)

        # Always failing: one restart, then both give up naming round 1.
        script = 'echo "ATTEMPT $TORCHELASTIC_RESTART_COUNT RANK $RANK"; [ "$RANK" = 1 ] && exit 3; exec sleep 60'
        res = run_nodes([argv(etcd, "spent-%d" % os.getpid(), 1, script)] * 2, 120 * SCALE)
        out = "\n".join("==== node: exit %s\n%s" % r for r in res)
        check(all(rc not in (0, None) for rc, _ in res), "always failing: both exit non-zero (%s)" %
              [r for r, _ in res], out)
        check("the job failed in round 1 of the rendezvous, and its 1 restart across nodes (--max-restarts) is spent"
              in out, "the exit names the round that failed last", out)
        check(out.count("ATTEMPT 1 RANK") == 2 and "ATTEMPT 2" not in out, "exactly one restart", out)
        # The restarted ringmaster is no subreaper of its own past: the next attempt's watcher is not its orphan.
        check("still running after" not in out and "orphaned descendants" not in out,
              "the restarted attempts stop their ranks at once (no leftover to SIGKILL)", out)

        # Old rounds' records go: after 6 rounds (5 restarts) only rounds 4 and 5 are left (and the counter).
        run_id = "prune-%d" % os.getpid()
        script = '[ "$RANK" = 1 ] && exit 3; exec sleep 60'
        res = run_nodes([argv(etcd, run_id, 5, script)] * 2, 180 * SCALE)
        out = "\n".join("==== node: exit %s\n%s" % r for r in res)
        check("the job failed in round 5 of the rendezvous" in out, "prune: six rounds ran (0 to 5)", out)
        left = keys(etcd, "/ringmaster/%s/" % run_id)
        rounds = sorted({int(m.group(1)) for k in left for m in [re.search(r"/(?:rdzv|round)/(\d+)/", k)] if m})
        check(rounds == [4, 5] and len(left) <= 5,
              "prune: the prefix holds the last two rounds' records only (%d keys, rounds %s)" % (len(left), rounds),
              "\n".join(left))

        # Static node ranks: refused as before.
        res = run_nodes([[RINGMASTER, "run", "--nnodes", "2", "--node-rank", "0", "--master-addr", "127.0.0.1",
                          "--store", "etcd://" + etcd.endpoint, "--run-id", "static-%d" % os.getpid(),
                          "--max-restarts", "1", "-n", "1", "--", "true"]], 60)
        check(res[0][0] == 100 and "--store's rendezvous" in res[0][1], "static ranks: --max-restarts is refused",
              res[0][1])
    return summary()


if __name__ == "__main__":
    sys.exit(main())

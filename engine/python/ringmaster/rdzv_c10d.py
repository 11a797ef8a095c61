# SPDX-License-Identifier: MIT
"""Node ranks through torch's own TCPStore, as torchrun's c10d rendezvous
keeps its state there: `ringmaster run --rendezvous c10d://HOST:PORT`
(`ringmaster torchrun --rdzv-backend c10d` without --node-rank) runs

    python3 -m ringmaster.rdzv_c10d --endpoint HOST:PORT --run-id ID \\
        --min N --max M --last-call S --join-timeout S --host NAME [--addr A]

on every node.  The node whose address HOST is hosts the store (a
TCPStore server on PORT) and is node 0; the others connect to it (waiting
up to the join timeout for it to come up) and number themselves in join
order, 1, 2, ..., with store.add().  The round closes when MAX nodes
joined, or MIN joined and the last call passed; the first node to see it
writes the round's size (compare_set), and a node that joined after that
is told it came too late.  The result is one JSON line on stdout:

    {"node_rank": R, "nnodes": N, "master_addr": "...", "round": 0}

or {"error": "..."} (exit 1).  Every node then acknowledges; the host
keeps the store up until all N did (bounded by the join timeout), or until
its stdin closes (ringmaster went away), so that no node is left without
the answer.  Then it exits and PORT is free again (rank 0 may listen
there).

Unlike etcd's rendezvous (supervisor/rendezvous.c) there are no leases:
a node that joins and dies before the round closes keeps its place, and the
job then fails when its ranks never come.  torch is needed (it is wherever
torchrun's c10d is used); standard library otherwise.
"""

import argparse
import datetime
import json
import os
import socket
import sys
import threading
import time


def is_local(host):
    """Whether host names an address of this machine (the one to host the store)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    for family, _, _, _, sockaddr in infos:
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.bind((sockaddr[0], 0))
            return True
        except OSError:
            pass
    return False


def say(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def fail(message):
    say({"error": message})
    return 1


def split_endpoint(s):
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 29400
    host, _, port = s.rpartition(":")
    return (host, int(port)) if host else (s, 29400)


def watch_stdin(gone):
    """ringmaster closes our stdin (or dies): stop hosting."""
    try:
        while os.read(0, 4096):     # the raw fd: a buffered reader's lock would hang the interpreter's exit
            pass
    except OSError:
        pass
    gone.set()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m ringmaster.rdzv_c10d")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--min", type=int, required=True)
    p.add_argument("--max", type=int, required=True)
    p.add_argument("--last-call", type=float, default=30.0)
    p.add_argument("--join-timeout", type=float, default=600.0)
    p.add_argument("--host", default=socket.gethostname())
    p.add_argument("--addr")
    a = p.parse_args(argv)
    try:
        from torch.distributed import TCPStore
    except ImportError as e:
        return fail("the c10d rendezvous needs torch (torch.distributed.TCPStore) for this node's python3: %s; "
                    "install it, set PYTHON_EXEC, or use --store etcd://HOST:PORT or --node-rank" % e)
    try:
        host, port = split_endpoint(a.endpoint)
    except ValueError:
        return fail("--rendezvous c10d://%s: not HOST:PORT" % a.endpoint)
    timeout = a.join_timeout if a.join_timeout > 0 else 365 * 86400.0
    deadline = time.monotonic() + timeout
    hosting = is_local(host)
    prefix = "ringmaster/%s/" % a.run_id
    gone = threading.Event()
    threading.Thread(target=watch_stdin, args=(gone,), daemon=True).start()
    try:
        store = TCPStore(host, port, is_master=hosting, wait_for_workers=False,
                         timeout=datetime.timedelta(seconds=timeout))
    except Exception as e:  # noqa: BLE001 (torch raises RuntimeError, DistStoreError, TimeoutError...)
        if hosting:
            return fail("cannot host the c10d rendezvous' store on port %d of %s: %s (is another job using it?)"
                        % (port, host, e))
        return fail("the c10d rendezvous at %s did not answer within the join timeout (%.0f s): %s; start the node "
                    "whose address that is (it hosts the store)" % (a.endpoint, timeout, e))
    me = {"host": a.host, "addr": a.addr or (host if hosting else a.host)}
    if hosting:
        rank = 0
    else:
        rank = int(store.add(prefix + "joined", 1))
        if rank >= a.max:
            return fail("the c10d rendezvous of run %s at %s is full (%d nodes): this node came too late; raise "
                        "--nnodes' MAX, or restart the job" % (a.run_id, a.endpoint, a.max))
    store.set(prefix + "node/%d" % rank, json.dumps(me))

    enough_since = None
    while True:
        if store.check([prefix + "closed"]):
            closed = json.loads(store.get(prefix + "closed"))
            break
        n = 1 + int(store.add(prefix + "joined", 0))     # the host is node 0 without adding
        now = time.monotonic()
        if n >= a.min and enough_since is None:
            enough_since = now
        if n >= a.max or (enough_since is not None and now >= enough_since + a.last_call):
            rec = json.dumps({"nnodes": min(n, a.max)})
            closed = json.loads(store.compare_set(prefix + "closed", "", rec))
            break
        if now >= deadline:
            who = []
            for i in range(min(n, a.max)):
                try:
                    who.append(json.loads(store.get(prefix + "node/%d" % i))["host"])
                except Exception:  # noqa: BLE001
                    who.append("?")
            return fail("the c10d rendezvous of run %s at %s timed out (--join-timeout %.0f s): %d node%s joined, "
                        "%s%d needed: %s; start the missing nodes with the same --rdzv-endpoint and --rdzv-id"
                        % (a.run_id, a.endpoint, timeout, n, "" if n == 1 else "s",
                           "at least " if a.min < a.max else "", a.min, ", ".join(who)))
        if gone.is_set():
            return fail("ringmaster went away during the rendezvous")
        time.sleep(0.1)
    nnodes = int(closed["nnodes"])
    if rank >= nnodes:
        return fail("the c10d rendezvous of run %s at %s closed with %d node%s before this node joined: ringmaster "
                    "does not resize a running job: start every node within the last call (--last-call-timeout), or "
                    "restart the job" % (a.run_id, a.endpoint, nnodes, "" if nnodes == 1 else "s"))
    master = json.loads(store.get(prefix + "node/0"))["addr"]
    say({"node_rank": rank, "nnodes": nnodes, "master_addr": master, "round": 0})
    acked = int(store.add(prefix + "acked", 1))
    if hosting:
        while acked < nnodes and not gone.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
            acked = int(store.add(prefix + "acked", 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())

# SPDX-License-Identifier: MIT
""""Nodes" on one machine for the multi-node tests: network namespaces made
by the test, each with one veth link into a hub namespace that bridges them,
and addresses of the test's own (10.213.<k>.0/24, <k> from the test's pid),
which exist only inside those namespaces.  Nothing is added to the machine's
own namespace; every namespace is removed at the end.

    with Nodes(2) as nodes:
        nodes.addr(0)                        # "10.213.7.1": node 0's address
        nodes.hub_addr                       # "10.213.7.254": the hub's (etcd listens there)
        nodes.popen(0, argv, env=...)        # a process in node 0's namespace
        nodes.hosts({"n1": 0, "n2": 1})      # names -> addresses, for every namespace

Nodes.available() says whether namespaces can be made here (root, `ip`,
netns support); tests skip (77) when not.
"""

import os
import shutil
import subprocess

IP = shutil.which("ip") or "/usr/sbin/ip"


def _ip(*args, check=True):
    return subprocess.run([IP] + list(args), check=check, capture_output=True, text=True)


class Nodes:
    def __init__(self, count, ifname="rmeth0"):
        self.count = count
        self.ifname = ifname
        tag = os.getpid() % 10000
        self.subnet = 10 + os.getpid() % 240          # 10.213.<subnet>.0/24
        self.names = ["rm%d-n%d" % (tag, i) for i in range(count)]
        self.hub = "rm%d-hub" % tag
        self.made = []
        self.hosts_files = []

    @staticmethod
    def available():
        if os.geteuid() != 0 or not os.access(IP, os.X_OK):
            return False
        probe = "rm-probe-%d" % os.getpid()
        ok = _ip("netns", "add", probe, check=False).returncode == 0
        if ok:
            _ip("netns", "del", probe, check=False)
        return ok

    def addr(self, i):
        return "10.213.%d.%d" % (self.subnet, i + 1)

    @property
    def hub_addr(self):
        return "10.213.%d.254" % self.subnet

    def __enter__(self):
        try:
            self.make()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc):
        self.remove()

    def make(self):
        _ip("netns", "add", self.hub)
        self.made.append(self.hub)
        hub = ["-n", self.hub]
        _ip(*hub, "link", "set", "lo", "up")
        _ip(*hub, "link", "add", "br0", "type", "bridge")
        _ip(*hub, "addr", "add", self.hub_addr + "/24", "dev", "br0")
        _ip(*hub, "link", "set", "br0", "up")
        for i, ns in enumerate(self.names):
            _ip("netns", "add", ns)
            self.made.append(ns)
            # The pair is made inside the hub, then one end moved into the node: never in our own namespace.
            _ip(*hub, "link", "add", "p%d" % i, "type", "veth", "peer", "name", self.ifname)
            _ip(*hub, "link", "set", self.ifname, "netns", ns)
            _ip(*hub, "link", "set", "p%d" % i, "master", "br0")
            _ip(*hub, "link", "set", "p%d" % i, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", self.addr(i) + "/24", "dev", self.ifname)
            _ip("-n", ns, "link", "set", self.ifname, "up")

    def hosts(self, names):
        """/etc/netns/NS/hosts for every namespace (ip netns exec binds it over /etc/hosts there)."""
        lines = ["127.0.0.1 localhost"] + ["%s %s" % (self.addr(i), n) for n, i in names.items()]
        for ns in self.names + [self.hub]:
            d = os.path.join("/etc/netns", ns)
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "hosts"), "w") as f:
                f.write("\n".join(lines) + "\n")
            self.hosts_files.append(d)

    def argv(self, i, argv):
        ns = self.hub if i == "hub" else self.names[i]
        return [IP, "netns", "exec", ns] + list(argv)

    def popen(self, i, argv, **kw):
        kw.setdefault("start_new_session", True)
        return subprocess.Popen(self.argv(i, argv), **kw)

    def remove(self):
        for ns in reversed(self.made):
            _ip("netns", "del", ns, check=False)
        self.made = []
        for d in self.hosts_files:
            shutil.rmtree(d, ignore_errors=True)
        self.hosts_files = []

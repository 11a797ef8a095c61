# SPDX-License-Identifier: MIT
"""A real etcd server for the multi-node tests: started on free ports of
an address the test owns (loopback, or a test namespace's own address),
with its data in a temporary directory, stopped and removed at the end.

    with Etcd() as e:            # e.endpoint == "127.0.0.1:PORT"
        ...
    with Etcd(host="10.77.0.1", netns="rm-n0"): ...
    with Etcd(tls=TLS(cacert, cert, key)): ...   # https, and client certificates signed by cacert only

etcdctl(args) runs etcdctl against it (with its TLS files, and user when given).

Etcd.available() says whether Debian's etcd-server is installed (tests skip
with 77 when it is not).
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

ETCD = os.environ.get("RM_ETCD_BIN") or shutil.which("etcd") or "/usr/bin/etcd"


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class TLS:
    """The server's certificate and key, and the CA whose client certificates it takes (--client-cert-auth);
    client_cert/client_key: what etcdctl presents."""

    def __init__(self, cacert, cert, key, client_cert=None, client_key=None):
        self.cacert, self.cert, self.key = cacert, cert, key
        self.client_cert, self.client_key = client_cert, client_key


class Etcd:
    def __init__(self, host="127.0.0.1", netns=None, client_port=None, peer_port=None, quota_mib=256, tls=None):
        self.host = host
        self.tls = tls
        self.netns = netns
        # In a namespace the ports are that namespace's: any free loopback one is as good as another there.
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self.quota = quota_mib << 20
        self.proc = None
        self.dir = None
        self.log = None

    @staticmethod
    def available():
        return os.access(ETCD, os.X_OK)

    @property
    def endpoint(self):
        return "%s:%d" % (self.host, self.client_port)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=30.0):
        self.dir = tempfile.mkdtemp(prefix="rm-etcd-")
        client = "%s://%s:%d" % ("https" if self.tls else "http", self.host, self.client_port)
        peer = "http://127.0.0.1:%d" % self.peer_port
        argv = [ETCD, "--name", "rm-test", "--data-dir", os.path.join(self.dir, "data"),
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", "rm-test=" + peer, "--quota-backend-bytes", str(self.quota),
                "--log-level", "warn"]
        if self.tls:
            argv += ["--cert-file", self.tls.cert, "--key-file", self.tls.key, "--client-cert-auth",
                     "--trusted-ca-file", self.tls.cacert]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        self.log = open(os.path.join(self.dir, "etcd.log"), "w+")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("etcd exited with %s:\n%s" % (self.proc.returncode, self.tail()))
            if self.healthy():
                return
            time.sleep(0.1)
        raise RuntimeError("etcd did not answer within %.0f s:\n%s" % (timeout, self.tail()))

    def etcdctl(self, args, user=None, stdin=None):
        """etcdctl ARGS against this etcd (its TLS files, user "NAME:PASSWORD"): (exit status, output)."""
        argv = ["etcdctl", "--endpoints", self.endpoint, "--dial-timeout", "2s"]
        if self.tls:
            argv += ["--cacert", self.tls.cacert, "--cert", self.tls.client_cert, "--key", self.tls.client_key]
        if user:
            argv += ["--user", user]
        p = subprocess.run(argv + args, env=dict(os.environ, ETCDCTL_API="3"), input=stdin, capture_output=True,
                           text=True)
        return p.returncode, p.stdout + p.stderr

    def healthy(self):
        if self.tls:
            return self.etcdctl(["endpoint", "health"])[0] == 0
        if self.netns:
            # Only reachable from inside the namespaces: ask from there.
            argv = ["ip", "netns", "exec", self.netns, "etcdctl", "--endpoints", self.endpoint,
                    "--dial-timeout", "1s", "endpoint", "health"]
            env = dict(os.environ, ETCDCTL_API="3")
            return subprocess.run(argv, env=env, capture_output=True).returncode == 0
        try:
            return bool(self.call("/v3/maintenance/status", {}, timeout=1).get("header"))
        except OSError:
            return False

    def call(self, path, body, timeout=5):
        """A v3 gateway call from the test itself (not from a namespace: loopback etcd only)."""
        req = urllib.request.Request("http://%s%s" % (self.endpoint, path), data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def tail(self):
        if not self.log:
            return ""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def rss_kib(self):
        """etcd's resident memory (KiB), from /proc."""
        pid = self.proc.pid
        # Under `ip netns exec`, etcd is the exec'd process itself (same pid).
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_seconds(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tick

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log:
            self.log.close()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        self.proc = self.dir = self.log = None

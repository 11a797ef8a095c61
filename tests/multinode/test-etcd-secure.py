# SPDX-License-Identifier: MIT
"""A secured etcd (supervisor/etcd.c's etcd_credentials; docs/multinode.md, "A secured etcd"): two ringmasters
numbered by the rendezvous, as a production deployment runs them.

  tls   etcd over https with --client-cert-auth; the certificates made here with openssl (a CA, etcd's, a
        client's, and a second CA).  With --store-cacert/--store-cert/--store-key both nodes run; a wrong CA, no
        client certificate, a missing key file are refused with what to fix.
  auth  etcd with its users (etcdctl user add root, auth enable): no user, a wrong password are refused; the
        password from $RINGMASTER_STORE_PASSWORD works and is in no rank's environment, no output, no report;
        the password from --store-password-file, and etcd dropping every token of the user mid-run (its
        password set again): rank 1 fails afterwards, node 1 authenticates again, records the failure, and
        node 0 stops on it (exit 112).

Skips (77) without etcd-server, etcdctl or openssl."""

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from etcdtest import TLS, Etcd  # noqa: E402
from mntest import RINGMASTER, SCALE, check, finish, start_nodes, summary  # noqa: E402

PASSWORD = "s3cret-%d-pw" % os.getpid()


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True)


def make_certs(d):
    """CA, etcd's certificate (127.0.0.1), a client's, and an unrelated CA: EC keys, a day's validity."""
    def key_and_csr(name, cn):
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                "%s/%s.key" % (d, name), "-out", "%s/%s.csr" % (d, name), "-subj", "/CN=" + cn)

    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                "%s/%s.key" % (d, ca), "-out", "%s/%s.pem" % (d, ca), "-days", "1", "-subj", "/CN=rm-test-" + ca)
    # etcd's own gateway presents the server's certificate to etcd's gRPC side: it must allow clientAuth too.
    for name, usage in (("server", "serverAuth,clientAuth"), ("client", "clientAuth")):
        key_and_csr(name, "rm-test-" + name)
        with open("%s/%s.ext" % (d, name), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=%s\n" % usage)
        openssl("x509", "-req", "-in", "%s/%s.csr" % (d, name), "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
                "-CAcreateserial", "-out", "%s/%s.pem" % (d, name), "-days", "1", "-extfile", "%s/%s.ext" % (d, name))


def run_nodes(argv, env_extra=None, n=2, timeout=60):
    return finish(start_nodes([argv] * n, env_extra), timeout * SCALE)


def joined(res):
    return "\n".join("==== node: exit %s\n%s" % r for r in res)


def ringmaster(etcd, run_id, store_args, script, nnodes=2, extra=()):
    return [RINGMASTER, "run", "--nnodes", str(nnodes), "--store", "etcd://" + etcd.endpoint, "--run-id", run_id,
            "--join-timeout", "20", "--master-port", "29563", "-n", "1"] + list(store_args) + list(extra) + \
        ["--", "sh", "-c", script]


def case_tls(d):
    tls = TLS(d + "/ca.pem", d + "/server.pem", d + "/server.key", d + "/client.pem", d + "/client.key")
    with Etcd(tls=tls) as etcd:
        good = ["--store-cacert", tls.cacert, "--store-cert", tls.client_cert, "--store-key", tls.client_key]
        res = run_nodes(ringmaster(etcd, "tls-%d" % os.getpid(), good, 'echo "RANK $RANK OF $WORLD_SIZE"'))
        out = joined(res)
        check(all(rc == 0 for rc, _ in res) and "RANK 0 OF 2" in out and "RANK 1 OF 2" in out,
              "tls: both nodes join through etcd over https with a client certificate and run (%s)" %
              [rc for rc, _ in res], out)
        rc, keys = etcd.etcdctl(["get", "--prefix", "--keys-only", "/ringmaster/tls-%d/" % os.getpid()])
        check(rc == 0 and "/rdzv/0/closed" in keys, "tls: the rendezvous' round is in that etcd", keys)

        wrong = ["--store-cacert", d + "/other-ca.pem", "--store-cert", tls.client_cert, "--store-key", tls.client_key]
        res = run_nodes(ringmaster(etcd, "tls-ca-%d" % os.getpid(), wrong, "true", nnodes=1), n=1)
        check(res[0][0] not in (0, None) and "not signed by the CA in %s/other-ca.pem" % d in res[0][1] and
              "--store-cacert" in res[0][1], "tls: a wrong CA is named, with the fix", res[0][1])

        nocert = ["--store-cacert", tls.cacert]
        res = run_nodes(ringmaster(etcd, "tls-nocert-%d" % os.getpid(), nocert, "true", nnodes=1), n=1)
        check(res[0][0] not in (0, None) and "--store-cert and --store-key" in res[0][1],
              "tls: without a client certificate etcd refuses, and the error says which options give one",
              res[0][1])

        missing = ["--store-cacert", tls.cacert, "--store-cert", tls.client_cert, "--store-key", d + "/nope.key"]
        res = run_nodes(ringmaster(etcd, "tls-key-%d" % os.getpid(), missing, "true", nnodes=1), n=1)
        check(res[0][0] == 100 and "--store-key: cannot read '%s/nope.key'" % d in res[0][1],
              "tls: a missing key file is a usage error naming it", res[0][1])

        res = run_nodes(ringmaster(etcd, "tls-plain-%d" % os.getpid(), [], "true", nnodes=1), n=1)
        check(res[0][0] not in (0, None) and "give https://" + etcd.endpoint in res[0][1],
              "tls: plain http to a TLS etcd says to give https://", res[0][1])


def case_auth(d):
    with Etcd() as etcd:
        root = "root:" + PASSWORD
        for args, stdin in ((["user", "add", "root", "--interactive=false"], PASSWORD + "\n"),
                            (["user", "grant-role", "root", "root"], None), (["auth", "enable"], None)):
            rc, out = etcd.etcdctl(args, stdin=stdin)
            if not check(rc == 0, "auth: etcdctl %s" % " ".join(args), out):
                return
        run = "auth-%d" % os.getpid()

        res = run_nodes(ringmaster(etcd, run + "-nouser", [], "true", nnodes=1), n=1)
        check(res[0][0] not in (0, None) and "wants a user and password" in res[0][1] and "--store-user" in res[0][1],
              "auth: no user: etcd's refusal says to give one", res[0][1])

        with open(d + "/bad-password", "w") as f:
            f.write("not-the-password\n")
        res = run_nodes(ringmaster(etcd, run + "-bad", ["--store-user", "root", "--store-password-file",
                                                        d + "/bad-password"], "true", nnodes=1), n=1)
        check(res[0][0] not in (0, None) and "refused user 'root'" in res[0][1] and "not-the-password" not in res[0][1],
              "auth: a wrong password is refused, naming the user (not the password)", res[0][1])

        res = run_nodes(ringmaster(etcd, run + "-nopw", ["--store-user", "root"], "true", nnodes=1), n=1)
        check(res[0][0] == 100 and "no password" in res[0][1], "auth: a user without a password is refused",
              res[0][1])

        # From the environment: works, and the password is nowhere the ranks or the output can show it.
        reports = tempfile.mkdtemp(prefix="rm-secure-report-")
        res = run_nodes(ringmaster(etcd, run + "-env", ["--store-user", "root", "-v"],
                                   'echo "RANK $RANK OF $WORLD_SIZE"; env; tr "\\0" " " </proc/$PPID/cmdline',
                                   extra=["--report", reports + "/report.json"]),
                        env_extra={"RINGMASTER_STORE_PASSWORD": PASSWORD})
        out = joined(res)
        check(all(rc == 0 for rc, _ in res) and "RANK 1 OF 2" in out,
              "auth: the password from $RINGMASTER_STORE_PASSWORD (%s)" % [rc for rc, _ in res], out)
        check("RINGMASTER_STORE_PASSWORD" not in out and PASSWORD not in out,
              "auth: the password is in no rank's environment, no argv, no output", out)
        texts = [open(f).read() for f in glob.glob(reports + "/*")]
        check(texts and all(PASSWORD not in t for t in texts), "auth: nor in the report", "\n".join(texts))
        shutil.rmtree(reports, ignore_errors=True)

        # Tokens dropped mid-run: the password set again (to the same) ends every token of root.
        flag = d + "/tokens-dropped"
        with open(d + "/password", "w") as f:
            f.write(PASSWORD + "\n")
        script = 'while [ ! -e %s ]; do sleep 0.1; done; [ "$RANK" = 1 ] && exit 3; exec sleep 60' % flag
        procs = start_nodes([ringmaster(etcd, run + "-token", ["--store-user", "root", "--store-password-file",
                                                               d + "/password"], script)] * 2)
        deadline = time.monotonic() + 20 * SCALE
        rc, keys = 1, ""
        while time.monotonic() < deadline:
            rc, keys = etcd.etcdctl(["get", "--prefix", "--keys-only", "/ringmaster/%s-token/round/0/" % run],
                                    user=root)
            if "/job/leader" in keys and "/nodes/1" in keys:       # both nodes run: their tokens are in use
                break
            time.sleep(0.2)
        rc, out = etcd.etcdctl(["user", "passwd", "root", "--interactive=false"], user=root, stdin=PASSWORD + "\n")
        check(rc == 0, "auth: root's password set again (etcd drops its tokens)", out)
        time.sleep(0.5)
        open(flag, "w").close()
        res = finish(procs, 60 * SCALE)
        out = joined(res)
        codes = sorted(rc for rc, _ in res)
        check(codes == [3, 112] and "the job failed on node 1 (%s): rank 1 exited with status 3" % socket.gethostname()
              in out,
              "auth: after the tokens were dropped node 1 records rank 1's failure and node 0 stops on it (%s)" %
              codes, out)
        rc, fail = etcd.etcdctl(["get", "--print-value-only", "/ringmaster/%s-token/round/0/job/failure" % run],
                                user=root)
        check(rc == 0 and fail.strip().startswith("{") and json.loads(fail).get("rank") == 1,
              "auth: the failure record is in etcd", fail)


def main():
    if not Etcd.available() or not shutil.which("etcdctl") or not shutil.which("openssl"):
        print("SKIP: needs etcd-server, etcd-client (etcdctl) and openssl")
        return 77
    d = tempfile.mkdtemp(prefix="rm-etcd-secure-")
    try:
        make_certs(d)
        case_tls(d)
        case_auth(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())

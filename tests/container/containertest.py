# SPDX-License-Identifier: MIT
"""ringmaster in a real container: podman, an image made here, ringmaster as its ENTRYPOINT.

No registry is reachable from the machines this runs on, so the image is made
from nothing that needs one:

  - the base: a Debian minbase made by debootstrap (the host's own release, so
    that binaries built here find a glibc at least as new), imported with
    `podman import` once and kept as localhost/ringmaster-test-base:CODENAME;
    the root filesystem's tarball is kept in $XDG_CACHE_HOME/ringmaster/container/
    so that a machine whose podman storage was emptied imports it again
    without the mirror;
  - the image: FROM that base, this build's ringmaster (the real ELF behind
    libtool's wrapper), the test fixtures (fake-worker, hang-worker), every
    shared library they load that is not glibc's (libshmring, libsystemd,
    the sanitizers' runtimes in a sanitizer build) and, as in
    contrib/docker/Dockerfile, ENTRYPOINT ["ringmaster", "run", "--init"].
    Its tag is a hash of what went in: a second run of the suite reuses it.

podman itself may need help on a given machine; podman_options() finds the
`podman run` options that work here by trying, and says why each was added
(see docs/deploy.md, "What was checked where").  Whatever cannot be made to
work is a skip (77) with the reason, never a pass.
"""

import hashlib
import os
import re
import resource
import select
import shutil
import subprocess
import tempfile
import time

from rmtest import *

PODMAN = shutil.which("podman")
BASE_TAG = "localhost/ringmaster-test-base"
IMAGE_REPO = "localhost/ringmaster-test"
FIXTURES = "/usr/local/libexec/ringmaster-test"
CACHE = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ringmaster", "container")
# glibc's own libraries: the image's must be used (they go with its loader).
GLIBC = re.compile(r"^(ld-linux.*|libc|libm|libdl|libpthread|librt|libutil|libresolv|libanl|libmvec)\.so")

_names = []


def podman(args, timeout=TIMEOUT, input=None, check_rc=False):
    p = subprocess.run([PODMAN] + list(args), input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    if check_rc and p.returncode != 0:
        log("$ podman %s -> %d\n%s%s" % (" ".join(args), p.returncode, out[-3000:], err[-3000:]))
    return p.returncode, out, err


def host_codename():
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("VERSION_CODENAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return None


def debian_mirror():
    """RM_DEBIAN_MIRROR, else the first Debian archive apt is configured with, else deb.debian.org."""
    if os.environ.get("RM_DEBIAN_MIRROR"):
        return os.environ["RM_DEBIAN_MIRROR"]
    files = ["/etc/apt/sources.list"]
    d = "/etc/apt/sources.list.d"
    if os.path.isdir(d):
        files += [os.path.join(d, f) for f in sorted(os.listdir(d))]
    for path in files:
        try:
            text = open(path).read()
        except OSError:
            continue
        for m in re.finditer(r"(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)(\S+/debian)/?\s", text, re.M):
            return m.group(1)
    return "http://deb.debian.org/debian"


def base_image():
    """The base image's reference, made (debootstrap, import) when missing; or skips."""
    codename = host_codename()
    if not codename:
        skip("the host is not Debian-like (no VERSION_CODENAME in /etc/os-release): no debootstrap base")
    ref = "%s:%s" % (BASE_TAG, codename)
    if podman(["image", "exists", ref])[0] == 0:
        return ref
    tarball = os.path.join(CACHE, "%s-minbase.tar" % codename)
    if not os.path.exists(tarball):
        if not shutil.which("debootstrap"):
            skip("no base image %s, and no debootstrap to make one (tools/install-deps --containers)" % ref)
        if os.geteuid() != 0:
            skip("no base image %s, and debootstrap needs root" % ref)
        os.makedirs(CACHE, exist_ok=True)
        root = tempfile.mkdtemp(prefix="rm-rootfs-", dir=CACHE)
        mirror = debian_mirror()
        t0 = time.monotonic()
        p = subprocess.run(["debootstrap", "--variant=minbase", codename, root, mirror], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=1200)
        if p.returncode != 0:
            shutil.rmtree(root, True)
            skip("debootstrap --variant=minbase %s from %s failed (exit %d): %s" %
                 (codename, mirror, p.returncode, p.stdout.decode(errors="replace")[-1500:]))
        log("debootstrap --variant=minbase %s %s: %.1f s" % (codename, mirror, time.monotonic() - t0))
        subprocess.run(["tar", "-C", root, "-cf", tarball + ".tmp", "."], check=True)
        os.rename(tarball + ".tmp", tarball)
        shutil.rmtree(root, True)
    t0 = time.monotonic()
    rc, out, err = podman(["import", "--message", "Debian %s minbase (debootstrap)" % codename, tarball, ref],
                          timeout=600, check_rc=True)
    if rc != 0:
        skip("podman import of %s failed: %s" % (tarball, err.strip()[-1500:]))
    log("podman import %s: %.1f s" % (ref, time.monotonic() - t0))
    return ref


def _rlimit_hard(which):
    hard = resource.getrlimit(which)[1]
    return None if hard == resource.RLIM_INFINITY else hard


def podman_options(base):
    """The `podman run` options that make a container start here, found by trying; or skips.

    Always --network none: the cases are single-node and the host's firewall is
    left alone.  Then, for what this podman and this host refuse:
      - crun refuses a hybrid cgroup hierarchy with controllers on v2
        ("cgroups in hybrid mode not supported"): --runtime runc;
      - without CAP_SYS_RESOURCE the OCI runtime cannot raise RLIMIT_NOFILE or
        RLIMIT_NPROC to podman's default (1048576): --ulimit at a value it may
        set (the host's hard limit; podman 4.3 lowers its own RLIMIT_NPROC to
        32768 first, and its children inherit that)."""
    if not PODMAN:
        skip("podman is not installed (tools/install-deps --containers installs it)")
    runtime, ulimits, why = [], {}, []
    nproc_candidates = [v for v in (_rlimit_hard(resource.RLIMIT_NPROC), 32768, 4096) if v]

    def options():
        return ["--network", "none"] + runtime + sum((["--ulimit", "%s=%d:%d" % (k, v, v)]
                                                      for k, v in sorted(ulimits.items())), [])

    for _ in range(8):
        rc, out, err = podman(["run", "--rm"] + options() + [base, "true"], timeout=120)
        if rc == 0:
            for w in why:
                log("podman: " + w)
            return options()
        if "cgroups in hybrid mode" in err and not runtime:
            if not shutil.which("runc"):
                skip("crun cannot run on this hybrid cgroup hierarchy, and runc is not installed: %s" % err.strip())
            runtime = ["--runtime", "runc"]
            why.append("crun: %s; using runc" % err.strip())
        # crun names the limit; runc gives its number (7 RLIMIT_NOFILE, 6 RLIMIT_NPROC on Linux).
        elif ("RLIMIT_NOFILE" in err or "rlimit type 7" in err) and "nofile" not in ulimits:
            ulimits["nofile"] = _rlimit_hard(resource.RLIMIT_NOFILE) or 1048576
            why.append("%s; --ulimit nofile=%d" % (err.strip(), ulimits["nofile"]))
        elif ("RLIMIT_NPROC" in err or "rlimit type 6" in err) and nproc_candidates:
            ulimits["nproc"] = nproc_candidates.pop(0)
            why.append("%s; --ulimit nproc=%d" % (err.strip(), ulimits["nproc"]))
        else:
            break
    opts = options()
    skip("podman cannot start a container here (options tried: %s): %s" % (" ".join(opts), err.strip()[-2000:]))


def _elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _real_binary(path):
    """The ELF behind a libtool wrapper (DIR/.libs/NAME), or path itself."""
    if _elf(path):
        return path
    libs = os.path.join(os.path.dirname(path), ".libs", os.path.basename(path))
    if _elf(libs):
        return libs
    return None


def _libraries(binary):
    """The shared libraries binary loads here (libtool's uninstalled ones included), but glibc's."""
    dirs = [os.path.join(TOP_BUILDDIR, d, ".libs") for d in ("shmring", "engine", "supervisor")]
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(dirs + [os.environ.get("LD_LIBRARY_PATH", "")]))
    p = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    libs = []
    for line in p.stdout.decode().splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m and not GLIBC.match(m.group(1)):
            libs.append((m.group(1), os.path.realpath(m.group(2))))
        elif "not found" in line:
            log("ldd %s: %s" % (binary, line.strip()))
            sys.exit(99)
    return libs


CONTAINERFILE = """FROM {base}
COPY stage/ /
RUN ldconfig && /usr/local/bin/ringmaster --version
ENV PATH={fixtures}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ringmaster", "run", "--init"]
CMD ["--help"]
"""


def test_image(base, opts):
    """This build's image (made when its content is new); returns its reference."""
    ctx = tempfile.mkdtemp(prefix="rm-image-")
    try:
        stage = os.path.join(ctx, "stage")
        files = {}   # path in the image -> path here
        rm = _real_binary(RINGMASTER)
        require(rm is not None, "the built ringmaster is at %s" % RINGMASTER)
        files["/usr/local/bin/ringmaster"] = rm
        for fixture in ("fake-worker", "hang-worker"):
            b = _real_binary(os.path.join(TOP_BUILDDIR, "tests", "supervisor", fixture))
            require(b is not None, "the fixture %s is built" % fixture)
            files["%s/%s" % (FIXTURES, fixture)] = b
        for binary in list(files.values()):
            for soname, real in _libraries(binary):
                files["/usr/local/lib/%s" % soname] = real
        digest = hashlib.sha256()
        containerfile = CONTAINERFILE.format(base=base, fixtures=FIXTURES)
        digest.update(containerfile.encode())
        digest.update(podman(["image", "inspect", "--format", "{{.Id}}", base])[1].encode())
        for dest in sorted(files):
            target = os.path.join(stage, dest.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(files[dest], target)
            digest.update(dest.encode())
            with open(target, "rb") as f:
                digest.update(f.read())
        ref = "%s:%s" % (IMAGE_REPO, digest.hexdigest()[:16])
        if podman(["image", "exists", ref])[0] == 0:
            log("image %s: up to date" % ref)
            return ref
        with open(os.path.join(ctx, "Containerfile"), "w") as f:
            f.write(containerfile)
        build_opts = [o for o in opts if o != "--network" and o != "none"]
        label = "ringmaster.test.builddir=%s" % hashlib.sha256(TOP_BUILDDIR.encode()).hexdigest()[:16]
        t0 = time.monotonic()
        rc, out, err = podman(["build", "--network", "none", "--label", label, "-t", ref] + build_opts +
                              ["-f", os.path.join(ctx, "Containerfile"), ctx], timeout=600, check_rc=True)
        require(rc == 0, "podman build of %s" % ref)
        log("podman build %s: %.1f s (%s)" % (ref, time.monotonic() - t0, ", ".join(sorted(files))))
        # The images of this build folder's earlier builds go.
        rc, out, err = podman(["images", "--filter", "label=" + label, "--format", "{{.Repository}}:{{.Tag}}"])
        for old in out.split():
            if old != ref:
                podman(["rmi", "--force", old])
        return ref
    finally:
        shutil.rmtree(ctx, True)


def setup():
    """(podman run options, the image): everything a case needs, or a skip."""
    if not PODMAN:
        skip("podman is not installed (tools/install-deps --containers installs it)")
    if os.geteuid() != 0:
        skip("runs podman as root (rootless podman needs subuid ranges and is not set up here)")
    base = base_image()
    opts = podman_options(base)
    return opts, test_image(base, opts)


def container_name(what):
    name = "rmtest-%s-%d-%d" % (what, os.getpid(), len(_names))
    _names.append(name)
    return name


def remove_containers():
    for name in _names:
        podman(["rm", "--force", "--time", "0", "--ignore", name])


class Stream:
    """A child's pipe read as it comes (select, no thread), kept as text."""

    def __init__(self, f):
        self.fd = f.fileno()
        self.data = b""
        self.eof = False

    @property
    def text(self):
        return self.data.decode("utf-8", "replace")

    def _read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if r:
            chunk = os.read(self.fd, 65536)
            if chunk:
                self.data += chunk
            else:
                self.eof = True

    def wait_for(self, pattern, timeout=TIMEOUT, count=1):
        """Waits until pattern (a regex) matches count times; returns True, or False on EOF or timeout."""
        deadline = time.monotonic() + timeout
        while len(re.findall(pattern, self.text)) < count:
            if self.eof or time.monotonic() >= deadline:
                return False
            self._read(deadline - time.monotonic())
        return True

    def read_to_eof(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.eof and time.monotonic() < deadline:
            self._read(deadline - time.monotonic())
        return self.text


class Container:
    """`podman run` of the image, attached, in the background."""

    def __init__(self, opts, image, args, what, podman_args=(), stdin=subprocess.DEVNULL):
        self.name = container_name(what)
        self.argv = [PODMAN, "run", "--rm", "--name", self.name] + list(opts) + list(podman_args) + [image] + \
            list(args)
        log("$ " + " ".join(self.argv))
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(self.argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = Stream(self.p.stdout)
        self.err = Stream(self.p.stderr)

    def finish(self, timeout=TIMEOUT):
        """Waits for the end; returns the exit status (None when it had to be killed)."""
        deadline = time.monotonic() + timeout
        while not (self.out.eof and self.err.eof) and time.monotonic() < deadline:
            r, _, _ = select.select([s.fd for s in (self.out, self.err) if not s.eof], [], [],
                                    max(deadline - time.monotonic(), 0))
            for s in (self.out, self.err):
                if s.fd in r:
                    s._read(0)
        try:
            rc = self.p.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            podman(["rm", "--force", "--time", "0", "--ignore", self.name])
            self.p.kill()
            self.p.wait()
            rc = None
        self.elapsed = time.monotonic() - self.t0
        log("---- %s: exit status %s after %.2f s\n---- stdout:\n%s\n---- stderr:\n%s" %
            (self.name, rc, self.elapsed, self.out.text[-4000:], self.err.text[-6000:]))
        self.p.stdout.close()
        self.p.stderr.close()
        return rc


def run_container(opts, image, args, what, podman_args=(), input=None, timeout=TIMEOUT):
    """Runs a container to its end; returns (exit status, stdout, stderr, seconds)."""
    c = Container(opts, image, args, what, podman_args, stdin=subprocess.PIPE if input is not None else
                  subprocess.DEVNULL)
    if input is not None:
        c.p.stdin.write(input)
        c.p.stdin.close()
    rc = c.finish(timeout)
    return rc, c.out.text, c.err.text, c.elapsed


__all__ = [name for name in dir() if not name.startswith("_")] + ["re", "subprocess", "signal", "os", "time",
                                                                    "shutil", "tempfile"]

# SPDX-License-Identifier: MIT
"""A peer process for test_shmring.py: attaches to a segment by name and
plays one part.  Prints one line per step, so the test can follow it.

    shmring_peer.py MODE SEGMENT [ARGS...]
"""

import hashlib
import os
import sys
import time

from ringmaster import shmring


def say(*words):
    print(*words, flush=True)


def bcast_reader(seg, channel):
    """Reads a broadcast channel to its end; prints count and digest."""
    digest = hashlib.sha256()
    count = 0
    with seg.receiver(channel) as rx:
        say("attached", rx.index)
        expected = 0
        for msg in rx:
            seq = int.from_bytes(msg[:8], "little")
            if seq != expected:
                say("out-of-order", seq, expected)
                return 1
            expected += 1
            digest.update(msg)
            count += 1
    say("done", count, digest.hexdigest())
    return 0


def queue_writer(seg, channel, index, count, seed):
    """Sends `count` messages on a queue as writer `index`, after the
    test's go (kv key "go"); each message: index, number, random bytes."""
    import random
    rnd = random.Random(seed)
    digest = hashlib.sha256()
    with seg.sender(channel, index=index) as tx:
        seg.kv_put("kv", "ready-%d" % index, b"1")
        seg.kv_get("kv", "go", timeout=60)
        for i in range(count):
            body = os.urandom(rnd.choice((0, 1, 17, 300, 1500)))
            msg = index.to_bytes(4, "little") + i.to_bytes(4, "little") + body
            tx.send(msg, timeout=60)
            digest.update(msg)
    say("done", count, digest.hexdigest())
    return 0


def bcast_writer_then_sleep(seg, channel):
    """Sends one message, then sleeps until killed."""
    with seg.sender(channel) as tx:
        tx.wait_readers(1, timeout=30)
        tx.send(b"before-death")
        say("sent")
        time.sleep(3600)
    return 0


def bcast_reader_then_sleep(seg, channel):
    """Attaches as a reader and never reads."""
    rx = seg.receiver(channel)
    say("attached", rx.index)
    time.sleep(3600)
    return 0


def kv_put_then_sleep(seg, table, key, value):
    seg.kv_put(table, key, value.encode())
    say("put")
    time.sleep(3600)
    return 0


def recv_forever(seg, channel):
    """Blocks in an endless receive (for the Ctrl-C test)."""
    rx = seg.receiver(channel)
    say("waiting")
    try:
        rx.recv()
    except KeyboardInterrupt:
        say("interrupted")
        raise
    return 0


def echo(seg, count, wait):
    """Reads `count` messages from "sched" and sends each back on
    "results", both ports waiting under policy `wait`."""
    with seg.receiver("sched", wait=wait) as rx, seg.sender("results", wait=wait) as tx:
        for _ in range(count):
            tx.send(rx.recv(timeout=60), timeout=60)
    say("done")
    return 0


def attach_default():
    """Attaches to $RINGMASTER_SHM and prints the run id."""
    with shmring.Segment.attach() as seg:
        say("run-id", seg.info().run_id)
    return 0


def main(argv):
    mode = argv[1]
    if mode == "attach-default":
        return attach_default()
    seg = shmring.Segment.attach(argv[2])
    args = argv[3:]
    if mode == "bcast-reader":
        return bcast_reader(seg, *args)
    if mode == "queue-writer":
        return queue_writer(seg, args[0], int(args[1]), int(args[2]), int(args[3]))
    if mode == "bcast-writer-then-sleep":
        return bcast_writer_then_sleep(seg, *args)
    if mode == "bcast-reader-then-sleep":
        return bcast_reader_then_sleep(seg, *args)
    if mode == "kv-put-then-sleep":
        return kv_put_then_sleep(seg, *args)
    if mode == "echo":
        return echo(seg, int(args[0]), args[1] if len(args) > 1 else None)
    if mode == "recv-forever":
        return recv_forever(seg, *args)
    say("unknown mode", mode)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

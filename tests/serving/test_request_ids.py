"""Request ids made by the server: unique within a process and across forked workers."""

import os
import re

from serving.request_ids import new_request_id


def test_request_ids_are_32_hex_characters_and_never_repeat():
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_a_forked_worker_draws_its_own_prefix():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, new_request_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    ours = new_request_id()
    assert len(child) == 32 and child[:20] != ours[:20]

"""Correlation and call ids: UUID4-shaped, unique, not shared with a forked child."""

from __future__ import annotations

import os
import random
import uuid

from nameko._ids import new_id


def test_ids_are_uuid4_strings_and_unique():
    ids = [new_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:1000]:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


def test_user_seeding_the_random_module_does_not_repeat_ids():
    random.seed(42)
    first = new_id()
    random.seed(42)
    assert new_id() != first


def test_a_forked_child_gets_its_own_sequence():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next id and leave at once
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child_id != new_id()

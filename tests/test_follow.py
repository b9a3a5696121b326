"""Following "the current version of X": build off the request path, swap in one step, never go back."""

import threading
import time

import pytest

from shopray.follow import Follower


def _wait(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


class _Source:
    """A pointer that tests move, and a build that records what it built."""

    def __init__(self, key="v1"):
        self.key, self.built, self.gate = key, [], threading.Event()
        self.gate.set()

    def resolve(self):
        return self.key

    def build(self, key):
        self.gate.wait(10)
        if key == "broken":
            raise RuntimeError("cannot load")
        self.built.append(key)
        return f"object-{key}"


def test_a_new_version_is_built_in_the_background_and_swapped_in():
    src = _Source()
    f = Follower(src.resolve, src.build, name="t", every_s=0.01)
    assert f.check(wait=True) and f.current == "object-v1" and f.key == "v1"
    src.gate.clear()
    src.key = "v2"
    time.sleep(0.02)
    assert f.current == "object-v1"  # the read that noticed v2 is not held up by its build
    assert _wait(lambda: f.building)
    src.gate.set()
    assert _wait(lambda: f.current == "object-v2") and not f.building
    assert src.built == ["v1", "v2"]


def test_a_failed_build_keeps_the_old_object_and_is_not_retried():
    src = _Source()
    f = Follower(src.resolve, src.build, name="t", every_s=0)
    f.check(wait=True)
    src.key = "broken"
    with pytest.raises(RuntimeError):
        f.check(wait=True)
    assert f.current == "object-v1"
    assert f.check(wait=True) is False  # the same broken version is not built again
    src.key = "v3"
    assert f.check(wait=True) and f.current == "object-v3"


def test_an_unreadable_pointer_keeps_the_current_object():
    def resolve():
        raise OSError("pointer file unreadable")

    f = Follower(resolve, lambda key: key, name="t", every_s=0)
    assert f.check(wait=True) is False and f.current is None


def test_a_build_overtaken_by_a_newer_version_is_discarded_and_retired():
    src, retired = _Source(), []
    f = Follower(src.resolve, src.build, name="t", every_s=0, retire=retired.append)
    f.check(wait=True)
    src.gate.clear()
    src.key = "v2"
    f.check()  # v2 starts building, blocked
    assert _wait(lambda: f.building)
    src.key = "v3"
    src.gate.set()
    assert f.check(wait=True) and f.current == "object-v3"
    assert _wait(lambda: "object-v2" in retired and "object-v1" in retired)
    assert f.current == "object-v3"  # the late v2 never replaced v3


def test_retarget_follows_another_reference_at_once():
    f = Follower(lambda: "a", lambda key: key.upper(), name="t", every_s=3600)
    f.check(wait=True)
    assert f.retarget(lambda: "b", wait=True) and f.current == "B"


def test_fixed_never_changes():
    f = Follower.fixed("x")
    assert f.current == "x" and f.check(wait=True) is False and not f.building

"""PeerWatchdog's handling of a failed collective (no processes: the peer's death is simulated)."""
import signal
import subprocess
import sys
import threading
import time

import pytest

from twostep_asteroid.watchdog import PeerWatchdog


class _Stopped(Exception):
    pass


def _watchdog(dies_after_s):
    dog = PeerWatchdog(comm_error_wait_s=3.0)
    dog.peers = [{"rank": 1, "pid": 12345, "start": 0}]
    died = threading.Event()
    threading.Timer(dies_after_s, died.set).start()
    dog.dead_peers = lambda: list(dog.peers) if died.is_set() else []
    stopped = []

    def stop(trainer, dead):
        stopped.append(dead)
        raise _Stopped

    dog._stop = stop
    return dog, stopped


def test_a_collective_error_before_the_peer_is_seen_dead_still_reports_the_death():
    """gloo's "Connection reset by peer" can come while the killed rank is still exiting: the
    watchdog waits for the death to show, then reports it (exit status 3), not a local error."""
    dog, stopped = _watchdog(dies_after_s=0.5)
    try:
        dog.on_exception(None, None, RuntimeError("Connection reset by peer"))
    except _Stopped:
        pass
    assert stopped and stopped[0][0]["rank"] == 1


def test_a_local_error_with_live_peers_is_left_to_lightning():
    dog, stopped = _watchdog(dies_after_s=60)
    start = time.monotonic()
    dog.on_exception(None, None, OSError("No space left on device"))  # not a collective's error
    assert not stopped and time.monotonic() - start < 1.0


_OBSERVER_RACE = r'''
import os, signal, subprocess, sys, time, types
from lightning_fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
from twostep_asteroid.explock import process_start_time
from twostep_asteroid.watchdog import PeerWatchdog

child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
trainer = types.SimpleNamespace(global_rank=0, strategy=types.SimpleNamespace(launcher=types.SimpleNamespace(procs=[child])))
observer = _ChildProcessObserver(main_pid=os.getpid(), child_processes=[child], sleep_period=0.1)
dog = PeerWatchdog(resume_hint="resume with ./run.sh --stage 2")
dog.peers = [{"rank": 1, "pid": child.pid, "start": process_start_time(child.pid)}]
dog._armed.set()  # armed, but its own polling thread is not started: only Lightning's observer looks
if sys.argv[1] == "adopt":
    assert dog.adopt_observers(trainer, threads=[observer]) == 1
observer.start()
os.kill(child.pid, signal.SIGKILL)
time.sleep(10)
print("still running")
'''


@pytest.mark.parametrize("adopt", [True, False])
def test_lightning_s_observer_seeing_the_death_first_still_exits_3_with_the_message(tmp_path, adopt):
    """Lightning's launcher SIGKILLs every process (rank 0 ends with -9, no message) when its own
    observer sees a dead child rank before the watchdog does: adopted, it goes through the watchdog."""
    script = tmp_path / "race.py"
    script.write_text(_OBSERVER_RACE)
    out = subprocess.run([sys.executable, str(script), "adopt" if adopt else "leave"], capture_output=True,
                         text=True, timeout=60)
    if adopt:
        assert out.returncode == 3, out.stderr[-2000:]
        assert "[rank 0] rank 1 (pid" in out.stderr and "died during training" in out.stderr
        assert "resume with ./run.sh --stage 2" in out.stderr
    else:  # what Lightning alone does: the reason the adoption exists
        assert out.returncode == -signal.SIGKILL


def test_a_later_watchdog_takes_the_observer_over():
    """A second fit in the same process (same Lightning observer) reports through its own watchdog."""
    from lightning_fabric.strategies.launchers.subprocess_script import _ChildProcessObserver

    observer = _ChildProcessObserver(main_pid=0, child_processes=[])
    lightning_kill = observer._terminate_all
    first, second = PeerWatchdog(), PeerWatchdog()
    stopped = []
    for dog in (first, second):
        dog._stop = lambda trainer, dead, dog=dog: stopped.append(dog)
        assert dog.adopt_observers(None, threads=[observer]) == 1
    first.disarm()
    second._armed.set()
    observer._terminate_all()
    assert stopped == [second] and observer._lightning_terminate_all == lightning_kill

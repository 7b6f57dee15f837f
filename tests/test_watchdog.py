"""PeerWatchdog's handling of a failed collective (no processes: the peer's death is simulated)."""
import threading
import time

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

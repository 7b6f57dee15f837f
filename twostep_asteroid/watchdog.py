"""Stop a multi-process (DDP) run soon after one of its processes dies, saying which one.

Without it, the survivors of a ``kill -9`` learn of the death only from the collective they are in
(gloo: "Connection reset by peer", with no rank) or, when the dead process's sockets stay open (a
hung or stopped process, a DataLoader worker still holding them, another machine), only when the
process group's timeout expires (``trainer.ddp_timeout_minutes``). :class:`PeerWatchdog` is a
Lightning callback: at ``setup`` every process learns the host and pid of every other one (one
``all_gather_object``), then a daemon thread polls those on the same host. When one is gone it
prints which rank died and how to resume, kills the local child ranks it launched, and exits
with status :data:`EXIT_PEER_DIED`.

With Lightning's DDP on one machine (no torchrun, no SLURM), global rank 0 is the process that was
started (``python -m twostep_asteroid.train``, under ``run.sh``) and it launches ranks 1..N-1 as its
child processes (same command line, ``LOCAL_RANK`` set). "The launcher" and "rank 0" are then the
same process.

Lightning's launcher also watches its child ranks (a ``_ChildProcessObserver`` thread, every 5 s):
when one exits with an error it SIGKILLs every process, itself included, so that rank 0 would end
with ``-9`` and no message whenever its check comes before ours. :meth:`PeerWatchdog.adopt_observers`
routes that path through :meth:`PeerWatchdog._stop` while the watchdog is armed, so that the exit
status and the message do not depend on which thread looks first.
"""
import logging
import os
import signal
import socket
import sys
import threading
import time

import pytorch_lightning as pl

from .explock import process_alive, process_start_time

log = logging.getLogger("twostep_asteroid.watchdog")

#: Exit status of a process stopped because another rank died.
EXIT_PEER_DIED = 3


class PeerWatchdog(pl.Callback):
    """Ends every process of a DDP run within about ``poll_s`` of the death of one of them.

    Args:
        resume_hint (str): What the user should run to resume (printed with the rank that died).
        poll_s (float): Seconds between two checks of the other processes.
        comm_error_wait_s (float): After a ``RuntimeError`` on this process (how a failed collective
            surfaces), how long to wait for a peer's death to show before treating the error as local.

    Only processes on the same host are watched (pids mean nothing elsewhere); across machines the
    process group's timeout bounds the wait. An exception on this process (a full disk, a bad
    file, SIGTERM) disarms the watchdog first, so that a rank stopped on purpose by Lightning's
    error handling is not reported as a death.
    """

    def __init__(self, resume_hint="", poll_s=0.5, comm_error_wait_s=3.0):
        self.resume_hint = resume_hint
        self.poll_s = poll_s
        self.comm_error_wait_s = comm_error_wait_s
        self.peers = []
        self._armed = threading.Event()
        self._thread = None

    def setup(self, trainer, pl_module, stage):
        import torch.distributed as dist

        if trainer.world_size < 2 or not (dist.is_available() and dist.is_initialized()):
            return
        me = {"rank": trainer.global_rank, "host": socket.gethostname(), "pid": os.getpid(),
              "start": process_start_time(os.getpid())}
        everyone = [None] * trainer.world_size
        dist.all_gather_object(everyone, me)
        self.peers = [p for p in everyone if p["host"] == me["host"] and p["rank"] != me["rank"]]
        if not self.peers:
            return
        self._armed.set()
        self.adopt_observers(trainer)
        self._thread = threading.Thread(target=self._watch, args=(trainer,), name="twostep-peer-watchdog",
                                        daemon=True)
        self._thread.start()

    def adopt_observers(self, trainer, threads=None):
        """Make Lightning's child-process observers (in ``threads``, by default every live thread)
        report a dead child rank through this watchdog while it is armed.

        Returns:
            int: How many observers were adopted.
        """
        try:
            from lightning_fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
        except ImportError:  # another Lightning layout: its observer keeps its own behaviour
            return 0
        adopted = 0
        for thread in threading.enumerate() if threads is None else threads:
            if isinstance(thread, _ChildProcessObserver) and hasattr(thread, "_terminate_all"):
                # Lightning's own method is kept once, so that a later fit's watchdog (same process,
                # same observer) takes the observer over from this one.
                lightning_terminate_all = getattr(thread, "_lightning_terminate_all", thread._terminate_all)
                thread._lightning_terminate_all = lightning_terminate_all
                thread._terminate_all = self._on_observer_kill(trainer, thread, lightning_terminate_all)
                adopted += 1
        return adopted

    def _on_observer_kill(self, trainer, observer, lightning_terminate_all):
        def terminate_all():
            if not self._armed.is_set():  # outside training (or stopped on purpose): Lightning's way
                return lightning_terminate_all()
            by_pid = {p["pid"]: p for p in self.peers}
            dead = [by_pid.get(proc.pid, {"rank": "?", "pid": proc.pid})
                    for proc in observer._child_processes if proc.returncode]
            self._stop(trainer, dead or self.dead_peers())
        return terminate_all

    def disarm(self):
        self._armed.clear()

    def on_exception(self, trainer, pl_module, exception):
        self.disarm()
        # A collective can fail (gloo: "Connection reset by peer") while the killed peer is still
        # exiting, before /proc shows it dead: a communication error waits a moment for the death.
        patience = self.comm_error_wait_s if isinstance(exception, RuntimeError) and self.peers else 0.0
        deadline = time.monotonic() + patience
        dead = self.dead_peers()
        while not dead and time.monotonic() < deadline:
            time.sleep(0.05)
            dead = self.dead_peers()
        if dead:  # the collective failed first: say why, and stop
            self._stop(trainer, dead)

    def teardown(self, trainer, pl_module, stage):
        self.disarm()

    def dead_peers(self):
        return [p for p in self.peers if not process_alive(p["pid"], p["start"])]

    def message(self, trainer, dead):
        who = ", ".join(f"rank {p['rank']} (pid {p['pid']})" for p in dead)
        return (f"[rank {trainer.global_rank}] {who} died during training: stopping this process too "
                f"(exit status {EXIT_PEER_DIED}) instead of waiting in a collective. {self.resume_hint}")

    def _watch(self, trainer):
        while self._armed.is_set():
            dead = self.dead_peers()
            if dead and self._armed.is_set():
                self._stop(trainer, dead)
            time.sleep(self.poll_s)

    def _stop(self, trainer, dead):
        """Report, end the local child ranks, and exit at once: the run cannot continue, and a
        normal exit could wait in a collective (or in the teardown's barrier) for the dead rank."""
        log.error(self.message(trainer, dead))
        for handler in logging.getLogger().handlers + log.handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        self._kill_children(trainer)
        os._exit(EXIT_PEER_DIED)

    @staticmethod
    def _kill_children(trainer):
        """The local ranks that this process launched (Lightning's subprocess launcher)."""
        for proc in getattr(trainer.strategy.launcher, "procs", None) or []:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)

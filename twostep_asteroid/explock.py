"""One run at a time per experiment folder: a lock file ``<exp>/.lock`` holding the owner's pid.

``run.sh`` takes it right after creating ``exp/<tag>/`` and releases it on exit:

    python -m twostep_asteroid.explock acquire exp/<tag> --pid $$
    python -m twostep_asteroid.explock release exp/<tag> --pid $$

A second run on the same folder refuses at once, naming the pid (and host) of the first. A lock
whose process is gone (a run killed with ``kill -9``, a crashed machine) is stale: it is taken over,
with a notice. A lock taken on another host cannot be checked from here and is never taken over.
Under ``srun``, only task 0 (``SLURM_PROCID`` 0) takes the lock; the other tasks of the same job
belong to the same run.
"""
import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path

from .fileio import atomic_write_text

LOCK_NAME = ".lock"


def process_start_time(pid):
    """Start time of ``pid`` (clock ticks since boot, from ``/proc``), or ``None``: tells a live
    process from a new one that reused its pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def process_alive(pid, start_time=None):
    """Whether ``pid`` runs (a zombie, or a pid reused by another process, counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            return False
        return start_time is None or int(fields[19]) == start_time
    except FileNotFoundError:
        return False
    except (OSError, IndexError, ValueError):  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class ExperimentLocked(RuntimeError):
    """Another live run holds the experiment folder."""


def lock_path(exp_dir):
    return Path(exp_dir) / LOCK_NAME


def read_lock(exp_dir):
    """The lock's content (``pid``, ``host``, ``start``, ``since``, ``command``), or ``None``."""
    try:
        return json.loads(lock_path(exp_dir).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable or half-written by a killed run: stale


def _describe(owner):
    since = time.strftime("%F %T", time.localtime(owner["since"])) if owner.get("since") else "?"
    return f"pid {owner.get('pid')} on {owner.get('host')}, since {since}: {owner.get('command', '?')}"


def acquire(exp_dir, pid=None, command="", notify=print):
    """Take the lock of ``exp_dir`` for ``pid`` (default: this process).

    Args:
        exp_dir (str or Path): The experiment folder (exists).
        pid (int): The process that owns the run (``run.sh``'s ``$$``).
        command (str): Shown to a run that is refused.
        notify (callable): Receives the notice when a stale lock is taken over.

    Raises:
        ExperimentLocked: Another live process (or one on another host) holds it.

    Returns:
        dict: The lock now held.
    """
    pid = int(pid or os.getpid())
    me = {"pid": pid, "host": socket.gethostname(), "start": process_start_time(pid), "since": time.time(),
          "command": command}
    path = lock_path(exp_dir)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            owner = read_lock(exp_dir)
            if owner is None:  # released meanwhile
                continue
            if owner.get("pid") == pid and owner.get("host") == me["host"]:
                return owner  # already ours
            if owner.get("host") not in (None, me["host"]):
                raise ExperimentLocked(
                    f"{Path(exp_dir)} is in use by another run ({_describe(owner)}). It runs on another "
                    f"host, so it cannot be checked from here: if that run is over, remove {path}.")
            if owner and process_alive(int(owner.get("pid", 0)), owner.get("start")):
                raise ExperimentLocked(
                    f"{Path(exp_dir)} is in use by another run ({_describe(owner)}). Wait for it to "
                    f"finish, stop it (kill {owner.get('pid')}), or use another --tag.")
            notify(f"Taking over the stale lock {path}: its run ({_describe(owner) if owner else 'unreadable'}) "
                   "is gone.")
            # Replace it atomically, then check that no other run did the same in between.
            atomic_write_text(path, json.dumps(me))
            if read_lock(exp_dir) == me:
                return me
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me))
        return me
    raise ExperimentLocked(f"{Path(exp_dir)}: another run took the lock {path} at the same time.")


def release(exp_dir, pid=None):
    """Remove the lock if ``pid`` (default: this process) holds it. Returns whether it did."""
    owner = read_lock(exp_dir)
    if owner and owner.get("pid") == int(pid or os.getpid()) and owner.get("host") == socket.gethostname():
        lock_path(exp_dir).unlink(missing_ok=True)
        return True
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(description="Lock an experiment folder for one run (run.sh).")
    parser.add_argument("action", choices=["acquire", "release"])
    parser.add_argument("exp_dir")
    parser.add_argument("--pid", type=int, required=True, help="the owning process (run.sh: $$)")
    parser.add_argument("--command", default="", help="shown to a refused run")
    args = parser.parse_args(argv)
    if os.environ.get("SLURM_PROCID", "0") != "0":
        return 0  # srun: task 0 holds the lock for the whole job
    if args.action == "release":
        release(args.exp_dir, args.pid)
        return 0
    try:
        acquire(args.exp_dir, args.pid, args.command, notify=lambda m: print(m, file=sys.stderr))
    except ExperimentLocked as err:
        print(f"Refusing to run: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

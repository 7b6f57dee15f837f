"""Faults of the multi-process default (docs/reliability.md, "Faults"): a full disk, two runs on
one experiment, a dead DDP worker, SIGTERM/Ctrl-C, two simulated nodes.

The DDP tests start ``python -m twostep_asteroid.train`` as run.sh does. With Lightning's DDP on one
machine that process is global rank 0 and it launches rank 1 as its child process, so "killing
rank 1" is ``kill -9`` of that child and "killing rank 0" is ``kill -9`` of the started process
(which is also Lightning's launcher).
"""
import csv
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from twostep_asteroid import TwoStepTDCN
from twostep_asteroid import explock
from twostep_asteroid.config import load_config
from twostep_asteroid import fileio
from twostep_asteroid.data import prompts
from twostep_asteroid.fileio import DiskFullError, atomic_torch_save, atomic_write_bytes
from twostep_asteroid.serialization import BEST_MODEL_NAME
from twostep_asteroid.data.prompts import CorpusConfig, build_corpus
from twostep_asteroid.train import DONE, train_step2
from tests.test_data_prompts import make_fake_tree
from tests.test_train import TINY, corpus, step1_dir  # noqa: F401  (module-scoped fixtures)

DDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
RECIPE = Path(__file__).resolve().parents[1] / "egs" / "wsj0-2mix" / "twostep"


def _logged_steps(metrics_csv):
    with open(metrics_csv) as f:
        return [int(row["step"]) for row in csv.DictReader(f) if row.get("step")]


def _enospc(*args):
    return OSError(errno.ENOSPC, "No space left on device", *args)


# ---------------------------------------------------------------------------------------------
# Full disk
# ---------------------------------------------------------------------------------------------
def test_full_disk_during_a_checkpoint_keeps_the_previous_one_then_resumes(step1_dir, corpus, tmp_path,  # noqa: F811
                                                                            monkeypatch):
    """The step-4 save of last.ckpt hits ENOSPC halfway: the error names the file and says the
    disk is full, last.ckpt still holds step 2 and loads, no partial file is left; once the
    "space is freed" the same call resumes from step 2 and finishes."""
    from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

    exp = tmp_path / "step2"
    real_save = TorchCheckpointIO.save_checkpoint

    def fill_up(self, checkpoint, path, storage_options=None):
        if checkpoint["global_step"] < 4:
            return real_save(self, checkpoint, path, storage_options)
        Path(path).write_bytes(b"\0" * 1000)  # part of the file made it to the disk
        raise _enospc(str(path))

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", fill_up)
    with pytest.raises(DiskFullError) as info:
        train_step2(load_config(None, TINY), corpus, exp, step1_dir / BEST_MODEL_NAME)
    last = exp / "checkpoints" / "last.ckpt"
    message = str(info.value)
    assert "the disk is full" in message and str(exp / "checkpoints") in message and ".ckpt" in message
    assert "is unchanged" in message and "./run.sh --stage 2" in message
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 2
    assert not [p.name for p in (exp / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert not (exp / DONE).exists()
    monkeypatch.undo()
    train_step2(load_config(None, TINY), corpus, exp, step1_dir / BEST_MODEL_NAME)
    assert json.loads((exp / "summary.json").read_text())["global_step"] == 4
    assert min(_logged_steps(exp / "logs" / "version_1" / "metrics.csv")) >= 2


def _failing_open(after, counter):
    """``open`` for fileio whose writes fail with ENOSPC from the ``after``-th file on."""
    import builtins

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise _enospc()

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fake_open(path, mode="r", *args, **kwargs):
        f = builtins.open(path, mode, *args, **kwargs)
        if "w" in mode:
            counter["n"] += 1
            if counter["n"] >= after:
                return Full(f)
        return f

    return fake_open


def test_full_disk_during_the_corpus_build_names_the_file_then_resumes(tmp_path, monkeypatch, capsys, caplog):
    tree = make_fake_tree(tmp_path / "src")
    out = tmp_path / "corpus"
    argv = ["--src_dir", str(tree), "--out", str(out), "--n_tr", "6", "--n_cv", "2", "--n_tt", "2", "--no_progress"]
    counter = {"n": 0}
    monkeypatch.setattr(fileio, "open", _failing_open(30, counter), raising=False)
    assert prompts.main(argv) == 1
    err = capsys.readouterr().err
    assert "the disk is full" in err and f"Cannot write {out}/" in err and "--stage 0" in err
    assert counter["n"] >= 30 and not (out / ".done").exists()
    assert not list(out.rglob("*.tmp"))  # the partial file was removed
    monkeypatch.undo()
    with caplog.at_level("INFO"):
        assert prompts.main(argv) == 0
    assert "Resuming an interrupted build" in caplog.text
    assert (out / ".done").is_file()
    ref = tmp_path / "ref"
    build_corpus([tree], ref, CorpusConfig(n_tr=6, n_cv=2, n_tt=2), progress=False)
    wavs = sorted(p.relative_to(ref) for p in ref.rglob("*.wav"))
    assert wavs == sorted(p.relative_to(out) for p in out.rglob("*.wav"))
    assert all((ref / w).read_bytes() == (out / w).read_bytes() for w in wavs)


def test_full_disk_during_separation_stops_naming_the_file(tmp_path, monkeypatch, capsys):
    """libsndfile says only "System error." for ENOSPC: with (simulated) no free space left the
    CLI names the output, says the disk is full, leaves no partial file and stops."""
    from twostep_asteroid.cli import separate_main

    model = TwoStepTDCN(n_src=2, n_filters=16, kernel_size=16, stride=8, bn_chan=8, hid_chan=8, n_blocks=2,
                        n_repeats=1)
    torch.save(model.serialize(), tmp_path / "model.pth")
    for name in ("a", "b"):
        sf.write(str(tmp_path / f"{name}.wav"), np.random.RandomState(0).randn(8000).astype("float32") * 0.1, 8000)
    out = tmp_path / "sep"

    def full(self, data):
        raise sf.LibsndfileError(0, "System error.")

    monkeypatch.setattr(sf.SoundFile, "write", full)
    monkeypatch.setattr(fileio, "free_bytes", lambda folder: 4096)
    status = separate_main([str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), "--model", str(tmp_path / "model.pth"),
                            "--out_dir", str(out), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert status == 1
    assert f"Cannot write {out / 'a_s1.wav'}: the disk is full" in err and "Separated 0/2" in err
    assert "b.wav" not in err  # stopped: the next file was not tried
    assert list(out.iterdir()) == []


def _mount_tmpfs(path, size):
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return proc.returncode == 0


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mount = tmp_path / "small"
    if os.geteuid() != 0 or not _mount_tmpfs(mount, "256k"):
        pytest.skip("needs root to mount a small tmpfs (the ENOSPC simulations above run everywhere)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_real_full_tmpfs_keeps_the_previous_files(tiny_tmpfs):
    """On a real 256 KiB tmpfs: torch.save's own "unexpected pos" RuntimeError and Python's
    ENOSPC both become DiskFullError; the previous file is intact, no temporary file remains."""
    small = {"w": torch.arange(1000.0)}
    atomic_torch_save(small, tiny_tmpfs / "last.ckpt")
    atomic_write_bytes(tiny_tmpfs / "m.json", b"[1]")
    big = {"w": torch.randn(200_000)}
    with pytest.raises(DiskFullError, match=f"Cannot write {tiny_tmpfs / 'last.ckpt'}: the disk is full"):
        atomic_torch_save(big, tiny_tmpfs / "last.ckpt")
    with pytest.raises(DiskFullError, match="the disk is full"):
        atomic_write_bytes(tiny_tmpfs / "m.json", b"x" * 400_000)
    assert torch.equal(torch.load(tiny_tmpfs / "last.ckpt")["w"], small["w"])
    assert (tiny_tmpfs / "m.json").read_bytes() == b"[1]"
    assert sorted(p.name for p in tiny_tmpfs.iterdir()) == ["last.ckpt", "m.json"]


# ---------------------------------------------------------------------------------------------
# Two runs on one experiment
# ---------------------------------------------------------------------------------------------
def test_lock_refuses_a_live_owner_and_takes_over_a_stale_one(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        explock.acquire(tmp_path, sleeper.pid, command="run.sh --tag X")
        with pytest.raises(explock.ExperimentLocked, match=f"pid {sleeper.pid} on {socket.gethostname()}"):
            explock.acquire(tmp_path, os.getpid())
        assert not explock.release(tmp_path, os.getpid())  # not ours: kept
    finally:
        sleeper.kill()
        sleeper.wait()
    notices = []
    held = explock.acquire(tmp_path, os.getpid(), notify=notices.append)
    assert held["pid"] == os.getpid()
    assert len(notices) == 1 and "stale lock" in notices[0] and str(sleeper.pid) in notices[0]
    assert explock.release(tmp_path, os.getpid()) and not (tmp_path / ".lock").exists()


def test_lock_of_another_host_is_never_taken_over(tmp_path):
    (tmp_path / ".lock").write_text(json.dumps({"pid": 1, "host": "elsewhere", "since": 0}))
    with pytest.raises(explock.ExperimentLocked, match="another host.*remove"):
        explock.acquire(tmp_path, os.getpid())


@pytest.mark.slow
def test_run_sh_second_run_refuses_then_a_stale_lock_is_taken_over(corpus, tmp_path):  # noqa: F811
    """A first ./run.sh trains step 1; a second one on the same tag refuses at once naming the
    first's pid; after ``kill -9`` of the first, a third takes the stale lock over and runs."""
    exp_root = tmp_path / "exp"
    common = ["--tag", "X", "--exp_root", str(exp_root), "--data_root", str(Path(corpus).parents[1]),
              "--overrides", " ".join(TINY + ["step1.max_steps=2000", "step1.val_every_n_steps=1000"])]
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(RECIPE.parents[2]), os.environ.get("PYTHONPATH", "")]))
    first = subprocess.Popen(["./run.sh", "--stage", "1", "--stop_stage", "1", *common], cwd=RECIPE, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        lock = exp_root / "X" / ".lock"
        deadline = time.time() + 300
        while not lock.is_file() and time.time() < deadline and first.poll() is None:
            time.sleep(0.2)
        assert json.loads(lock.read_text())["pid"] == first.pid
        second = subprocess.run(["./run.sh", "--stage", "1", "--stop_stage", "1", *common], cwd=RECIPE, env=env,
                                capture_output=True, text=True, timeout=300)
        assert second.returncode != 0
        assert f"Refusing to run: {exp_root / 'X'} is in use by another run (pid {first.pid} on" in second.stderr
        assert first.poll() is None, "the refused run must not disturb the first"
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)  # run.sh, tee and the training: no EXIT trap runs
        first.wait()
    assert json.loads(lock.read_text())["pid"] == first.pid  # left behind: stale
    third = subprocess.run(["./run.sh", "--stage", "9", *common], cwd=RECIPE, env=env, capture_output=True,
                           text=True, timeout=300)
    assert third.returncode == 0, third.stderr[-2000:]
    assert f"Taking over the stale lock {lock}: its run (pid {first.pid} on" in third.stderr
    assert not lock.exists()  # released at exit


# ---------------------------------------------------------------------------------------------
# DDP: a dead worker, SIGTERM, two nodes
# ---------------------------------------------------------------------------------------------
def _step2_cmd(corpus, exp, front_end, *extra):  # noqa: F811
    return [sys.executable, "-m", "twostep_asteroid.train", "step2", "--data_dir", str(corpus), "--exp_dir", str(exp),
            "--front_end", str(front_end), *TINY, *extra]


def _children(pid):
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            kids += [int(c) for c in f.read().split()]
    return kids


def _start_and_wait_for_checkpoint(cmd, exp, log):
    """Start a DDP training, return it with its child (rank 1) once a last.ckpt exists."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    last = exp / "checkpoints" / "last.ckpt"
    deadline = time.time() + 400
    while not last.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert last.is_file(), "no checkpoint before the fault"
    kids = _children(proc.pid)
    assert len(kids) == 1, kids
    return proc, kids[0]


def _wait_gone(pids, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not [p for p in pids if explock.process_alive(p)]:
            return True
        time.sleep(0.1)
    return False


def _resume_and_check(cmd, exp, saved_step, max_steps):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"Resuming from {exp / 'checkpoints' / 'last.ckpt'}" in out.stderr
    versions = sorted((exp / "logs").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    assert len(versions) == 2
    assert min(_logged_steps(versions[-1] / "metrics.csv")) >= saved_step  # continued, not restarted
    assert json.loads((exp / "summary.json").read_text())["global_step"] == max_steps
    TwoStepTDCN.from_pretrained(str(exp / BEST_MODEL_NAME))


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["rank0", "rank1"])
def test_kill_9_of_a_ddp_worker_ends_the_run_then_it_resumes(step1_dir, corpus, tmp_path, victim):  # noqa: F811
    exp = tmp_path / "killed"
    cmd = _step2_cmd(corpus, exp, step1_dir / BEST_MODEL_NAME, *DDP, "step2.max_steps=60", "step2.val_every_n_steps=30",
                     "step2.ckpt_every_n_steps=10")
    with open(tmp_path / "run.log", "w") as log:
        proc, rank1 = _start_and_wait_for_checkpoint(cmd, exp, log)
        os.kill(proc.pid if victim == "rank0" else rank1, signal.SIGKILL)
        killed_at = time.time()
        status = proc.wait(timeout=120)
        survivor_gone = _wait_gone([rank1], 120)
        elapsed = time.time() - killed_at
    text = (tmp_path / "run.log").read_text(errors="replace")
    print(f"{victim} killed: everything ended {elapsed:.1f} s later")
    assert survivor_gone
    dead, survivor = ("0", "1") if victim == "rank0" else ("1", "0")
    if victim == "rank1":
        assert status == 3  # PeerWatchdog's exit status on rank 0
    assert f"[rank {survivor}] rank {dead} (pid {proc.pid if victim == 'rank0' else rank1}) died during training" in text
    assert "./run.sh --stage 2" in text
    saved = torch.load(exp / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]
    assert 0 < saved < 60 and not (exp / DONE).exists()
    _resume_and_check(cmd, exp, saved, 60)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM to every process", "SIGINT to every process", "SIGTERM to rank 0"])
def test_sigterm_or_ctrl_c_saves_a_checkpoint_then_resumes(step1_dir, corpus, tmp_path, how):  # noqa: F811
    """What a scheduler (SIGTERM to every process of the job) or Ctrl-C in a terminal (SIGINT to
    the foreground process group) does: both ranks stop at the same step, last.ckpt holds it, the
    exit status is 128 + the signal, and the same command resumes from that step."""
    exp = tmp_path / "stopped"
    # 300 steps: on an idle machine the tiny model runs ~50 steps/s, so that the signal sent 1 s after
    # the step-10 save still finds the training running.
    cmd = _step2_cmd(corpus, exp, step1_dir / BEST_MODEL_NAME, *DDP, "step2.max_steps=300", "step2.val_every_n_steps=30",
                     "step2.ckpt_every_n_steps=10")
    sig = signal.SIGINT if "SIGINT" in how else signal.SIGTERM
    with open(tmp_path / "run.log", "w") as log:
        proc, rank1 = _start_and_wait_for_checkpoint(cmd, exp, log)
        time.sleep(1.0)  # past the step-10 save
        sent = time.time()
        if "every" in how:
            os.killpg(proc.pid, sig)
        else:
            os.kill(proc.pid, sig)
        status = proc.wait(timeout=120)
        assert _wait_gone([rank1], 120)
        elapsed = time.time() - sent
    text = (tmp_path / "run.log").read_text(errors="replace")
    print(f"{how}: everything ended {elapsed:.1f} s later")
    assert status == 128 + sig, text[-3000:]
    saved = torch.load(exp / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["global_step"]
    assert f"{sig.name}: saved step {saved} to {exp / 'checkpoints' / 'last.ckpt'}" in text
    assert 10 < saved < 300 and not (exp / DONE).exists()
    _resume_and_check(cmd, exp, saved, 300)


@pytest.mark.slow
def test_two_simulated_nodes_match_one_node_with_two_processes(step1_dir, corpus, tmp_path):  # noqa: F811
    """Two launches as SLURM/torchrun would start them on two machines (MASTER_ADDR=127.0.0.1,
    NODE_RANK 0/1, WORLD_SIZE 2, one process each, num_nodes=2), gloo on loopback. The model
    loads, only global rank 0 writes, and steps, validations and losses equal those of one node
    with two processes (same effective batch: batch_size x 2)."""
    def run_one_node():
        exp = tmp_path / "one_node"
        out = subprocess.run(_step2_cmd(corpus, exp, step1_dir / BEST_MODEL_NAME, *DDP), capture_output=True, text=True,
                             timeout=600, env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert out.returncode == 0, out.stderr[-3000:]
        return exp

    exp = tmp_path / "two_nodes"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = _step2_cmd(corpus, exp, step1_dir / BEST_MODEL_NAME, "trainer.accelerator=cpu", "trainer.devices=1",
                     "trainer.num_nodes=2", "trainer.strategy=ddp")
    procs = []
    for node in (0, 1):
        env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   NODE_RANK=str(node), WORLD_SIZE="2", GLOO_SOCKET_IFNAME="lo")
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in logs[0] and "GLOBAL_RANK: 1, MEMBER: 2/2" in logs[1]
    model = TwoStepTDCN.from_pretrained(str(exp / BEST_MODEL_NAME))
    assert model.n_src == 2
    names = sorted(p.relative_to(exp).as_posix() for p in exp.rglob("*"))
    assert [n for n in names if n.startswith("logs/version_")] == ["logs/version_0", "logs/version_0/hparams.yaml",
                                                                   "logs/version_0/metrics.csv"]
    assert not [n for n in names if n.endswith(".tmp")]
    one = run_one_node()
    for name in ("summary.json",):
        a, b = json.loads((exp / name).read_text()), json.loads((one / name).read_text())
        assert a["global_step"] == b["global_step"] == 4
    rows = {k: list(csv.DictReader((d / "logs" / "version_0" / "metrics.csv").open())) for k, d in
            (("two", exp), ("one", one))}
    for key in ("loss", "val_loss"):
        two = [float(r[key]) for r in rows["two"] if r.get(key)]
        ref = [float(r[key]) for r in rows["one"] if r.get(key)]
        assert len(two) == len(ref) > 0 and np.allclose(two, ref, rtol=1e-5), (key, two, ref)

"""Every command of the README, run as a user types it.

The commands are read from README.md itself (its ``bash`` and ``python`` blocks), so a README line
that drifts from the code (a renamed option, a wrong path, a snippet that no longer runs) fails
here. Each line is run through ``bash -c`` as written, with only these changes:

- placeholder paths (``/data/wsj0-mix/2speakers``, ``/data/wsj0``, ``/data/create-speaker-mixtures``)
  point at fake trees built in the test with the real layouts and file names;
- recipe lines get ``--data_root/--exp_root/--deb_cache`` into the test's folder and tiny model
  sizes and step counts (``--overrides``), because the README's confs are 30-minute or GPU-sized;
- the Hub id ``org/name`` resolves through a real, offline ``huggingface_hub`` cache holding the
  model that the test's own recipe run packaged;
- lines that name ``exp/default_prompts`` (the README's ``./run.sh`` with no arguments) read and
  write the test's own run of it.

A README command that no handler below knows fails the test: add the command's case here.
"""
import csv
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from twostep_asteroid.config import load_config
from twostep_asteroid.serialization import BEST_MODEL_NAME

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "egs" / "wsj0-2mix" / "twostep"
README = ROOT / "README.md"
DEB_CACHE = Path(os.environ.get("TWOSTEP_DEB_CACHE", Path.home() / ".cache" / "twostep-asteroid" / "debs"))
TAG = "default_prompts"  # the tag of `./run.sh` with no arguments, which the README's paths name

TINY = ("data.segment=0.5 data.val_segment=1.0 data.num_workers=0 data.n_tr=24 data.n_cv=4 data.n_tt=4 "
        "front_end.n_filters=16 front_end.kernel_size=16 front_end.stride=8 "
        "step1.batch_size=2 step1.max_steps=4 step1.val_every_n_steps=2 step1.limit_val_batches=2 "
        "masker.bn_chan=8 masker.hid_chan=8 masker.n_blocks=2 masker.n_repeats=1 "
        "step2.batch_size=2 step2.max_steps=4 step2.val_every_n_steps=2 step2.limit_val_batches=2 "
        "step2.ckpt_every_n_steps=2 trainer.compile=false "
        "eval.metrics=[si_sdr] eval.n_examples=1 eval.max_utterances=3 eval.num_workers=1")


def readme_commands(text=None):
    """``(kind, command)`` for every command of the README's ``bash`` blocks (continuations joined,
    comment lines dropped; ``a && b`` gives both) and every ``python`` block (kind ``python``)."""
    text = README.read_text() if text is None else text
    out = []
    for lang, body in re.findall(r"```(bash|python)\n(.*?)```", text, flags=re.S):
        if lang == "python":
            out.append(("python", body))
            continue
        for line in body.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                if words:
                    # Kept as written where the shell must expand it (globs, braces), else normalised.
                    out.append(("bash", part.split(" #")[0].strip() if _needs_shell(part) else shlex.join(words)))
    unique = []
    for item in out:  # a command shown twice (quick start and recipe section) runs once
        if item not in unique:
            unique.append(item)
    return unique


def _needs_shell(line):
    return any(c in line for c in "{}*|")


def _ids():
    return [f"{kind}:{cmd.splitlines()[0][:70] if kind == 'python' else cmd[:70]}" for kind, cmd in readme_commands()]


def _tone(f0, seconds, sr=8000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 5))
    return (0.1 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def make_fake_wsj0mix(root, n=(6, 3, 3)):
    """A wsj0-2mix folder as the MERL scripts write it: ``wav8k/min/{tr,cv,tt}/{mix,s1,s2}/`` with the
    standard ``<utt1>_<snr1>_<utt2>_<snr2>.wav`` names."""
    speakers = ["01t", "02c", "40a", "05b"]
    for split, count in zip(("tr", "cv", "tt"), n):
        for k in range(count):
            a, b = speakers[k % 4], speakers[(k + 1) % 4]
            snr = round(0.37 * (k + 1), 4)
            name = f"{a}a010{k}_{snr}_{b}c020{k}_{-snr}.wav"
            s1, s2 = _tone(110 + 30 * k, 1.5, seed=k), _tone(190 + 20 * k, 1.5, seed=50 + k)
            for sub, x in (("s1", s1), ("s2", s2), ("mix", s1 + s2)):
                d = Path(root) / "wav8k" / "min" / split / sub
                d.mkdir(parents=True, exist_ok=True)
                sf.write(d / name, x, 8000, subtype="PCM_16")
    return Path(root)


class Workspace:
    """The test's folders, the fake trees, and one tiny recipe run (stages 0-4) under the README's
    default tag, whose outputs the README's Python, export, Hub and CLI lines use."""

    def __init__(self, root):
        from tests.test_data_wsj0mix import make_fake_wsj0
        from tests.test_hub import add_to_cache

        self.root = Path(root)
        self.wsj0mix = make_fake_wsj0mix(self.root / "wsj0-mix" / "2speakers")
        self.wsj0, self.lists, _ = make_fake_wsj0(self.root / "wsj0root")
        self._own = {}
        hf = self.root / "hf"
        self.env = dict(os.environ, PATH=f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}",
                        HF_HOME=str(hf), HF_HUB_CACHE=str(hf / "hub"), HF_HUB_OFFLINE="1",
                        OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
            self.env.pop(var, None)
        self.data = self.root / "data"
        self.exp = self.root / "exp"
        self.run(f"./run.sh --tag {TAG}", cwd=RECIPE,
                 extra=["--overrides", TINY, *self.recipe_args(self.data, self.exp)])
        hub_dir = self.exp / TAG / "hub"
        add_to_cache(hf / "hub", "org/name", {p.name: p.read_bytes() for p in hub_dir.iterdir()}, "b" * 40)
        # A user's working folder: the README's relative paths (exp/..., data/..., egs/...) resolve here.
        self.cwd = self.root / "user"
        (self.cwd / "egs" / "wsj0-2mix" / "twostep").mkdir(parents=True)
        for base in (self.cwd, self.cwd / "egs" / "wsj0-2mix" / "twostep"):
            (base / "exp").symlink_to(self.exp)
            (base / "data").symlink_to(self.data)
        (self.cwd / "egs" / "wsj0-2mix" / "twostep" / "conf").symlink_to(RECIPE / "conf")
        mixture = np.stack([_tone(140, 2.0), _tone(230, 2.0, seed=3)]).sum(0)
        for name in ("mix.wav", "mixture.wav"):
            sf.write(self.cwd / name, mixture, 8000)
        (self.cwd / "recordings").mkdir()
        sf.write(self.cwd / "recordings" / "call.wav", mixture[:12000], 8000)
        (self.cwd / "more").mkdir()
        sf.write(self.cwd / "more" / "a.flac", mixture, 8000)

    def causal_model(self):
        """A tiny causal model (conf/causal.yml) under the workspace's experiments, trained once."""
        path = self.exp / "causal_prompts" / "step2" / BEST_MODEL_NAME
        if not path.is_file():
            self.run("./run.sh --conf conf/causal.yml --stop_stage 2", cwd=RECIPE,
                     extra=["--overrides", TINY, *self.recipe_args(self.data, self.exp)])
        return path

    def recipe_args(self, data, exp):
        return ["--data_root", str(data), "--exp_root", str(exp), "--deb_cache", str(DEB_CACHE)]

    def own_corpus(self, placeholder):
        """The fake tree, with the real layout, that a "your own data" placeholder stands for (built once)."""
        from tests.e2e.test_own_data import LENGTH, N_TT, STEP
        from tests.fake_corpora import make_librimix, make_wham
        from tests.fake_esc50 import make_esc50
        from tests.test_data_audio_dir import make_audio_dir

        makers = {
            "/data/Libri2Mix": lambda d: make_librimix(d, sizes=(("train-360", 8), ("dev", 3), ("test", N_TT)),
                                                       n_samples=LENGTH, step=STEP),
            "/data/wham_mix": lambda d: make_wham(d, sizes=(("tr", 8), ("cv", 3), ("tt", N_TT)),
                                                  n_samples=LENGTH, step=STEP),
            "/data/ESC-50-master": lambda d: make_esc50(d, per_fold=(1, 1, 1, 1, 2), dur=(4.0, 5.0)),
            "/data/my_recordings": lambda d: make_audio_dir(d / "my_recordings", counts=(12, 4, 4)),
        }
        if placeholder not in self._own:
            self._own[placeholder] = makers[placeholder](self.root / "own" / placeholder.strip("/"))
        return self._own[placeholder]

    def substitute(self, command):
        for placeholder, real in (("/data/wsj0-mix/2speakers", self.wsj0mix),
                                  ("/data/create-speaker-mixtures", self.lists), ("/data/wsj0", self.wsj0)):
            command = command.replace(placeholder, str(real))
        for placeholder in ("/data/Libri2Mix", "/data/wham_mix", "/data/ESC-50-master", "/data/my_recordings"):
            if placeholder in command:
                command = command.replace(placeholder, str(self.own_corpus(placeholder)))
        return command

    def run(self, command, cwd, extra=(), timeout=1500):
        full = command + "".join(" " + shlex.quote(a) for a in extra)
        out = subprocess.run(["bash", "-c", full], cwd=cwd, env=self.env, capture_output=True, text=True,
                             timeout=timeout)
        assert out.returncode == 0, f"`{full}` failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out.stdout + out.stderr


# The budget keys of TINY: after the README's overrides, so that they win. A measurement command shown
# in the README (e.g. ``step2.max_steps=12000``) then runs as written, at the test's step counts.
BUDGET_KEYS = ("data.n_tr", "data.n_cv", "data.n_tt", "step1.max_steps", "step1.val_every_n_steps",
               "step1.limit_val_batches", "step2.max_steps", "step2.val_every_n_steps",
               "step2.limit_val_batches", "step2.ckpt_every_n_steps", "eval.max_utterances")
TINY_BUDGET = " ".join(w for w in TINY.split() if w.split("=")[0] in BUDGET_KEYS)


def _with_tiny_overrides(command):
    """The command with TINY around its --overrides: TINY's sizes first (the README's own overrides
    win there), TINY's budget keys last (they win: a README line with 12000 steps trains 4)."""
    words = shlex.split(command)
    if "--overrides" in words:
        i = words.index("--overrides")
        words[i + 1] = f"{TINY} {words[i + 1]} {TINY_BUDGET}"
        return shlex.join(words), []
    return command, ["--overrides", TINY]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    debs = sorted(DEB_CACHE.glob("*.deb"))
    assert debs, f"run `make debs` first: the corpus packages are not in {DEB_CACHE}"
    return Workspace(tmp_path_factory.mktemp("readme"))


def _run_recipe_line(ws, command, tmp_path):
    """A ``./run.sh`` line in its own experiment and data folders (the embedded corpus shared)."""
    if "--help" in command:
        out = ws.run(command, cwd=RECIPE)
        script = (RECIPE / "run.sh").read_text()
        options = re.search(r'_recipe_options="([^"]+)"', script).group(1).split()
        assert all(f"--{name}" in out for name in options), out
        return
    command, extra = _with_tiny_overrides(ws.substitute(command))
    data, exp = tmp_path / "data", tmp_path / "exp"
    data.mkdir()
    (data / "prompts").symlink_to(ws.data / "prompts")
    args = ws.recipe_args(data, exp)
    stage = re.search(r"--stage[ =](\d+)", command)
    if stage and int(stage.group(1)) > 0:
        # "after a finished stage N-1": the earlier stages of the same command, run first.
        earlier = re.sub(r"--stage[ =]\d+|--stop_stage[ =]\d+", "", command)
        ws.run(earlier, cwd=RECIPE, extra=[*extra, *args, "--stop_stage", str(int(stage.group(1)) - 1)])
    log = ws.run(command, cwd=RECIPE, extra=[*extra, *args])
    stop = re.search(r"--stop_stage[ =](\d+)", command)
    last = int(stop.group(1)) if stop else 4
    (tag_dir,) = [p for p in exp.iterdir() if p.is_dir()]
    if last >= 2:
        summary = json.loads((tag_dir / "step2" / "summary.json").read_text())
        assert summary["full_budget"] is True and summary["global_step"] == 4
        assert "step2: 4 of 4 steps" in log
    if last >= 3:
        results = json.loads((tag_dir / "eval" / "results.json").read_text())
        assert np.isfinite(results["si_sdr_imp"]) and 1 <= results["n_utterances"] <= 3
    if last >= 4:
        assert (tag_dir / "hub" / "model.safetensors").is_file()
    conf = (tag_dir / "conf.yml").read_text()
    noise = re.search(r"data\.noise=(\w+)", command)
    if noise:  # the noisy variant: trained, evaluated and carded with the noise
        color, snr = noise.group(1), yaml.safe_load(conf)["data"]["noise_snr_db"]
        assert yaml.safe_load(conf)["data"]["noise"] == color
        if last >= 3:
            assert json.loads((tag_dir / "eval" / "results.json").read_text())["noise"] == {"color": color,
                                                                                            "snr_db": snr}
    if last >= 4:
        card = (tag_dir / "hub" / "README.md").read_text()
        assert ("| training mixtures |" in card) == bool(noise), card
        if noise:
            assert f"| training mixtures | with added noise: {_noise_words(color, snr)} (`data.noise`" in card
    if "--precision bf16-mixed" in command:
        assert "precision: bf16-mixed" in conf
    if "--devices 2" in command:
        assert "devices: 2" in conf and "strategy: ddp" in conf
    if "--wsj0mix_dir" in command or "--wsj0_dir" in command:
        assert (data / "wsj2mix" / "json" / "tt" / "mix.json").is_file()
    # one data folder per option set: the options that are not the defaults name it
    noisy = "_sep_noisy" if "--task sep_noisy" in command else ""
    esc = "esc10" if "--esc10 true" in command else "esc50"
    for option, folder in (("--librimix_dir", "librimix" + noisy), ("--wham_dir", "wham" + noisy),
                           ("--esc50_dir", esc), ("--audio_dir", "audio_dir")):
        if option in command:
            assert (data / folder / "json" / "tt" / "mix.json").is_file(), sorted(data.iterdir())
    if "--esc10 true" in command:
        assert json.loads((data / "esc10" / "corpus.json").read_text())["name"] == "esc10-2mix"
    if "--held_out" in command:
        assert json.loads((tag_dir / "eval" / "results.json").read_text())["unseen"]["n_utterances"] > 0


def _run_compare_line(ws, command, tmp_path):
    script = command.split()[0]
    tiny = {"local/compare_frontends.sh": ["--Ns", "16", "--Ls", "16", "--steps", "4", "--windows", "64",
                                           "--max_utterances", "2"],
            "local/compare_two_step_e2e.sh": ["--steps", "4", "--step1_steps", "4", "--seeds", "0"]}[script]
    command, extra = _with_tiny_overrides(command)
    exp = tmp_path / "exp"
    ws.run(command, cwd=RECIPE, extra=[*extra, *tiny, "--data_dir", str(ws.data / "prompts" / "json"),
                                      "--exp_root", str(exp)])
    outputs = {"local/compare_frontends.sh": "compare_frontends/frontends.csv",
               "local/compare_two_step_e2e.sh": "compare_two_step_e2e/runs.csv"}[script]
    assert (exp / outputs).is_file()
    if script.endswith("e2e.sh"):
        ws.e2e_exp = exp  # for the README's `python -m twostep_asteroid.compare runs` line


def _noise_words(color, snr_db):
    """How the tables and the card name a noise: ``pink, 0 to 10 dB SNR`` (``clean``: none)."""
    if color is None:
        return "clean"
    low, high = (f"{float(x):g}" for x in snr_db)
    return f"{color}, {low if low == high else f'{low} to {high}'} dB SNR"


def _option(words, name):
    return words[words.index(name) + 1] if name in words else None


def _metrics(eval_dir):
    with open(eval_dir / "metrics.csv", newline="") as f:
        return {row["utt_id"]: row for row in csv.DictReader(f)}


def _run_evaluate_line(ws, command):
    """``python -m twostep_asteroid.evaluate`` from the recipe folder, on the workspace's run. With
    ``--noise``: ``results.json`` records that noise, and every test mixture's input SI-SDR (the
    baseline of the improvements) is lower than in the clean evaluation of the same model (its run's
    stage 3), on the same mixtures."""
    cwd = ws.cwd / "egs" / "wsj0-2mix" / "twostep"
    ws.run(command, cwd=cwd)
    words = shlex.split(command)
    out = cwd / _option(words, "--out_dir")
    results = json.loads((out / "results.json").read_text())
    assert np.isfinite(results["si_sdr_imp"]) and 1 <= results["n_utterances"] <= 3
    color = _option(words, "--noise")
    if color is None or color == "none":
        return
    assert (results["noise"] or {}).get("color") == color, results["noise"]
    if "--noise_snr_db" in words:
        i = words.index("--noise_snr_db")
        assert results["noise"]["snr_db"] == [float(x) for x in words[i + 1:i + 3]], results["noise"]
    clean_dir = (cwd / _option(words, "--model")).parents[1] / "eval"
    assert json.loads((clean_dir / "results.json").read_text())["noise"] is None
    noisy, clean = _metrics(out), _metrics(clean_dir)
    assert sorted(noisy) == sorted(clean), (sorted(noisy), sorted(clean))
    inputs = {utt: [float(r["si_sdr"]) - float(r["si_sdr_imp"]) for r in (noisy[utt], clean[utt])] for utt in noisy}
    assert all(n < c for n, c in inputs.values()), f"input SI-SDR (noisy, clean) per mixture: {inputs}"


def _run_compare_unseen_line(ws, command):
    """``python -m twostep_asteroid.compare unseen EVAL_DIR ...`` from the recipe folder: a row per
    folder and test set, each with its noise. A folder that a README ``evaluate`` line writes is written
    by that line first when it is not there yet (as the README orders them)."""
    cwd = ws.cwd / "egs" / "wsj0-2mix" / "twostep"
    words = shlex.split(command)
    eval_dirs = list(itertools.takewhile(lambda w: not w.startswith("-"), words[4:]))
    for d in eval_dirs:
        if not (cwd / d / "results.json").is_file():
            (line,) = [c for k, c in readme_commands() if c.startswith("python -m twostep_asteroid.evaluate ")
                       and _option(shlex.split(c), "--out_dir") == d]
            _run_evaluate_line(ws, line)
    table = ws.run(command, cwd=cwd)
    assert "| Run | Test speakers | Noise | Mixtures |" in table, table
    for d in eval_dirs:
        results = json.loads((cwd / d / "results.json").read_text())
        noise = results["noise"] or {"color": None, "snr_db": None}
        row = (f"| {Path(d).parent.name} | seen | {_noise_words(noise['color'], noise['snr_db'])} "
               f"| {results['n_utterances']} |")
        assert row in table, (row, table)


def _run_python_module_line(ws, command, tmp_path):
    module = shlex.split(command)[2] if not _needs_shell(command) else command.split()[2]
    if module == "twostep_asteroid.compare" and command.split()[3] == "unseen":
        return _run_compare_unseen_line(ws, command)
    if module == "twostep_asteroid.evaluate":
        return _run_evaluate_line(ws, command)
    if module == "twostep_asteroid.compare":
        exp = getattr(ws, "e2e_exp", None)
        if exp is None:  # run the README's compare script first, as the README orders them
            (line,) = [c for k, c in readme_commands() if c.startswith("local/compare_two_step_e2e.sh")]
            _run_compare_line(ws, line, tmp_path / "e2e")
            exp = ws.e2e_exp
        cwd = tmp_path / "cwd"
        cwd.mkdir()
        (cwd / "exp").symlink_to(exp)
        ws.run(command, cwd=cwd)
        assert (exp / "compare_two_step_e2e" / "runs.md").is_file()
        return
    if module == "twostep_asteroid.train":
        return _run_train_line(ws, command)
    cwd = ws.cwd / "egs" / "wsj0-2mix" / "twostep"
    if "--streaming" in command:
        ws.causal_model()
    ws.run(command, cwd=cwd)
    if module == "twostep_asteroid.export":
        words = shlex.split(command)
        for flag in ("--onnx", "--torchscript"):
            assert (cwd / words[words.index(flag) + 1]).stat().st_size > 0, flag
    elif module == "twostep_asteroid.hub":
        assert "license: other" in (ws.exp / TAG / "hub" / "README.md").read_text()  # GPL + CC-BY-SA voices
    else:
        raise AssertionError(f"README runs `python -m {module}`: add its case to this test")


TRAIN_TINY = TINY.split() + ["step3.batch_size=2", "step3.max_steps=4", "step3.val_every_n_steps=2",
                              "step3.limit_val_batches=2", "step3.ckpt_every_n_steps=2"]


def _run_train_line(ws, command):
    """``python -m twostep_asteroid.train ...`` from the recipe folder, tiny overrides last (they win)."""
    cwd = ws.cwd / "egs" / "wsj0-2mix" / "twostep"
    ws.run(command, cwd=cwd, extra=TRAIN_TINY)
    exp_dir = shlex.split(command)[shlex.split(command).index("--exp_dir") + 1]
    summary = json.loads((cwd / exp_dir / "summary.json").read_text())
    assert summary["global_step"] == 4 and summary["full_budget"] is True


def _run_unseen_line(ws, command, tmp_path):
    command, extra = _with_tiny_overrides(command)
    data, exp = tmp_path / "data", tmp_path / "exp"
    data.mkdir()
    (data / "prompts").symlink_to(ws.data / "prompts")
    ws.run(command, cwd=RECIPE, extra=[*extra, "--seeds", "0", *ws.recipe_args(data, exp)])
    table = (exp / "compare_unseen" / "unseen.md").read_text()
    for arm in shlex.split(command)[shlex.split(command).index("--arms") + 1].split():
        assert f"| {arm}_s0 | unseen |" in table, table


def _run_bench_line(ws, command, tmp_path):
    """``python bench/quality_per_minute.py`` in a user's folder, at its --tiny size and a short budget."""
    (ws.cwd / "bench").mkdir(exist_ok=True)
    script = ws.cwd / "bench" / "quality_per_minute.py"
    if not script.exists():
        script.symlink_to(ROOT / "bench" / "quality_per_minute.py")
    ws.run(command, cwd=ws.cwd, extra=["--tiny", "--budget_minutes", "0.5", "--seeds", "0",
                                       "--systems", "twostep,e2e", "--test_utterances", "2"])
    out = shlex.split(command)[shlex.split(command).index("--out_dir") + 1]
    assert (ws.cwd / out / "results.md").is_file() and (ws.cwd / out / "curves.csv").is_file()


def _run_separate_line(ws, command, tmp_path):
    ws.run(command, cwd=ws.cwd)
    # The installed console script, not only `python -m`: it is what PATH resolves.
    assert shutil.which("twostep-separate", path=ws.env["PATH"]).startswith(str(ROOT / ".venv"))
    out = ws.cwd / "separated"
    for name in ("mix", "call", "a"):
        assert (out / f"{name}_s1.wav").is_file() and (out / f"{name}_s2.wav").is_file(), sorted(out.iterdir())


def _run_sox_line(ws, command, tmp_path):
    """The streaming pipeline, sox | twostep-separate --stream | sox, on a causal model."""
    ws.causal_model()
    cwd = ws.cwd / "egs" / "wsj0-2mix" / "twostep"
    call, _ = sf.read(ws.cwd / "mix.wav", dtype="float32")
    sf.write(cwd / "call.wav", call, 8000, subtype="PCM_16")
    ws.run(command, cwd=cwd)
    out, rate = sf.read(cwd / "separated.wav")
    assert rate == 8000 and out.shape == (len(call), 2) and np.abs(out).max() > 0


def _run_python_line(ws, command, tmp_path):
    if command.startswith("python bench/quality_per_minute.py"):
        return _run_bench_line(ws, command, tmp_path)
    return _run_python_module_line(ws, command, tmp_path)


HANDLERS = {"./run.sh": _run_recipe_line, "local/compare_frontends.sh": _run_compare_line,
            "local/compare_two_step_e2e.sh": _run_compare_line, "local/compare_unseen.sh": _run_unseen_line,
            "python": _run_python_line, "twostep-separate": _run_separate_line, "sox": _run_sox_line}
# Lines not run here, and why: each is run by CI itself or is a directory change.
NOT_RUN = {"make test": "CI runs it (.ci/run), and this test runs inside it",
           "cd egs/wsj0-2mix/twostep": "a directory change: the next command runs in the recipe folder"}


@pytest.mark.slow
@pytest.mark.parametrize("kind,command", readme_commands(), ids=_ids())
def test_readme_command(ws, kind, command, tmp_path):
    if kind == "python":
        # The snippet as written, in a user's folder holding the files it names.
        out = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", command], cwd=ws.cwd, env=ws.env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, f"README snippet failed:\n{command}\n{out.stderr[-3000:]}"
        return
    if command in NOT_RUN:
        return
    handler = HANDLERS.get(command.split()[0])
    assert handler is not None, f"README command `{command}` has no case in {__file__}: add one"
    handler(ws, command, tmp_path)


def test_readme_commands_are_found_and_known():
    """The parser sees the README's commands, and every one has a handler (fast: no running)."""
    commands = readme_commands()
    bash = [c for k, c in commands if k == "bash"]
    assert any(c.startswith("./run.sh --wsj0mix_dir") for c in bash)
    assert any(c.startswith("./run.sh --wsj0_dir") for c in bash)
    for option in ("--librimix_dir", "--wham_dir", "--esc50_dir", "--audio_dir"):
        assert any(c.startswith(f"./run.sh {option}") for c in bash), option
    assert sum(k == "python" for k, _ in commands) >= 2
    # the noisy variant: a run with the noise, a clean model scored on the noisy tt, both in one table
    assert './run.sh --overrides data.noise=pink --tag noisy_pink' in bash
    assert any(c.startswith("python -m twostep_asteroid.evaluate ") and "--noise pink" in c for c in bash)
    assert any(c.startswith("python -m twostep_asteroid.compare unseen ") for c in bash)
    unknown = [c for c in bash if c not in NOT_RUN and c.split()[0] not in HANDLERS]
    assert not unknown, f"README commands with no case in this test: {unknown}"
    parsed = readme_commands("```bash\n./run.sh --a 1 \\\n  --b 2   # note\n# only a comment\ncd x && ./y\n```\n")
    assert parsed == [("bash", "./run.sh --a 1 --b 2"), ("bash", "cd x"), ("bash", "./y")]


def test_tiny_budget_wins_over_a_readme_measurement_command():
    """A README line with a measurement budget runs at the test's step counts; its other keys stay."""
    command, extra = _with_tiny_overrides('./run.sh --tag m --overrides "data.n_src=3 step2.max_steps=12000 '
                                          'front_end.stride=40 data.n_tr=9000"')
    assert extra == []
    overrides = shlex.split(command)[shlex.split(command).index("--overrides") + 1].split()
    conf = load_config(RECIPE / "conf" / "default.yml", overrides)
    assert conf["step2"]["max_steps"] == 4 and conf["data"]["n_tr"] == 24 and conf["step1"]["max_steps"] == 4
    assert conf["data"]["n_src"] == 3 and conf["front_end"]["stride"] == 40  # the README's own keys

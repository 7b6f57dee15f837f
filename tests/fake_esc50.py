"""A fake ESC-50 download with the real layout, file names and CSV columns, filled with short
synthetic 44.1 kHz sounds (a tone, a chirp, noise bursts... one kind per class), for the tests of
:mod:`twostep_asteroid.data.esc50` and the recipe's ``--esc50_dir``."""
import csv
from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44100
COLUMNS = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]
# (target, category, esc10): real ESC-50 classes, three of them in ESC-10
CLASSES = [(0, "dog", True), (1, "rooster", True), (2, "pig", False), (10, "rain", True),
           (33, "door_wood_creaks", False)]


def sound(kind: int, n: int, seed: int, lead: int = 0) -> np.ndarray:
    """A class-specific synthetic sound of ``n`` samples at 44.1 kHz, after ``lead`` zeros."""
    rng = np.random.default_rng(seed)
    t = np.arange(n - lead) / SR
    if kind % 5 == 0:  # harmonic "bark" bursts
        x = sum(np.sin(2 * np.pi * k * 420 * t) / k for k in range(1, 4)) * (np.sin(2 * np.pi * 2.5 * t) > 0)
    elif kind % 5 == 1:  # rising chirp
        x = np.sin(2 * np.pi * (600 + 900 * t) * t)
    elif kind % 5 == 2:  # low grunts: noise through an envelope
        x = rng.standard_normal(len(t)) * np.abs(np.sin(2 * np.pi * 1.5 * t)) * 0.5
    elif kind % 5 == 3:  # rain: steady noise
        x = rng.standard_normal(len(t)) * 0.3
    else:  # creak: slow pitch wobble
        x = np.sin(2 * np.pi * (250 + 60 * np.sin(2 * np.pi * 0.7 * t)) * t)
    x = 0.3 * x * rng.uniform(0.5, 1.0)
    return np.concatenate([np.zeros(lead), x]).astype(np.float32)


def make_esc50(base, per_fold=(2, 2, 2, 2, 3), dur=(0.5, 2.0), classes=CLASSES, silent_clip=False,
               seed=0) -> Path:
    """Write ``base/ESC-50-master/{audio,meta}`` and a LICENSE; returns the ESC-50-master folder.

    Args:
        per_fold: clips of each class in folds 1..5.
        dur: the clips' durations are drawn uniformly in this range (seconds); some start with
            digital silence, as many ESC-50 clips do.
        silent_clip: also list one all-zero clip (fold 1, first class).
    """
    root = Path(base) / "ESC-50-master"
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows, clip_id = [], 100000
    for ci, (target, category, esc10) in enumerate(classes):
        for fold, n_clips in enumerate(per_fold, start=1):
            for k in range(n_clips):
                clip_id += 7
                take = "AB"[k % 2]
                name = f"{fold}-{clip_id}-{take}-{target}.wav"
                n = int(rng.uniform(*dur) * SR)
                lead = int(rng.uniform(0, 0.3) * n) if k % 2 else 0
                x = sound(ci, n, seed * 1000 + clip_id, lead)
                sf.write(str(root / "audio" / name), x, SR, subtype="PCM_16")
                rows.append({"filename": name, "fold": fold, "target": target, "category": category,
                             "esc10": str(esc10), "src_file": clip_id, "take": take})
    if silent_clip:
        target, category, esc10 = classes[0]
        name = f"1-999999-A-{target}.wav"
        sf.write(str(root / "audio" / name), np.zeros(int(dur[1] * SR), np.float32), SR, subtype="PCM_16")
        rows.append({"filename": name, "fold": 1, "target": target, "category": category,
                     "esc10": str(esc10), "src_file": 999999, "take": "A"})
    rows.sort(key=lambda r: r["filename"])
    with open(root / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    (root / "LICENSE").write_text("# ESC-50: Dataset for Environmental Sound Classification (fake)\n")
    return root

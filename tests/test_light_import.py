"""The recipe's bookkeeping commands start without torch (path.sh sets TWOSTEP_ASTEROID_LIGHT_IMPORT),
and the classes still load, and register with asteroid, on first use."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _python(code, light):
    env = dict(os.environ)
    env.pop("TWOSTEP_ASTEROID_LIGHT_IMPORT", None)
    if light:
        env["TWOSTEP_ASTEROID_LIGHT_IMPORT"] = "1"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()


def test_bookkeeping_modules_import_without_torch():
    code = ("import sys, twostep_asteroid.config, twostep_asteroid.explock, twostep_asteroid.data.prompts, "
            "twostep_asteroid.data.wsj0mix; print('torch' in sys.modules, 'asteroid' in sys.modules)")
    assert _python(code, light=True) == ["False", "False"]


def test_the_recipe_path_sets_the_light_import():
    assert "export TWOSTEP_ASTEROID_LIGHT_IMPORT=1" in (ROOT / "egs" / "wsj0-2mix" / "twostep" / "path.sh").read_text()


def test_classes_load_and_register_on_first_use_or_on_a_plain_import():
    first_use = ("import asteroid.models, asteroid_filterbanks\nfrom twostep_asteroid import TwoStepTDCN, TwoStepFB\n"
                 "print(asteroid.models.get('TwoStepTDCN') is TwoStepTDCN, asteroid_filterbanks.get('TwoStepFB') is TwoStepFB)")
    assert _python(first_use, light=True) == ["True", "True"]
    plain = ("import twostep_asteroid, asteroid.models\n"  # the default: importing the package registers
             "print(asteroid.models.get('TwoStepTDCN').__module__)")
    assert _python(plain, light=False) == ["twostep_asteroid.models"]

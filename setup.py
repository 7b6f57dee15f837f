"""Packaging for twostep-asteroid (Tzinis et al., ICASSP 2020) as an Asteroid plugin."""
from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent

setup(
    name="twostep-asteroid",
    version="0.1.0",
    description="Two-step sound source separation (learned latent targets + TDCN) for Asteroid",
    long_description=(here / "README.md").read_text() if (here / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["twostep_asteroid", "twostep_asteroid.*"]),
    install_requires=[
        "asteroid==0.7.0",
        "asteroid-filterbanks>=0.4.0",
        "torch>=2.1",
        "pytorch-lightning>=2.0",
        "pb_bss_eval>=0.0.2",
        "librosa>=0.10",
        "soundfile>=0.12",
        "scipy>=1.8",
        "soxr>=0.3",
        "huggingface_hub>=0.20",
        "safetensors>=0.4",
        "pyyaml>=6",
        "tqdm>=4",
        "matplotlib>=3.5",
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-timeout>=2", "pytest-xdist>=3", "selenium>=4.10"],  # selenium: report tests (make browser)
        "export": ["onnx>=1.15", "onnxruntime>=1.17"],
    },
    entry_points={
        "console_scripts": [
            "twostep-separate=twostep_asteroid.cli:separate_main",
        ],
    },
)

"""pinch: one-pass compression of speech models with sparsity-aware self-pinching gates."""
from setuptools import find_packages, setup

setup(
    name="pinch",
    version="0.1.0",
    description="Sparsity-aware self-pinching gates for ESPnet and NeMo: prune and fine-tune in one pass",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    package_dir={"": "plugin"},
    packages=find_packages("plugin"),
    python_requires=">=3.10",
    # The core needs only torch; safetensors holds the compact sparse format.
    install_requires=["torch>=2.1", "safetensors>=0.4", "numpy"],
    extras_require={
        "espnet": ["espnet==202511", "torchaudio"],
        "nemo": ["nemo_toolkit[asr]==3.0.0"],
        # pocketsphinx and speechmos: the TTS judges (pinch.scoring.judges); speechmos imports
        # onnxruntime and requests without declaring them.
        "data": ["soundfile", "soxr", "scipy", "pyroomacoustics", "jiwer", "rapidfuzz", "tqdm", "matplotlib", "librosa",
                 "pyworld", "pysptk", "pocketsphinx", "speechmos", "onnxruntime", "requests"],
        "deploy": ["onnx", "onnxruntime", "sherpa-onnx"],
        "test": ["pytest", "pytest-xdist", "filelock", "jiwer", "rapidfuzz", "soundfile", "soxr", "matplotlib", "tqdm"],
    },
    entry_points={"console_scripts": ["pinch=pinch.cli.main:main"]},
)

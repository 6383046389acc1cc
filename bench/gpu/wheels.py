"""Gather, as wheels, the Python packages a lent GPU machine lacks for bench/gpu/run.sh.

That machine reaches no registry, and its image (docs/environment.md, "On a lent GPU") holds
torch, transformers and most of the scientific stack but not espnet, nemo_toolkit and what
they import. Run here, in the project's environment: ``census`` imports what the GPU run
imports and names each distribution that brings a module, and ``gather`` writes a wheel for
every one the image lacks (or has at a version a carried package rules out) into the output
folder, in this order of sources:

1. a wheel for the GPU machine's Python and platform in a local registry (the ``file://``
   indexes and ``find-links`` folders of pip's configuration: no network);
2. for a pure-Python distribution, a wheel repacked from the files installed here;
3. with ``--online``, pip's configured index (the network): only for compiled packages
   that neither of the first two has.

What is still missing is written to MISSING.txt, and run.sh refuses to start while it is
not empty. MANIFEST.txt lists each wheel and where it came from.
"""
import argparse
import base64
import csv
import hashlib
import importlib
import importlib.metadata as md
import io
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
# What the GPU run imports, lazily imported ones included: the tests it runs, the benchmark,
# their fixtures (with PINCH_TEST_TINY_CORPUS the corpus fixture imports nothing).
MODULES = ["tests.core.test_gate_fused", "tests.core.test_mixed_precision", "test_model_families", "conftest",
           "test_training", "test_espnet_training", "espnet2.train.trainer",
           "gate_overhead", "espnet2.asr.encoder.conformer_encoder", "transformers.models.wav2vec2.modeling_wav2vec2",
           "pinch.nemo.bin.tokenizer", "nemo.collections.asr.losses.rnnt", "lightning.pytorch", "matplotlib.pyplot"]
# Run here as well while imports are watched: what the GPU run imports only when it runs
# (librosa's submodules load lazily, NeMo's data loaders and losses on first use).
RUN = ["tests/nemo/test_model_families.py::test_tdt_gates_and_bakes_on_cpu",
       "tests/nemo/test_training.py::test_mixed_precision_training_keeps_the_gates_in_fp32_and_prunes_as_fp32_does",
       "tests/nemo/test_model_families.py::test_transducer_family_compresses_to_target_and_bakes_to_its_class[rnnt]"]
# Carried although the image has them: nemo_toolkit 3.0.0 requires lightning<=2.4.0, and the
# image's lightning is 2.6 (pytorch-lightning 2.6.6 beside it).
OVERRIDES = ("lightning",)
# The GPU machine's Python and platforms (/work/.library/device/KINDS.md: Python 3.12.3, x86-64).
PYTHON, PLATFORMS = "3.12", ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64",
                             "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"]


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def census():
    """Who imports whom while `MODULES` are imported and the tests of `RUN` run:
    ``{importer: [distributions]}``, the importer a distribution or ``"ours"`` (this checkout's
    files). Every import statement is seen (a module already imported by one package is still
    imported by the next)."""
    import builtins

    sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "nemo"), str(ROOT / "tests" / "espnet"), str(ROOT / "bench")]
    os.environ.setdefault("PINCH_COMPILE", "0")
    owners = md.packages_distributions()
    site = [Path(p).resolve() for p in sys.path if p.endswith("-packages")]
    edges = {}

    def owner(filename):
        path = Path(filename).resolve()
        for base in site:
            if base in path.parents:
                top = path.relative_to(base).parts[0].removesuffix(".py")
                return (owners.get(top) or [None])[0]
        return "ours" if ROOT in path.parents else None

    def record(frame, name, level):
        importer = owner(frame.f_globals.get("__file__") or "")
        if importer and name and not level:
            edges.setdefault(importer, set()).update(owners.get(name.split(".")[0], []))

    real_import = builtins.__import__

    def spy(name, globals=None, locals=None, fromlist=(), level=0):
        record(sys._getframe(1), name, level)
        return real_import(name, globals, locals, fromlist, level)

    class Finder:  # importlib.import_module does not pass through __import__
        @staticmethod
        def find_spec(name, path=None, target=None):
            frame = sys._getframe(1)
            while frame and (frame.f_code is spy.__code__ or "importlib" in frame.f_code.co_filename
                             or "<frozen" in frame.f_code.co_filename):
                frame = frame.f_back
            if frame:
                record(frame, name, 0)

    builtins.__import__ = spy
    sys.meta_path.insert(0, Finder)
    try:
        for name in MODULES:
            importlib.import_module(name)
        import pytest

        if pytest.main(["-p", "no:cacheprovider", "-q", "-x", *RUN]):
            raise SystemExit(f"census: the tests {RUN} failed here; their imports are unknown")
    finally:
        builtins.__import__ = real_import
        sys.meta_path.remove(Finder)
    return {k: sorted(v) for k, v in edges.items()}


def read_image(path):
    """The GPU image's packages, normalized names."""
    names = (line.split("#", 1)[0].strip().partition("==")[0] for line in Path(path).read_text().splitlines())
    return {norm(n) for n in names if n}


def to_carry(edges, image):
    """``{distribution: version}`` to carry: what this checkout's files import, and what that
    imports in turn, except what the image has (whose own imports the image provides), plus
    `OVERRIDES`."""
    carry, todo = set(), list(edges.get("ours", []))
    while todo:
        dist = todo.pop()
        if dist in carry or norm(dist) in image or norm(dist) == "pinch":
            continue
        carry.add(dist)
        todo += edges.get(dist, [])
    carry |= {d for d in OVERRIDES if d in {x for targets in edges.values() for x in targets}}
    return {md.distribution(d).metadata["Name"]: md.distribution(d).version for d in sorted(carry)}


def local_sources():
    """pip's configured ``file://`` indexes and local ``find-links`` folders: registries on this disk."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    urls, links = [], []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        value = value.strip().strip("'\"")
        if key.endswith("index-url"):
            urls += [u for u in value.split() if u.startswith("file://")]
        elif key.endswith("find-links"):
            links += [d for d in value.split() if os.path.isdir(d)]
    return list(dict.fromkeys(urls)), list(dict.fromkeys(links))


def download(name, version, out, online):
    """A wheel of ``name==version`` for the GPU machine's Python, by pip: from local registries,
    or (``online``) pip's configured index. Returns the wheel's path, or None."""
    before = set(out.iterdir())
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
           PYTHON, "--implementation", "cp", "-d", str(out), f"{name}=={version}"]
    cmd += [a for p in PLATFORMS for a in ("--platform", p)]
    if not online:
        urls, links = local_sources()
        if not urls and not links:
            return None
        # --isolated: no configured index or constraint applies, only the local sources named here
        cmd[3:3] = ["--isolated"]
        cmd += ["--no-index"] if not urls else ["--index-url", urls[0]] + [a for u in urls[1:]
                                                                          for a in ("--extra-index-url", u)]
        cmd += [a for d in links for a in ("--find-links", d)]
    if subprocess.run(cmd, capture_output=True, text=True).returncode:
        return None
    new = set(out.iterdir()) - before
    wheel = new.pop() if new else None
    python_tag = wheel.name.split("-")[-3] if wheel else ""
    if re.fullmatch(r"(py|cp)3\d+", python_tag) and python_tag[2:] != PYTHON.replace(".", ""):
        wheel.unlink()  # pip takes py311 for 3.12, but a package that names its Python needs its own
        return None
    return wheel


def is_pure(dist):
    """Installed from a wheel for any Python 3 (py2/py3 tags, no ABI, any platform), no binaries."""
    tags = [v for k, v in (line.split(": ", 1) for line in (dist.read_text("WHEEL") or "").splitlines()
                           if ": " in line) if k == "Tag"]
    compiled = any(str(f).endswith((".so", ".pyd")) or ".so." in str(f) for f in dist.files or [])
    return bool(tags) and not compiled and all(re.fullmatch(r"(py2|py3|py2\.py3)-none-any", t) for t in tags)


def repack(dist, out):
    """A py3-none-any wheel of an installed pure-Python distribution, from its installed files
    (bytecode and scripts outside site-packages left out), with a new RECORD."""
    info = next(str(f).split("/")[0] for f in dist.files if str(f).split("/")[0].endswith(".dist-info"))
    name = info[: -len(".dist-info")]
    path = out / f"{name}-py3-none-any.whl"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
        for f in sorted(dist.files, key=str):
            rel = str(f)
            if rel.startswith("..") or "__pycache__" in rel or rel.endswith(".pyc") or rel == f"{info}/RECORD":
                continue
            src = Path(dist.locate_file(f))
            if rel.endswith(".dist-info/INSTALLER") or rel.endswith(".dist-info/direct_url.json") or not src.is_file():
                continue
            data = src.read_bytes()
            whl.writestr(rel, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            writer.writerow([rel, f"sha256={digest}", len(data)])
        writer.writerow([f"{info}/RECORD", "", ""])
        whl.writestr(f"{info}/RECORD", record.getvalue())
    return path


def gather(out, image_file, online):
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.whl"):
        old.unlink()
    edges = json.loads(subprocess.run([sys.executable, __file__, "census"], capture_output=True, text=True,
                                      check=True).stdout.strip().splitlines()[-1])
    carry = to_carry(edges, read_image(image_file))
    manifest, missing = [], []
    for name, version in sorted(carry.items()):
        dist = md.distribution(name)
        wheel = download(name, version, out, online=False)
        source = "local registry"
        if wheel is None and is_pure(dist):
            wheel, source = repack(dist, out), "repacked from the installed files"
        if wheel is None and online:
            wheel, source = download(name, version, out, online=True), "pip's configured index"
        if wheel is None:
            missing.append(f"{name}=={version}")
            print(f"missing: {name}=={version} (not pure Python, and no wheel for Python {PYTHON} in a local registry)")
            continue
        manifest.append(f"{Path(wheel).name}\t{source}")
        print(f"{name}=={version}: {Path(wheel).name} ({source})")
    (out / "MANIFEST.txt").write_text("".join(line + "\n" for line in manifest))
    (out / "MISSING.txt").write_text("".join(line + "\n" for line in missing))
    return missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("census", help="print who imports which distributions in the GPU run, as JSON")
    g = sub.add_parser("gather", help="write the wheels the GPU image lacks")
    g.add_argument("--out", type=Path, default=HERE / "wheels")
    g.add_argument("--image", default=HERE / "image_packages.txt", help="the GPU image's packages")
    g.add_argument("--online", action="store_true", help="fetch what no local source has from pip's index")
    args = parser.parse_args(argv)
    if args.command == "census":
        print(json.dumps(census()))
        return 0
    return 1 if gather(args.out, args.image, args.online) else 0


if __name__ == "__main__":
    sys.exit(main())

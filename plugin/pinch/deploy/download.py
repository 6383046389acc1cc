"""``python -m pinch.deploy.download``: the compressed download form of a shipped artefact.

Why: the files toolkits ship store a pruned weight's zero as they store any other value (a
.nemo is a plain tar, espnet2's pack a zip of stored members, an ONNX file raw tensors), so
what a user downloads shrinks with the zeros only once compressed. Each form opens with the
plain toolkit or a standard tool, and gives back the same bytes:

- ``.gz``: the file gzip-compressed. A ``.nemo.gz`` is a gzip tar, which NeMo's ``restore_from``
  opens as it is (the .nemo format before NeMo 1.7); ``gunzip`` gives back the file byte for byte.
- ``.zip``: a zip with every member deflated, names, dates and bytes unchanged: espnet2's
  ``unpack`` (what espnet_model_zoo calls) reads it as it reads the stored pack.
- ``.tar.bz2``: files under one folder named as the archive, as sherpa-onnx's release archives
  are: ``tar -xjf`` unpacks it.

Written complete or not at all; owner names and ids are left out of the tar (they name this
machine's user).

    python -m pinch.deploy.download --out exp/sspg/model.nemo.gz exp/sspg/model.nemo
    python -m pinch.deploy.download --out packed/run_model.deflated.zip packed/run_model.zip
    python -m pinch.deploy.download --out onnx/download/run-int8.tar.bz2 onnx/model.int8.onnx onnx/tokens.txt
"""
import argparse
import gzip
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

from pinch.data.atomic import atomic_file, check_outputs

# Levels: 6 measured within 3% of 9 on a 65%-sparse model at a tenth of the time (gzip: 4.46 vs
# 4.35 MB, 0.6 vs 5.5 s for a 9.3 MB .nemo; deflate: 5.81 vs 5.70 MB, 0.9 vs 7.2 s for a 10.6 MB zip).
LEVEL = 6
SUFFIXES = (".tar.bz2", ".gz", ".zip")


def _gzip(sources, tmp):
    (src,) = sources
    with open(src, "rb") as fin, open(tmp, "wb") as raw, \
            gzip.GzipFile(src.name, "wb", LEVEL, raw, mtime=int(src.stat().st_mtime)) as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def _deflate_zip(sources, tmp):
    (src,) = sources
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=LEVEL) as zout:
        for info in zin.infolist():
            member = zipfile.ZipInfo(info.filename, info.date_time)
            member.external_attr, member.file_size = info.external_attr, info.file_size
            member.compress_type = zipfile.ZIP_DEFLATED
            with zin.open(info) as fin, zout.open(member, "w") as fout:  # zin checks each member's CRC
                shutil.copyfileobj(fin, fout, 1 << 20)


def _tar_bz2(sources, tmp, folder):
    def anonymous(info):
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(tmp, "w:bz2") as tar:
        for src in sources:
            tar.add(src, f"{folder}/{src.name}", recursive=False, filter=anonymous)


class _Counter:
    """A sink that keeps only the count of the bytes written to it."""

    def __init__(self):
        self.size = 0

    def write(self, data):
        self.size += len(data)
        return len(data)

    def flush(self):
        pass


def gzip_size(path):
    """The bytes of ``path`` gzip-compressed as its ``.gz`` download form would be (`LEVEL`),
    counted without writing it: the results tables' download column."""
    counter = _Counter()
    with open(path, "rb") as fin, gzip.GzipFile(Path(path).name, "wb", LEVEL, counter, mtime=0) as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return counter.size


def write_download(sources, out):
    """Write the download form ``out`` of ``sources`` (one file; files for a .tar.bz2), the form
    chosen by ``out``'s suffix (``SUFFIXES``); returns its size in bytes."""
    sources, out = [Path(s) for s in ([sources] if isinstance(sources, (str, Path)) else sources)], Path(out)
    missing = [s for s in sources if not s.is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: no such file to download")
    check_outputs({"--out": out}, {f"source {i + 1}": s for i, s in enumerate(sources)})
    suffix = next((s for s in SUFFIXES if out.name.endswith(s)), None)
    if suffix is None:
        raise ValueError(f"{out}: a download form ends in {', '.join(SUFFIXES)}")
    if suffix != ".tar.bz2" and len(sources) != 1:
        raise ValueError(f"{out}: a {suffix} holds one file, {len(sources)} given (a .tar.bz2 holds several)")
    if suffix == ".zip" and not zipfile.is_zipfile(sources[0]):
        raise ValueError(f"{sources[0]}: not a zip file, so not a .zip download")
    if len({s.name for s in sources}) != len(sources):
        raise ValueError(f"{out}: two sources share a file name; the archive holds them side by side")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as tmp:
        if suffix == ".gz":
            _gzip(sources, tmp)
        elif suffix == ".zip":
            _deflate_zip(sources, tmp)
        else:
            _tar_bz2(sources, tmp, out.name[: -len(suffix)])
    return out.stat().st_size


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.deploy.download", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help=f"the download form to write, ending in {', '.join(SUFFIXES)}")
    parser.add_argument("sources", nargs="+", help="the shipped file (or, for a .tar.bz2, files)")
    args = parser.parse_args(argv)
    try:
        size = write_download(args.sources, args.out)
    except (ValueError, FileNotFoundError) as err:
        print(f"pinch.deploy.download: error: {err}", file=sys.stderr)
        return 1
    stored = sum(Path(s).stat().st_size for s in args.sources)
    print(f"pinch.deploy: {args.out}: {size / 1e6:.2f} MB to download, {stored / 1e6:.2f} MB stored")
    return 0


if __name__ == "__main__":
    sys.exit(main())

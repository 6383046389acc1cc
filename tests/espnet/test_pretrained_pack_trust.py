"""A held model's pack is read from inside itself only (issue 30): every path its meta.yaml and
config name is resolved in the unpacked pack, never in the working directory, never out of it by
``../``, an absolute path or a symlink, and the files it brings are what they claim to be. Each
refusal is one line naming the file, comes before any network is built or checkpoint loaded, and
leaves no output directory behind."""
import hashlib
import shutil
import zipfile

import numpy as np
import pytest
import torch
import yaml

from espnet_tiny import tiny_cmd

CONFIG = "exp/asr_tiny/config.yaml"
MODEL = "exp/asr_tiny/valid.loss.ave.pth"
TOKEN_DIR = "data/token_list/bpe_unigram20"
TOKENS = f"{TOKEN_DIR}/tokens.txt"
BPE = f"{TOKEN_DIR}/bpe.model"
STATS = "exp/asr_stats/train/feats_stats.npz"
SENTENCES = ["a cat sat on the mat", "the dog ate a bone", "birds sing at dawn", "rain falls on the roof",
             "she reads a book", "we walk to the sea", "the sun sets late", "a fox ran past the barn"]


def train_bpe(prefix, vocab_size):
    """A real sentencepiece model (``prefix``.model) and its pieces."""
    import sentencepiece as spm

    text = prefix.with_name(prefix.name + ".txt")
    text.write_text("\n".join(SENTENCES * 4) + "\n")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(prefix), vocab_size=vocab_size,
                                   hard_vocab_limit=False, model_type="unigram", character_coverage=1.0,
                                   minloglevel=2)
    text.unlink()
    model = spm.SentencePieceProcessor(model_file=f"{prefix}.model")
    return [model.id_to_piece(i) for i in range(model.get_piece_size())]


def write_stats(path, seed):
    """GlobalMVN's statistics of 20-dimensional features."""
    x = np.random.default_rng(seed).normal(size=(40, 20))
    np.savez(path, count=np.array(40), sum=x.sum(0), sum_square=(x * x).sum(0))


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def pack_tree(tmp_path_factory):
    """A tiny espnet2 BPE Conformer CTC model laid out as espnet2's packer packs one: meta.yaml,
    and a config naming its token list, BPE model and GlobalMVN statistics relative to the root."""
    from espnet2.tasks.asr import ASRTask
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    tree = tmp_path_factory.mktemp("pack_tree")
    for rel in (CONFIG, BPE, STATS):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
    pieces = train_bpe(tree / TOKEN_DIR / "bpe", 32)
    (tree / TOKEN_DIR / "bpe.vocab").unlink()
    tokens = ["<blank>", "<unk>", *(p for p in pieces if p not in ("<unk>", "<s>", "</s>")), "<sos/eos>"]
    (tree / TOKENS).write_text("".join(f"{t}\n" for t in tokens))
    write_stats(tree / STATS, 0)
    cmd = tiny_cmd("--token_type", "bpe", "--bpemodel", str(tree / BPE), "--normalize", "global_mvn",
                   "--normalize_conf", f"stats_file={tree / STATS}")
    cmd[1:1] = [str(tree / TOKENS)]
    args = ASRTask.get_parser().parse_args(cmd)
    torch.save(ASRTask.build_model(args).state_dict(), tree / MODEL)
    config = dict(vars(args), token_list=TOKENS, bpemodel=BPE, normalize_conf={"stats_file": STATS})
    with (tree / CONFIG).open("w") as f:
        yaml_no_alias_safe_dump(config, f)
    (tree / "meta.yaml").write_text(yaml.safe_dump(
        {"espnet": "202511", "files": {"asr_model_file": MODEL}, "yaml_files": {"asr_train_config": CONFIG}}))
    return tree


@pytest.fixture
def no_build(monkeypatch):
    """A refused pack builds no network and loads no checkpoint."""
    from espnet2.tasks.asr import ASRTask

    import pinch.espnet.bin.pretrained as pretrained

    def build_model(args):
        raise AssertionError("a network was built from a refused pack")

    def load_state_dict(path):
        raise AssertionError(f"{path} was loaded from a refused pack")

    monkeypatch.setattr(ASRTask, "build_model", build_model)
    monkeypatch.setattr(pretrained, "load_state_dict", load_state_dict)


def copy_of(pack_tree, tmp_path, name="pack"):
    return shutil.copytree(pack_tree, tmp_path / name, symlinks=True)


def zipped(tree):
    """``tree`` as a zip beside it, members named relative to its root."""
    path = tree.with_suffix(".zip")
    with zipfile.ZipFile(path, "w") as z:
        for f in sorted(tree.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(tree).as_posix())
    return path


def edit(path, **changes):
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **changes}))


def run(pack, out):
    from pinch.espnet.bin.pretrained import main

    return main(["--pretrained", str(pack), "--out_dir", str(out)])


def refused(capsys, pack, out):
    """The one line of a refusal, which left nothing where the output would go."""
    rc = run(pack, out)
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1, err
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*")), "an output directory was written"
    return err


@pytest.mark.parametrize("as_zip", [True, False], ids=["zip", "dir"])
def test_meta_paths_climbing_out_of_the_pack_are_refused(pack_tree, tmp_path, capsys, no_build, as_zip):
    """A zip unpacks two levels under the output's parent, where the outside model waits."""
    copy_of(pack_tree, tmp_path, "outside")
    tree = copy_of(pack_tree, tmp_path / "held")
    edit(tree / "meta.yaml", files={"asr_model_file": f"../../outside/{MODEL}"},
         yaml_files={"asr_train_config": f"../../outside/{CONFIG}"})
    pack = zipped(tree) if as_zip else tree
    err = refused(capsys, pack, tmp_path / "out")
    assert f"{pack}/meta.yaml: " in err and "../../outside/" in err and "outside the model pack" in err, err


def test_absolute_meta_paths_are_refused(pack_tree, tmp_path, capsys, no_build):
    outside = copy_of(pack_tree, tmp_path, "outside")
    tree = copy_of(pack_tree, tmp_path / "held")
    edit(tree / "meta.yaml", files={"asr_model_file": str(outside / MODEL)},
         yaml_files={"asr_train_config": str(outside / CONFIG)})
    pack = zipped(tree)
    err = refused(capsys, pack, tmp_path / "out")
    assert f"{pack}/meta.yaml: " in err and str(outside) in err and "outside the model pack" in err, err


@pytest.mark.parametrize("where", ["etc", "another model"])
def test_an_absolute_bpemodel_outside_the_pack_is_refused(pack_tree, tmp_path, capsys, no_build, where):
    """Refused for where it is, even when it is a real sentencepiece model."""
    bpemodel = "/etc/passwd" if where == "etc" else str(copy_of(pack_tree, tmp_path, "outside") / BPE)
    tree = copy_of(pack_tree, tmp_path / "held")
    edit(tree / CONFIG, bpemodel=bpemodel)
    pack = zipped(tree)
    err = refused(capsys, pack, tmp_path / "out")
    assert f"{pack}/{CONFIG}: bpemodel {bpemodel}" in err and "outside the model pack" in err, err


def test_a_symlink_out_of_a_pack_directory_is_refused(pack_tree, tmp_path, capsys, no_build):
    outside = copy_of(pack_tree, tmp_path, "outside")
    tree = copy_of(pack_tree, tmp_path / "held")
    (tree / BPE).unlink()
    (tree / BPE).symlink_to(outside / BPE)
    err = refused(capsys, tree, tmp_path / "out")
    assert f"{tree}/{CONFIG}: bpemodel {BPE}" in err and "outside the model pack" in err, err


def test_the_packs_own_files_are_taken_never_the_working_directorys(pack_tree, tmp_path, monkeypatch, capsys):
    """Run from a recipe dir holding other files at the pack's paths (as run.sh runs it)."""
    cwd = tmp_path / "recipe"
    (cwd / TOKEN_DIR).mkdir(parents=True)
    (cwd / STATS).parent.mkdir(parents=True)
    train_bpe(cwd / TOKEN_DIR / "bpe", 40)
    write_stats(cwd / STATS, 1)
    size = len((pack_tree / TOKENS).read_text().splitlines())
    (cwd / TOKENS).write_text("".join(f"decoy{i}\n" for i in range(size)))  # fits the model too
    monkeypatch.chdir(cwd)
    pack, out = zipped(copy_of(pack_tree, tmp_path)), tmp_path / "out"
    assert run(pack, out) == 0, capsys.readouterr().err
    for mine, copied in ((BPE, "bpe.model"), (STATS, "feats_stats.npz"), (TOKENS, "tokens.txt")):
        assert md5(out / copied) == md5(pack_tree / mine) != md5(cwd / mine), copied
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["bpemodel"] == str(out.resolve() / "bpe.model")
    assert config["normalize_conf"]["stats_file"] == str(out.resolve() / "feats_stats.npz")


def test_absolute_paths_inside_a_pack_directory_are_taken(pack_tree, tmp_path, capsys):
    """As espnet_model_zoo's unpacked dirs write their configs: absolute, into the dir itself."""
    tree = copy_of(pack_tree, tmp_path)
    edit(tree / CONFIG, token_list=str(tree / TOKENS), bpemodel=str(tree / BPE),
         normalize_conf={"stats_file": str(tree / STATS)})
    out = tmp_path / "out"
    assert run(tree, out) == 0, capsys.readouterr().err
    assert md5(out / "bpe.model") == md5(pack_tree / BPE) and md5(out / "feats_stats.npz") == md5(pack_tree / STATS)


def directory(path):
    """A directory where a file should be, with a file in it: a zip keeps no empty directory."""
    path.unlink()
    path.mkdir()
    (path / "tokens.txt").write_text("<blank>\n")


def saved(save, path, *arrays, **named):
    """numpy's ``save`` into ``path`` as named (np.save would add .npy to a path's name)."""
    with path.open("wb") as f:
        save(f, *arrays, **named)


@pytest.mark.parametrize("make, problem", [
    (directory, "not a regular file"),
    (lambda p: p.write_text(""), "empty"),
    (lambda p: p.write_bytes(b"<blank>\n\xff\xfe\n"), "not UTF-8 text"),
], ids=["directory", "empty", "binary"])
def test_a_token_list_that_is_not_a_text_file_is_refused(pack_tree, tmp_path, capsys, no_build, make, problem):
    tree = copy_of(pack_tree, tmp_path)
    make(tree / TOKENS)
    pack = zipped(tree)
    err = refused(capsys, pack, tmp_path / "out")
    assert f"{pack}/{TOKENS}" in err and problem in err, err


def test_a_bpemodel_that_is_not_sentencepiece_is_refused(pack_tree, tmp_path, capsys, no_build):
    tree = copy_of(pack_tree, tmp_path)
    (tree / BPE).write_bytes(b"not a sentencepiece model\n")
    pack = zipped(tree)
    err = refused(capsys, pack, tmp_path / "out")
    assert f"{pack}/{BPE}: not a sentencepiece model" in err, err


@pytest.mark.parametrize("make", [
    lambda p: p.write_text("count sum sum_square\n"),
    lambda p: saved(np.save, p, np.zeros(20)),
    lambda p: saved(np.savez, p, count=np.array(40), sum=np.zeros(20)),
    lambda p: saved(np.savez, p, count=np.array(40), sum=np.zeros(20), sum_square=np.array([{}], dtype=object)),
], ids=["text", "npy", "no sum_square", "pickled"])
def test_stats_that_are_not_global_mvn_statistics_are_refused(pack_tree, tmp_path, capsys, no_build, make):
    tree = copy_of(pack_tree, tmp_path)
    make(tree / STATS)
    pack = zipped(tree)
    err = refused(capsys, pack, tmp_path / "out")
    assert f"{pack}/{STATS}: not GlobalMVN statistics" in err, err

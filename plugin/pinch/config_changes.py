"""What a compression pass changed in a held model's config, on record.

A user who brings a model trained elsewhere must be able to see exactly which of its
training settings the pass overrode (both toolkits write the same file beside the run):

    python -m pinch.config_changes --old held/config.yaml --new exp/run/config.yaml \
        --out exp/run/finetune_overrides.yaml --under optim scheduler batch_size ...
"""
import argparse
import json
import logging
import sys
from pathlib import Path

import yaml

from pinch.data.atomic import write_text_atomic

OVERRIDES_FILE = "finetune_overrides.yaml"
ABSENT = object()  # the side of a change that lacks the key


def changed_keys(old, new, prefix="model"):
    """``{dotted key: (old, new)}`` of the leaves that differ between two configs (ABSENT where
    one lacks the key); an empty mapping is a leaf."""
    before, after = _leaves(old, prefix), _leaves(new, prefix)
    keys = [*before, *(key for key in after if key not in before)]
    return {key: (before.get(key, ABSENT), after.get(key, ABSENT)) for key in keys
            if before.get(key, ABSENT) != after.get(key, ABSENT)}


def _leaves(tree, prefix):
    if isinstance(tree, dict) and tree:
        return {k: v for key, sub in tree.items() for k, v in _leaves(sub, f"{prefix}.{key}" if prefix else str(key)).items()}
    return {prefix: tree}


def log_changes(changes, out: Path, what="the .nemo's config", tag="pinch.nemo"):
    """Each change on a log line, old -> new, and all of them in ``out`` (YAML)."""
    log = logging.getLogger("pinch")
    for key, (old, new) in changes.items():
        log.info("%s: %s: %s -> %s", tag, key, _shown(old), _shown(new))
    log.info("%s: %d keys of %s changed for this pass -> %s", tag, len(changes), what, out)
    entries = {key: {**({} if old is ABSENT else {"old": old}), **({} if new is ABSENT else {"new": new})}
               for key, (old, new) in changes.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, f"# Keys of {what} that this pass changed, old -> new "
                      "(no old: it had no such key)\n" + yaml.safe_dump(entries, sort_keys=False))


def _shown(value):
    return "(absent)" if value is ABSENT else json.dumps(value)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pinch.config_changes", description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the held model's config (YAML)")
    parser.add_argument("--new", type=Path, required=True, help="the config the pass trained with")
    parser.add_argument("--out", type=Path, required=True, help="the record (YAML)")
    parser.add_argument("--under", nargs="*", default=None,
                        help="only these top-level keys (default: all)")
    args = parser.parse_args(argv)
    configs = []
    for path in (args.old, args.new):
        try:
            configs.append(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        except (OSError, yaml.YAMLError) as err:
            sys.exit(f"pinch.config_changes: {path}: cannot read as YAML ({err.__class__.__name__})")
    old, new = ({k: v for k, v in c.items() if args.under is None or k in args.under} for c in configs)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    log_changes(changed_keys(old, new, prefix=""), args.out, what=str(args.old.name), tag="pinch")


if __name__ == "__main__":
    main()

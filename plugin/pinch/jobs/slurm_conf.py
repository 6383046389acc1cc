"""conf/slurm.conf as Kaldi's slurm.pl and ESPnet's recipes read it: which sbatch arguments
each job option (--gpu 1, --mem 4G, --num_threads 2, --time 4:00:00, ...) turns into.

    command sbatch --export=ALL      # the submit command and its fixed arguments
    default time=24:00:00            # the value of --time when a job gives none
    option time=* --time $0          # any value: $0 is replaced by it
    option gpu=0                     # this value: no argument at all
"""
import shlex
from pathlib import Path

from .array import JobError

DEFAULT = """
command sbatch --export=ALL
option partition=* --partition $0
default time=24:00:00
option time=* --time $0
option mem=* --mem $0
option num_threads=* --cpus-per-task $0
option num_nodes=* --nodes $0
option nproc_per_node=* --ntasks-per-node $0
default gpu=0
option gpu=0
option gpu=* --gres=gpu:$0
"""


class SlurmConf:
    def __init__(self, text, source="the built-in configuration"):
        self.source, self.command, self.defaults, self.rules = source, None, {}, {}
        for number, raw in enumerate(text.splitlines(), 1):
            words = shlex.split(raw, comments=True)
            if not words:
                continue
            where = f"{source}, line {number}"
            if words[0] == "command" and len(words) > 1:
                self.command = words[1:]
            elif words[0] in ("option", "default") and len(words) > 1 and "=" in words[1]:
                name, value = words[1].split("=", 1)
                if words[0] == "default":
                    if len(words) > 2:
                        raise JobError(f"{where}: 'default {words[1]}' takes no arguments")
                    self.defaults[name] = value
                else:
                    self.rules.setdefault(name, {})[value] = words[2:]
            else:
                raise JobError(f"{where}: expected 'command ...', 'option NAME=VALUE ...' or 'default NAME=VALUE', got: {raw.strip()}")
        if not self.command:
            raise JobError(f"{source} has no 'command sbatch ...' line")

    @classmethod
    def read(cls, path=None):
        if path is None:
            return cls(DEFAULT)
        if not Path(path).is_file():
            raise JobError(f"Slurm configuration {path}: no such file")
        return cls(Path(path).read_text(), str(path))

    def sbatch_args(self, options):
        """The submit command with the arguments of the options (the defaults filled in)."""
        args = list(self.command)
        for name, value in {**self.defaults, **options}.items():
            rules = self.rules.get(name)
            if rules is None:
                raise JobError(f"--{name}: {self.source} has no 'option {name}=...' line")
            if value in rules:
                args += rules[value]
            elif "*" in rules:
                args += [word.replace("$0", value) for word in rules["*"]]
            else:
                raise JobError(f"--{name} {value}: {self.source} has a rule for {name}={'|'.join(rules)} only")
        return args


def partition_of(args):
    """The partition that sbatch arguments ask for, or None (the cluster's default)."""
    for i, word in enumerate(args):
        if word in ("-p", "--partition") and i + 1 < len(args):
            return args[i + 1]
        if word.startswith("--partition="):
            return word.split("=", 1)[1]
        if word.startswith("-p") and len(word) > 2:
            return word[2:]
    return None

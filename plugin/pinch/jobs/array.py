"""A job array as run.pl and slurm.pl take it, and the script each of its jobs runs."""
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

RANGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+):(\d+)$")


class JobError(Exception):
    """Bad input or an unusable backend: the message names the problem."""


@dataclass
class JobArray:
    """Jobs FIRST..LAST of COMMAND, each logged to LOG with VAR replaced by its number."""

    log: str
    command: list
    var: str = "JOB"
    first: int = 1
    last: int = 1
    options: dict = field(default_factory=dict)

    @property
    def ids(self):
        return range(self.first, self.last + 1)

    @property
    def name(self):
        """The jobs' name (log file name without VAR and extension), as Kaldi's q/ scripts."""
        base = Path(self.log).name.replace(f".{self.var}", "").replace(self.var, "")
        return base.rsplit(".", 1)[0] if "." in base else base

    def log_of(self, job):
        return self.log.replace(self.var, str(job))

    def job_of(self, path):
        """The job whose log PATH is, or None."""
        log, path = os.path.normpath(self.log), os.path.normpath(path)
        first, *rest = log.split(self.var)
        found = re.fullmatch(re.escape(first) + "".join(rf"(\d+){re.escape(part)}" for part in rest), path)
        if found is None:
            return None
        job = int(found[1]) if rest else self.first
        return job if job in self.ids and os.path.normpath(self.log_of(job)) == path else None

    def script(self, cwd, threads=None):
        """Bash that runs one job (its number: Slurm's array task id, else $1) and appends its
        command, start, end and exit code to its log, as run.pl's logs hold them."""
        job = f'"${{{self.var}}}"'
        command = " ".join(self._quote(arg, job) for arg in self.command)
        lines = [
            "#!/usr/bin/env bash",
            f"# pinch.jobs: {self.name}, jobs {self.first}..{self.last}",
            f"cd {shlex.quote(str(cwd))} || exit 1",
            f"{self.var}=${{SLURM_ARRAY_TASK_ID:-$1}}",
            f"log={self._quote(self.log, job)}",
        ]
        if threads:
            lines.append(f"export OMP_NUM_THREADS={int(threads)}")
        lines += [
            # Run by the local launcher ($2 = local), stdin is a pipe that only it holds open for
            # writing: the pipe ends when the launcher does, even SIGKILLed, and the job dies with
            # it. The bash's own words (a command killed by a signal) go to the log, as on Slurm.
            'if [ "${2:-}" = local ]; then',
            '    exec 3<&0 </dev/null >> "$log" 2>&1',
            "    { read -r -u 3 _; kill -KILL 0; } &",
            "    exec 3<&-",
            "fi",
            '[ -n "${SLURM_CPUS_PER_TASK:-}" ] && export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK}',
            f"echo {shlex.quote('# ' + command)} >> \"$log\"",
            'echo "# Started at $(date) on $(hostname)" >> "$log"',
            "start=$(date +%s)",
            f"{command} < /dev/null >> \"$log\" 2>&1",
            "rc=$?",
            'echo "# Accounting: time=$(( $(date +%s) - start )) threads=${OMP_NUM_THREADS:-}" >> "$log"',
            'echo "# Ended (code $rc) at $(date)" >> "$log"',
            "exit $rc",
        ]
        return "\n".join(lines) + "\n"

    @property
    def qdir(self):
        """q/ under the log's folder, where Kaldi's launchers keep the jobs' script."""
        return Path(self.log).parent / "q"

    def write_script(self, threads=None):
        """The script (in q/), once the logs' folders are made and no log is a folder: a log that
        cannot be written stops the launcher before any job runs."""
        if self.var in os.path.dirname(self.log):  # a folder per job
            folders = {os.path.dirname(self.log_of(job)) for job in self.ids}
        else:  # one folder: its entries, not a million logs, are looked at
            folders = {os.path.dirname(self.log)}
        for folder in [*folders, self.qdir]:
            try:
                Path(folder).mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise JobError(f"cannot make the log folder {folder} ({err.strerror})") from None
        for folder in folders:
            for entry in os.scandir(folder or "."):
                job = self.job_of(os.path.join(folder, entry.name))
                if job is not None and entry.is_dir():
                    raise JobError(f"log {self.log_of(job)} is a folder, not a file")
        path = self.qdir / f"{self.name}.sh"
        path.write_text(self.script(Path.cwd(), threads))
        return path

    def _quote(self, arg, job):
        return job.join(shlex.quote(part) if part else "" for part in arg.split(self.var)) or "''"


def positive_option(value, name):
    """A launcher option that counts something (--max_jobs_run, --num_threads)."""
    if not str(value).isdigit() or int(value) < 1:
        raise JobError(f"--{name} must be a positive integer, not '{value}'")
    return int(value)


ENDED = re.compile(r"^# Ended \(code (\d+)\)", re.M)


def exit_code_in_log(path):
    """The exit code a job's script wrote to its log, or None (never ran, or was killed)."""
    try:
        found = ENDED.findall(Path(path).read_text(errors="replace"))
    except FileNotFoundError:
        return None
    return int(found[-1]) if found else None


def last_line(path):
    """The log's last line that is not the script's own bookkeeping: what ended the job."""
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    lines = [line for line in lines if line.strip() and not line.startswith("# ")]
    return lines[-1] if lines else "(empty log)"


def parse_command_line(argv):
    """``[--name value ...] [VAR=a:b] LOG COMMAND...`` -> JobArray (options with '-' or '_')."""
    argv, options = list(argv), {}
    while argv and argv[0].startswith("--"):
        name = argv.pop(0)[2:].replace("-", "_")
        if "=" in name:
            name, value = name.split("=", 1)
        elif argv:
            value = argv.pop(0)
        else:
            raise JobError(f"option --{name} needs a value")
        options[name] = value
    array = {}
    if argv and RANGE.match(argv[0]):
        var, first, last = RANGE.match(argv.pop(0)).groups()
        array = dict(var=var, first=int(first), last=int(last))
        if array["first"] < 1 or array["last"] < array["first"]:
            raise JobError(f"job range {var}={first}:{last} is empty or starts below 1")
    if len(argv) < 2:
        raise JobError("usage: [--option value ...] [JOB=1:N] LOG COMMAND... (a log file and a command are needed)")
    log, command = argv[0], argv[1:]
    jobs = JobArray(log=log, command=command, options=options, **array)
    if jobs.last > jobs.first and jobs.var not in log:
        raise JobError(f"log {log} has no {jobs.var}: the jobs {jobs.first}..{jobs.last} would write one file")
    return jobs

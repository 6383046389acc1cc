"""What a waiting recipe prints: each job's end with the time elapsed and an estimate of the
time left, then every failed job with its log."""
import sys
import time

from .array import last_line


def say(message):
    print(f"pinch.jobs: {message}", file=sys.stderr, flush=True)


class Progress:
    def __init__(self, jobs):
        self.jobs, self.t0, self.finished, self.failures = jobs, time.monotonic(), 0, []
        self.n = len(jobs.ids)

    def elapsed(self):
        elapsed = int(time.monotonic() - self.t0)
        if self.finished and self.finished < self.n:
            return f"elapsed {elapsed}s, about {elapsed * (self.n - self.finished) // self.finished}s left"
        return f"elapsed {elapsed}s"

    def started(self, job):
        say(f"{self.jobs.name} {job} of {self.n} started ({self.elapsed()})")

    def ended(self, job, why=None):
        """A job ended: ``why`` is None when it succeeded, else what ended it."""
        self.finished += 1
        if why is None:
            say(f"{self.jobs.name} {job} finished ({self.finished} of {self.n} done, {self.elapsed()})")
        else:
            log = self.jobs.log_of(job)
            self.failures.append(f"{self.jobs.var}={job} ({why}; log: {log}: {last_line(log)})")
            say(f"{self.jobs.name} {job} FAILED: {why} (log: {log})")

    def outcome(self):
        """0 when every job succeeded; else names each failed job and returns 1."""
        if not self.failures:
            return 0
        say(f"{len(self.failures)} of {self.n} {self.jobs.name} jobs failed:\n  " + "\n  ".join(self.failures))
        return 1

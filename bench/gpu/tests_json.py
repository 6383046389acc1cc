"""The outcome of run.sh's pytest run as JSON: each test, its outcome and time, the device.

Usage: python bench/gpu/tests_json.py JUNIT_XML PYTEST_EXIT_CODE OUT_DIR  (writes OUT_DIR/gpu_tests.json)
"""
import os
import sys
import xml.etree.ElementTree as ET

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import write_json  # noqa: E402


def outcomes(junit_xml):
    tests = []
    for case in ET.parse(junit_xml).iter("testcase"):
        problem = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        tests.append({"test": f"{case.get('classname')}::{case.get('name')}",
                      "outcome": "passed" if problem is None else {"failure": "failed"}.get(problem.tag, problem.tag),
                      "seconds": float(case.get("time") or 0),
                      "message": None if problem is None else (problem.get("message") or "")[:500]})
    return tests


def main(junit_xml, code, out_dir):
    try:
        tests = outcomes(junit_xml)
    except (OSError, ET.ParseError) as err:  # pytest stopped before writing it (a timeout)
        tests = [{"test": "(no report)", "outcome": "error", "seconds": 0.0, "message": str(err)}]
    counts = {o: sum(t["outcome"] == o for t in tests) for o in ("passed", "failed", "error", "skipped")}
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"
    path = write_json(out_dir, "gpu_tests",
                      {"device_name": device, "pytest_exit_code": int(code), **counts, "tests": tests})
    print(f"{path}: {counts} on {device}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

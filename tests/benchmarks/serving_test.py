import subprocess
import sys
import time
from pathlib import Path

import psutil
from benchmarks.serving import ServerCpu


def _worker(done: Path) -> str:
    """Burns a second of CPU, says so, then rests."""
    return (
        "import pathlib, time\nend = time.process_time() + 1.0\n"
        f"while time.process_time() < end: pass\npathlib.Path({str(done)!r}).touch()\n"
        "time.sleep(60)\n"
    )


def test_server_cpu_counts_a_process_and_its_children_inside_the_block(tmp_path: Path) -> None:
    done = tmp_path / "burnt"
    # A parent that only waits on a worker that burns: mlflow serve and its uvicorn worker.
    spawn = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {_worker(done)!r}])"
    parent = subprocess.Popen([sys.executable, "-c", spawn])
    idle = subprocess.Popen([sys.executable, "-c", "import time\ntime.sleep(60)"])
    try:
        time.sleep(0.3)  # at most 0.3 s of the worker's burn falls before the block
        with ServerCpu(parent.pid) as busy, ServerCpu(idle.pid) as resting:
            deadline = time.monotonic() + 60
            while not done.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        for process in (parent, idle):
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait()
    assert busy.seconds is not None and resting.seconds is not None
    assert busy.seconds >= 0.6, busy.seconds
    assert resting.seconds < 0.05, resting.seconds

"""Runtime measurements: CPU time and peak memory count the child processes (the isolated
decoders) too."""

import subprocess
import sys
import time

import pytest

from deepisp_tf.runtime import profiling

BUSY_SECONDS = 0.6
# A child that burns one core for BUSY_SECONDS, then idles until its stdin closes.
_BUSY_CHILD = ("import sys, time\nstart = time.perf_counter()\n"
               f"while time.perf_counter() - start < {BUSY_SECONDS}: pass\n"
               "print('done', flush=True)\nsys.stdin.read()\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="live children read from /proc")
def test_cpu_seconds_count_a_live_child_process_that_the_parent_only_waited_for():
    with profiling.measure() as measurement:
        child = subprocess.Popen([sys.executable, "-c", _BUSY_CHILD], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "done"  # the parent blocks, burning nothing
        time.sleep(0.05)
    child.stdin.close()
    child.wait()
    # Still alive at the end of the block: only /proc knows its CPU (os.times does not yet).
    assert measurement.cpu_seconds >= 0.8 * BUSY_SECONDS
    assert measurement.cpu_seconds <= measurement.seconds * 2 + 0.1


def test_cpu_seconds_count_an_ended_child_process():
    with profiling.measure() as measurement:
        subprocess.run([sys.executable, "-c", _BUSY_CHILD], input="", text=True,
                       capture_output=True, check=True)
    assert measurement.cpu_seconds >= 0.8 * BUSY_SECONDS


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child RSS read from /proc")
def test_children_peak_rss_counts_a_child_that_ended_during_the_block():
    allocate = ("import time\nblock = bytearray(200 * 2**20)\nblock[::4096] = b'x' * len("
                "block[::4096])\ntime.sleep(0.3)\n")  # 200 MB touched, held for 0.3 s
    with profiling.measure() as measurement:
        subprocess.run([sys.executable, "-c", allocate], check=True)
    assert measurement.children_peak_rss_bytes >= 190 * 2**20
    assert measurement.to_dict()["children_peak_rss_mb"] >= 190

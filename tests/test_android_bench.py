"""android_bench: benchmark_model output parser, the adb flow against a fake `adb`, and --local.

The fake `adb` is a small Python script written into tmp_path and put first on PATH: it logs
every command it receives, keeps a fake /data/local/tmp in a folder, and answers `devices`,
`get-state`, `push`, `shell chmod/getprop` and `shell benchmark_model …` like a phone, printing
output in benchmark_model's real format (the GPU fp32 configuration fails like a GPU delegate
that cannot initialize; NNAPI silently runs on the CPU).
"""

import csv
import json
import os
import shlex
import subprocess
import sys

import pytest

from android_bench import adb, local, matrix, parse, report, run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A current benchmark_model on an arm64 phone (XNNPACK, peak memory on; `INFO: ` prefix).
XNNPACK_OUTPUT = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Min num runs: [50]
INFO: Min warmup runs: [5]
INFO: Num threads: [4]
INFO: Graph: [/data/local/tmp/isp_int8.tflite]
INFO: Report the peak memory footprint: [1]
INFO: #threads used for CPU inference: [4]
INFO: Use xnnpack: [1]
INFO: Loaded model /data/local/tmp/isp_int8.tflite
INFO: Initialized TensorFlow Lite runtime.
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
INFO: XNNPACK delegate created.
INFO: Explicitly applied XNNPACK delegate, and the model graph will be completely executed by \
the delegate.
INFO: The input model file size (MB): 1.84562
INFO: Initialized session in 35.127ms.
INFO: Running benchmark for at least 5 iterations and at least 0.5 seconds but terminate if \
exceeding 150 seconds.
INFO: count=31 first=21422 curr=15892 min=15655 max=21422 avg=16201.5 std=1042 p5=15655 \
median=15933 p95=17122

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if \
exceeding 150 seconds.
INFO: count=63 first=15953 curr=15810 min=15641 max=17310 avg=15911.3 std=301 p5=15662 \
median=15842 p95=16521

INFO: Inference timings in us: Init: 35127, First inference: 21422, Warmup (avg): 16201.5, \
Inference (avg): 15911.3
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only \
APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at \
your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=6.03125 overall=14.8984
INFO: Overall peak memory footprint (MB) via periodic monitoring: 19.5664
INFO: Memory status at the end of exeution:
INFO: - VmRSS              : 18 MB
INFO: + RssAnnon           : 9 MB
INFO: + RssFile + RssShmem : 9 MB
"""

# An older benchmark_model (no prefix, exponent notation, one warm-up run, old memory line).
OLD_CPU_OUTPUT = """\
STARTING!
Num threads: [1]
Graph: [/data/local/tmp/isp_float32.tflite]
#threads used for CPU inference: [1]
Loaded model /data/local/tmp/isp_float32.tflite
The input model file size (MB): 16.9008
Initialized session in 17.187ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding \
150 seconds.
count=1 curr=3512391

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding \
150 seconds.
count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798

Inference timings in us: Init: 17187, First inference: 3512391, Warmup (avg): 3.51239e+06, \
Inference (avg): 2.95034e+06
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE \
to the actual memory footprint of the model at runtime. Take the information at your discretion.
Peak memory footprint (MB): init=4.92969 overall=138.809
"""

GPU_FAILURE_OUTPUT = """\
INFO: STARTING!
INFO: Graph: [/data/local/tmp/isp_int8.tflite]
INFO: Use gpu: [1]
INFO: Allow lower precision in gpu: [0]
INFO: Loaded model /data/local/tmp/isp_int8.tflite
INFO: Initialized TensorFlow Lite runtime.
INFO: Created TensorFlow Lite delegate for GPU.
INFO: GPU delegate created.
INFO: Replacing 66 out of 66 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 1 \
partitions for the whole graph.
ERROR: TfLiteGpuDelegate Init: Unrecognized Write selector
INFO: Created 0 GPU delegate kernels.
ERROR: TfLiteGpuDelegate Prepare: delegate is not initialized
ERROR: Node number 66 (TfLiteGpuDelegateV2) failed to prepare.
ERROR: Restored original execution plan after delegate application failure.
ERROR: Failed to apply GPU delegate.
ERROR: Benchmarking failed.
"""

# `python -m ai_edge_litert.tools.benchmark_litert_model` 2.3.0, as printed on this machine.
LITERT_TOOL_OUTPUT = """\
INFO: [cpu_registry.cc:75] XNNPACK CPU accelerator registered.
2026-11-24 20:39:02 INFO benchmark_litert_model: Running 20 benchmark iterations...

========================================
 BENCHMARK RESULTS
========================================
Model initialization:  6.99 ms
Warmup (first):        0.12 ms
Warmup (avg):          0.08 ms (2 runs)
Inference (avg):       0.04 ms (20 runs)
Inference (min):       0.04 ms
Inference (max):       0.05 ms
Inference (median):    0.04 ms
Inference (std):       0.00 ms
Inference (p5):        0.04 ms
Inference (p95):       0.04 ms
Throughput:            95.63 MB/s
Fully accelerated:     True
========================================
"""

LITERT_GPU_FAILURE = """\
Warning: Couldn't load Vulkan: libvulkan.so.1: cannot open shared object file
ERROR: [delegate_webgpu.cc:359] Failed to initialize WebGPU environment: INTERNAL: No adapters \
found
Traceback (most recent call last):
  File "benchmark_litert_model.py", line 338, in run_benchmark
RuntimeError: ERROR: [./litert/cc/litert_compiled_model.h:1961]
└ ERROR: [litert/runtime/compiled_model.cc:1036]
"""


# ----------------------------------------------------------------------------- parser


def test_parse_benchmark_model_current_format_reads_every_line_type():
    result = parse.parse_benchmark_model(XNNPACK_OUTPUT)
    assert result.init_ms == pytest.approx(35.127)
    assert result.first_inference_ms == pytest.approx(21.422)
    assert result.warmup_avg_ms == pytest.approx(16.2015)
    assert result.inference_avg_ms == pytest.approx(15.9113)
    # The second count= line is the measured run, the first the warm-up.
    assert (result.runs, result.warmup_runs) == (63, 31)
    assert result.inference_std_ms == pytest.approx(0.301)
    assert result.inference_min_ms == pytest.approx(15.641)
    assert result.inference_max_ms == pytest.approx(17.310)
    assert result.memory_init_mb == pytest.approx(6.03125)
    assert result.memory_overall_mb == pytest.approx(14.8984)
    assert result.peak_memory_mb == pytest.approx(19.5664)
    assert result.model_size_mb == pytest.approx(1.84562)
    assert result.delegates == {"XNNPACK": "full"}
    assert result.errors == ()
    assert parse.failure(result, 0, "XNNPACK") is None


def test_parse_benchmark_model_old_format_exponents_and_all_same_warmup():
    result = parse.parse_benchmark_model(OLD_CPU_OUTPUT)
    assert result.inference_avg_ms == pytest.approx(2950.34)
    assert result.warmup_avg_ms == pytest.approx(3512.39)
    assert result.first_inference_ms == pytest.approx(3512.391)
    assert (result.runs, result.warmup_runs) == (50, 1)
    assert result.inference_max_ms == pytest.approx(3189.954)
    assert (result.memory_init_mb, result.memory_overall_mb) == (4.92969, 138.809)
    assert result.peak_memory_mb is None


def test_parse_stats_line_all_same_run_has_only_count_and_curr():
    stats = parse.parse_stats_line("I tflite  : count=5 curr=1234(all same)")
    assert stats == parse.RunStats(count=5, curr=1234.0)
    assert parse.parse_stats_line("INFO: Min num runs: [50]") is None


def test_parse_gpu_delegate_failure_gives_the_delegate_error_not_a_crash():
    result = parse.parse_benchmark_model(GPU_FAILURE_OUTPUT)
    assert not result.has_timings
    reason = parse.failure(result, 1, "GPU")
    assert reason.startswith("exit status 1")
    assert "Unrecognized Write selector" in reason and "Failed to apply GPU delegate" in reason
    assert "Benchmarking failed" not in reason  # the generic line is dropped when others exist


def test_failure_flags_silent_cpu_fallback_and_missing_timings():
    fallback = parse.parse_benchmark_model(
        "INFO: Though NNAPI delegate is explicitly applied, the model graph will not be executed "
        "by the delegate.\n" + XNNPACK_OUTPUT.split("INFO: Loaded model")[1])
    assert fallback.has_timings and fallback.delegates["NNAPI"] == "none"
    assert "NNAPI delegate executes no node" in parse.failure(fallback, 0, "NNAPI")
    unsupported = parse.parse_benchmark_model(
        "WARN: GPU acceleration is unsupported on this platform.\n" + OLD_CPU_OUTPUT)
    assert parse.failure(unsupported, 0, "GPU") == ("GPU acceleration is unsupported on this "
                                                    "platform")
    assert parse.failure(parse.parse_benchmark_model("STARTING!\n"), 0) == (
        "no inference timings in the output")


def test_parse_partial_delegation_counts_kernels():
    result = parse.parse_benchmark_model(
        "INFO: Explicitly applied GPU delegate, and the model graph will be partially executed "
        "by the delegate w/ 3 delegate kernels.\n")
    assert result.delegates == {"GPU": "partial (3 kernels)"}


def test_parse_litert_tool_output_in_milliseconds():
    result = parse.parse_litert_tool(LITERT_TOOL_OUTPUT)
    assert (result.init_ms, result.first_inference_ms, result.warmup_avg_ms) == (6.99, 0.12, 0.08)
    assert (result.inference_avg_ms, result.inference_min_ms, result.inference_max_ms) == (
        0.04, 0.04, 0.05)
    assert (result.runs, result.warmup_runs, result.inference_std_ms) == (20, 2, 0.0)
    assert result.delegates == {"accelerated": "all ops"} and result.peak_memory_mb is None
    failed = parse.parse_litert_tool(LITERT_GPU_FAILURE)
    assert parse.failure(failed, 1) == (
        "exit status 1: ERROR: [delegate_webgpu.cc:359] Failed to initialize WebGPU "
        "environment: INTERNAL: No adapters found")


# ----------------------------------------------------------------------------- matrix/report


def test_benchmark_model_flags_per_configuration():
    flags = {config.name: matrix.benchmark_model_flags(config, "/d/m.tflite", num_runs=9,
                                                       warmup_runs=3)
             for config in matrix.CONFIGURATIONS}
    common = ["--num_runs=9", "--warmup_runs=3", "--report_peak_memory_footprint=true"]
    assert flags["cpu_1t"] == ["--graph=/d/m.tflite", "--num_threads=1", "--use_xnnpack=false",
                               *common]
    assert flags["cpu_4t"][1:3] == ["--num_threads=4", "--use_xnnpack=false"]
    assert flags["xnnpack_4t"][1:3] == ["--num_threads=4", "--use_xnnpack=true"]
    assert flags["gpu_fp32"][2:4] == ["--use_gpu=true", "--gpu_precision_loss_allowed=false"]
    assert flags["gpu_fp16"][2:4] == ["--use_gpu=true", "--gpu_precision_loss_allowed=true"]
    assert flags["nnapi"][2] == "--use_nnapi=true"
    assert all(f[-3:] == common for f in flags.values())


def test_select_configurations_keeps_matrix_order_and_rejects_unknown_names():
    assert [c.name for c in matrix.select_configurations(["nnapi", "cpu_1t"])] == [
        "cpu_1t", "nnapi"]
    assert len(matrix.select_configurations(None)) == 6
    with pytest.raises(ValueError, match="unknown configuration.*gpu"):
        matrix.select_configurations(["gpu"])


def test_write_reports_is_atomic_and_escapes_markdown(tmp_path):
    config = matrix.CONFIGURATIONS[0]
    rows = [matrix.make_row("a.tflite", config, parse.parse_benchmark_model(XNNPACK_OUTPUT),
                            None),
            matrix.make_row("b.tflite", config, None, "bad | thing")]
    paths = report.write_reports(str(tmp_path), rows, {"title": "t", "runs": "5"})
    assert sorted(os.listdir(tmp_path)) == ["results.csv", "results.json", "results.md"]
    markdown = open(paths["md"], encoding="utf-8").read()
    assert "| a.tflite | CPU 1 thread | 15.91 | 0.301 | 15.64 | 35.13 | 21.42 | 19.57 |" in markdown
    assert "error: bad \\| thing" in markdown
    assert json.load(open(paths["json"]))["rows"][1]["error"] == "bad | thing"


# ----------------------------------------------------------------------------- fake adb

FAKE_ADB = r'''#!{python}
"""A fake adb: logs its arguments and answers like one arm64 phone."""
import json, os, shlex, shutil, sys

ROOT = {root!r}
args = sys.argv[1:]
with open(os.path.join(ROOT, "adb_calls.jsonl"), "a") as log:
    log.write(json.dumps(args) + "\n")
if args == ["devices"]:
    print("List of devices attached")
    print(os.environ.get("FAKE_ADB_DEVICES", "R58N123ABC\tdevice"))
    sys.exit(0)
if args[0] == "-s":
    serial, args = args[1], args[2:]
device_fs = os.path.join(ROOT, "device")
if args == ["get-state"]:
    print("device")
elif args[0] == "push":
    local, remote = args[1:]
    os.makedirs(os.path.dirname(device_fs + remote), exist_ok=True)
    shutil.copy(local, device_fs + remote)
    print(f"{{local}}: 1 file pushed, 0 skipped. 31.5 MB/s (4096 bytes in 0.000s)")
elif args[0] == "shell":
    command = shlex.split(" ".join(args[1:]))
    if command[0] == "getprop":
        print({{"ro.product.model": "Pixel 7", "ro.product.cpu.abi": "arm64-v8a",
               "ro.build.version.release": "14"}}.get(command[1], ""))
    elif command[0] == "chmod":
        os.chmod(device_fs + command[2], 0o755)
    elif command[0].endswith("benchmark_model"):
        if not os.access(device_fs + command[0], os.X_OK):
            print(f"/system/bin/sh: {{command[0]}}: can't execute: Permission denied")
            sys.exit(126)
        flags = dict(arg[2:].split("=", 1) for arg in command[1:])
        if not os.path.exists(device_fs + flags["graph"]):
            print(f"ERROR: Could not open '{{flags['graph']}}'.")
            print("ERROR: Benchmarking failed.")
            sys.exit(1)
        if flags.get("use_gpu") == "true" and flags["gpu_precision_loss_allowed"] == "false":
            print(open(os.path.join(ROOT, "gpu_failure.txt")).read())
            sys.exit(1)
        avg = 12000 / int(flags["num_threads"])
        if flags.get("use_gpu") == "true":
            avg = 2500
            print("INFO: Explicitly applied GPU delegate, and the model graph will be "
                  "completely executed by the delegate.")
        if flags.get("use_nnapi") == "true":
            print("INFO: Though NNAPI delegate is explicitly applied, the model graph will not "
                  "be executed by the delegate.")
        print(f"INFO: The input model file size (MB): 1.84562")
        print(f"INFO: Initialized session in 35.127ms.")
        print(f"INFO: count=5 first={{avg * 2:.0f}} curr={{avg:.0f}} min={{avg:.0f}} "
              f"max={{avg * 2:.0f}} avg={{avg * 1.2:g}} std=300")
        print("")
        print(f"INFO: count={{flags['num_runs']}} first={{avg:.0f}} curr={{avg:.0f}} "
              f"min={{avg - 100:.0f}} max={{avg + 100:.0f}} avg={{avg:g}} std=50")
        print("")
        print(f"INFO: Inference timings in us: Init: 35127, First inference: {{avg * 2:.0f}}, "
              f"Warmup (avg): {{avg * 1.2:g}}, Inference (avg): {{avg:g}}")
        print("INFO: Memory footprint delta from the start of the tool (MB): init=6.03125 "
              "overall=14.8984")
        print("INFO: Overall peak memory footprint (MB) via periodic monitoring: 19.5664")
    else:
        print(f"/system/bin/sh: {{command[0]}}: inaccessible or not found")
        sys.exit(127)
else:
    print(f"adb: unknown command {{args[0]}}")
    sys.exit(1)
'''


@pytest.fixture
def fake_adb(tmp_path, monkeypatch):
    """Install the fake adb first on PATH; return (root folder, function reading its calls)."""
    root = tmp_path / "fake"
    (root / "bin").mkdir(parents=True)
    (root / "gpu_failure.txt").write_text(GPU_FAILURE_OUTPUT)
    script = root / "bin" / "adb"
    script.write_text(FAKE_ADB.format(python=sys.executable, root=str(root)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")

    def calls():
        path = root / "adb_calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() \
            else []
    return root, calls


def _inputs(tmp_path):
    """A fake arm64 binary and two model files (the fake phone only needs them to exist)."""
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF fake arm64")
    models = []
    for name in ("isp_float32.tflite", "isp_int8.tflite"):
        (tmp_path / name).write_bytes(b"TFL3 fake")
        models.append(str(tmp_path / name))
    return str(binary), models


def test_device_flow_pushes_runs_every_configuration_and_reports_rows(tmp_path, fake_adb):
    root, calls = fake_adb
    binary, models = _inputs(tmp_path)
    output = tmp_path / "report"
    rows, paths = run.benchmark(models, str(output), binary=binary, num_runs=7, warmup_runs=2)

    log = calls()
    assert log[0] == ["devices"] and log[1] == ["-s", "R58N123ABC", "get-state"]
    pushes = [call[3:] for call in log if call[2:3] == ["push"]]
    assert pushes == [[binary, "/data/local/tmp/benchmark_model"],
                      [models[0], "/data/local/tmp/isp_float32.tflite"],
                      [models[1], "/data/local/tmp/isp_int8.tflite"]]
    chmod = log.index(["-s", "R58N123ABC", "shell", "chmod", "+x",
                       "/data/local/tmp/benchmark_model"])
    runs = [shlex.split(call[3]) for call in log if call[2:3] == ["shell"] and len(call) == 4]
    assert chmod < log.index(["-s", "R58N123ABC", "shell", shlex.join(runs[0])])
    assert len(runs) == 12 and all(r[0] == "/data/local/tmp/benchmark_model" for r in runs)
    by_config = dict(zip([c.name for c in matrix.CONFIGURATIONS], runs[:6]))
    assert by_config["cpu_1t"][1:] == ["--graph=/data/local/tmp/isp_float32.tflite",
                                       "--num_threads=1", "--use_xnnpack=false", "--num_runs=7",
                                       "--warmup_runs=2", "--report_peak_memory_footprint=true"]
    assert "--gpu_precision_loss_allowed=false" in by_config["gpu_fp32"]
    assert "--gpu_precision_loss_allowed=true" in by_config["gpu_fp16"]
    assert "--use_nnapi=true" in by_config["nnapi"]
    assert runs[6][1] == "--graph=/data/local/tmp/isp_int8.tflite"

    assert [(r.model, r.configuration) for r in rows[:2]] == [
        ("isp_float32.tflite", "cpu_1t"), ("isp_float32.tflite", "cpu_4t")]
    ok = {r.configuration: r for r in rows[:6] if r.status == "ok"}
    assert set(ok) == {"cpu_1t", "cpu_4t", "xnnpack_4t", "gpu_fp16"}
    assert ok["cpu_1t"].inference_avg_ms == pytest.approx(12.0)
    assert ok["cpu_4t"].inference_avg_ms == pytest.approx(3.0)
    assert ok["gpu_fp16"].inference_avg_ms == pytest.approx(2.5)
    assert ok["gpu_fp16"].delegation == "GPU: full"
    assert (ok["cpu_1t"].runs, ok["cpu_1t"].peak_memory_mb) == (7, pytest.approx(19.5664))
    gpu_fp32, nnapi = rows[3], rows[5]
    assert gpu_fp32.status == "error" and "Failed to apply GPU delegate" in gpu_fp32.error
    assert gpu_fp32.inference_avg_ms is None
    assert nnapi.status == "error" and "NNAPI delegate executes no node" in nnapi.error

    with open(paths["csv"], newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 12 and table[3]["status"] == "error"
    meta = json.load(open(paths["json"]))["meta"]
    assert "model=Pixel 7" in meta["device"] and "abi=arm64-v8a" in meta["device"]
    assert "Pixel 7" in open(paths["md"]).read()
    assert "Unrecognized Write selector" in (output / "logs" / "isp_float32__gpu_fp32.log"
                                             ).read_text()


def test_device_flow_with_serial_addresses_that_device(tmp_path, fake_adb, monkeypatch):
    _, calls = fake_adb
    monkeypatch.setenv("FAKE_ADB_DEVICES", "emulator-5554\tdevice\nR58N123ABC\tdevice")
    binary, models = _inputs(tmp_path)
    rows, _ = run.benchmark(models[:1], str(tmp_path / "r"), binary=binary, serial="R58N123ABC",
                            configs=["cpu_4t"], num_runs=3, warmup_runs=1)
    assert [r.status for r in rows] == ["ok"]
    assert all(call[:2] == ["-s", "R58N123ABC"] for call in calls()[1:])


@pytest.mark.parametrize("devices, serial, message", [
    ("", None, "no Android device connected"),
    ("R58N123ABC\tdevice\nemulator-5554\tdevice", None, "2 devices connected.*--serial"),
    ("R58N123ABC\tunauthorized", None, "unauthorized: unlock the phone"),
    ("R58N123ABC\tdevice", "XYZ", "'XYZ' is not connected"),
])
def test_connect_reports_unusable_devices_clearly(fake_adb, monkeypatch, devices, serial,
                                                  message):
    monkeypatch.setenv("FAKE_ADB_DEVICES", devices)
    with pytest.raises(adb.AdbError, match=message):
        adb.connect(serial)


def test_missing_adb_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(adb.AdbError, match="not found on PATH.*apt-get install adb"):
        adb.find_adb()


def test_duplicate_model_names_are_refused_before_any_push(tmp_path, fake_adb):
    _, calls = fake_adb
    binary, models = _inputs(tmp_path)
    (tmp_path / "other").mkdir()
    twin = tmp_path / "other" / "isp_int8.tflite"
    twin.write_bytes(b"TFL3")
    with pytest.raises(ValueError, match="isp_int8.tflite given twice"):
        run.benchmark([models[1], str(twin)], str(tmp_path / "r"), binary=binary)
    assert not [call for call in calls() if "push" in call]


def test_command_line_without_device_exits_with_the_reason(tmp_path, fake_adb):
    binary, models = _inputs(tmp_path)
    env = dict(os.environ, FAKE_ADB_DEVICES="", PYTHONPATH=REPO)
    completed = subprocess.run(
        [sys.executable, "-m", "android_bench.run", f"--models={models[0]}",
         f"--benchmark_binary={binary}", f"--output={tmp_path / 'r'}"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
    assert completed.returncode != 0
    assert "android_bench: no Android device connected" in completed.stderr


def test_android_bench_imports_no_tensorflow():
    code = ("import sys, android_bench.run, android_bench.adb, android_bench.local; "
            "assert not [m for m in sys.modules if m.startswith(('tensorflow', 'keras'))]")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120,
                   env=dict(os.environ, PYTHONPATH=REPO))


# ----------------------------------------------------------------------------- --local


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import tflite_fixtures  # pylint: disable=import-outside-toplevel
    return tflite_fixtures.write_model(tmp_path_factory.mktemp("models"), (64, 64))


def test_litert_tool_args_map_the_matrix_or_refuse():
    configs = {c.name: c for c in matrix.CONFIGURATIONS}
    args, note = local.litert_tool_args(configs["cpu_1t"], "m.tflite", num_runs=4,
                                        warmup_runs=1)
    assert args == ["--model=m.tflite", "--num_threads=1", "--num_runs=4", "--warmup_runs=1"]
    assert "XNNPACK" in note
    assert local.litert_tool_args(configs["gpu_fp16"], "m", num_runs=1, warmup_runs=0
                                  )[0][-1] == "--use_gpu"
    for name in ("gpu_fp32", "nnapi"):
        with pytest.raises(local.Unsupported):
            local.litert_tool_args(configs[name], "m", num_runs=1, warmup_runs=0)


def test_local_matrix_measures_cpu_and_turns_the_rest_into_error_rows(tmp_path, tiny_model):
    rows, paths = run.benchmark([tiny_model], str(tmp_path), use_local=True, num_runs=10,
                                warmup_runs=2)
    by_config = {row.configuration: row for row in rows}
    assert list(by_config) == [c.name for c in matrix.CONFIGURATIONS]
    for name in ("cpu_1t", "cpu_4t", "xnnpack_4t"):
        row = by_config[name]
        assert row.status == "ok", row.error
        assert row.inference_avg_ms > 0 and row.init_ms > 0 and row.runs == 10
    assert "not available locally" in by_config["gpu_fp32"].error
    assert "not available locally" in by_config["nnapi"].error
    gpu = by_config["gpu_fp16"]  # no GPU adapter on a CI machine: an error row with the reason
    assert gpu.status == "ok" or gpu.error
    markdown = open(paths["md"], encoding="utf-8").read()
    assert "--local" in markdown and markdown.count("\n| ") == 7

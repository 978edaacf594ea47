"""Drive TFLite's `benchmark_model` on an Android phone through `adb`.

Flow: find `adb` on PATH → pick the device (`adb devices`, then `adb -s SERIAL get-state`) →
push the benchmark binary (then `chmod +x`) and the models to /data/local/tmp → run
`adb -s SERIAL shell /data/local/tmp/benchmark_model --graph=… …` once per model × configuration
→ parse each output into a row. A configuration that fails on the phone (non-zero exit, GPU
delegate refused, no timings, time-out) becomes an error row; problems with adb itself or the
device (none, several, unauthorized, a failed push) raise `AdbError` with the reason.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import subprocess
from typing import Sequence

from android_bench import matrix, parse, report

REMOTE_DIR = "/data/local/tmp"
DEVICE_PROPERTIES = {"model": "ro.product.model", "abi": "ro.product.cpu.abi",
                     "android": "ro.build.version.release", "soc": "ro.soc.model"}
_STATE_ADVICE = {
    "unauthorized": "unlock the phone and accept the 'Allow USB debugging?' prompt, then retry",
    "offline": "reconnect the USB cable (or run `adb kill-server`), then retry",
    "no permissions": "add a udev rule for the phone (see android_bench/README.md) or run adb "
                      "as a user in the plugdev group",
}


class AdbError(RuntimeError):
    """adb is missing, no usable device is connected, or an adb step failed."""


def find_adb(adb: str = "adb") -> str:
    """Return the path of the adb executable.

    Args:
      adb: a command name looked up on PATH, or a path.

    Raises:
      AdbError: adb cannot be found.
    """
    found = shutil.which(adb)
    if found is None:
        raise AdbError(f"`{adb}` not found on PATH: install it (Debian/Ubuntu: `apt-get install "
                       "adb`, or Android SDK platform-tools) or pass --adb=/path/to/adb")
    return found


def parse_devices(text: str) -> list[tuple[str, str]]:
    """Parse `adb devices` output into [(serial, state)], e.g. [("R58M", "device")]."""
    devices = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("List of devices", "*")) or "\t" not in line:
            continue
        serial, state = line.split("\t", 1)
        devices.append((serial.strip(), state.strip().split(" (")[0]))
    return devices


def pick_device(devices: Sequence[tuple[str, str]], serial: str | None = None) -> str:
    """Choose the device to use: `serial` if given, else the only device connected.

    Args:
      devices: the `parse_devices` list.
      serial: the requested serial (--serial), or None.

    Returns:
      The serial of a device in the "device" (ready) state.

    Raises:
      AdbError: no device, several without --serial, the serial is not connected, or the
        device is unauthorized / offline.
    """
    if not devices:
        raise AdbError("no Android device connected (`adb devices` lists none): connect the "
                       "phone by USB with USB debugging on (see android_bench/README.md)")
    if serial is None:
        if len(devices) > 1:
            listed = ", ".join(f"{name} ({state})" for name, state in devices)
            raise AdbError(f"{len(devices)} devices connected ({listed}): choose one with "
                           "--serial=SERIAL")
        serial = devices[0][0]
    states = dict(devices)
    if serial not in states:
        raise AdbError(f"device {serial!r} is not connected; `adb devices` lists: "
                       f"{', '.join(states)}")
    state = states[serial]
    if state != "device":
        advice = _STATE_ADVICE.get(state, "check the phone and the cable")
        raise AdbError(f"device {serial} is {state}: {advice}")
    return serial


@dataclasses.dataclass
class Device:
    """One connected phone, addressed through `adb -s SERIAL`.

    Attributes:
      adb: path of the adb executable.
      serial: the device serial.
      timeout_s: time limit of one adb command (pushes and benchmark runs).
    """

    adb: str
    serial: str
    timeout_s: float = 900.0

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """Run `adb -s SERIAL ARGS…` and return it (stdout and stderr merged, text)."""
        return subprocess.run([self.adb, "-s", self.serial, *args], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace",
                              timeout=self.timeout_s, check=False)

    def checked(self, *args: str) -> str:
        """Run an adb command that must succeed; return its output.

        Raises:
          AdbError: non-zero exit or time-out, with the command and adb's message.
        """
        command = shlex.join(["adb", "-s", self.serial, *args])
        try:
            completed = self.run(*args)
        except subprocess.TimeoutExpired:
            raise AdbError(f"`{command}` timed out after {self.timeout_s:g} s") from None
        if completed.returncode != 0:
            raise AdbError(f"`{command}` failed (exit {completed.returncode}): "
                           f"{completed.stdout.strip()}")
        return completed.stdout

    def shell(self, command: Sequence[str]) -> subprocess.CompletedProcess:
        """Run a command on the device; the arguments are quoted for the device's shell."""
        return self.run("shell", shlex.join(command))

    def push(self, local: str, remote: str) -> None:
        """Copy a file to the device.

        Raises:
          AdbError: the local file is missing or adb push failed.
        """
        if not os.path.isfile(local):
            raise AdbError(f"{local}: no such file to push")
        self.checked("push", local, remote)

    def properties(self) -> dict[str, str]:
        """Return the DEVICE_PROPERTIES of the phone (empty strings when unknown)."""
        values = {"serial": self.serial}
        for key, prop in DEVICE_PROPERTIES.items():
            completed = self.run("shell", "getprop", prop)
            values[key] = completed.stdout.strip() if completed.returncode == 0 else ""
        return values


def connect(serial: str | None = None, adb: str = "adb", timeout_s: float = 900.0) -> Device:
    """Find adb, choose the device and check that it is ready.

    Args:
      serial: --serial, or None to use the only connected device.
      adb: adb command or path.
      timeout_s: time limit of each adb command.

    Raises:
      AdbError: see `find_adb`, `pick_device`; or `adb devices` / `get-state` failed.
    """
    path = find_adb(adb)
    try:
        listing = subprocess.run([path, "devices"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, errors="replace",
                                 timeout=60, check=False)
    except subprocess.TimeoutExpired:
        raise AdbError("`adb devices` did not answer within 60 s (try `adb kill-server`)"
                       ) from None
    if listing.returncode != 0:
        raise AdbError(f"`adb devices` failed (exit {listing.returncode}): "
                       f"{listing.stdout.strip()}")
    device = Device(path, pick_device(parse_devices(listing.stdout), serial), timeout_s)
    state = device.checked("get-state").strip()
    if state != "device":
        raise AdbError(f"device {device.serial} is {state!r}, not ready ('device')")
    return device


def remote_path(local: str) -> str:
    """Return where a local file goes on the device: /data/local/tmp/<base name>."""
    return f"{REMOTE_DIR}/{os.path.basename(local)}"


def install(device: Device, binary: str, models: Sequence[str]) -> tuple[str, dict[str, str]]:
    """Push the benchmark binary (made executable) and the models to /data/local/tmp.

    Args:
      device: the connected device.
      binary: local path of the arm64 `benchmark_model`.
      models: local .tflite paths (their base names must differ).

    Returns:
      (remote binary path, {local model path: remote model path}).

    Raises:
      ValueError: two models share a base name.
      AdbError: a missing file or a failed push / chmod.
    """
    names = [os.path.basename(model) for model in models]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"models must have distinct file names on the device: "
                         f"{', '.join(duplicates)} given twice")
    remote_binary = remote_path(binary)
    device.push(binary, remote_binary)
    device.checked("shell", "chmod", "+x", remote_binary)
    remote_models = {}
    for model in models:
        remote_models[model] = remote_path(model)
        device.push(model, remote_models[model])
    return remote_binary, remote_models


@dataclasses.dataclass
class DeviceRunner:
    """Runs one model × configuration with benchmark_model on the device (a `run_one`).

    Attributes:
      device: the connected device.
      binary: remote path of benchmark_model.
      remote_models: local model path -> remote model path (from `install`).
      num_runs, warmup_runs: benchmark_model's --num_runs / --warmup_runs.
      log_dir: where each run's full output is kept (<model>__<config>.log), or None.
    """

    device: Device
    binary: str
    remote_models: dict[str, str]
    num_runs: int = 50
    warmup_runs: int = 5
    log_dir: str | None = None

    def __call__(self, model: str, config: matrix.Configuration) -> matrix.Row:
        command = [self.binary, *matrix.benchmark_model_flags(
            config, self.remote_models[model], num_runs=self.num_runs,
            warmup_runs=self.warmup_runs)]
        printable = shlex.join(["adb", "-s", self.device.serial, "shell", *command])
        try:
            completed = self.device.shell(command)
        except subprocess.TimeoutExpired as timeout:
            output = timeout.output or ""
            output = output.decode(errors="replace") if isinstance(output, bytes) else output
            report.write_log(self.log_dir, model, config, printable, output)
            return matrix.make_row(model, config, parse.parse_benchmark_model(output),
                                   f"timed out after {self.device.timeout_s:g} s",
                                   command=printable)
        report.write_log(self.log_dir, model, config, printable, completed.stdout)
        result = parse.parse_benchmark_model(completed.stdout)
        return matrix.make_row(model, config, result,
                               parse.failure(result, completed.returncode, config.delegate),
                               command=printable)


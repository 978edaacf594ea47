"""The CPU the numbers depend on: model name and the ISA flags that pick XNNPACK's kernels."""

from __future__ import annotations

import functools
import os
import platform
from typing import Any

# Flags that change which int8 / float kernels XNNPACK (and OpenCV, zlib) can use.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8",
             "amx_bf16", "neon", "asimd", "asimddp", "asimdhp", "i8mm", "sve", "sve2", "bf16")


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Return {"model": name, "flags": [ISA_FLAGS present]} of /proc/cpuinfo text (first CPU).

    x86 lists `model name` and `flags`; ARM lists `Features` (asimd = NEON, asimddp = dotprod)
    and sometimes no model name (then `CPU implementer`/`CPU part` are used).
    """
    model, flags, implementer, part = "", set(), "", ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key in ("model name", "hardware") and not model:
            model = value
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
        elif key == "cpu implementer" and not implementer:
            implementer = value
        elif key == "cpu part" and not part:
            part = value
    if "asimd" in flags:
        flags.add("neon")
    if not model and implementer:
        model = f"ARM implementer {implementer} part {part}"
    return {"model": model, "flags": [flag for flag in ISA_FLAGS if flag in flags]}


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    """Return {"model", "isa_flags", "machine", "cpu_count"} of this host (cached)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            parsed = parse_cpuinfo(handle.read())
    except OSError:  # not Linux
        parsed = {"model": "", "flags": []}
    return {"model": parsed["model"] or platform.processor() or platform.machine(),
            "isa_flags": parsed["flags"], "machine": platform.machine(),
            "cpu_count": os.cpu_count()}


def machine_slug() -> str:
    """Return a short file-name-safe name of the CPU, e.g. "intel-xeon-platinum-8481c"."""
    name = cpu_info()["model"].lower()
    for word in ("(r)", "(tm)", " cpu", "@", "processor"):
        name = name.replace(word, " ")
    slug = "-".join(part for part in "".join(c if c.isalnum() or c == "." else " "
                                             for c in name).split() if "ghz" not in part)
    return slug[:48] or platform.machine().lower()

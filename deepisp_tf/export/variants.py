"""The export variants, their file-size reductions, and the policy that recommends one.

`VARIANTS` is `config.EXPORT_VARIANTS` (the one list: variant -> (source model, conversion
mode)). `recommend` never ranks a variant without quality: only variants scored on validation
tiles, within the quality budget and with parity, are ranked, by speed on this host, then size.
"""

from __future__ import annotations

from typing import Any

from deepisp_tf.config import EXPORT_VARIANTS

VARIANTS = EXPORT_VARIANTS
SAME_SPEED = 1.05          # latencies within 5% of the fastest count as equally fast


def add_reductions(entries: list[dict[str, Any]]) -> None:
    """Add size reductions (%) against the float32 entry of the same shape, in place."""
    float32 = {tuple(e["shape"]): e for e in entries
               if e["variant"] == "float32" and e.get("size_bytes")}
    for entry in entries:
        base = float32.get(tuple(entry["shape"]))
        if base is None or not entry.get("size_bytes"):
            continue
        entry["reduction_vs_float32_pct"] = 100 * (1 - entry["size_bytes"] / base["size_bytes"])
        entry["gzip_reduction_vs_float32_pct"] = 100 * (1 - entry["gzip_bytes"]
                                                        / base["size_bytes"])
        entry["gzip_reduction_vs_float32_gzip_pct"] = 100 * (1 - entry["gzip_bytes"]
                                                             / base["gzip_bytes"])


def _rejection(entry: dict[str, Any], max_drop_db: float) -> str | None:
    """Return why a converted entry cannot be recommended, or None if it can."""
    if "psnr_drop_db" not in entry:
        return "quality not scored"
    if entry["psnr_drop_db"] > max_drop_db:
        return f"loses {entry['psnr_drop_db']:.2f} dB (budget {max_drop_db:.2f} dB)"
    if not entry.get("parity_ok"):
        return (f"parity {entry.get('parity_psnr_db', float('nan')):.1f} dB below its "
                f"{entry.get('parity_min_psnr_db')} dB minimum")
    return None


def recommend(entries: list[dict[str, Any]], shape: list[int], max_drop_db: float,
              unscored_reason: str | None = None) -> dict[str, Any]:
    """Pick the variant to ship at the scored `shape`, or none, saying why.

    Ranking: (1) quality first: only variants scored on validation tiles whose PSNR is within
    `max_drop_db` of the Keras float model and whose LiteRT output matches their Keras model
    (parity) are eligible; a variant without a score is never ranked; (2) then speed measured
    on this host: the fastest, with latencies within 5% counting as equal; (3) then the
    smaller file.

    Args:
      entries: the report's variant entries.
      shape: [H, W] of the scored shape.
      max_drop_db: the quality budget (`ExportConfig.max_psnr_drop_db`).
      unscored_reason: why quality could not be scored, when it could not.

    Returns:
      {"variant", "file", "shape", "budget_db", "scored", "rejected": {variant: why},
       "reason"}; "variant" and "file" are None when nothing is eligible.
    """
    done = [e for e in entries if e["shape"] == shape and not e["error"]]
    rejected = {e["variant"]: why for e in done
                if (why := _rejection(e, max_drop_db)) is not None}
    eligible = [e for e in done if e["variant"] not in rejected]
    scored = any("psnr_drop_db" in e for e in done)
    result: dict[str, Any] = {"variant": None, "file": None, "shape": shape,
                              "budget_db": max_drop_db, "scored": scored, "rejected": rejected}
    size = f"{shape[0]}x{shape[1]}"
    if not done:
        return result | {"reason": f"no variant converted at {size}"}
    if not scored:
        return result | {"reason": f"no recommendation: quality was not scored at {size} "
                         f"({unscored_reason or 'no validation tiles'}), and a variant is "
                         "never ranked on speed and size alone"}
    if not eligible:
        return result | {"reason": f"no variant at {size} keeps quality within "
                         f"{max_drop_db:.2f} dB of the Keras float model: " + "; ".join(
                             f"{v} {why}" for v, why in rejected.items())}
    fastest = min(e["latency_ms"] for e in eligible)
    best = min((e for e in eligible if e["latency_ms"] <= SAME_SPEED * fastest),
               key=lambda e: e["size_bytes"])
    why = [f"PSNR {best['psnr']:.2f} dB, {best['psnr_drop_db']:+.2f} dB against the Keras float "
           f"model (budget {max_drop_db:.2f} dB)",
           f"{best['latency_ms']:.2f} ms per {size} tile with LiteRT on this CPU ("
           + (f"fastest of the {len(eligible)} variants" if len(eligible) > 1 else
              "the only variant") + " within the budget)",
           f"{best['size_bytes'] / 1e3:.0f} kB"]
    if "reduction_vs_float32_pct" in best:
        why[-1] += f" ({best['reduction_vs_float32_pct']:.0f}% smaller than float32)"
    why.append("every op on XNNPACK" if best["xnnpack_all_delegated"] else
               f"ops left on LiteRT's builtin kernels: {', '.join(best['not_delegated_ops'])}")
    return result | {"variant": best["variant"], "file": best["file"], "reason": "; ".join(why)}

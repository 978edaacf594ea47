"""Per-op profile of .tflite models on LiteRT's default CPU path (XNNPACK), CPU named.

  python -m tools.profile_ops --model=A.tflite [--model=B.tflite ...] [--threads=1,2]
      [--runs=50] [--rounds=3] [--statistic=median|min] [--top=15] [--output=REPORT.md]

For every model and thread count: the whole model's median invoke time (models timed in
alternation, `--rounds` times), its XNNPACK partitions and undelegated ops, the time per op
type and the slowest nodes, each op timed alone (`deepisp_tf.runtime.op_profile`); then the
op types side by side and the whole-model ratios to the first model. No TensorFlow.
"""

import sys

from absl import app, flags

from deepisp_tf.runtime import op_profile

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("model", None, "A .tflite model (repeat the flag to compare).")
flags.DEFINE_list("threads", ["1"], "Interpreter thread counts to profile.")
flags.DEFINE_integer("runs", 50, "Timed invokes per measurement (median).")
flags.DEFINE_integer("rounds", 3, "Alternating rounds of the whole-model timing.")
flags.DEFINE_enum("statistic", "median", ["median", "min"],
                  "Summary of the timed invokes; min resists other processes on a shared host.")
flags.DEFINE_integer("top", 15, "Slowest nodes listed per model.")
flags.DEFINE_bool("per_op", True, "Also time every op alone (slower).")
flags.DEFINE_string("output", None, "Also write the report (Markdown) to this file.")
flags.mark_flag_as_required("model")


def report(models: list[str], threads: list[int], runs: int, rounds: int, top: int,
           per_op: bool, statistic: str = "median") -> str:
    """Return the Markdown report of `models` at each thread count."""
    cpu = op_profile.cpu_info()
    lines = [f"CPU: {cpu.line()}", f"statistic: {statistic} of {runs} invokes", ""]
    for count in threads:
        whole = op_profile.alternate_whole(models, count, runs, rounds, statistic=statistic)
        lines += [f"## {count} thread(s)", "", "| model | ms | vs first |", "| --- | ---: | ---: |"]
        first = whole[models[0]]
        lines += [f"| {path} | {ms:.3f} | {ms / first:.2f}x |" for path, ms in whole.items()]
        lines.append("")
        if not per_op:
            continue
        profiles = [op_profile.profile_model(path, count, runs, statistic=statistic)
                    for path in models]
        for profile in profiles:
            lines += [op_profile.format_profile(profile, cpu, top), ""]
        if len(profiles) > 1:
            lines += ["op types side by side (ms, nodes; each op alone):", "",
                      op_profile.compare(profiles), ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    del argv
    try:
        threads = [int(t) for t in FLAGS.threads]
        text = report(FLAGS.model, threads, FLAGS.runs, FLAGS.rounds, FLAGS.top, FLAGS.per_op,
                      FLAGS.statistic)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(text)
    if FLAGS.output:
        with open(FLAGS.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    return 0


if __name__ == "__main__":
    app.run(main)

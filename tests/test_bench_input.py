"""The input benchmark runs end to end on tiny data and reports every measurement."""

from deepisp_tf.config import DataConfig, SyntheticConfig
from deepisp_tf.data import bench_input
from deepisp_tf.raw import synthetic


def test_bench_input_reports_prepare_speedup_and_serial_vs_parallel_pipeline(tmp_path):
    paths = synthetic.generate(tmp_path / "raw", SyntheticConfig(min_side=48, max_side=64),
                               limit=3)
    config = DataConfig(tile_size=34, tile_stride=32, crop_size=32, border=0,
                        max_tiles_per_file=4, shuffle_buffer=4, val_fraction=0.0,
                        test_fraction=0.0)
    report = bench_input.run(paths, str(tmp_path / "bench"), config, [1, 2], batch_size=2,
                             batches=3)

    assert [row["workers"] for row in report["prepare"]] == [1, 2]
    assert all(row["files"] == 3 and row["seconds"] > 0 for row in report["prepare"])
    assert report["prepare"][0]["speedup"] == 1.0
    assert [row["mode"] for row in report["pipeline"]] == ["serial", "parallel"]
    assert all(row["batches_per_s"] > 0 for row in report["pipeline"])
    markdown = bench_input.format_report(report, "python -m tools.benchmark_input")
    assert "## prepare_data" in markdown and "## tf.data" in markdown
    assert markdown.count("\n| ") == 2 * (1 + 2)  # per table: a header and two rows

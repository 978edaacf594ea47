"""Preparation on Apache Beam (DirectRunner, two worker processes) writes the local path's
dataset: the same shards with the same records, the same manifest entries and splits."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from deepisp_tf import config as config_lib
from deepisp_tf.data import beam_prepare, pipeline
from deepisp_tf.raw import synthetic

BEAM_MISSING = beam_prepare.beam_available()
pytestmark = pytest.mark.skipif(BEAM_MISSING is not None, reason=str(BEAM_MISSING))

TILES = ["--config=quickstart", "--override=data.tile_size=34", "--override=data.tile_stride=32",
         "--override=data.crop_size=32", "--override=data.max_tiles_per_file=4",
         "--override=data.border=8", "--override=data.val_fraction=0.25",
         "--override=data.test_fraction=0.25"]
TWO_PROCESSES = ("--beam_options=--runner=DirectRunner --direct_num_workers=2 "
                 "--direct_running_mode=multi_processing")


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory) -> str:
    """Four small synthetic DNGs (four groups) and a text file named like a RAW file."""
    folder = tmp_path_factory.mktemp("beam_raw")
    small = config_lib.SyntheticConfig(variants_per_image=1, min_side=64, max_side=96)
    synthetic.generate(str(folder), small, limit=4)
    (folder / "notes.dng").write_bytes(b"not a raw file\n" * 64)
    return str(folder)


def _prepare(raw_dir: str, output: str, *runner: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tools.prepare_data", "--source=raw_dir", f"--input={raw_dir}",
         f"--output={output}", *TILES, *runner], cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def _records(path: str) -> list:
    """Return a shard's examples as protos: equal iff every feature (tile bytes, metadata,
    name, offset) is equal. Serialized bytes are not comparable: protobuf writes the features
    map in an order that differs between processes, even between two local runs."""
    example = pipeline.tf.train.Example
    return [example.FromString(record.numpy())
            for record in pipeline.tf.data.TFRecordDataset(path)]


def test_beam_direct_runner_two_processes_writes_the_local_dataset_and_resumes(raw_dir, tmp_path):
    local, beam = str(tmp_path / "local"), str(tmp_path / "beam")
    _prepare(raw_dir, local, "--workers=1")
    printed = _prepare(raw_dir, beam, "--runner=beam", TWO_PROCESSES)
    expected = json.load(open(os.path.join(local, "manifest.json")))
    manifest = json.load(open(os.path.join(beam, "manifest.json")))
    assert manifest["complete"] and manifest["settings"] == expected["settings"]
    assert manifest["files"] == expected["files"]
    assert manifest["splits"] == expected["splits"]
    assert {entry["split"] for entry in manifest["files"]} == {"train", "val", "test"}
    bad = [entry for entry in manifest["files"] if entry["status"] == "error"]
    assert [entry["name"] for entry in bad] == ["notes.dng"] and bad[0]["reason"]
    assert "FAILED notes.dng" in printed
    ok = [entry for entry in manifest["files"] if entry["status"] == "ok"]
    assert len(ok) == 4
    for entry in ok:
        records = _records(os.path.join(beam, entry["shard"]))
        assert len(records) == entry["tiles"] > 0
        assert records == _records(os.path.join(local, entry["shard"]))
    assert not os.listdir(os.path.join(beam, beam_prepare.ENTRIES_DIR))
    # A rerun keeps the finished shards untouched and retries only the bad file.
    stamps = {e["shard"]: os.stat(os.path.join(beam, e["shard"])).st_mtime_ns for e in ok}
    _prepare(raw_dir, beam, "--runner=beam", "--beam_options=--runner=DirectRunner")
    assert json.load(open(os.path.join(beam, "manifest.json")))["files"] == manifest["files"]
    assert stamps == {shard: os.stat(os.path.join(beam, shard)).st_mtime_ns for shard in stamps}


def test_parse_options_splits_like_a_shell_and_defaults_to_two_local_processes():
    assert beam_prepare.parse_options(None) == beam_prepare.DEFAULT_OPTIONS
    assert beam_prepare.parse_options("--runner=SparkRunner --spark_master_url='spark://h:7077'"
                                      ) == ("--runner=SparkRunner",
                                            "--spark_master_url=spark://h:7077")

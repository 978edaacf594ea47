"""Dataset preparation: shards and manifest, splits by group, bad files, resume after a kill."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, sample
from deepisp_tf.config import DataConfig, REFERENCE_RENDER_SETTINGS
from deepisp_tf.data import pipeline, prepare

SMALL = DataConfig(tile_size=66, tile_stride=64, crop_size=64, max_tiles_per_file=6,
                   val_fraction=0.0, test_fraction=0.0)


@pytest.fixture
def raw_dir(tmp_path):
    """Three small real files, a text file renamed .dng and a truncated CRW."""
    folder = tmp_path / "raw"
    folder.mkdir()
    for part in ("Image__1.qtk", "camera__test.dng", "DC120_P003908.KDC"):
        shutil.copy(sample(part), folder)
    (folder / "notes.dng").write_bytes(b"not a raw file\n" * 64)
    with open(sample("PowerShotS40_CRW_0101"), "rb") as handle:
        (folder / "cut.CRW").write_bytes(handle.read(50000))
    (folder / "SOURCES.tsv").write_text("sidecar, ignored\n")
    return str(folder)


def test_assign_splits_keeps_groups_together_and_honours_holdout_globs():
    names = [f"photo{i}__v{k}.dng" for i in range(10) for k in range(3)] + ["cam_x1.NEF"]
    splits = prepare.assign_splits(names, 0.2, 0.2, test_patterns=["cam_x*"])
    assert splits["cam_x1.NEF"] == "test"
    for i in range(10):
        assert len({splits[f"photo{i}__v{k}.dng"] for k in range(3)}) == 1
    counts = {s: sum(1 for n in names if splits[n] == s and "__v0" in n) for s in prepare.SPLITS}
    assert counts == {"train": 6, "val": 2, "test": 2}


@pytest.mark.parametrize("flag", ["val", "test"])
def test_assign_splits_glob_matching_no_file_is_an_error_naming_the_glob(flag):
    names = ["photo0__v0.dng", "photo1__v0.dng", "cam_x1.NEF"]
    with pytest.raises(ValueError, match=rf"the {flag} glob '\*D1X\*' matches none of the 3"):
        prepare.assign_splits(names, 0.2, 0.2, **{f"{flag}_patterns": ["cam_x*", "*D1X*"]})


def test_prepare_tool_holdout_glob_matching_no_file_exits_naming_the_glob(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in ("a.NEF", "b.CR2"):
        (folder / name).write_bytes(b"junk" * 100)
    process = _tool(["--source=raw_dir", f"--input={folder}", f"--output={tmp_path / 'o'}",
                     "--test_files=*D1X*"])
    out, _ = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "'*D1X*' matches none" in out.decode() and "Traceback" not in out.decode()
    assert not os.path.exists(tmp_path / "o" / "manifest.json")  # refused before any work


def test_prepare_files_writes_shards_manifest_and_reports_bad_files(raw_dir, tmp_path):
    output = str(tmp_path / "data")
    manifest = prepare.prepare_files(prepare.list_raw_files(raw_dir), output, SMALL,
                                     source="raw_dir", workers=2, progress=False)
    on_disk = json.load(open(os.path.join(output, "manifest.json")))
    assert on_disk == manifest and manifest["complete"]
    assert manifest["settings"]["reference_render"] == REFERENCE_RENDER_SETTINGS
    entries = {e["name"]: e for e in manifest["files"]}
    assert "SOURCES.tsv" not in entries
    assert entries["notes.dng"]["status"] == "error"
    assert "unsupported" in entries["notes.dng"]["reason"]
    assert entries["cut.CRW"]["status"] == "error"
    good = [e for e in manifest["files"] if e["status"] == "ok"]
    assert len(good) == 3
    for entry in good:
        assert len(entry["sha256"]) == 64 and entry["tiles"] == 6
        assert os.path.exists(os.path.join(output, entry["shard"]))
    assert manifest["splits"]["train"]["tiles"] == 18
    assert not [n for n in os.listdir(os.path.join(output, "shards", "train")) if ".tmp" in n]
    summary = prepare.format_summary(manifest)
    assert "FAILED notes.dng" in summary and "| train | 3 | 18 |" in summary


def test_prepare_files_second_run_skips_finished_files(raw_dir, tmp_path):
    output = str(tmp_path / "data")
    paths = prepare.list_raw_files(raw_dir)
    first = prepare.prepare_files(paths, output, SMALL, source="raw_dir", workers=1,
                                  progress=False)
    shard = next(e["shard"] for e in first["files"] if e["status"] == "ok")
    stamp = os.path.getmtime(os.path.join(output, shard))
    time.sleep(0.05)
    second = prepare.prepare_files(paths, output, SMALL, source="raw_dir", workers=1,
                                   progress=False)
    assert os.path.getmtime(os.path.join(output, shard)) == stamp
    assert second["splits"] == first["splits"]


def test_prepare_files_refuses_output_prepared_with_other_settings(raw_dir, tmp_path):
    output = str(tmp_path / "data")
    paths = prepare.list_raw_files(raw_dir)[:1]
    prepare.prepare_files(paths, output, SMALL, source="raw_dir", workers=1, progress=False)
    other = DataConfig(tile_size=34, tile_stride=32, crop_size=32, max_tiles_per_file=6)
    with pytest.raises(prepare.PrepareError, match="other settings"):
        prepare.prepare_files(paths, output, other, source="raw_dir", progress=False)


def _tool(args, **kwargs):
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.Popen([sys.executable, "-m", "tools.prepare_data", *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def test_prepare_tool_killed_midway_resumes_to_same_dataset(raw_dir, tmp_path):
    """Kill -9 after the first finished file; the rerun completes without corrupt shards."""
    for part in ("PowerShotS40_CRW_0101", "PowerShotS40_CRW_0117", "PowerShotG2_CRW_0304",
                 "PowerShotG2_CRW_0313"):  # multi-megapixel files: the run takes seconds
        shutil.copy(sample(part), raw_dir)
    output = str(tmp_path / "data")
    args = ["--source=raw_dir", f"--input={raw_dir}", f"--output={output}", "--workers=1",
            "--config=quickstart", "--override=data.tile_size=66",
            "--override=data.tile_stride=64", "--override=data.crop_size=64",
            "--override=data.max_tiles_per_file=6", "--override=data.val_fraction=0",
            "--override=data.test_fraction=0"]
    process = _tool(args, start_new_session=True)  # its own group: the kill takes the workers
    manifest_path = os.path.join(output, "manifest.json")
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if os.path.exists(manifest_path) and json.load(open(manifest_path))["files"]:
            break
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    partial = json.load(open(manifest_path))
    assert not partial["complete"]
    rerun = _tool(args)
    out, _ = rerun.communicate(timeout=180)
    assert rerun.returncode == 0, out.decode()
    final = json.load(open(manifest_path))
    assert final["complete"] and final["splits"]["train"]["files"] == 7
    assert len(partial["files"]) < len(final["files"])
    # Every shard parses completely: no truncated record survived the kill. With no val file,
    # training holds 1 in HOLD_BACK_EVERY tiles back for validation: both splits together.
    counts = [sum(int(b[1].shape[0]) for b in
                  pipeline.make_dataset(output, split, SMALL, 4, training=False))
              for split in ("train", "val")]
    assert sum(counts) == final["splits"]["train"]["tiles"] and counts[1] > 0
    assert "FAILED notes.dng" in out.decode()


def test_prepare_tool_exits_nonzero_when_nothing_usable(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.NEF").write_bytes(b"junk" * 100)
    process = _tool(["--source=raw_dir", f"--input={folder}", f"--output={tmp_path / 'o'}",
                     "--workers=1"])
    out, _ = process.communicate(timeout=120)
    assert process.returncode != 0
    assert "a.NEF" in out.decode() and "Traceback" not in out.decode()


@pytest.mark.parametrize("module", ["tools.prepare_data", "tools.benchmark_input"])
def test_prepare_entry_points_import_no_tensorflow_so_workers_start_fast(module):
    # Spawned workers re-import the entry point: TensorFlow there would cost seconds per worker.
    code = f"import sys, {module}; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert result.stdout.strip() == "False"

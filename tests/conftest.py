"""Shared fixtures: the real RAW samples folder (skips with a reason when absent)."""

import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAW_SAMPLES = os.environ.get("DEEPISP_RAW_SAMPLES",
                             os.path.join(REPO, "..", "shared", "raw_samples"))
NON_SQUARE = ("NIKON_UB20_O35.NEF", "DC120_P003908.KDC", "DC120_P003916.KDC")


def sample_files() -> list[str]:
    """Return the real RAW files (sorted), or [] when the folder is absent."""
    if not os.path.isdir(RAW_SAMPLES):
        return []
    return sorted(os.path.join(RAW_SAMPLES, n) for n in os.listdir(RAW_SAMPLES)
                  if not n.endswith((".md", ".tsv")))


@pytest.fixture(scope="session")
def raw_samples() -> list[str]:
    """The real RAW files of ../shared/raw_samples (or $DEEPISP_RAW_SAMPLES)."""
    files = sample_files()
    if not files:
        pytest.skip(f"real RAW samples not found at {RAW_SAMPLES} (set DEEPISP_RAW_SAMPLES)")
    return files


def sample(name_part: str) -> str:
    """Return the one sample whose name contains `name_part`, skipping when absent."""
    matches = [p for p in sample_files() if name_part in os.path.basename(p)]
    if not matches:
        pytest.skip(f"real RAW sample *{name_part}* not found in {RAW_SAMPLES}")
    return matches[0]


@pytest.fixture(autouse=True, scope="session")
def _precision_cache_outside_home(tmp_path_factory):
    """Keep the runtime's precision cache (`--precision=auto`) out of the user's cache dir."""
    if "DEEPISP_CACHE_DIR" not in os.environ:
        os.environ["DEEPISP_CACHE_DIR"] = str(tmp_path_factory.mktemp("deepisp_cache"))


# The slowest test files (measured, ~40-110 s each on one worker), slowest first. pytest-xdist's
# `--dist loadfile` hands out whole files in collection order, so these start first and the
# small files fill in around them instead of one long file running alone at the end.
SLOW_FILES_FIRST = ("test_export.py", "test_finetune.py", "test_optimize.py", "test_model.py",
                    "test_train.py", "test_two_host.py", "test_packed_io.py",
                    "test_quickstart.py", "test_export_int8.py", "test_config.py",
                    "test_beam_prepare.py", "test_prepare.py")


def pytest_collection_modifyitems(items):
    """Put the tests of `SLOW_FILES_FIRST` first (in that order); the rest keep their order."""
    rank = {name: index for index, name in enumerate(SLOW_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.basename(str(item.fspath)), len(rank)))

"""The download-free default dataset: natural photos shipped with installed packages, unprocessed
into Bayer DNG files (Brooks et al. 2019, `deepisp_tf.raw.unprocess`).

Sources are the colour photos in scikit-image's data folder and matplotlib's sample data, then
the photos of `SyntheticConfig.photo_dirs` (e.g. Debian's mate-backgrounds); nothing is ever
downloaded. Each photo yields `SyntheticConfig.variants_per_image` DNGs with different
random crops, scales, camera matrices, white balance, noise and CFA patterns, named
`<group>__v<k>.dng`: `<group>` is the photo's scene, so a split by `group_of` keeps every view of
one scene (both motorcycle stereo views, say) in one split. Generation is deterministic under
`SyntheticConfig.seed`: each file's randomness comes from (seed, photo, variant) alone, so `limit`
and resuming (existing files are skipped) never change the other files.
"""

from __future__ import annotations

import dataclasses
import os
import zlib

import cv2
import numpy as np

from deepisp_tf.config import SyntheticConfig
from deepisp_tf.raw import cfa, dng, unprocess

DNG_MAKE = "deepisp_tf"
DNG_MODEL = "synthetic"
_GROUP_SEPARATOR = "__v"
# Smallest share of each side of the source kept by a random crop (before scaling).
_MIN_CROP_FRACTION = 0.6


@dataclasses.dataclass(frozen=True)
class _Source:
    name: str        # the photo's own name
    group: str       # its scene: views of one scene share a group
    package: str     # "skimage" or "matplotlib"
    filename: str


# Natural colour photos shipped inside installed packages, in generation order.
_SOURCES = (
    _Source("astronaut", "astronaut", "skimage", "astronaut.png"),
    _Source("chelsea", "chelsea", "skimage", "chelsea.png"),
    _Source("coffee", "coffee", "skimage", "coffee.png"),
    _Source("hubble_deep_field", "hubble_deep_field", "skimage", "hubble_deep_field.jpg"),
    _Source("ihc", "ihc", "skimage", "ihc.png"),
    _Source("retina", "retina", "skimage", "retina.jpg"),
    _Source("rocket", "rocket", "skimage", "rocket.jpg"),
    _Source("motorcycle_left", "motorcycle", "skimage", "motorcycle_left.png"),
    _Source("motorcycle_right", "motorcycle", "skimage", "motorcycle_right.png"),
    _Source("grace_hopper", "grace_hopper", "matplotlib", "grace_hopper.jpg"),
)


def _package_folder(package: str) -> str | None:
    """Return the folder holding a package's sample images, or None if it is not installed."""
    try:
        if package == "skimage":
            import skimage  # pylint: disable=import-outside-toplevel
            return os.path.join(os.path.dirname(skimage.__file__), "data")
        import matplotlib  # pylint: disable=import-outside-toplevel
        return os.path.join(matplotlib.get_data_path(), "sample_data")
    except ImportError:
        return None


PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png")


def folder_sources(photo_dirs: tuple[str, ...]) -> list[tuple[_Source, str]]:
    """Return (source, path) of every photo in `photo_dirs`, folder by folder, sorted by name.

    Each photo is its own scene group, named by its file stem.

    Raises:
      ValueError: a folder is missing or holds no photo (named).
    """
    found = []
    for folder in photo_dirs:
        if not os.path.isdir(folder):
            raise ValueError(f"{folder}: synthetic.photo_dirs folder does not exist")
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(PHOTO_EXTENSIONS))
        if not names:
            raise ValueError(f"{folder}: synthetic.photo_dirs folder holds no "
                             f"{'/'.join(PHOTO_EXTENSIONS)} photo")
        for name in names:
            stem = os.path.splitext(name)[0].replace(_GROUP_SEPARATOR, "_")
            found.append((_Source(stem, stem, "folder", name), os.path.join(folder, name)))
    return found


def _all_sources(photo_dirs: tuple[str, ...] = ()) -> list[tuple[_Source, str | None]]:
    """Return (source, path or None when absent) of the packaged photos, then the folders'."""
    packaged = []
    for source in _SOURCES:
        folder = _package_folder(source.package)
        path = os.path.join(folder, source.filename) if folder else ""
        packaged.append((source, path if path and os.path.isfile(path) else None))
    return packaged + folder_sources(photo_dirs)


def _available_sources(photo_dirs: tuple[str, ...] = ()) -> list[tuple[_Source, str]]:
    """Return (source, path) for every source photo present on this machine."""
    return [(source, path) for source, path in _all_sources(photo_dirs) if path]


def source_images(photo_dirs: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Return (name, path) of the natural colour photos: installed packages', then folders'."""
    return [(source.name, path) for source, path in _available_sources(photo_dirs)]


def group_of(filename: str | os.PathLike) -> str:
    """Return the scene group of a synthetic file name such as 'motorcycle__v3.dng'."""
    stem = os.path.splitext(os.path.basename(os.fspath(filename)))[0]
    group, separator, index = stem.rpartition(_GROUP_SEPARATOR)
    if not separator or not group or not index.isdigit():
        raise ValueError(f"not a synthetic file name (<group>__v<k>.dng): {filename!r}")
    return group


def _load_srgb(path: str) -> np.ndarray:
    """Read a photo as [H, W, 3] float32 sRGB in [0, 1]."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def _file_rng(seed: int, photo: str, variant: int) -> np.random.Generator:
    """Return the generator of one file: a function of (seed, photo, variant) only."""
    return np.random.default_rng([seed, zlib.crc32(photo.encode("utf-8")), variant])


def random_crop_and_scale(rng: np.random.Generator, srgb: np.ndarray, min_side: int,
                          max_side: int) -> np.ndarray:
    """Cut a random crop of an image and resize it to a random size with even sides.

    The crop keeps at least 60% of each side (more when needed to keep the shorter side at
    least `min_side` without upsampling). The scale is drawn so the output's shorter side is
    at least `min_side` and its longer side at most `max_side`; it never upsamples unless the
    photo itself is too small for `min_side` (then the shorter side is exactly `min_side`),
    and the shorter side wins over `max_side` for very elongated photos.

    Args:
      rng: random generator.
      srgb: [H, W, 3] image.
      min_side: smallest shorter side (even, positive): at least the stored tile size.
      max_side: largest longer side (even, >= min_side).

    Returns:
      [h, w, 3] float32 image with h and w even.
    """
    if min_side <= 0 or min_side % 2 or max_side % 2 or max_side < min_side:
        raise ValueError(f"need even 0 < min_side <= max_side, got {min_side}, {max_side}")
    height, width = srgb.shape[:2]
    least = min(1.0, min_side / min(height, width))
    fraction = rng.uniform(max(_MIN_CROP_FRACTION, least), 1.0)
    crop_h, crop_w = max(2, int(height * fraction)), max(2, int(width * fraction))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    crop = srgb[top:top + crop_h, left:left + crop_w]
    low = min_side / min(crop_h, crop_w)
    high = max(low, min(1.0, max_side / max(crop_h, crop_w)))
    scale = rng.uniform(low, high)
    out_h = max(min_side, int(round(crop_h * scale / 2)) * 2)
    out_w = max(min_side, int(round(crop_w * scale / 2)) * 2)
    resized = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA)
    return np.clip(resized, 0.0, 1.0)


def _plan(config: SyntheticConfig) -> list[tuple[_Source, str, int, int, str]]:
    """Return (source, path, variant, k, pattern) for every file, in generation order.

    Patterns cycle over cfa.BAYER_PATTERNS by the file's position in the full list of sources
    (present or not), so they do not depend on which photos happen to be installed.
    """
    sources = _all_sources(config.photo_dirs)
    plan = []
    for position, (source, path) in enumerate(sources):
        if path is None:
            continue
        views = [s.name for s, _ in sources if s.group == source.group]
        for variant in range(config.variants_per_image):
            k = views.index(source.name) * config.variants_per_image + variant
            index = position * config.variants_per_image + variant
            pattern = cfa.BAYER_PATTERNS[index % len(cfa.BAYER_PATTERNS)]
            plan.append((source, path, variant, k, pattern))
    return plan


def generate(output_dir: str | os.PathLike, config: SyntheticConfig,
             limit: int | None = None) -> list[str]:
    """Write the synthetic Bayer DNG set, skipping files that already exist.

    Args:
      output_dir: folder to write to (created if missing).
      config: sizes, seed and unprocessing ranges.
      limit: write at most this many files (the first ones of the full set), or all if None.

    Returns:
      Paths of the set's files (existing or new), in generation order.
    """
    if config.variants_per_image <= 0:
        raise ValueError(f"SyntheticConfig.variants_per_image must be positive, got "
                         f"{config.variants_per_image}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be non-negative or None, got {limit}")
    output_dir = os.fspath(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    plan = _plan(config)[:limit]
    paths: list[str] = []
    loaded: dict[str, np.ndarray] = {}
    for source, source_path, variant, k, pattern in plan:
        path = os.path.join(output_dir, f"{source.group}{_GROUP_SEPARATOR}{k}.dng")
        paths.append(path)
        if os.path.exists(path):
            continue
        if source.name not in loaded:
            loaded = {source.name: _load_srgb(source_path)}  # keep one photo in memory
        rng = _file_rng(config.seed, source.name, variant)
        frame = random_crop_and_scale(rng, loaded[source.name], config.min_side, config.max_side)
        mosaic, meta = unprocess.unprocess(frame, rng, config, pattern)
        dng.write_dng(path, mosaic, meta["pattern"], meta["black_level"], meta["white_level"],
                      meta["xyz_to_cam"], meta["as_shot_neutral"], make=DNG_MAKE,
                      model=DNG_MODEL)
    return paths

"""HATS catalogues in and out of `score`, through LSDB and hats (the optional `[hats]` extra).

In: a directory with `hats.properties` / `properties` (a catalogue) or
`collection.properties` (a collection, whose primary catalogue is used; margins are not
scored) is opened with `lsdb.read_hats`; its HEALPix partitions' Parquet files are scored
like any others, one part per partition.

Out (`--output-format hats`, the default for HATS input): the parts are written as usual to
OUTPUT/parts/ (the resumable, atomic machinery of score), then hard-linked (copied where a
link is impossible) into OUTPUT/dataset/Norder=K/Dir=D/Npix=P.parquet with the input's
partitioning, and `partition_info.csv`, `dataset/_metadata`, `dataset/_common_metadata` and
`hats.properties` are written with hats, so `lsdb.read_hats(OUTPUT)` opens the result. The
input's RA, Dec and HEALPix-index columns are kept in the output.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from sdss_distill.core.errors import InputError, listing
from sdss_distill.core.io import HATS_PROPERTIES, mark_dir, owner_mark
from sdss_distill.core.safety import remove_file_within

PROPERTY_FILES = HATS_PROPERTIES
PIXEL = re.compile(r"Npix=\d+\.parquet")
INSTALL = "pip install lsdb hats (the extra 'sdss-distill[hats]')"


def is_hats(path) -> bool:
    """A directory holding a HATS catalogue's or collection's properties file."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in PROPERTY_FILES)


@dataclass(frozen=True)
class HatsInput:
    """The primary catalogue of a HATS input: its partitions' files and what to copy out."""

    path: Path  # the directory given
    base: Path  # the catalogue's own directory (inside a collection: the primary one)
    pixels: dict  # absolute file path -> (order, pixel)
    info: object  # hats TableProperties
    spatial: tuple[str, ...]  # RA, Dec and HEALPix-index columns present, kept in the output

    @property
    def files(self) -> list[Path]:
        return [Path(f) for f in self.pixels]


def open_input(path) -> HatsInput:
    """Open a HATS catalogue or collection with LSDB; InputError if LSDB is missing or the
    partitions' files are not where the catalogue says."""
    path = Path(path)
    try:
        import hats
        import lsdb
    except ImportError:
        raise InputError(f"--input {path}: a HATS catalogue needs LSDB; {INSTALL}, or pass its "
                         f"Parquet files as a glob ('{path}/dataset/**/*.parquet')") from None
    try:
        catalog = lsdb.read_hats(path)
    except Exception as e:  # noqa: BLE001 - hats/lsdb raise many kinds for a bad catalogue
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise InputError(f"--input {path}: LSDB cannot open this HATS catalogue ({first})") from None
    structure = catalog.hc_structure
    info = structure.catalog_info
    base = Path(str(structure.catalog_base_dir))
    suffix = getattr(info, "npix_suffix", ".parquet") or ".parquet"
    if suffix != ".parquet":
        raise InputError(f"--input {path}: partitions stored as directories (npix_suffix "
                         f"'{suffix}') are not supported; pass the files as a glob")
    pixels, missing = {}, []
    for pixel in catalog.get_healpix_pixels():
        f = Path(str(hats.io.pixel_catalog_file(base, pixel)))
        if f.is_file():
            pixels[str(f.resolve())] = (int(pixel.order), int(pixel.pixel))
        else:
            missing.append(f)
    if missing:
        raise InputError(f"--input {path}: {len(missing)} partition file(s) listed by the "
                         f"catalogue are missing: {listing(missing)}")
    if not pixels:
        raise InputError(f"--input {path}: the HATS catalogue has no partitions")
    names = set(catalog.columns) | {info.healpix_column}
    spatial = tuple(c for c in (info.ra_column, info.dec_column, info.healpix_column)
                    if c and c in names)
    return HatsInput(path, base, pixels, info, spatial)


def _place(src: Path, dst: Path) -> None:
    """dst as a hard link to src (a copy where links are impossible), replaced atomically.
    Already a link to src: nothing to do (rename(2) of one inode onto itself is a no-op that
    would leave the temporary link behind)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() and os.path.samefile(src, dst):
        return
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _ours(output: Path, parts_dir: Path) -> set[Path]:
    """The partition files an earlier score wrote in OUTPUT: listed in its mark, or (written
    before the mark listed them) hard links of one of its own parts. Nothing else is removed."""
    listed = (owner_mark(output) or {}).get("partitions")
    if isinstance(listed, list):
        return {output / p for p in listed if isinstance(p, str) and PIXEL.fullmatch(Path(p).name)}
    inodes = {(f.stat().st_dev, f.stat().st_ino) for f in parts_dir.glob("*.parquet")}
    return {f for f in (output / "dataset").rglob("Npix=*.parquet")
            if (f.stat().st_dev, f.stat().st_ino) in inodes}


def write_output(output: Path, parts_dir: Path, parts, source: HatsInput, rows: int) -> Path:
    """OUTPUT as a HATS catalogue with the input's partitioning, from the scored parts (one a
    partition); returns OUTPUT."""
    import hats
    from hats.catalog import PartitionInfo
    output = Path(output)
    by_pixel = {}
    for part in parts:
        order, pixel = source.pixels[part.source]
        by_pixel[(order, pixel)] = parts_dir / part.name
    wanted = set()
    for (order, pixel), scored in sorted(by_pixel.items()):
        dst = Path(str(hats.io.pixel_catalog_file(output, hats.pixel_math.HealpixPixel(order, pixel))))
        _place(scored, dst)
        wanted.add(dst.resolve())
    for old in _ours(output, parts_dir):  # an earlier, different input's partitions we wrote
        if old.resolve() not in wanted:
            remove_file_within(old, old.parent)
    mark_dir(output, "score", partitions=sorted(str(p.relative_to(output.resolve()))
                                                for p in wanted))
    pixels = [hats.pixel_math.HealpixPixel(o, p) for o, p in sorted(by_pixel)]
    PartitionInfo.from_healpix(pixels).write_to_file(output / "partition_info.csv")
    hats.io.write_parquet_metadata(output)
    name = f"{source.info.catalog_name}_scored"
    info = source.info.copy_and_update(catalog_name=name, total_rows=rows)
    info.to_properties_file(output)
    return output

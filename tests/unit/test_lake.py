"""The lake layout, atomic writes and folder swaps."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mlops_lifecycle import lake

ROOT = Path(__file__).resolve().parents[2]


def test_partition_paths_are_by_model_zone_and_day(data_dir):
    path = lake.data_file("late_delivery", "validated", "2026-03-01")
    assert path == data_dir / "lake" / "late_delivery" / "validated" / "ds=2026-03-01" / "data.parquet"


@pytest.mark.parametrize("model", ["../etc", "/abs", "a/b", "UP"])
def test_paths_cannot_escape_the_lake(data_dir, model):
    with pytest.raises(lake.LakeError):
        lake.data_file(model, "raw", "2026-03-01")


def test_bad_zone_and_date_are_refused(data_dir):
    with pytest.raises(lake.LakeError, match="zone"):
        lake.partition_dir("m", "elsewhere", "2026-03-01")
    with pytest.raises(lake.LakeError, match="YYYY-MM-DD"):
        lake.partition_dir("m", "raw", "03/01/2026")


def test_failed_write_leaves_previous_file_intact(data_dir):
    target = lake.data_file("m", "raw", "2026-03-01")
    lake.write_parquet(target, pd.DataFrame({"a": [1, 2]}))
    before = target.read_bytes()

    class Boom(Exception):
        pass

    with pytest.raises(Boom), lake.atomic_path(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise Boom()
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["data.parquet"]


def test_rewrite_replaces_and_lists_partitions(data_dir):
    for day in ("2026-03-02", "2026-03-01"):
        lake.write_parquet(lake.data_file("m", "validated", day), pd.DataFrame({"a": [1]}))
    lake.write_parquet(lake.data_file("m", "validated", "2026-03-01"), pd.DataFrame({"a": [1, 2, 3]}))
    assert [d.isoformat() for d in lake.partitions("m", "validated")] == ["2026-03-01", "2026-03-02"]
    assert len(pd.read_parquet(lake.data_file("m", "validated", "2026-03-01"))) == 3


# ---- folder swaps: atomic where the OS allows, repaired after a crash elsewhere -------------------

DAY = "2026-03-01"
FILES = ["part-0.bin", "part-1.bin", "part-2.bin", "manifest.json"]
SWAPS = {"renameat2": True, "two renames": False}


def _build(gen: int):
    """A folder of several files, the manifest last: a half-built one lacks some."""

    def build(tmp):
        for name in FILES[:-1]:
            (tmp / name).write_bytes(str(gen).encode() * 1000)
        (tmp / FILES[-1]).write_text(json.dumps({"gen": gen}))

    return build


def _zone(data_dir):
    """The zone folder, computed without the lake (whose path functions repair partitions)."""
    return data_dir / "lake" / "m" / "features"


def _hidden(data_dir) -> list[str]:
    zone = _zone(data_dir)
    return sorted(p.name for p in zone.iterdir() if p.name.startswith(".")) if zone.exists() else []


def _python(script: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "include")}
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env, **kwargs)


def test_renameat2_is_used_on_linux():
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux only")
    assert lake._renameat2 is not None, "glibc >= 2.28 has renameat2: the swap would fall back to two renames"


@pytest.mark.parametrize("exchange", SWAPS.values(), ids=SWAPS.keys())
def test_replace_dir_creates_a_missing_target_and_replaces_an_existing_one(data_dir, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(lake, "_renameat2", None)
    target = lake.partition_dir("m", "features", DAY)
    assert not target.parent.exists(), "not even the zone folder exists yet"
    assert lake.replace_dir(target, _build(1)) == target
    assert sorted(p.name for p in target.iterdir()) == sorted(FILES)
    lake.replace_dir(target, _build(2))
    assert json.loads((target / "manifest.json").read_text()) == {"gen": 2}
    assert (target / "part-0.bin").read_bytes() == b"2" * 1000

    class Boom(Exception):
        pass

    def broken(tmp):
        (tmp / "part-0.bin").write_bytes(b"half")
        raise Boom()

    with pytest.raises(Boom):
        lake.replace_dir(target, broken)
    assert json.loads((target / "manifest.json").read_text()) == {"gen": 2}
    assert _hidden(data_dir) == [], "no temporary folder is left behind"


READER = r"""
import json, os, sys
from mlops_lifecycle import lake

names, ready, stop = set(sys.argv[1].split(",")), sys.argv[2], sys.argv[3]
seen = {"reads": 0, "missing": 0, "half_built": 0, "generations": set()}
open(ready, "w").close()
while not os.path.exists(stop):
    path = lake.partition_dir("m", "features", "2026-03-01")  # the lake's own reader path
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        seen["missing"] += 1
        continue
    try:
        listed = set(os.listdir(fd))
        try:
            with os.fdopen(os.open("manifest.json", os.O_RDONLY, dir_fd=fd)) as fh:
                seen["generations"].add(json.load(fh)["gen"])
            whole = listed == names
        except FileNotFoundError:
            whole = False
        if not whole:
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                seen["missing"] += 1
                continue
            # A folder that is no longer at the path is the old generation being deleted:
            # this reader opened it before the swap. Only the folder at the path counts.
            seen["half_built"] += current
        seen["reads"] += 1
    finally:
        os.close(fd)
print(json.dumps({**seen, "generations": len(seen["generations"])}))
"""


def test_a_concurrent_reader_never_sees_the_partition_missing_or_half_built(data_dir, tmp_path):
    if lake._renameat2 is None:
        pytest.skip("no renameat2 here: the swap is two renames, with a moment between them")
    target = lake.partition_dir("m", "features", DAY)
    lake.replace_dir(target, _build(0))
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    reader = _python(READER, ",".join(FILES), str(ready), str(stop), stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert reader.poll() is None and time.monotonic() < deadline, "the reader did not start"
            time.sleep(0.01)
        for gen in range(1, 401):
            lake.replace_dir(target, _build(gen))
    finally:
        stop.touch()
        out, _ = reader.communicate(timeout=60)
    seen = json.loads(out)
    assert seen["missing"] == 0 and seen["half_built"] == 0, seen
    assert seen["reads"] > 400 and seen["generations"] > 20, f"the reader hardly overlapped the swaps: {seen}"
    assert _hidden(data_dir) == []


CRASH = r"""
import os, signal, sys
from mlops_lifecycle import lake

lake._renameat2 = None  # the two-rename swap of systems without renameat2
real = lake._move_aside


def crash(target, old):
    real(target, old)
    os.kill(os.getpid(), signal.SIGKILL)  # dies between the two renames


lake._move_aside = crash
lake.replace_dir(lake.partition_dir("m", "features", "2026-03-01"), lambda tmp: (tmp / "data.parquet").write_text("new"))
"""

NEXT_ACCESS = {
    "reader: partition_dir": lambda data_dir: lake.partition_dir("m", "features", DAY),
    "reader: partitions": lambda data_dir: lake.partitions("m", "features"),
    "writer: replace_dir": lambda data_dir: lake.replace_dir(_zone(data_dir) / f"ds={DAY}",
                                                             lambda tmp: (tmp / "data.parquet").write_text("newer")),
}


@pytest.mark.parametrize("access", NEXT_ACCESS.values(), ids=NEXT_ACCESS.keys())
def test_a_crash_between_the_two_renames_is_repaired_on_next_access(data_dir, access):
    target = lake.partition_dir("m", "features", DAY)
    lake.replace_dir(target, lambda tmp: (tmp / "data.parquet").write_text("old"))
    proc = _python(CRASH, stderr=subprocess.PIPE, text=True)
    assert proc.wait(timeout=120) == -signal.SIGKILL, proc.stderr.read()
    # What the crash left: no partition, the old folder moved aside, the new one unswapped.
    assert not os.path.lexists(_zone(data_dir) / f"ds={DAY}")
    kinds = sorted(name.split(".")[2].split("-")[0] for name in _hidden(data_dir))
    assert kinds == ["old", "tmp"], _hidden(data_dir)

    access(data_dir)
    expected = "newer" if access is NEXT_ACCESS["writer: replace_dir"] else "old"
    assert (_zone(data_dir) / f"ds={DAY}" / "data.parquet").read_text() == expected
    assert lake.partitions("m", "features") == [dt.date.fromisoformat(DAY)]
    assert _hidden(data_dir) == [], "the dead process's temporary folder is cleaned"


def test_leftovers_of_live_processes_are_not_touched(data_dir):
    target = lake.partition_dir("m", "features", DAY)
    lake.replace_dir(target, _build(1))
    mine = lake._side_path(target, "tmp")  # this process: alive, maybe mid-build
    mine.mkdir()
    assert lake.recover(target) is False
    assert mine.exists()
    shutil.rmtree(mine)

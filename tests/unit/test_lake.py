"""The lake layout and atomic writes."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_lifecycle import lake


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

"""``featurestore init``: a small working feature repo with generated example data."""

from __future__ import annotations

import random
import shutil
import string
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import pyarrow as pa

from featurestore.config import valid_project_name
from featurestore.errors import InputError
from featurestore.offline.files import write_parquet_atomic

__all__ = ["check_project_name", "example_driver_stats", "init_repo"]

DRIVERS = (1001, 1002, 1003, 1004, 1005)


def init_repo(path: str | Path, project: str | None = None, now: datetime | None = None,
              command: str = "featurestore init") -> Path:
    """Write the example repo into ``path`` (which must be empty or absent); ``command``
    names what to run again with a new folder when it is not."""
    target = Path(path).resolve()
    if target.exists() and any(target.iterdir()):
        hint = (f"; `featurestore -r {target} apply` works on the repo already there"
                if (target / "featurestore.yaml").exists() else "")
        raise InputError(f"{target} is not empty; pass a new folder to `{command}`{hint}")
    if project is not None:
        check_project_name(project)
    else:  # the folder's name, when featurestore.yaml would accept it
        project = target.name.replace(" ", "_")
        if not valid_project_name(project):
            project = "feature_repo"
    template = resources.files("featurestore.scaffold") / "template"
    with resources.as_file(template) as source:
        shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("featurestore.yaml", "README.md"):
        file = target / name
        file.write_text(string.Template(file.read_text()).safe_substitute(project=project))
    write_parquet_atomic(example_driver_stats(now), target / "data" / "driver_stats.parquet")
    return target


def check_project_name(name: str, what: str = "project") -> str:
    """``name`` if featurestore.yaml accepts it as the project, else an InputError naming ``what``."""
    if not valid_project_name(name):
        raise InputError(f"{what} {name!r} is not a valid project name; use letters, digits, _ and - "
                         "(not starting with a digit)")
    return name


def example_driver_stats(now: datetime | None = None, days: int = 7) -> pa.Table:
    """Hourly stats for five drivers over the last ``days`` days, ending at ``now``."""
    now = (now or datetime.now(timezone.utc)).replace(minute=0, second=0, microsecond=0)
    rng = random.Random(42)
    rows: dict[str, list] = {k: [] for k in ("driver_id", "event_timestamp", "created", "conv_rate",
                                             "acc_rate", "avg_daily_trips")}
    for hour in range(days * 24, -1, -1):
        ts = now - timedelta(hours=hour)
        for driver in DRIVERS:
            rows["driver_id"].append(driver)
            rows["event_timestamp"].append(ts)
            rows["created"].append(ts + timedelta(minutes=5))
            rows["conv_rate"].append(round(rng.random(), 4))
            rows["acc_rate"].append(round(rng.random(), 4))
            rows["avg_daily_trips"].append(rng.randint(0, 1000))
    return pa.table({
        "driver_id": pa.array(rows["driver_id"], pa.int64()),
        "event_timestamp": pa.array(rows["event_timestamp"], pa.timestamp("us", tz="UTC")),
        "created": pa.array(rows["created"], pa.timestamp("us", tz="UTC")),
        "conv_rate": pa.array(rows["conv_rate"], pa.float32()),
        "acc_rate": pa.array(rows["acc_rate"], pa.float32()),
        "avg_daily_trips": pa.array(rows["avg_daily_trips"], pa.int64()),
    })

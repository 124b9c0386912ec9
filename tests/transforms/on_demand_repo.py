"""The example repo plus the on-demand views of docs/on-demand.md's worked example."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from featurestore.scaffold import init_repo

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)

DOC = Path(__file__).resolve().parents[2] / "docs" / "on-demand.md"


def doc_blocks(language: str) -> list[str]:
    """The fenced ``language`` blocks of docs/on-demand.md."""
    text = DOC.read_text()
    return [block.split("\n```", 1)[0] for block in text.split(f"```{language}\n")[1:]]


# The worked example of docs/on-demand.md, appended to the example repo's definitions.
ON_DEMAND = "\n\n" + next(b for b in doc_blocks("python") if "@on_demand_feature_view" in b)


def repo_with_on_demand(tmp_path, online: str, project: str, extra: str = ON_DEMAND, now: datetime = NOW):
    repo = init_repo(tmp_path / "repo", project=project, now=now)
    defs = repo / "features" / "driver_stats.py"
    defs.write_text(defs.read_text() + extra)
    (repo / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: data/registry.db\noffline_store: data/offline\nonline_store:\n{online}")
    return repo



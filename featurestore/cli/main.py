"""``featurestore``: the console script. It loads every command module, which register
themselves on the group (``group.py``); the CLI is the composition root, free to import
every layer (serving for ``serve``, monitoring for ``stream``'s metrics)."""

from __future__ import annotations

from featurestore.cli.group import check_views, cli, one_line, open_store, pass_repo, unknown

__all__ = ["check_views", "cli", "main", "one_line", "open_store", "pass_repo", "unknown"]


def main() -> None:
    from featurestore.cli import data_commands, job_commands, repo_commands, serve_command  # noqa: F401 - registers commands
    from featurestore.cli import stream_command  # noqa: F401 - registers `featurestore stream`
    from featurestore.cli import model_commands  # noqa: F401 - registers `featurestore models`
    from featurestore.cli import predict_command  # noqa: F401 - registers `featurestore predict`
    from featurestore.cli import monitor_commands  # noqa: F401 - registers `featurestore monitor`
    from featurestore.cli import rollout_commands  # noqa: F401 - registers `featurestore rollout`
    from featurestore.cli import flight_command  # noqa: F401 - registers `featurestore flight`

    cli(prog_name="featurestore")

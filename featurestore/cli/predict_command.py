"""``featurestore predict``: batch scoring of an entity file with a registered model."""

from __future__ import annotations

import time
from pathlib import Path

import click

from featurestore.cli.group import cli, open_store, pass_repo
from featurestore.cli.progress import ProgressLine

__all__ = ["predict"]


@cli.command(short_help="Score an entity file with a model, point in time.")
@click.option("--model", "uri", required=True, metavar="URI", help="name/3, name@alias or name (its champion).")
@click.option("--entities", required=True, metavar="FILE.parquet", type=click.Path(path_type=Path),
              help="Entity rows: join keys, the timestamp column and any request fields.")
@click.option("--out", required=True, metavar="FILE.parquet", type=click.Path(path_type=Path),
              help="Where to write the scored rows (written whole, or not at all).")
@click.option("--timestamp-field", default="event_timestamp", show_default=True,
              help="The entity file's timestamp column: each row is scored as of it.")
@click.option("--batch-rows", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Entity rows per point-in-time join.")
@click.option("--trusted", is_flag=True, help="Allow a pickled model to load (it can run code: only yours).")
@pass_repo
def predict(repo: Path, uri: str, entities: Path, out: Path, timestamp_field: str, batch_rows: int,
            trusted: bool) -> None:
    """Score each row of --entities with --model as of its timestamp, into --out.

    The output has the entity columns, the model's features as it would have seen them
    then (after its on_missing policy), and a `prediction` column (docs/predict.md).
    """
    from featurestore.errors import InputError
    from featurestore.models.predict import Predictions
    from featurestore.offline.files import write_parquet_stream

    table = _read_entities(entities)
    if out.resolve() == entities.resolve():
        raise InputError(f"--out {str(out)!r} is the entities file; write the scores to another file")
    began = time.perf_counter()
    with open_store(repo) as store:
        version = store.models.get(uri)  # scored by number: an alias moving meanwhile changes nothing
        progress = ProgressLine(total=table.num_rows)
        try:
            batches = Predictions(store).batches(version.uri, table, timestamp_field=timestamp_field,
                                                 batch_rows=batch_rows, progress=progress, trusted=trusted)
            rows = write_parquet_stream(batches, out, what=f"--out {str(out)!r}")
        finally:
            progress.close()
    seconds = time.perf_counter() - began
    click.echo(f"Scored {rows:,} rows with {version.uri} in {seconds:.2f} s "
               f"({rows / seconds if seconds else 0:,.0f} rows/s) -> {out}")


def _read_entities(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from featurestore.errors import InputError

    if not path.is_file():
        raise InputError(f"--entities {str(path)!r} does not exist" if not path.exists() else
                         f"--entities {str(path)!r} is not a file")
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"--entities {str(path)!r} is not a readable Parquet file ({exc}); write the entity "
                         "rows with pandas/polars/pyarrow to_parquet") from None

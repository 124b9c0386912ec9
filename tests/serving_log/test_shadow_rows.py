"""The serving log process's side of shadow scoring (featurestore/serving_log/shadow.py),
on real entries gathered as a worker gathers them: which requests are written as they are
and which are scored for which candidate; the online answer and request fields rebuilt
from the logged columns give the candidate the very inputs the worker built; a shadow
row keeps the request's columns with the candidate's answer; rows past the bound are
dropped and counted, and the rows added are reported for the worker's accounting.
(Scoring by a real candidate on a real server: tests/serving/test_shadow_process.py.)"""

from __future__ import annotations

import pyarrow as pa

from featurestore.models.inputs import InputSpec, read_inputs
from featurestore.online.read import OnlineResponse
from featurestore.serving_log import LogEntry
from featurestore.serving_log.records import ColumnGroups, columns_table
from featurestore.serving_log.shadow import ShadowScoring, shadowed
from featurestore.types import Float64, Int64

CANDIDATE = ("m/2", 0.5)
SCHEMA = pa.schema([("conv_rate", pa.float64()), ("trips", pa.int64())])
SPEC = InputSpec(uri="m/2", features=("stats:conv_rate",), feature_service=None, full_feature_names=False,
                 request_fields=("trips",), columns=tuple(SCHEMA.names), schema=SCHEMA, types=tuple(SCHEMA.types),
                 defaults=(0.25, None), on_missing="default")


def entry(request_id: str, ids: list, conv: list, statuses: list, *, variant="stable", shadow=CANDIDATE,
          version=1) -> LogEntry:
    n = len(ids)
    response = OnlineResponse(["driver_id", "conv_rate"], [ids, conv], [["PRESENT"] * n, statuses],
                              [[None] * n, [1_000_000] * n], [Int64, Float64])
    return LogEntry(response, 1, {"driver_id": ids, "trips": [3] * n}, log_time_us=5_000_000, request_id=request_id,
                    model="m", version=version, variant=variant, predictions=[0.9] * n, status="ok", latency_ms=4.0,
                    shadow=shadow, before_model_ms=1.5)


def gathered(*entries: LogEntry):
    groups, started = ColumnGroups(), []
    for e in entries:
        started.append(groups.add(e))
    return [columns for columns in started if columns is not None]


def test_stable_requests_naming_a_candidate_are_written_and_scored_its_own_reads_only_scored():
    [stable] = gathered(entry("a", [1], [0.1], ["PRESENT"]),
                        entry("b", [2, 3], [0.2, 0.3], ["PRESENT"] * 2, shadow=None),
                        entry("c", [4], [0.4], ["PRESENT"], shadow=("m/3", 1.0)))
    written, scored = shadowed(stable)
    assert written is stable  # every stable request is written as it is
    assert {key: columns.per_request["request_id"] for key, columns in scored.items()} == {
        (CANDIDATE, True): ["a"], (("m/3", 1.0), True): ["c"]}
    assert scored[CANDIDATE, True].per_row[0] == [1]  # its rows alone
    [own] = gathered(entry("d", [5], [0.5], ["PRESENT"], variant="shadow", version=2))
    written, scored = shadowed(own)
    assert written is None and list(scored) == [(CANDIDATE, False)]
    [plain] = gathered(entry("e", [6], [0.6], ["PRESENT"], shadow=None))
    assert shadowed(plain) == (plain, {})


def test_the_inputs_rebuilt_from_the_logged_columns_are_the_ones_the_worker_built():
    entries = [entry("a", [1, 2], [0.1, None], ["PRESENT", "NOT_FOUND"]), entry("b", [3], [0.3], ["PRESENT"])]
    by_worker = [read_inputs(SPEC, e.response, {"driver_id": e.response.values[0], "trips": [3] * e.rows},
                             join_keys=["driver_id"]).columns for e in entries]
    [columns] = gathered(*entries)
    rebuilt = read_inputs(SPEC, columns.response(), columns.request_fields(), join_keys=["driver_id"])
    assert rebuilt.columns == [a + b for a, b in zip(*by_worker)] == [[0.1, 0.25, 0.3], [3, 3, 3]]
    assert rebuilt.table.schema.types == [pa.float64(), pa.int64()]


def test_a_shadow_row_keeps_the_request_and_its_features_with_the_candidates_answer():
    [columns] = gathered(entry("a", [1, 2], [0.1, 0.2], ["PRESENT"] * 2), entry("b", [3], [0.3], ["PRESENT"]))
    answered = columns.answered("m", 2, [0.7, 0.8, None], ["ok", "timeout"], [3.5, 9.0])
    stable, shadow = columns_table(columns).to_pydict(), columns_table(answered).to_pydict()
    assert shadow["variant"] == ["shadow"] * 3 and shadow["version"] == [2] * 3 and stable["version"] == [1] * 3
    assert shadow["prediction"] == [0.7, 0.8, None] and stable["prediction"] == [0.9] * 3
    assert shadow["status"] == ["ok", "ok", "timeout"] and shadow["latency_ms"] == [3.5, 3.5, 9.0]
    for name in ("request_id", "log_time", "driver_id", "trips", "conv_rate", "conv_rate__status",
                 "conv_rate__event_timestamp"):
        assert shadow[name] == stable[name], name
    assert "shadow" not in shadow and "before_model_ms" not in shadow  # not columns of the log


def test_rows_past_the_bound_are_dropped_and_counted_and_added_rows_are_reported():
    opened = []
    scoring = ShadowScoring(lambda: opened.append(1), lambda name, table: None, max_waiting=2)
    scoring._closed = True  # nothing is scored: what add() does at the bound is what is tested
    [three] = gathered(entry("a", [1, 2, 3], [0.1] * 3, ["PRESENT"] * 3))
    scoring.add("m", CANDIDATE, three, extra=True)
    [own] = gathered(entry("b", [4], [0.4], ["PRESENT"], variant="shadow", version=2))
    scoring.add("m", CANDIDATE, own, extra=False)
    outcomes, added = scoring.take_counts()
    assert sorted(outcomes) == [("m", 2, "dropped", 2)]
    # the worker sent the own read's row and held it: reported as settled (-1), never written
    assert added == (("m", -1),) and opened == []
    assert scoring.take_counts() == ((), ())

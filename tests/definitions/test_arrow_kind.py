"""One classifier of Arrow types by the kind of values they hold, shared by the push check,
the join-key check and the profiles."""

import re
from types import SimpleNamespace

import pyarrow as pa
import pytest

from featurestore.errors import SchemaError
from featurestore.models.profile import column_kind
from featurestore.offline.entity_set import check_key_type
from featurestore.types import arrow_kind


@pytest.mark.parametrize(("dtype", "kind"), [
    (pa.null(), "null"),
    (pa.bool_(), "bool"),
    (pa.int8(), "integer"), (pa.uint64(), "integer"),
    (pa.float32(), "float"), (pa.float64(), "float"), (pa.decimal128(10, 2), "float"),
    (pa.string(), "string"), (pa.large_string(), "string"), (pa.string_view(), "string"),
    (pa.binary(), "binary"), (pa.large_binary(), "binary"), (pa.binary(16), "binary"), (pa.binary_view(), "binary"),
    (pa.timestamp("ns", tz="UTC"), "time"), (pa.date32(), "time"),
    (pa.list_(pa.int64()), "list"), (pa.large_list(pa.string()), "list"), (pa.list_(pa.float32(), 3), "list"),
    (pa.dictionary(pa.int32(), pa.string()), "string"), (pa.dictionary(pa.int8(), pa.int64()), "integer"),
    (pa.struct({"a": pa.int64()}), "other"), (pa.map_(pa.string(), pa.string()), "other"),
])
def test_arrow_kind_names_the_kind_of_values(dtype, kind):
    assert arrow_kind(dtype) == kind


@pytest.mark.parametrize(("dtype", "kind"), [
    (pa.int32(), "numeric"), (pa.float64(), "numeric"), (pa.decimal128(5, 1), "numeric"),
    (pa.string(), "categorical"), (pa.bool_(), "categorical"), (pa.dictionary(pa.int32(), pa.string()), "categorical"),
    (pa.timestamp("us"), None), (pa.binary(), None), (pa.list_(pa.int64()), None), (pa.null(), None),
])
def test_profiles_treat_numbers_as_numeric_and_strings_and_bools_as_categories(dtype, kind):
    assert column_kind(dtype) == kind


_VIEW = SimpleNamespace(name="stats", source=SimpleNamespace(files=("stats.parquet",)))


@pytest.mark.parametrize(("entity", "source"), [
    (pa.int32(), pa.int64()), (pa.large_string(), pa.string()), (pa.dictionary(pa.int32(), pa.string()), pa.string()),
    (pa.binary(16), pa.binary()), (pa.null(), pa.string()), (pa.float64(), pa.float64()),
    (pa.dictionary(pa.int32(), pa.float64()), pa.float64()),
])
def test_join_keys_of_one_kind_join_across_widths(entity, source):
    check_key_type(_VIEW, "driver_id", entity, source)


@pytest.mark.parametrize(("entity", "source"), [
    (pa.string(), pa.int64()), (pa.int64(), pa.binary()), (pa.float32(), pa.float64()),
    (pa.timestamp("us"), pa.timestamp("ns")),
])
def test_other_join_key_types_must_match_exactly(entity, source):
    with pytest.raises(SchemaError, match=rf"'driver_id' of view 'stats' is {re.escape(str(entity))} .* but {re.escape(str(source))} "):
        check_key_type(_VIEW, "driver_id", entity, source)

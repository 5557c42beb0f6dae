"""Local tables sent to a fabric (``%%send``): every type of the README's table arrives with the
Spark type it comes back as, through our gateway's uploads and as statements (what Livy takes)."""

from __future__ import annotations

import datetime
import decimal
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from prophecy_jupyter.errors import Invalid, ProphecyError
from prophecy_jupyter.results.sending import arrow_table, discard_code, encoded_parts, parse_sent, piece_code
from prophecy_jupyter.services.sessions import wait_for
from tests.conftest import USER, open_services
from tests.servers.gateway import start_gateway

pytestmark = [pytest.mark.spark]


def every_type(rows: int = 4) -> pd.DataFrame:
    """A frame with a column of each pandas dtype the README's table gives back, with nulls."""
    tz = "Asia/Tokyo"
    base = pd.Timestamp("2024-03-10 01:30:00.123456", tz=tz)
    ids = np.arange(rows)
    frame = pd.DataFrame(
        {
            "b8": ids.astype("int8"),
            "i64": ids.astype("int64"),
            "u16": ids.astype("uint16"),
            "i32n": pd.array([None if i % 3 == 0 else int(i) for i in ids], dtype="Int32"),
            "f64": ids * 0.5,
            "f32n": pd.array([None if i % 2 else float(i) for i in ids], dtype="Float32"),
            "flag": ids % 2 == 0,
            "flagn": pd.array([None if i == 1 else bool(i % 2) for i in ids], dtype="boolean"),
            "text": pd.array([None if i == 2 else f"row-{i}é" for i in ids], dtype="string"),
            "dec": pd.array(
                [None if i == 3 else decimal.Decimal(int(i)) / 100 for i in ids],
                dtype=pd.ArrowDtype(pa.decimal128(20, 2)),
            ),
            "day": pd.array(
                [
                    None if i == 0 else datetime.date(2024, 1, 1) + datetime.timedelta(days=int(i))
                    for i in ids
                ],
                dtype=pd.ArrowDtype(pa.date32()),
            ),
            "ts": pd.Series([base + pd.Timedelta(hours=int(i)) for i in ids]).astype(f"datetime64[us, {tz}]"),
            "ntz": pd.Series(
                [datetime.datetime(2024, 1, 1, 12) + datetime.timedelta(seconds=int(i)) for i in ids]
            ).astype("datetime64[us]"),
            "raw": pd.array([bytes([i % 256, 0, 255]) for i in ids], dtype=pd.ArrowDtype(pa.binary())),
            "span": pd.to_timedelta(ids, unit="s").astype("timedelta64[us]"),
            "items": pd.Series([[int(i), None] if i % 2 else [] for i in ids], dtype=object),
            "record": pd.Series([{"a": int(i), "b": f"x{i}"} for i in ids], dtype=object),
            "kind": pd.Categorical([["red", "blue"][i % 2] for i in ids]),
        }
    )
    frame.loc[1, "items"] = None
    return frame


SPARK_TYPES = {
    "b8": "tinyint",
    "i64": "bigint",
    "u16": "int",
    "i32n": "int",
    "f64": "double",
    "f32n": "float",
    "flag": "boolean",
    "flagn": "boolean",
    "text": "string",
    "dec": "decimal(20,2)",
    "day": "date",
    "ts": "timestamp",
    "ntz": "timestamp_ntz",
    "raw": "binary",
    "span": "interval day to second",
    "items": "array<bigint>",
    "record": "struct<a:bigint,b:string>",
    "kind": "string",
}


def send(services, fabric: str, frame, name: str, part_bytes: int = 16 << 20):
    """Every part of the frame sent to the notebook's session on ``fabric``; the last run."""
    key = uuid.uuid4().hex
    parts = list(encoded_parts(arrow_table(frame, "frame"), part_bytes))
    run = None
    for number, data in enumerate(parts):
        run = services.sessions.submit_send(
            USER, "nb", fabric, data, name, key=key, part=number, last=number == len(parts) - 1
        )
        wait_for(run)
        assert run.state == "finished", run.result
    return run, len(parts)


def fetch(services, fabric: str, name: str) -> pd.DataFrame:
    result = services.sessions.fetch_table(USER, "nb", fabric, name, -1)
    assert result.ok, result
    return result.table


def schema_of(services, fabric: str, name: str) -> dict[str, str]:
    run = services.sessions.run(
        USER, "nb", fabric, f"print(dict((f.name, f.dataType.simpleString()) for f in {name}.schema.fields))"
    )
    assert run.result.ok, run.result
    return eval(run.result.text)


@pytest.fixture(scope="module")
def livy_like():
    """A gateway that takes no uploads, as Livy itself: tables come as statements."""
    gateway = start_gateway("--no-uploads", token="livy-like-token")
    yield gateway
    gateway.stop()


@pytest.fixture
def both(data_dir, gateway, livy_like):
    built = open_services(data_dir, gateway.url, gateway.token)
    livy = built.fabrics.create(
        USER,
        "default",
        {"name": "livy", "kind": "livy", "settings": {"url": livy_like.url, "auth": "bearer"}},
    )
    built.credentials.set(USER, livy, livy_like.token)
    yield built
    built.close()


@pytest.mark.parametrize("fabric", ["gw", "livy"])
def test_every_type_arrives_typed_and_comes_back_equal(both, fabric):
    frame = every_type()
    run, parts = send(both, fabric, frame, "sent")
    sent = parse_sent(run.result.text)
    assert sent.rows == len(frame) and parts == 1
    assert schema_of(both, fabric, "sent") == SPARK_TYPES
    back = fetch(both, fabric, "sent")
    for column in frame.columns:
        assert back[column].tolist() == frame[column].tolist() or column in ("items", "record", "ts"), column
    assert back["ts"].dt.tz_convert("UTC").tolist() == frame["ts"].dt.tz_convert("UTC").tolist()


def million_rows() -> pd.DataFrame:
    """1,000,000 rows by 8 columns with the dtypes the README's table gives back (the benchmark's)."""
    ids = np.arange(1_000_000)
    return pd.DataFrame(
        {
            "l": ids,
            "i": pd.array(np.where(ids % 10 == 0, 0, ids % 1000), dtype="Int32"),
            "d": ids * 1.5,
            "s": pd.array([f"row-{i}" for i in ids], dtype="string"),
            "b": ids % 3 == 0,
            "dt": pd.array(
                pa.array((np.datetime64("2024-01-01") + ids % 3650).astype("datetime64[D]"), pa.date32()),
                dtype=pd.ArrowDtype(pa.date32()),
            ),
            "ts": pd.Series(pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(ids, unit="s")).astype(
                "datetime64[us, UTC]"
            ),
            "dec": pd.array(
                pa.array(ids * 3, pa.int64()).cast(pa.decimal128(21, 2)).cast(pa.decimal128(12, 2)),
                dtype=pd.ArrowDtype(pa.decimal128(12, 2)),
            ),
        }
    ).assign(i=lambda f: f.i.mask(ids % 10 == 0))


@pytest.mark.slow
@pytest.mark.parametrize("fabric", ["gw", "livy"])
def test_a_million_rows_go_in_parts_and_all_arrive(both, fabric):
    frame = million_rows()
    run, parts = send(both, fabric, frame, "big", part_bytes=4 << 20)
    assert parts > 2, "the table went in several parts"
    assert parse_sent(run.result.text).rows == 1_000_000
    assert schema_of(both, fabric, "big") == {
        "l": "bigint",
        "i": "int",
        "d": "double",
        "s": "string",
        "b": "boolean",
        "dt": "date",
        "ts": "timestamp",
        "dec": "decimal(12,2)",
    }
    code = "print(big.selectExpr('count(*)', 'count(i)', 'sum(l)', 'max(s)', 'sum(dec)').first())"
    check = both.sessions.run(USER, "nb", fabric, code)
    expected = (
        f"Row(count(1)=1000000, count(i)=900000, sum(l)={sum(range(1_000_000))}, max(s)='row-999999', "
        f"sum(dec)=Decimal('{sum(range(1_000_000)) * 3}.00'))"
    )
    assert check.result.text.strip() == expected
    partitions = both.sessions.run(
        USER,
        "nb",
        fabric,
        "print(big.rdd.getNumPartitions() <= 2 * sc.defaultParallelism, spark.conf.get("
        "'spark.sql.execution.arrow.maxRecordsPerBatch'))",
    )
    assert partitions.result.text.strip() == "True 10000", "a few partitions, and Spark's setting as it was"


@pytest.mark.parametrize("fabric", ["gw", "livy"])
def test_what_reaches_the_session_after_its_send_was_given_up_is_dropped_too(both, fabric):
    """An interrupted ``%%send`` drops its parts with a statement of its own, which can reach the
    session before the rest of a part still on its way: a piece of it (a part goes as several
    statements where there are no uploads), or the part itself (the server takes its upload
    first). What arrives later is dropped, the upload file too, and nothing of the table is held."""
    key = uuid.uuid4().hex
    first = next(encoded_parts(arrow_table(pd.DataFrame({"a": range(2000)}), "frame")))
    dropped = both.sessions.run(USER, "nb", fabric, discard_code(key))
    assert dropped.result.ok, dropped.result
    stray = both.sessions.run(USER, "nb", fabric, piece_code(key, "QUJD"))
    assert stray.result.ok, stray.result
    late = both.sessions.submit_send(USER, "nb", fabric, first, "late", key=key, part=0, last=False)
    wait_for(late)
    assert late.state == "failed" and "given up" in late.result.error_message, late.result
    folder = "os.environ['PROPHECY_GATEWAY_UPLOADS']"
    uploads = f"os.listdir({folder}) if 'PROPHECY_GATEWAY_UPLOADS' in os.environ else []"
    held = both.sessions.run(
        USER,
        "nb",
        fabric,
        f"import os\nprint(len(globals().get('__prophecy_parts', {{}}).get({key!r}, [])), "
        f"len(globals().get('__prophecy_pieces', {{}}).get({key!r}, [])), {uploads})",
    )
    assert held.result.text.strip() == "0 0 []", "no part, no piece, no upload file left"


def test_what_cannot_be_sent_is_refused_in_words():
    with pytest.raises(
        Invalid, match=r"things is a builtins\.list: only a pandas DataFrame or a pyarrow Table"
    ):
        arrow_table([1, 2], "things")
    with pytest.raises(Invalid, match="every column needs a string name"):
        arrow_table(pd.DataFrame({0: [1]}), "numbered")
    with pytest.raises(Invalid, match="a column cannot be typed for the fabric"):
        arrow_table(pd.DataFrame({"mixed": [1, "a"]}), "mixed")
    unsigned = arrow_table(
        pd.DataFrame({"u": np.array([1], dtype="uint32"), "n": pd.to_datetime(["2024-01-01"])}), "u"
    )
    assert (
        str(unsigned.schema.field("u").type) == "int64"
        and str(unsigned.schema.field("n").type) == "timestamp[us]"
    )
    [empty] = list(encoded_parts(arrow_table(pd.DataFrame({"a": pd.Series([], dtype="int64")}), "e")))
    assert pa.ipc.open_stream(empty).read_all().num_rows == 0


def test_a_refused_upload_says_why_and_leaves_no_run(both, gateway, livy):
    managed = both.sessions.session(USER, "gone.ipynb", "gw")
    livy.delete(f"{gateway.url}/sessions/{managed.remote.id}", timeout=60)
    data = next(encoded_parts(arrow_table(pd.DataFrame({"a": [1]}), "t")))
    with pytest.raises(ProphecyError, match="no longer exists"):
        both.sessions.submit_send(
            USER, "gone.ipynb", "gw", data, "t", key=uuid.uuid4().hex, part=0, last=True
        )
    [row] = [
        s for s in both.sessions.status(USER, "gone.ipynb", refresh=False) if s["fabric"] == "default/gw"
    ]
    assert row["runs"] == [], "nothing is left running"

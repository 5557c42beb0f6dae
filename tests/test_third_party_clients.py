"""Livy clients written by others work against our gateway, unchanged.

sparkmagic 0.23 (the incumbent, driven as its %%spark / %%sql magics drive it) and pylivy
(``livy`` 0.8) talk to the session-wide gateway with HTTP Basic auth carrying the token, or a
bearer token through a plain ``requests`` auth object.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pandas as pd
import pytest
import requests

pytestmark = pytest.mark.spark


class RecordingDisplay:
    """What sparkmagic writes to a notebook (``display``, ``html``, ``writeln`` ...), kept in lists."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.html_parts: list[str] = []
        self.objects: list[object] = []

    def display(self, obj) -> None:
        self.objects.append(obj)

    def html(self, html) -> None:
        self.html_parts.append(html)

    def write(self, text) -> None:
        self.lines.append(text)

    def writeln(self, text) -> None:
        self.lines.append(text)

    def send_error(self, text) -> None:
        self.errors.append(text)


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def assert_session_gone(gateway, livy, session_id: int) -> None:
    response = livy.get(f"{gateway.url}/sessions/{session_id}", timeout=10)
    assert response.status_code == 404, response.text


@pytest.fixture(scope="module")
def sparkmagic(tmp_path_factory):
    """sparkmagic's client modules, imported with a scratch SPARKMAGIC_CONF_DIR (read at import)."""
    conf_dir = tmp_path_factory.mktemp("sparkmagic-conf")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPARKMAGIC_CONF_DIR", str(conf_dir))
        constants = importlib.import_module("sparkmagic.utils.constants")
        # otherwise sparkmagic was imported earlier and reads the user's ~/.sparkmagic
        assert str(conf_dir) == constants.HOME_PATH
        yield SimpleNamespace(
            constants=constants,
            conf=importlib.import_module("sparkmagic.utils.configuration"),
            utils=importlib.import_module("sparkmagic.utils.utils"),
            Endpoint=importlib.import_module("sparkmagic.livyclientlib.endpoint").Endpoint,
            LivyReliableHttpClient=importlib.import_module(
                "sparkmagic.livyclientlib.livyreliablehttpclient"
            ).LivyReliableHttpClient,
            LivySession=importlib.import_module("sparkmagic.livyclientlib.livysession").LivySession,
            Command=importlib.import_module("sparkmagic.livyclientlib.command").Command,
            SQLQuery=importlib.import_module("sparkmagic.livyclientlib.sqlquery").SQLQuery,
            exceptions=importlib.import_module("sparkmagic.livyclientlib.exceptions"),
        )


def sparkmagic_client(sparkmagic, gateway):
    """The HTTP client ``%spark add -u <url> -t Basic_Access -a <user> -p <token>`` builds."""
    args = sparkmagic.utils.Namespace(
        auth=sparkmagic.constants.AUTH_BASIC, user="notebook-user", password=gateway.token, url=gateway.url
    )
    auth = sparkmagic.utils.initialize_auth(args)
    assert auth.username == "notebook-user" and auth.password == gateway.token
    endpoint = sparkmagic.Endpoint(gateway.url, auth=auth)
    return sparkmagic.LivyReliableHttpClient.from_endpoint(endpoint)


# sparkmagic's progress widgets pass traitlets-deprecated arguments, and its type coercion
# tries pd.to_datetime on string columns; both are sparkmagic's own noise.
@pytest.mark.filterwarnings("ignore::DeprecationWarning:traitlets")
@pytest.mark.filterwarnings("ignore:Could not infer format:UserWarning")
def test_sparkmagic_session_command_sql_and_delete(sparkmagic, gateway, livy):
    display = RecordingDisplay()
    properties = sparkmagic.conf.get_session_properties(sparkmagic.constants.LANG_PYTHON)
    assert properties == {"kind": "pyspark"}
    session = sparkmagic.LivySession(
        sparkmagic_client(sparkmagic, gateway), properties, display, heartbeat_timeout=0
    )
    session_id = None
    try:
        session.start()  # POST /sessions, poll until idle, probe `spark`
        session_id = session.id
        assert session_id >= 0 and session.status == "idle"
        assert session.sql_context_variable_name == "spark"
        assert "SparkSession available as 'spark'." in display.lines
        assert not display.errors
        assert session.get_app_id().startswith("local-")

        # %%spark
        ok, out, mime = sparkmagic.Command(
            "numbers = spark.range(5)\nprint('total', numbers.groupBy().sum('id').first()[0])\n6 * 7"
        ).execute(session)
        assert (ok, out, mime) == (True, "total 10\n42", "text/plain")
        # state carries over between cells
        ok, out, _ = sparkmagic.Command("numbers.count()").execute(session)
        assert (ok, out) == (True, "5")
        # a failing cell reports the Python error, not success
        ok, out, _ = sparkmagic.Command("1 / 0").execute(session)
        assert not ok and "ZeroDivisionError" in out

        # %%sql -n 10
        frame = sparkmagic.SQLQuery(
            "SELECT id, id * 1.5 AS scaled, concat('row-', id) AS name FROM range(4) ORDER BY id",
            samplemethod="take",
            maxrows=10,
        ).execute(session)
        assert isinstance(frame, pd.DataFrame)
        assert list(frame.columns) == ["id", "scaled", "name"]
        assert frame["id"].tolist() == [0, 1, 2, 3]
        assert frame["scaled"].tolist() == [0.0, 1.5, 3.0, 4.5]
        assert frame["name"].tolist() == ["row-0", "row-1", "row-2", "row-3"]
        # %%sql -n 2 caps the rows
        capped = sparkmagic.SQLQuery(
            "SELECT id FROM range(100) ORDER BY id", samplemethod="take", maxrows=2
        ).execute(session)
        assert capped["id"].tolist() == [0, 1]

        session.delete()
        assert session.status == "dead" and session.id == -1
        assert_session_gone(gateway, livy, session_id)
    finally:
        if session_id is not None:
            livy.delete(f"{gateway.url}/sessions/{session_id}", timeout=60)


def test_sparkmagic_is_refused_without_the_token(sparkmagic, gateway, livy):
    client = sparkmagic.LivyReliableHttpClient.from_endpoint(sparkmagic.Endpoint(gateway.url, auth=None))
    before = livy.get(f"{gateway.url}/sessions", timeout=10).json()["total"]
    with pytest.raises(sparkmagic.exceptions.HttpClientException, match="Invalid status code '401'"):
        client.post_session({"kind": "pyspark"})
    assert livy.get(f"{gateway.url}/sessions", timeout=10).json()["total"] == before


def test_pylivy_pyspark_session_run_download_upload_close(gateway, livy):
    from livy import LivySession, SessionKind
    from livy.models import SparkRuntimeError

    auth = requests.auth.HTTPBasicAuth("pylivy-user", gateway.token)
    session = LivySession.create(gateway.url, auth=auth, kind=SessionKind.PYSPARK, echo=False)
    session_id = session.session_id
    try:
        with session:  # waits until ready, deletes the session on exit
            assert session.state.value == "idle"
            output = session.run("values = [3, 4, 5]\nprint('sum', sum(values))\nlen(values)")
            assert output.text == "sum 12\n3"
            with pytest.raises(SparkRuntimeError) as raised:
                session.run("undefined_name + 1")
            assert raised.value.ename == "NameError"

            session.run(
                "df = spark.createDataFrame("
                "[(1, 'alpha', 0.5), (2, 'beta', 1.25), (3, 'gamma', None)], "
                "'id INT, label STRING, score DOUBLE')"
            )
            downloaded = session.download("df")
            assert downloaded["id"].tolist() == [1, 2, 3]
            assert downloaded["label"].tolist() == ["alpha", "beta", "gamma"]
            assert downloaded["score"].tolist()[:2] == [0.5, 1.25]
            assert pd.isna(downloaded["score"].tolist()[2])

            with pytest.warns(DeprecationWarning):
                read_back = session.read("df")
            pd.testing.assert_frame_equal(read_back, downloaded)

            local = pd.DataFrame({"city": ["Oslo", "Lima"], "population": [709_000, 10_092_000]})
            session.upload("cities", local)
            assert session.run("cities.where('population > 1000000').first().city").text == "'Lima'"
            round_trip = session.download("cities")
            pd.testing.assert_frame_equal(round_trip[["city", "population"]], local)
        assert_session_gone(gateway, livy, session_id)
    finally:
        livy.delete(f"{gateway.url}/sessions/{session_id}", timeout=60)


def test_pylivy_sql_session_download_sql(gateway, livy):
    from livy import LivySession, SessionKind

    session = LivySession.create(gateway.url, auth=BearerAuth(gateway.token), kind=SessionKind.SQL)
    session_id = session.session_id
    try:
        session.wait()
        frame = session.download_sql(
            "SELECT id, CAST(id * 10 AS DOUBLE) AS tens, concat('n', id) AS tag FROM range(3) ORDER BY id"
        )
        assert list(frame.columns) == ["id", "tens", "tag"]
        assert frame.to_dict("list") == {
            "id": [0, 1, 2],
            "tens": [0.0, 10.0, 20.0],
            "tag": ["n0", "n1", "n2"],
        }
        with pytest.warns(DeprecationWarning):
            legacy = session.read_sql("SELECT 'x' AS letter, 1 + 1 AS two")
        assert legacy.to_dict("list") == {"letter": ["x"], "two": [2]}
        session.close()
        assert_session_gone(gateway, livy, session_id)
    finally:
        livy.delete(f"{gateway.url}/sessions/{session_id}", timeout=60)

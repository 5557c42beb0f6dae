"""Our Livy client against the real gateway, through a proxy that injects faults."""

from __future__ import annotations

import datetime
import ipaddress
import re
import ssl
import time
import uuid

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from prophecy_jupyter.engines.base import SessionSpec, SessionState
from prophecy_jupyter.engines.livy import LivyEngine, LivySettings
from prophecy_jupyter.errors import AuthenticationError, EngineError, SessionGone, StatementLost
from prophecy_jupyter.results.model import RunState
from tests.servers.fault_proxy import FaultProxy

pytestmark = pytest.mark.spark

COUNTER = "runs = globals().get('runs', 0) + 1\nruns"
SUBMIT = r"/statements(\?|$)"  # a statement's submit, with or without our gateway's ?wait=


@pytest.fixture
def proxy(gateway):
    proxy = FaultProxy(gateway.url).start()
    yield proxy
    proxy.stop()


def make_engine(url: str, token: str, **settings) -> LivyEngine:
    options = {"read_timeout": 10.0, "retries": 3, "backoff": 0.05, "headers": {"X-Team": "data-eng"}}
    options.update(settings)
    return LivyEngine(LivySettings(url=url, auth="bearer", **options), secret=token, fabric_name="faulty")


@pytest.fixture
def engine(proxy, gateway):
    engine = make_engine(proxy.url, gateway.token)
    yield engine
    engine.close()


def wait_ready(engine: LivyEngine, session_id: str) -> None:
    deadline = time.monotonic() + 120
    while engine.session(session_id).state == SessionState.STARTING:
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.fixture
def session_id(engine):
    remote = engine.open_session(SessionSpec())
    wait_ready(engine, remote.id)
    yield remote.id
    engine.close_session(remote.id)


def finish(engine: LivyEngine, session_id: str, statement_id: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        status = engine.poll(session_id, statement_id, wait=1.0)
        if status.done:
            return status
        assert time.monotonic() < deadline, "statement did not finish"


def statements_with_marker(gateway, session_id: str, run_id: str) -> list[dict]:
    listing = requests.get(
        f"{gateway.url}/sessions/{session_id}/statements", headers=gateway.headers(), timeout=10
    ).json()
    return [s for s in listing["statements"] if s["code"].endswith(f"prophecy-run: {run_id}")]


def submit_counter(engine, gateway, session_id, expected_runs: int = 1) -> None:
    run_id = uuid.uuid4().hex
    status = engine.submit(session_id, COUNTER, "pyspark", run_id)
    done = finish(engine, session_id, status.id)
    assert done.state == RunState.FINISHED
    assert done.result.text == str(expected_runs), "the statement ran more than once"
    assert len(statements_with_marker(gateway, session_id, run_id)) == 1


@pytest.mark.parametrize(
    "action,status",
    [
        ("drop_after", None),
        ("drop_before", None),
        ("status_before", 503),
        ("status_after", 502),
    ],
)
def test_statement_post_faults_never_run_twice(engine, proxy, gateway, session_id, action, status):
    options = {"status": status} if status else {}
    proxy.add("POST", SUBMIT, action, **options)
    submit_counter(engine, gateway, session_id)
    posts = proxy.requests_to("POST", SUBMIT)
    assert len(posts) == (1 if action.endswith("after") else 2)
    # the session's state shows exactly one run of the counter
    again = engine.submit(session_id, "runs", "pyspark", uuid.uuid4().hex)
    assert finish(engine, session_id, again.id).result.text == "1"


def test_slow_statement_answer_is_reconciled_not_resent(proxy, gateway, session_id):
    impatient = make_engine(proxy.url, gateway.token, read_timeout=0.5)
    proxy.add("POST", SUBMIT, "delay_after", delay=2.0)
    started = time.monotonic()
    submit_counter(impatient, gateway, session_id)
    assert time.monotonic() - started < 10
    assert len(proxy.requests_to("POST", SUBMIT)) == 1


def test_unanswerable_reconciliation_does_not_resend(engine, proxy, gateway, session_id):
    proxy.add("POST", SUBMIT, "drop_after")
    proxy.add("GET", r"/statements\?", "status_before", status=503, times=20)
    with pytest.raises(EngineError) as raised:
        engine.submit(session_id, COUNTER, "pyspark", uuid.uuid4().hex)
    message = str(raised.value)
    assert "not sent again" in message and "%fabric status" in message
    assert len(proxy.requests_to("POST", SUBMIT)) == 1


def test_gets_retry_through_transient_errors(engine, proxy, session_id):
    before = len(proxy.requests_to("GET", rf"/sessions/{session_id}$"))
    proxy.add("GET", rf"/sessions/{session_id}$", "status_before", status=503, times=2)
    proxy.add("GET", rf"/sessions/{session_id}$", "drop_before", times=1)
    assert engine.session(session_id).state == SessionState.IDLE
    attempts = proxy.requests_to("GET", rf"/sessions/{session_id}$")[before:]
    assert [a.action for a in attempts] == ["status_before", "status_before", "drop_before", None]


def test_slow_answers_end_in_a_clear_error_not_a_hang(proxy, gateway, session_id):
    impatient = make_engine(proxy.url, gateway.token, read_timeout=0.5, retries=2)
    proxy.add("GET", rf"/sessions/{session_id}$", "delay_before", delay=3.0, times=10)
    started = time.monotonic()
    with pytest.raises(EngineError) as raised:
        impatient.session(session_id)
    assert time.monotonic() - started < 4, "three attempts of 0.5 s plus backoff"
    assert "Could not reach fabric 'faulty'" in str(raised.value)
    assert "Check that the server is up" in str(raised.value)


def test_unreachable_server_is_a_clear_error():
    closed = make_engine("http://127.0.0.1:9", "token", retries=1)
    with pytest.raises(EngineError, match=re.escape("Could not reach fabric 'faulty' at http://127.0.0.1:9")):
        closed.session("0")


def test_wrong_token_is_an_authentication_error(proxy):
    wrong = make_engine(proxy.url, "not-the-token")
    with pytest.raises(AuthenticationError) as raised:
        wrong.open_session(SessionSpec())
    assert "Fabric 'faulty' refused the request (HTTP 401" in str(raised.value)
    assert "credentials" in str(raised.value)


def test_both_error_body_shapes_are_understood(engine, session_id):
    with pytest.raises(StatementLost, match="Statement not found"):
        engine.poll(session_id, "9999")
    with pytest.raises(SessionGone, match="Session '424242' not found"):
        engine.session("424242")


@pytest.mark.parametrize(
    "version,expected,dropped",
    [
        ("0.7.1-incubating", {"heartbeatTimeoutInSecond", "name"}, {"ttl", "idleTimeout"}),
        ("0.8.0-incubating", {"heartbeatTimeoutInSecond", "name", "ttl"}, {"idleTimeout"}),
        ("0.9.0-incubating", {"heartbeatTimeoutInSecond", "name", "idleTimeout"}, {"ttl"}),
    ],
)
def test_only_fields_the_server_version_accepts_are_sent(engine, proxy, version, expected, dropped):
    proxy.add("GET", r"^/version$", "reply", body={"version": version})
    remote = engine.open_session(SessionSpec(heartbeat_timeout=600, idle_timeout="1h"))
    try:
        body = proxy.requests_to("POST", r"^/sessions$")[-1].body
        assert expected <= set(body) and not (dropped & set(body))
        if version.startswith("0.7"):
            assert any("does not accept 'ttl'" in note for note in remote.notes)
        wait_ready(engine, remote.id)
    finally:
        engine.close_session(remote.id)


def test_session_creation_is_reconciled_by_name(engine, proxy, gateway):
    proxy.add("POST", r"^/sessions$", "drop_after")
    remote = engine.open_session(SessionSpec(name=f"reconcile-{uuid.uuid4().hex[:6]}"))
    try:
        sessions = requests.get(f"{gateway.url}/sessions", headers=gateway.headers(), timeout=10).json()
        named = [s for s in sessions["sessions"] if s["id"] == int(remote.id)]
        assert len(named) == 1
        assert len(proxy.requests_to("POST", r"^/sessions$")) == 1
    finally:
        engine.close_session(remote.id)


def test_a_session_asked_of_a_local_gateway_that_stops_meanwhile_opens_on_the_next_one(proxy, gateway):
    """The local gateway stopped (idle) as a session was asked of it: the create went unanswered and
    the gateway can no longer be asked whether it made the session; it is opened where the
    gateway is now."""
    proxy.add("POST", r"^/sessions$", "drop_before")
    proxy.add("GET", r"^/sessions\?", "drop_before", times=10)  # gone, retries included
    located = iter([proxy.url, gateway.url])
    engine = LivyEngine(
        LivySettings(url=proxy.url, auth="bearer", backoff=0.05),
        secret=gateway.token,
        fabric_name="local",
        locate=lambda: (next(located, gateway.url), gateway.token),
    )
    name = f"moved-{uuid.uuid4().hex[:6]}"
    remote = engine.open_session(SessionSpec(name=name))
    try:
        sessions = requests.get(f"{gateway.url}/sessions", headers=gateway.headers(), timeout=10).json()
        assert [s["id"] for s in sessions["sessions"] if s["name"] == name] == [int(remote.id)]
        assert len(proxy.requests_to("POST", r"^/sessions$")) == 1, "the first gateway was asked once"
    finally:
        engine.close_session(remote.id)
        engine.close()


def test_cancel_uses_the_statement_endpoint_and_headers_are_always_sent(engine, proxy, session_id):
    status = engine.submit(session_id, "import time\ntime.sleep(60)", "pyspark", uuid.uuid4().hex)
    time.sleep(0.5)
    engine.cancel(session_id, status.id)
    done = finish(engine, session_id, status.id, timeout=20)
    assert done.state == RunState.CANCELLED
    assert proxy.requests_to("POST", rf"/statements/{status.id}/cancel$")
    assert not proxy.requests_to("POST", r"/interrupt")
    for entry in proxy.log:
        assert entry.headers.get("X-Requested-By") == "prophecy-jupyter"
        assert entry.headers.get("X-Team") == "data-eng"


def test_killed_session_is_reported_as_ended(engine, gateway, session_id):
    import os
    import signal

    pid = engine.submit(session_id, "import os\nos.getpid()", "pyspark", uuid.uuid4().hex)
    interpreter_pid = int(finish(engine, session_id, pid.id).result.text)
    running = engine.submit(session_id, "import time\ntime.sleep(60)", "pyspark", uuid.uuid4().hex)
    os.kill(interpreter_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while engine.session(session_id).state != SessionState.ENDED:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(SessionGone, match="is dead"):
        engine.submit(session_id, "1", "pyspark", uuid.uuid4().hex)
    assert engine.poll(session_id, running.id).state == RunState.RUNNING


def _self_signed() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_tls_is_verified_and_a_ca_bundle_is_honoured(gateway, tmp_path, monkeypatch):
    cert_pem, key_pem = _self_signed()
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    proxy = FaultProxy(gateway.url).start(tls=context)
    try:
        untrusted = make_engine(proxy.url, gateway.token, retries=0)
        with pytest.raises(EngineError, match=re.escape("TLS verification of https://127.0.0.1")):
            untrusted.server_version()
        trusted = make_engine(proxy.url, gateway.token, ca_bundle=str(tmp_path / "cert.pem"))
        assert trusted.server_version() >= (0, 9, 0)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "cert.pem"))
        by_environment = make_engine(proxy.url, gateway.token)
        assert by_environment.server_version() >= (0, 9, 0), "the environment's CA bundle, as requests has it"
    finally:
        proxy.stop()


def test_basic_auth_and_missing_secrets(proxy, gateway):
    basic = LivyEngine(
        LivySettings(url=proxy.url, auth="basic", username="ana"), secret=gateway.token, fabric_name="basic"
    )
    assert basic.server_version() >= (0, 9, 0)
    assert proxy.log[-1].headers["Authorization"].startswith("Basic ")
    with pytest.raises(EngineError, match="basic auth but has no password"):
        LivyEngine(LivySettings(url=proxy.url, auth="basic", username="ana"), fabric_name="basic")
    with pytest.raises(EngineError, match="bearer auth but no token is stored"):
        LivyEngine(LivySettings(url=proxy.url, auth="bearer"), fabric_name="tok")


def test_kerberos_uses_spnego_from_the_optional_extra():
    from requests_kerberos import HTTPKerberosAuth

    engine = LivyEngine(LivySettings(url="https://livy.example.com", auth="kerberos"), fabric_name="krb")
    assert isinstance(engine._http.auth, HTTPKerberosAuth)
    with pytest.raises(EngineError, match="Unknown auth 'ntlm'"):
        LivyEngine(LivySettings(url="https://livy.example.com", auth="ntlm"), fabric_name="x")

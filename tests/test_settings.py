"""Settings: a server's options (``c.ProphecyJupyter.*``) are the services' settings; the command
line and a kernel without a server take theirs from the environment, at the edge."""

from __future__ import annotations

import gc

from traitlets.config import Config

from prophecy_jupyter.app import ProphecyJupyter, tune_collector
from prophecy_jupyter.environment import apply_environment, settings_of_this_process
from prophecy_jupyter.services.settings import ServiceSettings


def test_the_server_s_options_are_the_services_settings():
    config = Config()
    config.ProphecyJupyter.idle_session_timeout = 5.0
    config.ProphecyJupyter.workers = 8
    config.ProphecyJupyter.poll_ratio = 0.2
    app = ProphecyJupyter(config=config)
    assert isinstance(app, ServiceSettings)
    assert (app.idle_session_timeout, app.workers, app.poll.ratio) == (5.0, 8, 0.2)
    assert app.class_traits(config=True)["max_table_rows"].help, "every option says what it does"


def test_the_environment_gives_settings_at_the_edge_unless_configured(monkeypatch):
    monkeypatch.setenv("PROPHECY_JUPYTER_LOCAL_MAX_SESSIONS", "3")
    monkeypatch.setenv("PROPHECY_JUPYTER_LOCAL_DRIVER_MEMORY", "6g")
    monkeypatch.setenv("PROPHECY_JUPYTER_PROJECTS_DIR", "/srv/work")
    alone = settings_of_this_process()
    assert (alone.local_max_sessions, alone.local_driver_memory, alone.projects_dir) == (3, "6g", "/srv/work")
    assert (alone.max_table_rows, alone.max_buffered_bytes) == (0, 0), "no caps in the user's own process"
    server = apply_environment(ServiceSettings(local_driver_memory="8g"), configured={"local_driver_memory"})
    assert (server.local_driver_memory, server.local_max_sessions) == ("8g", 3)


def test_livy_sessions_run_as_the_user_under_a_hub_or_when_asked():
    assert ServiceSettings().proxy_users is None
    assert ServiceSettings(under_hub=True).proxy_users == {}
    mapped = ServiceSettings(livy_proxy_user="always", livy_proxy_users={"ana": "ana_etl"})
    assert mapped.proxy_users == {"ana": "ana_etl"}
    assert ServiceSettings(under_hub=True, livy_proxy_user="never").proxy_users is None


def test_a_command_in_a_users_terminal_on_a_hub_runs_on_livy_as_that_user(monkeypatch):
    for name in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    assert settings_of_this_process().proxy_users is None, "a laptop: as the fabric's credential says"
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "hub-token")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")
    assert settings_of_this_process().proxy_users == {}, "as the server would: never as Livy's own user"


def test_the_local_jvms_class_archive_is_kept_unless_under_a_hub():
    assert ServiceSettings().keeps_class_archive
    assert not ServiceSettings(under_hub=True).keeps_class_archive
    assert ServiceSettings(under_hub=True, local_class_archive="always").keeps_class_archive
    assert not ServiceSettings(local_class_archive="never").keeps_class_archive


def test_the_server_exempts_its_startup_objects_and_collects_its_youngest_garbage_less_often():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)  # Python's own
        tune_collector(freeze=True, young_threshold=ProphecyJupyter().young_collection_threshold)
        assert gc.get_freeze_count() > 0, "what exists now is out of the collections"
        young, *older = gc.get_threshold()
        assert young > 700 and older == [10, 10], "the older generations keep theirs"
        tune_collector(freeze=False, young_threshold=0)
        assert gc.get_threshold() == (young, 10, 10), "0 leaves the threshold as it is"
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

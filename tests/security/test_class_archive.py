"""A JVM runs the classes its class archive holds: an archive that another user of the machine
could have written, or replaced through its folder, is never given to the gateway's JVMs."""

from __future__ import annotations

import os

import pytest

from prophecy_jupyter.gateway.class_archive import JAVA_OPTIONS, ClassArchive

NOBODY = 65534
CONF = {"spark.master": "local[1]", JAVA_OPTIONS: "-Xss4m"}


@pytest.fixture
def archive(tmp_path) -> ClassArchive:
    folder = tmp_path / "class-archives"
    folder.mkdir(mode=0o700)
    archive = ClassArchive(folder)
    archive.path.write_bytes(b"an archive")
    archive.path.chmod(0o400)
    return archive


def test_the_users_own_archive_is_used(archive):
    options = archive.use(CONF)[JAVA_OPTIONS].split()
    assert options[:2] == ["-Xss4m", f"-XX:SharedArchiveFile={archive.path}"]


@pytest.mark.parametrize("mode", [0o420, 0o402, 0o666])
def test_an_archive_others_can_write_is_not_used(archive, mode):
    archive.path.chmod(mode)
    assert archive.use(CONF) == CONF


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_an_archive_another_user_owns_is_not_used(archive):
    os.chown(archive.path, NOBODY, NOBODY)
    assert archive.use(CONF) == CONF


@pytest.mark.parametrize("mode", [0o770, 0o777, 0o1777])
def test_an_archive_in_a_folder_others_can_write_is_not_used(archive, mode):
    archive.folder.chmod(mode)  # another user could have put it there, or swap it at any time
    assert archive.use(CONF) == CONF


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_an_archive_in_another_users_folder_is_not_used(archive):
    os.chown(archive.folder, NOBODY, NOBODY)
    assert archive.use(CONF) == CONF

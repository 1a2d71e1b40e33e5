"""
The look at a Ray head's address before ``ray.init``, without Ray: a socket on 127.0.0.1.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import types
from pathlib import Path

import pytest

from asyncpipe import ConfigError
from asyncpipe._ray_connect import _kill_local_cluster, _probe

__all__: list[str] = []


class TestProbe:
    """`_probe` at a socket that accepts connections and says nothing (no Ray head)."""

    def test_plain_address_of_no_head_fails(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without TLS the probe's HTTP/2 preface gets no answer: a ConfigError."""
        monkeypatch.delenv("RAY_USE_TLS", raising=False)
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            address = f"127.0.0.1:{listener.getsockname()[1]}"
            with pytest.raises(ConfigError, match="accepts a connection but is no Ray head"):
                _probe(address, 0.5)

    def test_tls_says_it_checks_tcp_only(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With RAY_USE_TLS the probe passes on a TCP connection and warns that it looked
        no further; it passed in silence."""
        monkeypatch.setenv("RAY_USE_TLS", "1")
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            where = f"127.0.0.1:{listener.getsockname()[1]}"
            with caplog.at_level(logging.WARNING, logger="asyncpipe.ray"):
                _probe(where, 0.5)
        assert any(
            f"RAY_USE_TLS is set: the head at {where} is checked for a TCP connection only"
            in record.getMessage()
            for record in caplog.records
        ), caplog.text


class TestKillLocalCluster:
    """After a stop abandons ``ray.init``, the processes of ray's package it started are
    killed, and no other child of the driver."""

    def test_only_children_running_rays_own_programs(self, tmp_path: Path) -> None:
        package = tmp_path / "ray"
        sibling = tmp_path / "raydp"  # another package whose name begins with "ray"
        for folder in (package, sibling):
            folder.mkdir()
            (folder / "serve.py").write_text("import time\ntime.sleep(60)\n")
        (package / "__init__.py").write_text("")
        ray = types.ModuleType("ray")
        ray.__file__ = str(package / "__init__.py")
        ours = subprocess.Popen([sys.executable, str(package / "serve.py")])
        theirs = subprocess.Popen([sys.executable, str(sibling / "serve.py")])
        try:
            _kill_local_cluster(ray)
            assert ours.wait(timeout=10) == -signal.SIGKILL
            assert theirs.poll() is None, "a process of another package was killed"
        finally:
            for process in (ours, theirs):
                process.kill()
                process.wait()

"""
The Ray tests, run inside a network namespace with only loopback.

Ray would otherwise bind its head, nodes and driver to the machine's interface address;
in a namespace whose only interface is ``lo`` every Ray process binds 127.0.0.1, so test
traffic never leaves loopback.  The Ray modules skip themselves outside such a namespace
(see `netns.require_loopback_namespace`); this test runs them in one as a child pytest
and fails with the child's output if any of them fails.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from netns import RAY_TEST_MODULES, loopback_only

__all__: list[str] = []

ROOT = Path(__file__).resolve().parents[1]


def _namespace_command() -> list[str]:
    """
    The ``unshare`` prefix that gives a new network namespace: as root ``-n``; otherwise
    a user namespace mapped to root as well (``-rn``), where the kernel allows it.
    """
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["unshare", "-n"]
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, check=False)
    if probe.returncode == 0:
        return ["unshare", "-rn"]
    pytest.fail(
        "the Ray tests need a loopback-only network namespace, and `unshare -n` failed: "
        f"{probe.stderr.decode().strip()} (run the tests as root, or where user "
        "namespaces are allowed)"
    )


class TestRayInLoopbackNamespace:
    """All Ray tests, in a fresh network namespace whose only interface is lo."""

    @pytest.mark.timeout(1200)
    def test_ray_modules_pass_on_loopback(self) -> None:
        """Every Ray test module passes inside ``unshare -n`` with only lo up."""
        if loopback_only():
            pytest.skip("already in a loopback-only namespace: the modules run directly")
        missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
        assert not missing, (
            f"the Ray tests need {' and '.join(missing)} (Debian packages util-linux and iproute2)"
        )
        script = 'ip link set lo up && exec "$0" -m pytest -p no:cacheprovider -q -rs "$@"'
        command = [*_namespace_command(), "sh", "-c", script, sys.executable, *RAY_TEST_MODULES]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=1150, check=False)
        output = (done.stdout + done.stderr).decode(errors="replace")
        # The child's own closing line, e.g. "9 passed in 80.1s", goes into this test's log.
        print(output.strip().splitlines()[-1] if output.strip() else "(no output)")
        assert done.returncode == 0, output[-6000:]
        assert " passed" in output and " skipped" not in output.splitlines()[-1], output[-3000:]

"""
Run tests inside a network namespace that has only loopback.

Ray binds its nodes to the machine's interface address, and test traffic must stay on
127.0.0.1.  So every Ray test module calls `require_loopback_namespace` at import, which
skips it anywhere else, and `tests/test_ray_netns.py` runs those modules in a fresh
namespace (``unshare -n``, then ``ip link set lo up``) as a child pytest.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest

__all__ = [
    "RAY_TEST_MODULES",
    "in_own_pid_namespace",
    "loopback_only",
    "require_loopback_namespace",
    "two_worker_cluster",
]

# The modules that start or join a Ray cluster; test_ray_netns.py runs exactly these.
RAY_TEST_MODULES = (
    "tests/test_ray.py",
    "tests/test_ray_auto.py",
    "tests/test_ray_cluster.py",
    "tests/test_ray_example.py",
    "tests/test_ray_local.py",
    "tests/test_ray_node_gone.py",
    "tests/test_ray_stop.py",
)


def loopback_only() -> bool:
    """
    Whether this process sees no network interface but ``lo``.
    """
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def require_loopback_namespace() -> None:
    """
    Skip the calling test module unless it runs in a loopback-only network namespace.
    """
    if not loopback_only():
        pytest.skip(
            "Ray tests run only inside a loopback-only network namespace; "
            "tests/test_ray_netns.py runs them there",
            allow_module_level=True,
        )


@contextlib.contextmanager
def two_worker_cluster() -> Iterator[Any]:
    """
    A `ray.cluster_utils.Cluster` of a head with no CPUs (so no actor lands on it) and
    two 1-CPU worker nodes: one actor on each.
    """
    from ray import cluster_utils

    cluster: Any = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False},
    )
    try:
        for _ in range(2):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


def in_own_pid_namespace(script: str) -> list[str]:
    """
    The command that runs the shell ``script`` as the first process of a new PID namespace
    (with its own ``/proc``): it sees no process started outside it (another test's Ray
    cluster).  When it ends, or ``unshare`` is killed (a test's timeout), the kernel kills
    every process left in the namespace.
    """
    return ["unshare", "-pf", "--mount-proc", "--kill-child", "sh", "-c", script]

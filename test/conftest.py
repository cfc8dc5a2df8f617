"""What the test modules share: torch threads, this run's ROS environment, the node process of a module and its
client. Importing a test module changes nothing; all of this applies while tests run.

- torch threads: one for each test (see _one_torch_thread); restored afterwards.
- ROS: localhost discovery and one DDS domain per pytest process (concurrent runs never hear each other), set for
  the session in this process and handed to child processes by `ros_util.ros_env()`.
- `node_proc` / `client`: one sam2 node process per module (parameters from the module's `node_params` fixture, which
  may also name `remaps` for start_node) and an rclpy client talking to it; the node must exit 0 when the module is
  done.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread_for_module_fixtures() -> None:
    """Module fixtures (a model, a 16-clip quality measurement) are built before the per-test setting below: without
    this they ran with torch's default of one thread per core, two workers x two threads on two cores (measured: the
    micro-quality fixture took 180 s instead of 19 s)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One torch CPU thread for every test, set again before each (code under test may change it: build_engine applies
    `cpu_threads`, the trainer its `threads`): on this project's 2 shared cores two threads spin against each other
    (test-fast measured 68 s with one thread vs 128 s with two, load average 4; a 2,000-frame tracker test took 201 s
    after an earlier test left two threads set, 14 s with one)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session", autouse=True)
def ros_domain() -> Iterator[str]:
    """Localhost-only discovery in a DDS domain of this pytest process; the environment is restored at the end."""
    from sam2_ros.ros.client import use_private_domain

    names = ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID", "RMW_IMPLEMENTATION")
    saved = {name: os.environ.get(name) for name in names}
    domain = use_private_domain()
    os.environ.pop("RMW_IMPLEMENTATION", None)  # the Fast DDS RMW the wheels ship
    yield domain
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="module")
def node_params() -> dict:
    """Parameters of the module's node process (`name` names the node); a module overrides this fixture."""
    return {}


@pytest.fixture(scope="module")
def node_proc(node_params, tmp_path_factory):
    """The sam2 node as a separate process for the whole module (real tracker, small test parameters)."""
    from fixtures.node_harness import start_node

    params = dict(node_params)
    name = params.pop("name", "sam2")
    proc = start_node(tmp_path_factory.mktemp(name), name=name, **params)  # params may hold `remaps` too
    yield proc
    assert proc.stop(timeout=30) == 0, proc.output()[-3000:]


@pytest.fixture(scope="module")
def client(node_proc, node_params):
    """An rclpy node in this process with publishers/recorders for the module's node process, once it is connected."""
    from fixtures.node_harness import NodeClient
    from sam2_ros.ros.client import spinning_node

    name = node_params.get("name", "sam2")
    with spinning_node(f"{name}_client") as node:
        c = NodeClient(node, name=name, image_reliability=node_params.get("image_reliability", "best_effort"))
        c.wait_connected()
        yield c


def pytest_collection_modifyitems(config, items) -> None:
    """Under pytest-xdist (`make test` runs two workers, `--dist loadgroup`): every test of one module stays on one
    worker (module fixtures such as a node process or a model are built once), and every ROS test runs on the same
    worker, one module after another, so at most one node process and its DDS traffic share the machine with the
    other worker's CPU-only tests."""
    for item in items:
        group = "ros" if item.get_closest_marker("ros") else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))

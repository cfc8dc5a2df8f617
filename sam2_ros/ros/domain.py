"""A private DDS domain on localhost for a process and the ROS processes it starts (demo, benchmarks, tests)."""
from __future__ import annotations

import os
import random
import time
from collections.abc import MutableMapping


def use_private_domain(environ: MutableMapping[str, str] = os.environ) -> str:
    """Localhost-only discovery and a DDS domain picked for this process, written into `environ` (before rclpy.init
    and before starting child processes), so concurrent runs on one machine never hear each other; returns the id."""
    domain = str(random.Random(os.getpid() ^ int(time.time())).randint(1, 100))
    environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    environ["ROS_DOMAIN_ID"] = domain
    return domain

"""The client helpers: a private DDS domain that skips domains another run is in."""
from __future__ import annotations

import os
import socket

from sam2_ros.ros.client import domain_in_use, spinning_node, use_private_domain


def test_private_domain_skips_domains_in_use():
    taken = []
    try:
        for d in range(1, 101):
            if d == 37 or domain_in_use(d):
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("0.0.0.0", 7410 + 250 * d))  # what a participant of domain d holds
            taken.append(sock)
        env: dict[str, str] = {}
        assert use_private_domain(env) == "37", "the only domain left free"
        assert env == {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_DOMAIN_ID": "37"}
    finally:
        for sock in taken:
            sock.close()


def test_a_participant_marks_its_domain_in_use():
    domain = int(os.environ["ROS_DOMAIN_ID"])  # this run's (conftest)
    with spinning_node("domain_probe"):
        assert domain_in_use(domain)

"""Keep-alive connections are spread evenly over the workers (server.ConnectionBalance)."""

from __future__ import annotations

import http.client
import os
from collections import Counter

import pytest

from stsmon.endpoint.server import ConnectionBalance


def test_only_the_least_loaded_worker_takes_a_connection():
    memory = ConnectionBalance.allocate()
    a, b, c = (ConnectionBalance(memory, generation=1, index=i, count=3) for i in range(3))
    a.reset()
    assert a.my_turn(0) and b.my_turn(0) and c.my_turn(0)  # ties: anyone
    a.publish(1)
    assert not a.my_turn(1) and b.my_turn(0) and c.my_turn(0)
    b.publish(1)
    c.publish(1)
    assert a.my_turn(1) and b.my_turn(1)
    b.publish(0)  # a connection closed
    assert not a.my_turn(1) and b.my_turn(0)


def test_generations_do_not_see_each_other():
    memory = ConnectionBalance.allocate()
    old = ConnectionBalance(memory, generation=1, index=0, count=2)
    new0, new1 = (ConnectionBalance(memory, generation=2, index=i, count=2) for i in range(2))
    new0.reset()
    old.publish(50)  # the draining generation keeps its connections
    new0.publish(1)
    assert new1.my_turn(0) and not new0.my_turn(1)


def test_a_single_worker_always_accepts():
    solo = ConnectionBalance(ConnectionBalance.allocate(), generation=1, index=0, count=1)
    solo.publish(100)
    assert solo.my_turn(100)


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _server_side_inodes(server_port: int) -> dict[int, int]:
    """client port -> inode of the server side of that connection (from /proc/net/tcp)."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local_port = int(parts[1].split(":")[1], 16)
            remote_port = int(parts[2].split(":")[1], 16)
            if local_port == server_port and parts[3] == "01":  # ESTABLISHED
                out[remote_port] = int(parts[9])
    return out


@pytest.mark.slow
def test_eight_sequential_clients_land_four_and_four(start_server, toy_model_dir):
    server = start_server(toy_model_dir, workers=2, capture=False)
    connections = []
    try:
        for _ in range(8):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("POST", "/invocations", b"a b,a c\n", {"Content-Type": "text/csv"})
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            connections.append(conn)
        sides = _server_side_inodes(server.port)
        owners = {pid: _socket_inodes(pid) for pid in server.record["worker_pids"]}
        per_worker = Counter()
        for conn in connections:
            inode = sides[conn.sock.getsockname()[1]]
            [owner] = [pid for pid, inodes in owners.items() if inode in inodes]
            per_worker[owner] += 1
        assert sorted(per_worker.values()) == [4, 4]
    finally:
        for conn in connections:
            conn.close()

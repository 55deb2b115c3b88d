"""Tests over real loopback sockets, SSH, subprocesses and CLI runs (the mock server, fault_server.py,
ssh_server.py, metrics_server.py), and threads that wait on real time."""

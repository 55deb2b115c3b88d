"""Remote GPUs over SSH against an in-process paramiko server on 127.0.0.1 that plays
nvidia-smi (ssh_server.py): authentication, host keys, preflight, reconnects, stop. Every wait is bounded."""

from __future__ import annotations

import threading
import time

import paramiko
import pytest

from sse_perf_tool.gpu.base import TelemetryError
from sse_perf_tool.gpu.ssh import SshSampler
from waiting import wait_until

from .ssh_server import FakeSshServer, write_known_hosts

PASSWORD = "s3cret-pw"
FAST = dict(connect_timeout_s=3, reconnect_backoff_s=(0.05, 0.1))


@pytest.fixture(scope="module")
def host_key():
    return paramiko.RSAKey.generate(2048)


@pytest.fixture(scope="module")
def client_key():
    return paramiko.RSAKey.generate(2048)


@pytest.fixture(scope="module")
def other_key():
    return paramiko.RSAKey.generate(2048)


@pytest.fixture
def key_file(tmp_path, client_key):
    path = tmp_path / "id_rsa"
    client_key.write_private_key_file(str(path))
    return str(path)


@pytest.fixture
def server(host_key, client_key):
    with FakeSshServer(host_key, password=PASSWORD, authorized_key=client_key) as srv:
        yield srv


@pytest.fixture
def known_hosts(tmp_path, server, host_key):
    path = tmp_path / "known_hosts"
    write_known_hosts(path, server.port, host_key)
    return str(path)


class Collector:
    def __init__(self):
        self.batches = []
        self.lock = threading.Lock()

    def __call__(self, batch):
        with self.lock:
            self.batches.append(list(batch))

    def count(self):
        with self.lock:
            return len(self.batches)


def target(server):
    return f"ssh://bob@127.0.0.1:{server.port}"


def run_briefly(sampler, batches=3, interval_s=0.05):
    sink = Collector()
    sampler.start(sink, interval_s=interval_s)
    try:
        assert wait_until(lambda: sink.count() >= batches, 5), sampler.warnings
    finally:
        sampler.stop()
    return sink


# -- authentication and host keys --
def test_key_auth_preflight_and_samples_flow(server, known_hosts, key_file):
    sampler = SshSampler(target(server), key_filename=key_file, known_hosts=known_hosts, **FAST)
    sampler.preflight()
    assert sampler.remote_indices == [0, 1]
    sink = run_briefly(sampler)
    source = f"ssh://127.0.0.1:{server.port}"
    for batch in sink.batches:
        assert [s.index for s in batch] == [0, 1]  # one batch per tick: all GPUs
        assert all(s.source == source for s in batch)
    gpu0, gpu1 = sink.batches[0]
    assert gpu0.key == f"gpu[{source}:0]"
    assert gpu0.values["mem_total_mib"] == 81559.0 and gpu0.values["power_w"] == 123.45
    assert gpu0.values["sm_clock_mhz"] == 1980.0 and gpu0.values["energy_j"] is None
    assert gpu1.values["power_w"] is None and gpu1.values["sm_clock_mhz"] is None  # [N/A], [Not Supported]
    assert len(server.streaming_commands) == 1  # one long-lived command, not one exec per tick
    assert "-lms 50" in server.streaming_commands[0]
    assert sampler.warnings == []


def test_password_auth_works(server, known_hosts):
    sampler = SshSampler(target(server), password=PASSWORD, known_hosts=known_hosts, **FAST)
    sampler.preflight()
    sink = run_briefly(sampler, batches=2)
    assert sink.count() >= 2


def test_wrong_password_fails_preflight_without_showing_it(server, known_hosts):
    wrong = "not-the-pw-9271"
    sampler = SshSampler(target(server), password=wrong, known_hosts=known_hosts, **FAST)
    with pytest.raises(TelemetryError) as info:
        sampler.preflight()
    message = str(info.value)
    assert message.startswith(f"--gpu ssh://127.0.0.1:{server.port}: SSH authentication failed for user bob")
    assert wrong not in message and wrong not in repr(sampler)
    assert not any(wrong in w for w in sampler.warnings)
    assert server.commands == []


def test_wrong_key_fails_preflight(server, known_hosts, tmp_path, other_key):
    other = tmp_path / "other_key"
    other_key.write_private_key_file(str(other))
    sampler = SshSampler(target(server), key_filename=str(other), known_hosts=known_hosts, **FAST)
    with pytest.raises(TelemetryError, match="authentication failed"):
        sampler.preflight()


def test_unreadable_or_encrypted_key_fails_preflight(server, known_hosts, tmp_path, client_key):
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key\n")
    sampler = SshSampler(target(server), key_filename=str(garbage), known_hosts=known_hosts, **FAST)
    with pytest.raises(TelemetryError, match="cannot read the key"):
        sampler.preflight()
    locked = tmp_path / "locked"
    client_key.write_private_key_file(str(locked), password="phrase-1")
    sampler = SshSampler(target(server), key_filename=str(locked), known_hosts=known_hosts, **FAST)
    with pytest.raises(TelemetryError, match="encrypted and needs its passphrase"):
        sampler.preflight()
    assert server.commands == []


def test_missing_key_file_fails_preflight(server, known_hosts, tmp_path):
    sampler = SshSampler(target(server), key_filename=str(tmp_path / "nope"), known_hosts=known_hosts, **FAST)
    with pytest.raises(TelemetryError, match="--ssh-key .*no such file"):
        sampler.preflight()


def test_unknown_host_key_is_refused(server, key_file, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    for known in (str(empty), str(tmp_path / "absent")):
        sampler = SshSampler(target(server), key_filename=key_file, known_hosts=known, **FAST)
        with pytest.raises(TelemetryError) as info:
            sampler.preflight()
        assert "is not in" in str(info.value) and "--ssh-accept-new-host-key" in str(info.value)
    assert server.commands == []


def test_accept_new_host_key_works_with_a_warning_and_writes_nothing(server, key_file, tmp_path, host_key):
    known = tmp_path / "known_hosts"
    sampler = SshSampler(target(server), key_filename=key_file, known_hosts=str(known),
                         accept_new_host_key=True, **FAST)
    sampler.preflight()
    run_briefly(sampler, batches=2)
    accepted = [w for w in sampler.warnings if "accepted the unknown host key" in w]
    assert len(accepted) == 1  # the reconnect for the run reuses the pinned key silently
    assert host_key.fingerprint in accepted[0]
    assert not known.exists()


def test_changed_host_key_is_refused_even_when_accepting_new_keys(server, key_file, tmp_path, other_key):
    known = tmp_path / "known_hosts"
    write_known_hosts(known, server.port, other_key)
    sampler = SshSampler(target(server), key_filename=key_file, known_hosts=str(known),
                         accept_new_host_key=True, **FAST)
    with pytest.raises(TelemetryError, match="does not match"):
        sampler.preflight()


# -- remote command problems --
def test_nvidia_smi_missing_fails_preflight(host_key, client_key, tmp_path, key_file):
    with FakeSshServer(host_key, authorized_key=client_key, nvidia_smi_present=False) as srv:
        known = tmp_path / "kh"
        write_known_hosts(known, srv.port, host_key)
        sampler = SshSampler(target(srv), key_filename=key_file, known_hosts=str(known), **FAST)
        with pytest.raises(TelemetryError, match="nvidia-smi not found on the remote host"):
            sampler.preflight()


def test_index_not_on_remote_host_fails_preflight(server, known_hosts, key_file):
    sampler = SshSampler(target(server), key_filename=key_file, known_hosts=known_hosts, indices=[5], **FAST)
    with pytest.raises(TelemetryError, match="--gpu-index 5"):
        sampler.preflight()


def test_chosen_indices_only(server, known_hosts, key_file):
    sampler = SshSampler(target(server), key_filename=key_file, known_hosts=known_hosts, indices=[1], **FAST)
    sampler.preflight()
    sink = run_briefly(sampler)
    assert all([s.index for s in b] == [1] for b in sink.batches)
    assert server.streaming_commands[0].endswith("-i 1")


def test_unreachable_host_fails_preflight(host_key, key_file, tmp_path):
    srv = FakeSshServer(host_key)  # bound but never started or listening to completion
    port = srv.port
    srv.stop()  # the port is now closed
    sampler = SshSampler(f"ssh://bob@127.0.0.1:{port}", key_filename=key_file,
                         known_hosts=str(tmp_path / "kh"), **FAST)
    with pytest.raises(TelemetryError, match="connection refused"):
        sampler.preflight()


# -- the run --
def test_disconnect_mid_run_warns_reconnects_and_samples_again(server, known_hosts, key_file):
    sampler = SshSampler(target(server), key_filename=key_file, known_hosts=known_hosts, **FAST)
    sampler.preflight()
    sink = Collector()
    sampler.start(sink, interval_s=0.05)
    try:
        assert wait_until(lambda: sink.count() >= 2, 5)
        server.drop_connections()
        assert wait_until(lambda: any("connection lost" in w for w in sampler.warnings), 5), sampler.warnings
        before = sink.count()
        assert wait_until(lambda: any("samples resumed" in w for w in sampler.warnings), 5), sampler.warnings
        assert wait_until(lambda: sink.count() >= before + 2, 5)
    finally:
        sampler.stop()
    assert len(server.streaming_commands) >= 2
    lost = [w for w in sampler.warnings if "connection lost" in w]
    assert len(lost) == 1 and lost[0].startswith(f"ssh://127.0.0.1:{server.port}: ")


def test_stop_is_prompt_while_streaming(server, known_hosts, key_file):
    """The next nvidia-smi line is a minute away: stop() must cut the blocked read, so the thread
    has ended when stop() returns (it waits for it only briefly)."""
    server.line_interval_s = 60  # after the first line
    sampler = SshSampler(target(server), key_filename=key_file, known_hosts=known_hosts, **FAST)
    sink = Collector()
    sampler.start(sink, interval_s=1.0)  # start() without preflight() also works
    assert wait_until(lambda: sink.count() >= 1, 5)
    sampler.stop()
    assert not sampler.running
    count = sink.count()
    time.sleep(0.15)
    assert sink.count() == count


def test_stop_is_prompt_while_waiting_to_reconnect(host_key, key_file, tmp_path):
    srv = FakeSshServer(host_key)
    port = srv.port
    srv.stop()
    sampler = SshSampler(f"ssh://bob@127.0.0.1:{port}", key_filename=key_file, known_hosts=str(tmp_path / "kh"),
                         connect_timeout_s=3, reconnect_backoff_s=(30,))
    sampler.start(Collector(), interval_s=0.05)
    assert wait_until(lambda: any("connection refused" in w for w in sampler.warnings), 5)
    sampler.stop()  # the next attempt is 30 s away: the thread has ended only if stop() cut that wait
    assert not sampler.running


def test_auth_failure_on_reconnect_ends_the_sampler_with_a_warning(server, known_hosts):
    sampler = SshSampler(target(server), password=PASSWORD, known_hosts=known_hosts, **FAST)
    sink = Collector()
    sampler.start(sink, interval_s=0.05)
    try:
        assert wait_until(lambda: sink.count() >= 1, 5)
        server.password = "rotated"
        server.drop_connections()
        assert wait_until(lambda: not sampler.running, 5)
    finally:
        sampler.stop()
    assert any("sampling stopped" in w and "authentication failed" in w for w in sampler.warnings)
    assert not any(PASSWORD in w for w in sampler.warnings)

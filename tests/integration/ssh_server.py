"""An in-process SSH server on 127.0.0.1:0 (paramiko) that plays a remote nvidia-smi.

Test helper only. It accepts one user by password or by public key, answers the preflight
command (`--query-gpu=index`) with the GPU indices, and the streaming command (`-lms`) with
scripted CSV lines every `line_interval_s` until the channel closes. `drop_connections()`
cuts every live connection (a network drop mid-run); new connections are served as before.
Every wait is bounded by stop().
"""

from __future__ import annotations

import socket
import threading
from typing import Callable, Optional

import paramiko

GPU_LINE = Callable[[int, int], str]  # (tick, gpu index) -> one CSV line without newline


def default_line(tick: int, gpu: int) -> str:
    """GPU 0 reports everything; GPU 1 has no power reading ("[N/A]"), clocks "[Not Supported]" and
    no power limit ("[N/A]"), as nvidia-smi prints what a board does not report."""
    if gpu == 0:
        return f"0, {40 + tick % 10}, {1024 + tick}, 81559, 45, 123.45, 1980, 700.00"
    return f"{gpu}, 5, 512, 81559, 31, [N/A], [Not Supported], [N/A]"


class _Transport(paramiko.Transport):
    """Counts the channel-request replies it has sent. paramiko sends the reply to an exec
    request only after check_channel_exec_request returns, so output (or a close) written
    by another thread could overtake it; real sshd always answers first. The command thread
    waits for this count to move before writing."""

    def __init__(self, sock):
        super().__init__(sock)
        self.replies = 0
        self.replies_cv = threading.Condition()

    def _send_user_message(self, data):
        super()._send_user_message(data)
        raw = data.asbytes() if hasattr(data, "asbytes") else bytes(data)
        if raw[:1] in (paramiko.common.cMSG_CHANNEL_SUCCESS, paramiko.common.cMSG_CHANNEL_FAILURE):
            with self.replies_cv:
                self.replies += 1
                self.replies_cv.notify_all()


class _Interface(paramiko.ServerInterface):
    def __init__(self, server: "FakeSshServer"):
        self.server = server

    def get_allowed_auths(self, username):
        return "publickey,password"

    def check_auth_password(self, username, password):
        ok = username == self.server.user and password == self.server.password
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        wanted = self.server.authorized_key
        ok = username == self.server.user and wanted is not None and key.get_base64() == wanted.get_base64()
        return paramiko.AUTH_SUCCESSFUL if ok else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        text = command.decode("utf-8", "replace") if isinstance(command, bytes) else str(command)
        self.server.commands.append(text)
        transport = channel.get_transport()
        with transport.replies_cv:
            replied = transport.replies
        threading.Thread(
            target=self.server._serve_command, args=(channel, text, replied), daemon=True
        ).start()
        return True


class FakeSshServer:
    def __init__(
        self,
        host_key: paramiko.PKey,
        user: str = "bob",
        password: Optional[str] = "s3cret-pw",
        authorized_key: Optional[paramiko.PKey] = None,
        gpus: int = 2,
        line_interval_s: float = 0.05,
        line: GPU_LINE = default_line,
        nvidia_smi_present: bool = True,
    ):
        self.host_key = host_key
        self.user = user
        self.password = password
        self.authorized_key = authorized_key
        self.gpus = gpus
        self.line_interval_s = line_interval_s
        self.line = line
        self.nvidia_smi_present = nvidia_smi_present
        self.commands: list[str] = []
        self.connections = 0  # TCP connections accepted
        self._transports: list[paramiko.Transport] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="fake-sshd", daemon=True)

    # -- control --
    def start(self) -> "FakeSshServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.drop_connections()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self._listener.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def drop_connections(self) -> None:
        """Cut every live connection now, as a network drop would."""
        with self._lock:
            transports, self._transports = self._transports, []
        for transport in transports:
            transport.close()

    @property
    def streaming_commands(self) -> list[str]:
        return [c for c in self.commands if "-lms" in c]

    # -- serving --
    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve_connection, args=(sock,), daemon=True).start()

    def _serve_connection(self, sock: socket.socket) -> None:
        transport = _Transport(sock)
        transport.add_server_key(self.host_key)
        with self._lock:
            self._transports.append(transport)
        try:
            transport.start_server(server=_Interface(self))
        except (paramiko.SSHException, EOFError, OSError):
            transport.close()
            return
        channels = []  # held: paramiko closes a Channel that is garbage-collected
        while transport.is_active() and not self._stop.is_set():
            channel = transport.accept(timeout=0.1)  # served from check_channel_exec_request
            if channel is not None:
                channels.append(channel)
        transport.close()

    def _serve_command(self, channel: paramiko.Channel, command: str, replied: int) -> None:
        transport = channel.get_transport()
        with transport.replies_cv:
            transport.replies_cv.wait_for(lambda: transport.replies > replied, timeout=2)
        try:
            if not self.nvidia_smi_present or not command.startswith("nvidia-smi"):
                channel.send_stderr(f"bash: {command.split()[0]}: command not found\n".encode())
                channel.send_exit_status(127)
            elif "-lms" not in command:
                channel.send("".join(f"{i}\n" for i in range(self.gpus)).encode())
                channel.send_exit_status(0)
            else:
                tick = 0
                while not self._stop.is_set() and not channel.closed and channel.get_transport().is_active():
                    channel.send("".join(self.line(tick, i) + "\n" for i in range(self.gpus)).encode())
                    tick += 1
                    self._stop.wait(self.line_interval_s)
        except (OSError, EOFError, paramiko.SSHException):
            pass
        finally:
            try:
                channel.close()
            except (OSError, EOFError, paramiko.SSHException):
                pass


def write_known_hosts(path, port: int, key: paramiko.PKey, host: str = "127.0.0.1") -> None:
    """A known_hosts file holding `key` for host:port (paramiko's "[host]:port" form)."""
    keys = paramiko.HostKeys()
    name = host if port == 22 else f"[{host}]:{port}"
    keys.add(name, key.get_name(), key)
    keys.save(str(path))


def main(argv=None) -> int:
    """Run the fake server by hand, e.g. for `sse-perf --demo --gpu ssh://...`:
    python tests/integration/ssh_server.py --known-hosts /tmp/kh [--seconds 120]; password auth with
    $SSE_PERF_SSH_PASSWORD (default s3cret-pw). Prints the target to use."""
    import argparse
    import os

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--known-hosts", required=True, help="file to write the host key to")
    parser.add_argument("--user", default="bob")
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--line-interval", type=float, default=1.0, help="seconds between ticks")
    parser.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    args = parser.parse_args(argv)
    password = os.environ.get("SSE_PERF_SSH_PASSWORD", "s3cret-pw")
    server = FakeSshServer(paramiko.RSAKey.generate(2048), user=args.user, password=password,
                           gpus=args.gpus, line_interval_s=args.line_interval)
    write_known_hosts(args.known_hosts, server.port, server.host_key)
    with server:
        print(f"ssh://{args.user}@127.0.0.1:{server.port}  (known_hosts: {args.known_hosts})", flush=True)
        try:
            server._stop.wait(args.seconds)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Remote GPUs: one long-lived `nvidia-smi ... -lms` over SSH (paramiko), parsed line by line.

Imports gpu.base only. Passwords come from the caller and never appear in a message or a
warning. Host keys are checked against known_hosts; an unknown host is refused unless the
caller accepts new keys (then kept in memory only: known_hosts is never written).
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

import paramiko

from .base import Sample, Sampler, TelemetryError

# nvidia-smi --query-gpu fields, in order, with the Sample value each one fills. With
# --format=csv,noheader,nounits: utilization.gpu %, memory.* MiB, temperature.gpu C,
# power.draw W, clocks.sm MHz, enforced.power.limit W (the ceiling power management keeps the board under). Every one exists in nvidia-smi's --help-query-gpu list since
# long before the drivers sse-perf targets. nvidia-smi has no documented query field for the
# total-energy counter, so energy_j is None for remote GPUs.
QUERY_FIELDS = (
    ("index", None),
    ("utilization.gpu", "util_pct"),
    ("memory.used", "mem_used_mib"),
    ("memory.total", "mem_total_mib"),
    ("temperature.gpu", "temp_c"),
    ("power.draw", "power_w"),
    ("clocks.sm", "sm_clock_mhz"),
    ("enforced.power.limit", "power_limit_w"),
)
PREFLIGHT_COMMAND = "nvidia-smi --query-gpu=index --format=csv,noheader"
COMMAND_NOT_FOUND = 127
_MAX_BAD_LINE_WARNINGS = 3


def nvidia_smi_command(interval_s: float, indices: Optional[list[int]] = None) -> str:
    """The one streaming command: a line per GPU every interval, until the channel closes."""
    fields = ",".join(name for name, _ in QUERY_FIELDS)
    command = f"nvidia-smi --query-gpu={fields} --format=csv,noheader,nounits -lms {max(1, round(interval_s * 1000))}"
    if indices:
        command += " -i " + ",".join(str(i) for i in indices)
    return command


def parse_nvidia_smi_line(line: str) -> Optional[tuple[int, dict[str, Optional[float]]]]:
    """One CSV line of the streaming command -> (index, values); None when the line is not a
    GPU line (a message such as "No devices were found"). "[N/A]", "[Not Supported]" and any
    other non-number read as None ("not measured"), never 0."""
    parts = [p.strip() for p in line.strip().split(",")]
    if len(parts) != len(QUERY_FIELDS):
        return None
    try:
        index = int(parts[0])
    except ValueError:
        return None
    values: dict[str, Optional[float]] = {}
    for (_, metric), text in zip(QUERY_FIELDS[1:], parts[1:]):
        values[metric] = _float_or_none(text)
    values["energy_j"] = None
    return index, values


def _float_or_none(text: str) -> Optional[float]:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value else None  # NaN -> None


@dataclass(frozen=True)
class SshTarget:
    user: str
    host: str
    port: int

    @property
    def source(self) -> str:
        """How the target is shown everywhere: no user (it is not the GPU's name), the port only
        when it is not 22. "ssh://h1", "ssh://h1:2222", "ssh://[::1]:2222"."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ssh://{host}" if self.port == 22 else f"ssh://{host}:{self.port}"


def parse_target(target: str) -> SshTarget:
    """ "ssh://user@host[:port]" -> SshTarget. The user defaults to the local user, as with ssh."""
    text = (target or "").strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise TelemetryError(f"--gpu {text}: bad SSH target (expected ssh://user@host[:port])") from None
    if parts.scheme != "ssh" or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise TelemetryError(f"--gpu {text}: bad SSH target (expected ssh://user@host[:port])")
    if parts.password is not None:
        raise TelemetryError(
            "--gpu ssh://...: a password in the target is not accepted; use the environment instead"
        )
    user = parts.username or getpass.getuser()
    return SshTarget(user=user, host=parts.hostname, port=port or 22)


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, hostname: str, key: paramiko.PKey):
        super().__init__(f"unknown host key for {hostname}")
        self.hostname = hostname
        self.key = key


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Refuses a host that known_hosts does not list, or, when new keys are accepted, accepts
    it in memory (never writing known_hosts) and tells the sampler so it can warn and pin it."""

    def __init__(self, accept_new: bool, accepted: list):
        self.accept_new = accept_new
        self.accepted = accepted

    def missing_host_key(self, client, hostname, key):
        if not self.accept_new:
            raise _UnknownHostKey(hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.accepted.append((hostname, key))


class SshSampler(Sampler):
    """Runs one `nvidia-smi --query-gpu=... -lms` per connection and turns its lines into
    samples (one batch per tick: all GPUs). A dropped connection leaves a gap: a warning, then
    reconnects with `reconnect_backoff_s` between attempts (the last value repeats) until
    stop(). Authentication failures and host-key problems on a reconnect end this sampler with
    a warning instead of retrying (retrying bad credentials can lock an account)."""

    def __init__(
        self,
        target: str,
        key_filename: Optional[str] = None,
        password: Optional[str] = None,
        accept_new_host_key: bool = False,
        known_hosts: Optional[str] = None,
        indices: Optional[list[int]] = None,
        connect_timeout_s: float = 10,
        reconnect_backoff_s: tuple = (1, 2, 4, 8, 15),
    ):
        super().__init__()
        self.target = parse_target(target)
        self.source = self.target.source
        self.key_filename = os.path.expanduser(key_filename) if key_filename else None
        self._password = password
        self.accept_new_host_key = accept_new_host_key
        self.known_hosts = os.path.expanduser(known_hosts or "~/.ssh/known_hosts")
        self.indices = list(indices) if indices is not None else None
        self.connect_timeout_s = float(connect_timeout_s)
        self.reconnect_backoff_s = tuple(float(s) for s in reconnect_backoff_s) or (1.0,)
        self.remote_indices: Optional[list[int]] = None  # known after preflight()
        self._accepted: list = []  # (hostkey name, key) accepted in this process, pinned
        self._lock = threading.Lock()
        self._client: Optional[paramiko.SSHClient] = None
        self._sock: Optional[socket.socket] = None
        self._bad_lines = 0
        self._pkey: Optional[paramiko.PKey] = None

    def __repr__(self) -> str:  # no password, ever
        return f"SshSampler({self.source!r})"

    # -- preflight --
    def preflight(self) -> None:
        """Connect, authenticate, run nvidia-smi once to list the GPUs, disconnect."""
        if self.key_filename and not os.path.isfile(self.key_filename):
            raise TelemetryError(f"--ssh-key {self.key_filename}: no such file")
        try:
            client = self._connect()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TelemetryError(f"--gpu {self.source}: {self._describe(exc)}") from None
        try:
            status, out, err = self._run_once(client, PREFLIGHT_COMMAND)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TelemetryError(f"--gpu {self.source}: running nvidia-smi failed: {self._describe(exc)}") from None
        finally:
            client.close()
        if status == COMMAND_NOT_FOUND or ("not found" in err.lower() and not out.strip()):
            raise TelemetryError(
                f"--gpu {self.source}: nvidia-smi not found on the remote host (is the NVIDIA driver installed there?)"
            )
        if status != 0:
            detail = _first_line(err) or _first_line(out) or f"exit status {status}"
            raise TelemetryError(f"--gpu {self.source}: nvidia-smi failed on the remote host: {detail}")
        found = [int(line) for line in (ln.strip() for ln in out.splitlines()) if line.isdigit()]
        if not found:
            detail = _first_line(out) or "no output"
            raise TelemetryError(f"--gpu {self.source}: nvidia-smi lists no GPU on the remote host ({detail})")
        if self.indices is not None:
            bad = [i for i in self.indices if i not in found]
            if bad:
                raise TelemetryError(
                    f"--gpu-index {','.join(map(str, bad))}: {self.source} has GPU indices "
                    f"{','.join(map(str, found))}"
                )
        self.remote_indices = found

    # -- connection --
    def _load_key(self) -> Optional[paramiko.PKey]:
        """The --ssh-key file as a key object, loaded once. Loading it here (not through
        paramiko's key_filename, which tries every key type and reports the last type's parse
        error) keeps "wrong key" and "unreadable key" apart. An encrypted key is opened with
        the password, as ssh does with a passphrase."""
        if self.key_filename is None or self._pkey is not None:
            return self._pkey
        try:
            self._pkey = _load_private_key(self.key_filename, self._password)
        except (paramiko.PasswordRequiredException, TypeError):
            # TypeError: cryptography's "Password was not given but private key is encrypted"
            raise TelemetryError(f"--ssh-key {self.key_filename}: the key is encrypted and needs its passphrase") from None
        except (OSError, ValueError, paramiko.SSHException) as exc:
            text = str(exc) or type(exc).__name__
            if self._password:
                text = text.replace(self._password, "***")
            raise TelemetryError(f"--ssh-key {self.key_filename}: cannot read the key ({text})") from None
        return self._pkey

    def _connect(self) -> paramiko.SSHClient:
        """A connected, authenticated client. Host-key and authentication problems raise
        TelemetryError (permanent); network problems raise OSError/SSHException (transient)."""
        pkey = self._load_key()
        client = paramiko.SSHClient()
        if os.path.isfile(self.known_hosts):
            try:
                client.load_system_host_keys(self.known_hosts)  # read only: never saved back
            except (OSError, paramiko.SSHException, ValueError) as exc:
                raise TelemetryError(f"--gpu {self.source}: cannot read {self.known_hosts}: {exc}") from None
        for name, key in self._accepted:
            client.get_host_keys().add(name, key.get_name(), key)
        accepted_now: list = []
        client.set_missing_host_key_policy(_HostKeyPolicy(self.accept_new_host_key, accepted_now))
        sock = socket.create_connection((self.target.host, self.target.port), timeout=self.connect_timeout_s)
        with self._lock:
            if self._stop.is_set():
                sock.close()
                raise OSError("stopped")
            self._sock, self._client = sock, client
        use_defaults = self.key_filename is None and self._password is None
        try:
            client.connect(
                self.target.host,
                port=self.target.port,
                username=self.target.user,
                password=self._password,
                pkey=pkey,
                sock=sock,
                timeout=self.connect_timeout_s,
                banner_timeout=self.connect_timeout_s,
                auth_timeout=self.connect_timeout_s,
                allow_agent=use_defaults,
                look_for_keys=use_defaults,
            )
        except _UnknownHostKey as exc:
            client.close()
            raise TelemetryError(
                f"--gpu {self.source}: the host key of {exc.hostname} ({exc.key.get_name()} "
                f"{exc.key.fingerprint}) is not in {self.known_hosts}; check it and add it "
                "(ssh once to the host), or pass --ssh-accept-new-host-key"
            ) from None
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise TelemetryError(
                f"--gpu {self.source}: the host key of {self.target.host} ({exc.key.fingerprint}) does not "
                f"match {self.known_hosts}: refusing to connect (possible man-in-the-middle; if the "
                "key changed legitimately, update known_hosts)"
            ) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            raise TelemetryError(
                f"--gpu {self.source}: SSH authentication failed for user {self.target.user} "
                f"(tried {self._auth_methods()}){self._auth_hint(exc)}"
            ) from None
        except BaseException:
            client.close()
            raise
        for hostname, key in accepted_now:
            self._accepted.append((hostname, key))
            self._warn(
                f"accepted the unknown host key of {hostname} ({key.get_name()} {key.fingerprint}) "
                "because of --ssh-accept-new-host-key; not saved to known_hosts"
            )
        return client

    def _auth_methods(self) -> str:
        if self._password is not None and self.key_filename:
            return f"key {self.key_filename} and a password"
        if self.key_filename:
            return f"key {self.key_filename}"
        if self._password is not None:
            return "a password"
        return "ssh-agent and the default keys in ~/.ssh"

    def _auth_hint(self, exc: Exception) -> str:
        if isinstance(exc, paramiko.PasswordRequiredException):
            return "; the key is encrypted and needs its passphrase"
        if isinstance(exc, paramiko.BadAuthenticationType):
            allowed = ",".join(getattr(exc, "allowed_types", []) or [])
            return f"; the server allows only: {allowed}" if allowed else ""
        return ""

    def _describe(self, exc: BaseException) -> str:
        """One line for a transient failure, with the password scrubbed just in case."""
        if isinstance(exc, (socket.timeout, TimeoutError)):
            text = f"connection timed out after {self.connect_timeout_s:g} s"
        elif isinstance(exc, ConnectionRefusedError):
            text = f"connection refused by {self.target.host}:{self.target.port}"
        elif isinstance(exc, socket.gaierror):
            text = f"cannot resolve host {self.target.host}: {exc.strerror or exc}"
        elif isinstance(exc, OSError):
            text = f"cannot connect: {exc.strerror or exc or type(exc).__name__}"
        elif isinstance(exc, EOFError):
            text = "the server closed the connection"
        else:
            text = f"SSH error: {exc or type(exc).__name__}"
        if self._password:
            text = text.replace(self._password, "***")
        return text

    def _run_once(self, client: paramiko.SSHClient, command: str) -> tuple[int, str, str]:
        """Runs a short command; (exit status, stdout, stderr). Bounded by connect_timeout_s."""
        transport = client.get_transport()
        chan = transport.open_session(timeout=self.connect_timeout_s)
        try:
            chan.settimeout(self.connect_timeout_s)
            chan.exec_command(command)
            out = bytearray()
            err = bytearray()
            deadline = time.monotonic() + self.connect_timeout_s
            while True:
                if chan.recv_ready():
                    out += chan.recv(65536)
                elif chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                elif chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                elif time.monotonic() > deadline:
                    raise socket.timeout()
                else:
                    time.sleep(0.01)
            status = chan.recv_exit_status()
        finally:
            chan.close()
        return status, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")

    # -- the run --
    def _interrupt(self) -> None:
        with self._lock:
            client, sock = self._client, self._sock
        for thing in (client, sock):
            if thing is not None:
                try:
                    thing.close()
                except (OSError, EOFError, paramiko.SSHException):
                    pass

    def _close(self) -> None:
        self._interrupt()

    def _run(self) -> None:
        attempt = 0
        lost_at: Optional[float] = None
        ever_streamed = False
        while not self._stop.is_set():
            got_lines = False
            try:
                try:
                    client = self._connect()
                    try:
                        reason, got_lines, resumed = self._stream(client, lost_at)
                    finally:
                        client.close()
                finally:
                    with self._lock:
                        self._client = self._sock = None
            except TelemetryError as exc:
                if not self._stop.is_set():
                    self._warn(f"sampling stopped: {exc}")
                return
            except (OSError, EOFError, paramiko.SSHException) as exc:
                reason, resumed = self._describe(exc), False
            if self._stop.is_set():
                return
            if resumed:
                lost_at = None
            if got_lines:
                attempt = 0
                ever_streamed = True
            if lost_at is None:
                lost_at = time.monotonic()
                what = "connection lost" if ever_streamed else "cannot start sampling"
                self._warn(f"{what} ({reason}); samples have a gap, reconnecting")
            delay = self.reconnect_backoff_s[min(attempt, len(self.reconnect_backoff_s) - 1)]
            attempt += 1
            self._stop.wait(delay)

    def _stream(self, client: paramiko.SSHClient, lost_at: Optional[float]) -> tuple[str, bool, bool]:
        """Reads the streaming command until it ends, the connection drops or stop().
        Returns (why it ended, whether any GPU line arrived, whether a gap was closed)."""
        transport = client.get_transport()
        transport.set_keepalive(5)
        chan = transport.open_session(timeout=self.connect_timeout_s)
        chan.settimeout(min(0.1, self.interval_s / 2))
        chan.exec_command(nvidia_smi_command(self.interval_s, self.indices))
        expected = set(self.indices if self.indices is not None else (self.remote_indices or ()))
        stall_s = max(10 * self.interval_s, 5.0)  # no line for this long: a half-open connection
        buf = b""
        err = b""
        batch: list[Sample] = []
        got_lines = resumed = False
        last_data = time.monotonic()
        reason = "stopped"
        try:
            while not self._stop.is_set():
                try:
                    data = chan.recv(65536)
                except socket.timeout:
                    data = None
                except (OSError, EOFError, paramiko.SSHException) as exc:
                    reason = self._describe(exc)
                    break
                while chan.recv_stderr_ready():
                    err = (err + chan.recv_stderr(4096))[-4096:]
                if data == b"":
                    reason = self._ended(chan, err)
                    break
                if data is None:
                    self._emit_batch(batch)
                    batch = []
                    if time.monotonic() - last_data > stall_s:
                        reason = f"no data for {stall_s:g} s"
                        break
                    continue
                last_data = time.monotonic()
                buf += data
                *lines, buf = buf.split(b"\n")
                buf = buf[-65536:]  # a line never ends: keep memory bounded
                for raw in lines:
                    sample = self._parse(raw)
                    if sample is None:
                        continue
                    if not got_lines:
                        got_lines = True
                        if lost_at is not None:
                            resumed = True
                            self._warn(f"reconnected; samples resumed after a {time.monotonic() - lost_at:.1f} s gap")
                    if any(s.index == sample.index for s in batch):
                        self._emit_batch(batch)
                        batch = []
                    batch.append(sample)
                if expected and expected <= {s.index for s in batch}:
                    self._emit_batch(batch)
                    batch = []
        finally:
            chan.close()
        return reason, got_lines, resumed

    def _emit_batch(self, batch: list[Sample]) -> None:
        if batch and not self._stop.is_set():
            self._emit(batch)

    def _parse(self, raw: bytes) -> Optional[Sample]:
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            return None
        parsed = parse_nvidia_smi_line(line)
        if parsed is None:
            self._bad_lines += 1
            if self._bad_lines <= _MAX_BAD_LINE_WARNINGS:
                self._warn(f"unexpected nvidia-smi output: {line[:160]!r}")
            return None
        index, values = parsed
        if self.indices is not None and index not in self.indices:
            return None
        return Sample(source=self.source, index=index, at_ns=time.perf_counter_ns(), values=values)

    def _ended(self, chan: paramiko.Channel, err: bytes) -> str:
        """Why the stream ended: the remote command's exit status and last stderr line, or a
        closed connection. nvidia-smi missing is permanent: it ends the sampler."""
        deadline = time.monotonic() + 0.5
        while not chan.exit_status_ready() and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.01)
        detail = _last_line(err.decode("utf-8", "replace"))
        if chan.exit_status_ready():
            status = chan.recv_exit_status()
            if status == COMMAND_NOT_FOUND:
                raise TelemetryError("nvidia-smi not found on the remote host")
            return f"nvidia-smi exited with status {status}" + (f": {detail}" if detail else "")
        return "connection closed" + (f": {detail}" if detail else "")


def _load_private_key(path: str, secret: Optional[str]) -> paramiko.PKey:
    from_path = getattr(paramiko.PKey, "from_path", None)  # paramiko >= 3.2 detects the type
    if from_path is not None:
        return from_path(path, secret)
    last: Exception = paramiko.SSHException("unknown key type")
    for cls in (paramiko.RSAKey, paramiko.ECDSAKey, paramiko.Ed25519Key):
        try:
            return cls.from_private_key_file(path, secret)
        except paramiko.PasswordRequiredException:
            raise
        except paramiko.SSHException as exc:
            last = exc
    raise last


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""

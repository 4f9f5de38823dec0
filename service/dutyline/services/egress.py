"""Outbound HTTP to addresses that callers name (access request callbacks), made safe to send from the scheduler.

- Only public addresses: a host name is resolved when the connection is made and every address it resolves to must
  be public (not loopback, private, link-local, shared, multicast, reserved or unspecified, IPv4-mapped ones
  included), and the connection is made to the address that was checked, so a name cannot resolve to a public
  address for the check and to an internal one for the connection. Hosts named in DUTYLINE_CALLBACK_ALLOW are exempt.
- No redirects, no proxy or certificates from the environment, no kept-alive connections.
- One deadline for the whole exchange (connecting, sending, reading the answer's head): a receiver that answers
  one byte at a time cannot hold the sender longer than the deadline. The answer's body is never read.

httpx takes no network backend, so the transport replaces its connection pool with one that has ours: the one place
that knows httpx's `HTTPTransport._pool`.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is not one a callback may reach: anything but a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None:
            return internal(embedded)
    return not address.is_global or address.is_multicast


def literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host written as an address means, in every form the resolver accepts (`127.1`, `2130706433`,
    `0x7f000001`, `017700000001`, `[::1]`); None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if ":" in bare:
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def normal_host(host: str) -> str:
    """A host as the allow list names it: lower case, without the root's trailing dot."""
    return host.lower().rstrip(".")


class Refused(httpcore.ConnectError):
    """The host resolves to an address callbacks may not reach."""


class _Deadline(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def _left(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the callback's deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._left(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> Any:
        return _Deadline(self._stream.start_tls(ssl_context, server_hostname, self._left(timeout)), self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Guarded(httpcore.SyncBackend):
    def __init__(self, allowed: Iterable[str], deadline: float) -> None:
        self._allowed = frozenset(normal_host(h) for h in allowed)
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        deadline = time.monotonic() + self._deadline
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in found]
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        if normal_host(host) not in self._allowed:
            bad = sorted({str(a) for a in addresses if internal(a)})
            if bad:
                raise Refused(
                    f"{host} resolves to {bad[0]}, an internal address (allow it with DUTYLINE_CALLBACK_ALLOW)"
                )
        stream = super().connect_tcp(str(addresses[0]), port, timeout, local_address, socket_options)
        return _Deadline(stream, deadline)


class GuardedTransport(httpx.HTTPTransport):
    def __init__(self, allowed: Iterable[str], deadline: float) -> None:
        super().__init__(trust_env=False, limits=httpx.Limits(max_keepalive_connections=0))
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_keepalive_connections=0,
            network_backend=_Guarded(allowed, deadline),
        )


def client(allowed: Iterable[str], deadline: float) -> httpx.Client:
    """A client for callbacks: guarded as the module says, each exchange bounded by `deadline` seconds."""
    return httpx.Client(
        transport=GuardedTransport(allowed, deadline),
        timeout=deadline,
        follow_redirects=False,
        trust_env=False,
    )

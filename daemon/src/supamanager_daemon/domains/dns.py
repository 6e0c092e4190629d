"""A minimal DNS client (standard library, UDP): the A, AAAA and TXT records of one name, asked of
one server, the resolver the daemon is configured with (settings.dns_resolver) or the host's own.

Enough for the ownership check of a custom hostname; the resolver does the recursion (and follows
CNAMEs: the records of the type asked for are kept, whatever name they came under).
"""

from __future__ import annotations

import pathlib
import secrets
import socket
import struct

A, AAAA, TXT = 1, 28, 16
_NXDOMAIN = 3
_RESOLV_CONF = pathlib.Path("/etc/resolv.conf")


class DnsError(Exception):
    """The server did not answer, or answered with an error other than 'no such name'."""


def default_server(resolv_conf: pathlib.Path = _RESOLV_CONF) -> tuple[str, int]:
    """The host's first IPv4 nameserver (port 53)."""
    try:
        for line in resolv_conf.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver" and "." in fields[1]:
                return fields[1], 53
    except OSError:
        pass
    raise DnsError(f"no IPv4 nameserver in {resolv_conf}: set dns_resolver")


def parse_server(value: str) -> tuple[str, int]:
    """host:port (checked by the settings) -> (host, port); empty: the host's own resolver."""
    if not value:
        return default_server()
    host, port = value.rsplit(":", 1)
    return host, int(port)


def _encode_name(name: str) -> bytes:
    return b"".join(bytes([len(label)]) + label.encode("ascii") for label in name.split(".")) + b"\0"


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:  # a pointer ends the name
            return offset + 2
        if length == 0:
            return offset + 1
        offset += length + 1


def _rdata(rtype: int, rdata: bytes) -> str:
    if rtype == A:
        return socket.inet_ntop(socket.AF_INET, rdata)
    if rtype == AAAA:
        return socket.inet_ntop(socket.AF_INET6, rdata)
    # TXT: one or more <length><text> strings, joined (RFC 7208 3.3).
    parts, i = [], 0
    while i < len(rdata):
        parts.append(rdata[i + 1 : i + 1 + rdata[i]])
        i += 1 + rdata[i]
    return b"".join(parts).decode("utf-8", errors="replace")


def parse_answer(data: bytes, query_id: int, rtype: int) -> list[str]:
    """The records of type rtype in a response; [] for a name that does not exist."""
    if len(data) < 12:
        raise DnsError("short DNS response")
    answer_id, flags, questions, answers = struct.unpack("!HHHH", data[:8])
    if answer_id != query_id:
        raise DnsError("DNS response for another query")
    rcode = flags & 0x0F
    if rcode == _NXDOMAIN:
        return []
    if rcode:
        raise DnsError(f"DNS server answered with error code {rcode}")
    offset = 12
    for _ in range(questions):
        offset = _skip_name(data, offset) + 4
    found = []
    for _ in range(answers):
        offset = _skip_name(data, offset)
        kind, _class, _ttl, length = struct.unpack("!HHIH", data[offset : offset + 10])
        offset += 10
        if kind == rtype:
            found.append(_rdata(kind, data[offset : offset + length]))
        offset += length
    return found


def query(server: tuple[str, int], name: str, rtype: int, timeout: float = 3.0) -> list[str]:
    """Ask server for name's records of type rtype (blocking: call it in a thread)."""
    query_id = secrets.randbelow(65536)
    # Recursion desired; one question, class IN.
    packet = struct.pack("!HHHHHH", query_id, 0x0100, 1, 0, 0, 0) + _encode_name(name) + struct.pack("!HH", rtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(packet, server)
            data, _ = sock.recvfrom(65535)
        except OSError as exc:
            raise DnsError(f"DNS server {server[0]}:{server[1]} did not answer: {exc}") from None
    return parse_answer(data, query_id, rtype)

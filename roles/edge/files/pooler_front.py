# Copyright (c) SupaManager developers
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
# SPDX-License-Identifier: Apache-2.0
"""SupaManager's Postgres front: one TLS address for every project of a Docker host.

It listens on the session and the transaction port (5432 and 6543 by default), answers a client's
SSLRequest with 'S', completes TLS with the pooler host's certificate, reads the StartupMessage and
routes the connection by the suffix of its user name, `postgres.<ref>`, as the hosted pooler does:
it forwards the startup message unchanged to that project's own pooler (Supavisor, on loopback,
the port of the same mode) and then splices bytes both ways. The project's Supavisor checks the
tenant and the database checks the password: the front never sees a password.

Refused, each with a Postgres ErrorResponse the client prints: plain text (no SSLRequest), an
unknown or malformed ref, a mode the project has no port for. CancelRequests (sent in plain text by
libpq) are dropped: the front cannot tell which project a cancel key belongs to.

Usage: python3 pooler_front.py SETTINGS_JSON [--stamp STAMP]   (roles/edge runs it supervised or as
a systemd unit; STAMP, ignored here, names the script and settings it started with, so the role
can tell a process that runs older ones)
SETTINGS_JSON, written by the edge role (no secret):
  {"listen_address": "", "session_port": 5432, "transaction_port": 6543, "host": "<pooler host>",
   "routes": "<edge root>/pooler-routes.json", "certificate": "", "key": "", "storage": "<edge root>/data"}
With certificate and key empty, the certificate is the one Caddy keeps for <host> in its storage
(<storage>/certificates/<issuer>/<host>/<host>.crt, the full chain); both are read again when the
files change (renewals). The routes file ({"tenants": {"<ref>": {"session": "127.0.0.1:P",
"transaction": "127.0.0.1:Q"}}}) is kept by module edge_route and read again when it changes.
Needs Python 3.11 (asyncio's StreamWriter.start_tls) and nothing outside the standard library.
"""

import asyncio
import glob
import json
import os
import re
import signal
import ssl
import struct
import sys
import time

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608
MAX_STARTUP_BYTES = 10000
# A client that has not finished its startup in this time is dropped (no slot is held for it).
STARTUP_TIMEOUT = 30
UPSTREAM_TIMEOUT = 10
# The project role's ref (roles/project/tasks/validate.yml).
TENANT = re.compile(r"[a-z][a-z0-9-]{1,38}[a-z0-9]")
UPSTREAM = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:]+\]|[a-z0-9.-]+):(\d{1,5})")
MODES = ("session", "transaction")


class Refused(Exception):
    """A connection the front answers with an ErrorResponse and closes."""

    def __init__(self, message, code="08004"):
        super().__init__(message)
        self.code = code


def log(message):
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pooler-front: {message}\n")
    sys.stderr.flush()


def error_response(message, code):
    fields = b"".join(
        key + value.encode("utf-8", "replace") + b"\0"
        for key, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", code), (b"M", message))
    )
    fields += b"\0"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


def startup_parameters(packet):
    """The parameters of a StartupMessage (length, protocol, then name/value pairs)."""
    items = packet[8:].split(b"\0")
    if len(items) < 2 or items[-1] != b"" or items[-2] != b"" or len(items) % 2:
        raise Refused("malformed startup packet", "08P01")
    return {
        k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
        for k, v in zip(items[0:-2:2], items[1:-2:2], strict=True)
    }


def tenant_of(user):
    """`<role>.<ref>` -> ref, or None when the name carries no valid ref."""
    role, dot, tenant = user.rpartition(".")
    if not dot or not role or not TENANT.fullmatch(tenant):
        return None
    return tenant


class Routes:
    """The routes file, read again whenever it changes."""

    def __init__(self, path):
        self.path = path
        self._stamp = None
        self._tenants = {}

    def upstream(self, tenant, mode):
        try:
            stat = os.stat(self.path)
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp, self._tenants = None, {}
        if stamp is not None and stamp != self._stamp:
            with open(self.path) as handle:
                self._tenants = json.load(handle).get("tenants", {})
            self._stamp = stamp
        address = self._tenants.get(tenant, {}).get(mode)
        match = UPSTREAM.fullmatch(address) if isinstance(address, str) else None
        if not match:
            return None
        return match.group(1).strip("[]"), int(match.group(2))


class Certificate:
    """The TLS server context for the pooler host, built again when its files change."""

    def __init__(self, settings):
        self.certificate = settings.get("certificate") or ""
        self.key = settings.get("key") or ""
        self.storage = settings.get("storage") or ""
        self.host = settings["host"]
        self._stamp = None
        self._context = None

    def files(self):
        if self.certificate:
            return self.certificate, self.key
        # Caddy's storage: certificates/<issuer>/<host>/<host>.crt and .key; the newest issuer wins.
        found = glob.glob(os.path.join(glob.escape(self.storage), "certificates", "*", self.host, self.host + ".crt"))
        if not found:
            return None
        crt = max(found, key=os.path.getmtime)
        return crt, crt[: -len(".crt")] + ".key"

    def context(self):
        files = self.files()
        if files is None:
            return None
        try:
            stamp = tuple(os.stat(f).st_mtime_ns for f in files)
        except FileNotFoundError:
            return None
        if stamp != self._stamp:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(*files)
            self._context, self._stamp = context, stamp
            log(f"certificate loaded from {files[0]}")
        return self._context


async def read_packet(reader):
    head = await reader.readexactly(4)
    length = struct.unpack("!I", head)[0]
    if length < 8 or length > MAX_STARTUP_BYTES:
        raise Refused("malformed startup packet", "08P01")
    packet = head + await reader.readexactly(length - 4)
    return packet, struct.unpack("!I", packet[4:8])[0]


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, ssl.SSLError):
        pass
    finally:
        writer.close()


class Front:
    def __init__(self, settings):
        self.settings = settings
        self.routes = Routes(settings["routes"])
        self.certificate = Certificate(settings)

    async def startup(self, reader, writer, mode):
        """SSLRequest, TLS, StartupMessage: the startup packet and the project's pooler address."""
        packet, code = await read_packet(reader)
        if code == GSSENC_REQUEST:
            writer.write(b"N")
            await writer.drain()
            packet, code = await read_packet(reader)
        if code == CANCEL_REQUEST:
            return None, None
        if code != SSL_REQUEST:
            raise Refused(
                f"SSL is required: connect to {self.settings['host']} with sslmode=require or stricter", "28000"
            )
        context = self.certificate.context()
        if context is None:
            raise Refused(f"the pooler front has no certificate for {self.settings['host']} yet", "08006")
        writer.write(b"S")
        await writer.drain()
        await writer.start_tls(context)
        packet, code = await read_packet(reader)
        if code != PROTOCOL_3:
            raise Refused(f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}", "08P01")
        user = startup_parameters(packet).get("user", "")
        tenant = tenant_of(user)
        upstream = self.routes.upstream(tenant, mode) if tenant else None
        if upstream is None:
            # The hosted pooler's words, so clients and people recognise the case.
            raise Refused(f"Tenant or user not found: {user[:100]}", "XX000")
        return packet, (tenant, upstream)

    async def handle(self, reader, writer, mode):
        peer = writer.get_extra_info("peername")
        try:
            packet, target = await asyncio.wait_for(self.startup(reader, writer, mode), STARTUP_TIMEOUT)
            if packet is None:
                writer.close()
                return
            tenant, (host, port) = target
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(host, port), UPSTREAM_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise Refused(f"the pooler of project {tenant} does not answer", "08006") from exc
            log(f"{peer[0]}:{peer[1]} -> project {tenant} ({mode})")
            up_writer.write(packet)
            await up_writer.drain()
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except Refused as exc:
            log(f"{peer[0]}:{peer[1]} refused ({mode}): {exc}")
            try:
                writer.write(error_response(str(exc), exc.code))
                await writer.drain()
            except (ConnectionError, OSError, ssl.SSLError):
                pass
            writer.close()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, OSError, ssl.SSLError) as exc:
            log(f"{peer[0]}:{peer[1]} dropped ({mode}): {type(exc).__name__}")
            writer.close()

    async def serve(self):
        listen = self.settings.get("listen_address") or None
        servers = []
        for mode in MODES:
            port = self.settings[f"{mode}_port"]

            async def handler(reader, writer, mode=mode):
                await self.handle(reader, writer, mode)

            servers.append(await asyncio.start_server(handler, host=listen, port=port, reuse_address=True))
            log(f"{mode} mode on {listen or '*'}:{port} for {self.settings['host']}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for server in servers:
            server.close()
        log("stopped")


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--stamp"):
        sys.stderr.write("usage: pooler_front.py SETTINGS_JSON [--stamp STAMP]\n")
        return 2
    with open(argv[1]) as handle:
        settings = json.load(handle)
    asyncio.run(Front(settings).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Raw upstreams for the HTTP client tests: asyncio servers on 127.0.0.1 that write exact bytes.

    RawUpstream(answer)      every request read off a connection gets `answer(request)`: bytes
                             to write, then the connection is kept open (keep-alive) unless the
                             answer is a `Close(bytes)` (write, then close) or `Silent()` (write
                             nothing, keep the connection)
    upstream.url             http://127.0.0.1:<port>
    upstream.requests        every request head + body received, in order
    upstream.connections     how many connections were accepted

`client()` / `timeouts()` give an `HttpClient` and short timeouts for a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field

from apex_ai_proxy.http import HttpClient, Timeouts


@dataclass
class Close:
    data: bytes = b""


@dataclass
class Silent:
    pass


Answer = bytes | Close | Silent


@dataclass
class Received:
    head: bytes
    body: bytes

    @property
    def request_line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    def header(self, name: str) -> list[str]:
        found = []
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                found.append(value.strip().decode("latin-1"))
        return found


@dataclass
class RawUpstream:
    answer: Callable[[Received], Answer]
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, **kwargs) -> RawUpstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, **kwargs)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1)

    async def __aenter__(self) -> RawUpstream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                answer = self.answer(request)
                if isinstance(answer, Silent):
                    continue
                writer.write(answer.data if isinstance(answer, Close) else answer)
                await writer.drain()
                if isinstance(answer, Close):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return Received(head, body)


def client() -> HttpClient:
    return HttpClient()


def timeouts(total: float = 5.0, connect: float = 2.0, read: float = 2.0) -> Timeouts:
    return Timeouts(total, connect, read)


def ok(body: bytes = b"hello", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


# --- TLS: a throw-away CA and a server certificate -------------------------------------------


@dataclass
class Pki:
    ca_file: str
    cert_file: str
    key_file: str


def make_pki(folder) -> Pki:
    """A CA and a certificate for localhost, api.example.test and 127.0.0.1, signed by it."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "apex test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [
        x509.DNSName("localhost"),
        x509.DNSName("api.example.test"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = Pki(str(folder / "ca.pem"), str(folder / "cert.pem"), str(folder / "key.pem"))
    with open(paths.ca_file, "wb") as f:
        f.write(ca.public_bytes(pem))
    with open(paths.cert_file, "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(paths.key_file, "wb") as f:
        f.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    return paths


def server_tls(pki: Pki, sni_seen: list) -> ssl.SSLContext:
    """A server context that records the SNI each handshake carried (None without one)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    context.sni_callback = lambda sock, name, ctx: sni_seen.append(name)
    return context


# --- an egress proxy: CONNECT tunnels and absolute-form forwarding -----------------------------


@dataclass
class CountingProxy:
    """Every request head it received is kept in `heads`. Any host name is reached at
    127.0.0.1 (the test's loopback upstream), so nothing resolves or leaves the machine.
    `refuse` answers every request with that status instead."""

    refuse: int | None = None
    heads: list[Received] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0
    tasks: set = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> CountingProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()

    async def _serve(self, reader, writer) -> None:
        head = await read_request(reader)
        if head is None:
            writer.close()
            return
        self.heads.append(head)
        if self.refuse is not None:
            writer.write(b"HTTP/1.1 %d No\r\ncontent-length: 0\r\n\r\n" % self.refuse)
            writer.close()
            return
        method, target, _ = head.request_line.decode().split(" ")
        if method == "CONNECT":
            port = int(target.rsplit(":", 1)[1])
        else:
            from urllib.parse import urlsplit

            port = urlsplit(target).port or 80
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            up_writer.write(head.head + head.body)
        for a, b in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(_pipe(a, b))
            self.tasks.add(task)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()

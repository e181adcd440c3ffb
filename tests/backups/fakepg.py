"""A PostgreSQL server on a loopback port, as far as authentication goes: it speaks the real wire
protocol (SSLRequest with TLS, StartupMessage, the authentication exchange) to real clients
(pg_dump, pg_restore, psycopg) and records what each client sent.

- `cleartext` and `md5` ask for the password the way a hostile server (or anyone in between)
  would, record whatever bytes the client answers, and refuse the connection.
- `scram` checks a SCRAM-SHA-256 exchange (SCRAM-SHA-256-PLUS with tls-server-end-point channel
  binding over TLS) against a password it knows, then hands the session to a real, trust-auth
  PostgreSQL behind it (`upstream`) and relays bytes both ways: a real dump or restore with a
  real password, which the server only ever proves the client knows.

No Django here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import select
import socket
import ssl
import struct
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608
ITERATIONS = 4096


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost that is its own CA (usable as sslrootcert)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class Seen:
    """One client connection, as the server saw it."""

    tls: bool = False
    startup: dict[str, str] = field(default_factory=dict)
    asked: str = ""  # the authentication the server asked for
    answer: bytes = b""  # every byte the client sent after that request
    mechanism: str = ""  # the SASL mechanism the client chose
    authenticated: bool = False
    raw_startup: bytes = field(default=b"", repr=False)


def _message(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("!I", len(body) + 4) + body


def _auth(code: int, data: bytes = b"") -> bytes:
    return _message(b"R", struct.pack("!I", code) + data)


def _error(text: str, code: str = "28P01") -> bytes:
    fields = b"SFATAL\0VFATAL\0C" + code.encode() + b"\0M" + text.encode() + b"\0\0"
    return _message(b"E", fields)


def _read_exactly(sock, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the client closed the connection")
        data += chunk
    return data


def _read_message(sock) -> tuple[bytes, bytes]:
    kind = _read_exactly(sock, 1)
    (length,) = struct.unpack("!I", _read_exactly(sock, 4))
    return kind, _read_exactly(sock, length - 4)


def _read_rest(sock, timeout: float = 3.0) -> bytes:
    """Whatever the client still sends until it closes (or goes quiet)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (OSError, ssl.SSLError):
        pass
    return data


def _hmac(key: bytes, text: bytes) -> bytes:
    return hmac.new(key, text, hashlib.sha256).digest()


class FakePostgres:
    """`with FakePostgres("md5") as server:` then point a client at server.port."""

    def __init__(self, auth: str, *, password: str = "", tls: bool = False, upstream: tuple[str, int] | None = None):
        assert auth in ("cleartext", "md5", "scram")
        self.auth, self.password, self.upstream = auth, password, upstream
        self.seen: list[Seen] = []
        self._directory = tempfile.TemporaryDirectory(prefix="fakepg-")
        self.certificate: Path | None = None
        self._tls = None
        if tls:
            self.certificate, key = self_signed_certificate(Path(self._directory.name))
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(self.certificate, key)
            certificate = x509.load_pem_x509_certificate(self.certificate.read_bytes())
            # tls-server-end-point (RFC 5929): the hash of the server's certificate.
            self._end_point = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()

    def __enter__(self) -> FakePostgres:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        self._closed.set()
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=10)
        self._directory.cleanup()

    def sent_anything_after_the_request(self) -> bool:
        return any(seen.answer for seen in self.seen)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, client: socket.socket) -> None:
        seen = Seen()
        self.seen.append(seen)
        client.settimeout(30)
        try:
            client = self._startup(client, seen)
            if client is None:
                return
            if self.auth == "cleartext":
                seen.asked = "cleartext"
                client.sendall(_auth(3))
            elif self.auth == "md5":
                seen.asked = "md5"
                client.sendall(_auth(5, os.urandom(4)))
            else:
                self._scram(client, seen)
                return
            seen.answer = _read_rest(client)
            client.sendall(_error("the fake server refuses everyone"))
        except (OSError, ssl.SSLError, ConnectionError):
            pass
        finally:
            client.close()

    def _startup(self, client, seen: Seen):
        """Answer SSLRequest / GSSENCRequest, then read the StartupMessage (None: a cancel)."""
        while True:
            (length,) = struct.unpack("!I", _read_exactly(client, 4))
            body = _read_exactly(client, length - 4)
            (code,) = struct.unpack("!I", body[:4])
            if code == SSL_REQUEST and self._tls is not None and not seen.tls:
                client.sendall(b"S")
                client = self._tls.wrap_socket(client, server_side=True)
                seen.tls = True
            elif code in (SSL_REQUEST, GSSENC_REQUEST):
                client.sendall(b"N")
            elif code == CANCEL_REQUEST:
                return None
            else:
                assert code == PROTOCOL_3, f"unexpected protocol {code}"
                parts = body[4:].split(b"\0")
                seen.startup = {
                    parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts) - 1, 2) if parts[i]
                }
                seen.raw_startup = struct.pack("!I", length) + body
                return client

    def _scram(self, client, seen: Seen) -> None:
        seen.asked = "scram"
        mechanisms = (b"SCRAM-SHA-256-PLUS\0" if seen.tls else b"") + b"SCRAM-SHA-256\0\0"
        client.sendall(_auth(10, mechanisms))
        kind, body = _read_message(client)
        assert kind == b"p", kind
        mechanism, _, rest = body.partition(b"\0")
        seen.mechanism = mechanism.decode()
        (size,) = struct.unpack("!i", rest[:4])
        client_first = rest[4 : 4 + size].decode()
        flag, authzid, bare = client_first.split(",", 2)
        header = f"{flag},{authzid},"
        client_nonce = dict(item.split("=", 1) for item in bare.split(","))["r"]
        salt = os.urandom(16)
        nonce = client_nonce + base64.b64encode(os.urandom(18)).decode()
        server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i={ITERATIONS}"
        client.sendall(_auth(11, server_first.encode()))

        kind, body = _read_message(client)
        client_final = body.decode()
        without_proof, _, proof = client_final.rpartition(",p=")
        attributes = dict(item.split("=", 1) for item in without_proof.split(","))
        binding = header.encode() + (self._end_point if flag.startswith("p=") else b"")
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, ITERATIONS)
        client_key = _hmac(salted, b"Client Key")
        stored_key = hashlib.sha256(client_key).digest()
        auth_message = f"{bare},{server_first},{without_proof}".encode()
        signature = _hmac(stored_key, auth_message)
        recovered = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
        if (
            attributes.get("r") != nonce
            or base64.b64decode(attributes.get("c", "")) != binding
            or hashlib.sha256(recovered).digest() != stored_key
        ):
            client.sendall(_error(f'password authentication failed for user "{seen.startup.get("user")}"'))
            return
        seen.authenticated = True
        server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        client.sendall(_auth(12, b"v=" + base64.b64encode(server_signature)))
        if self.upstream is None:
            client.sendall(_auth(0) + _error("the fake server authenticated you and has no database", "08006"))
            return
        with socket.create_connection(self.upstream, timeout=30) as backend:
            backend.sendall(seen.raw_startup)  # the real server trusts us: it answers AuthenticationOk
            _relay(client, backend)


def _relay(client, backend) -> None:
    """Bytes both ways until either side closes."""
    client.settimeout(None)
    backend.settimeout(None)
    while True:
        pending = isinstance(client, ssl.SSLSocket) and client.pending()
        readable = [client] if pending else select.select([client, backend], [], [], 120)[0]
        if not readable:
            return
        for source in readable:
            data = source.recv(65536)
            if not data:
                return
            (backend if source is client else client).sendall(data)

"""TLS for the target: a cached self-signed certificate and the server-side ``SSLContext``."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile

from gevent import ssl as gssl

CERT_NAME = "cert.pem"
KEY_NAME = "key.pem"


def cert_dir() -> str:
    """Where the self-signed certificate is cached (per user, in the system temp dir)."""
    return os.path.join(tempfile.gettempdir(), f"loadgen-target-tls-{os.getuid()}")


def self_signed_cert() -> tuple[str, str]:
    """Return ``(certfile, keyfile)`` of a cached EC P-256 self-signed cert for 127.0.0.1 and localhost.

    Generated on first use into a fresh directory that is renamed into place, so concurrent
    processes never see a half-written pair. The certificate is also its own CA file for clients.
    """
    final = cert_dir()
    paths = (os.path.join(final, CERT_NAME), os.path.join(final, KEY_NAME))
    if all(os.path.exists(p) for p in paths):
        return paths
    staging = tempfile.mkdtemp(prefix="loadgen-target-tls-", dir=os.path.dirname(final))
    try:
        cert_pem, key_pem = _generate()
        with open(os.path.join(staging, CERT_NAME), "wb") as f:
            f.write(cert_pem)
        fd = os.open(os.path.join(staging, KEY_NAME), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        try:
            os.rename(staging, final)  # atomic; fails if another process won the race
        except OSError:
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return paths


def _generate() -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loadgen target")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(certfile: str | None = None, keyfile: str | None = None) -> ssl.SSLContext:
    """A server ``SSLContext`` (gevent-cooperative) with session tickets and a session-id cache.

    Create it once, before forking: processes that share it share the ticket keys, so a ticket
    issued by one process resumes in another.
    """
    if certfile is None:
        certfile, keyfile = self_signed_cert()
    ctx = gssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(certfile, keyfile)
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.options &= ~ssl.OP_NO_TICKET
    # A client that closes without close_notify must not count as a fatal error: OpenSSL 3 would drop
    # the session from the session-id cache, breaking TLS 1.2 resumption for ticket-less clients.
    ctx.options |= getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    return ctx

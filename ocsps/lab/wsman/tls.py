"""A throw-away self-signed certificate for the https listener, and the channel binding NTLM checks."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import shutil
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from spnego.channel_bindings import GssChannelBindings


@dataclass
class TlsMaterial:
    """A server TLS context, the certificate's PEM path (for the client to trust) and its channel binding."""

    context: ssl.SSLContext
    cert_path: str
    channel_bindings: GssChannelBindings
    directory: str

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def self_signed(names: Sequence[str], address: str) -> TlsMaterial:
    """Certificate for every simulated server name, ``localhost`` and the bound IP, valid for two days."""
    key = ec.generate_private_key(ec.SECP256R1())
    common_name = names[0] if names else "ocsps-lab"
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alt_names.append(x509.DNSName("localhost"))
    alt_names.append(x509.IPAddress(ipaddress.ip_address(address)))
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tempfile.mkdtemp(prefix="ocsps-lab-tls-")
    try:
        cert_path = os.path.join(directory, "cert.pem")
        key_path = os.path.join(directory, "key.pem")
        with open(cert_path, "wb") as fh:
            fh.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
            fh.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        # RFC 5929 tls-server-end-point: what pypsrp binds NTLM to over https.
        digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
        bindings = GssChannelBindings(application_data=b"tls-server-end-point:" + digest)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return TlsMaterial(context=context, cert_path=cert_path, channel_bindings=bindings, directory=directory)

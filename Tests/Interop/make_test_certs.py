#!/usr/bin/env python3
"""Throw-away X.509-SVIDs for interop self-checks, in the layout of `ah debug dev-certs`.

    make_test_certs.py --out DIR [--trust-domain TD] [--id SPIFFE_ID]... [--expired ID]

Writes DIR/ca.pem, DIR/ca-key.pem and, for every ID, DIR/<last-path-segment>.pem and
DIR/<last-path-segment>-key.pem (ECDSA P-256; each leaf has an empty subject and exactly
one, critical, URI SAN). Defaults: spiffe://example.org/ah/serve and
spiffe://example.org/ah/agent/dev. Keys are written 0600; never commit them.

This exists so the interop scripts and the gtls half of bench/quic-throughput can be
checked without a built `ah`; the Swift tests use `ah debug dev-certs` itself.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _write(path: str, data: bytes, private: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    fd = os.open(path, flags, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fp:
        fp.write(data)


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make(out: str, trust_domain: str, ids: list[str], expired: set[str]) -> None:
    os.makedirs(out, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ah test"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"ah test CA {trust_domain}")])
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectAlternativeName(
              [x509.UniformResourceIdentifier(f"spiffe://{trust_domain}")]), critical=False)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    _write(os.path.join(out, "ca.pem"), ca.public_bytes(serialization.Encoding.PEM))
    _write(os.path.join(out, "ca-key.pem"), _key_pem(ca_key), private=True)

    for spiffe_id in ids:
        name = spiffe_id.rstrip("/").rsplit("/", 1)[-1]
        key = ec.generate_private_key(ec.SECP256R1())
        if spiffe_id in expired:
            not_before, not_after = now - datetime.timedelta(days=3), now - datetime.timedelta(days=1)
        else:
            not_before, not_after = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([])).issuer_name(ca_name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(not_before).not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False,
                                             crl_sign=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False,
                                             key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]),
                               critical=False)
                .add_extension(x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(spiffe_id)]), critical=True)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write(os.path.join(out, f"{name}.pem"), cert.public_bytes(serialization.Encoding.PEM))
        _write(os.path.join(out, f"{name}-key.pem"), _key_pem(key), private=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--trust-domain", default="example.org")
    parser.add_argument("--id", action="append", dest="ids")
    parser.add_argument("--expired", action="append", default=[],
                        help="issue this ID (also listed with --id) already expired")
    args = parser.parse_args()
    td = args.trust_domain
    ids = args.ids or [f"spiffe://{td}/ah/serve", f"spiffe://{td}/ah/agent/dev"]
    make(args.out, td, ids, set(args.expired))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Keys and hand-made JWTs: honest ones, and every forgery the security tests need.

Tokens are assembled byte by byte (not through a JOSE library) so a test can put
anything in the header, sign with any key or algorithm, or not sign at all.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

Signer = Callable[[bytes], bytes]


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class RsaKey:
    """An RSA signing key with its key id."""

    kid: str
    private: rsa.RSAPrivateKey

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK, as a provider publishes it."""
        numbers = self.private.public_key().public_numbers()
        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": _int_b64(numbers.n), "e": "AQAB"}

    def public_pem(self) -> bytes:
        """The public key in PEM, the classic HS256 key-confusion secret."""
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def signer(self, alg: str = "RS256") -> Signer:
        """Sign with this key using RS256/384/512 or PS256."""
        digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
        if alg.startswith("PS"):
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            return lambda data: self.private.sign(data, pss, digest)
        return lambda data: self.private.sign(data, padding.PKCS1v15(), digest)


@functools.cache
def rsa_key(kid: str) -> RsaKey:
    """A 2048-bit RSA key, generated once per test session for each kid."""
    return RsaKey(kid=kid, private=rsa.generate_private_key(public_exponent=65537, key_size=2048))


@functools.cache
def ec_private_key() -> ec.EllipticCurvePrivateKey:
    """A P-256 key, for tokens signed with an algorithm the provider does not use."""
    return ec.generate_private_key(ec.SECP256R1())


def ec_public_jwk(kid: str) -> dict[str, Any]:
    """The P-256 public key as a JWK."""
    numbers = ec_private_key().public_key().public_numbers()
    return {
        "kty": "EC",
        "kid": kid,
        "use": "sig",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }


def es256_signer() -> Signer:
    """ES256 with the P-256 key (raw r||s signature, as JWS wants)."""

    def sign(data: bytes) -> bytes:
        r, s = decode_dss_signature(ec_private_key().sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return sign


def hmac_signer(secret: bytes) -> Signer:
    """HS256 with the given secret."""
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def no_signature(_data: bytes) -> bytes:
    """An unsigned token (`alg: none`)."""
    return b""


def compact(header: dict[str, Any], claims: dict[str, Any], sign: Signer) -> str:
    """Assemble a compact JWS from any header and claims, signed by `sign`."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def corrupt_signature(token: str) -> str:
    """Flip bits in the middle of the signature, keeping it well-formed base64url."""
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0xFF
    return f"{head}.{payload}.{b64url(bytes(raw))}"

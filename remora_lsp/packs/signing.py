"""Ed25519 keys and manifest signatures: generate a key pair, sign a manifest, check a signature.

A signature covers :func:`~remora_lsp.packs.manifest.canonical_manifest_bytes`, which pins every
file's sha256, so one 64-byte signature vouches for the whole pack. Key files:

* private key (``KEYFILE``): PKCS#8 PEM, unencrypted, created with mode 0600;
* public key (``KEYFILE.pub``): SubjectPublicKeyInfo PEM.

Readers also accept a key given as one line of standard base64 holding the raw 32 key bytes.
A key's id is the first 16 hex digits of the sha256 of its raw 32-byte public key. Which keys
are trusted is :mod:`remora_lsp.packs.trust`'s business; :func:`verify_manifest_signature` asks it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from remora_lsp.errors import SignatureError
from remora_lsp.packs.manifest import Manifest, Signature, canonical_manifest_bytes

__all__ = [
    "KEY_ID_HEX",
    "SIGNATURE_ALGORITHM",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
    "parse_public_key",
    "public_key_bytes",
    "public_key_pem",
    "sign_manifest",
    "signature_matches",
    "verify_manifest_signature",
]

SIGNATURE_ALGORITHM = "ed25519"
KEY_ID_HEX = 16
_MAX_KEY_FILE = 64 * 1024


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    """The raw 32 bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(key: Ed25519PublicKey) -> bytes:
    """A public key as SubjectPublicKeyInfo PEM (the ``.pub`` file format)."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Ed25519PublicKey | bytes) -> str:
    """First 16 hex digits of sha256(raw 32-byte public key)."""
    raw = key if isinstance(key, bytes) else public_key_bytes(key)
    return hashlib.sha256(raw).hexdigest()[:KEY_ID_HEX]


def _read_key_file(path: Path, kind: str) -> bytes:
    try:
        if path.stat().st_size > _MAX_KEY_FILE:
            raise SignatureError(f"{path}: too large for a {kind} key file")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SignatureError(f"{path}: no such {kind} key file") from exc
    except OSError as exc:
        raise SignatureError(f"{path}: cannot read {kind} key file: {exc}") from exc


def _raw_base64(data: bytes) -> bytes | None:
    text = data.strip()
    if b"\n" in text:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def parse_public_key(data: bytes, *, source: str = "public key") -> Ed25519PublicKey:
    """A public key from PEM (SubjectPublicKeyInfo) or one line of base64 of the raw bytes."""
    raw = _raw_base64(data)
    if raw is not None:
        try:
            return Ed25519PublicKey.from_public_bytes(raw)
        except ValueError as exc:
            raise SignatureError(f"{source}: not a valid ed25519 public key") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SignatureError(
            f"{source}: not an ed25519 public key (expected PEM or one line of base64)"
        ) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"{source}: is a {type(key).__name__}, not an ed25519 public key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a ``.pub`` file (PEM or raw base64)."""
    return parse_public_key(_read_key_file(path, "public"), source=str(path))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """Read a private key file (PKCS#8 PEM, unencrypted, or raw base64 of the 32-byte seed)."""
    data = _read_key_file(path, "private")
    raw = _raw_base64(data)
    if raw is not None:
        return Ed25519PrivateKey.from_private_bytes(raw)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise SignatureError(
            f"{path}: the private key is encrypted; use an unencrypted key"
        ) from exc
    except ValueError as exc:
        raise SignatureError(
            f"{path}: not an ed25519 private key (expected PKCS#8 PEM from `remora key generate`)"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: is a {type(key).__name__}, not an ed25519 private key")
    return key


def generate_keypair(key_path: Path, *, overwrite: bool = False) -> str:
    """Write a new private key to ``key_path`` (0600) and its public key to ``key_path.pub``.

    Returns the key id. Refuses to replace existing files unless ``overwrite``.
    """
    pub_path = Path(f"{key_path}.pub")
    if not overwrite:
        for path in (key_path, pub_path):
            if path.exists():
                raise SignatureError(f"{path} already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = key_path.with_name(f".{key_path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, key_path)
    public = key.public_key()
    pub_tmp = pub_path.with_name(f".{pub_path.name}.{os.getpid()}.tmp")
    pub_tmp.write_bytes(public_key_pem(public))
    os.replace(pub_tmp, pub_path)
    return key_id(public)


def sign_manifest(manifest: Manifest, key: Ed25519PrivateKey | Path) -> Manifest:
    """A copy of ``manifest`` carrying an ed25519 signature by ``key`` (replacing any old one)."""
    private = load_private_key(key) if isinstance(key, Path) else key
    value = private.sign(canonical_manifest_bytes(manifest))
    signature = Signature(
        algorithm=SIGNATURE_ALGORITHM,
        key_id=key_id(private.public_key()),
        value=base64.b64encode(value).decode("ascii"),
    )
    return manifest.model_copy(update={"signature": signature})


def _signature_bytes(manifest: Manifest) -> bytes:
    signature = manifest.signature
    if signature is None:
        raise SignatureError(f"{manifest.key} is unsigned")
    try:
        value = base64.b64decode(signature.value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(
            f"{manifest.key}: malformed signature: `signature.value` is not base64"
        ) from exc
    if len(value) != 64:
        raise SignatureError(
            f"{manifest.key}: malformed signature: `signature.value` holds {len(value)} bytes, "
            "an ed25519 signature has 64"
        )
    if len(signature.key_id) != KEY_ID_HEX:
        raise SignatureError(
            f"{manifest.key}: malformed signature: key id {signature.key_id!r} must be "
            f"{KEY_ID_HEX} hex digits"
        )
    return value


def signature_matches(manifest: Manifest, key: Ed25519PublicKey) -> bool:
    """Whether the manifest's signature was made by ``key`` over its canonical bytes."""
    value = _signature_bytes(manifest)
    try:
        key.verify(value, canonical_manifest_bytes(manifest))
    except InvalidSignature:
        return False
    return True


def verify_manifest_signature(manifest: Manifest, trust_dir: Path) -> str:
    """Check the signature against the trusted keys; return the trusted key's name.

    Raises SignatureError saying which of these it is: unsigned, malformed signature, signed
    by a key that is not trusted, or a signature that does not match (tampered manifest).
    """
    from remora_lsp.packs.trust import find_trusted_keys

    _signature_bytes(manifest)
    assert manifest.signature is not None
    wanted = manifest.signature.key_id
    candidates = find_trusted_keys(trust_dir, wanted)
    if not candidates:
        raise SignatureError(
            f"{manifest.key} is signed by untrusted key {wanted}; if you trust its publisher, "
            "run `remora trust add THEIR_KEY.pub`"
        )
    for trusted in candidates:
        if signature_matches(manifest, Ed25519PublicKey.from_public_bytes(trusted.public_key)):
            return trusted.name
    raise SignatureError(
        f"{manifest.key}: bad signature: it does not match the manifest for trusted key "
        f"{wanted} ({candidates[0].name}); the pack was modified after signing"
    )

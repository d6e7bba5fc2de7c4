"""Keys, signatures and the trust store."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from remora_lsp.errors import SignatureError, StoreError
from remora_lsp.packs import signing, trust
from remora_lsp.packs.manifest import Manifest, Signature

from .factory import good_files, manifest_data


def _manifest() -> Manifest:
    return Manifest.model_validate(manifest_data(good_files()))


def test_generate_keypair_files_and_key_id(tmp_path: Path) -> None:
    key_file = tmp_path / "k"
    kid = signing.generate_keypair(key_file)
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert key_file.stat().st_mode & 0o777 == 0o600
    public = signing.load_public_key(Path(f"{key_file}.pub"))
    raw = signing.public_key_bytes(public)
    assert kid == hashlib.sha256(raw).hexdigest()[:16] == signing.key_id(public)
    with pytest.raises(SignatureError, match="already exists"):
        signing.generate_keypair(key_file)
    assert signing.generate_keypair(key_file, overwrite=True) != kid


def test_raw_base64_keys_are_accepted(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    (tmp_path / "k").write_text(base64.b64encode(seed).decode() + "\n")
    raw_pub = private.public_key().public_bytes_raw()
    (tmp_path / "k.pub").write_text(base64.b64encode(raw_pub).decode())
    loaded = signing.load_private_key(tmp_path / "k")
    assert signing.key_id(loaded.public_key()) == signing.key_id(
        signing.load_public_key(tmp_path / "k.pub")
    )


def test_wrong_key_kinds_are_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    rsa_like = ec.generate_private_key(ec.SECP256R1())
    pem = rsa_like.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "ec.pub").write_bytes(pem)
    with pytest.raises(SignatureError, match="not an ed25519 public key"):
        signing.load_public_key(tmp_path / "ec.pub")
    (tmp_path / "junk").write_text("hello")
    with pytest.raises(SignatureError, match="not an ed25519 private key"):
        signing.load_private_key(tmp_path / "junk")
    with pytest.raises(SignatureError, match="no such private key file"):
        signing.load_private_key(tmp_path / "absent")


def test_verify_distinguishes_the_failures(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    pub = tmp_path / "pub.pem"
    pub.write_bytes(signing.public_key_pem(key.public_key()))
    trust_dir = tmp_path / "trust"
    trust.add_trusted_key(trust_dir, pub, name="alice")
    signed = signing.sign_manifest(_manifest(), key)
    assert signing.verify_manifest_signature(signed, trust_dir) == "alice"

    with pytest.raises(SignatureError, match="is unsigned"):
        signing.verify_manifest_signature(_manifest(), trust_dir)
    assert signed.signature is not None
    forged = signed.model_copy(update={"description": "changed"})
    with pytest.raises(SignatureError, match=r"bad signature: .* modified after signing"):
        signing.verify_manifest_signature(forged, trust_dir)
    stranger = signing.sign_manifest(_manifest(), Ed25519PrivateKey.generate())
    with pytest.raises(SignatureError, match="signed by untrusted key"):
        signing.verify_manifest_signature(stranger, trust_dir)
    for value, message in [("@@@@", "not base64"), (base64.b64encode(b"x" * 10).decode(), "10")]:
        bad = signed.model_copy(
            update={
                "signature": Signature(
                    algorithm="ed25519", key_id=signed.signature.key_id, value=value
                )
            }
        )
        with pytest.raises(SignatureError, match=f"malformed signature: .*{message}"):
            signing.verify_manifest_signature(bad, trust_dir)


def test_trust_store_add_list_remove(tmp_path: Path) -> None:
    trust_dir = tmp_path / "trust"
    signing.generate_keypair(tmp_path / "alice.key")
    signing.generate_keypair(tmp_path / "bob.key")
    alice = trust.add_trusted_key(trust_dir, tmp_path / "alice.key.pub")
    assert alice.name == "alice" and alice.path == trust_dir / "alice.pub"
    assert trust.add_trusted_key(trust_dir, tmp_path / "alice.key.pub") == alice  # idempotent
    with pytest.raises(StoreError, match="already trusted as 'alice'"):
        trust.add_trusted_key(trust_dir, tmp_path / "alice.key.pub", name="again")
    with pytest.raises(StoreError, match="the name 'alice' is taken"):
        trust.add_trusted_key(trust_dir, tmp_path / "bob.key.pub", name="alice")
    with pytest.raises(StoreError, match=r"trust name '\.\./x' is invalid"):
        trust.add_trusted_key(trust_dir, tmp_path / "bob.key.pub", name="../x")
    bob = trust.add_trusted_key(trust_dir, tmp_path / "bob.key.pub", name="bob")
    (trust_dir / "broken.pub").write_text("garbage")
    assert [k.name for k in trust.list_trusted_keys(trust_dir)] == ["alice", "bob"]
    assert trust.remove_trusted_key(trust_dir, bob.key_id).name == "bob"
    assert trust.remove_trusted_key(trust_dir, "alice") == alice
    with pytest.raises(StoreError, match="no trusted key is named"):
        trust.remove_trusted_key(trust_dir, "alice")
    assert trust.list_trusted_keys(tmp_path / "absent") == []

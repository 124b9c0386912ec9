"""The local artifact store: content addressing, immutability, verification on fetch."""

from __future__ import annotations

import os

import pytest

from featurestore.errors import ArtifactError, ConfigError, IntegrityError, ModelError
from featurestore.models import LocalArtifactStore, artifact_store


def _folder(root, files):
    root.mkdir(parents=True)
    for rel, body in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(body)
    return root


def _objects(store):
    return sorted(p for p in (store.root / "objects").rglob("*") if p.is_file())


def test_fetch_gives_back_every_file_with_its_content(tmp_path, local_store):
    files = {"model.bin": b"\x00\x01weights", "files/vocab.txt": b"a\nb\n", "meta.json": b"{}"}
    digest = local_store.put(_folder(tmp_path / "m", files))
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    fetched = local_store.fetch(digest, label="model fraud version 1")
    got = {p.relative_to(fetched).as_posix(): p.read_bytes() for p in fetched.rglob("*") if p.is_file()}
    assert got == files


def test_same_content_gives_same_digest_and_no_new_objects(tmp_path, local_store):
    first = local_store.put(_folder(tmp_path / "a", {"x": b"1", "y/z": b"2"}))
    count = len(_objects(local_store))
    assert local_store.put(_folder(tmp_path / "b", {"x": b"1", "y/z": b"2"})) == first
    assert len(_objects(local_store)) == count
    # A different path or content is a different artifact.
    assert local_store.put(_folder(tmp_path / "c", {"x": b"1", "y/w": b"2"})) != first
    assert local_store.put(_folder(tmp_path / "d", {"x": b"1", "y/z": b"3"})) != first


def test_an_existing_object_is_never_overwritten(tmp_path, local_store):
    local_store.put(_folder(tmp_path / "a", {"x": b"same"}))
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in _objects(local_store)}
    local_store.put(_folder(tmp_path / "b", {"x": b"same"}))
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in _objects(local_store)} == before


def test_put_leaves_no_temporary_files(tmp_path, local_store):
    digest = local_store.put(_folder(tmp_path / "a", {"x": b"1", "y": b"2"}))
    local_store.fetch(digest, label="model m version 1")
    leftovers = [p for p in local_store.root.rglob(".*")]
    assert leftovers == []


def test_a_changed_object_is_refused_naming_the_label_and_file(tmp_path, local_store):
    digest = local_store.put(_folder(tmp_path / "a", {"model.txt": b"tree 1", "other": b"ok"}))
    local_store.fetch(digest, label="model fraud version 3")  # a checkout exists already
    (obj,) = [p for p in _objects(local_store) if p.read_bytes() == b"tree 1"]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"tree 2")
    with pytest.raises(ArtifactError, match=r"model fraud version 3: file 'model.txt' changed") as caught:
        local_store.fetch(digest, label="model fraud version 3")
    # A model error, and the same kind of error as a changed saved-dataset file.
    assert isinstance(caught.value, ModelError) and isinstance(caught.value, IntegrityError)


def test_a_replaced_checkout_file_is_rebuilt_from_its_object(tmp_path, local_store):
    digest = local_store.put(_folder(tmp_path / "a", {"model.txt": b"tree 1"}))
    folder = local_store.fetch(digest, label="model m version 1")
    (folder / "model.txt").unlink()
    (folder / "model.txt").write_bytes(b"evil")  # a new file, not the stored object
    (folder / "extra.py").write_bytes(b"import os")
    again = local_store.fetch(digest, label="model m version 1")
    assert (again / "model.txt").read_bytes() == b"tree 1"
    assert not (again / "extra.py").exists()


def test_a_missing_object_is_refused_naming_the_label_and_file(tmp_path, local_store):
    digest = local_store.put(_folder(tmp_path / "a", {"weights.bin": b"w"}))
    local_store.fetch(digest, label="model fraud version 2")
    (obj,) = [p for p in _objects(local_store) if p.read_bytes() == b"w"]
    obj.unlink()
    with pytest.raises(ArtifactError, match=r"model fraud version 2: file 'weights.bin' is missing"):
        local_store.fetch(digest, label="model fraud version 2")


def test_an_unknown_or_malformed_digest_is_refused(local_store):
    with pytest.raises(ArtifactError, match="model x version 1: artifact sha256:0+ is missing"):
        local_store.fetch("sha256:" + "0" * 64, label="model x version 1")
    with pytest.raises(ArtifactError, match="not an artifact digest"):
        local_store.fetch("md5:abc", label="model x version 1")


def test_a_tampered_manifest_is_refused(tmp_path, local_store):
    digest = local_store.put(_folder(tmp_path / "a", {"x": b"1"}))
    hexdigest = digest.split(":")[1]
    manifest = local_store.root / "objects" / hexdigest[:2] / hexdigest[2:]  # the documented layout
    os.chmod(manifest, 0o644)
    manifest.write_text('{"x": "' + "0" * 64 + '"}')
    with pytest.raises(ArtifactError, match="model m version 4: the manifest .* changed"):
        local_store.fetch(digest, label="model m version 4")


def test_factory_takes_a_folder_and_refuses_other_schemes(tmp_path):
    store = artifact_store(tmp_path / "arts")
    assert isinstance(store, LocalArtifactStore) and store.root == tmp_path / "arts"
    assert artifact_store(f"file://{tmp_path}/arts").root == tmp_path / "arts"
    with pytest.raises(ConfigError, match="s3:// scheme is not supported"):
        artifact_store("s3://bucket/models")

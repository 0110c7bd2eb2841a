"""The adapter refuses a build context over $KCE_MAX_CONTEXT_BYTES (the build service's size limit) before the
engine is asked for anything."""
import pytest
from repo2docker.engine import BuildError

import repo2docker_kce


def test_a_directory_over_the_limit_is_refused(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "blob").write_bytes(b"x" * 3000)
    (tmp_path / "Dockerfile").write_bytes(b"FROM scratch\n")
    monkeypatch.setenv("KCE_MAX_CONTEXT_BYTES", "2000")
    with pytest.raises(BuildError, match=r"3013 bytes, larger than the limit of 2000 bytes"):
        repo2docker_kce._check_context_size(str(tmp_path))


def test_a_tar_over_the_limit_is_refused_one_within_is_not(tmp_path, monkeypatch):
    tar = tmp_path / "context.tar"
    tar.write_bytes(b"\0" * 10240)
    monkeypatch.setenv("KCE_MAX_CONTEXT_BYTES", "10239")
    with pytest.raises(BuildError, match="larger than the limit"):
        repo2docker_kce._check_context_size(str(tar))
    monkeypatch.setenv("KCE_MAX_CONTEXT_BYTES", "10240")
    repo2docker_kce._check_context_size(str(tar))


def test_no_limit_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("KCE_MAX_CONTEXT_BYTES", raising=False)
    (tmp_path / "blob").write_bytes(b"x" * 100_000)
    repo2docker_kce._check_context_size(str(tmp_path))


def test_build_refuses_before_starting_the_engine(tmp_path, monkeypatch):
    (tmp_path / "blob").write_bytes(b"x" * 5000)
    monkeypatch.setenv("KCE_MAX_CONTEXT_BYTES", "100")
    engine = repo2docker_kce.KubernetesEngine(parent=None)
    monkeypatch.setattr(engine, "_rpc", lambda: pytest.fail("the engine was started"))
    with pytest.raises(BuildError, match="larger than the limit"):
        list(engine.build(path=str(tmp_path), tag="x"))

"""deploy/: the production compose file parses and only sets settings the application knows."""

from __future__ import annotations

from pathlib import Path

import yaml

from archive.settings import Settings

DEPLOY = Path(__file__).parents[1] / "deploy"


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_has_the_production_services() -> None:
    """Given deploy/compose.yaml, when it is parsed, then it has the production services, the worker runs `archive
    worker`, and the API waits for the migration to complete."""
    services = _compose()["services"]
    assert {"postgres", "minio", "elasticsearch", "migrate", "api", "worker"} <= set(services)
    assert services["worker"]["command"] == ["archive", "worker"]
    assert services["api"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_sets_only_known_settings_and_production_backends() -> None:
    """Given deploy/compose.yaml, when its archive environment is read, then every variable is a known setting, and
    it uses PostgreSQL, S3 (or replicated) storage and Elasticsearch."""
    env = _compose()["x-archive-env"]
    known = {f"ARCHIVE_{name.upper()}" for name in Settings.model_fields}
    assert set(env) - known == set()
    assert env["ARCHIVE_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["ARCHIVE_STORAGE"] in {"s3", "replicated"}
    assert env["ARCHIVE_INDEX"] == "elasticsearch"


def test_elasticsearch_server_matches_the_client_major_version() -> None:
    """Given the compose file's Elasticsearch image, when its version is compared with the installed client, then the
    major versions match."""
    from importlib.metadata import version

    image = _compose()["services"]["elasticsearch"]["image"]
    assert image.rsplit(":", 1)[1].split(".")[0] == version("elasticsearch").split(".")[0]


def test_dockerfile_installs_every_top_level_package() -> None:
    """Given deploy/Dockerfile, when it is read, then it copies each of archive, storage, signing and search."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    for package in ("archive", "storage", "signing", "search"):
        assert f"COPY {package} ./{package}" in text

"""Build the configured search index from the settings object (ARCHIVE_INDEX and friends)."""

from __future__ import annotations

from archive.settings import Settings
from search.base import SearchIndex


def build_index(settings: Settings, **kwargs: object) -> SearchIndex:
    """embedded: tantivy under ``index_dir``; elasticsearch: the ``es_*`` settings."""
    if settings.index == "embedded":
        from search.embedded import EmbeddedIndex

        return EmbeddedIndex(settings.index_dir, **kwargs)  # type: ignore[arg-type]
    from search.elasticsearch import ElasticsearchIndex

    return ElasticsearchIndex(
        settings.es_url, prefix=settings.es_index_prefix, username=settings.es_username,
        password=settings.es_password, ca_file=str(settings.es_ca_file) if settings.es_ca_file else None,
        **kwargs,  # type: ignore[arg-type]
    )

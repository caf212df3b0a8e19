"""Configuration: one frozen settings object read from `LINEAGE_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lineage_stream.errors import ConfigurationError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LINEAGE_", frozen=True, extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "openlineage"
    dlq_topic: str = "openlineage.dlq"
    consumer_group: str = "lineage-stream"
    topic_partitions: int = Field(
        default=6, ge=1, description="Partitions of the topic when the worker has to create it."
    )

    repartition_by_run: bool = Field(
        default=False,
        description="Re-key events by runId through an internal topic before pairing.",
    )
    kafka_session_timeout_s: float = Field(
        default=30.0,
        ge=6.0,
        description="How long a silent worker keeps its partitions before the group moves them.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None

    neo4j_uri: str = "bolt://127.0.0.1:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: SecretStr = SecretStr("lineage-stream")
    neo4j_password_file: Path | None = None
    neo4j_database: str = "neo4j"

    run_timeout_s: int = Field(default=86_400, ge=1)
    max_event_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    batch_size: int = Field(default=500, ge=1)
    batch_timeout_ms: int = Field(default=200, ge=1)
    store: Literal["memory", "rocksdb"] = "memory"
    written_columns_cache: int = Field(
        default=250_000,
        ge=0,
        description="Field/DERIVES rows and facets remembered as written (~130 B each); 0: off.",
    )
    data_dir: Path = Path(".lineage-stream")
    web_port: int | None = Field(default=None, description="Faust's web server; off when unset.")
    metrics_port: int = Field(
        default=9464, ge=0, le=65535, description="/metrics, /healthz, /readyz; 0 turns them off."
    )
    metrics_host: str = "0.0.0.0"
    prune_older_than_days: float | None = Field(
        default=None, gt=0, description="The worker prunes runs older than this; off when unset."
    )
    prune_keep_runs: int = Field(default=10, ge=1)
    prune_interval_s: float = Field(default=3600.0, ge=1.0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = Field(
        default="text", description="text (Faust's format) or json (one object per line)."
    )

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        for file_field, value_field in (
            ("neo4j_password_file", "neo4j_password"),
            ("kafka_sasl_password_file", "kafka_sasl_password"),
        ):
            path = getattr(self, file_field)
            if path is None:
                continue
            try:
                secret = path.read_text().strip()
            except OSError as exc:
                raise ConfigurationError(
                    f"LINEAGE_{file_field.upper()}={path} cannot be read: {exc.strerror}"
                ) from exc
            object.__setattr__(self, value_field, SecretStr(secret))
        return self

    @model_validator(mode="after")
    def _check_tls_files(self) -> Settings:
        # librdkafka and ssl would otherwise fail deep inside client construction.
        for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
            path = getattr(self, name)
            if path is None:
                continue
            try:
                path.read_bytes()
            except OSError as exc:
                raise ConfigurationError(
                    f"LINEAGE_{name.upper()}={path} cannot be read: {exc.strerror}"
                ) from exc
        return self

    @property
    def sweep_interval_s(self) -> float:
        return min(60.0, self.run_timeout_s / 2)

# syntax=docker/dockerfile:1
# lineage-stream worker image: wheels built in one stage, installed into a slim non-root one.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip
COPY pyproject.toml README.md ./
COPY lineage_stream ./lineage_stream
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[rocksdb]'

FROM python:3.11-slim
LABEL org.opencontainers.image.title="lineage-stream" \
      org.opencontainers.image.description="OpenLineage events from Kafka, paired per run, upserted into Neo4j" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels 'lineage-stream[rocksdb]' \
    && rm -rf /wheels \
    && useradd --uid 10001 --create-home --home-dir /var/lib/lineage-stream lineage
USER 10001
WORKDIR /var/lib/lineage-stream
ENV LINEAGE_DATA_DIR=/var/lib/lineage-stream \
    PYTHONUNBUFFERED=1
ENTRYPOINT ["lineage-stream"]
CMD ["worker"]

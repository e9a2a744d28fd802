# Vigil: one image for the CLI, the stage workers and (later) the API.
FROM python:3.11-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY store store
COPY catalog catalog
COPY transcode transcode
COPY integrity integrity
COPY ingest ingest
COPY workers workers
COPY interfaces interfaces
COPY verifier verifier
RUN pip install --no-cache-dir ./verifier . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin vigil \
    && mkdir -p /data && chown vigil /data
# Never root: a process that handles evidence gets only its data folder.
USER vigil
ENV VIGIL_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["vigil"]
CMD ["--help"]

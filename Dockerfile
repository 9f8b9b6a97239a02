# One image for every service of compose.yaml: `faces worker STAGE`, `faces watch`, ...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DEEPFACE_HOME=/models FACES_STORAGE=/storage FACES_OUTPUT=/output

WORKDIR /app
COPY pyproject.toml README.md ./
COPY faces faces
COPY streams streams
COPY consumers consumers
COPY producer producer
COPY schemas schemas
COPY models models
COPY ops ops
RUN pip install . && useradd --create-home --uid 1000 faces \
    && mkdir -p /data /storage /output /models && chown faces /data /storage /output /models
USER faces
ENTRYPOINT ["faces"]
CMD ["--help"]

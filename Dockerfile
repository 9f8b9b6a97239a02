# One image for every service of compose.yaml: `faces worker STAGE`, `faces watch`, ...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DEEPFACE_HOME=/models FACES_STORAGE=/storage FACES_OUTPUT=/output

WORKDIR /app
# Dependencies first, in a layer of their own: a change to the source does not install them
# again. The package folders are stubs here (pyproject.toml names them); the real ones follow.
COPY pyproject.toml README.md ./
RUN mkdir -p faces streams consumers producer schemas models/detectors ops \
    && touch faces/__init__.py streams/__init__.py consumers/__init__.py producer/__init__.py \
             schemas/__init__.py models/__init__.py models/detectors/__init__.py ops/__init__.py \
    && pip install . && pip uninstall -y faces-pipeline && rm -rf faces streams consumers producer schemas models ops build
COPY faces faces
COPY streams streams
COPY consumers consumers
COPY producer producer
COPY schemas schemas
COPY models models
COPY ops ops
RUN pip install --no-deps . && useradd --create-home --uid 1000 faces \
    && mkdir -p /data/inbox /storage /output /models && chown -R faces /data /storage /output /models
USER faces
# A writable working folder: `faces run` / `up` keep their state (.faces) under it.
WORKDIR /home/faces
ENTRYPOINT ["faces"]
CMD ["--help"]

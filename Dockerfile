# One image for every service of compose.yaml: `faces worker STAGE`, `faces watch`, ...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DEEPFACE_HOME=/models FACES_STORAGE=/storage FACES_OUTPUT=/output

WORKDIR /app
# Dependencies first, in a layer of their own: a change to the source does not install them
# again. The lock pins every package (requirements/lock.py writes it: `make lock`), with the CPU
# build of TensorFlow and one OpenCV; --no-deps because tf-keras names `tensorflow`, which
# `tensorflow-cpu` provides under another distribution name.
COPY requirements/image.lock requirements/image.lock
RUN pip install --no-deps -r requirements/image.lock
COPY pyproject.toml README.md LICENSE ./
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

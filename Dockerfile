# PostAssist with the bundled local model. Build: docker build -t postassist .
# It listens on 0.0.0.0, so it needs authentication to start: create a key in its
# volume first (docker run --rm -v pa:/data postassist postassist keys create --name me),
# or configure JWT_ISSUER and a JWT key. Add the name clients use to ALLOWED_HOSTS.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The locked packages first, each checked against its hash; this layer is rebuilt only
# when the lock changes. requirements/docker.txt holds the extras local, postgres and
# redis at the versions of requirements/lock.txt, the ones CI tests (`make lock`).
COPY requirements/docker.txt ./requirements/
# llama.cpp's native build crashes on some CPUs (AMX kernels): build portable.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF"
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements/docker.txt
COPY pyproject.toml README.md ./
COPY graph ./graph
COPY agents ./agents
COPY db ./db
# The project itself, without dependencies: the lock installed every one of them.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
 && /opt/venv/bin/pip check

FROM python:3.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 postassist \
 && mkdir /data && chown postassist /data
COPY --from=build /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH" \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATABASE_URL="sqlite+aiosqlite:////data/postassist.db" \
    PYTHONUNBUFFERED=1
USER postassist
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["postassist", "serve"]

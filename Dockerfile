# The yunbang app image: one node = one process. Built by docker-compose.yml.
# (Docker cannot run on the development machine: this file is validated by review and by
# `docker-compose config` and tests/test_hardening.py, not by a build there.)

# The browser client, built with the lock file.
FROM node:20-slim AS web
WORKDIR /web
COPY web-client/package.json web-client/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web-client ./
RUN npm run build

FROM python:3.11-slim
# Watermarks are drawn in Chinese: Debian's Noto CJK fonts.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server server
COPY signaling signaling
COPY uploads uploads
RUN pip install --no-cache-dir .
COPY --from=web /web/dist /app/web-client/dist
# The server runs as an unprivileged user that owns only its data directory (0700); the code
# stays root's and read-only to it. A new named volume on /data takes this owner and mode.
RUN groupadd --system --gid 10001 yunbang \
    && useradd --system --uid 10001 --gid yunbang --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin yunbang \
    && install -d -o yunbang -g yunbang -m 0700 /data
ENV YUNBANG_HOST=0.0.0.0 YUNBANG_PORT=8080 YUNBANG_DATA_DIR=/data YUNBANG_WEB_DIST=/app/web-client/dist
VOLUME /data
EXPOSE 8080
USER yunbang
CMD ["yunbang", "serve"]

# The yunbang app image: one node = one process. Built by docker-compose.yml.
# (Docker cannot run on the development machine: this file is validated by review and by
# `docker-compose config`, not by a build there.)

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
ENV YUNBANG_HOST=0.0.0.0 YUNBANG_PORT=8080 YUNBANG_DATA_DIR=/data YUNBANG_WEB_DIST=/app/web-client/dist
VOLUME /data
EXPOSE 8080
CMD ["yunbang", "serve"]

# The yunbang app image: one node = one process. Built by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server server
COPY signaling signaling
COPY uploads uploads
RUN pip install --no-cache-dir .
ENV YUNBANG_HOST=0.0.0.0 YUNBANG_PORT=8080 YUNBANG_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
CMD ["yunbang", "serve"]

#!/bin/sh
# One-shot (docker-compose.yml service minio-init): the bucket, and the app's own MinIO user
# limited to it by deploy/minio-app-policy.json — the app never holds MinIO's root credentials.
# Safe to run again: every step leaves what exists as it is, and updates the app's password.
set -eu
mc alias set root http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null
mc mb --ignore-existing root/yunbang
mc anonymous set none root/yunbang
mc admin policy create root yunbang-app /policy/minio-app-policy.json
mc admin user add root "$APP_ACCESS_KEY" "$APP_SECRET_KEY"
mc admin policy attach root yunbang-app --user "$APP_ACCESS_KEY" 2>/dev/null \
  || echo "policy yunbang-app already attached to $APP_ACCESS_KEY"
echo "MinIO: bucket yunbang, user $APP_ACCESS_KEY limited to it"

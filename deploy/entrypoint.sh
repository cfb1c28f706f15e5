#!/bin/sh
# Entrypoint of the archive image (deploy/Dockerfile), also called by health checks, which bypass ENTRYPOINT.
#
# 1. Secrets: for each NAME below, NAME_FILE names a file (a compose secret under /run/secrets/) whose content
#    becomes NAME, so passwords never sit in compose.yaml or `docker inspect`. PGPASSWORD is read by libpq,
#    so ARCHIVE_DATABASE_URL carries no password.
# 2. `archive-entrypoint clamd`: ClamAV for the `clamav` service: fetch signatures once if there are none,
#    keep them fresh with the freshclam daemon (it tells clamd to reload), run clamd in the foreground.
# 3. Anything else is executed as given (`archive serve --workers 4`, `archive worker`, ...).
set -eu

SECRET_VARS="PGPASSWORD ARCHIVE_S3_ACCESS_KEY ARCHIVE_S3_SECRET_KEY ARCHIVE_ES_PASSWORD"

for name in $SECRET_VARS; do
    file=$(printenv "${name}_FILE" || true)
    if [ -n "$file" ]; then
        if [ ! -r "$file" ]; then
            echo "启动失败：${name}_FILE 指向的文件 $file 不存在或不可读（secret_missing）" >&2
            exit 78
        fi
        # a trailing newline from `echo x > file` is not part of the secret
        value=$(cat "$file")
        export "$name=$value"
        unset "${name}_FILE"
    fi
done

if [ "${1:-}" = "clamd" ]; then
    if ! ls /var/lib/clamav/*.cvd /var/lib/clamav/*.cld >/dev/null 2>&1; then
        echo "ClamAV 签名库为空：首次下载（freshclam）" >&2
        freshclam --config-file=/etc/clamav/freshclam.conf --foreground
    fi
    freshclam --config-file=/etc/clamav/freshclam.conf --daemon
    exec clamd --config-file=/etc/clamav/clamd.conf --foreground
fi

exec "$@"

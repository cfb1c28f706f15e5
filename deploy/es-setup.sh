#!/bin/sh
# One-shot `es-setup` service (deploy/compose.yaml): creates the application's role (deploy/es-role.json) and user
# in Elasticsearch, as the `elastic` superuser. Idempotent: PUT replaces the role and resets the user's password.
# Passwords are read from compose secrets and handed to curl on stdin, never on its command line.
set -eu

ES=${ES_URL:-https://elasticsearch:9200}
CA=${ES_CA:-/usr/share/elasticsearch/config/certs/ca.crt}
ROLE_FILE=${ES_ROLE_FILE:-/setup/es-role.json}
APP_USER=${ES_APP_USER:-archive}
ELASTIC_PASSWORD=$(cat "${ELASTIC_PASSWORD_FILE:-/run/secrets/elastic_password}")
APP_PASSWORD=$(cat "${ES_PASSWORD_FILE:-/run/secrets/es_password}")

es() {  # es METHOD PATH [curl options...]
    method=$1; path=$2; shift 2
    printf 'user = "elastic:%s"\n' "$ELASTIC_PASSWORD" | curl -fsS -K - --cacert "$CA" -X "$method" \
        -H 'Content-Type: application/json' "$ES$path" "$@"
    echo
}

es PUT /_security/role/archive_app --data-binary "@$ROLE_FILE"
# curl's stdin carries its credentials, so the user's body goes through a private temporary file
umask 077
body=$(mktemp)
trap 'rm -f "$body"' EXIT
escaped=$(printf '%s' "$APP_PASSWORD" | sed 's/\\/\\\\/g; s/"/\\"/g')
printf '{"password": "%s", "roles": ["archive_app"], "full_name": "hpf-archive application"}' "$escaped" >"$body"
es PUT "/_security/user/$APP_USER" --data-binary "@$body"
echo "es-setup: role archive_app and user $APP_USER ready"

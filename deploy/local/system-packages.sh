#!/bin/sh
# Debian packages the tests need beyond Python, Java and Maven: PostgreSQL for the Spark JDBC
# workload. Installs them once, as root or through sudo; says what to do when it cannot.
set -eu
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: PostgreSQL (pg_ctl) is missing and this is not a Debian/Ubuntu machine;" \
         "install PostgreSQL 13+ server binaries and run make again" >&2
    exit 2
fi
if [ "$(id -u)" -eq 0 ]; then as_root=""; elif command -v sudo >/dev/null 2>&1; then as_root="sudo"; else
    echo "error: PostgreSQL is missing; run 'apt-get install -y postgresql' as root" >&2
    exit 2
fi
echo "[install] PostgreSQL from Debian packages (for the Spark JDBC end-to-end test)"
$as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq --no-install-recommends postgresql >/dev/null

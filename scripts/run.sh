#!/usr/bin/env bash
# README command 1: run the vault on the embedded profile (SQLite + files in ./.vault-data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/ofpra-vault serve "$@"

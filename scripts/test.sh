#!/usr/bin/env bash
# The whole check, as CI runs it (.ci/run): dependencies, moto, type-check, every vitest project.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# CI starts from a clean clone and must install exactly the lockfile; a developer's existing
# node_modules is trusted to save a minute.
if [[ "${CI:-}" == "true" || ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi

bash scripts/moto-venv.sh

npx tsc --noEmit

npx vitest run

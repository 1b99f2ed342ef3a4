#!/usr/bin/env bash
# The whole check, as CI runs it (.ci/run): dependencies, moto, type-check, the deployable package, every vitest project.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# CI starts from a clean clone and must install exactly the lockfile; a developer's existing
# node_modules is trusted to save a minute.
if [[ "${CI:-}" == "true" || ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi

bash scripts/moto-venv.sh

npx tsc --noEmit

# The template and every handler bundle must build with no AWS credentials and no network but the registries:
# serverless@3 would otherwise send telemetry and look for notifications.
env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
  SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off npm run --silent package
node scripts/check-package.mjs

mkdir -p .tmp
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=.tmp/vitest.json || status=$?
# One plain closing line, whatever reads this log.
node -e '
  const r = JSON.parse(require("fs").readFileSync(".tmp/vitest.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
' || true
exit "$status"

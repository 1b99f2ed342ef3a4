#!/usr/bin/env node
// The CLI is bundled by `npm install` (the package's prepare script) into dist/; this shim keeps `npx appsctl` and the
// package bin pointing at one stable path.
import '../dist/appsctl.mjs';

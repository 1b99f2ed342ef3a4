// Summarises dist/handlers-meta.json (written by scripts/build.mjs): for one handler (or all), the bytes each package
// contributes to the bundle. `node scripts/analyze-handlers.mjs [handler]`.
import { readFileSync } from 'node:fs';

const meta = JSON.parse(readFileSync('dist/handlers-meta.json', 'utf8'));
const wanted = process.argv[2];
for (const [file, out] of Object.entries(meta.outputs)) {
  const name = file.replace(/^.*\//, '').replace(/\.mjs$/, '');
  if (wanted && name !== wanted) continue;
  const byPackage = new Map();
  for (const [input, v] of Object.entries(out.inputs)) {
    const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
    // Modules a build plugin made up (`namespace:path`) count under their plugin's name.
    const key = m ? m[1] : /^[\w-]+:/.test(input) ? input.slice(0, input.indexOf(':')) : input.split('/').slice(0, 2).join('/');
    byPackage.set(key, (byPackage.get(key) ?? 0) + v.bytesInOutput);
  }
  console.log(`${name}: ${(out.bytes / 1e6).toFixed(3)} MB`);
  for (const [k, v] of [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, wanted ? 40 : 8)) console.log(`  ${(v / 1024).toFixed(0).padStart(5)} KiB  ${k}`);
}

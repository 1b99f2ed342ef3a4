// Summarises a V8 .cpuprofile (BENCH_CPU_PROF, bench/README.md): where the profiled process spent its CPU, by
// function (self time, and total time including callees) and by origin (node internals, our bundle, GC, idle).
//   node bench/profile-summary.mjs FILE [TOP]
import { readFileSync } from 'node:fs';

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile [TOP]');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Each sample's duration is the gap to the next one.
const selfUs = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
}
const label = (n) => {
  const f = n.callFrame;
  const where = f.url ? `${f.url.replace(/^.*\//, '')}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'} ${where}`.trim();
};
const origin = (n) => {
  const { url, functionName } = n.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[1] ?? url.slice(5)}`;
  return url.replace(/^.*\//, '');
};

const self = new Map();
const byOrigin = new Map();
const total = new Map();
let all = 0;
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  all += us;
  self.set(label(n), (self.get(label(n)) ?? 0) + us);
  byOrigin.set(origin(n), (byOrigin.get(origin(n)) ?? 0) + us);
  // Total time: every distinct function on the stack is charged once.
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur));
    if (!seen.has(l)) seen.add(l), total.set(l, (total.get(l) ?? 0) + us);
  }
}
const ms = (us) => `${(us / 1000).toFixed(0).padStart(6)} ms`;
const pct = (us) => `${((100 * us) / all).toFixed(1).padStart(5)} %`;
const show = (title, map) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(us)} ${pct(us)}  ${k}`);
};
console.log(`${file}: ${(all / 1000).toFixed(0)} ms sampled`);
show('by origin (self)', byOrigin);
show('by function (self)', self);
show('by function (total, callees included)', total);

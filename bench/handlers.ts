// Handler bundles: size on disk and cold init (the time `import()` of the bundle takes in a fresh Node process, i.e.
// parse + compile + evaluation of the module's top level, what Lambda's init phase spends on our code).
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface HandlerFigures {
  name: string;
  bytes: number;
  initMs: number[];
  medianMs: number;
  /** CPU time of the same imports (all threads): what the import costs when the machine is busy with other work. */
  cpuMs: number[];
  medianCpuMs: number;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function coldImport(file: string): Promise<{ ms: number; cpuMs: number }> {
  const url = pathToFileURL(file).href;
  const code =
    `const c = process.cpuUsage(); const t = process.hrtime.bigint(); await import(${JSON.stringify(url)}); ` +
    'const ms = Number(process.hrtime.bigint() - t) / 1e6; const u = process.cpuUsage(c); console.log(JSON.stringify({ ms, cpuMs: (u.user + u.system) / 1000 }));';
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        if (code !== 0) throw new Error(`exit ${code}`);
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as { ms: number; cpuMs: number });
      } catch (e) {
        reject(new Error(`importing ${file} failed (${(e as Error).message}): ${err || out}`));
      }
    });
  });
}

/** Every dist/handlers/*.mjs: its size, and `runs` cold imports each (round-robin, so that noise spreads evenly). */
export async function measureHandlers(dir: string, runs: number): Promise<HandlerFigures[]> {
  const names = (await readdir(dir)).filter((f) => f.endsWith('.mjs')).sort();
  const figures: HandlerFigures[] = [];
  for (const f of names) figures.push({ name: f.replace(/\.mjs$/, ''), bytes: (await stat(join(dir, f))).size, initMs: [], medianMs: NaN, cpuMs: [], medianCpuMs: NaN });
  for (let i = 0; i < runs; i++) {
    for (const h of figures) {
      const r = await coldImport(join(dir, `${h.name}.mjs`));
      h.initMs.push(r.ms);
      h.cpuMs.push(r.cpuMs);
    }
  }
  for (const h of figures) {
    h.medianMs = median(h.initMs);
    h.medianCpuMs = median(h.cpuMs);
  }
  return figures;
}

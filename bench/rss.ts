// Peak RSS of the real CLI (bin/appsctl.mjs) validating and deploying bundles of growing size, one child process per
// run, read by bench/rss-probe.mjs at the child's exit.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface ChildRun {
  code: number | null;
  /** Peak RSS in MiB: VmHWM from /proc/self/status (getrusage's maxRSS where there is no /proc). */
  peakMiB: number;
  /** getrusage maxRSS, MiB: on Linux inherited across fork+exec, so not the child's own peak. */
  maxRssMiB: number;
  /** process.memoryUsage() of the sample with the highest RSS. */
  atPeakMiB: Record<string, number>;
  /** Wall time of the child from the probe's load to exit. */
  ms: number;
  stderr: string;
}

export async function runProbed(root: string, args: string[], env: Record<string, string>, tmp: string): Promise<ChildRun> {
  const dir = await mkdtemp(join(tmp, 'rss-'));
  const out = join(dir, 'rss.json');
  try {
    const child = spawn(process.execPath, ['--import', pathToFileURL(join(root, 'bench', 'rss-probe.mjs')).href, join(root, 'bin', 'appsctl.mjs'), ...args], {
      cwd: root,
      env: { ...env, BENCH_RSS_OUT: out },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stdout.resume();
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    const probe = JSON.parse(await readFile(out, 'utf8')) as { maxRssKb: number; vmHwmKb?: number; atPeakMiB: Record<string, number>; ms: number };
    return {
      code,
      peakMiB: (probe.vmHwmKb || probe.maxRssKb) / 1024,
      maxRssMiB: probe.maxRssKb / 1024,
      atPeakMiB: probe.atPeakMiB,
      ms: probe.ms,
      stderr,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

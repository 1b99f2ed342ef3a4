import type { ProgressEvent } from '../core/deploy';

/**
 * A crash-test failpoint (in the spirit of etcd's gofail): `APPS_DEPLOYER_FAILPOINT=<step>[:<n>]` makes the deploying
 * process SIGKILL itself right after the n-th (default first) progress event of that step — `static`, `code`,
 * `function`, `policy`, `manifest` or `mattermost` — so that a test can stop a deploy exactly between two steps and
 * check that running it again completes it. Unset (always, outside those tests) it does nothing.
 */
export const FAILPOINT_ENV = 'APPS_DEPLOYER_FAILPOINT';

const STEPS: ReadonlySet<string> = new Set<ProgressEvent['step']>(['static', 'code', 'function', 'policy', 'manifest', 'mattermost']);

export function parseFailpoint(value: string | undefined): { step: ProgressEvent['step']; n: number } | undefined {
  if (!value) return undefined;
  const m = /^([a-z]+)(?::(\d+))?$/.exec(value.trim());
  if (!m || !STEPS.has(m[1]!) || (m[2] !== undefined && Number(m[2]) < 1)) {
    throw new Error(`${FAILPOINT_ENV} must be <step>[:<n>] with step one of ${[...STEPS].join(', ')}, got ${JSON.stringify(value)}`);
  }
  return { step: m[1] as ProgressEvent['step'], n: m[2] === undefined ? 1 : Number(m[2]) };
}

/** Wraps a progress callback with the failpoint of `env`, if any. */
export function withFailpoint(env: Record<string, string | undefined>, onProgress: (e: ProgressEvent) => void, kill: () => void = () => process.kill(process.pid, 'SIGKILL')): (e: ProgressEvent) => void {
  const point = parseFailpoint(env[FAILPOINT_ENV]);
  if (!point) return onProgress;
  let seen = 0;
  return (e) => {
    onProgress(e);
    if (e.step === point.step && ++seen === point.n) kill();
  };
}

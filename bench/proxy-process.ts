// The delay/counting proxy in a process of its own, so that its work (every byte of every request passes through it)
// neither competes with the deploy under test for an event loop nor counts in the bench process's CPU time.
// bench/run.mjs bundles bench/proxy-main.ts to dist/bench/proxy.mjs; this module forks it and talks to it over IPC.
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ProxyStats, RequestRecord } from './proxy';

export interface ProxyControl {
  url: string;
  pid: number | undefined;
  setDelay(ms: number): Promise<void>;
  /** Forgets what was counted so far and restarts the clock of `RequestRecord.start`. */
  reset(): Promise<void>;
  snapshot(): Promise<{ stats: ProxyStats; records: RequestRecord[] }>;
  close(): Promise<void>;
}

export type ProxyRequest = { id: number; op: 'setDelay'; ms: number } | { id: number; op: 'reset' | 'snapshot' | 'close' };
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
export type ProxyReply = { id: number; result?: unknown; error?: string } | { ready: string };

export async function spawnProxy(target: string, delayMs = 0): Promise<ProxyControl> {
  // main.mjs and proxy.mjs are siblings in dist/bench/.
  const script = join(dirname(fileURLToPath(import.meta.url)), 'proxy.mjs');
  const child: ChildProcess = fork(script, [target, String(delayMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited = false;
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const url = await new Promise<string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bench proxy exited during start (code ${code})`)));
    child.on('message', (m: ProxyReply) => {
      if ('ready' in m) return resolve(m.ready);
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.error) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
  });
  child.removeAllListeners('exit');
  child.on('exit', () => {
    exited = true;
    for (const p of pending.values()) p.reject(new Error('bench proxy exited'));
    pending.clear();
  });
  const call = <T>(req: WithoutId<ProxyRequest>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      if (exited) return reject(new Error('bench proxy is not running'));
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ ...req, id });
    });
  return {
    url,
    pid: child.pid,
    setDelay: (ms) => call({ op: 'setDelay', ms }),
    reset: () => call({ op: 'reset' }),
    snapshot: () => call({ op: 'snapshot' }),
    async close() {
      process.removeListener('exit', killOnExit);
      if (exited) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      await call({ op: 'close' }).catch(() => undefined);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
  };
}

import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { InspectionCache } from '../core/bundle';

/** Entries kept; each is a few KiB to a few hundred (one line per function and asset). */
const MAX_ENTRIES = 64;

/**
 * appsctl's memory of bundles it has validated: one JSON file per bundle content in a private directory. Files are
 * written whole then renamed, so a process killed mid-write leaves no half entry to read.
 */
export class DirectoryInspectionCache implements InspectionCache {
  constructor(readonly dir: string) {}

  async get(key: string): Promise<string | undefined> {
    try {
      return await readFile(this.file(key), 'utf8');
    } catch {
      return undefined;
    }
  }

  async put(key: string, text: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, `.${key}.${randomUUID()}.tmp`);
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, this.file(key));
    await this.prune();
  }

  private file(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  /** Drops the least recently written entries beyond MAX_ENTRIES. */
  private async prune(): Promise<void> {
    const names = (await readdir(this.dir)).filter((n) => n.endsWith('.json'));
    if (names.length <= MAX_ENTRIES) return;
    const dated = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(this.dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })));
    dated.sort((a, b) => a.t - b.t);
    await Promise.all(dated.slice(0, dated.length - MAX_ENTRIES).map(({ n }) => rm(join(this.dir, n), { force: true })));
  }
}

/**
 * `APPS_DEPLOYER_CACHE_DIR` names the directory, `off` turns the cache off; by default it is
 * `$XDG_CACHE_HOME/apps-deployer/bundles` (`~/.cache/…`).
 */
export function inspectionCacheFromEnv(env: Record<string, string | undefined>): InspectionCache | undefined {
  const configured = env.APPS_DEPLOYER_CACHE_DIR?.trim();
  if (configured === 'off') return undefined;
  if (configured) return new DirectoryInspectionCache(configured);
  const base = env.XDG_CACHE_HOME?.trim() || join(env.HOME?.trim() || homedir(), '.cache');
  return new DirectoryInspectionCache(join(base, 'apps-deployer', 'bundles'));
}

// Runs appsctl in-process, as `node dist/appsctl.mjs` would, capturing what it prints.
import { runCli } from '../../src/cli/program';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function appsctl(args: string[], env: Record<string, string | undefined> = {}, options: { isTTY?: boolean } = {}): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    // No inspection cache unless a test names one: each test's bundles are inspected in full, as on a fresh machine.
    env: { ...process.env, APPS_DEPLOYER_CACHE_DIR: 'off', ...env },
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    isTTY: options.isTTY ?? false,
  });
  return { code, stdout, stderr };
}

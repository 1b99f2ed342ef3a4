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
    env: { ...process.env, ...env },
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

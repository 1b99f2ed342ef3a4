import type { Command } from 'commander';
import type { Logger } from '../core/logger';
import { cliLogger, type Verbosity } from './logger';

/** What every command gets: its logger (from the global -v/-q), the environment and where to print results. */
export interface CliContext {
  logger: Logger;
  env: Record<string, string | undefined>;
  out: (text: string) => void;
  isTTY: boolean;
}

export interface CliIO {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  isTTY: boolean;
}

export function contextOf(cmd: Command, io: CliIO): CliContext {
  const g = cmd.optsWithGlobals<{ verbose?: boolean; quiet?: boolean }>();
  const verbosity: Verbosity = g.quiet ? 'quiet' : g.verbose ? 'verbose' : 'normal';
  return { logger: cliLogger(verbosity, io.stderr), env: io.env, out: io.stdout, isTTY: io.isTTY };
}

import { redact, type LogFields, type Logger } from '../core/logger';

export type Verbosity = 'quiet' | 'normal' | 'verbose';

const RANK = { debug: 0, info: 1, warn: 2, error: 3 } as const;

/**
 * Human-readable logs on stderr, so that stdout carries only a command's result (JSON, DeployData, exports).
 * `-q` keeps errors only, `-v` adds debug lines (appsctl.md §0).
 */
export function cliLogger(verbosity: Verbosity, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = verbosity === 'quiet' ? RANK.error : verbosity === 'verbose' ? RANK.debug : RANK.info;
  const log = (level: keyof typeof RANK) => (msg: string, fields?: LogFields) => {
    if (RANK[level] < min) return;
    const extra = fields
      ? Object.entries(redact(fields) as LogFields)
          .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
          .join(' ')
      : '';
    write(`${level === 'info' ? '' : `${level}: `}${msg}${extra ? ` ${extra}` : ''}\n`);
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

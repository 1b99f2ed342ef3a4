/**
 * The logging port. Core code logs through this; the CLI plugs in a human-readable stderr logger, the Lambda handlers a
 * structured JSON one. Both pass fields through `redact` so that a secret handed to a log call by mistake never lands.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

const SECRET_KEY = /secret|token|password|authorization|credential|signature|x-amz-security/i;

/** Replaces the value of any field whose name looks secret, at any depth. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : redact(v, depth + 1);
  return out;
}

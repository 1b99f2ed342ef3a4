import pino from 'pino';
import { redact, type LogFields, type Logger } from '../core/logger';

/** Structured JSON logs for Lambda (CloudWatch). Fields go through `redact` before pino sees them. */
export function jsonLogger(level: string = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  const p = pino({ level, base: { service: 'apps-deployer' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  const log = (fn: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: LogFields) =>
    fields ? p[fn](redact(fields) as object, msg) : p[fn](msg);
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

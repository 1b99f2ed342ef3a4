// Classifies what moto's recorder saw, to prove that a step made no write call.
import type { RecordedMotoRequest } from './moto';

export function isWrite(r: RecordedMotoRequest): boolean {
  if (r.service === 'iam' || r.service === 'sts') return !/^(Get|List|Simulate)/.test(r.operation);
  if (r.service === 'lambda') return r.method !== 'GET' && !/\/invocations$/.test(r.path);
  if (r.service === 's3') return !['GET', 'HEAD'].includes(r.method);
  return false;
}

export function describeRequests(rs: RecordedMotoRequest[]): string[] {
  return rs.map((r) => `${r.service} ${r.method} ${r.operation}`);
}

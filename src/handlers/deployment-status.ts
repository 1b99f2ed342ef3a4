import { NotFoundError } from '../core/errors';
import { httpHandler } from './http/stack';
import { getRecordsRuntime } from './http/runtime';

/** `GET /deployments/{id}`: the record as the worker keeps it (state, steps, plan, result or error). */
export const handler = httpHandler({ access: 'read', runtime: getRecordsRuntime }, async ({ params, runtime }) => {
  const id = params.id ?? '';
  const record = await runtime.controlPlane.store.get(id);
  if (!record) throw new NotFoundError(`deployment ${id} not found`);
  return { status: 200, body: record };
});

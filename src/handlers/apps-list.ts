import { listApps } from '../core/lifecycle';
import { httpHandler } from './http/stack';
import { validQuery } from './http/query';
import { appsListQuery } from './http/schemas';
import { getReadRuntime } from './http/runtime';

/** `GET /apps[?prefix=]`: every deployed app and version in the bucket's manifests, with functions, state and the listed version. */
export const handler = httpHandler({ access: 'read', runtime: getReadRuntime }, async ({ query, runtime }) => {
  const { prefix } = validQuery(appsListQuery, query);
  const { ports, store, logger } = runtime.controlPlane;
  return { status: 200, body: { apps: await listApps({ ports, store, logger }, prefix) } };
});

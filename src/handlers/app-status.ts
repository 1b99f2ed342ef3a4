import { appStatus } from '../core/control-plane-read';
import { httpHandler } from './http/stack';
import { getReadRuntime } from './http/runtime';

/** `GET /apps/{appId}`: deployed versions, their functions and state, listed/installed, last deployment. */
export const handler = httpHandler({ access: 'read', runtime: getReadRuntime }, async ({ params, runtime }) => {
  return { status: 200, body: await appStatus(runtime.controlPlane, params.appId ?? '') };
});

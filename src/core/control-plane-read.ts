import type { DeployPorts } from './deploy';
import type { DeploymentStore } from './deployments';
import { NotFoundError } from './errors';
import type { Logger } from './logger';
import { describeApp } from './lifecycle';

/**
 * What the control plane is made of, and its read-only use cases (design.md §3–§4). Apart from the deploy use cases
 * (control-plane.ts), so that the handlers that only read (GET /apps/{appId}, GET /deployments/{id}, POST /bundles…)
 * do not bundle the deploy path (the bundle reader, yauzl). Nothing here knows about Lambda events or HTTP.
 */
export interface Notifier {
  notify(text: string): Promise<void>;
}

export interface WorkerPort {
  /** Starts `runDeployment(id)` somewhere else (an async Lambda invocation, or the same process locally). */
  start(deploymentId: string, environment?: Record<string, string>): Promise<void>;
}

export interface ControlPlane {
  ports: DeployPorts;
  store: DeploymentStore;
  /**
   * Downloads a bundle object to a temporary file for `fn` (size checked first). With `version`, exactly that object
   * version (or ETag) is read, and a newer upload in its place is a SupersededError.
   */
  fetchBundle<T>(key: string, fn: (path: string, info: { size: number; etag?: string; versionId?: string }) => Promise<T>, version?: { versionId?: string; etag?: string }): Promise<T>;
  logger: Logger;
  maxBundleBytes: number;
  autoInstall: boolean;
  notifier?: Notifier;
  worker?: WorkerPort;
}

export const BUNDLES_PREFIX = 'bundles/';

// ---------------------------------------------------------------------------------------------------------------------
// App status (`GET /apps/{appId}`)

export interface AppVersionStatus {
  version: string;
  manifestKey: string;
  complete: boolean;
  functions: Array<{ name: string; lambdaName: string; exists: boolean; state?: string; lastUpdateStatus?: string; runtime?: string }>;
}

export interface AppStatus {
  appId: string;
  versions: AppVersionStatus[];
  listedVersion?: string;
  installed: boolean;
  lastDeployment?: { id: string; state: string; version?: string; at: string };
}

export async function appStatus(cp: ControlPlane, appId: string): Promise<AppStatus> {
  const app = await describeApp({ ports: cp.ports, store: cp.store, logger: cp.logger }, appId);
  if (!app) throw new NotFoundError(`app ${appId} has no deployed version`);
  const summary = await cp.store.getAppSummary(appId);
  return {
    appId,
    versions: app.versions.map((v) => ({
      version: v.version,
      manifestKey: v.manifestKey,
      complete: v.complete,
      functions: v.functions.map(({ arn: _arn, ...f }) => f),
    })),
    // Only what a deploy recorded: the presumption that describeApp makes for undeploy's sake is not reported here.
    ...(app.listedVersionSource === 'record' ? { listedVersion: app.listedVersion! } : {}),
    installed: app.installed,
    ...(summary?.lastDeployment ? { lastDeployment: summary.lastDeployment } : {}),
  };
}

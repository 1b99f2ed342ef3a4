import { parseControlPlaneConfig, type ControlPlaneConfig } from '../../core/control-plane-config';
import type { Logger } from '../../core/logger';
import { makeAwsClients, type AwsClients } from '../../adapters/aws';
import { jsonLogger } from '../../adapters/logger';
import { resolveSsmParams } from '../../adapters/ssm';
import { makeControlPlane } from '../../adapters/control-plane';
import type { ControlPlane } from '../../core/control-plane';

/**
 * What every handler needs, built once per Lambda container: validated configuration (SSM parameters resolved) and
 * SDK clients. A configuration error is thrown on the first request, loudly, and again on every later one.
 */
export interface Runtime {
  config: ControlPlaneConfig;
  aws: AwsClients;
  controlPlane: ControlPlane;
}

export const logger: Logger = jsonLogger();

let runtime: Promise<Runtime> | undefined;

export function getRuntime(): Promise<Runtime> {
  runtime ??= (async () => {
    const region = process.env.MM_APPS_AWS_REGION ?? process.env.AWS_REGION ?? 'us-east-1';
    const env = await resolveSsmParams(process.env, region);
    const config = parseControlPlaneConfig(env);
    const aws = makeAwsClients({ region: config.region, bucket: config.bucket });
    return { config, aws, controlPlane: makeControlPlane(config, aws, logger) };
  })();
  runtime.catch(() => {
    runtime = undefined;
  });
  return runtime;
}

/** For tests and the local stack: forget the cached runtime so the next request reads the environment again. */
export function resetRuntime(): void {
  runtime = undefined;
}

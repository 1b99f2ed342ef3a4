import type { IAMClient } from '@aws-sdk/client-iam';
import type { S3Client } from '@aws-sdk/client-s3';
import { parseControlPlaneConfig, type ControlPlaneConfig } from '../../core/control-plane-config';
import type { Logger } from '../../core/logger';
import { makeAwsClients, makeIamClient, makeLambdaClient, makeS3Client, type AwsClients } from '../../adapters/aws';
import { jsonLogger } from '../../adapters/logger';
import { resolveSsmParams } from '../../adapters/ssm';
import { assembleControlPlane, makeControlPlane } from '../../adapters/control-plane';
import { SdkIamPort } from '../../adapters/iam';
import { SdkLambdaPort } from '../../adapters/lambda';
import type { ControlPlane } from '../../core/control-plane-read';

/**
 * What the handlers need, built once per Lambda container: validated configuration (SSM parameters resolved) and
 * SDK clients. A configuration error is thrown on the first request, loudly, and again on every later one.
 *
 * Each handler asks for the runtime it uses and no more: every SDK client is compiled at each cold start of every
 * handler that bundles it, and esbuild bundles a client only into the handlers that call one of the functions below
 * that makes it. So a handler that only reads the deployment records carries the S3 client alone, not Lambda's or
 * IAM's. A core step that reaches a port its handler left out fails with a message naming it (see `unwired`).
 */
export interface Runtime {
  config: ControlPlaneConfig;
  aws: AwsClients;
  controlPlane: ControlPlane;
}

/** A control plane over only some ports (the others `unwired`). */
export interface ControlPlaneRuntime {
  config: ControlPlaneConfig;
  controlPlane: ControlPlane;
}

/** The configuration and some SDK clients, for the handlers that call AWS without the control plane. */
export interface ClientsRuntime<C extends Partial<Omit<AwsClients, 'region'>>> {
  config: ControlPlaneConfig;
  aws: { region: string } & C;
}

export const logger: Logger = jsonLogger();

const built = new Map<string, Promise<unknown>>();

/** `build` once per container under `key`; a failure is forgotten, so that the next request tries again. */
function once<T>(key: string, build: () => Promise<T>): Promise<T> {
  let p = built.get(key) as Promise<T> | undefined;
  if (!p) {
    p = build();
    built.set(key, p);
    p.catch(() => {
      if (built.get(key) === p) built.delete(key);
    });
  }
  return p;
}

/** The configuration, shared by every runtime below; also what bearer auth checks tokens against. */
export function getConfig(): Promise<ControlPlaneConfig> {
  return once('config', async () => {
    const region = process.env.MM_APPS_AWS_REGION ?? process.env.AWS_REGION ?? 'us-east-1';
    const env = await resolveSsmParams(process.env, region);
    return parseControlPlaneConfig(env);
  });
}

const targetOf = (config: ControlPlaneConfig) => ({ region: config.region, bucket: config.bucket });

/** Every port and the worker: deploy, deploy-worker, auto-deploy, reconcile (and the local stack, the tests). */
export function getRuntime(): Promise<Runtime> {
  return once('full', async () => {
    const config = await getConfig();
    const aws = makeAwsClients(targetOf(config));
    return { config, aws, controlPlane: makeControlPlane(config, aws, logger) };
  });
}

/**
 * S3, Lambda and IAM, but no worker: POST /apps/{appId}/rollback, DELETE /apps/{appId}/versions/{version}. They change
 * functions and the invoke policy but never start a deployment, so they do not bundle the deploy path that
 * `getRuntime`'s in-process worker (the local stack's) brings along.
 */
export function getLifecycleRuntime(): Promise<ControlPlaneRuntime> {
  return once('lifecycle', async () => {
    const config = await getConfig();
    const target = targetOf(config);
    return {
      config,
      controlPlane: assembleControlPlane(config, { s3: makeS3Client(target), lambda: new SdkLambdaPort(makeLambdaClient(target)), iam: new SdkIamPort(makeIamClient(target)) }, logger),
    };
  });
}

/** S3 and Lambda (the state of the apps' functions), no IAM: GET /apps, GET /apps/{appId}. */
export function getReadRuntime(): Promise<ControlPlaneRuntime> {
  return once('read', async () => {
    const config = await getConfig();
    const target = targetOf(config);
    return { config, controlPlane: assembleControlPlane(config, { s3: makeS3Client(target), lambda: new SdkLambdaPort(makeLambdaClient(target)) }, logger) };
  });
}

/** S3 alone (the deployment records): GET /deployments/{id}. */
export function getRecordsRuntime(): Promise<ControlPlaneRuntime> {
  return once('records', async () => {
    const config = await getConfig();
    return { config, controlPlane: assembleControlPlane(config, { s3: makeS3Client(targetOf(config)) }, logger) };
  });
}

/** The S3 client alone: POST /bundles, POST /provision-data. */
export function getS3Runtime(): Promise<ClientsRuntime<{ s3: S3Client }>> {
  return once('s3', async () => {
    const config = await getConfig();
    return { config, aws: { region: config.region, s3: makeS3Client(targetOf(config)) } };
  });
}

/** The S3 and IAM clients: POST /init. */
export function getInitRuntime(): Promise<ClientsRuntime<{ s3: S3Client; iam: IAMClient }>> {
  return once('init', async () => {
    const config = await getConfig();
    const target = targetOf(config);
    return { config, aws: { region: config.region, s3: makeS3Client(target), iam: makeIamClient(target) } };
  });
}

/** For tests and the local stack: forget every runtime so the next request reads the environment again. */
export function resetRuntime(): void {
  built.clear();
}

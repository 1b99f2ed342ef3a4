import { InvokeCommand } from '@aws-sdk/client-lambda';
import type { S3Client } from '@aws-sdk/client-s3';
import type { ControlPlaneConfig } from '../core/control-plane-config';
import { runDeployment } from '../core/control-plane';
import type { ControlPlane, Notifier, WorkerPort } from '../core/control-plane-read';
import { DeploymentStore } from '../core/deployments';
import { ConfigError } from '../core/errors';
import type { Logger } from '../core/logger';
import type { IamPort, LambdaPort } from '../core/ports';
import type { AwsClients } from './aws';
import { SdkIamPort } from './iam';
import { SdkLambdaPort } from './lambda';
import { HttpMattermostPort } from './mattermost';
import { withRetry } from './retry';
import { SdkS3Port } from './s3';
import { withDownloadedObject } from './s3-objects';

/** Posts `{"text": …}` to a Mattermost incoming webhook. */
export class WebhookNotifier implements Notifier {
  constructor(private readonly url: string) {}
  async notify(text: string): Promise<void> {
    const res = await fetch(this.url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ text }), signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`webhook answered ${res.status}`);
  }
}

/** The deployed worker: an asynchronous (`Event`) invocation of the worker function, so API Gateway's 29 s do not bound a deploy. */
export class LambdaWorker implements WorkerPort {
  constructor(
    private readonly clients: AwsClients,
    private readonly functionName: string,
  ) {}
  async start(deploymentId: string, environment?: Record<string, string>): Promise<void> {
    const payload = JSON.stringify({ deploymentId, ...(environment ? { environment } : {}) });
    await withRetry(`Invoke ${this.functionName}`, () =>
      this.clients.lambda.send(new InvokeCommand({ FunctionName: this.functionName, InvocationType: 'Event', Payload: Buffer.from(payload) })),
    );
  }
}

/** Outside Lambda (the local stack): the deploy runs in this process after the response is sent. */
export class InProcessWorker implements WorkerPort {
  private readonly running = new Set<Promise<unknown>>();
  constructor(private readonly controlPlane: () => ControlPlane) {}
  async start(deploymentId: string, environment?: Record<string, string>): Promise<void> {
    const run = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => runDeployment(this.controlPlane(), deploymentId, environment))
      .catch((err) => this.controlPlane().logger.error('in-process deployment crashed', { deploymentId, error: (err as Error).message }))
      .finally(() => this.running.delete(run));
    this.running.add(run);
  }
  /** For tests and shutdown: resolves when every started deployment has ended. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running]);
  }
}

/**
 * The control plane with every port: what the deploy, worker, auto-deploy, reconcile, rollback and undeploy handlers,
 * the local stack and the tests use.
 */
export function makeControlPlane(config: ControlPlaneConfig, clients: AwsClients, logger: Logger, env: Record<string, string | undefined> = process.env): ControlPlane {
  return assembleControlPlane(
    config,
    {
      s3: clients.s3,
      lambda: new SdkLambdaPort(clients.lambda),
      iam: new SdkIamPort(clients.iam),
      lambdaWorker: (functionName) => new LambdaWorker(clients, functionName),
      inProcessWorker: (controlPlane) => new InProcessWorker(controlPlane),
    },
    logger,
    env,
  );
}

/**
 * What a control plane is made of. The S3 client is always there (the deployment records live in S3); a handler that
 * never calls Lambda or IAM leaves those ports out, so that its bundle does not carry their SDK clients, and gets
 * stand-ins that fail loudly if it does call them after all (see `unwired`).
 */
export interface ControlPlaneParts {
  s3: S3Client;
  lambda?: LambdaPort;
  iam?: IamPort;
  /** Starts a deployment on the deployed worker function; only the handlers that start deployments need it. */
  lambdaWorker?: (functionName: string) => WorkerPort;
  /**
   * Outside Lambda with no worker function (the local stack, the tests): runs a deployment in this process. Only the
   * runtimes that start deployments pass it, since it brings the whole deploy path (the bundle reader, yauzl) along.
   */
  inProcessWorker?: (controlPlane: () => ControlPlane) => WorkerPort;
}

export function assembleControlPlane(config: ControlPlaneConfig, parts: ControlPlaneParts, logger: Logger, env: Record<string, string | undefined> = process.env): ControlPlane {
  const s3 = new SdkS3Port(parts.s3, config.bucket, config.region);
  const cp: ControlPlane = {
    ports: {
      region: config.region,
      s3,
      lambda: parts.lambda ?? unwired<LambdaPort>('Lambda'),
      iam: parts.iam ?? unwired<IamPort>('IAM'),
      ...(config.mattermost ? { mattermost: new HttpMattermostPort(config.mattermost) } : {}),
    },
    store: new DeploymentStore(s3),
    fetchBundle: (key, fn, version) => withDownloadedObject(parts.s3, { bucket: config.bucket, key, maxBytes: config.maxBundleBytes, ...version }, fn),
    logger,
    maxBundleBytes: config.maxBundleBytes,
    autoInstall: config.autoInstall,
    ...(config.webhookUrl ? { notifier: new WebhookNotifier(config.webhookUrl) } : {}),
  };
  const workerFunction = env.APPS_DEPLOYER_WORKER_FUNCTION;
  if (workerFunction) cp.worker = parts.lambdaWorker ? parts.lambdaWorker(workerFunction) : unwired<WorkerPort>('deploy worker');
  else if (env.AWS_LAMBDA_FUNCTION_NAME) {
    // Inside Lambda the process freezes once the response is sent: an in-process deploy would never finish.
    cp.worker = {
      start: async () => {
        throw new ConfigError('APPS_DEPLOYER_WORKER_FUNCTION is not set: the deploy endpoint needs the worker function name');
      },
    };
  } else cp.worker = parts.inProcessWorker ? parts.inProcessWorker(() => cp) : unwired<WorkerPort>('deploy worker');
  return cp;
}

/**
 * A port a handler did not wire in: every method throws, naming the port, so that a handler that calls one it does not
 * bundle fails on that call with a clear message (a 500) instead of on some undefined property.
 */
export function unwired<T extends object>(port: string): T {
  return new Proxy({} as T, {
    get: (_target, prop) => {
      // Not a method: promise resolution and inspection probe these on any object.
      if (typeof prop === 'symbol' || prop === 'then' || prop === 'toJSON') return undefined;
      return () => {
        throw new Error(`${port} port is not wired into this handler (${String(prop)} called): add it where the handler builds its runtime`);
      };
    },
  });
}

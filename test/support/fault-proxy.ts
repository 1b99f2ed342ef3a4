// A fault-injecting reverse proxy between the AWS SDK and moto (design.md §2 "Wait and retry"): it forwards every
// request, and for a seeded-random fraction answers instead with the error AWS itself would send for that service
// (throttling, 5xx, Lambda's ResourceConflictException) or drops the connection. An answered fault is never
// forwarded, so it has no side effect; the one exception is `drop-after`, which forwards the request, lets moto do
// it, and then loses the response: the client's retry must be idempotent.
import { randomUUID } from 'node:crypto';
import { Agent, createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type AwsService = 's3' | 'iam' | 'lambda' | 'other';

export type FaultKind =
  /** S3 503 SlowDown, IAM 400 Throttling, Lambda 429 TooManyRequestsException. */
  | 'throttle'
  /** 500: S3 InternalError, IAM ServiceFailure, Lambda ServiceException. */
  | 'internal'
  /** 503: S3/IAM ServiceUnavailable, Lambda ServiceException with 503. */
  | 'unavailable'
  /** Lambda 409 ResourceConflictException, on write calls (POST/PUT) only. */
  | 'conflict'
  /** The connection is destroyed before the request is forwarded: no response, no side effect. */
  | 'drop-before'
  /** The request is forwarded and done by moto, then the connection is destroyed: the response is lost. */
  | 'drop-after';

export const ALL_FAULTS: readonly FaultKind[] = ['throttle', 'internal', 'unavailable', 'conflict', 'drop-before', 'drop-after'];

/** How often each kind is chosen among the faults that apply to a request; `drop-after` is the rarest. */
const DEFAULT_WEIGHTS: Record<FaultKind, number> = {
  throttle: 4,
  internal: 2,
  unavailable: 2,
  // Applies to Lambda writes only, which are few (a CreateFunction per function): weighted up so that twenty deploys meet it.
  conflict: 6,
  'drop-before': 2,
  'drop-after': 1,
};

export interface FaultProxyOptions {
  /** moto's endpoint, `http://127.0.0.1:PORT`. */
  target: string;
  /** Fraction of requests (0–1) that get a fault. Default 0.2. */
  rate?: number;
  /** Seed of the random choices. Default 1. */
  seed?: number;
  /** The kinds to inject. Default: all of them. */
  faults?: readonly FaultKind[];
  /** Relative weights of the kinds. Default: DEFAULT_WEIGHTS. */
  weights?: Partial<Record<FaultKind, number>>;
  /** Services to fault; others are always forwarded. Default: s3, iam, lambda. */
  services?: readonly AwsService[];
  /** Only requests this accepts may get a fault (e.g. one operation, for a targeted test). Default: all. */
  only?: (request: { service: AwsService; method: string; path: string }) => boolean;
  /**
   * Answer as AWS where moto does not, when it matters to a retry: CreateFunction of a function that exists is 409
   * ResourceConflictException "Function already exist" on AWS, while moto silently replaces the function, which would
   * hide a retry that is not idempotent. Default true.
   */
  awsSemantics?: boolean;
  /**
   * A kind this proxy has not injected yet is chosen before any other that applies to the request. Some kinds apply to
   * few requests (`conflict`: Lambda writes only, a handful per deploy), so by weight alone a run of twenty deploys
   * could miss one now and then; with this, a run that claims to have met every kind does, whatever the request order.
   * Default false.
   */
  everyKindFirst?: boolean;
}

export interface FaultStats {
  /** Every request the proxy received (moto-api ones included). */
  requests: number;
  /** Requests forwarded to moto, including the `drop-after` ones. */
  forwarded: number;
  /** Requests that got a fault of any kind. */
  faulted: number;
  /** Faults by kind. */
  byKind: Record<FaultKind, number>;
  /** Requests and faults by service. */
  byService: Record<AwsService, { requests: number; faulted: number }>;
  /** Faults by `service kind status` (e.g. `s3 throttle 503 SlowDown`), for the report. */
  byLabel: Record<string, number>;
  /** Errors talking to moto (the proxy then answers 502, which the SDK retries). Should stay 0. */
  upstreamErrors: number;
  /** Answers given as AWS would where moto differs (see awsSemantics), by label. */
  emulated: Record<string, number>;
}

export interface FaultProxy {
  /** `http://127.0.0.1:PORT`, for AWS_ENDPOINT_URL. */
  url: string;
  stats: FaultStats;
  setRate(rate: number): void;
  resetStats(): void;
  close(): Promise<void>;
}

/** mulberry32: small, fast, good enough for picking faults, and the same sequence for the same seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The signing service from the SigV4 credential scope (header, or query of a presigned URL), as test/support/moto.ts reads it. */
export function serviceOf(headers: IncomingHttpHeaders, url: string): AwsService {
  const authorization = typeof headers.authorization === 'string' ? headers.authorization : '';
  let scope = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\/aws4_request/.exec(authorization)?.[1];
  if (!scope) {
    const credential = new URL(url, 'http://proxy').searchParams.get('X-Amz-Credential') ?? '';
    scope = credential.split('/')[3];
  }
  return scope === 's3' || scope === 'iam' || scope === 'lambda' ? scope : 'other';
}

/** Zero counts, e.g. to add up the stats of several runs. */
export const emptyStats = (): FaultStats => ({
  requests: 0,
  forwarded: 0,
  faulted: 0,
  byKind: Object.fromEntries(ALL_FAULTS.map((k) => [k, 0])) as Record<FaultKind, number>,
  byService: { s3: { requests: 0, faulted: 0 }, iam: { requests: 0, faulted: 0 }, lambda: { requests: 0, faulted: 0 }, other: { requests: 0, faulted: 0 } },
  byLabel: {},
  upstreamErrors: 0,
  emulated: {},
});

interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
  label: string;
}

function s3Error(status: number, code: string, message: string, requestId: string): ErrorAnswer {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>` +
    `<RequestId>${requestId}</RequestId><HostId>${Buffer.from(requestId).toString('base64')}</HostId></Error>`;
  return { status, headers: { 'content-type': 'application/xml', 'x-amz-request-id': requestId }, body, label: `${status} ${code}` };
}

function iamError(status: number, type: 'Sender' | 'Receiver', code: string, message: string, requestId: string): ErrorAnswer {
  const body =
    `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>${type}</Type><Code>${code}</Code>` +
    `<Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`;
  return { status, headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId }, body, label: `${status} ${code}` };
}

function lambdaError(status: number, type: string, message: string, requestId: string, extra: Record<string, string> = {}): ErrorAnswer {
  const body = JSON.stringify({ Type: status >= 500 ? 'Service' : 'User', message, __type: type, ...extra });
  return {
    status,
    headers: { 'content-type': 'application/json', 'x-amzn-errortype': type, 'x-amzn-requestid': requestId },
    body,
    label: `${status} ${type}`,
  };
}

/** The error AWS answers for `kind` on that service; undefined when the kind does not apply to the request. */
export function errorAnswer(service: AwsService, kind: FaultKind, method: string, path: string): ErrorAnswer | undefined {
  const id = randomUUID();
  switch (service) {
    case 's3':
      if (kind === 'throttle') return s3Error(503, 'SlowDown', 'Please reduce your request rate.', id);
      if (kind === 'internal') return s3Error(500, 'InternalError', 'We encountered an internal error. Please try again.', id);
      if (kind === 'unavailable') return s3Error(503, 'ServiceUnavailable', 'Service is unable to handle request.', id);
      return undefined;
    case 'iam':
      if (kind === 'throttle') return iamError(400, 'Sender', 'Throttling', 'Rate exceeded', id);
      if (kind === 'internal') return iamError(500, 'Receiver', 'ServiceFailure', 'The request processing has failed because of an unknown error, exception or failure.', id);
      if (kind === 'unavailable') return iamError(503, 'Receiver', 'ServiceUnavailable', 'Service is unavailable.', id);
      return undefined;
    case 'lambda': {
      const fn = /\/functions\/([^/]+)/.exec(path)?.[1];
      if (kind === 'throttle') return lambdaError(429, 'TooManyRequestsException', 'Rate exceeded', id, { Reason: 'CallerRateLimitExceeded' });
      if (kind === 'internal') return lambdaError(500, 'ServiceException', 'An internal error occurred.', id);
      if (kind === 'unavailable') return lambdaError(503, 'ServiceException', 'Service unavailable.', id);
      if (kind === 'conflict' && (method === 'POST' || method === 'PUT')) {
        const what = fn ? `arn:aws:lambda:us-east-1:123456789012:function:${decodeURIComponent(fn)}` : 'the function';
        return lambdaError(409, 'ResourceConflictException', `The operation cannot be performed at this time. An update is in progress for resource: ${what}`, id);
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** Hop-by-hop headers, and `expect` (this proxy already answered 100 Continue to the client). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect']);

/** rawHeaders without the hop-by-hop ones, still flat (`[name, value, name, value, …]`), as node:http takes them. */
function forwardHeaders(raw: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!HOP_BY_HOP.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  return out;
}

function drain(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    if (req.readableEnded) return resolve();
    req.on('end', resolve);
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.resume();
  });
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const random = seededRandom(options.seed ?? 1);
  let rate = options.rate ?? 0.2;
  const enabled = new Set(options.faults ?? ALL_FAULTS);
  const weights = { ...DEFAULT_WEIGHTS, ...options.weights };
  const services = new Set(options.services ?? ['s3', 'iam', 'lambda']);
  const awsSemantics = options.awsSemantics ?? true;
  let stats = emptyStats();
  /** Every kind injected since start, across resetStats (for everyKindFirst). */
  const injected = new Set<FaultKind>();
  const upstreamAgent = new Agent({ keepAlive: true, maxSockets: 64 });
  const sockets = new Set<Socket>();

  /** The fault for this request, or undefined to forward it untouched. */
  const choose = (service: AwsService, method: string, path: string): { kind: FaultKind; answer?: ErrorAnswer } | undefined => {
    // Draw both numbers for every request, so that the sequence does not depend on which faults apply.
    const roll = random();
    const pick = random();
    if (roll >= rate || !services.has(service) || (options.only && !options.only({ service, method, path }))) return undefined;
    const candidates: Array<{ kind: FaultKind; answer?: ErrorAnswer; weight: number }> = [];
    for (const kind of enabled) {
      const weight = weights[kind] ?? 0;
      if (weight <= 0) continue;
      if (kind === 'drop-before' || kind === 'drop-after') candidates.push({ kind, weight });
      else {
        const answer = errorAnswer(service, kind, method, path);
        if (answer) candidates.push({ kind, answer, weight });
      }
    }
    const unseen = options.everyKindFirst ? candidates.filter((c) => !injected.has(c.kind)) : [];
    if (unseen.length > 0) candidates.splice(0, candidates.length, ...unseen);
    const total = candidates.reduce((s, c) => s + c.weight, 0);
    if (total === 0) return undefined;
    let at = pick * total;
    for (const c of candidates) {
      if ((at -= c.weight) < 0) return c;
    }
    return candidates[candidates.length - 1];
  };

  const record = (service: AwsService, kind: FaultKind, label: string) => {
    injected.add(kind);
    stats.faulted++;
    stats.byKind[kind]++;
    stats.byService[service].faulted++;
    const key = `${service} ${kind} ${label}`.trim();
    stats.byLabel[key] = (stats.byLabel[key] ?? 0) + 1;
  };

  /** Forwards to moto; `onResponse` gets moto's response (streaming). */
  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    onResponse: (upstream: IncomingMessage) => void,
    onError: (err: Error) => void,
    buffered?: Buffer,
  ) => {
    stats.forwarded++;
    let upstreamDone = false;
    const upstream = httpRequest(
      {
        protocol: target.protocol,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        // Host stays what the client signed; moto does not check signatures and reads the bucket from the path.
        headers: forwardHeaders(req.rawHeaders) as unknown as Record<string, string>,
        agent: upstreamAgent,
      },
      (response) => {
        response.once('end', () => (upstreamDone = true));
        onResponse(response);
      },
    );
    upstream.on('error', onError);
    // Streamed both ways: a 60 MB upload never sits in memory here (only small JSON bodies are ever buffered).
    if (buffered) upstream.end(buffered);
    else req.pipe(upstream);
    // A client that went away (its own timeout) takes its upstream request with it.
    res.once('close', () => {
      if (!upstreamDone) upstream.destroy();
    });
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    stats.requests++;
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', 'http://proxy').pathname;
    const service = serviceOf(req.headers, req.url ?? '/');
    stats.byService[service].requests++;
    // moto's own API (reset, config, recorder) is the test's, never the code's: never faulted.
    const fault = path.startsWith('/moto-api') ? undefined : choose(service, method, path);

    if (fault?.kind === 'drop-before') {
      record(service, 'drop-before', 'connection reset before forwarding');
      req.socket.destroy();
      return;
    }
    if (fault?.answer) {
      const answer = fault.answer;
      record(service, fault.kind, answer.label);
      // Read the whole body first (as a server that validated it would), then answer; nothing reaches moto.
      void drain(req).then(() => {
        if (res.destroyed) return;
        const body = method === 'HEAD' ? '' : answer.body;
        res.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) });
        res.end(body);
      });
      return;
    }
    const dropAfter = fault?.kind === 'drop-after';
    if (awsSemantics && service === 'lambda' && method === 'POST' && /^\/2015-03-31\/functions\/?$/.test(path)) {
      void createFunctionAsAws(req, res, dropAfter);
      return;
    }
    proxyTo(req, res, service, dropAfter);
  };

  /** CreateFunction: 409 "Function already exist" when moto has the function (moto would replace it), else forwarded. */
  const createFunctionAsAws = async (req: IncomingMessage, res: ServerResponse, dropAfter: boolean) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    let name: string | undefined;
    try {
      name = (JSON.parse(body.toString('utf8')) as { FunctionName?: string }).FunctionName;
    } catch {
      // Not JSON: moto answers what it answers.
    }
    if (name && (await upstreamStatus(`/2015-03-31/functions/${encodeURIComponent(name)}/configuration`, req.headers)) === 200) {
      stats.emulated['lambda CreateFunction of an existing function: 409 ResourceConflictException'] =
        (stats.emulated['lambda CreateFunction of an existing function: 409 ResourceConflictException'] ?? 0) + 1;
      const answer = lambdaError(409, 'ResourceConflictException', `Function already exist: ${name}`, randomUUID());
      res.writeHead(answer.status, { ...answer.headers, 'content-length': String(Buffer.byteLength(answer.body)) });
      res.end(answer.body);
      return;
    }
    proxyTo(req, res, 'lambda', dropAfter, body);
  };

  /** The status moto answers to a GET (with the client's Authorization header, by which moto tells the service). */
  const upstreamStatus = (path: string, headers: IncomingHttpHeaders) =>
    new Promise<number>((resolveStatus) => {
      const check = httpRequest(
        { protocol: target.protocol, hostname: target.hostname, port: target.port, method: 'GET', path, agent: upstreamAgent, headers: { authorization: headers.authorization ?? '' } },
        (r) => {
          r.resume();
          r.on('end', () => resolveStatus(r.statusCode ?? 0));
        },
      );
      check.on('error', () => resolveStatus(0));
      check.end();
    });

  const proxyTo = (req: IncomingMessage, res: ServerResponse, service: AwsService, dropAfter: boolean, buffered?: Buffer) => {
    forward(
      req,
      res,
      (upstream) => {
        if (dropAfter) {
          // moto has done the request; read its answer to the end, then lose it.
          upstream.resume();
          upstream.on('end', () => {
            record(service, 'drop-after', `${upstream.statusCode ?? 0} response lost`);
            req.socket.destroy();
          });
          return;
        }
        const headers = forwardHeaders(upstream.rawHeaders);
        res.writeHead(upstream.statusCode ?? 502, upstream.statusMessage, headers);
        upstream.pipe(res);
        upstream.on('error', () => res.destroy());
      },
      (err) => {
        stats.upstreamErrors++;
        if (res.headersSent || res.destroyed) return void res.destroy();
        const body = `upstream error: ${err.message}`;
        res.writeHead(502, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)) });
        res.end(body);
      },
      buffered,
    );
  };

  const server = createServer(handle);
  // A client that gave up mid-request must not crash the proxy.
  server.on('clientError', (_err, socket) => socket.destroy());
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get stats() {
      return stats;
    },
    setRate(r: number) {
      if (!(r >= 0 && r <= 1)) throw new Error(`fault rate must be within 0..1, got ${r}`);
      rate = r;
    },
    resetStats() {
      stats = emptyStats();
    },
    async close() {
      for (const s of sockets) s.destroy();
      upstreamAgent.destroy();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

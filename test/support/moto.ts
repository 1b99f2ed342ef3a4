// A real moto server (design.md §6) for the integration tests: started on a free loopback port,
// configured so Lambda needs no Docker, with the request recorder available.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The moto_server that scripts/moto-venv.sh installs, unless MOTO_SERVER_BIN names another. */
export function motoServerBin(): string {
  return process.env.MOTO_SERVER_BIN || join(repoRoot, '.venv', 'bin', 'moto_server');
}

export interface MotoServer {
  /** `http://127.0.0.1:PORT`, for AWS_ENDPOINT_URL and the helpers below. */
  endpoint: string;
  port: number;
  /** The JSON-lines file the recorder appends to (MOTO_RECORDER_FILEPATH). */
  recordingPath: string;
  /** The last 64 KiB moto wrote to stdout and stderr (werkzeug logs one line per request there). */
  logs(): string;
  stop(): Promise<void>;
  /** Empties every backend, stops and clears the recorder, and turns Docker-less Lambda back on. */
  reset(): Promise<void>;
}

export interface StartMotoOptions {
  /** Default: motoServerBin(). */
  bin?: string;
  /** How long to wait for the server to answer HTTP. Default 30 s. */
  startTimeoutMs?: number;
}

const STDERR_TAIL_BYTES = 64 * 1024;
const PORT_ATTEMPTS = 3;

export async function startMoto(options: StartMotoOptions = {}): Promise<MotoServer> {
  const bin = options.bin ?? motoServerBin();
  if (!existsSync(bin)) {
    throw new Error(
      `moto_server not found at ${bin}: run \`npm run moto:venv\` (scripts/moto-venv.sh) ` +
        'or set MOTO_SERVER_BIN to an installed moto_server',
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'apps-deployer-moto-'));
  const recordingPath = join(dir, 'recording.jsonl');
  // download-recording opens this file for reading, and answers 500 when it does not exist yet.
  await writeFile(recordingPath, '');

  try {
    // Asking the OS for a free port and then handing it to moto leaves a short window in which another
    // process can take it; a bind failure is retried on a fresh port rather than failing the run.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      try {
        return await launch(bin, port, dir, recordingPath, options.startTimeoutMs ?? 30_000);
      } catch (error) {
        if (!(error instanceof PortInUseError) || attempt >= PORT_ATTEMPTS) throw error;
      }
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

class PortInUseError extends Error {}

async function launch(
  bin: string,
  port: number,
  dir: string,
  recordingPath: string,
  startTimeoutMs: number,
): Promise<MotoServer> {
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], {
    env: {
      ...process.env,
      // Without the AWS-managed policies, attaching AWSLambdaBasicExecutionRole fails with NoSuchEntity.
      MOTO_IAM_LOAD_MANAGED_POLICIES: 'true',
      MOTO_RECORDER_FILEPATH: recordingPath,
      // Recording starts only when a test asks for it, so that it sees its own calls only.
      MOTO_ENABLE_RECORDING: '',
      PYTHONUNBUFFERED: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  // Both pipes must be drained for the whole life of the server: werkzeug writes a line per request,
  // and a full pipe would block moto mid-request.
  // The last STDERR_TAIL_BYTES of moto's output, as chunks: moto logs a line per request, and a string of the whole tail
  // rebuilt for each line was ~20 MB of garbage in the process that deploys in the benchmark (a fifth of its JS heap
  // allocations), collected in the time the benchmark measures.
  const chunks: Buffer[] = [];
  let kept = 0;
  const keep = (chunk: Buffer) => {
    chunks.push(chunk);
    kept += chunk.length;
    while (chunks.length > 1 && kept - chunks[0]!.length >= STDERR_TAIL_BYTES) kept -= chunks.shift()!.length;
  };
  const tail = () => Buffer.concat(chunks).subarray(-STDERR_TAIL_BYTES).toString('utf8');
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolveExit) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolveExit();
    });
  });
  let spawnError: Error | undefined;
  // `on`, not `once`: a second 'error' without a listener would crash the test run.
  child.on('error', (error) => {
    spawnError ??= error;
  });

  // A test run that dies without teardown must not leave moto holding the port.
  const killOnExit = () => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const stop = async (): Promise<void> => {
    process.removeListener('exit', killOnExit);
    if (!exited && !spawnError) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exitPromise;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await waitUntilAnswering(endpoint, child, startTimeoutMs, () => exited, () => spawnError, tail);
    await configureMoto(endpoint);
  } catch (error) {
    process.removeListener('exit', killOnExit);
    // A process that failed to spawn may never emit 'exit'.
    if (!exited && !spawnError) {
      child.kill('SIGKILL');
      await exitPromise;
    }
    throw error;
  }

  return {
    endpoint,
    port,
    recordingPath,
    logs: tail,
    stop,
    reset: () => resetMoto(endpoint),
  };
}

async function waitUntilAnswering(
  endpoint: string,
  child: ChildProcess,
  timeoutMs: number,
  exited: () => { code: number | null; signal: NodeJS.Signals | null } | undefined,
  spawnError: () => Error | undefined,
  stderr: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const failedToSpawn = spawnError();
    if (failedToSpawn) throw new Error(`could not start moto_server: ${failedToSpawn.message}`);
    const died = exited();
    if (died) {
      const log = stderr();
      if (/Address already in use/i.test(log)) throw new PortInUseError(log);
      throw new Error(
        `moto_server (pid ${child.pid}) exited during start-up ` +
          `(code ${died.code}, signal ${died.signal}); its output:\n${log}`,
      );
    }
    try {
      const response = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `moto_server did not answer on ${endpoint} within ${timeoutMs} ms; its output:\n${stderr()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Asks the OS for a port nobody listens on, by binding port 0 and releasing it. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no TCP port from the OS');
  return address.port;
}

async function motoApi(endpoint: string, path: string, body?: unknown): Promise<string> {
  const response = await fetch(`${endpoint}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // moto reads the body by Content-Length, so always send one (even empty).
    body: body === undefined ? '' : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`moto ${path} answered ${response.status}: ${text}`);
  return text;
}

/**
 * Lambda without Docker: Invoke then echoes its payload or pops a queued answer. The backend is chosen
 * on every request from this setting, so it must be on before any function is created, or functions
 * land in the Docker backend and become invisible once it is turned on.
 */
export async function configureMoto(endpoint: string): Promise<void> {
  await motoApi(endpoint, '/moto-api/config', { lambda: { use_docker: false } });
}

/**
 * Empties every moto backend (including queued Lambda answers) between test files. moto's reset
 * keeps the config and the recorder state, so the recorder is stopped and cleared here too, and the
 * config is set again in case a test changed it.
 */
export async function resetMoto(endpoint: string): Promise<void> {
  await motoRecorder.stop(endpoint);
  await motoApi(endpoint, '/moto-api/reset');
  await configureMoto(endpoint);
  await motoRecorder.clear(endpoint);
}

/** One request as moto's recorder wrote it, with the body decoded. */
export interface RecordedMotoRequest {
  method: string;
  /** The absolute URL as moto saw it, still percent-encoded, e.g. `http://127.0.0.1:PORT/bucket/key?x-id=PutObject`. */
  url: string;
  /** Path part of `url`, still percent-encoded. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  /**
   * The raw body bytes (moto stores them base64-encoded). moto reads them by Content-Length only, so a
   * request without one records an empty body: a GET, and an SDK upload of a stream, which the SDK
   * sends with `Transfer-Encoding: chunked` + `Content-Encoding: aws-chunked` (the object itself is
   * stored fine). A Buffer or string upload records its plain bytes.
   */
  body: Buffer;
  /** `body` as UTF-8, for JSON and form bodies. */
  bodyText: string;
  /** The signing service from the SigV4 Authorization header (`s3`, `iam`, `lambda`, …), or '' for /moto-api calls. */
  service: string;
  /**
   * Best effort operation name: the `Action` of query-protocol services (IAM, STS), S3's `x-id`, or
   * `METHOD path` for REST services such as Lambda (e.g. `POST /2015-03-31/functions`).
   */
  operation: string;
}

interface RawRecorderEntry {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | null;
  body_encoded: boolean;
}

async function recorderCall(endpoint: string, action: string): Promise<string> {
  // The recorder routes accept any method; GET keeps them free of bodies.
  const response = await fetch(`${endpoint}/moto-api/recorder/${action}`);
  const text = await response.text();
  if (!response.ok) throw new Error(`moto recorder ${action} answered ${response.status}: ${text}`);
  return text;
}

export const motoRecorder = {
  /** Appends every later request (except /moto-api/recorder/* itself) to the recording. */
  async start(endpoint: string): Promise<void> {
    await recorderCall(endpoint, 'start-recording');
  },
  async stop(endpoint: string): Promise<void> {
    await recorderCall(endpoint, 'stop-recording');
  },
  /** Empties the recording; recording goes on if it was on. */
  async clear(endpoint: string): Promise<void> {
    await recorderCall(endpoint, 'reset-recording');
  },
  /** Runs `fn` with the recorder on, from an empty recording: what reached the server, not what the SDK meant to send. */
  async record<T>(endpoint: string, fn: () => Promise<T>): Promise<{ value: T; requests: RecordedMotoRequest[] }> {
    await this.clear(endpoint);
    await this.start(endpoint);
    try {
      const value = await fn();
      return { value, requests: await this.download(endpoint) };
    } finally {
      await this.stop(endpoint);
    }
  },
  async download(endpoint: string): Promise<RecordedMotoRequest[]> {
    const text = await recorderCall(endpoint, 'download-recording');
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => decodeEntry(JSON.parse(line) as RawRecorderEntry));
  },
};

function decodeEntry(raw: RawRecorderEntry): RecordedMotoRequest {
  const parsed = new URL(raw.url);
  const body =
    raw.body == null ? Buffer.alloc(0) : raw.body_encoded ? Buffer.from(raw.body, 'base64') : Buffer.from(raw.body, 'utf8');
  const bodyText = body.toString('utf8');
  const headers = raw.headers;
  const authorization = headerValue(headers, 'authorization') ?? '';
  const service = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\/aws4_request/.exec(authorization)?.[1] ?? '';
  return {
    method: raw.method,
    url: raw.url,
    path: parsed.pathname,
    query: parsed.searchParams,
    headers,
    body,
    bodyText,
    service,
    operation: operationOf(raw.method, parsed, headers, bodyText),
  };
}

function operationOf(method: string, url: URL, headers: Record<string, string>, bodyText: string): string {
  const xId = url.searchParams.get('x-id');
  if (xId) return xId;
  const contentType = headerValue(headers, 'content-type') ?? '';
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    const action = new URLSearchParams(bodyText).get('Action');
    if (action) return action;
  }
  const queryAction = url.searchParams.get('Action');
  if (queryAction) return queryAction;
  return `${method} ${url.pathname}`;
}

export function headerValue(headers: Record<string, string>, name: string): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

/**
 * Queues answers for the next Invoke calls of Docker-less Lambda in that account and region, one per
 * call, first in first out (for any function). Without a queued answer Invoke echoes its payload.
 */
export async function queueLambdaResults(
  endpoint: string,
  results: string[],
  region = 'us-east-1',
  accountId = '123456789012',
): Promise<void> {
  await motoApi(endpoint, '/moto-api/static/lambda-simple/response', {
    results,
    region,
    account_id: accountId,
  });
}

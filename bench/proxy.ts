// A counting, delaying HTTP proxy in front of moto (bench only).
//
// Every request the deploy makes goes through it, so it is where "bytes uploaded" is measured honestly: the request
// body bytes as they cross the wire (SigV4 aws-chunked framing included), summed per AWS service (read from the
// SigV4 credential scope) and per method. With `delayMs` > 0 it holds each request that long before forwarding it,
// which is what a region's S3 and Lambda endpoints add to every call compared with moto on loopback (the WAN profile).
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RequestRecord {
  method: string;
  service: string;
  /** Path and query as the client sent them (percent-encoded). */
  url: string;
  /** Request body bytes as sent (what the client uploaded on this request). */
  bodyBytes: number;
  status: number;
  /** When the proxy received the request, ms since the last reset. */
  start: number;
  /** Time from receipt to the end of the response (the added delay included). */
  ms: number;
}

export interface ServiceStats {
  requests: number;
  /** Body bytes of PUT and POST requests: what was uploaded. */
  uploadBytes: number;
  /** PUT and POST requests. */
  writes: number;
}

export interface ProxyStats {
  requests: number;
  errors: number;
  uploadBytes: number;
  byService: Record<string, ServiceStats>;
}

export interface DelayProxy {
  url: string;
  delayMs: number;
  setDelay(ms: number): void;
  /** Totals since the last reset. */
  stats(): ProxyStats;
  /** Every request since the last reset, in order of completion. */
  records(): RequestRecord[];
  reset(): void;
  close(): Promise<void>;
}

const SCOPE = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\/aws4_request/;

function serviceOf(req: http.IncomingMessage): string {
  const auth = req.headers.authorization ?? '';
  const m = SCOPE.exec(auth);
  if (m?.[1]) return m[1];
  return req.url?.startsWith('/moto-api') ? 'moto-api' : 'unsigned';
}

/**
 * Headers that concern one connection only (RFC 9110 §7.6.1), which a proxy must not pass on. moto answers every
 * request with `Connection: close`; dropping it here keeps the client's connections to the proxy alive, as they would
 * be to AWS, while the proxy opens a fresh connection to moto for each request.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect']);

function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

export async function startProxy(target: string, delayMs = 0): Promise<DelayProxy> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  let delay = delayMs;
  let records: RequestRecord[] = [];
  let errors = 0;
  let epoch = performance.now();
  const sockets = new Set<Socket>();

  const server = http.createServer((req, res) => {
    const started = performance.now();
    const service = serviceOf(req);
    let bodyBytes = 0;
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
    });
    // Paused until forwarded: during the delay the client's body waits in the socket (TCP backpressure).
    req.pause();
    const forward = () => {
      const out = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          // The Host header is left as the client signed it; moto does not check signatures.
          headers: withoutHopByHop(req.headers),
          agent,
        },
        (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, withoutHopByHop(upRes.headers));
          upRes.pipe(res);
          upRes.on('end', () => {
            records.push({ method: req.method ?? '', service, url: req.url ?? '', bodyBytes, status: upRes.statusCode ?? 0, start: started - epoch, ms: performance.now() - started });
          });
        },
      );
      out.on('error', (err) => {
        errors++;
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`bench proxy: ${err.message}`);
      });
      req.pipe(out);
      req.resume();
    };
    if (delay > 0) setTimeout(forward, delay);
    else forward();
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get delayMs() {
      return delay;
    },
    setDelay(ms: number) {
      delay = ms;
    },
    stats() {
      const byService: Record<string, ServiceStats> = {};
      let uploadBytes = 0;
      for (const r of records) {
        const s = (byService[r.service] ??= { requests: 0, uploadBytes: 0, writes: 0 });
        s.requests++;
        if (r.method === 'PUT' || r.method === 'POST') {
          s.writes++;
          s.uploadBytes += r.bodyBytes;
          uploadBytes += r.bodyBytes;
        }
      }
      return { requests: records.length, errors, uploadBytes, byService };
    },
    records: () => records.slice(),
    reset() {
      records = [];
      errors = 0;
      epoch = performance.now();
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      agent.destroy();
    },
  };
}

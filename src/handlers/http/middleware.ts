import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { z } from 'zod';
import { AppsDeployerError, BadRequestError, ForbiddenError, UnauthorizedError, type ErrorDetail } from '../../core/errors';
import type { Logger } from '../../core/logger';

/**
 * The middlewares every HTTP handler shares (design.md §3). A handler only holds its business step; parsing,
 * validation, auth, error mapping and request logs live here.
 */
export type HttpEvent = APIGatewayProxyEventV2 & { parsedBody?: unknown; validBody?: unknown };
export type HttpResult = APIGatewayProxyStructuredResultV2;

export function jsonResponse(statusCode: number, body: unknown, raw?: string): HttpResult {
  // no-store: responses carry deployment state and, once, a new access key; no cache should keep them.
  return { statusCode, headers: { 'content-type': 'application/json', 'cache-control': 'no-store' }, body: raw ?? JSON.stringify(body) };
}

export function errorBody(code: string, message: string, details: ErrorDetail[] = []) {
  return { error: { code, message, details } };
}

/** Maps any error to `{"error": {code, message, details}}`. Unknown errors say nothing of their insides. */
export function httpErrors(logger: Logger): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    name: 'httpErrors',
    onError: (request) => {
      const err = request.error;
      if (err instanceof AppsDeployerError) {
        if (err.status >= 500) logger.error('request failed', { code: err.code, error: err.message });
        request.response = jsonResponse(err.status, errorBody(err.code, err.message, err.details));
        return;
      }
      logger.error('unexpected error', { error: err instanceof Error ? err.message : String(err), name: (err as Error)?.name });
      request.response = jsonResponse(500, errorBody('INTERNAL', 'internal error'));
    },
  };
}

/** One structured line per request: route, status, duration. Headers and bodies are not logged (they carry tokens). */
export function requestLog(logger: Logger): MiddlewareObj<HttpEvent, HttpResult> {
  const started = new WeakMap<object, number>();
  const done = (request: { event: HttpEvent; response: HttpResult | null; context: object }) => {
    const t0 = started.get(request.context) ?? Date.now();
    logger.info('request', {
      method: request.event.requestContext?.http?.method,
      route: request.event.routeKey,
      status: request.response?.statusCode,
      ms: Date.now() - t0,
    });
  };
  return {
    name: 'requestLog',
    before: (request) => {
      started.set(request.context, Date.now());
    },
    after: done,
    onError: (request) => {
      // httpErrors runs first on the way out (reverse order) and has set the response by now.
      done(request);
    },
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Constant-time: compares fixed-length digests, and always compares against every accepted token. */
export function tokenMatches(presented: string, accepted: string[]): boolean {
  const p = digest(presented);
  let ok = false;
  for (const token of accepted) ok = timingSafeEqual(p, digest(token)) || ok;
  return ok;
}

export type Access = 'admin' | 'read';

/**
 * Bearer auth. Missing or malformed header → 401; a token that is not accepted → 403. The answer never says which
 * tokens exist. `tokens` is resolved lazily so configuration errors surface as 500s through httpErrors.
 */
export function bearerAuth(access: Access, tokens: () => Promise<{ admin: string; status?: string }>): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    name: 'bearerAuth',
    before: async (request) => {
      const headers = request.event.headers ?? {};
      const header = Object.entries(headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
      const match = header?.match(/^bearer\s+(\S+)\s*$/i);
      if (!match) throw new UnauthorizedError('missing bearer token');
      const t = await tokens();
      const accepted = access === 'admin' || t.status === undefined ? [t.admin] : [t.admin, t.status];
      if (!tokenMatches(match[1]!, accepted)) throw new ForbiddenError('token not accepted');
    },
  };
}

/** Parses a JSON body (base64 too); no body parses as `{}` so that all-optional schemas accept an empty POST. */
export function jsonBody(): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    name: 'jsonBody',
    before: (request) => {
      const { body, isBase64Encoded } = request.event;
      if (body === undefined || body === null || body === '') {
        request.event.parsedBody = {};
        return;
      }
      const text = isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body;
      try {
        request.event.parsedBody = JSON.parse(text);
      } catch (err) {
        throw new BadRequestError(`request body is not valid JSON: ${(err as Error).message}`, { cause: err });
      }
    },
  };
}

export function zodIssues(error: z.ZodError): ErrorDetail[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(body)', message: i.message }));
}

export function validateBody(schema: z.ZodType): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    name: 'validateBody',
    before: (request) => {
      const parsed = schema.safeParse(request.event.parsedBody);
      if (!parsed.success) {
        const details = zodIssues(parsed.error);
        throw new BadRequestError(`invalid request body: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, { details });
      }
      request.event.validBody = parsed.data;
    },
  };
}

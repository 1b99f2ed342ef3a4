import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import { bearerAuth, httpErrors, jsonBody, jsonResponse, requestLog, validateBody, type Access, type HttpEvent, type HttpResult } from './middleware';
import { getConfig, logger } from './runtime';

export interface HttpRequest<B, R> {
  body: B;
  params: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  runtime: R;
  event: HttpEvent;
}

/** A handler's answer: a body (status 200) or an explicit status, and optionally a pre-serialised body. */
export interface HttpAnswer {
  status: number;
  body?: unknown;
  raw?: string;
}

/**
 * Wraps a business step in the shared stack: request log → error mapping → bearer auth → JSON body → zod validation.
 * `runtime` is the one of src/handlers/http/runtime.ts that the step needs: it decides which SDK clients the handler's
 * bundle carries.
 */
export function httpHandler<S extends z.ZodType, R>(
  opts: { access: Access; body?: S; runtime: () => Promise<R> },
  step: (req: HttpRequest<z.infer<S>, R>, context: Context) => Promise<HttpAnswer>,
) {
  const stack = middy<HttpEvent, HttpResult>()
    .use(requestLog(logger))
    .use(httpErrors(logger))
    .use(
      bearerAuth(opts.access, async () => {
        const config = await getConfig();
        return { admin: config.adminToken, ...(config.statusToken ? { status: config.statusToken } : {}) };
      }),
    );
  if (opts.body) stack.use(jsonBody()).use(validateBody(opts.body));
  return stack.handler(async (event, context) => {
    const runtime = await opts.runtime();
    const answer = await step(
      {
        body: event.validBody as z.infer<S>,
        params: event.pathParameters ?? {},
        query: event.queryStringParameters ?? {},
        runtime,
        event,
      },
      context,
    );
    return jsonResponse(answer.status, answer.body, answer.raw);
  });
}

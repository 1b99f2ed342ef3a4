import type { z } from 'zod';
import { BadRequestError } from '../../core/errors';
import { zodIssues } from './middleware';

/** Query strings as API Gateway hands them over (every value a string), validated like bodies are: 400 with every problem. */
export function validQuery<S extends z.ZodType>(schema: S, query: Record<string, string | undefined>): z.output<S> {
  const defined = Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined));
  const parsed = schema.safeParse(defined);
  if (!parsed.success) {
    const details = zodIssues(parsed.error).map((d) => ({ ...d, path: `query.${d.path}` }));
    throw new BadRequestError(`invalid query string: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, { details });
  }
  return parsed.data;
}

import { z } from 'zod';
import { DEFAULTS } from '../../core/config';

/**
 * Request and response schemas of the REST API (design.md §3). The handlers validate with them and
 * `openapi.ts` publishes them, so the document cannot drift from what the code accepts.
 */
const iamName = z.string().min(1).max(128).regex(/^[\w+=,.@-]+$/, 'must be letters, digits and +=,.@_- only');

export const bundleKeySchema = z
  .string()
  .max(1024)
  .regex(/^bundles\/[^\0\\]+\.zip$/, 'must be an object key under bundles/ ending in .zip')
  .refine((k) => !k.split('/').includes('..'), 'must not contain ".." segments');

export const provisionDataBody = z.object({ bundleKey: bundleKeySchema }).strict();

export const bundlesBody = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.zip$/, 'must be a file name ending in .zip (letters, digits, . _ -)')
      .default('bundle.zip'),
  })
  .strict();

export const bundlesResponse = z.object({
  url: z.string(),
  fields: z.record(z.string(), z.string()),
  key: z.string(),
  expiresAt: z.string(),
  maxBytes: z.number(),
});

export const deployBody = z
  .object({
    bundleKey: bundleKeySchema,
    install: z.boolean().default(false),
    update: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    policy: iamName.default(DEFAULTS.policy),
    executeRole: iamName.default(DEFAULTS.executeRole),
    env: z
      .record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'must be a valid environment variable name'), z.string())
      .refine((e) => Object.keys(e).length <= 64, 'at most 64 variables')
      .optional(),
  })
  .strict();

export const deployAccepted = z.object({ deploymentId: z.string(), status: z.enum(['pending', 'running', 'succeeded', 'failed']) });

export const errorResponse = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(z.object({ path: z.string().optional(), message: z.string() })),
  }),
});

export const deploymentIdParam = z.string().regex(/^[0-9a-f-]{36}$/, 'must be a deployment id');

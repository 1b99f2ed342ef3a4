/**
 * One error base class for the whole tool, in the style of Powertools for AWS Lambda: every failure the user can meet
 * is a named subclass with a stable `code`, the HTTP status the API maps it to, optional `details` (one line per
 * problem, for errors that aggregate several) and the underlying `cause`.
 *
 * Messages never contain secrets: callers pass names and ARNs, never keys or tokens.
 */
export interface ErrorDetail {
  /** Where the problem is: a manifest field path (`aws_lambda.functions[1].runtime`), a zip entry name, a variable. */
  path?: string;
  message: string;
}

export abstract class AppsDeployerError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  readonly details: ErrorDetail[];

  constructor(message: string, options: { cause?: unknown; details?: ErrorDetail[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.details = options.details ?? [];
  }
}

/** A required setting (environment variable, SSM parameter, flag) is missing or malformed. */
export class ConfigError extends AppsDeployerError {
  readonly code = 'CONFIG_INVALID';
  readonly status = 500;
}

/** A request or command argument is malformed (HTTP 400). */
export class BadRequestError extends AppsDeployerError {
  readonly code = 'BAD_REQUEST';
  readonly status = 400;
}

export class UnauthorizedError extends AppsDeployerError {
  readonly code = 'UNAUTHORIZED';
  readonly status = 401;
}

export class ForbiddenError extends AppsDeployerError {
  readonly code = 'FORBIDDEN';
  readonly status = 403;
}

export class NotFoundError extends AppsDeployerError {
  readonly code = 'NOT_FOUND';
  readonly status = 404;
}

/** The request conflicts with the current state (a function exists with other code and --update is off, …). */
export class ConflictError extends AppsDeployerError {
  readonly code = 'CONFLICT';
  readonly status = 409;
}

/** The bundle is not a safe, well-formed zip (design.md §5). One error per structural problem. */
export class BundleError extends AppsDeployerError {
  readonly code: string = 'BUNDLE_INVALID';
  readonly status: number = 422;
}

export class NotAZipError extends BundleError {
  override readonly code = 'BUNDLE_NOT_A_ZIP';
}
export class CorruptZipError extends BundleError {
  override readonly code = 'BUNDLE_CORRUPT';
}
export class UnsafeEntryNameError extends BundleError {
  override readonly code = 'BUNDLE_UNSAFE_ENTRY_NAME';
}
export class SymlinkEntryError extends BundleError {
  override readonly code = 'BUNDLE_SYMLINK';
}
export class DuplicateEntryError extends BundleError {
  override readonly code = 'BUNDLE_DUPLICATE_ENTRY';
}
export class EncryptedEntryError extends BundleError {
  override readonly code = 'BUNDLE_ENCRYPTED_ENTRY';
}
export class EntrySizeMismatchError extends BundleError {
  override readonly code = 'BUNDLE_SIZE_MISMATCH';
}
/** Entry count, total/per-entry/function size, compression ratio or manifest size over the configured limit. */
export class BundleLimitError extends BundleError {
  override readonly code = 'BUNDLE_LIMIT_EXCEEDED';
  override readonly status = 413;
}

/**
 * The bundle is a sound zip but its content is not a deployable app: manifest invalid, functions missing or
 * mismatched, names the server would compute invalid for Lambda. Always carries every problem in `details`.
 */
export class BundleValidationError extends AppsDeployerError {
  readonly code = 'BUNDLE_VALIDATION_FAILED';
  readonly status = 422;
}

/** An AWS call failed after retries. The message names the resource; `cause` is the SDK error. */
export class AwsOperationError extends AppsDeployerError {
  readonly code = 'AWS_OPERATION_FAILED';
  readonly status = 502;
}

/** A Mattermost REST call failed. */
export class MattermostError extends AppsDeployerError {
  readonly code = 'MATTERMOST_CALL_FAILED';
  readonly status = 502;
}

/** The bundle object an event or record names was replaced by a newer upload (which is deployed on its own). */
export class SupersededError extends AppsDeployerError {
  readonly code = 'BUNDLE_SUPERSEDED';
  readonly status = 409;
}

/** The invoke policy would outgrow IAM's 6,144-character limit. */
export class PolicyLimitError extends AppsDeployerError {
  readonly code = 'POLICY_LIMIT_EXCEEDED';
  readonly status = 409;
}

export function isAppsDeployerError(err: unknown): err is AppsDeployerError {
  return err instanceof AppsDeployerError;
}

/** Renders an error for a person: the message, then one indented line per detail. No stack trace. */
export function formatError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const lines = [err.message];
  if (isAppsDeployerError(err)) {
    // A single detail that the message already says adds nothing.
    const only = err.details.length === 1 ? err.details[0]! : undefined;
    const redundant = only !== undefined && (err.message.includes(only.message) || (only.path !== undefined && err.message.includes(only.path)));
    if (!redundant) for (const d of err.details) lines.push(`  - ${d.path ? `${d.path}: ` : ''}${d.message}`);
  }
  return lines.join('\n');
}

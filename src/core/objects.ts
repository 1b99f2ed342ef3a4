import type { Readable } from 'node:stream';
import type { LimitFunction } from 'p-limit';
import type { PutObjectInput, S3Port } from './ports';
import type { PlannedFunction, PlannedStatic } from './provision';

/**
 * The S3 objects a deploy writes for a bundle's entries, as the plan, the apply step and the head start
 * (src/core/head-start.ts) all write them: same keys, metadata, content types and checksums.
 */

/** Lambda answers CodeSha256 as base64(sha256(zip)). The code object's key is content-addressed, so unchanged code is never uploaded twice. */
export function codeKey(lambdaName: string, sha256Hex: string): string {
  return `functions/${lambdaName}/${sha256Hex}.zip`;
}

export const SHA_METADATA = 'sha256';

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json', '.txt': 'text/plain; charset=utf-8', '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css', '.js': 'text/javascript', '.mjs': 'text/javascript', '.svg': 'image/svg+xml', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp', '.ico': 'image/x-icon', '.md': 'text/markdown',
};

function contentType(name: string): string {
  const dot = name.lastIndexOf('.');
  return (dot >= 0 && CONTENT_TYPES[name.slice(dot).toLowerCase()]) || 'application/octet-stream';
}

/** The PutObject of a static asset, its body read from the bundle entry by `open`. */
export function staticObject(s: PlannedStatic, open: (entryName: string) => Promise<Readable>): PutObjectInput {
  return {
    key: s.key,
    body: () => open(s.file.entryName),
    contentLength: s.file.size,
    contentType: contentType(s.name),
    metadata: { [SHA_METADATA]: s.file.sha256Hex },
    sha256Base64: s.file.sha256Base64,
  };
}

/** The PutObject of a function's code object (content-addressed: see codeKey). */
export function codeObject(f: PlannedFunction, key: string, open: (entryName: string) => Promise<Readable>): PutObjectInput {
  return {
    key,
    body: () => open(f.file.entryName),
    contentLength: f.file.size,
    contentType: 'application/zip',
    metadata: { [SHA_METADATA]: f.file.sha256Hex },
    sha256Base64: f.file.sha256Base64,
  };
}

/** Deletes the keys in batches where the port can (DeleteObjects), else one request each within `limit`. */
export async function deleteKeys(s3: S3Port, keys: string[], limit: LimitFunction): Promise<void> {
  if (keys.length === 0) return;
  if (s3.deleteObjects) return s3.deleteObjects(keys);
  await Promise.all(keys.map((k) => limit(() => s3.deleteObject(k))));
}

/**
 * Builds honest app bundles on disk for tests, with yazl, in the layout appsctl expects (appsctl.md §4): a top-level
 * manifest.json, function zips, and assets under static/. For dishonest zips see raw-zip.ts.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';

export interface BundleSpec {
  /** An object is serialised as JSON; a string is written as is (for invalid manifests). Omitted: no manifest.json. */
  manifest?: object | string;
  /**
   * Function entries by entry name (`function1.zip`, `lib/fn.jar`). A Buffer is written as the entry's bytes as they
   * are (for entries that are not zips); a record is built into a zip of those files.
   */
  functions?: Record<string, Buffer | Record<string, string | Buffer>>;
  /** Files under `static/`, by name relative to it. */
  statics?: Record<string, string | Buffer>;
  /** Any other entries, by full entry name; a name ending in `/` is a directory entry. */
  extra?: Record<string, string | Buffer>;
  /** The bundle's file name in `dir`; `bundle.zip` by default. */
  fileName?: string;
  /** Deflate the function entries in the bundle, as some zip tools do; stored by default, as most do. */
  deflateFunctions?: boolean;
}

// A fixed timestamp keeps the bytes, and so the hashes, of a bundle the same from one run to the next.
const MTIME = new Date(Date.UTC(2021, 2, 18, 12, 0, 0));

export async function buildBundle(dir: string, spec: BundleSpec): Promise<string> {
  const zip = new yazl.ZipFile();
  if (spec.manifest !== undefined) {
    const text = typeof spec.manifest === 'string' ? spec.manifest : JSON.stringify(spec.manifest, null, 2);
    zip.addBuffer(Buffer.from(text, 'utf8'), 'manifest.json', { mtime: MTIME });
  }
  for (const [name, content] of Object.entries(spec.functions ?? {})) {
    const bytes = Buffer.isBuffer(content) ? content : await buildZip(content);
    // Stored by default, as real bundles hold them: deflating a zip gains nothing.
    zip.addBuffer(bytes, name, { mtime: MTIME, compress: spec.deflateFunctions === true });
  }
  const statics = Object.entries(spec.statics ?? {});
  if (statics.length > 0) zip.addEmptyDirectory('static/', { mtime: MTIME });
  for (const [name, content] of statics) zip.addBuffer(toBuffer(content), `static/${name}`, { mtime: MTIME });
  for (const [name, content] of Object.entries(spec.extra ?? {})) {
    if (name.endsWith('/')) zip.addEmptyDirectory(name, { mtime: MTIME });
    else zip.addBuffer(toBuffer(content), name, { mtime: MTIME });
  }
  zip.end();
  const path = join(dir, spec.fileName ?? 'bundle.zip');
  await pipeline(zip.outputStream, createWriteStream(path));
  return path;
}

/** A zip of `files` (deflated) in memory: what a function zip inside a bundle is. */
export async function buildZip(files: Record<string, string | Buffer>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, content] of Object.entries(files)) zip.addBuffer(toBuffer(content), name, { mtime: MTIME });
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function toBuffer(content: string | Buffer): Buffer {
  return Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
}

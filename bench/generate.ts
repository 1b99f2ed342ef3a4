// Synthetic app bundles for the benchmark, generated on disk by streaming (never whole in memory).
//
// Content is incompressible but deterministic: AES-128-CTR keystream of a seed, so the same seed gives the same bytes
// (and hashes) in every run, and a different seed gives a "changed" file of the same size.
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';

const MiB = 1024 * 1024;
const KiB = 1024;
const MTIME = new Date(Date.UTC(2024, 0, 1, 0, 0, 0));
const CHUNK = 1 * MiB;

/** `size` incompressible bytes from `seed`, as a stream of 1 MiB chunks. */
export function randomStream(seed: string, size: number): Readable {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const zeros = Buffer.alloc(CHUNK);
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK, left);
      left -= n;
      this.push(cipher.update(n === CHUNK ? zeros : zeros.subarray(0, n)));
    },
  });
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function writeRandomFile(path: string, seed: string, size: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await pipeline(randomStream(seed, size), createWriteStream(path));
}

/** A Lambda function zip of about `size` bytes: a tiny handler plus one stored incompressible payload. */
async function writeFunctionZip(path: string, seed: string, size: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const zip = new yazl.ZipFile();
  zip.addBuffer(Buffer.from(`exports.handler = async () => ({ statusCode: 200, body: ${JSON.stringify(seed)} });\n`), 'index.js', { mtime: MTIME });
  // ~250 bytes of zip headers; the payload makes up the rest.
  const payload = Math.max(0, size - 256);
  zip.addReadStream(randomStream(seed, payload), 'payload.bin', { mtime: MTIME, compress: false, size: payload });
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(path));
}

export interface BundleFileSpec {
  /** Entry name in the bundle (`fn0.zip`, `static/…`). */
  entry: string;
  /** The file on disk that holds the entry's bytes. */
  path: string;
  size: number;
  kind: 'function' | 'static';
}

export interface GeneratedBundle {
  path: string;
  bytes: number;
  appId: string;
  version: string;
  /** Every function and asset, with the file holding its bytes (for the floor and the baseline). */
  files: BundleFileSpec[];
  manifest: Buffer;
  functionNames: string[];
}

export interface BundleShape {
  functions: number;
  functionBytes: number;
  /** Sizes of the static assets, in order. */
  assetSizes: number[];
  /** Deflate the assets (as a zip tool would); function zips are always stored. */
  deflateAssets: boolean;
}

/** 300 assets from 4 KiB to 1 MiB, log-uniformly spread (deterministic), as the reference bundle asks. */
export function referenceAssetSizes(count: number, min = 4 * KiB, max = 1 * MiB): number[] {
  const sizes: number[] = [];
  // A fixed LCG, so that the sizes (and the bundle) are the same in every run.
  let x = 0x2545f491;
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const u = i === 0 ? 0 : i === count - 1 ? 1 : x / 2 ** 32;
    sizes.push(Math.round(min * (max / min) ** u));
  }
  return sizes;
}

const EXTENSIONS = ['.png', '.js', '.css', '.svg', '.json', '.jpg', '.html', '.woff2'];

function manifestOf(appId: string, version: string, functionNames: string[]): Buffer {
  return Buffer.from(
    JSON.stringify(
      {
        app_id: appId,
        version,
        display_name: 'Benchmark app',
        homepage_url: 'https://example.com/bench',
        requested_permissions: ['act_as_bot'],
        requested_locations: ['/command'],
        aws_lambda: { functions: functionNames.map((name) => ({ path: `/${name}`, name, handler: 'index.handler', runtime: 'nodejs22.x' })) },
      },
      null,
      2,
    ),
  );
}

/**
 * Writes every entry's file under `dir/src` (function zips and assets), then the bundle zip from them. `changes`
 * lists entries (by entry name) whose content comes from another seed: the "changed" variant of the same bundle.
 * Files already written for the same seed are reused.
 */
export async function generateBundle(
  dir: string,
  name: string,
  shape: BundleShape,
  opts: { appId?: string; version?: string; changes?: string[] } = {},
): Promise<GeneratedBundle> {
  const appId = opts.appId ?? 'bench-app';
  const version = opts.version ?? 'v1.0.0';
  const changes = new Set(opts.changes ?? []);
  const functionNames = Array.from({ length: shape.functions }, (_, i) => `fn${i}`);
  const files: BundleFileSpec[] = [];
  for (const fn of functionNames) {
    const entry = `${fn}.zip`;
    const changed = changes.has(entry);
    const path = join(dir, 'src', changed ? `${fn}.changed.zip` : entry);
    if (!(await exists(path))) await writeFunctionZip(path, `${appId}/${entry}${changed ? '#changed' : ''}`, shape.functionBytes);
    files.push({ entry, path, size: (await stat(path)).size, kind: 'function' });
  }
  for (const [i, size] of shape.assetSizes.entries()) {
    const entry = `static/${i % 3 === 0 ? 'img/' : i % 3 === 1 ? 'js/' : ''}asset-${String(i).padStart(3, '0')}${EXTENSIONS[i % EXTENSIONS.length]}`;
    const changed = changes.has(entry);
    const path = join(dir, 'src', `${entry}${changed ? '.changed' : ''}`);
    if (!(await exists(path))) await writeRandomFile(path, `${appId}/${entry}${changed ? '#changed' : ''}`, size);
    files.push({ entry, path, size, kind: 'static' });
  }
  const manifest = manifestOf(appId, version, functionNames);

  const path = join(dir, name);
  if (await exists(path)) return { path, bytes: (await stat(path)).size, appId, version, files, manifest, functionNames };
  const zip = new yazl.ZipFile();
  zip.addBuffer(manifest, 'manifest.json', { mtime: MTIME });
  for (const f of files) {
    zip.addFile(f.path, f.entry, { mtime: MTIME, compress: f.kind === 'static' && shape.deflateAssets });
  }
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(path));
  return { path, bytes: (await stat(path)).size, appId, version, files, manifest, functionNames };
}

/** A bundle of about `totalMiB`: half in 4 function zips, half in 1 MiB assets, all incompressible and stored. */
export function sizedShape(totalMiB: number): BundleShape {
  const functionBytes = Math.floor((totalMiB * MiB) / 2 / 4);
  const assets = Math.max(1, Math.round(totalMiB / 2));
  return { functions: 4, functionBytes, assetSizes: Array.from({ length: assets }, () => 1 * MiB), deflateAssets: false };
}

export { MiB, KiB };

// Builds dist/bundle-aws.zip, the bundle layout appsctl reads (appsctl.md §4, §9): the function zip named after
// the manifest function (`hello-serverless.zip`, holding index.mjs at its root for handler `index.handler`),
// manifest.json at the top, and the assets under static/.
//
// Every entry gets the same fixed timestamp and mode, so two builds of the same sources are byte for byte equal:
// the deployer skips functions whose CodeSha256 has not changed and assets whose hash has not, so a rebuild that
// changed nothing must deploy nothing.
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import yazl from 'yazl';

const HERE = dirname(fileURLToPath(import.meta.url));
export const DEFAULT_OUT_DIR = join(HERE, 'dist');
export const BUNDLE_NAME = 'bundle-aws.zip';

// Zip's DOS timestamp is local time, so the date is built in local time and the UTC "UT" extra field is left out:
// the bytes are then the same in every time zone.
const MTIME = new Date(2024, 0, 1, 12, 0, 0);
const entry = { mtime: MTIME, mode: 0o100644, forceDosTimestamp: true };

async function zipToBuffer(zip) {
  const chunks = [];
  zip.end();
  for await (const chunk of zip.outputStream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The function zip: only index.mjs, at the root, as the nodejs22.x runtime loads `index.handler`. */
export async function buildFunctionZip() {
  const zip = new yazl.ZipFile();
  zip.addBuffer(await readFile(join(HERE, 'src', 'index.mjs')), 'index.mjs', entry);
  return zipToBuffer(zip);
}

/** Writes `<outDir>/bundle-aws.zip` and returns where and how big. */
export async function buildBundle(outDir = DEFAULT_OUT_DIR) {
  const zip = new yazl.ZipFile();
  // Stored, not deflated: deflating a zip gains nothing, and it is how the original Makefile's bundles look.
  zip.addBuffer(await buildFunctionZip(), 'hello-serverless.zip', { ...entry, compress: false });
  // The manifest's own bytes are what ends up in S3 under manifests/.
  zip.addBuffer(await readFile(join(HERE, 'manifest.json')), 'manifest.json', entry);
  zip.addBuffer(await readFile(join(HERE, 'static', 'test.txt')), 'static/test.txt', { ...entry, compress: false });
  zip.addBuffer(await readFile(join(HERE, 'static', 'icon.png')), 'static/icon.png', { ...entry, compress: false });
  zip.end();

  await mkdir(outDir, { recursive: true });
  const path = join(outDir, BUNDLE_NAME);
  await pipeline(zip.outputStream, createWriteStream(path));
  return { path, size: (await stat(path)).size };
}

// Run as a script (`npm run example:bundle`), not when imported by the tests.
if (process.argv[1] && pathToFileURL(resolve(process.argv[1])).href === import.meta.url) {
  const { path, size } = await buildBundle(process.argv[2] ? resolve(process.argv[2]) : DEFAULT_OUT_DIR);
  console.log(`${path} (${size} bytes)`);
}

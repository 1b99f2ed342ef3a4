import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Bundle, DEFAULT_BUNDLE_LIMITS, withBundle, type BundleLimits, type InspectedBundle } from '../../src/core/bundle';
import {
  BundleError,
  BundleLimitError,
  CorruptZipError,
  DuplicateEntryError,
  EncryptedEntryError,
  EntrySizeMismatchError,
  NotAZipError,
  SymlinkEntryError,
  UnsafeEntryNameError,
} from '../../src/core/errors';
import { buildBundle, buildZip } from '../support/bundle-builder';
import { crc32, rawZip, writeRawZip, type RawZipEntry } from '../support/raw-zip';

// The peer's own fixture, read where it lives: it must never be copied into the project.
const FIXTURE = fileURLToPath(new URL('../../../shared/fixtures/test_aws_bundle.zip', import.meta.url));
const MiB = 1024 * 1024;
/** Function zips as bundles hold them: stored (most zip tools), checked where they lie; deflated, spooled once. */
const FUNCTION_STORAGE = [
  { how: 'stored', deflateFunctions: false },
  { how: 'deflated', deflateFunctions: true },
];

type BundleErrorClass = new (...args: never[]) => BundleError;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bundle-test-'));
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await rm(dir, { recursive: true, force: true });
});

function inspect(path: string, limits?: Partial<BundleLimits>): Promise<InspectedBundle> {
  return withBundle(path, limits, (b) => b.inspect());
}

/** Opens and inspects, and hands back the error it must fail with. */
async function inspectFailure(path: string, limits?: Partial<BundleLimits>): Promise<BundleError> {
  const outcome = await inspect(path, limits).then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(outcome instanceof BundleError)) throw new Error(`expected a BundleError, got ${String(outcome)}`);
  return outcome;
}

/** Reads a zip's local headers by hand, so the reader's hashes are checked against something that is not yauzl. */
function entriesByHand(zip: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let offset = 0;
  while (offset + 4 <= zip.length && zip.readUInt32LE(offset) === 0x04034b50) {
    const method = zip.readUInt16LE(offset + 8);
    const compressedSize = zip.readUInt32LE(offset + 18);
    const nameLength = zip.readUInt16LE(offset + 26);
    const extraLength = zip.readUInt16LE(offset + 28);
    const name = zip.toString('utf8', offset + 30, offset + 30 + nameLength);
    const start = offset + 30 + nameLength + extraLength;
    const data = zip.subarray(start, start + compressedSize);
    out.set(name, method === 8 ? zlib.inflateRawSync(data) : data);
    offset = start + compressedSize;
  }
  return out;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

function sha256(data: Buffer): { hex: string; base64: string } {
  const digest = createHash('sha256').update(data).digest();
  return { hex: digest.toString('hex'), base64: digest.toString('base64') };
}

describe('DEFAULT_BUNDLE_LIMITS', () => {
  it('are the limits of design.md §7', () => {
    // Assess
    expect(DEFAULT_BUNDLE_LIMITS).toEqual({
      maxBundleBytes: 512 * MiB,
      maxEntries: 10_000,
      maxTotalUncompressedBytes: 1024 * MiB,
      maxFunctionUncompressedBytes: 250 * MiB,
      maxCompressionRatio: 200,
      maxManifestBytes: 1 * MiB,
    });
  });
});

describe('the peer fixture test_aws_bundle.zip', () => {
  let inspected: InspectedBundle;
  let byHand: Map<string, Buffer>;

  beforeAll(async () => {
    // Prepare
    byHand = entriesByHand(await readFile(FIXTURE));
    // Act
    inspected = await inspect(FIXTURE);
  });

  it('classifies 4 functions, 5 statics, the manifest and nothing ignored', () => {
    // Assess
    expect(inspected.functions.map((f) => f.functionName).sort()).toEqual([
      'function with spaces',
      'function-with-very-very-very-very-very-very-very-long-name',
      'function1',
      'function2',
    ]);
    expect(inspected.statics.map((s) => s.name).sort()).toEqual([
      'photo.png',
      'some.json',
      'static file with spaces.txt',
      'static-file-with-very-very-very-very-very-very-very-very-long-name.txt',
      'text.txt',
    ]);
    expect(inspected.ignored).toEqual([]);
    expect(inspected.entryCount).toBe(11);
    expect(JSON.parse(inspected.manifestBytes?.toString('utf8') ?? 'null')).toMatchObject({
      app_id: 'com.mattermost.servicenow',
      version: '0.1.0',
    });
  });

  it.each(['function1.zip', 'static/some.json', 'manifest.json'])('hashes %s as an independent reading does', (entryName) => {
    // Prepare
    const expected = sha256(byHand.get(entryName) ?? Buffer.alloc(0));
    const files = [...inspected.functions, ...inspected.statics];
    // Act
    const file = files.find((f) => f.entryName === entryName);
    // Assess
    if (entryName === 'manifest.json') {
      expect(inspected.manifestBytes).toEqual(byHand.get('manifest.json'));
      return;
    }
    expect(file).toMatchObject({ size: byHand.get(entryName)?.length, sha256Hex: expected.hex, sha256Base64: expected.base64 });
    if (entryName.startsWith('static/')) {
      // What S3 will list as the ETag of the uploaded asset.
      expect(file).toMatchObject({ md5Hex: createHash('md5').update(byHand.get(entryName)!).digest('hex') });
    }
  });

  it('counts the bytes of every entry and of the function zips it contains', () => {
    // Prepare: 4155 bytes of outer entries; each function zip holds one manifest.json
    const innerTotal = 4 * 1276;
    // Assess
    expect(inspected.totalUncompressedBytes).toBeGreaterThanOrEqual(4155);
    expect(inspected.totalUncompressedBytes).toBeLessThanOrEqual(4155 + innerTotal);
  });

  it('streams an entry again, for upload, with the inspected bytes', async () => {
    // Act
    const [fn, asset] = await withBundle(FIXTURE, undefined, async (b) => {
      await b.inspect();
      return Promise.all([readAll(await b.openReadStream('function1.zip')), readAll(await b.openReadStream('static/some.json'))]);
    });
    // Assess
    expect(sha256(fn).base64).toBe(inspected.functions.find((f) => f.entryName === 'function1.zip')?.sha256Base64);
    expect(asset).toEqual(byHand.get('static/some.json'));
  });
});

describe('entry classification (appsctl.md §4)', () => {
  let inspected: InspectedBundle;
  let classDir: string;

  beforeAll(async () => {
    // Prepare
    classDir = await mkdtemp(join(tmpdir(), 'bundle-class-'));
    const path = await buildBundle(classDir, {
      manifest: { app_id: 'x' },
      functions: {
        'function1.zip': { 'index.js': 'exports.handler = 1' },
        'static/nested.zip': { 'main.go': 'package main' },
        'java/handler.jar': { 'Main.class': Buffer.from([0xca, 0xfe, 0xba, 0xbe]) },
      },
      statics: { 'icon.png': Buffer.from([0x89, 0x50]), 'sub/dir/a.txt': 'a' },
      extra: { 'sub/manifest.json': '{}', 'README.md': 'hello', 'docs/': '' },
    });
    // Act
    inspected = await inspect(path);
  });
  afterAll(async () => {
    await rm(classDir, { recursive: true, force: true });
  });

  it.each([
    ['function1.zip', 'function', 'function1'],
    ['static/nested.zip', 'function', 'static/nested'],
    ['java/handler.jar', 'function', 'java/handler'],
    ['static/icon.png', 'static', 'icon.png'],
    ['static/sub/dir/a.txt', 'static', 'sub/dir/a.txt'],
    ['sub/manifest.json', 'ignored', 'sub/manifest.json'],
    ['README.md', 'ignored', 'README.md'],
  ] as const)('%s is a %s named %j', (entryName, kind, name) => {
    // Assess
    if (kind === 'function') expect(inspected.functions.find((f) => f.entryName === entryName)?.functionName).toBe(name);
    if (kind === 'static') expect(inspected.statics.find((s) => s.entryName === entryName)?.name).toBe(name);
    if (kind === 'ignored') expect(inspected.ignored).toContain(name);
  });

  it('takes only the top-level manifest.json as the manifest', () => {
    // Assess
    expect(inspected.manifestBytes?.toString('utf8')).toContain('"app_id": "x"');
  });

  it.each(['static/', 'docs/'])('skips the directory entry %s', (entryName) => {
    // Assess
    const everything = [...inspected.functions.map((f) => f.entryName), ...inspected.statics.map((s) => s.entryName), ...inspected.ignored];
    expect(everything).not.toContain(entryName);
    expect(inspected.statics.map((s) => s.name)).not.toContain('');
  });

  it('accepts a bundle with no manifest (resolving it is the caller’s job)', async () => {
    // Prepare
    const path = await buildBundle(dir, { statics: { 'a.txt': 'a' } });
    // Act
    const result = await inspect(path);
    // Assess
    expect(result.manifestBytes).toBeUndefined();
    expect(result.statics).toHaveLength(1);
  });
});

describe('files that are not sound zips', () => {
  it.each([
    ['random bytes', () => Buffer.concat([Buffer.from('this is not a zip file\n'), randomBytes(4096)]), NotAZipError, 'bundle.zip is not a zip file'],
    ['an empty file', () => Buffer.alloc(0), NotAZipError, 'bundle.zip is empty'],
  ] as const)('rejects %s', async (_label, content, errorClass, fragment) => {
    // Prepare
    const path = join(dir, 'bundle.zip');
    await writeFile(path, content());
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(errorClass);
    expect(err.message).toContain(fragment);
  });

  // Cut inside a manifest (no end record left at all) and after the stored function zips, whose own end records are
  // then the last ones in the file.
  it.each([300, 3000, 4400])('rejects the fixture truncated to %i bytes', async (length) => {
    // Prepare
    const path = join(dir, 'bundle.zip');
    await writeFile(path, (await readFile(FIXTURE)).subarray(0, length));
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(CorruptZipError);
    expect(err.message).toBe(
      'bundle.zip is truncated or corrupt: it starts like a zip but its end-of-central-directory record is missing or damaged',
    );
  });

  it('rejects a file that merely contains an end-of-central-directory signature as not a zip', async () => {
    // Prepare
    const path = join(dir, 'bundle.zip');
    await writeFile(path, Buffer.concat([Buffer.from('plain text '), Buffer.from([0x50, 0x4b, 0x05, 0x06]), Buffer.alloc(40)]));
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(NotAZipError);
    expect(err.message).toBe('bundle.zip is not a zip file');
  });

  it('rejects an entry whose data runs past the end of the file', async () => {
    // Prepare
    const path = await writeRawZip(join(dir, 'bundle.zip'), [
      { name: 'static/a.txt', data: 'hello', method: 'deflate', declaredCompressedSize: 1_000_000 },
    ]);
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(CorruptZipError);
    expect(err.message).toBe('entry "static/a.txt" is cut off: its data runs past the end of the file (truncated bundle?)');
  });

  it('rejects a central directory that claims more entries than it holds', async () => {
    // Prepare: bump both entry counts of the end record
    const zip = rawZip([{ name: 'a.txt', data: 'a' }]);
    zip.writeUInt16LE(2, zip.length - 22 + 8);
    zip.writeUInt16LE(2, zip.length - 22 + 10);
    const path = join(dir, 'bundle.zip');
    await writeFile(path, zip);
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(CorruptZipError);
    expect(err.message).toMatch(/^bundle.zip has a corrupt central directory after entry "a.txt"/);
  });

  const data = randomBytes(5000);
  const deflated = zlib.deflateRawSync(data);
  type DataProblem = [string, RawZipEntry, BundleErrorClass, string | RegExp];
  const dataProblems: DataProblem[] = [
    [
      'corrupt deflate data',
      { name: 'static/a.bin', data, method: 'deflate', rawData: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) },
      CorruptZipError,
      /^entry "static\/a.bin" is corrupt: its compressed data cannot be inflated \(invalid block type\)$/,
    ],
    [
      'a deflate stream cut short',
      { name: 'static/a.bin', data, method: 'deflate', rawData: deflated.subarray(0, deflated.length >> 1) },
      CorruptZipError,
      /^entry "static\/a.bin" is corrupt: its compressed data cannot be inflated \(unexpected end of file\)$/,
    ],
    [
      'a CRC-32 that does not match',
      { name: 'static/a.bin', data, method: 'deflate', declaredCrc32: 0xdeadbeef },
      CorruptZipError,
      /^entry "static\/a.bin" is corrupt: its data does not match its CRC-32 \(0xdeadbeef declared, 0x[0-9a-f]{8} found\)$/,
    ],
    [
      'a stored entry with a bad CRC-32',
      { name: 'static/a.bin', data, declaredCrc32: 1 },
      CorruptZipError,
      /^entry "static\/a.bin" is corrupt: its data does not match its CRC-32 \(0x00000001 declared, 0x[0-9a-f]{8} found\)$/,
    ],
    [
      'a declared size smaller than the real one',
      { name: 'static/a.bin', data, method: 'deflate', declaredUncompressedSize: 10 },
      EntrySizeMismatchError,
      'entry "static/a.bin" declares 10 bytes but holds more',
    ],
    [
      'a declared size larger than the real one',
      { name: 'static/a.bin', data, method: 'deflate', declaredUncompressedSize: 6000 },
      EntrySizeMismatchError,
      'entry "static/a.bin" declares 6000 bytes but holds only 5000',
    ],
    [
      'a zip bomb that lies about its size',
      { name: 'bomb.txt', data: Buffer.alloc(50 * MiB), method: 'deflate', declaredUncompressedSize: 1000 },
      EntrySizeMismatchError,
      'entry "bomb.txt" declares 1000 bytes but holds more',
    ],
  ];
  it.each<DataProblem>(dataProblems.flatMap(([label, entry, errorClass, expected]): DataProblem[] => {
    // Entries up to 1 MiB are read whole, function zips are always streamed to their spool file: the same problem must
    // read the same either way.
    const asFunction = (text: string) => text.replace('a.bin', 'a.zip').replace('bomb.txt', 'bomb.zip');
    return [
      [`${label} (read whole)`, entry, errorClass, expected],
      [
        `${label} (streamed)`,
        { ...entry, name: asFunction(String(entry.name)) },
        errorClass,
        typeof expected === 'string' ? asFunction(expected) : new RegExp(asFunction(expected.source)),
      ],
    ];
  }))('rejects %s', async (_label, entry, errorClass, expected) => {
    // Prepare
    const path = await writeRawZip(join(dir, 'bundle.zip'), [{ name: 'static/ok.txt', data: 'fine' }, entry]);
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(errorClass);
    if (typeof expected === 'string') expect(err.message).toBe(expected);
    else expect(err.message).toMatch(expected);
    expect(err.details).toEqual([{ path: entry.name, message: err.message }]);
  });
});

describe('unsafe entries (found from the central directory alone)', () => {
  it.each<[string, RawZipEntry[], BundleErrorClass, string]>([
    ['an absolute path', [{ name: '/etc/passwd', data: 'x' }], UnsafeEntryNameError, 'entry "/etc/passwd" is an absolute path'],
    ['a drive letter', [{ name: 'C:/Windows/x.txt', data: 'x' }], UnsafeEntryNameError, 'entry "C:/Windows/x.txt" is an absolute path'],
    ['a leading ".."', [{ name: '../evil.txt', data: 'x' }], UnsafeEntryNameError, 'entry "../evil.txt" escapes the bundle (contains a ".." segment)'],
    [
      'a ".." in the middle',
      [{ name: 'static/../../evil.txt', data: 'x' }],
      UnsafeEntryNameError,
      'entry "static/../../evil.txt" escapes the bundle (contains a ".." segment)',
    ],
    [
      'a backslash',
      [{ name: 'static\\evil.txt', data: 'x' }],
      UnsafeEntryNameError,
      'entry "static\\\\evil.txt" contains a backslash, which is not a portable path separator',
    ],
    ['a NUL byte', [{ name: 'static/a\u0000b.txt', data: 'x' }], UnsafeEntryNameError, 'entry "static/a\\u0000b.txt" contains a NUL byte'],
    [
      'a name that is not UTF-8',
      [{ name: Buffer.from([0x73, 0x74, 0xff, 0xfe]), data: 'x' }],
      UnsafeEntryNameError,
      'entry "st\ufffd\ufffd" has a name that is not valid UTF-8 (bytes 7374fffe)',
    ],
    [
      'a symlink',
      [{ name: 'static/link', data: '/etc/passwd', unixMode: 0o120777 }],
      SymlinkEntryError,
      'entry "static/link" is a symbolic link, which a bundle may not contain',
    ],
    [
      'a duplicate name',
      [
        { name: 'manifest.json', data: '{}' },
        { name: 'manifest.json', data: '{"app_id":"evil"}' },
      ],
      DuplicateEntryError,
      'entry "manifest.json" appears more than once',
    ],
    [
      'an encrypted entry',
      [{ name: 'static/secret.txt', data: 'x', encrypted: true, declaredCompressedSize: 13 }],
      EncryptedEntryError,
      'entry "static/secret.txt" is encrypted, which a bundle may not be',
    ],
    [
      'a stored entry whose sizes disagree',
      [{ name: 'static/a.txt', data: 'hello', declaredUncompressedSize: 50 }],
      EntrySizeMismatchError,
      'entry "static/a.txt" is stored uncompressed but declares 5 bytes compressed and 50 bytes uncompressed',
    ],
    [
      'an unsupported compression method',
      [{ name: 'static/a.txt', data: 'hello', method: 12 }],
      BundleError,
      'entry "static/a.txt" uses compression method 12; only stored (0) and deflate (8) are supported',
    ],
  ])('rejects %s', async (_label, entries, errorClass, message) => {
    // Prepare
    const path = await writeRawZip(join(dir, 'bundle.zip'), [{ name: 'static/ok.txt', data: 'fine' }, ...entries]);
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err.name).toBe(errorClass.name);
    expect(err.message).toBe(message);
    expect(err.details).toHaveLength(1);
  });

  it('rejects strong encryption, which yauzl refuses before it names the entry', async () => {
    // Prepare
    const path = await writeRawZip(join(dir, 'bundle.zip'), [
      { name: 'static/ok.txt', data: 'fine' },
      { name: 'static/secret.txt', data: 'x', flags: 0x40, encrypted: true, declaredCompressedSize: 13 },
    ]);
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(EncryptedEntryError);
    expect(err.message).toBe('in bundle.zip, the entry after "static/ok.txt" uses strong encryption, which a bundle may not');
  });

  it('reports every problem together, with the class of the first', async () => {
    // Prepare
    const path = await writeRawZip(join(dir, 'bundle.zip'), [
      { name: '../a.txt', data: 'a' },
      { name: 'static/link', data: 'x', unixMode: 0o120777 },
      { name: '/abs', data: 'b' },
      { name: 'static/dup.txt', data: 'c' },
      { name: 'static/dup.txt', data: 'd' },
      { name: 'static/secret', data: 'e', encrypted: true, declaredCompressedSize: 13 },
    ]);
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(UnsafeEntryNameError);
    expect(err.message).toBe('bundle.zip is unsafe: 5 problems');
    expect(err.details).toEqual([
      { path: '../a.txt', message: 'entry "../a.txt" escapes the bundle (contains a ".." segment)' },
      { path: 'static/link', message: 'entry "static/link" is a symbolic link, which a bundle may not contain' },
      { path: '/abs', message: 'entry "/abs" is an absolute path' },
      { path: 'static/dup.txt', message: 'entry "static/dup.txt" appears more than once' },
      { path: 'static/secret', message: 'entry "static/secret" is encrypted, which a bundle may not be' },
    ]);
  });

  it('reports problems found while streaming together too', async () => {
    // Prepare
    const path = await buildBundle(dir, {
      functions: { 'one.zip': Buffer.from('not a zip'), 'two.jar': Buffer.from('nor this') },
      statics: { 'ok.txt': 'fine' },
    });
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(NotAZipError);
    expect(err.message).toBe('bundle.zip is unsafe: 2 problems');
    expect(err.details.map((d) => d.path)).toEqual(['one.zip', 'two.jar']);
  });
});

describe('limits (design.md §7)', () => {
  it('rejects a bundle file over maxBundleBytes before reading it', async () => {
    // Act
    const err = await Bundle.open(FIXTURE, { maxBundleBytes: 4000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    // Assess
    expect(err).toBeInstanceOf(BundleLimitError);
    expect((err as Error).message).toBe('test_aws_bundle.zip is 4619 bytes (4.5 KiB), over the bundle limit of 4000 bytes (3.9 KiB)');
  });

  it.each<[string, Partial<BundleLimits>, string]>([
    ['too many entries', { maxEntries: 3 }, 'bundle has 11 entries, over the limit of 3'],
    [
      'too many uncompressed bytes',
      { maxTotalUncompressedBytes: 1000 },
      'bundle entries declare 4155 bytes (4.1 KiB) uncompressed in total, over the limit of 1000 bytes',
    ],
  ])('rejects the fixture with %s', async (_label, limits, message) => {
    // Act
    const err = await inspectFailure(FIXTURE, limits);
    // Assess
    expect(err).toBeInstanceOf(BundleLimitError);
    expect(err.message).toBe(message);
  });

  it('rejects an entry over the compression ratio (a real zip bomb)', async () => {
    // Prepare
    const path = await buildBundle(dir, { extra: { 'bomb.txt': Buffer.alloc(5 * MiB) } });
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(BundleLimitError);
    expect(err.message).toMatch(/^entry "bomb.txt" has compression ratio \d{3,4}:1, over the limit of 200:1$/);
  });

  it('honours a lower ratio limit', async () => {
    // Prepare: hex text deflates to a little over 2:1
    const path = await buildBundle(dir, { statics: { 'a.txt': randomBytes(100_000).toString('hex') } });
    // Act
    const err = await inspectFailure(path, { maxCompressionRatio: 1.5 });
    // Assess
    expect(err.message).toMatch(/^entry "static\/a.txt" has compression ratio \d+(\.\d+)?:1, over the limit of 1.5:1$/);
  });

  it.each(FUNCTION_STORAGE)('rejects a zip bomb nested in a function zip ($how in the bundle)', async ({ deflateFunctions }) => {
    // Prepare
    const path = await buildBundle(dir, { functions: { 'function1.zip': { 'index.js': 'x', 'bomb.bin': Buffer.alloc(5 * MiB) } }, deflateFunctions });
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(BundleLimitError);
    expect(err.message).toMatch(/^function entry "function1.zip" contains "bomb.bin", which has compression ratio \d+:1, over the limit of 200:1$/);
    expect(err.details[0]?.path).toBe('function1.zip');
  });

  it('rejects a function entry over maxFunctionUncompressedBytes', async () => {
    // Prepare
    const fn = await buildZip({ 'handler.bin': randomBytes(20_000) });
    const path = await buildBundle(dir, { functions: { 'big.zip': fn } });
    // Act
    const err = await inspectFailure(path, { maxFunctionUncompressedBytes: 10_000 });
    // Assess
    expect(err).toBeInstanceOf(BundleLimitError);
    expect(err.message).toMatch(/^function entry "big.zip" is \d+ bytes \(19\.\d KiB\), over the function limit of 10000 bytes \(9\.8 KiB\)$/);
  });

  it.each(FUNCTION_STORAGE)('rejects a function zip whose contents unzip over maxFunctionUncompressedBytes ($how in the bundle)', async ({ deflateFunctions }) => {
    // Prepare: 60 kB of hex deflates to about half, so the zip itself is under the limit
    const fn = await buildZip({ 'handler.js': randomBytes(30_000).toString('hex') });
    expect(fn.length).toBeLessThan(50_000);
    const path = await buildBundle(dir, { functions: { 'function1.zip': fn }, deflateFunctions });
    // Act
    const err = await inspectFailure(path, { maxFunctionUncompressedBytes: 50_000 });
    // Assess
    expect(err).toBeInstanceOf(BundleLimitError);
    expect(err.message).toBe('function entry "function1.zip" unzips to 60000 bytes (58.6 KiB), over the function limit of 50000 bytes (48.8 KiB)');
  });

  it('counts the contents of function zips in the bundle total', async () => {
    // Prepare
    const fn = await buildZip({ 'handler.js': randomBytes(30_000).toString('hex') });
    const path = await buildBundle(dir, { functions: { 'function1.zip': fn } });
    // Act
    const err = await inspectFailure(path, { maxTotalUncompressedBytes: 70_000 });
    // Assess
    expect(err).toBeInstanceOf(BundleLimitError);
    expect(err.message).toMatch(/^bundle unzips to \d+ bytes \([\d.]+ KiB\) counting the contents of its function zips, over the limit of 70000 bytes/);
  });

  it.each(FUNCTION_STORAGE.flatMap((s) => ['function1.zip', 'lib/handler.jar'].map((entryName) => ({ ...s, entryName }))))(
    'rejects a function entry $entryName that is not a zip ($how in the bundle)', async ({ entryName, deflateFunctions }) => {
    // Prepare
    const path = await buildBundle(dir, { functions: { [entryName]: Buffer.from('#!/bin/sh\necho not a zip\n') }, deflateFunctions });
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(NotAZipError);
    expect(err.message).toMatch(new RegExp(`^function entry "${entryName.replace('.', '\\.')}" is not a valid zip file \\(`));
  });

  it('rejects a manifest over 1 MiB', async () => {
    // Prepare: random hex, so that the ratio limit does not fire first
    const manifest = JSON.stringify({ app_id: 'x', padding: randomBytes(600_000).toString('hex') });
    const path = await buildBundle(dir, { manifest });
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(BundleLimitError);
    expect(err.message).toBe(`entry "manifest.json" is ${manifest.length} bytes (1.1 MiB), over the manifest limit of 1048576 bytes (1 MiB)`);
  });

  it('exempts small entries from the ratio limit', async () => {
    // Prepare: 8 KiB of spaces deflates far past 200:1 and is still harmless
    const path = await buildBundle(dir, { statics: { 'blank.txt': ' '.repeat(8192) } });
    // Act
    const result = await inspect(path);
    // Assess
    expect(result.statics[0]?.size).toBe(8192);
  });
});

describe('lifecycle', () => {
  it.each([
    { how: 'deflated', deflateFunctions: true, spooled: 2 },
    { how: 'stored', deflateFunctions: false, spooled: 0 },
  ])('spools $spooled function zips $how in the bundle, and leaves no temp files after close()', async ({ deflateFunctions, spooled }) => {
    // Prepare: a stored zip is checked and served where it lies; only a deflated one is inflated once, to a temp file
    const tmp = join(dir, 'tmp');
    await rm(tmp, { recursive: true, force: true });
    await (await import('node:fs/promises')).mkdir(tmp);
    vi.stubEnv('TMPDIR', tmp);
    const path = await buildBundle(dir, { functions: { 'a.zip': { 'x.js': 'x' }, 'b.jar': { 'y.class': 'y' } }, deflateFunctions });
    const openFiles = async () => (await readdir('/proc/self/fd')).length;
    const filesBefore = await openFiles();
    const bundle = await Bundle.open(path);
    // Act
    await bundle.inspect();
    const during = await readdir(tmp, { recursive: true });
    await bundle.close();
    const after = await readdir(tmp);
    // Assess: no temp file left, and the bundle's descriptor closed (the nested zips' readers let go of it)
    expect(during.filter((f) => f.endsWith('.zip'))).toHaveLength(spooled);
    expect(after).toEqual([]);
    expect(await openFiles()).toBe(filesBefore);
  });

  it('leaves no temp files when inspection fails', async () => {
    // Prepare
    const tmp = join(dir, 'tmp');
    await (await import('node:fs/promises')).mkdir(tmp);
    vi.stubEnv('TMPDIR', tmp);
    const path = await buildBundle(dir, { functions: { 'ok.zip': { 'x.js': 'x' }, 'bad.zip': Buffer.from('nope') }, deflateFunctions: true });
    // Act
    const err = await inspectFailure(path);
    // Assess
    expect(err).toBeInstanceOf(NotAZipError);
    expect(await readdir(tmp)).toEqual([]);
  });

  it.each(FUNCTION_STORAGE)('serves a function zip $how in the bundle as validated, and refuses after close()', async ({ deflateFunctions }) => {
    // Prepare
    const inner = await buildZip({ 'index.js': 'exports.handler = async () => 1;' });
    const path = await buildBundle(dir, { functions: { 'function1.zip': inner }, deflateFunctions });
    const bundle = await Bundle.open(path);
    // Act
    const first = await bundle.inspect();
    const again = await bundle.inspect();
    const served = await readAll(await bundle.openReadStream('function1.zip'));
    await bundle.close();
    // Assess
    expect(again).toBe(first);
    expect(served).toEqual(inner);
    expect(first.functions[0]?.sha256Base64).toBe(sha256(inner).base64);
    await expect(bundle.openReadStream('function1.zip')).rejects.toThrow('is closed');
    await bundle.close();
  });

  it('inspects before serving a stream, so an unsafe bundle hands out nothing', async () => {
    // Prepare
    const path = await writeRawZip(join(dir, 'bundle.zip'), [
      { name: 'static/a.txt', data: 'a' },
      { name: '../b.txt', data: 'b' },
    ]);
    // Act
    const outcome = withBundle(path, undefined, (b) => b.openReadStream('static/a.txt'));
    // Assess
    await expect(outcome).rejects.toBeInstanceOf(UnsafeEntryNameError);
  });

  it('reads a central directory too large to read at once record by record, with the same result', async () => {
    // Prepare: 1,100 entries with 4,000-byte names make a 4.3 MiB directory, over the 4 MiB read in one go.
    const extra = Object.fromEntries(Array.from({ length: 1100 }, (_, i) => [`${String(i).padStart(4, '0')}-${'x'.repeat(3995)}`, String(i)]));
    const path = await buildBundle(dir, { extra, statics: { 'a.txt': 'a' } });
    // Act
    const inspected = await inspect(path);
    // Assess
    expect(inspected.ignored).toEqual(Object.keys(extra));
    expect(inspected.statics.map((f) => f.name)).toEqual(['a.txt']);
  });

  it('names an entry that does not exist', async () => {
    // Act
    const outcome = withBundle(FIXTURE, undefined, (b) => b.openReadStream('nope.txt'));
    // Assess
    await expect(outcome).rejects.toThrow('test_aws_bundle.zip has no entry "nope.txt"');
  });
});

describe('raw-zip support', () => {
  it('computes the standard CRC-32 with and without zlib.crc32', () => {
    // Assess
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.from('123456789'), { forceTable: true })).toBe(0xcbf43926);
  });
});

/**
 * The bundle reader (design.md §2 "No size cap", §5 "Bundles are untrusted input", §7 "Limits").
 *
 * A bundle is read by random access from the file on disk, never whole in memory: one pass over the central
 * directory checks names, modes, flags and declared sizes; one pass over the data streams every entry once, counting
 * real bytes, checking CRC-32 and hashing. A function zip's own central directory is checked too (nested zip bombs):
 * one stored in the bundle, as zip tools store a zip, is read where it lies, and later uploaded from there; a deflated
 * one is spooled to a private temp directory on the way through, so that it is not inflated a second time.
 */
import { createHash } from 'node:crypto';
import fs, { createReadStream, createWriteStream, promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import pLimit from 'p-limit';
import yauzl from 'yauzl';
import type { Entry, ZipFile } from 'yauzl';
import { z } from 'zod';
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
  type ErrorDetail,
} from './errors';

import { DEFAULT_BUNDLE_LIMITS, type BundleLimits } from './limits';

export { DEFAULT_BUNDLE_LIMITS, type BundleLimits };

/**
 * Entries that declare at most this many uncompressed bytes are exempt from the ratio limit. A few KiB of one repeated
 * byte (padding, whitespace) already deflate past 200:1, and rejecting such files would be a false alarm; what a small
 * entry can inflate to is bounded by this value and by the total limit anyway.
 */
export const COMPRESSION_RATIO_MIN_BYTES = 64 * 1024;

/** The most problems one error carries in `details`; a hostile zip can have millions, memory must stay flat. */
const MAX_DETAILS = 100;

export interface BundleFile {
  entryName: string;
  size: number;
  sha256Hex: string;
  /** What Lambda reports as CodeSha256 for a function zip. */
  sha256Base64: string;
}

export interface BundleFunctionFile extends BundleFile {
  /** The entry name minus `.zip`/`.jar`; a directory prefix is kept (appsctl.md §4). */
  functionName: string;
}

export interface BundleStaticFile extends BundleFile {
  /** The entry name minus `static/`; subdirectories are kept. */
  name: string;
  /** What S3 lists as the ETag of an object uploaded in one PutObject (unencrypted or SSE-S3). */
  md5Hex: string;
}

/** One entry whose own checks passed during the data pass (the bundle as a whole may still be refused). */
export interface CheckedEntry {
  kind: 'function' | 'static';
  file: BundleFile;
  /** Statics only: the MD5 of the bytes (see BundleStaticFile). */
  md5Hex?: string;
  /**
   * A static asset of at most CHECKED_BYTES_KEPT: its bytes as checked, so that the listener need not read and inflate
   * them a second time. Gone when the listener lets go of it.
   */
  bytes?: Buffer;
}

/** See CheckedEntry.bytes: at most DATA_PASS_CONCURRENCY of these are held by the data pass at once. */
const CHECKED_BYTES_KEPT = 1024 * 1024;

/**
 * Entries that declare at most this many bytes, compressed and uncompressed, are read and inflated whole rather than
 * streamed (readWholeEntry): at most DATA_PASS_CONCURRENCY × 2 of these buffers at once. A function zip is always
 * streamed, to its spool file.
 */
const WHOLE_ENTRY_MAX = 1024 * 1024;

/** Deflate adds ~5 bytes per 16 KiB stored block to data it cannot compress: a 1 MiB asset so deflated still fits. */
function readsWhole(entry: Entry): boolean {
  return entry.uncompressedSize <= WHOLE_ENTRY_MAX && entry.compressedSize <= WHOLE_ENTRY_MAX + 64 * 1024;
}

/**
 * Inflates one entry's data on the thread pool into one buffer: the output buffer is one byte larger than declared, so
 * that an honest entry fills it without a second one being allocated, and zlib stops (ERR_BUFFER_TOO_LARGE) past that.
 */
function inflateWhole(raw: Buffer, declared: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    zlib.inflateRaw(raw, { chunkSize: Math.max(64, declared + 1), maxOutputLength: declared + 1 }, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

/**
 * Buffers for the compressed bytes of entries read whole, which are needed only until they are inflated: reused rather
 * than allocated per entry. Every buffer allocated is external memory that V8 answers with full collections as it
 * grows; the benchmark's first deploy spent ~0.2 s of its CPU in them, against ~0.03 s for the raw upload of the same
 * bytes. At most DATA_PASS_CONCURRENCY are in use at once, and a free one is kept only while nothing else holds it.
 */
const compressedScratch: Buffer[] = [];
const SCRATCH_BYTES = WHOLE_ENTRY_MAX + 64 * 1024;

export interface InspectedBundle {
  /** The top-level entry named exactly `manifest.json`, undefined when there is none. */
  manifestBytes: Buffer | undefined;
  /** Entries ending in `.zip` or `.jar`, wherever they are (a zip under static/ is a function, as in Go). */
  functions: BundleFunctionFile[];
  statics: BundleStaticFile[];
  /** Entries that are none of the above (appsctl logs `ignored unknown file`). Directory entries are not listed. */
  ignored: string[];
  /** Real uncompressed bytes of every entry, plus the declared uncompressed contents of every function zip. */
  totalUncompressedBytes: number;
  entryCount: number;
}

/**
 * Where inspections of good bundles are remembered, so that a bundle validated once (by `aws validate` or an earlier
 * deploy) is not read, inflated and hashed again: an unchanged redeploy then reads only its central directory.
 * appsctl keeps one in the user's cache directory (src/adapters/inspection-cache.ts); the Lambda handlers keep none.
 * A cache that cannot be read or written only costs the full inspection.
 *
 * A bundle is known by its file's identity, as git's index knows a worktree file: device, inode, size, and the
 * nanosecond mtime and ctime (any write changes ctime, which user space cannot set back). Hashing the whole file
 * instead cost an unchanged redeploy of the benchmark's 75 MiB bundle half its time. Two guards: a file changed less
 * than `racyMs` before it was inspected is not remembered (on a file system with coarse timestamps, a second write in
 * the same tick would keep them), and every upload carries the SHA-256 recorded here, which S3 checks against the bytes.
 */
export interface InspectionCache {
  get(key: string): Promise<string | undefined>;
  put(key: string, text: string): Promise<void>;
  /** Default RACY_MS. */
  racyMs?: number;
}

/** Bump when what an inspection checks or returns changes: older entries are then never looked up again. */
const INSPECTION_CACHE_FORMAT = 2;

/** See InspectionCache: 2 s covers the coarsest timestamps in use (FAT's). */
const RACY_MS = 2000;

/** Built on first use: only appsctl keeps a cache, and the Lambda handlers that import this module never parse one. */
const cachedInspectionSchema = memo(() => {
  const bundleFileShape = { entryName: z.string(), size: z.number().int().nonnegative(), sha256Hex: z.string(), sha256Base64: z.string() };
  return z.object({
    format: z.literal(INSPECTION_CACHE_FORMAT),
    manifestBase64: z.string().optional(),
    functions: z.array(z.object({ ...bundleFileShape, functionName: z.string() })),
    statics: z.array(z.object({ ...bundleFileShape, name: z.string(), md5Hex: z.string() })),
    ignored: z.array(z.string()),
    totalUncompressedBytes: z.number(),
    entryCount: z.number().int(),
  });
});

function memo<T>(build: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= build());
}

type BundleErrorClass = new (message: string, options?: { cause?: unknown; details?: ErrorDetail[] }) => BundleError;

interface Problem {
  kind: BundleErrorClass;
  path?: string;
  message: string;
  cause?: unknown;
}

/** Collects every problem of a pass so that the user fixes the bundle once, not once per problem. */
class Problems {
  private readonly kept: Problem[] = [];
  private count = 0;

  add(kind: BundleErrorClass, path: string | undefined, message: string, cause?: unknown): void {
    this.count += 1;
    if (this.kept.length < MAX_DETAILS) this.kept.push({ kind, ...(path === undefined ? {} : { path }), message, cause });
  }

  get size(): number {
    return this.count;
  }

  /** Appends another collector's problems, as if they had been added here. */
  addAll(other: Problems): void {
    for (const p of other.kept) this.add(p.kind, p.path, p.message, p.cause);
    this.count += other.count - other.kept.length;
  }

  /** One error of the first problem's class: callers and the API map errors by class, the first is the most telling. */
  toError(label: string): BundleError {
    const first = this.kept[0];
    if (first === undefined) throw new Error('no problem to report');
    const details: ErrorDetail[] = this.kept.map((p) => (p.path === undefined ? { message: p.message } : { path: p.path, message: p.message }));
    if (this.count > this.kept.length) details.push({ message: `… and ${this.count - this.kept.length} more problems` });
    const message = this.count === 1 ? first.message : `${label} is unsafe: ${this.count} problems`;
    return new first.kind(message, { details, ...(first.cause === undefined ? {} : { cause: first.cause }) });
  }
}

type EntryKind = 'manifest' | 'function' | 'static' | 'ignored' | 'directory';

interface EntryInfo {
  entry: Entry;
  name: string;
  kind: EntryKind;
}

const YAUZL_OPTIONS = {
  lazyEntries: true,
  autoClose: false,
  // Raw names: yauzl would otherwise reject unsafe names with its own anonymous errors and stop at the first one.
  decodeStrings: false,
  validateEntrySizes: true,
  strictFileNames: false,
} as const;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Entries the data pass reads at once, to keep both the thread pool (reads, inflation) and this thread (hashing) busy.
 * Measured on 2 cores with the benchmark's 75 MiB bundle: 1 → ~1.05 s, 4 → ~0.62 s, 8 → ~0.47 s, 16 and 32 no better.
 */
const DATA_PASS_CONCURRENCY = 8;

interface StreamedEntry {
  size: number;
  sha256: Buffer;
  crc: number;
  md5?: Buffer;
}

interface EntryOutcome {
  problems: Problems;
  /** Undefined when the entry could not be read whole (its problem is in `problems`). */
  file?: BundleFile;
  /** Declared contents of a function zip (0 for other entries). */
  innerBytes: number;
  spoolPath?: string;
  manifestBytes?: Buffer;
  md5Hex?: string;
}

export class Bundle {
  private inspection: Promise<InspectedBundle> | undefined;
  private previewing: Promise<InspectedBundle> | undefined;
  private metadata: Promise<EntryInfo[]> | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly tempFiles = new Map<string, string>();
  /** Entries whose own checks passed, which openReadStream serves before the inspection as a whole has ended. */
  private readonly checked = new Set<string>();
  /**
   * Told of each function zip and static asset as soon as its own checks pass (size, CRC-32, hashes, a function zip's own
   * directory), while the data pass goes on; never told for a bundle found in the inspection cache. For work that can
   * be undone if the bundle is refused after all (a deploy's head start, src/core/head-start.ts). The data pass waits
   * for the promise it returns, if any: a listener that holds checked bytes paces the pass to keep memory flat.
   */
  onEntryChecked: ((entry: CheckedEntry) => void | Promise<void>) | undefined;
  private tempDir: Promise<string> | undefined;
  private spoolCount = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    readonly limits: BundleLimits,
    private readonly zip: ZipFile,
    private readonly label: string,
    private readonly cache: InspectionCache | undefined,
  ) {}

  /** Checks the file size, then opens the zip by random access. Throws NotAZipError, CorruptZipError, BundleLimitError. */
  static async open(path: string, limits?: Partial<BundleLimits>, cache?: InspectionCache): Promise<Bundle> {
    const merged = mergeLimits(limits);
    const label = basename(path);
    const stat = await fsp.stat(path);
    if (!stat.isFile()) throw new NotAZipError(`${label} is not a regular file`);
    if (stat.size === 0) throw new NotAZipError(`${label} is empty, not a zip file`);
    if (stat.size > merged.maxBundleBytes) {
      throw new BundleLimitError(`${label} is ${bytes(stat.size)}, over the bundle limit of ${bytes(merged.maxBundleBytes)}`);
    }
    let zip: ZipFile;
    try {
      zip = await openZip(path);
    } catch (err) {
      throw await describeOpenError(path, label, err);
    }
    return new Bundle(path, merged, zip, label, cache);
  }

  /** Checks and reads the whole bundle once; later calls return the same result (or the same error). */
  inspect(): Promise<InspectedBundle> {
    this.inspection ??= this.runInspection();
    return this.inspection;
  }

  /**
   * A fresh stream of one entry's uncompressed bytes. Inspects the bundle first if that has not happened, so no byte of
   * an unsafe bundle is ever handed out, but for an entry that onEntryChecked was told of: its own bytes were checked,
   * and whoever asks for them before the bundle is known good undoes what it did if the bundle is refused. Function
   * zips are served from their spooled copy on disk.
   */
  async openReadStream(entryName: string): Promise<Readable> {
    this.assertOpen();
    if (!this.checked.has(entryName)) await this.inspect();
    this.assertOpen();
    const spooled = this.tempFiles.get(entryName);
    if (spooled !== undefined) return createReadStream(spooled, { highWaterMark: READ_CHUNK_BYTES });
    const entry = this.entries.get(entryName);
    if (entry === undefined) throw new BundleError(`${this.label} has no entry ${q(entryName)}`);
    let source: Readable;
    try {
      source = await this.openEntryData(entry);
    } catch (err) {
      throw streamProblemError(entry, entryName, err);
    }
    // The same count as at inspection: an upload must never carry other bytes than the ones validated.
    const out = new SizeGuard(entryName, entry.uncompressedSize);
    // Errors surface as our named errors, not as yauzl's or zlib's anonymous ones.
    source.on('error', (err) => out.destroy(streamProblemError(entry, entryName, err)));
    // A consumer that gives up (an aborted upload) must release yauzl's hold on the file too.
    out.on('close', () => source.destroy());
    source.pipe(out);
    return out;
  }

  /** Closes the zip and removes the spooled function zips. Safe to call more than once. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.zip.close();
    }
    // An inspection still running could create the temp directory after we removed it.
    await this.inspection?.catch(() => undefined);
    const dir = await this.tempDir?.catch(() => undefined);
    this.tempDir = undefined;
    this.tempFiles.clear();
    this.checked.clear();
    if (dir !== undefined) await fsp.rm(dir, { recursive: true, force: true });
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`bundle ${this.label} is closed`);
  }

  /**
   * What the bundle holds by name, before its data is checked: the central directory (once it has passed its checks),
   * the manifest's bytes, and each entry's declared size, with empty hashes. For work that needs only names (a deploy
   * plan's reads) and can start while inspect() still reads the entries; nothing in it is to be trusted until then.
   */
  preview(): Promise<InspectedBundle> {
    this.assertOpen();
    this.previewing ??= this.readPreview();
    return this.previewing;
  }

  private async readPreview(): Promise<InspectedBundle> {
    const infos = await this.metadataOnce();
    const unhashed = (info: EntryInfo): BundleFile => ({ entryName: info.name, size: info.entry.uncompressedSize, sha256Hex: '', sha256Base64: '' });
    const manifest = infos.find((i) => i.kind === 'manifest');
    let manifestBytes: Buffer | undefined;
    if (manifest !== undefined) {
      const chunks: Buffer[] = [];
      const collect = new Writable({ write: (chunk: Buffer, _enc, cb) => (chunks.push(chunk), cb()) });
      await pipeline(await this.openEntryData(manifest.entry), new SizeGuard(manifest.name, manifest.entry.uncompressedSize), collect);
      manifestBytes = Buffer.concat(chunks);
    }
    return {
      manifestBytes,
      functions: infos.filter((i) => i.kind === 'function').map((i) => ({ ...unhashed(i), functionName: i.name.replace(/\.(zip|jar)$/, '') })),
      statics: infos.filter((i) => i.kind === 'static').map((i) => ({ ...unhashed(i), name: i.name.slice('static/'.length), md5Hex: '' })),
      ignored: infos.filter((i) => i.kind === 'ignored').map((i) => i.name),
      totalUncompressedBytes: infos.reduce((n, i) => n + i.entry.uncompressedSize, 0),
      entryCount: infos.length,
    };
  }

  private metadataOnce(): Promise<EntryInfo[]> {
    this.metadata ??= this.metadataPass();
    return this.metadata;
  }

  private async runInspection(): Promise<InspectedBundle> {
    // The central directory is checked every time (it is cheap); only the data pass is skipped for a known bundle.
    // A file that cannot be stat'ed is inspected in full; its real problem, if any, is reported there.
    const [infos, known] = await Promise.all([this.metadataOnce(), this.cache ? this.cacheKey().catch(() => undefined) : undefined]);
    if (known !== undefined) {
      const cached = await this.cachedInspection(known.key, infos);
      if (cached) return cached;
    }
    // A preview asked for is read first: behind the data pass, its one small read of the manifest would queue for the
    // thread pool with eight entries' worth of reads and inflation (140–250 ms instead of a few), and what waits for it
    // (the plan's reads, the head start's lock) would start that much later.
    await this.previewing?.catch(() => undefined);
    const result = await this.dataPass(infos);
    if (known !== undefined && known.inspectedAt - known.changedAt >= (this.cache!.racyMs ?? RACY_MS)) {
      await this.cache!.put(known.key, serializeInspection(result)).catch(() => undefined);
    }
    return result;
  }

  /** The file's identity (of the descriptor that is inspected, not of the path), with the limits; see InspectionCache. */
  private async cacheKey(): Promise<{ key: string; changedAt: number; inspectedAt: number }> {
    const inspectedAt = Date.now();
    const st = await this.reader.stat();
    const file = [st.dev, st.ino, st.size, st.mtimeNs, st.ctimeNs].map(String);
    const limits = Object.entries(this.limits).sort(([a], [b]) => a.localeCompare(b));
    const key = createHash('sha256').update(JSON.stringify({ format: INSPECTION_CACHE_FORMAT, limits, file })).digest('hex');
    return { key, changedAt: Number((st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs) / 1_000_000n), inspectedAt };
  }

  private async cachedInspection(key: string, infos: EntryInfo[]): Promise<InspectedBundle | undefined> {
    const text = await this.cache!.get(key).catch(() => undefined);
    if (text === undefined) return undefined;
    let parsed: z.infer<ReturnType<typeof cachedInspectionSchema>>;
    try {
      parsed = cachedInspectionSchema().parse(JSON.parse(text));
    } catch {
      return undefined;
    }
    // Same bytes, so the same entries; a record that disagrees with the directory just read is not trusted.
    const kinds = new Map(infos.map((i) => [i.name, i.kind]));
    const consistent =
      parsed.entryCount === infos.length &&
      parsed.functions.every((f) => kinds.get(f.entryName) === 'function') &&
      parsed.statics.every((f) => kinds.get(f.entryName) === 'static') &&
      (parsed.manifestBase64 === undefined) === !kinds.has('manifest.json');
    if (!consistent) return undefined;
    const { format: _format, manifestBase64, ...rest } = parsed;
    return { ...rest, manifestBytes: manifestBase64 === undefined ? undefined : Buffer.from(manifestBase64, 'base64') };
  }

  /** Everything the central directory alone can tell, before a single byte is inflated. */
  private async metadataPass(): Promise<EntryInfo[]> {
    const { limits, label } = this;
    const problems = new Problems();
    const infos: EntryInfo[] = [];
    const seen = new Map<string, number>();
    let declaredTotal = 0;

    if (this.zip.entryCount > limits.maxEntries) {
      problems.add(BundleLimitError, undefined, `bundle has ${this.zip.entryCount} entries, over the limit of ${limits.maxEntries}`);
    }

    // yauzl's stored-entry size check runs while the central directory is read and stops the iteration with an error
    // that names no entry; we make the same check ourselves below so that it names the entry and lets us go on.
    // The flag is read again when a data stream is opened, where we want yauzl's check back on.
    this.zip.validateEntrySizes = false;
    let previous: string | undefined;
    try {
      for await (const entry of this.zip.eachEntry()) {
        const name = decodeName(entry, problems);
        previous = name;
        const kind = classify(name);
        infos.push({ entry, name, kind });
        this.entries.set(name, entry);
        checkEntry(entry, name, kind, limits, problems);
        const count = (seen.get(name) ?? 0) + 1;
        seen.set(name, count);
        if (count === 2) problems.add(DuplicateEntryError, name, `entry ${q(name)} appears more than once`);
        declaredTotal += entry.uncompressedSize;
        // Past the limit the rest is not worth reading: a hostile directory can claim billions of entries.
        if (infos.length >= limits.maxEntries) break;
      }
    } catch (err) {
      const where = previous === undefined ? 'at its first entry' : `after entry ${q(previous)}`;
      if (/strong encryption/i.test(errorMessage(err))) {
        const which = previous === undefined ? 'its first entry' : `the entry after ${q(previous)}`;
        problems.add(EncryptedEntryError, undefined, `in ${label}, ${which} uses strong encryption, which a bundle may not`, err);
      } else {
        problems.add(CorruptZipError, undefined, `${label} has a corrupt central directory ${where} (${errorMessage(err)})`, err);
      }
    } finally {
      this.zip.validateEntrySizes = true;
    }

    if (declaredTotal > limits.maxTotalUncompressedBytes) {
      problems.add(
        BundleLimitError,
        undefined,
        `bundle entries declare ${bytes(declaredTotal)} uncompressed in total, over the limit of ${bytes(limits.maxTotalUncompressedBytes)}`,
      );
    }
    if (problems.size > 0) throw problems.toError(label);
    return infos;
  }

  /**
   * Streams every entry once. Declared sizes were checked against the limits already, and no entry may produce more
   * than it declares, so the real bytes inflated here are bounded by the limits even when the zip lies. Entries are
   * read a few at a time (inflation and file reads run on the thread pool, hashing on this thread, so one entry's
   * waits are another's work); results and problems are then taken in entry order, as if read one by one.
   */
  private async dataPass(infos: EntryInfo[]): Promise<InspectedBundle> {
    const { limits, label } = this;
    // With a listener (a deploy's head start) the pass runs beside uploads that pace it: fewer entries at once then
    // cost no time, and keep the two from adding up their buffers (peak RSS of a 400 MiB deploy: ~210 → ~170 MiB).
    const limit = pLimit(this.onEntryChecked ? DATA_PASS_CONCURRENCY / 2 : DATA_PASS_CONCURRENCY);
    // allSettled, not all: an entry still streaming into its spool file must end before close() removes the directory.
    const settled = await Promise.allSettled(infos.map((info) => limit(() => this.readEntry(info))));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;

    const problems = new Problems();
    const result: InspectedBundle = {
      manifestBytes: undefined,
      functions: [],
      statics: [],
      ignored: [],
      totalUncompressedBytes: 0,
      entryCount: infos.length,
    };
    for (const [i, r] of settled.entries()) {
      const outcome = (r as PromiseFulfilledResult<EntryOutcome>).value;
      problems.addAll(outcome.problems);
      const { name, kind } = infos[i]!;
      if (outcome.file === undefined) continue;
      result.totalUncompressedBytes += outcome.file.size + outcome.innerBytes;
      switch (kind) {
        case 'manifest':
          result.manifestBytes = outcome.manifestBytes;
          break;
        case 'function':
          // A stored function zip has no spooled copy: it is served from the bundle.
          if (outcome.spoolPath !== undefined) this.tempFiles.set(name, outcome.spoolPath);
          result.functions.push({ ...outcome.file, functionName: name.replace(/\.(zip|jar)$/, '') });
          break;
        case 'static':
          result.statics.push({ ...outcome.file, name: name.slice('static/'.length), md5Hex: outcome.md5Hex! });
          break;
        case 'ignored':
          result.ignored.push(name);
          break;
        case 'directory':
          break;
      }
    }

    if (result.totalUncompressedBytes > limits.maxTotalUncompressedBytes) {
      problems.add(
        BundleLimitError,
        undefined,
        `bundle unzips to ${bytes(result.totalUncompressedBytes)} counting the contents of its function zips, over the limit of ${bytes(limits.maxTotalUncompressedBytes)}`,
      );
    }
    if (problems.size > 0) throw problems.toError(label);
    return result;
  }

  /** One entry of the data pass: streamed, counted, CRC-checked, hashed; a function zip spooled and its own directory checked. */
  private async readEntry(info: EntryInfo): Promise<EntryOutcome> {
    this.assertOpen();
    const { entry, name, kind } = info;
    const problems = new Problems();
    let spoolPath: string | undefined;
    // The manifest's bytes are the manifest; a small asset's are handed to the listener (CheckedEntry.bytes).
    const keep = kind === 'manifest' || (kind === 'static' && this.onEntryChecked !== undefined && entry.uncompressedSize <= CHECKED_BYTES_KEPT);
    let bytes: Buffer | undefined;
    let read: StreamedEntry;
    try {
      if (kind !== 'function' && readsWhole(entry)) {
        const whole = await this.readWholeEntry(entry, name, kind === 'static');
        read = whole;
        // A buffer of its own (readWholeEntry): held as it is.
        if (keep) bytes = whole.bytes;
      } else {
        let sink: Writable;
        let chunks: Buffer[] | undefined;
        if (kind === 'function' && entry.compressionMethod !== 0) {
          // Temp files are named by position, never by entry name: the name is untrusted input.
          spoolPath = join(await this.ensureTempDir(), `function-${this.spoolCount++}.zip`);
          sink = createWriteStream(spoolPath, { flags: 'wx', mode: 0o600 });
        } else if (keep) {
          const collected: Buffer[] = [];
          chunks = collected;
          sink = new Writable({ write: (chunk: Buffer, _enc, cb) => (collected.push(chunk), cb()) });
        } else {
          sink = new Writable({ write: (_chunk, _enc, cb) => cb() });
        }
        read = await this.streamEntry(entry, name, sink, kind === 'static');
        // Copied even when it is one chunk: a chunk may be a slice of the inflater's larger output buffer, which holding
        // it would keep alive whole (HeadStart counts held bytes by length).
        if (chunks) bytes = Buffer.concat(chunks);
      }
    } catch (err) {
      if (!(err instanceof EntryProblem)) throw err;
      problems.add(err.kind, name, err.message, err.cause);
      return { problems, innerBytes: 0 };
    }
    if (read.crc !== entry.crc32) {
      problems.add(CorruptZipError, name, `entry ${q(name)} is corrupt: its data does not match its CRC-32 (${hex32(entry.crc32)} declared, ${hex32(read.crc)} found)`);
      return { problems, innerBytes: 0 };
    }
    const file: BundleFile = {
      entryName: name,
      size: read.size,
      sha256Hex: read.sha256.toString('hex'),
      sha256Base64: read.sha256.toString('base64'),
    };
    const innerBytes =
      kind !== 'function' ? 0 : await checkNestedZip(() => (spoolPath !== undefined ? openFileZip(spoolPath) : this.openStoredZip(entry)), name, this.limits, problems);
    if (problems.size === 0 && (kind === 'function' || kind === 'static') && this.onEntryChecked && !this.closed) {
      if (spoolPath !== undefined) this.tempFiles.set(name, spoolPath);
      this.checked.add(name);
      const md5Hex = read.md5?.toString('hex');
      try {
        await this.onEntryChecked({ kind, file, ...(md5Hex === undefined ? {} : { md5Hex }), ...(bytes && kind === 'static' ? { bytes } : {}) });
      } catch {
        // A listener's failure is its own; the inspection goes on.
      }
    }
    return {
      problems,
      file,
      innerBytes,
      ...(spoolPath === undefined ? {} : { spoolPath }),
      ...(kind === 'manifest' ? { manifestBytes: bytes } : {}),
      ...(read.md5 === undefined ? {} : { md5Hex: read.md5.toString('hex') }),
    };
  }

  private async streamEntry(entry: Entry, name: string, sink: Writable, withMd5: boolean): Promise<StreamedEntry> {
    let source: Readable;
    try {
      source = await this.openEntryData(entry);
    } catch (err) {
      sink.destroy();
      if (this.closed) throw err;
      throw new EntryProblem(streamProblemError(entry, name, err));
    }
    const hash = createHash('sha256');
    const md5 = withMd5 ? createHash('md5') : undefined;
    let crc = 0;
    // Our own count, independent of yauzl's: stop the inflation the moment an entry gives more than it declared.
    const guard = new SizeGuard(name, entry.uncompressedSize, (chunk) => {
      hash.update(chunk);
      md5?.update(chunk);
      crc = crc32(chunk, crc);
    });
    try {
      await pipeline(source, guard, sink);
    } catch (err) {
      if (err instanceof EntryProblem) throw err;
      if (isFsError(err)) throw err;
      throw new EntryProblem(streamProblemError(entry, name, err));
    }
    return { size: guard.bytes, sha256: hash.digest(), crc, ...(md5 ? { md5: md5.digest() } : {}) };
  }

  /**
   * streamEntry for an entry small enough to hold (readsWhole): one positional read of its data and one inflation into
   * a buffer of its own, checked and hashed in one call each. The same checks and the same errors as the stream, at a
   * fraction of the cost: on the benchmark's 300 assets, the streams' chunks, callbacks and copies were most of
   * validation's CPU time besides hashing.
   */
  private async readWholeEntry(entry: Entry, name: string, withMd5: boolean): Promise<StreamedEntry & { bytes: Buffer }> {
    let bytes: Buffer;
    try {
      const { fileDataStart } = await this.zip.readLocalFileHeaderPromise(entry, { minimal: true });
      this.assertOpen();
      if (entry.compressionMethod === 8) {
        const scratch = compressedScratch.pop() ?? Buffer.allocUnsafeSlow(SCRATCH_BYTES);
        try {
          const raw = await this.reader.readInto(scratch.subarray(0, entry.compressedSize), fileDataStart);
          bytes = await inflateWhole(raw, entry.uncompressedSize);
        } finally {
          if (compressedScratch.length < DATA_PASS_CONCURRENCY) compressedScratch.push(scratch);
        }
      } else {
        bytes = await this.reader.readAt(fileDataStart, entry.compressedSize);
      }
    } catch (err) {
      if (this.closed || isFsError(err)) throw err;
      // zlib stops at the output limit with a RangeError; what it gave up on is more than the entry declares.
      if ((err as { code?: unknown } | null)?.code === 'ERR_BUFFER_TOO_LARGE') {
        throw new EntryProblem(sizeMismatch(name, entry.uncompressedSize, undefined, { cause: err }));
      }
      throw new EntryProblem(streamProblemError(entry, name, err));
    }
    if (bytes.length !== entry.uncompressedSize) throw new EntryProblem(sizeMismatch(name, entry.uncompressedSize, bytes.length));
    return {
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest(),
      crc: crc32(bytes),
      ...(withMd5 ? { md5: createHash('md5').update(bytes).digest() } : {}),
      bytes,
    };
  }

  private get reader(): FileReader {
    return (this.zip as ZipFile & { reader: FileReader }).reader;
  }

  /**
   * An entry's uncompressed bytes, inflated here rather than by yauzl: its inflater hands out 16 KiB chunks, each one
   * a thread-pool round trip and a callback, which made inflation the largest CPU cost of validation. The guard in
   * streamEntry counts the uncompressed bytes; yauzl still checks the compressed ones.
   */
  private async openEntryData(entry: Entry): Promise<Readable> {
    const raw = await this.zip.openReadStreamPromise(entry, { decodeFileData: false });
    if (entry.compressionMethod !== 8) return raw;
    const inflate = zlib.createInflateRaw({ chunkSize: INFLATE_CHUNK_BYTES });
    raw.on('error', (err) => inflate.destroy(err));
    inflate.on('close', () => raw.destroy());
    return raw.pipe(inflate);
  }

  /**
   * A stored entry's bytes as a zip of their own, read where they lie in the bundle: a stored function zip is checked
   * this way rather than from a copy (its data was streamed and hashed already, and nothing is written).
   */
  private async openStoredZip(entry: Entry): Promise<ZipFile> {
    const { fileDataStart } = await this.zip.readLocalFileHeaderPromise(entry, { minimal: true });
    this.assertOpen();
    const reader = new RangeReader(this.reader, fileDataStart);
    try {
      return await yauzl.fromRandomAccessReaderPromise(reader, entry.compressedSize, { ...YAUZL_OPTIONS });
    } catch (err) {
      // yauzl lets go of a reader only through the zip it opened: one that is not a zip is closed here.
      reader.close(() => undefined);
      throw err;
    }
  }

  private ensureTempDir(): Promise<string> {
    this.tempDir ??= fsp.mkdtemp(join(tmpdir(), 'apps-deployer-bundle-'));
    return this.tempDir;
  }
}

/** Opens, runs `fn`, and always closes (temp files included). */
export async function withBundle<T>(path: string, limits: Partial<BundleLimits> | undefined, fn: (b: Bundle) => Promise<T>, cache?: InspectionCache): Promise<T> {
  const bundle = await Bundle.open(path, limits, cache);
  try {
    return await fn(bundle);
  } finally {
    await bundle.close();
  }
}

/** An entry that holds more bytes than it declares (`held` undefined: inflation was stopped), or fewer. */
function sizeMismatch(name: string, declared: number, held: number | undefined, options?: { cause?: unknown }): EntrySizeMismatchError {
  const holds = held === undefined || held > declared ? 'holds more' : `holds only ${held}`;
  return new EntrySizeMismatchError(`entry ${q(name)} declares ${declared} bytes but ${holds}`, options);
}

/** A problem found while streaming one entry, to be collected rather than to end the pass. */
class EntryProblem extends Error {
  readonly kind: BundleErrorClass;
  constructor(readonly error: BundleError) {
    super(error.message, error.cause === undefined ? undefined : { cause: error.cause });
    this.kind = error.constructor as BundleErrorClass;
  }
}

function mergeLimits(limits: Partial<BundleLimits> | undefined): BundleLimits {
  const merged: BundleLimits = { ...DEFAULT_BUNDLE_LIMITS };
  for (const [key, value] of Object.entries(limits ?? {}) as Array<[keyof BundleLimits, number | undefined]>) {
    if (value !== undefined) merged[key] = value;
  }
  return merged;
}

/**
 * Passes an entry's uncompressed bytes on, counting them ourselves: more than the entry declares fails at the first
 * byte too many (stopping the inflation), fewer fails at the end; `onChunk` sees each chunk that passed.
 */
class SizeGuard extends Transform {
  bytes = 0;
  constructor(
    private readonly entryName: string,
    private readonly declared: number,
    private readonly onChunk: (chunk: Buffer) => void = () => {},
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.declared) {
      cb(sizeMismatch(this.entryName, this.declared, undefined));
      return;
    }
    this.onChunk(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    cb(this.bytes < this.declared ? sizeMismatch(this.entryName, this.declared, this.bytes) : null);
  }
}

/**
 * yauzl's own file reader (fd-slicer) reads 16 KiB at a time, one thread-pool round trip each: 4,800 of them for a
 * 75 MiB bundle, which kept validation waiting on I/O for about a third of its time. This one reads 1 MiB at a time
 * with positional reads on one shared descriptor, so that several entries can stream at once.
 */
const READ_CHUNK_BYTES = 1024 * 1024;
const INFLATE_CHUNK_BYTES = 256 * 1024;

/**
 * The central directory is read whole when it is at most this large (10,000 entries with 100-byte names take ~1.5 MiB):
 * yauzl asks for each record in two small reads, and 600 thread-pool round trips made a 300-entry directory take
 * 40–60 ms to read, most of an unchanged redeploy's time before its first request. A larger one is read as before.
 */
const CENTRAL_DIRECTORY_PRELOAD_MAX = 4 * 1024 * 1024;

/** A ReadStream closes its descriptor on destroy() even with autoClose off; the shared one closes with the zip only. */
const KEEP_FD_OPEN = { open: fs.open, read: fs.read, close: (_fd: number, cb: (err: NodeJS.ErrnoException | null) => void) => cb(null) };

class FileReader extends yauzl.RandomAccessReader {
  constructor(private readonly fd: number) {
    super();
  }
  override _readStreamForRange(start: number, end: number): Readable {
    // A stream allocates its highWaterMark for a read: no more than the range needs.
    const highWaterMark = Math.max(1, Math.min(READ_CHUNK_BYTES, end - start));
    return createReadStream('', { fd: this.fd, fs: KEEP_FD_OPEN, start, end: end - 1, autoClose: false, highWaterMark });
  }
  /**
   * yauzl reads each central directory record and local header this way, twice per entry: one positional read, where
   * the default makes a stream for each (a 300-entry directory took 50–230 ms to read instead of a few).
   */
  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    const dir = this.directory;
    if (dir !== undefined && position >= dir.start && position + length <= dir.start + dir.bytes.length) {
      dir.bytes.copy(buffer, offset, position - dir.start, position - dir.start + length);
      queueMicrotask(() => callback(null));
      return;
    }
    const readAt = (done: number): void => {
      if (done === length) return callback(null);
      fs.read(this.fd, buffer, offset + done, length - done, position + done, (err, n) => {
        if (err) return callback(err);
        if (n === 0) return callback(new Error(`unexpected end of file at byte ${position + done}`));
        readAt(done + n);
      });
    };
    readAt(0);
  }
  override close(callback: (err: Error | null) => void): void {
    this.directory = undefined;
    fs.close(this.fd, (err) => callback(err ?? null));
  }

  /** The central directory and what follows it, read at once: see read() and CENTRAL_DIRECTORY_PRELOAD_MAX. */
  private directory: { start: number; bytes: Buffer } | undefined;

  async preloadDirectory(start: number, end: number): Promise<void> {
    if (end - start > CENTRAL_DIRECTORY_PRELOAD_MAX || end <= start) return;
    this.directory = { start, bytes: await this.readAt(start, end - start) };
  }

  /** `length` bytes at `position`, in one buffer of their own. */
  readAt(position: number, length: number): Promise<Buffer> {
    return this.readInto(Buffer.allocUnsafeSlow(length), position);
  }

  /** Fills `buffer` with the bytes at `position`. */
  readInto(buffer: Buffer, position: number): Promise<Buffer> {
    return new Promise((resolve, reject) => this.read(buffer, 0, buffer.length, position, (err) => (err ? reject(err) : resolve(buffer))));
  }

  stat(): Promise<fs.BigIntStats> {
    return new Promise((resolve, reject) => fs.fstat(this.fd, { bigint: true }, (err, st) => (err ? reject(err) : resolve(st))));
  }
}

/**
 * A range of the bundle file as a file of its own, for yauzl: holds the bundle's reader open (yauzl's reference count)
 * until closed, so that closing the bundle meanwhile cannot close the descriptor under it.
 */
class RangeReader extends yauzl.RandomAccessReader {
  constructor(
    private readonly file: FileReader,
    private readonly offset: number,
  ) {
    super();
    (file as unknown as { ref(): void }).ref();
  }
  override _readStreamForRange(start: number, end: number): Readable {
    return this.file._readStreamForRange(this.offset + start, this.offset + end);
  }
  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null) => void): void {
    this.file.read(buffer, offset, length, this.offset + position, callback);
  }
  override close(callback: (err: Error | null) => void): void {
    (this.file as unknown as { unref(): void }).unref();
    callback(null);
  }
}

function serializeInspection(result: InspectedBundle): string {
  const { manifestBytes, ...rest } = result;
  return JSON.stringify({ format: INSPECTION_CACHE_FORMAT, ...rest, ...(manifestBytes ? { manifestBase64: manifestBytes.toString('base64') } : {}) });
}

async function openZip(path: string): Promise<ZipFile> {
  const fd = await new Promise<number>((resolve, reject) => fs.open(path, 'r', (err, n) => (err ? reject(err) : resolve(n))));
  try {
    const { size } = await new Promise<fs.Stats>((resolve, reject) => fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st))));
    const reader = new FileReader(fd);
    const zip = await yauzl.fromRandomAccessReaderPromise(reader, size, { ...YAUZL_OPTIONS });
    // yauzl's cursor starts at the central directory, which runs to the end records at the end of the file (its
    // typings call the cursor a boolean; yauzl's code makes it the offset).
    await reader.preloadDirectory(Number(zip.readEntryCursor), size);
    return zip;
  } catch (err) {
    fs.close(fd, () => undefined);
    throw err;
  }
}

async function describeOpenError(path: string, label: string, err: unknown): Promise<unknown> {
  if (isFsError(err)) return err;
  const message = errorMessage(err);
  // A zip cut short loses its end record first; yauzl then either finds none, or finds the end record of a stored
  // function zip inside it and complains about its comment length. Its head still tells whether it was a zip.
  if (/end of central directory record signature not found|invalid comment length/i.test(message)) {
    return (await startsWithZipSignature(path))
      ? new CorruptZipError(`${label} is truncated or corrupt: it starts like a zip but its end-of-central-directory record is missing or damaged`, {
          cause: err,
        })
      : new NotAZipError(`${label} is not a zip file`, { cause: err });
  }
  return new CorruptZipError(`${label} is a corrupt zip file (${message})`, { cause: err });
}

async function startsWithZipSignature(path: string): Promise<boolean> {
  const fh = await fsp.open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return bytesRead === 4 && head.readUInt32LE(0) === 0x04034b50;
  } finally {
    await fh.close();
  }
}

function decodeName(entry: Entry, problems: Problems): string {
  // With decodeStrings:false yauzl hands out the raw bytes. Go's archive/zip uses them as they are, and S3 keys are
  // UTF-8, so UTF-8 it is, whatever the language-encoding flag says.
  const raw: Buffer = entry.fileNameRaw;
  try {
    return utf8.decode(raw);
  } catch {
    const lossy = raw.toString('utf8');
    problems.add(UnsafeEntryNameError, lossy, `entry ${q(lossy)} has a name that is not valid UTF-8 (bytes ${raw.toString('hex')})`);
    return lossy;
  }
}

/** appsctl.md §4, first matching rule wins; directory entries are never files to deploy. */
function classify(name: string): EntryKind {
  if (name === 'manifest.json') return 'manifest';
  if (name.endsWith('/')) return 'directory';
  if (name.endsWith('.zip') || name.endsWith('.jar')) return 'function';
  if (name.startsWith('static/')) return 'static';
  return 'ignored';
}

function checkEntry(entry: Entry, name: string, kind: EntryKind, limits: BundleLimits, problems: Problems): void {
  const n = q(name);
  if (name === '') problems.add(UnsafeEntryNameError, name, 'an entry has an empty name');
  if (name.includes('\0')) problems.add(UnsafeEntryNameError, name, `entry ${n} contains a NUL byte`);
  if (name.includes('\\')) problems.add(UnsafeEntryNameError, name, `entry ${n} contains a backslash, which is not a portable path separator`);
  if (name.startsWith('/') || /^[a-zA-Z]:/.test(name)) problems.add(UnsafeEntryNameError, name, `entry ${n} is an absolute path`);
  // Split on both separators: a Windows extractor treats `..\x` as a parent reference too.
  if (name.split(/[/\\]/).includes('..')) problems.add(UnsafeEntryNameError, name, `entry ${n} escapes the bundle (contains a ".." segment)`);

  if (((entry.externalFileAttributes >>> 16) & 0o170000) === 0o120000) {
    problems.add(SymlinkEntryError, name, `entry ${n} is a symbolic link, which a bundle may not contain`);
  }
  const encrypted = (entry.generalPurposeBitFlag & 1) !== 0;
  if (encrypted) problems.add(EncryptedEntryError, name, `entry ${n} is encrypted, which a bundle may not be`);
  if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
    problems.add(BundleError, name, `entry ${n} uses compression method ${entry.compressionMethod}; only stored (0) and deflate (8) are supported`);
  }
  if (entry.compressionMethod === 0 && entry.compressedSize !== entry.uncompressedSize + (encrypted ? 12 : 0)) {
    problems.add(
      EntrySizeMismatchError,
      name,
      `entry ${n} is stored uncompressed but declares ${entry.compressedSize} bytes compressed and ${entry.uncompressedSize} bytes uncompressed`,
    );
  }

  const ratioProblem = compressionRatioProblem(entry, limits.maxCompressionRatio);
  if (ratioProblem !== undefined) problems.add(BundleLimitError, name, `entry ${n} ${ratioProblem}`);
  if (kind === 'manifest' && entry.uncompressedSize > limits.maxManifestBytes) {
    problems.add(BundleLimitError, name, `entry ${n} is ${bytes(entry.uncompressedSize)}, over the manifest limit of ${bytes(limits.maxManifestBytes)}`);
  }
  if (kind === 'function' && entry.uncompressedSize > limits.maxFunctionUncompressedBytes) {
    problems.add(
      BundleLimitError,
      name,
      `function entry ${n} is ${bytes(entry.uncompressedSize)}, over the function limit of ${bytes(limits.maxFunctionUncompressedBytes)}`,
    );
  }
}

/** `has compression ratio 1032:1, over the limit of 200:1`, or undefined when the entry is within the limit. */
function compressionRatioProblem(entry: Entry, max: number): string | undefined {
  if (entry.uncompressedSize <= COMPRESSION_RATIO_MIN_BYTES) return undefined;
  if (entry.compressedSize === 0) {
    return `has an impossible compression ratio (${entry.uncompressedSize} bytes from 0 compressed bytes), over the limit of ${max}:1`;
  }
  const ratio = entry.uncompressedSize / entry.compressedSize;
  if (ratio <= max) return undefined;
  const shown = Math.floor(ratio) > max ? String(Math.floor(ratio)) : ratio.toFixed(2);
  return `has compression ratio ${shown}:1, over the limit of ${max}:1`;
}

/** A spooled function zip, opened as yauzl opens a file. */
function openFileZip(path: string): Promise<ZipFile> {
  return new Promise<ZipFile>((resolve, reject) => {
    yauzl.open(path, { ...YAUZL_OPTIONS }, (err, z) => (err ? reject(err) : resolve(z)));
  });
}

/**
 * Checks a function zip's central directory (spooled, or where it lies in the bundle): that it is a zip at all (Lambda
 * would reject it), what it declares it unzips to, and its entries' ratios. Returns the declared uncompressed total (0
 * when it is not a zip).
 */
async function checkNestedZip(open: () => Promise<ZipFile>, entryName: string, limits: BundleLimits, problems: Problems): Promise<number> {
  const n = q(entryName);
  let zip: ZipFile;
  try {
    zip = await open();
  } catch (err) {
    if (isFsError(err)) throw err;
    problems.add(NotAZipError, entryName, `function entry ${n} is not a valid zip file (${errorMessage(err)})`, err);
    return 0;
  }
  let total = 0;
  try {
    for await (const inner of zip.eachEntry()) {
      total += inner.uncompressedSize;
      const ratioProblem = compressionRatioProblem(inner, limits.maxCompressionRatio);
      if (ratioProblem !== undefined) {
        problems.add(BundleLimitError, entryName, `function entry ${n} contains ${q(inner.fileNameRaw.toString('utf8'))}, which ${ratioProblem}`);
      }
    }
  } catch (err) {
    problems.add(NotAZipError, entryName, `function entry ${n} is not a valid zip file (${errorMessage(err)})`, err);
  } finally {
    zip.close();
  }
  if (total > limits.maxFunctionUncompressedBytes) {
    problems.add(
      BundleLimitError,
      entryName,
      `function entry ${n} unzips to ${bytes(total)}, over the function limit of ${bytes(limits.maxFunctionUncompressedBytes)}`,
    );
  }
  return total;
}

/** Names what went wrong reading one entry's data, from yauzl's and zlib's unnamed errors. */
function streamProblemError(entry: Entry, name: string, err: unknown): BundleError {
  if (err instanceof EntryProblem) return err.error;
  if (err instanceof BundleError) return err;
  const n = q(name);
  const message = errorMessage(err);
  const opts = { cause: err };
  if (/too many bytes in the stream/.test(message)) {
    return sizeMismatch(name, entry.uncompressedSize, undefined, opts);
  }
  const short = /not enough bytes in the stream\. expected (\d+)\. got only (\d+)/.exec(message);
  if (short !== null && entry.compressionMethod === 8) {
    return sizeMismatch(name, entry.uncompressedSize, Number(short[2]), opts);
  }
  if (/file data overflows file bounds|unexpected EOF|not enough bytes in the stream/.test(message)) {
    return new CorruptZipError(`entry ${n} is cut off: its data runs past the end of the file (truncated bundle?)`, opts);
  }
  if (/invalid local file header signature/.test(message)) {
    return new CorruptZipError(`entry ${n} is corrupt: its local header is missing or damaged`, opts);
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new CorruptZipError(`entry ${n} is corrupt: its compressed data cannot be inflated (${message})`, opts);
  }
  return new CorruptZipError(`entry ${n} cannot be read (${message})`, opts);
}

function isFsError(err: unknown): boolean {
  return typeof (err as { syscall?: unknown } | null)?.syscall === 'string';
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Quotes a name for a message; JSON escaping makes NUL and control characters visible. */
function q(name: string): string {
  return JSON.stringify(name);
}

function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${n} bytes (${Number(value.toFixed(1))} ${units[unit]})`;
}

// zlib.crc32 arrived in Node 20.15 / 22.2; the engines field allows older 20.x.
const nativeCrc32: ((data: Buffer, value?: number) => number) | undefined =
  typeof zlib.crc32 === 'function' ? zlib.crc32 : undefined;
let crcTable: Uint32Array | undefined;

function crc32(data: Buffer, value = 0): number {
  if (nativeCrc32 !== undefined) return nativeCrc32(data, value);
  crcTable ??= makeCrcTable();
  let crc = ~value >>> 0;
  for (const byte of data) crc = (crcTable[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return ~crc >>> 0;
}

function makeCrcTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
}

/**
 * A hand-rolled zip WRITER for tests only: it forges what honest writers (yazl) refuse to produce — unsafe names,
 * symlink modes, the encryption flag, duplicate names, lying sizes and CRCs, arbitrary compressed bytes — so that the
 * bundle reader can be shown to reject each. It deliberately shares no code with src/ so that a bug in the reader
 * cannot hide behind the same bug here.
 */
import { writeFile } from 'node:fs/promises';
import zlib from 'node:zlib';

export interface RawZipEntry {
  /** Written as given; a string is encoded as UTF-8 (the language-encoding flag is set when it is not ASCII). */
  name: string | Buffer;
  /** The real uncompressed content. */
  data?: string | Buffer;
  /** 'store' (default), 'deflate', or any method number to forge an unsupported one. */
  method?: 'store' | 'deflate' | number;
  /** Bytes written as the entry's data instead of store/deflate(data): corrupt deflate streams and the like. */
  rawData?: Buffer;
  /** Lies to write in both headers instead of the truth. */
  declaredUncompressedSize?: number;
  declaredCompressedSize?: number;
  declaredCrc32?: number;
  /** Full st_mode put in the upper 16 bits of the external attributes, e.g. 0o120777 for a symlink. */
  unixMode?: number;
  /** Sets general-purpose bit 0 (traditional encryption) without encrypting anything. */
  encrypted?: boolean;
  /** Extra general-purpose bits ORed in. */
  flags?: number;
}

const DOS_TIME = (12 << 11) | (0 << 5) | 0; // 12:00:00
const DOS_DATE = ((2021 - 1980) << 9) | (3 << 5) | 18; // 2021-03-18

/** Builds the whole zip in memory: test bundles are small, and a zip bomb's compressed form is small too. */
export function rawZip(entries: RawZipEntry[], options: { comment?: string } = {}): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;

  for (const e of entries) {
    const name = typeof e.name === 'string' ? Buffer.from(e.name, 'utf8') : e.name;
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data, 'utf8');
    const methodNumber = e.method === undefined || e.method === 'store' ? 0 : e.method === 'deflate' ? 8 : e.method;
    const body = e.rawData ?? (methodNumber === 8 ? zlib.deflateRawSync(data) : data);
    const crc = e.declaredCrc32 ?? crc32(data);
    const compressedSize = e.declaredCompressedSize ?? body.length;
    const uncompressedSize = e.declaredUncompressedSize ?? data.length;
    const nonAscii = typeof e.name === 'string' && /[^\x00-\x7f]/.test(e.name);
    const flags = (e.flags ?? 0) | (e.encrypted ? 0x1 : 0) | (nonAscii ? 0x800 : 0);
    const mode = e.unixMode ?? (name.at(-1) === 0x2f ? 0o40755 : 0o100644);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(methodNumber, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(compressedSize, 18);
    local.writeUInt32LE(uncompressedSize, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28); // extra length
    locals.push(local, name, body);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, so the mode bits mean what they say
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(methodNumber, 10);
    central.writeUInt16LE(DOS_TIME, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(crc >>> 0, 16);
    central.writeUInt32LE(compressedSize, 20);
    central.writeUInt32LE(uncompressedSize, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(0, 30); // extra length
    central.writeUInt16LE(0, 32); // comment length
    central.writeUInt16LE(0, 34); // disk
    central.writeUInt16LE(0, 36); // internal attributes
    // Multiplication, not <<, keeps the value unsigned for modes with the top bit set.
    central.writeUInt32LE((mode & 0xffff) * 0x10000, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);

    offset += local.length + name.length + body.length;
  }

  const centralDirectory = Buffer.concat(centrals);
  const comment = Buffer.from(options.comment ?? '', 'utf8');
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(0, 4);
  eocd.writeUInt16LE(0, 6);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(centralDirectory.length, 12);
  eocd.writeUInt32LE(offset, 16);
  eocd.writeUInt16LE(comment.length, 20);
  return Buffer.concat([...locals, centralDirectory, eocd, comment]);
}

export async function writeRawZip(path: string, entries: RawZipEntry[], options?: { comment?: string }): Promise<string> {
  await writeFile(path, rawZip(entries, options));
  return path;
}

// zlib.crc32 exists from Node 20.15 (and 22.2); before that, the classic table.
const hasNativeCrc32 = typeof zlib.crc32 === 'function';
let table: Uint32Array | undefined;

export function crc32(data: Buffer, options: { forceTable?: boolean } = {}): number {
  if (hasNativeCrc32 && !options.forceTable) return zlib.crc32(data) >>> 0;
  table ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let crc = 0xffffffff;
  for (const byte of data) crc = (table[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

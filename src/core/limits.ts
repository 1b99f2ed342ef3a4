/**
 * Bundle limits live apart from the bundle reader: configuration (the control plane's, appsctl's flags) needs the
 * defaults, and importing them must not pull yauzl and the inspection code into handlers that never read a bundle.
 */
export interface BundleLimits {
  /** Size of the bundle file itself. */
  maxBundleBytes: number;
  /** Entries in the bundle's central directory. */
  maxEntries: number;
  /** Declared uncompressed bytes of every entry, plus the declared contents of every function zip. */
  maxTotalUncompressedBytes: number;
  /** One function zip, both as an entry of the bundle and as the sum of its own contents. */
  maxFunctionUncompressedBytes: number;
  /** Declared uncompressed / compressed size of one entry (bundle entries and function zip entries). */
  maxCompressionRatio: number;
  maxManifestBytes: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_BUNDLE_LIMITS: BundleLimits = Object.freeze({
  maxBundleBytes: 512 * MiB,
  maxEntries: 10_000,
  maxTotalUncompressedBytes: 1024 * MiB,
  maxFunctionUncompressedBytes: 250 * MiB,
  maxCompressionRatio: 200,
  maxManifestBytes: 1 * MiB,
});

import { createHash } from 'node:crypto';
import { BundleValidationError, type ErrorDetail } from './errors';
import { GoMap, goMarshalIndent } from './gojson';
import { awsLambdaFunctions, manifestIssues, type AwsLambdaFunction, type Manifest } from './manifest';
import { lambdaName, lambdaNameProblem, manifestKey, staticKey } from './naming';
import { runtimeStatus } from './runtimes';
import { withBundle, type BundleFile, type BundleFunctionFile, type BundleLimits, type BundleStaticFile, type CheckedEntry, type InspectedBundle, type InspectionCache } from './bundle';

/**
 * DeployData (ProvisionData before v0.7): what `appsctl generate-terraform-data` prints and what every deploy path
 * works from. Field order is the Go struct's; the maps are Go maps (sorted keys on output).
 */
export interface DeployData {
  static_files: Record<string, { key: string }>;
  lambda_functions: Record<string, { name: string; handler: string; runtime: string }>;
  manifest_key: string;
}

export interface PlannedFunction {
  /** The manifest's function name, the key of `lambda_functions`. */
  name: string;
  lambdaName: string;
  handler: string;
  runtime: string;
  file: BundleFunctionFile;
}

export interface PlannedStatic {
  /** Name relative to `static/`, the key of `static_files`. */
  name: string;
  key: string;
  file: BundleStaticFile;
}

/** A bundle that was read, checked and resolved into what will be deployed. */
export interface AppBundle {
  manifest: Manifest;
  manifestBytes: Buffer;
  manifestSha256Hex: string;
  deployData: DeployData;
  functions: PlannedFunction[];
  statics: PlannedStatic[];
  ignored: string[];
  /** Not fatal: deprecated runtimes and the like. */
  warnings: ErrorDetail[];
}

export interface ResolveResult {
  bundle?: AppBundle;
  /** Problems the original Go validation reports (`GetDeployData` + `Validate`). */
  goProblems: ErrorDetail[];
  /** Problems that only we report: what AWS would refuse although Go accepts it (design.md §2). */
  awsProblems: ErrorDetail[];
}

/**
 * Resolves an inspected bundle as upaws.GetDeployData does (appsctl.md §4), and collects every problem at once.
 */
export function resolveBundle(inspected: InspectedBundle): ResolveResult {
  const goProblems: ErrorDetail[] = [];
  const awsProblems: ErrorDetail[] = [];
  const warnings: ErrorDetail[] = [];

  if (inspected.manifestBytes === undefined) {
    return { goProblems: [{ path: 'manifest.json', message: 'no manifest found' }], awsProblems };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(inspected.manifestBytes.toString('utf8'));
  } catch (err) {
    return { goProblems: [{ path: 'manifest.json', message: `not valid JSON: ${(err as Error).message}` }], awsProblems };
  }
  // Manifest problems do not stop the checks below: they run on whatever parts of the manifest are usable, so that
  // every problem of the bundle is reported at once (design.md §2).
  const issues = manifestIssues(raw);
  goProblems.push(...issues.map((d) => ({ ...d, path: d.path ? `manifest.json: ${d.path}` : 'manifest.json' })));
  const manifest = raw as Manifest;
  const manifestFunctions = issues.length === 0 ? awsLambdaFunctions(manifest) : usableFunctions(raw);
  if (typeof raw !== 'object' || raw === null || (raw as Manifest).aws_lambda === undefined) {
    goProblems.push({ path: 'manifest.json', message: '"aws_lambda" is not present in the manifest' });
    return { goProblems, awsProblems };
  }
  const rawIds = raw as { app_id?: unknown; version?: unknown };
  const idsUsable = typeof rawIds.app_id === 'string' && (rawIds.version === undefined || typeof rawIds.version === 'string') && !issues.some((d) => /^(app_id|version)\b/.test(d.message));

  const { app_id: appId, version = '' } = manifest;
  // Go: for every bundle file, for every manifest function whose name is a suffix of the file's name (no break), the
  // entry keyed by the manifest name is (over)written. Zip order decides which file wins a contested name.
  const matched = new Map<string, { fn: AwsLambdaFunction; file: BundleFunctionFile }>();
  for (const file of inspected.functions) {
    for (const fn of manifestFunctions) {
      if (file.functionName.endsWith(fn.name)) matched.set(fn.name, { fn, file });
    }
  }
  if (manifestFunctions.length !== matched.size) {
    goProblems.push({
      message: `different number of functions in the manifest and in the bundle: expected ${manifestFunctions.length}, found ${matched.size}`,
    });
  }
  for (const fn of manifestFunctions) {
    if (!matched.has(fn.name)) {
      goProblems.push({ path: fn.name, message: `function ${JSON.stringify(fn.name)} was not found in the bundle (expected an entry named like "${fn.name}.zip")` });
    }
  }

  if (!idsUsable) return { goProblems, awsProblems };
  const functions: PlannedFunction[] = [];
  const seenLambdaNames = new Map<string, string>();
  for (const [name, { fn, file }] of matched) {
    const lname = lambdaName(appId, version, name);
    functions.push({ name, lambdaName: lname, handler: fn.handler, runtime: fn.runtime, file });
    const problem = lambdaNameProblem(lname);
    if (problem !== undefined) {
      awsProblems.push({
        path: name,
        message:
          `the Lambda name the Mattermost server computes for function ${JSON.stringify(name)}, ${JSON.stringify(lname)}, ${problem}; ` +
          `shorten the function name so that "${appId.replaceAll('.', '-')}_${version.replaceAll('.', '-')}_${name.replaceAll(' ', '-')}" fits in 64 characters` +
          (/[.]/.test(appId + version) ? ', or use an app_id and version without dots' : ''),
      });
    }
    const other = seenLambdaNames.get(lname);
    if (other !== undefined) {
      awsProblems.push({ path: name, message: `functions ${JSON.stringify(other)} and ${JSON.stringify(name)} map to the same Lambda name ${JSON.stringify(lname)}` });
    }
    seenLambdaNames.set(lname, name);
    const status = runtimeStatus(fn.runtime);
    if (status === 'unknown') {
      awsProblems.push({ path: name, message: `runtime ${JSON.stringify(fn.runtime)} is not an AWS Lambda runtime` });
    } else if (status === 'deprecated') {
      warnings.push({ path: name, message: `runtime ${fn.runtime} is deprecated by AWS Lambda; AWS may refuse to create functions with it` });
    }
  }

  const statics: PlannedStatic[] = inspected.statics.map((s) => ({ name: s.name, key: staticKey(appId, version, s.name), file: s }));
  const seenKeys = new Map<string, string>();
  for (const s of statics) {
    const other = seenKeys.get(s.key);
    if (other !== undefined) {
      awsProblems.push({ path: `static/${s.name}`, message: `static files ${JSON.stringify(other)} and ${JSON.stringify(s.name)} map to the same S3 key ${s.key}` });
    }
    seenKeys.set(s.key, s.name);
  }

  const deployData: DeployData = {
    static_files: Object.fromEntries(statics.map((s) => [s.name, { key: s.key }])),
    lambda_functions: Object.fromEntries(functions.map((f) => [f.name, { name: f.lambdaName, handler: f.handler, runtime: f.runtime }])),
    manifest_key: manifestKey(appId, version),
  };
  if (issues.length > 0) return { goProblems, awsProblems };
  return {
    bundle: { manifest, manifestBytes: inspected.manifestBytes, manifestSha256Hex: createHash('sha256').update(inspected.manifestBytes).digest('hex'), deployData, functions, statics, ignored: inspected.ignored, warnings },
    goProblems,
    awsProblems,
  };
}

/** The aws_lambda functions of a manifest that failed validation, as far as they can be read. */
function usableFunctions(raw: unknown): AwsLambdaFunction[] {
  const fns = (raw as { aws_lambda?: { functions?: unknown } } | null)?.aws_lambda?.functions;
  if (!Array.isArray(fns)) return [];
  return fns.filter(
    (f): f is AwsLambdaFunction =>
      typeof f === 'object' && f !== null && ['name', 'handler', 'runtime', 'path'].every((k) => typeof (f as Record<string, unknown>)[k] === 'string') && (f as { name: string }).name !== '',
  );
}

/** `json.MarshalIndent(data, "", "\t")` plus the newline cobra's Println adds. */
export function formatDeployData(data: DeployData): string {
  return (
    goMarshalIndent({
      static_files: new GoMap(data.static_files),
      lambda_functions: new GoMap(
        Object.fromEntries(Object.entries(data.lambda_functions).map(([k, v]) => [k, { name: v.name, handler: v.handler, runtime: v.runtime }])),
      ),
      manifest_key: data.manifest_key,
    }) + '\n'
  );
}

export type Strictness = 'go' | 'deployable';

/**
 * Throws BundleValidationError listing every problem. `go` accepts what the original tool accepts (the DeployData is
 * still printed for a name AWS would refuse); `deployable` also refuses what AWS would refuse.
 */
export function assertResolved(result: ResolveResult, strictness: Strictness, label = 'bundle'): AppBundle {
  const problems = strictness === 'go' ? result.goProblems : [...result.goProblems, ...result.awsProblems];
  if (problems.length > 0 || result.bundle === undefined) {
    throw new BundleValidationError(
      `${label} is not a valid Mattermost App${problems.length === 1 ? '' : ` (${problems.length} problems)`}:`,
      { details: problems },
    );
  }
  return result.bundle;
}

export interface AppBundleOptions {
  limits?: Partial<BundleLimits>;
  strictness: Strictness;
  label?: string;
  cache?: InspectionCache;
  /**
   * Told what the bundle will deploy (names, keys; hashes still empty) as soon as its central directory and manifest
   * resolve without a problem, while its entries are still being read and checked: only for work that changes
   * nothing (reads), since the bundle may still be refused for what its data holds.
   */
  onPreview?: (app: AppBundle) => void;
  /** Bundle.onEntryChecked: each function zip and asset whose own bytes passed their checks, before the whole bundle has. */
  onEntryChecked?: (entry: CheckedEntry, open: (entryName: string) => Promise<NodeJS.ReadableStream>) => void | Promise<void>;
}

/**
 * Opens, inspects (structure, limits, hashes) and resolves a bundle file, then runs `fn` while the bundle is open
 * (entry streams are only readable until it returns).
 */
export async function withAppBundle<T>(
  path: string,
  opts: AppBundleOptions,
  fn: (app: AppBundle, open: (entryName: string) => Promise<NodeJS.ReadableStream>) => Promise<T>,
): Promise<T> {
  return withBundle(
    path,
    opts.limits,
    async (b) => {
      // A head start only: whatever is wrong is found and reported by inspect() below, and then nothing is told; nor
      // is anything told once inspect() has ended (a bundle found in the cache can be quicker than its preview).
      let inspected: InspectedBundle | undefined;
      const onChecked = opts.onEntryChecked;
      b.onEntryChecked = onChecked && ((entry) => onChecked(entry, (entryName) => b.openReadStream(entryName)));
      if (opts.onPreview) {
        const tell = opts.onPreview;
        b.preview()
          .then((preview) => {
            if (inspected) return;
            const resolved = resolveBundle(preview);
            if (resolved.goProblems.length === 0 && (opts.strictness === 'go' || resolved.awsProblems.length === 0) && resolved.bundle) tell(resolved.bundle);
          })
          .catch(() => undefined);
      }
      inspected = await b.inspect();
      const app = assertResolved(resolveBundle(inspected), opts.strictness, opts.label);
      return fn(app, (entryName) => b.openReadStream(entryName));
    },
    opts.cache,
  );
}

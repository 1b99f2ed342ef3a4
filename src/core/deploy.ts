import type { Readable } from 'node:stream';
import pLimit, { type LimitFunction } from 'p-limit';
import { DEFAULTS } from './config';
import { ConflictError, NotFoundError, PolicyLimitError } from './errors';
import type { Logger } from './logger';
import { DEPLOY_SECTIONS } from './manifest';
import { staticKey } from './naming';
import { addLambdaArns, ALLOW_LAMBDA_SID, IAM_POLICY_MAX_VERSIONS, parsePolicy, type PolicyDocument } from './policy';
import type { FunctionInfo, IamEntity, IamPolicy, IamPort, PolicyVersion, LambdaPort, ListedObject, MattermostPort, S3Port } from './ports';
import { withAppBundle, type AppBundle, type AppBundleOptions, type PlannedFunction, type PlannedStatic } from './provision';
import { codeKey, codeObject, SHA_METADATA, staticObject } from './objects';
import { HeadStart, type HeadStartHandle } from './head-start';
import { appLockIsStale, appLockKey, withAppLock, type AppLockHolder } from './app-lock';
import { DeploymentStore } from './deployments';

/**
 * `appsctl aws deploy` (appsctl.md §2) done as design.md §2 asks: plan with reads only, fail before any change, then
 * apply in an order that never exposes a half-deployed app — static assets, function code and functions, invoke
 * policy (these side by side, none visible yet), then the manifest, Mattermost listing, install. Every step skips what is already in place, so a second run of the
 * same bundle writes nothing, and a run that failed part-way completes when run again.
 */
export interface DeployOptions {
  update: boolean;
  install: boolean;
  dryRun: boolean;
  policyName: string;
  executeRoleName: string;
  /** Environment variables for every function (`--env`); undefined leaves existing variables alone. */
  environment?: Record<string, string>;
  /** Calls Mattermost after the AWS steps (false for `aws test deploy`). */
  listInMattermost: boolean;
  concurrency: number;
  /** Who holds the app lock while this deploys, as other deployers will see it (with host and pid for a local process). */
  lockHolder?: string | AppLockHolder;
  /**
   * No AWS call until the whole bundle is checked (`--validate-first`): neither the plan's early reads nor the head
   * start's uploads (withBundleToDeploy). Off by default: either leaves nothing behind for a refused bundle.
   */
  validateFirst?: boolean;
}

export const DEFAULT_DEPLOY_OPTIONS: DeployOptions = {
  update: false,
  install: false,
  dryRun: false,
  policyName: DEFAULTS.policy,
  executeRoleName: DEFAULTS.executeRole,
  listInMattermost: true,
  concurrency: 8,
};

export interface DeployPorts {
  region: string;
  s3: S3Port;
  lambda: LambdaPort;
  iam: IamPort;
  mattermost?: MattermostPort;
}

export interface BundleSource {
  app: AppBundle;
  /** A fresh stream of one bundle entry. */
  open(entryName: string): Promise<Readable>;
  /** Uploads made while the bundle was validated, and the app lock they were made under (withBundleToDeploy). */
  headStart?: HeadStartHandle;
}

export type Action = 'create' | 'update' | 'unchanged';

export { codeKey } from './objects';

export interface FunctionPlan {
  name: string;
  lambdaName: string;
  arn: string;
  action: Action;
  /** What differs, for an update: `code`, `handler`, `runtime`, `role`, `environment`. */
  changes: string[];
  codeKey: string;
  codeSha256: string;
}

export interface StaticPlan {
  name: string;
  key: string;
  action: Action;
}

export interface DeployPlan {
  appId: string;
  version: string;
  displayName: string;
  bucket: string;
  executeRole: { name: string; arn: string };
  /** `versionId`: the default version when planned, whose document the plan grew into `document`. */
  invokePolicy: { name: string; arn: string; versionId: string; action: 'update' | 'unchanged'; addedArns: string[]; removedArns: string[]; document: string };
  functions: FunctionPlan[];
  statics: StaticPlan[];
  manifest: { key: string; action: Action };
  warnings: string[];
}

export interface DeployResult extends DeployPlan {
  executePolicyArn: string;
  manifestUrl: string;
  listed: boolean;
  installed: boolean;
}

export type ProgressEvent = { step: 'static' | 'code' | 'function' | 'policy' | 'manifest' | 'mattermost'; name: string; action: string };

function accountOf(arn: string): string {
  return arn.split(':')[4] ?? '';
}

function sameEnv(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/**
 * The keys of apps.Manifest at HEAD: the Go client marshals its struct, so legacy keys (app_type, root_url) and
 * unknown ones never reach the server in the listing request.
 */
const LISTED_MANIFEST_KEYS = [
  'SchemaVersion', 'app_id', 'version', 'homepage_url', 'display_name', 'description', 'icon', 'bindings', 'on_install',
  'on_version_changed', 'on_uninstall', 'on_enable', 'on_disable', 'get_oauth2_connect_url', 'on_oauth2_complete',
  'on_remote_webhook', 'requested_permissions', 'remote_webhook_auth_type', 'requested_locations', ...DEPLOY_SECTIONS,
];

export function listingManifest(manifest: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(LISTED_MANIFEST_KEYS.filter((k) => manifest[k] !== undefined).map((k) => [k, manifest[k]]));
}

/** Reads only. Throws before any change for: missing role or policy, code conflicts without --update, an oversized policy. */
export async function planDeploy(ports: DeployPorts, source: BundleSource, opts: DeployOptions): Promise<DeployPlan> {
  const { app } = source;
  const { app_id: appId, version = '', display_name: displayName } = app.manifest;
  const limit = pLimit(opts.concurrency);

  // Every read that depends only on names goes out at once: on a real network each is a round trip, and a deploy
  // that found nothing to do is made of little else.
  const [role, policy, existing, listedObjects, manifestHead] = await Promise.all([
    ports.iam.getRole(opts.executeRoleName),
    ports.iam.findPolicy(opts.policyName),
    Promise.all(app.functions.map((f) => limit(() => ports.lambda.getFunction(f.lambdaName)))),
    // One listing of the version's static prefix instead of a HEAD per asset (a first deploy sends no HEAD at all).
    app.statics.length > 0 ? ports.s3.listKeys(staticKey(appId, version, '')) : Promise.resolve([]),
    ports.s3.headObject(app.deployData.manifest_key),
  ]);
  if (!role) throw new NotFoundError(`execute role ${opts.executeRoleName} not found; create it with: appsctl aws init --create`);
  if (!policy) throw new NotFoundError(`invoke policy ${opts.policyName} not found; create it with: appsctl aws init --create`);
  const account = accountOf(role.arn);

  const conflicts: Array<{ path: string; message: string }> = [];
  const functions = app.functions.map((f, i): FunctionPlan => {
    const found = existing[i];
    const base = {
      name: f.name,
      lambdaName: f.lambdaName,
      arn: functionArn(found, ports.region, role.arn, f.lambdaName),
      codeKey: codeKey(f.lambdaName, f.file.sha256Hex),
      codeSha256: f.file.sha256Base64,
    };
    if (!found) return { ...base, action: 'create', changes: [] };
    const changes = functionChanges(found, f, role.arn, opts.environment);
    if (changes.length === 0) return { ...base, action: 'unchanged', changes };
    if (!opts.update) {
      conflicts.push({ path: f.name, message: `function ${f.lambdaName} already exists with a different ${changes.join(', ')}` });
    }
    return { ...base, action: 'update', changes };
  });
  if (conflicts.length > 0) {
    throw new ConflictError(
      `${conflicts.length === 1 ? 'a function' : `${conflicts.length} functions`} of ${appId} ${version} already exist${conflicts.length === 1 ? 's' : ''} with other code or configuration; pass --update to replace ${conflicts.length === 1 ? 'it' : 'them'}`,
      { details: conflicts },
    );
  }

  // An object PUT in one request, unencrypted or SSE-S3, lists the MD5 of its bytes as its ETag: equal means unchanged,
  // with no request of its own. Otherwise (another size: changed; SSE-KMS, whose ETags are not MD5s, or other bytes)
  // only an asset of the same size needs its HEAD, for the SHA-256 stored at upload.
  const listed = new Map(listedObjects.map((o) => [o.key, o]));
  const [statics, currentDoc] = await Promise.all([
    Promise.all(
      app.statics.map((s) =>
        limit(async (): Promise<StaticPlan> => {
          const found = listed.get(s.key);
          if (found === undefined) return { name: s.name, key: s.key, action: 'create' };
          if (found.size !== s.file.size) return { name: s.name, key: s.key, action: 'update' };
          if (found.etag !== undefined && found.etag.replace(/"/g, '') === s.file.md5Hex) return { name: s.name, key: s.key, action: 'unchanged' };
          const head = await ports.s3.headObject(s.key);
          return { name: s.name, key: s.key, action: !head ? 'create' : head.metadata[SHA_METADATA] === s.file.sha256Hex ? 'unchanged' : 'update' };
        }),
      ),
    ),
    ports.iam.getPolicyDocument(policy.arn, policy.defaultVersionId),
  ]);

  const parsed = parsePolicy(currentDoc);
  const warnings = app.warnings.map((w) => `${w.path ? `${w.path}: ` : ''}${w.message}`);
  if (parsed.droppedFields.length > 0) {
    warnings.push(`the invoke policy has statement fields (${parsed.droppedFields.join(', ')}) that the Mattermost tooling does not keep when it adds functions`);
  }
  const grown = await growInvokePolicy(ports.lambda, parsed.doc, functions.map((f) => f.arn), policy.name, limit);

  const manifestKey = app.deployData.manifest_key;
  const manifestAction: Action = !manifestHead ? 'create' : manifestHead.metadata[SHA_METADATA] === app.manifestSha256Hex ? 'unchanged' : 'update';

  return {
    appId,
    version,
    displayName: displayName ?? appId,
    bucket: ports.s3.bucket,
    executeRole: { name: role.name, arn: role.arn },
    invokePolicy: {
      name: policy.name,
      arn: policy.arn,
      versionId: policy.defaultVersionId,
      action: grown ? 'update' : 'unchanged',
      addedArns: grown?.added ?? [],
      removedArns: grown?.removed ?? [],
      document: grown?.text ?? currentDoc,
    },
    functions,
    statics,
    manifest: { key: manifestKey, action: manifestAction },
    warnings,
  };
}

/**
 * withAppBundle for a deploy, which starts while the bundle's data is still being checked: from the bundle's preview,
 * the plan's reads (prefetchPlanReads), and unless it is a dry run, the uploads of new objects as each entry passes its
 * checks (HeadStart: under the app lock, undone if the bundle or the plan is refused). `fn` gets the bundle, with the
 * head start's handle, and the ports that hold the early reads, to deploy with.
 */
export async function withBundleToDeploy<T>(
  path: string,
  bundleOpts: Omit<AppBundleOptions, 'onPreview' | 'onEntryChecked'>,
  ports: DeployPorts,
  opts: DeployOptions,
  fn: (source: BundleSource, planPorts: DeployPorts) => Promise<T>,
): Promise<T> {
  if (opts.validateFirst) return withAppBundle(path, bundleOpts, (app, open) => fn({ app, open: async (e) => (await open(e)) as Readable }, ports));
  let planPorts = ports;
  const head = opts.dryRun ? undefined : new HeadStart(ports.s3, { concurrency: opts.concurrency, lockHolder: opts.lockHolder ?? 'appsctl' });
  const onPreview = (preview: AppBundle) => {
    const reads = startPlanReads(ports, preview, opts);
    planPorts = reads.ports;
    head?.begin(preview, worthAHeadStart(ports, reads, preview, opts).catch(() => undefined));
  };
  try {
    return await withAppBundle(
      path,
      { ...bundleOpts, onPreview, ...(head ? { onEntryChecked: head.offer.bind(head) } : {}) },
      async (app, open) => {
        const headStart = await head?.ready();
        return fn({ app, open: async (e) => (await open(e)) as Readable, ...(headStart ? { headStart } : {}) }, planPorts);
      },
    );
  } finally {
    await head?.finish();
  }
}

/**
 * Starts the reads of a plan that need only names (withAppBundle's preview) while the bundle is still being inspected, and
 * returns ports that hand each result to the first call asking for exactly it; every later call goes to AWS. A plan
 * made with them is as fresh as one made when the reads started, which the app lock and re-plan already allow for.
 */
export function prefetchPlanReads(ports: DeployPorts, app: AppBundle, opts: DeployOptions): DeployPorts {
  return startPlanReads(ports, app, opts).ports;
}

/** The early reads: `ports` hand each to the first call asking for it; `peek` looks at one without taking it. */
interface PlanReads {
  ports: DeployPorts;
  peek(method: string, ...args: string[]): Promise<unknown> | undefined;
}

function startPlanReads(ports: DeployPorts, app: AppBundle, opts: DeployOptions): PlanReads {
  const appId = app.manifest.app_id;
  const version = app.manifest.version ?? '';
  const limit = pLimit(opts.concurrency);
  const ahead = new Map<string, Promise<unknown>>();
  const start = <T>(key: string, read: () => Promise<T>): Promise<T> => {
    const p = read();
    // Never asked for (the plan took another path, or the bundle was refused): not an unhandled rejection.
    p.catch(() => undefined);
    ahead.set(key, p);
    return p;
  };
  start(`getRole ${opts.executeRoleName}`, () => ports.iam.getRole(opts.executeRoleName));
  void start(`findPolicy ${opts.policyName}`, () => ports.iam.findPolicy(opts.policyName)).then(
    (p) => p && start(`getPolicyDocument ${p.arn} ${p.defaultVersionId}`, () => ports.iam.getPolicyDocument(p.arn, p.defaultVersionId)),
    () => undefined,
  );
  for (const { lambdaName } of app.functions) start(`getFunction ${lambdaName}`, () => limit(() => ports.lambda.getFunction(lambdaName)));
  if (app.statics.length > 0) start(`listKeys ${staticKey(appId, version, '')}`, () => ports.s3.listKeys(staticKey(appId, version, '')));
  start(`headObject ${app.deployData.manifest_key}`, () => ports.s3.headObject(app.deployData.manifest_key));
  // deploy()'s first read (appLockIsStale): whether a dead deployer left the app locked. Read last, after the plan, it
  // was the one request an unchanged redeploy waited for alone.
  start(`getObjectText ${appLockKey(appId)}`, () => ports.s3.getObjectText(appLockKey(appId)));

  const take = (key: string): Promise<unknown> | undefined => {
    const p = ahead.get(key);
    ahead.delete(key);
    return p;
  };
  /** The port with the prefetched methods answering from `ahead` first. */
  const withAhead = <P extends object>(port: P, methods: string[]): P =>
    new Proxy(port, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver) as unknown;
        if (typeof value !== 'function') return value;
        const method = (value as (...args: unknown[]) => unknown).bind(target);
        if (typeof prop !== 'string' || !methods.includes(prop)) return method;
        return (...args: unknown[]) => take(`${prop} ${args.join(' ')}`) ?? method(...args);
      },
    });
  return {
    ports: {
      ...ports,
      iam: withAhead(ports.iam, ['getRole', 'findPolicy', 'getPolicyDocument']),
      lambda: withAhead(ports.lambda, ['getFunction']),
      s3: withAhead(ports.s3, ['listKeys', 'headObject', 'getObjectText']),
    },
    peek: (method, ...args) => ahead.get(`${method} ${args.join(' ')}`),
  };
}

/**
 * Whether a head start is worth its lock and sure not to be undone for what names alone tell: something in the bundle
 * does not exist yet (a function, an asset's key), and the plan will not refuse the deploy for a missing role or policy,
 * a policy that cannot grow, or (without --update) a function that exists and may differ. Read from the early reads,
 * taken before the lock: a deploy that finds nothing new takes no lock early, nor does one that will be refused.
 * Answers the static keys that exist (the head start leaves them to the apply step), or undefined for no head start.
 */
async function worthAHeadStart(ports: DeployPorts, reads: PlanReads, app: AppBundle, opts: DeployOptions): Promise<ReadonlySet<string> | undefined> {
  const read = <T>(method: string, ...args: string[]) => (reads.peek(method, ...args) ?? Promise.resolve(undefined)) as Promise<T | undefined>;
  const appId = app.manifest.app_id;
  const version = app.manifest.version ?? '';
  const [role, policy, listed, existing] = await Promise.all([
    read<IamEntity>('getRole', opts.executeRoleName),
    read<IamPolicy>('findPolicy', opts.policyName),
    app.statics.length > 0 ? read<ListedObject[]>('listKeys', staticKey(appId, version, '')) : Promise.resolve([]),
    Promise.all(app.functions.map((f) => read<FunctionInfo>('getFunction', f.lambdaName))),
  ]);
  if (!role || !policy || listed === undefined) return undefined;
  if (!opts.update && existing.some((f) => f !== undefined)) return undefined;
  const keys = new Set(listed.map((o) => o.key));
  if (!existing.some((f) => f === undefined) && app.statics.every((s) => keys.has(s.key))) return undefined;
  const doc = (await read<string>('getPolicyDocument', policy.arn, policy.defaultVersionId)) ?? (await ports.iam.getPolicyDocument(policy.arn, policy.defaultVersionId));
  const arns = app.functions.map((f, i) => functionArn(existing[i], ports.region, role.arn, f.lambdaName));
  await growInvokePolicy(ports.lambda, parsePolicy(doc).doc, arns, policy.name, pLimit(opts.concurrency));
  return keys;
}

function functionArn(found: FunctionInfo | undefined, region: string, roleArn: string, lambdaName: string): string {
  return found?.arn ?? `arn:aws:lambda:${region}:${accountOf(roleArn)}:function:${lambdaName}`;
}

/**
 * Adds the ARNs; when the document would outgrow IAM's size limit, drops the ARNs of functions that no longer exist
 * and tries once more. Still too big is a PolicyLimitError, thrown before any change.
 */
export async function growInvokePolicy(lambda: LambdaPort, doc: PolicyDocument, arns: string[], policyName: string, limit: LimitFunction): Promise<ReturnType<typeof addLambdaArns>> {
  try {
    return addLambdaArns(doc, arns, { policyName });
  } catch (err) {
    if (!(err instanceof PolicyLimitError)) throw err;
    const listed = doc.Statement.find((s) => s.Sid === ALLOW_LAMBDA_SID)?.Resource ?? [];
    const candidates = listed.filter((a) => !arns.includes(a) && a.includes(':function:'));
    const gone = new Set<string>();
    await Promise.all(
      candidates.map((arn) =>
        limit(async () => {
          if (!(await lambda.getFunction(arn.split(':function:')[1]!))) gone.add(arn);
        }),
      ),
    );
    if (gone.size === 0) throw err;
    return addLambdaArns(doc, arns, { policyName, prune: (a) => gone.has(a) });
  }
}

function functionChanges(existing: FunctionInfo, f: PlannedFunction, roleArn: string, environment: Record<string, string> | undefined): string[] {
  const changes: string[] = [];
  if (existing.codeSha256 !== f.file.sha256Base64) changes.push('code');
  if (existing.handler !== f.handler) changes.push('handler');
  if (existing.runtime !== f.runtime) changes.push('runtime');
  if (existing.role !== roleArn) changes.push('role');
  if (environment !== undefined && !sameEnv(existing.environment, environment)) changes.push('environment');
  return changes;
}

/**
 * Plans, then (unless dry-run) applies. Throws on the first failed step; what was done before it stays, the manifest is
 * written and listed only after everything it names exists, and a re-run picks up where this one stopped.
 */
export async function deploy(
  ports: DeployPorts,
  source: BundleSource,
  opts: DeployOptions,
  logger: Logger,
  onProgress: (e: ProgressEvent) => void = () => {},
): Promise<{ plan: DeployPlan; result?: DeployResult }> {
  if (opts.listInMattermost && !opts.dryRun && !ports.mattermost) {
    throw new Error('deploy: a Mattermost client is required to list the app');
  }
  // Read beside the plan: whether a dead deployer left the app locked matters when the plan finds nothing to change.
  const staleLock = appLockIsStale(ports.s3, source.app.manifest.app_id);
  staleLock.catch(() => undefined);
  const first = await planDeploy(ports, source, opts);
  const lockOptions = { onTakeover: (message: string) => logger.warn(message) };
  const { headStart } = source;
  if (headStart && !opts.dryRun) {
    // The head start holds the app lock already, taken before its first upload: plan again only if the lock was not
    // free when asked for, as below.
    for (const w of headStart.warnings) logger.warn(w);
    const plan = headStart.firstTry ? first : await planDeploy(ports, source, opts);
    for (const w of plan.warnings) logger.warn(w);
    return apply(ports, source, opts, plan, logger, onProgress);
  }
  if (opts.dryRun || !hasAwsChanges(first)) {
    for (const w of first.warnings) logger.warn(w);
    if (opts.dryRun) return { plan: first };
    // Nothing to change in AWS, so no lock to take: unless a deployer that died after its last change (before or
    // after listing) left one, which is taken over and released here, so that the app is free again.
    if (await staleLock) {
      return withAppLock(ports.s3, first.appId, opts.lockHolder ?? 'appsctl', () => apply(ports, source, opts, first, logger, onProgress), lockOptions);
    }
    return apply(ports, source, opts, first, logger, onProgress);
  }
  // Changes to make: one deployer per app at a time. A lock that was held or stale when asked for means another
  // deployment ran meanwhile and may have made some of the changes: plan again. A lock free at once leaves the short
  // window between the plan's reads and the lock, which apply covers where it matters: a function created meanwhile
  // is caught at create, and the invoke policy (shared with every app) is grown from its current document.
  return withAppLock(
    ports.s3,
    first.appId,
    opts.lockHolder ?? 'appsctl',
    async ({ firstTry }) => {
      const plan = firstTry ? first : await planDeploy(ports, source, opts);
      for (const w of plan.warnings) logger.warn(w);
      return apply(ports, source, opts, plan, logger, onProgress);
    },
    lockOptions,
  );
}

export function hasAwsChanges(plan: DeployPlan): boolean {
  return (
    plan.functions.some((f) => f.action !== 'unchanged') ||
    plan.statics.some((s) => s.action !== 'unchanged') ||
    plan.invokePolicy.action !== 'unchanged' ||
    plan.manifest.action !== 'unchanged'
  );
}

async function apply(
  ports: DeployPorts,
  source: BundleSource,
  opts: DeployOptions,
  plan: DeployPlan,
  logger: Logger,
  onProgress: (e: ProgressEvent) => void,
): Promise<{ plan: DeployPlan; result: DeployResult }> {
  const { app, headStart } = source;
  headStart?.commit();
  const limit = pLimit(opts.concurrency);
  const staticsByName = new Map(app.statics.map((s) => [s.name, s]));
  const functionsByName = new Map(app.functions.map((f) => [f.name, f]));

  // 1. Static assets, the code of new and changed functions, the functions themselves and the invoke policy, each as
  // soon as what it needs is there. Nothing of it is visible to Mattermost before the manifest (step 2): assets live
  // under the version's prefix, code under the private content-addressed functions/ prefix, and a function or a policy
  // statement nobody lists is never invoked. Code objects go first in the upload pool, so that each function is
  // created from its code while the assets still upload, and the biggest uploads do not wait for the last asset.
  // What the head start uploaded while the bundle was validated (new objects only) is not uploaded again.
  const codeUploads = new Map<string, Promise<void>>();
  for (const fp of plan.functions.filter((x) => x.action === 'create' || x.changes.includes('code'))) {
    const f = functionsByName.get(fp.name)!;
    codeUploads.set(
      fp.name,
      (async () => {
        // Awaited outside the pool: the head start's uploads have a pool of their own.
        if (await headStart?.uploaded(fp.codeKey, f.file.sha256Hex)) return onProgress({ step: 'code', name: fp.name, action: 'upload' });
        await limit(() => uploadCode(ports.s3, source, fp, f, onProgress));
      })(),
    );
  }
  const staticUploads = plan.statics
    .filter((s) => s.action !== 'unchanged')
    .map(async (s) => {
      const planned = staticsByName.get(s.name)!;
      if (!(await headStart?.uploaded(s.key, planned.file.sha256Hex))) {
        await limit(() => ports.s3.putObject(staticObject(planned, source.open)));
        logger.debug('uploaded static asset to S3', { key: s.key });
      }
      onProgress({ step: 'static', name: s.name, action: s.action });
    });
  // Lambda calls are not uploads: they have a pool of their own, so that they never queue behind assets.
  const lambdaLimit = pLimit(opts.concurrency);
  const functionChangesDone = plan.functions
    .filter((f) => f.action !== 'unchanged')
    .map(async (fp) => {
      await (codeUploads.get(fp.name) ?? Promise.resolve());
      await lambdaLimit(() => applyFunction(ports, fp, functionsByName.get(fp.name)!, plan.executeRole.arn, opts.environment, logger));
      onProgress({ step: 'function', name: fp.lambdaName, action: fp.action });
    });
  // The invoke policy: only when an ARN is new; versions kept within IAM's limit, oldest non-default first.
  // Grown from the document as it is now, not as planned: the policy is shared by every app, and another app's deployer
  // may have added its ARNs since the plan's read.
  const policyDone = (async () => {
    if (plan.invokePolicy.action !== 'update') return;
    const { name, arn, versionId } = plan.invokePolicy;
    // Two reads side by side, not a chain: this is the last step of a first deploy to end. The listing names the default
    // version now (and the versions to prune); the plan's version is read beside it, and is still the default unless
    // another deployer changed the policy meanwhile, which costs one read more.
    const planned = ports.iam.getPolicyDocument(arn, versionId);
    planned.catch(() => undefined);
    const versions = await ports.iam.listPolicyVersions(arn).catch(async (err: unknown) => {
      if (!(await ports.iam.findPolicy(name).catch(() => true))) {
        throw new NotFoundError(`invoke policy ${name} was deleted during the deploy; create it with: appsctl aws init --create`, { cause: err });
      }
      throw err;
    });
    const current = versions.find((v) => v.isDefault)?.versionId ?? versionId;
    const doc = parsePolicy(current === versionId ? await planned : await ports.iam.getPolicyDocument(arn, current)).doc;
    const grown = await growInvokePolicy(ports.lambda, doc, plan.functions.map((f) => f.arn), name, lambdaLimit);
    if (!grown) return;
    await ensurePolicyVersionRoom(ports.iam, arn, versions);
    await ports.iam.createPolicyVersion(arn, grown.text);
    logger.info('updated invoke policy', { policy: name, added: grown.added.length });
    onProgress({ step: 'policy', name, action: 'update' });
  })();
  // Every task ends before this deploy does (and before its app lock is released), failed or not; the first failure
  // is then the deploy's.
  const settled = await Promise.allSettled([...codeUploads.values(), ...staticUploads, ...functionChangesDone, policyDone]);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;

  // 2. Manifest: written only now, when everything it names exists.
  if (plan.manifest.action !== 'unchanged') {
    await ports.s3.putObject({
      key: plan.manifest.key,
      body: app.manifestBytes,
      contentLength: app.manifestBytes.length,
      contentType: 'application/json',
      metadata: { [SHA_METADATA]: app.manifestSha256Hex },
    });
    logger.info('uploaded manifest to S3', { key: plan.manifest.key });
    onProgress({ step: 'manifest', name: plan.manifest.key, action: plan.manifest.action });
  }

  // 3. Mattermost.
  let listed = false;
  let installed = false;
  if (opts.listInMattermost && ports.mattermost) {
    await ports.mattermost.updateAppListing(listingManifest(app.manifest as Record<string, unknown>), { replace: false, addDeploys: ['aws_lambda'] });
    listed = true;
    onProgress({ step: 'mattermost', name: 'update-app-listing', action: 'listed' });
    if (opts.install) {
      await ports.mattermost.installApp(plan.appId, 'aws_lambda');
      installed = true;
      onProgress({ step: 'mattermost', name: 'install-app', action: 'installed' });
    }
    // Mattermost cannot be asked which version it lists: whoever lists one records it, so that undeploy can refuse to
    // remove it and list can show it, whether the CLI, the API or the auto-deployer did the listing.
    await new DeploymentStore(ports.s3).recordListed(plan.appId, plan.version, installed);
  }

  return {
    plan,
    result: {
      ...plan,
      executePolicyArn: DEFAULTS.lambdaExecutionPolicyArn,
      manifestUrl: `https://s3-${ports.region}.amazonaws.com/${ports.s3.bucket}/${plan.manifest.key}`,
      listed,
      installed,
    },
  };
}

/** Creates or updates one function from its uploaded code, and waits until Lambda has it ready. */
async function applyFunction(ports: DeployPorts, fp: FunctionPlan, f: PlannedFunction, roleArn: string, environment: Record<string, string> | undefined, logger: Logger): Promise<void> {
  const code = { s3Bucket: ports.s3.bucket, s3Key: fp.codeKey };
  if (fp.action === 'create') {
    const created = await ports.lambda.createFunction({
      name: fp.lambdaName,
      handler: f.handler,
      runtime: f.runtime,
      role: roleArn,
      code,
      ...(environment ? { environment } : {}),
    });
    // createFunction answers an existing function of the same configuration (a retried create whose first response
    // was lost); one that somebody else created meanwhile with other code is not ours to list.
    if (created.codeSha256 && created.codeSha256 !== f.file.sha256Base64) {
      throw new ConflictError(`function ${fp.lambdaName} was created meanwhile by someone else, with other code; deploy again with --update to replace it`);
    }
    await ports.lambda.waitUntilReady(fp.lambdaName, 'create', created);
    logger.info('created function', { name: fp.lambdaName });
    return;
  }
  if (fp.changes.includes('code')) {
    const updated = await ports.lambda.updateFunctionCode(fp.lambdaName, code);
    await ports.lambda.waitUntilReady(fp.lambdaName, 'update', updated);
  }
  if (fp.changes.some((c) => c !== 'code')) {
    const current = await ports.lambda.getFunction(fp.lambdaName);
    const updated = await ports.lambda.updateFunctionConfiguration(fp.lambdaName, {
      handler: f.handler,
      runtime: f.runtime,
      role: roleArn,
      environment: environment ?? current?.environment ?? {},
    });
    await ports.lambda.waitUntilReady(fp.lambdaName, 'update', updated);
  }
  logger.info('updated function', { name: fp.lambdaName, changes: fp.changes.join(',') });
}

/** A function's code object, unless it is there already (content-addressed: same key, same bytes). */
async function uploadCode(s3: S3Port, source: BundleSource, fp: FunctionPlan, f: PlannedFunction, onProgress: (e: ProgressEvent) => void): Promise<void> {
  const head = await s3.headObject(fp.codeKey);
  if (head && head.metadata[SHA_METADATA] === f.file.sha256Hex) return;
  await s3.putObject(codeObject(f, fp.codeKey, source.open));
  onProgress({ step: 'code', name: fp.name, action: 'upload' });
}

/** Deletes the oldest non-default versions of a managed policy until one more fits within IAM's 5. */
export async function ensurePolicyVersionRoom(iam: IamPort, arn: string, listed?: PolicyVersion[]): Promise<void> {
  const versions = listed ?? (await iam.listPolicyVersions(arn));
  const nonDefault = versions.filter((v) => !v.isDefault).sort((a, b) => (a.createDate?.getTime() ?? 0) - (b.createDate?.getTime() ?? 0) || versionNumber(a.versionId) - versionNumber(b.versionId));
  let count = versions.length;
  for (const v of nonDefault) {
    if (count < IAM_POLICY_MAX_VERSIONS) break;
    await iam.deletePolicyVersion(arn, v.versionId);
    count--;
  }
}

function versionNumber(id: string): number {
  return Number(id.replace(/^v/, '')) || 0;
}

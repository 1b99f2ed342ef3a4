import pLimit, { type LimitFunction } from 'p-limit';
import { withAppLock, type AppLockHolder } from './app-lock';
import { ensurePolicyVersionRoom, growInvokePolicy, listingManifest, type DeployPorts } from './deploy';
import { DEPLOYMENTS_PREFIX, DeploymentStore } from './deployments';
import { BadRequestError, ConfigError, ConflictError, NotFoundError } from './errors';
import type { Logger } from './logger';
import { AppIdSchema, AppVersionSchema, awsLambdaFunctions, manifestIssues, type Manifest } from './manifest';
import { lambdaName, manifestKey, parseManifestKey, staticKey } from './naming';
import { deleteKeys } from './objects';
import { lambdaNameOfArn, parsePolicy, removeLambdaArns } from './policy';
import type { ListedObject, S3Port } from './ports';

/**
 * The app lifecycle beyond deploy: list what is deployed, roll the Mattermost listing back to an earlier version,
 * undeploy a version and prune old ones. Every write holds the app lock, as deploy does, and every operation can be
 * run again after a failure: it finds what is left and finishes.
 *
 * What belongs to a version is found by the names the Mattermost server computes (appsctl.md §2 "Naming rules"): the
 * manifest `manifests/<app>_<version>.json`, one Lambda function per manifest function, its code objects under
 * `functions/<lambdaName>/`, the static assets under `static/<app>_<version>_app/` (the manifest does not list them,
 * so they are found by that prefix) and the functions' ARNs in the invoke policy.
 */

const CONCURRENCY = 8;

export interface VersionFunction {
  /** The manifest's function name. */
  name: string;
  lambdaName: string;
  exists: boolean;
  arn?: string;
  state?: string;
  lastUpdateStatus?: string;
  runtime?: string;
}

export interface AppVersion {
  version: string;
  manifestKey: string;
  /** When the manifest was last written (S3 LastModified): what "newest" means for prune. */
  deployedAt?: string;
  listed: boolean;
  /** The manifest is valid and names this app and version, every function exists and has not failed, the icon exists. */
  complete: boolean;
  /** Why the version is not complete; empty when it is. */
  problems: string[];
  functions: VersionFunction[];
}

export interface AppListing {
  appId: string;
  listedVersion?: string;
  /**
   * `record`: one of our deploys or rollbacks listed it and recorded so. `presumed`: nothing was recorded (an app
   * deployed before records existed), so the newest version is taken to be the listed one, the safe guess for undeploy.
   */
  listedVersionSource?: 'record' | 'presumed';
  installed: boolean;
  /** Newest first. */
  versions: AppVersion[];
}

export interface LifecycleContext {
  ports: DeployPorts;
  store: DeploymentStore;
  logger: Logger;
}

export function lifecycleContext(ports: DeployPorts, logger: Logger): LifecycleContext {
  return { ports, store: new DeploymentStore(ports.s3), logger };
}

function checkAppId(appId: string): void {
  const valid = AppIdSchema.safeParse(appId);
  if (!valid.success) throw new BadRequestError(`${JSON.stringify(appId)} is not a valid app id`, { details: valid.error.issues.map((i) => ({ path: 'appId', message: i.message })) });
}

function checkVersion(version: string): void {
  const valid = AppVersionSchema.safeParse(version);
  if (!valid.success || version === '') {
    throw new BadRequestError(`${JSON.stringify(version)} is not a valid app version`, {
      details: valid.success ? [{ path: 'version', message: 'is empty' }] : valid.error.issues.map((i) => ({ path: 'version', message: i.message })),
    });
  }
}

/**
 * Newest first: by the manifest's LastModified, which a deploy writes only when the manifest changes and a rollback
 * never touches, so it is when that version was deployed. S3 keeps it to the second: ties (and objects without it)
 * fall back to the version strings compared with their numbers as numbers (v10 after v9).
 */
export function newestFirst(a: { version: string; deployedAt?: string }, b: { version: string; deployedAt?: string }): number {
  const ta = a.deployedAt ? Date.parse(a.deployedAt) : 0;
  const tb = b.deployedAt ? Date.parse(b.deployedAt) : 0;
  return tb - ta || b.version.localeCompare(a.version, 'en', { numeric: true });
}

async function readManifest(s3: S3Port, key: string): Promise<{ manifest?: Manifest; problems: string[] } | undefined> {
  const obj = await s3.getObjectText(key);
  if (!obj) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(obj.text);
  } catch (err) {
    return { problems: [`the manifest ${key} is not valid JSON: ${(err as Error).message}`] };
  }
  const issues = manifestIssues(value);
  return { manifest: value as Manifest, problems: issues.map((i) => `the manifest is invalid: ${i.message}`) };
}

async function describeVersion(s3: S3Port, ports: DeployPorts, appId: string, version: string, listed: Pick<ListedObject, 'key' | 'lastModified'>, limit: LimitFunction): Promise<AppVersion | undefined> {
  const read = await readManifest(s3, listed.key);
  if (!read) return undefined;
  const base = { version, manifestKey: listed.key, ...(listed.lastModified ? { deployedAt: listed.lastModified.toISOString() } : {}), listed: false };
  const { manifest } = read;
  const problems = [...read.problems];
  if (!manifest) return { ...base, complete: false, problems, functions: [] };
  // The server checks that the manifest it fetched is the app it asked for (appsctl.md §6).
  if (manifest.app_id !== appId) problems.push(`the manifest names app ${JSON.stringify(manifest.app_id)}, not ${appId}`);
  if ((manifest.version ?? '') !== version) problems.push(`the manifest names version ${JSON.stringify(manifest.version ?? '')}, not ${version}`);
  const declared = awsLambdaFunctions(manifest).filter((f) => typeof f?.name === 'string');
  if (declared.length === 0) problems.push('the manifest has no aws_lambda functions');
  const functions = await Promise.all(
    declared.map((f) =>
      limit(async (): Promise<VersionFunction> => {
        const name = lambdaName(appId, version, f.name);
        const info = await ports.lambda.getFunction(name);
        if (!info) problems.push(`function ${f.name} (${name}) does not exist`);
        else if (info.state === 'Failed' || info.lastUpdateStatus === 'Failed') problems.push(`function ${f.name} (${name}) is ${info.state}/${info.lastUpdateStatus}: ${info.stateReason ?? 'no reason given'}`);
        return {
          name: f.name,
          lambdaName: name,
          exists: info !== undefined,
          ...(info ? { arn: info.arn } : {}),
          ...(info?.state ? { state: info.state } : {}),
          ...(info?.lastUpdateStatus ? { lastUpdateStatus: info.lastUpdateStatus } : {}),
          ...(info?.runtime ? { runtime: info.runtime } : {}),
        };
      }),
    ),
  );
  // The icon is the one static asset the manifest names, so the one whose absence can be told.
  if (typeof manifest.icon === 'string' && manifest.icon !== '') {
    const key = staticKey(appId, version, manifest.icon);
    if (!(await s3.headObject(key))) problems.push(`the icon ${manifest.icon} (${key}) is missing`);
  }
  return { ...base, complete: problems.length === 0, problems, functions };
}

/** Every deployed version of one app, from the manifests under `manifests/<appId>_`, newest first. */
export async function describeApp(ctx: LifecycleContext, appId: string, keys?: ListedObject[]): Promise<AppListing | undefined> {
  checkAppId(appId);
  const { ports, store } = ctx;
  const limit = pLimit(CONCURRENCY);
  // `manifests/foo_` also lists app `foo_bar`: keep the keys that parse as this app's.
  const own = (keys ?? (await ports.s3.listKeys(`manifests/${appId}_`))).filter((k) => parseManifestKey(k.key)?.appId === appId);
  const described = await Promise.all(own.map((k) => describeVersion(ports.s3, ports, appId, parseManifestKey(k.key)!.version, k, limit)));
  const versions = described.filter((v): v is AppVersion => v !== undefined).sort(newestFirst);
  const summary = await store.getAppSummary(appId);
  if (versions.length === 0 && !summary) return undefined;
  const listedVersion = summary?.listedVersion ?? versions[0]?.version;
  for (const v of versions) v.listed = v.version === listedVersion;
  return {
    appId,
    ...(listedVersion !== undefined ? { listedVersion, listedVersionSource: summary?.listedVersion !== undefined ? ('record' as const) : ('presumed' as const) } : {}),
    installed: summary?.installed ?? false,
    versions,
  };
}

/** `appsctl aws list [PREFIX]`, `GET /apps`: every app with a manifest under `manifests/<prefix>`, by app id. */
export async function listApps(ctx: LifecycleContext, prefix = ''): Promise<AppListing[]> {
  const byApp = new Map<string, ListedObject[]>();
  for (const k of await ctx.ports.s3.listKeys(`manifests/${prefix}`)) {
    const parsed = parseManifestKey(k.key);
    if (!parsed || !AppIdSchema.safeParse(parsed.appId).success) continue;
    byApp.set(parsed.appId, [...(byApp.get(parsed.appId) ?? []), k]);
  }
  const apps: AppListing[] = [];
  for (const appId of [...byApp.keys()].sort()) {
    const app = await describeApp(ctx, appId, byApp.get(appId));
    if (app) apps.push(app);
  }
  return apps;
}

// ---------------------------------------------------------------------------------------------------------------------
// Rollback

export interface RollbackOptions {
  policyName: string;
  lockHolder: string | AppLockHolder;
}

export interface RollbackResult {
  appId: string;
  version: string;
  previousListedVersion?: string;
  /** ARNs the invoke policy had lost and got back, so that the server may invoke the version again. */
  policy: { name: string; action: 'update' | 'unchanged'; addedArns: string[] };
  listed: true;
}

/**
 * `appsctl aws rollback APP VERSION`, `POST /apps/{appId}/rollback`: lists an earlier version again in Mattermost
 * (`update-app-listing` as a deploy sends it, appsctl.md §2 step 10), provided all of it is still deployed. Nothing
 * is redeployed: the version's manifest, functions and assets are used as they are.
 */
export async function rollback(ctx: LifecycleContext, appId: string, version: string, opts: RollbackOptions): Promise<RollbackResult> {
  checkAppId(appId);
  checkVersion(version);
  const { ports, store, logger } = ctx;
  const limit = pLimit(CONCURRENCY);
  const key = manifestKey(appId, version);
  const complete = async (): Promise<AppVersion> => {
    const described = await describeVersion(ports.s3, ports, appId, version, { key }, limit);
    if (!described) throw new NotFoundError(`${appId} ${version} is not deployed: no manifest at s3://${ports.s3.bucket}/${key}`);
    if (!described.complete) {
      throw new ConflictError(`cannot roll back ${appId} to ${version}: the version is not completely deployed: ${described.problems.join('; ')}`, {
        details: described.problems.map((message) => ({ message })),
      });
    }
    return described;
  };
  // Checked with reads only, before the lock: a refusal changes nothing, not even the lock object.
  await complete();
  const mattermost = ports.mattermost;
  if (!mattermost) throw new ConfigError('rollback lists the version in Mattermost: MM_SERVICESETTINGS_SITEURL and MM_ADMIN_TOKEN must be set');

  return withAppLock(ports.s3, appId, opts.lockHolder, async () => {
    // Again under the lock: an undeploy may have finished while this one waited.
    const described = await complete();
    const before = await store.getAppSummary(appId);

    // Deploy's policy pruning drops ARNs of functions that do not exist at that moment; these exist, and the server
    // must be allowed to invoke them before it is told to.
    const policy = await ports.iam.findPolicy(opts.policyName);
    if (!policy) throw new NotFoundError(`invoke policy ${opts.policyName} not found; create it with: appsctl aws init --create`);
    const doc = parsePolicy(await ports.iam.getPolicyDocument(policy.arn, policy.defaultVersionId)).doc;
    const grown = await growInvokePolicy(ports.lambda, doc, described.functions.map((f) => f.arn!), policy.name, limit);
    if (grown) {
      await ensurePolicyVersionRoom(ports.iam, policy.arn);
      await ports.iam.createPolicyVersion(policy.arn, grown.text);
      logger.info('restored function ARNs in the invoke policy', { policy: policy.name, added: grown.added.length });
    }

    const text = await ports.s3.getObjectText(key);
    if (!text) throw new NotFoundError(`${appId} ${version} was undeployed while rolling back to it`);
    await mattermost.updateAppListing(listingManifest(JSON.parse(text.text) as Record<string, unknown>), { replace: false, addDeploys: ['aws_lambda'] });
    await store.recordListed(appId, version);
    logger.info('listed in Mattermost', { app: appId, version });
    return {
      appId,
      version,
      ...(before?.listedVersion !== undefined ? { previousListedVersion: before.listedVersion } : {}),
      policy: { name: policy.name, action: grown ? 'update' : 'unchanged', addedArns: grown?.added ?? [] },
      listed: true,
    };
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// Undeploy and prune

/**
 * Written before the manifest is deleted: once it is gone, the version's function names can no longer be computed
 * from it, and a run that fails after that point must still find them. Deleted when the version is wholly gone.
 */
interface RemovalJournal {
  appId: string;
  version: string;
  lambdaNames: string[];
  startedAt: string;
}

export const UNDEPLOYS_PREFIX = `${DEPLOYMENTS_PREFIX}undeploys/`;
const journalKey = (appId: string, version: string) => `${UNDEPLOYS_PREFIX}${encodeURIComponent(appId)}/${encodeURIComponent(version)}.json`;

export interface VersionRemoval {
  version: string;
  /** The manifest, when it still exists. */
  manifestKey?: string;
  /** Functions that exist. */
  functions: string[];
  codeObjects: string[];
  staticAssets: string[];
  /** An earlier undeploy of this version stopped part-way; this one finishes it. */
  resumed: boolean;
}

export interface RemovalPlan {
  appId: string;
  versions: VersionRemoval[];
  /** Undefined when the policy does not exist (nothing to shrink). */
  policy?: { name: string; arn: string; action: 'update' | 'unchanged'; removedArns: string[]; document: string };
  warnings: string[];
}

export interface RemovalOptions {
  policyName: string;
  dryRun: boolean;
  force: boolean;
  lockHolder: string | AppLockHolder;
}

export interface UndeployResult {
  plan: RemovalPlan;
  dryRun: boolean;
  /** False when there was nothing to remove (already undeployed). */
  changed: boolean;
}

export interface PruneResult extends UndeployResult {
  kept: Array<{ version: string; reason: string }>;
}

function isEmptyRemoval(v: VersionRemoval): boolean {
  return !v.manifestKey && !v.resumed && v.functions.length === 0 && v.codeObjects.length === 0 && v.staticAssets.length === 0;
}

export function hasRemovals(plan: RemovalPlan): boolean {
  return plan.versions.some((v) => !isEmptyRemoval(v)) || plan.policy?.action === 'update';
}

async function readJournal(s3: S3Port, appId: string, version: string): Promise<RemovalJournal | undefined> {
  const obj = await s3.getObjectText(journalKey(appId, version));
  return obj ? (JSON.parse(obj.text) as RemovalJournal) : undefined;
}

/** Reads only: what removing `versions` of `appId` deletes, found afresh each time so that a re-run plans only what is left. */
export async function planRemoval(ctx: LifecycleContext, appId: string, versions: string[], policyName: string): Promise<RemovalPlan> {
  const { ports } = ctx;
  const limit = pLimit(CONCURRENCY);
  const warnings: string[] = [];
  const allNames = new Set<string>();
  const removals = await Promise.all(
    versions.map(async (version): Promise<VersionRemoval> => {
      const key = manifestKey(appId, version);
      const [read, journal] = await Promise.all([readManifest(ports.s3, key), readJournal(ports.s3, appId, version)]);
      const names = new Set(journal?.lambdaNames ?? []);
      if (read?.manifest) for (const f of awsLambdaFunctions(read.manifest)) if (typeof f?.name === 'string') names.add(lambdaName(appId, version, f.name));
      if (read && !read.manifest) warnings.push(`${read.problems.join('; ')}: its functions cannot be named; only its manifest and static assets are removed`);
      for (const n of names) allNames.add(n);
      const [functions, codeObjects, staticAssets] = await Promise.all([
        Promise.all([...names].map((n) => limit(async () => ((await ports.lambda.getFunction(n)) ? n : undefined)))).then((r) => r.filter((n): n is string => n !== undefined)),
        Promise.all([...names].map((n) => limit(() => ports.s3.listKeys(`functions/${n}/`)))).then((r) => r.flat().map((o) => o.key)),
        ports.s3.listKeys(`static/${appId}_${version}_app/`).then((r) => r.map((o) => o.key)),
      ]);
      return { version, ...(read ? { manifestKey: key } : {}), functions: functions.sort(), codeObjects: codeObjects.sort(), staticAssets: staticAssets.sort(), resumed: journal !== undefined };
    }),
  );

  let policy: RemovalPlan['policy'];
  const found = await ports.iam.findPolicy(policyName);
  if (!found) warnings.push(`invoke policy ${policyName} not found: no function ARNs removed from it`);
  else {
    const current = await ports.iam.getPolicyDocument(found.arn, found.defaultVersionId);
    const shrunk = removeLambdaArns(parsePolicy(current).doc, (arn) => allNames.has(lambdaNameOfArn(arn) ?? ''));
    policy = { name: found.name, arn: found.arn, action: shrunk ? 'update' : 'unchanged', removedArns: shrunk?.removed ?? [], document: shrunk?.text ?? current };
  }
  return { appId, versions: removals, ...(policy ? { policy } : {}), warnings };
}

/**
 * Deletes in the order that never leaves a manifest pointing at something missing: journal, manifest, then functions,
 * code objects and static assets, then one new invoke policy version for all the ARNs, then the journals.
 */
async function applyRemoval(ctx: LifecycleContext, plan: RemovalPlan): Promise<void> {
  const { ports, logger } = ctx;
  const limit = pLimit(CONCURRENCY);
  const todo = plan.versions.filter((v) => !isEmptyRemoval(v));
  for (const v of todo) {
    const previous = v.resumed ? await readJournal(ports.s3, plan.appId, v.version) : undefined;
    const names = [...new Set([...(previous?.lambdaNames ?? []), ...(await namesFromManifest(ports.s3, plan.appId, v.version))])];
    const journal: RemovalJournal = { appId: plan.appId, version: v.version, lambdaNames: names, startedAt: previous?.startedAt ?? new Date().toISOString() };
    const body = JSON.stringify(journal);
    await ports.s3.putObject({ key: journalKey(plan.appId, v.version), body, contentLength: Buffer.byteLength(body), contentType: 'application/json' });
    if (v.manifestKey) {
      await ports.s3.deleteObject(v.manifestKey);
      logger.info('deleted manifest', { key: v.manifestKey });
    }
  }
  await Promise.all(todo.flatMap((v) => v.functions.map((n) => limit(async () => {
    await ports.lambda.deleteFunction(n);
    logger.info('deleted function', { name: n });
  }))));
  await deleteKeys(ports.s3, todo.flatMap((v) => v.codeObjects), limit);
  await deleteKeys(ports.s3, todo.flatMap((v) => v.staticAssets), limit);
  if (plan.policy?.action === 'update') {
    await ensurePolicyVersionRoom(ports.iam, plan.policy.arn);
    await ports.iam.createPolicyVersion(plan.policy.arn, plan.policy.document);
    logger.info('removed function ARNs from the invoke policy', { policy: plan.policy.name, removed: plan.policy.removedArns.length });
  }
  for (const v of todo) await ports.s3.deleteObject(journalKey(plan.appId, v.version));
}

async function namesFromManifest(s3: S3Port, appId: string, version: string): Promise<string[]> {
  const read = await readManifest(s3, manifestKey(appId, version));
  return read?.manifest ? awsLambdaFunctions(read.manifest).filter((f) => typeof f?.name === 'string').map((f) => lambdaName(appId, version, f.name)) : [];
}

/** The version Mattermost lists, as recorded, or presumed to be the newest when nothing was recorded (as describeApp says). */
async function listedVersionOf(ctx: LifecycleContext, appId: string): Promise<{ version?: string; source?: 'record' | 'presumed' }> {
  const summary = await ctx.store.getAppSummary(appId);
  if (summary?.listedVersion !== undefined) return { version: summary.listedVersion, source: 'record' };
  const newest = (await ctx.ports.s3.listKeys(`manifests/${appId}_`))
    .map((k) => ({ version: parseManifestKey(k.key), ...(k.lastModified ? { deployedAt: k.lastModified.toISOString() } : {}) }))
    .filter((k) => k.version?.appId === appId)
    .map((k) => ({ ...k, version: k.version!.version }))
    .sort(newestFirst)[0];
  return newest ? { version: newest.version, source: 'presumed' } : {};
}

function refuseListed(appId: string, version: string, source: 'record' | 'presumed' | undefined, what: string): never {
  const why = source === 'presumed' ? ' (presumed: it is the newest version and no deploy of ours recorded which one is listed)' : '';
  throw new ConflictError(
    `${appId} ${version} is the version Mattermost lists${why}; removing it would break the app. Roll back to another version first (appsctl aws rollback ${appId} VERSION), or ${what} --force to remove it anyway`,
  );
}

/**
 * `appsctl aws undeploy APP VERSION`, `DELETE /apps/{appId}/versions/{version}`. Refuses the listed version unless
 * forced. Removing what is already gone is no change, so a re-run after success does nothing and one after a failure
 * finishes the job.
 */
export async function undeploy(ctx: LifecycleContext, appId: string, version: string, opts: RemovalOptions): Promise<UndeployResult> {
  checkAppId(appId);
  checkVersion(version);
  const guard = async (plan: RemovalPlan) => {
    // Once the manifest is gone the server cannot load the version anyway: finishing an interrupted forced undeploy
    // needs no second --force.
    if (opts.force || !plan.versions[0]?.manifestKey) return;
    const listed = await listedVersionOf(ctx, appId);
    if (listed.version === version) refuseListed(appId, version, listed.source, 'pass');
  };
  const first = await planRemoval(ctx, appId, [version], opts.policyName);
  await guard(first);
  if (opts.dryRun || !hasRemovals(first)) return { plan: first, dryRun: opts.dryRun, changed: false };
  return withAppLock(ctx.ports.s3, appId, opts.lockHolder, async () => {
    const plan = await planRemoval(ctx, appId, [version], opts.policyName);
    await guard(plan);
    if (!hasRemovals(plan)) return { plan, dryRun: false, changed: false };
    await applyRemoval(ctx, plan);
    return { plan, dryRun: false, changed: true };
  });
}

/**
 * `appsctl aws prune APP --keep N`: removes every version but the newest N (see `newestFirst`). The listed version is
 * kept too, whatever its age, unless forced. All versions go in one pass, with one new invoke policy version.
 */
export async function prune(ctx: LifecycleContext, appId: string, keep: number, opts: RemovalOptions): Promise<PruneResult> {
  checkAppId(appId);
  if (!Number.isInteger(keep) || keep < 0) throw new BadRequestError(`--keep must be a whole number of versions, got ${keep}`);
  const select = async () => {
    const app = await describeApp(ctx, appId);
    if (!app) throw new NotFoundError(`app ${appId} has no deployed version`);
    const kept: PruneResult['kept'] = app.versions.slice(0, keep).map((v) => ({ version: v.version, reason: `one of the newest ${keep}` }));
    const remove: string[] = [];
    for (const v of app.versions.slice(keep)) {
      if (v.listed && !opts.force) kept.push({ version: v.version, reason: `listed in Mattermost${app.listedVersionSource === 'presumed' ? ' (presumed)' : ''}; pass --force to remove it` });
      else remove.push(v.version);
    }
    return { kept, remove };
  };
  const first = await select();
  const plan = await planRemoval(ctx, appId, first.remove, opts.policyName);
  if (opts.dryRun || !hasRemovals(plan)) return { plan, kept: first.kept, dryRun: opts.dryRun, changed: false };
  return withAppLock(ctx.ports.s3, appId, opts.lockHolder, async () => {
    const again = await select();
    const fresh = await planRemoval(ctx, appId, again.remove, opts.policyName);
    if (!hasRemovals(fresh)) return { plan: fresh, kept: again.kept, dryRun: false, changed: false };
    await applyRemoval(ctx, fresh);
    return { plan: fresh, kept: again.kept, dryRun: false, changed: true };
  });
}

// DeploymentStore (design.md §3–§4) over an S3 whose conditional writes are atomic, as AWS's are: records are created
// once, updates re-read and re-apply on a lost If-Match so no update is lost, and an S3 event identity is claimed once.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeploymentStore, type DeploymentRecord } from '../../src/core/deployments';
import { ConflictError, NotFoundError } from '../../src/core/errors';
import { MemoryS3 } from '../support/memory-s3';

const ID = '0b7c6a52-3f3e-4c1e-9d7e-0a5b1d2c3e4f';
const recordKey = (id: string) => `deployments/${id}.json`;
const claimKeys = (s3: MemoryS3) => s3.keys('deployments/claims/');

const input = (id?: string) => ({
  ...(id ? { id } : {}),
  source: 's3-event' as const,
  bundle: { bucket: 'memory-apps-bucket', key: 'bundles/app.zip', etag: 'abc' },
  options: { install: false, update: true, policy: 'p', executeRole: 'r', envKeys: [] },
});

const step = (name: string) => ({ step: 'static' as const, name, action: 'create', at: '2024-01-01T00:00:00.000Z' });

/**
 * A store as another process would have it: a fresh instance of the module, so the in-process per-key lock is not
 * shared and only S3's conditional writes stand between the writers (as between two Lambda containers).
 */
async function storeInAnotherProcess(s3: MemoryS3): Promise<DeploymentStore> {
  vi.resetModules();
  const mod = await import('../../src/core/deployments');
  return new mod.DeploymentStore(s3);
}

afterEach(() => {
  vi.resetModules();
});

describe('DeploymentStore.create', () => {
  it('writes a pending record with If-None-Match: * that get() reads back', async () => {
    // Prepare
    const s3 = new MemoryS3();
    const store = new DeploymentStore(s3, () => new Date('2024-05-01T10:00:00.000Z'));

    // Act
    const record = await store.create(input(ID));

    // Assess
    expect(record).toMatchObject({ id: ID, state: 'pending', steps: [], warnings: [], createdAt: '2024-05-01T10:00:00.000Z' });
    expect(s3.putsOf(recordKey(ID))).toEqual([{ op: 'put', key: recordKey(ID), ifNoneMatch: '*', outcome: 'written' }]);
    expect(await store.get(ID)).toEqual(record);
  });

  it('refuses a second record with the same id and keeps the first', async () => {
    // Prepare
    const s3 = new MemoryS3();
    const store = new DeploymentStore(s3);
    const first = await store.create({ ...input(ID), source: 'api' });

    // Act
    const second = store.create(input(ID));

    // Assess
    await expect(second).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    expect(await store.get(ID)).toEqual(first);
  });

  it.each([
    { case: 'not a uuid', id: 'nope' },
    { case: 'a path', id: '../claims/x' },
  ])('get() answers undefined for an id that is $case, without reading S3', async ({ id }) => {
    // Prepare
    const s3 = new MemoryS3();

    // Act
    const found = await new DeploymentStore(s3).get(id);

    // Assess
    expect(found).toBeUndefined();
    expect(s3.calls).toEqual([]);
  });
});

describe('DeploymentStore.update', () => {
  it('re-reads and re-applies its change when another writer changed the record between its read and its write', async () => {
    // Prepare
    const s3 = new MemoryS3();
    const store = new DeploymentStore(s3);
    const created = await store.create(input(ID));
    s3.afterNextRead(recordKey(ID), () => {
      s3.putRaw(recordKey(ID), JSON.stringify({ ...created, state: 'running', warnings: ['written by the other writer'] }));
    });
    const seen: DeploymentRecord[] = [];

    // Act
    const updated = await store.update(ID, (r) => {
      seen.push(r);
      return { ...r, steps: [...r.steps, step('icon.png')] };
    });

    // Assess: the change ran again on the other writer's version, and both updates are in the record
    expect(seen.map((r) => r.state)).toEqual(['pending', 'running']);
    expect(updated).toMatchObject({ state: 'running', warnings: ['written by the other writer'], steps: [step('icon.png')] });
    expect(s3.json(recordKey(ID))).toEqual(updated);
    expect(s3.putsOf(recordKey(ID)).map((c) => c.outcome)).toEqual(['written', 'precondition-failed', 'written']);
    expect(s3.putsOf(recordKey(ID)).slice(1).every((c) => c.ifMatch !== undefined)).toBe(true);
  });

  it('loses no update when writers in different processes update the same record at once', async () => {
    // Prepare: five writers, as many as the store's attempts allow when every round has one winner
    const s3 = new MemoryS3();
    await new DeploymentStore(s3).create(input(ID));
    const stores = [];
    for (let i = 0; i < 5; i++) stores.push(await storeInAnotherProcess(s3));

    // Act
    await Promise.all(stores.map((store, i) => store.update(ID, (r) => ({ ...r, steps: [...r.steps, step(`asset-${i}`)] }))));

    // Assess
    const final = s3.json<DeploymentRecord>(recordKey(ID))!;
    expect(final.steps.map((s) => s.name).sort()).toEqual(['asset-0', 'asset-1', 'asset-2', 'asset-3', 'asset-4']);
    expect(s3.putsOf(recordKey(ID)).filter((c) => c.outcome === 'precondition-failed').length).toBeGreaterThan(0);
  });

  it('writes nothing when the change answers undefined', async () => {
    // Prepare
    const s3 = new MemoryS3();
    const store = new DeploymentStore(s3);
    const created = await store.create(input(ID));

    // Act
    const same = await store.update(ID, () => undefined);

    // Assess
    expect(same).toEqual(created);
    expect(s3.putsOf(recordKey(ID))).toHaveLength(1);
  });

  it('answers NotFoundError for a record that does not exist', async () => {
    // Act
    const update = new DeploymentStore(new MemoryS3()).update(ID, (r) => r);

    // Assess
    await expect(update).rejects.toBeInstanceOf(NotFoundError);
  });

  it('gives up with ConflictError, naming the deployment, when every one of its 8 attempts loses', async () => {
    // Prepare
    const s3 = new MemoryS3();
    const store = new DeploymentStore(s3);
    await store.create(input(ID));
    for (let i = 0; i < 8; i++) {
      s3.afterNextRead(recordKey(ID), () => {
        const r = s3.json<DeploymentRecord>(recordKey(ID))!;
        s3.putRaw(recordKey(ID), JSON.stringify({ ...r, warnings: [...r.warnings, `other ${i}`] }));
      });
    }

    // Act
    const update = store.update(ID, (r) => ({ ...r, state: 'failed' }));

    // Assess
    await expect(update).rejects.toBeInstanceOf(ConflictError);
    await expect(update).rejects.toThrow(ID);
    expect(s3.json<DeploymentRecord>(recordKey(ID))!.state).toBe('pending');
  });
});

describe('DeploymentStore.claim', () => {
  it('gives an event identity to its first claimant only, and records which deployment it started', async () => {
    // Prepare
    const s3 = new MemoryS3();
    const store = new DeploymentStore(s3);

    // Act
    const first = await store.claim('bucket/bundles/app.zip#v=1', ID);
    const again = await store.claim('bucket/bundles/app.zip#v=1', '11111111-2222-3333-4444-555555555555');
    const otherVersion = await store.claim('bucket/bundles/app.zip#v=2', '11111111-2222-3333-4444-555555555555');

    // Assess
    expect([first, again, otherVersion]).toEqual([true, false, true]);
    const claims = claimKeys(s3).map((k) => s3.json<{ identity: string; deploymentId: string }>(k)!);
    expect(claims).toHaveLength(2);
    expect(claims).toContainEqual(expect.objectContaining({ identity: 'bucket/bundles/app.zip#v=1', deploymentId: ID }));
  });

  it.each([
    { case: 'in one process', separateProcesses: false },
    { case: 'in ten processes (no shared in-process lock)', separateProcesses: true },
  ])('gives exactly one of ten concurrent claims of the same identity $case', async ({ separateProcesses }) => {
    // Prepare
    const s3 = new MemoryS3();
    const shared = new DeploymentStore(s3);
    const stores: DeploymentStore[] = [];
    for (let i = 0; i < 10; i++) stores.push(separateProcesses ? await storeInAnotherProcess(s3) : shared);
    if (separateProcesses) expect(new Set(stores.map((s) => s.constructor)).size).toBe(10);

    // Act
    const won = await Promise.all(stores.map((store, i) => store.claim('bucket/bundles/app.zip#etag=e#seq=1', `00000000-0000-0000-0000-00000000000${i}`)));

    // Assess
    expect(won.filter(Boolean)).toHaveLength(1);
    expect(claimKeys(s3)).toHaveLength(1);
    const winner = won.indexOf(true);
    expect(s3.json<{ deploymentId: string }>(claimKeys(s3)[0]!)!.deploymentId).toBe(`00000000-0000-0000-0000-00000000000${winner}`);
  });
});

describe('DeploymentStore app summaries', () => {
  it('keeps both of two first summaries written at once by different processes', async () => {
    // Prepare
    const s3 = new MemoryS3();
    const a = await storeInAnotherProcess(s3);
    const b = await storeInAnotherProcess(s3);
    const deployment = (id: string) => ({ id, state: 'succeeded' as const, version: 'v1', at: '2024-01-01T00:00:00.000Z' });

    // Act
    await Promise.all([
      a.updateAppSummary('my-app', (s) => ({ appId: 'my-app', lastDeployment: deployment(ID), installed: s?.installed ?? false, listedVersion: 'v1' })),
      b.updateAppSummary('my-app', (s) => ({ appId: 'my-app', lastDeployment: s?.lastDeployment ?? deployment(ID), installed: true, ...(s?.listedVersion ? { listedVersion: s.listedVersion } : {}) })),
    ]);

    // Assess: whichever ran second saw the first's write
    expect(await new DeploymentStore(s3).getAppSummary('my-app')).toEqual({ appId: 'my-app', lastDeployment: deployment(ID), installed: true, listedVersion: 'v1' });
  });
});

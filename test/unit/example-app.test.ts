import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { withAppBundle } from '../../src/core/provision';

/**
 * examples/hello: the app `appsctl aws test lambda|s3` expects (appsctl.md §3), as a Node.js Lambda, and its bundle.
 * The example is plain .mjs (it is what users copy), so it is imported by URL and typed here.
 */
interface LambdaResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}
type Handler = (event: unknown) => Promise<LambdaResponse>;
interface BuildBundle {
  buildBundle(outDir: string): Promise<{ path: string; size: number }>;
}

const HELLO = new URL('../../examples/hello/', import.meta.url);
const importHandler = async (url: string) => ((await import(url)) as { handler: Handler }).handler;
const { buildBundle } = (await import(new URL('build-bundle.mjs', HELLO).href)) as BuildBundle;

/** What the apps plugin sends to an AWS Lambda app (appsctl.md §6, HTTPCallRequest). */
function callFromServer(path: string): unknown {
  const callRequest = { path, expand: {}, context: { app_id: 'hello-serverless', acting_user: { id: 'u1' } }, values: {} };
  return { path, httpMethod: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(callRequest) };
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

async function unzipToMap(zip: Buffer): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const zipfile = await yauzl.fromBufferPromise(zip, { lazyEntries: true });
  for await (const entry of zipfile.eachEntry()) files.set(entry.fileName, await readAll(await zipfile.openReadStreamPromise(entry)));
  return files;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'example-app-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('examples/hello handler', () => {
  let handler: Handler;
  beforeAll(async () => {
    handler = await importHandler(new URL('src/index.mjs', HELLO).href);
  });

  it('answers /ping with exactly the CallResponse `appsctl aws test lambda` compares against', async () => {
    // Prepare
    const event = callFromServer('/ping');
    // Act
    const res = await handler(event);
    // Assess
    expect(res.statusCode).toBe(200);
    expect(res.headers).toEqual({ 'Content-Type': 'application/json' });
    expect(JSON.parse(res.body)).toStrictEqual({ type: 'ok', text: 'PONG' });
  });

  it('binds a /hello command that submits /send', async () => {
    // Prepare
    const event = callFromServer('/bindings');
    // Act
    const res = await handler(event);
    // Assess
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({
      type: 'ok',
      data: [{ location: '/command', bindings: [{ location: 'hello', label: 'hello', submit: { path: '/send' } }] }],
    });
  });

  it('says hello on /send', async () => {
    // Prepare
    const event = callFromServer('/send');
    // Act
    const res = await handler(event);
    // Assess
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body)).toStrictEqual({ type: 'ok', text: 'Hello from AWS Lambda!' });
  });

  it('answers an unknown call with 404 and an error CallResponse', async () => {
    // Prepare
    const event = callFromServer('/nope');
    // Act
    const res = await handler(event);
    // Assess
    expect(res.statusCode).toBe(404);
    expect(JSON.parse(res.body)).toMatchObject({ type: 'error', text: expect.stringContaining('/nope') });
  });

  it('refuses a body that is not a CallRequest with 400', async () => {
    // Prepare
    const event = { path: '/ping', httpMethod: 'POST', headers: {}, body: '{not json' };
    // Act
    const res = await handler(event);
    // Assess
    expect(res.statusCode).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ type: 'error' });
  });
});

describe('examples/hello bundle', () => {
  it('is byte for byte the same when built twice', async () => {
    // Prepare
    const [first, second] = [join(dir, 'first'), join(dir, 'second')];
    // Act
    const a = await buildBundle(first);
    const b = await buildBundle(second);
    // Assess
    expect(a.path).toBe(join(first, 'bundle-aws.zip'));
    expect(a.size).toBe(b.size);
    expect((await readFile(a.path)).equals(await readFile(b.path))).toBe(true);
  });

  it('is a deployable bundle under the names the server and `appsctl aws test` compute', async () => {
    // Prepare
    const { path } = await buildBundle(join(dir, 'deployable'));
    // Act
    const seen = await withAppBundle(path, { strictness: 'deployable' }, async (app, open) => ({
      app,
      testTxt: (await readAll(await open('static/test.txt'))).toString('utf8'),
      functionZip: await readAll(await open(app.functions[0]!.file.entryName)),
    }));
    // Assess
    expect(seen.app.manifest).toMatchObject({ app_id: 'hello-serverless', version: 'v1.2.0', display_name: 'Hello Serverless' });
    expect(seen.app.deployData).toEqual({
      static_files: { 'icon.png': { key: 'static/hello-serverless_v1.2.0_app/icon.png' }, 'test.txt': { key: 'static/hello-serverless_v1.2.0_app/test.txt' } },
      lambda_functions: { 'hello-serverless': { name: 'hello-serverless_v1-2-0_hello-serverless', handler: 'index.handler', runtime: 'nodejs22.x' } },
      manifest_key: 'manifests/hello-serverless_v1.2.0.json',
    });
    expect(seen.app.functions.map((f) => f.lambdaName)).toEqual(['hello-serverless_v1-2-0_hello-serverless']);
    expect(seen.app.warnings).toEqual([]);
    expect(seen.testTxt).toBe('static pong');
    expect([...(await unzipToMap(seen.functionZip)).keys()]).toEqual(['index.mjs']);
  });

  it('ships a function zip whose index.handler answers /ping as Lambda would run it', async () => {
    // Prepare
    const { path } = await buildBundle(join(dir, 'runnable'));
    const functionZip = await withAppBundle(path, { strictness: 'deployable' }, async (_app, open) => readAll(await open('hello-serverless.zip')));
    const code = join(dir, 'runnable', 'index.mjs');
    await writeFile(code, (await unzipToMap(functionZip)).get('index.mjs')!);
    // Act
    const res = await (await importHandler(pathToFileURL(code).href))(callFromServer('/ping'));
    // Assess
    expect(JSON.parse(res.body)).toStrictEqual({ type: 'ok', text: 'PONG' });
  });
});

// Bundles the CLI and every Lambda handler with esbuild. Handlers are what serverless.yml packages (one file each,
// so each cold start loads only its own code); the CLI bundle is what bin/appsctl.mjs runs.
import { build } from 'esbuild';
import { readdirSync, existsSync, readFileSync, writeFileSync } from 'node:fs';

const handlers = existsSync('src/handlers')
  ? readdirSync('src/handlers').filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
  : [];

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: false,
  legalComments: 'none',
  logLevel: 'warning',
  // ESM bundles still meet CommonJS deps that call require(); give them one.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
};

await build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/appsctl.mjs' });
// The local stack (`npm start`): a dev tool, so it may bundle the fakes from test/support.
await build({ ...common, entryPoints: ['scripts/local-stack.ts'], outfile: 'dist/local-stack.mjs' });

/**
 * zod 4's `import { z } from 'zod'` hands out one namespace object holding all of zod (every locale, JSON Schema
 * conversion…), which esbuild cannot tree-shake; `import * as z from 'zod'` (zod 4's documented form) lets it keep only
 * what is used. Same zod, same behaviour: ~360 KB less per handler. Rewritten at build time so that src/ keeps its
 * imports; if src/ switches to `import * as z`, this does nothing.
 */
const zodNamespaceImport = {
  name: 'zod-namespace-import',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      return { contents: text.replace(/^import \{ z \} from 'zod';$/gm, "import * as z from 'zod';"), loader: 'ts' };
    });
  },
};

/**
 * The AWS SDK's default credential chain (@aws-sdk/credential-provider-node) tries the environment first, then SSO,
 * shared ini files (~/.aws), credential_process, web identity token files and finally the container/instance
 * endpoints. Lambda hands every function its role's credentials in the environment (AWS_ACCESS_KEY_ID, …), so in the
 * handlers the chain ends at its first link (serverless.yml sets no AWS_PROFILE, which would skip it); the four
 * providers that read ~/.aws, run a command or exchange a token file are never reached there, yet they and the STS,
 * SSO, SSO-OIDC and sign-in clients they load (~85 KB) were compiled at every cold start. In the handler bundles they
 * are links that pass to the next one, as an unconfigured provider does. The CLI and the local stack keep the whole
 * chain.
 */
const lambdaCredentialChain = {
  name: 'lambda-credential-chain',
  setup(b) {
    const providers = { 'credential-provider-sso': 'fromSSO', 'credential-provider-ini': 'fromIni', 'credential-provider-process': 'fromProcess', 'credential-provider-web-identity': 'fromTokenFile' };
    b.onResolve({ filter: /^@aws-sdk\/credential-provider-(sso|ini|process|web-identity)$/ }, (args) =>
      /[\\/]@aws-sdk[\\/]credential-provider-node[\\/]/.test(args.importer) ? { path: args.path, namespace: 'lambda-credential-chain' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lambda-credential-chain' }, (args) => {
      const name = providers[args.path.slice('@aws-sdk/'.length)];
      return {
        resolveDir: process.cwd(),
        loader: 'js',
        contents: `import { CredentialsProviderError } from '@smithy/core/config';
export const ${name} = (init = {}) => async () => {
  throw new CredentialsProviderError('${name} is not bundled into the Lambda handlers, whose credentials come from the environment', { logger: init.logger, tryNextLink: true });
};`,
      };
    });
  },
};

/**
 * A few AWS SDK modules load others with `await import('@aws-sdk/…')` (the container/instance credential providers, the
 * event stream codec). In a one-file bundle that saves nothing, since the code is in the file either way, but esbuild
 * then wraps the imported module and everything it imports (~180 modules of @smithy/core) in lazy initialisers,
 * which V8 parses twice at every cold start (once with the file, again when each is called). Static imports of the
 * same modules keep them hoisted: the SDK calls the same code, only the top level of those (side-effect-free) modules
 * runs at load instead of on first use.
 */
const staticSdkImports = {
  name: 'static-sdk-imports',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]@(aws-sdk|smithy)[\\/].*[\\/]dist-es[\\/].*\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('await import(')) return undefined;
      const imports = [];
      const contents = text.replace(/await import\("(@(?:aws-sdk|smithy)\/[^"]+)"\)/g, (_, specifier) => {
        const id = `__static_import_${imports.length}`;
        imports.push(`import * as ${id} from "${specifier}";`);
        return id;
      });
      return imports.length === 0 ? undefined : { contents: `${imports.join('\n')}\n${contents}`, loader: 'js' };
    });
  },
};

/**
 * Our own modules (src/) only declare: no module of src/ runs anything on import that another module relies on (no
 * bare `import './x'`; the top-level calls there build values, such as zod schemas). Saying so to esbuild, as a
 * package's `"sideEffects": false` would, lets it leave out a module none of whose exports a handler uses, and with
 * it what that module alone imports: without it, esbuild keeps such a module's top-level calls and CommonJS requires
 * (the bundle reader's zod schemas and yauzl, reached through the lifecycle's and the runtime's imports of the deploy
 * path) in handlers that never read a bundle. A module something is used from is bundled as before.
 */
const srcWithoutSideEffects = {
  name: 'src-without-side-effects',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, async (args) => {
      if (args.pluginData === 'src-without-side-effects' || !/[\\/]src[\\/]/.test(args.importer) || args.kind !== 'import-statement') return undefined;
      const r = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'src-without-side-effects' });
      if (r.errors.length > 0 || !/[\\/]src[\\/].*\.ts$/.test(r.path)) return undefined;
      return { path: r.path, namespace: r.namespace, sideEffects: false };
    });
  },
};

/**
 * Each AWS SDK client describes every shape of its service in one module (dist-es/schemas/schemas_0.js), as arrays that
 * reference each other, e.g. `export var GetObjectRequest$ = [3, n0, _GOR, 0, [...], [[0, { [_hH]: _IM_ }], ...]]`,
 * where `_hH` is a string constant of that module. esbuild keeps any declaration whose value has a computed key
 * (`{ [k]: v }` may call k's toString), so every shape of the service was bundled and built at each cold start (all
 * ~580 of S3, all of Lambda's and SSM's), not only those of the commands a handler sends. Writing these keys as the
 * string literals they hold (`{ ["httpHeader"]: ... }`, the same object) lets esbuild drop the shapes that nothing
 * references; the ones a command reaches are kept as they were. Only keys that name a `const` string of the same module
 * are rewritten.
 */
const sdkSchemaKeys = {
  name: 'sdk-schema-keys',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]@aws-sdk[\\/]client-[^\\/]+[\\/]dist-es[\\/]schemas[\\/][^\\/]+\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      const strings = new Map();
      for (const m of text.matchAll(/^const (_[\w$]+) = ("(?:[^"\\\n]|\\.)*");$/gm)) strings.set(m[1], m[2]);
      const contents = text.replace(/([{,]\s*)\[(_[\w$]+)\]:/g, (whole, before, name) => (strings.has(name) ? `${before}[${strings.get(name)}]:` : whole));
      return { contents, loader: 'js' };
    });
  },
};

if (handlers.length > 0) {
  const handlerBuild = await build({
    ...common,
    entryPoints: handlers.map((f) => `src/handlers/${f}`),
    outdir: 'dist/handlers',
    outExtension: { '.js': '.mjs' },
    // BUILD_NO_MINIFY=1 keeps them readable (esbuild's per-module comments), to profile a cold start by module.
    minify: process.env.BUILD_NO_MINIFY !== '1',
    // The Lambda nodejs runtimes ship AWS SDK v3, but pinning our own copy keeps behaviour identical to the tests.
    external: [],
    // The ES module builds of the AWS SDK (dist-es) rather than esbuild's default for node, CommonJS (dist-cjs): the
    // same SDK code, but ESM lets esbuild drop the commands and models a handler never uses (~440 KB per handler).
    // Packages with an `exports` map resolve as before. (What AWS CDK's NodejsFunction does for ESM output too.)
    mainFields: ['module', 'main'],
    plugins: [srcWithoutSideEffects, zodNamespaceImport, lambdaCredentialChain, sdkSchemaKeys, staticSdkImports],
    metafile: true,
  });
  // What each handler is made of (`node scripts/analyze-handlers.mjs` summarises it): kept for the benchmark and reviews.
  writeFileSync('dist/handlers-meta.json', JSON.stringify(handlerBuild.metafile));
}

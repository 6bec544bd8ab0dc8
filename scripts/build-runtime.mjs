#!/usr/bin/env node
/**
 * `npm run build:runtime`: the tenant runtime as one self-contained file, for its image
 * (infra/docker/tenant-runtime.Dockerfile). esbuild follows tenant-runtime/main.ts's imports,
 * from our sources and node_modules alike, and bundles exactly that closure: the image needs no
 * node_modules, so it carries no NestJS, TypeORM or cdktf (which `npm ci --omit=dev` over the
 * whole package.json did). A bundler resolves packages the way Node does (exports maps, nested
 * versions, JSON, optional requires); a hand-written copier of the import closure would have to.
 *
 *   node scripts/build-runtime.mjs [--outdir dist/runtime]
 *
 * Writes <outdir>/main.js (+ main.js.map) and <outdir>/meta.json (esbuild's metafile: every
 * bundled input; test/runtime-bundle.test.ts reads it). Fails, writing nothing usable, when the
 * closure reaches a package the runtime must not carry, or a `lazy('<module>')` call (our CommonJS
 * lazy-load helper) the bundler could not follow.
 *
 * Requires left in the output are Node built-ins and the optional `pg-native` and
 * `@aws-sdk/signature-v4-crt`, which their packages load inside try/catch (not installed: pg's
 * JavaScript client and SigV4 are used).
 */
import { build } from 'esbuild';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Packages the runtime must never carry (issue #16): the control plane's framework, ORM and IaC. */
export const FORBIDDEN_PACKAGES = /^(@nestjs\/.+|typeorm|cdktf|@cdktf\/.+)$/;
/** Optional requires their packages guard with try/catch; left external, not installed in the image. */
export const OPTIONAL_EXTERNALS = ['pg-native', '@aws-sdk/signature-v4-crt'];

/**
 * Our lazy-load helper, `lazy<typeof import('x')>('x')` (provisioning/secrets/create-secret-store.ts
 * loads the AWS secret store that way), is a `require(id)` on a variable a bundler cannot follow:
 * rewritten to the literal `require('x')` it stands for, which esbuild bundles and still evaluates
 * only when the call runs.
 */
const LAZY_CALL = /\blazy<typeof import\((['"])([^'"]+)\1\)>\(\s*(['"])\2\3\s*\)/g;
const UNFOLLOWED_LAZY = /\blazy(?:<[^>]*>)?\(\s*['"]/;

const lazyRequires = {
  name: 'lazy-requires',
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async (args) => {
      if (args.path.includes('/node_modules/')) return undefined;
      const source = await readFile(args.path, 'utf8');
      if (!source.includes('lazy')) return undefined;
      const contents = source.replace(LAZY_CALL, (_m, _q, id) => `require(${JSON.stringify(id)})`);
      if (UNFOLLOWED_LAZY.test(contents)) {
        return { errors: [{ text: `${relative(ROOT, args.path)}: a lazy(...) call not of the form lazy<typeof import('x')>('x'); the bundle could not load its module` }] };
      }
      return { contents, loader: 'ts' };
    });
  },
};

/** The bundled packages (node_modules/<name>/… inputs), sorted. */
export function bundledPackages(meta) {
  const names = new Set();
  for (const input of Object.keys(meta.inputs)) {
    const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) names.add(m[1]);
  }
  return [...names].sort();
}

export async function buildRuntime({ outdir = join(ROOT, 'dist', 'runtime') } = {}) {
  await rm(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [join(ROOT, 'tenant-runtime', 'main.ts')],
    outfile: join(outdir, 'main.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: true,
    metafile: true,
    legalComments: 'linked',
    external: OPTIONAL_EXTERNALS,
    plugins: [lazyRequires],
    logLevel: 'warning',
  });
  const forbidden = bundledPackages(result.metafile).filter((p) => FORBIDDEN_PACKAGES.test(p));
  if (forbidden.length) {
    await rm(outdir, { recursive: true, force: true });
    throw new Error(`the tenant runtime's import closure reaches ${forbidden.join(', ')}: the runtime image must not carry them`);
  }
  await writeFile(join(outdir, 'meta.json'), JSON.stringify(result.metafile));
  return { outfile: join(outdir, 'main.js'), meta: result.metafile };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--outdir');
  const outdir = i > 0 && process.argv[i + 1] ? resolve(process.argv[i + 1]) : undefined;
  buildRuntime({ outdir }).then(
    ({ outfile, meta }) => process.stdout.write(`${relative(process.cwd(), outfile)}: ${bundledPackages(meta).length} packages bundled\n`),
    (err) => {
      process.stderr.write(`build:runtime failed: ${err.message}\n`);
      process.exit(1);
    },
  );
}

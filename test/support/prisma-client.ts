import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** A Prisma client generated for one test file into a temp folder (never into the repo). */
export interface GeneratedPrismaClient {
  dir: string;
  /** The generated `client.ts` module (Jest's swc transform compiles it); typed loosely: it does not exist when tsc runs. */
  load<T = unknown>(): T;
  remove(): void;
}

/**
 * Runs the project's `prisma generate` on a copy of `schemaFile` (its generator's `output` is
 * relative, so the client lands in the temp folder too). The temp folder links to the project's
 * node_modules so the generated code finds `@prisma/client`'s runtime.
 *
 * Offline: the Prisma 7 CLI insists that its Rust schema engine exists before `generate`, and would
 * download it (there is no npm package with it; `@prisma/engines`' postinstall is denied in
 * package.json's allowScripts). `generate` itself never runs it (the schema is read by the CLI's
 * Wasm module, the client uses the Wasm query compiler), so PRISMA_SCHEMA_ENGINE_BINARY names a stub
 * that fails loudly if it ever is run.
 */
export async function generatePrismaClient(schemaFile: string, output = 'generated'): Promise<GeneratedPrismaClient> {
  const root = resolve(__dirname, '..', '..');
  const dir = mkdtempSync(join(tmpdir(), 'silo-prisma-'));
  try {
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
    copyFileSync(schemaFile, join(dir, 'schema.prisma'));
    const stub = join(dir, 'schema-engine-stub');
    writeFileSync(stub, '#!/bin/sh\necho "the Prisma schema engine is not installed (test/support/prisma-client.ts)" >&2\nexit 1\n', { mode: 0o755 });
    const cli = require.resolve('prisma/build/index.js', { paths: [root] });
    await new Promise<void>((ok, fail) => {
      execFile(process.execPath, [cli, 'generate', '--schema', join(dir, 'schema.prisma')], {
        cwd: dir,
        timeout: 60_000,
        env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: stub, CHECKPOINT_DISABLE: '1', PRISMA_HIDE_UPDATE_MESSAGE: '1', NO_COLOR: '1' },
      }, (err, stdout, stderr) => (err ? fail(new Error(`prisma generate: ${err.message}\n${stdout}${stderr}`)) : ok()));
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    load: <T>() => require(join(dir, output, 'client.ts')) as T,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

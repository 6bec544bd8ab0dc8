import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import * as ts from 'typescript';

/**
 * What the control-plane image compiles (tsconfig.image.json, `npm run build:image`): its files and
 * every file they import, as tsc would pull them into the program (type-only imports included: tsc
 * emits those files too). Nothing under test/ (the image's build context has no test/ folder:
 * .dockerignore) and no spec.
 */
const ROOT = resolve(__dirname, '..');
const SPEC = /\b(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|\bimport\s*['"]([^'"]+)['"]|\brequire\(\s*['"]([^'"]+)['"]\s*\)|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

function compiled(configFile: string): string[] {
  const read = ts.readConfigFile(join(ROOT, configFile), (p) => ts.sys.readFile(p));
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, '\n'));
  const roots = ts.parseJsonConfigFileContent(read.config, ts.sys, ROOT, undefined, join(ROOT, configFile)).fileNames;
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(SPEC)) {
      const spec = (m[1] ?? m[2] ?? m[3] ?? m[4]) as string;
      if (!spec.startsWith('.')) continue;
      const base = resolve(dirname(file), spec);
      const target = [`${base}.ts`, join(base, 'index.ts')].find((f) => existsSync(f));
      if (target) visit(target);
    }
  };
  roots.forEach((f) => visit(resolve(f)));
  return [...seen].map((f) => relative(ROOT, f)).sort();
}

describe('control-plane image build', () => {
  it('compiles the deployables and nothing from test/ or a spec', () => {
    const files = compiled('tsconfig.image.json');
    expect(files).toEqual(expect.arrayContaining(['control-plane/main.ts', 'cli/main.ts', 'scripts/worker.ts', 'tenant-runtime/main.ts']));
    expect(files.filter((f) => f.startsWith('test/') || f.endsWith('.spec.ts') || f === 'infra/testing.ts')).toEqual([]);
    expect(files.filter((f) => f === 'scripts/send-webhook.ts' || f.startsWith('scripts/bench/'))).toEqual([]);
  });

  it('the walk sees what tsc sees: the full build does reach test/support through the dev tools', () => {
    // `npm run build` keeps node dist/scripts/send-webhook.js working, so it compiles the samples it imports.
    expect(compiled('tsconfig.build.json').filter((f) => f.startsWith('test/'))).toEqual(['test/support/stripe-fixtures.ts']);
  });
});

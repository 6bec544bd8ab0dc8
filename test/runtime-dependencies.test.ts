import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * The tenant runtime's import closure, from its sources (static imports and lazy `require`s):
 * it ships without the control plane's framework (issue #16). Type-only imports are skipped: they
 * vanish at compile time.
 */
const ROOT = resolve(__dirname, '..');
const SPEC = /^\s*(?:import|export)\s+(?!type\b)(?:[^'"]*?from\s+)?['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

function closure(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file)) return;
    files.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(SPEC)) {
      const spec = (m[1] ?? m[2] ?? m[3]) as string;
      if (!spec.startsWith('.')) {
        packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string));
        continue;
      }
      const base = resolve(dirname(file), spec);
      const target = [`${base}.ts`, join(base, 'index.ts')].find((f) => existsSync(f));
      if (target) visit(target);
    }
  };
  visit(entry);
  return { files, packages };
}

describe('tenant runtime dependencies', () => {
  it('imports no control-plane internals, local provisioning driver, NestJS, TypeORM or cdktf', () => {
    const { files, packages } = closure(join(ROOT, 'tenant-runtime', 'main.ts'));
    const rel = [...files].map((f) => relative(ROOT, f));
    expect(rel).toContain('tenant-runtime/server.ts'); // the walk really followed the imports
    expect(rel.filter((f) => f.startsWith('control-plane/'))).toEqual([]);
    expect(rel.filter((f) => /local-provisioning\.driver|bootstrap\.ts$/.test(f))).toEqual([]);
    expect([...packages].filter((p) => /^(@nestjs\/|typeorm$|cdktf$|@cdktf\/)/.test(p))).toEqual([]);
  });
});

/**
 * Test helper for infra specs: registers cdktf's Jest matchers and synthesizes a stack once into
 * both the JSON string the matchers take and a parsed document for direct assertions.
 * Imported only by `*.spec.ts` files.
 */
import 'cdktf/lib/testing/adapters/jest';
import { rmSync } from 'node:fs';
import { App, TerraformStack, Testing } from 'cdktf';

Testing.setupJest();

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** `Testing.app()`, whose temporary outdir (one per app, left behind otherwise) is removed after the file's tests. */
export function testApp(): App {
  const app = Testing.app();
  outdirs.push(app.outdir);
  return app;
}

type Block = Record<string, unknown>;

export interface SynthesizedStack {
  /** What `toHaveResourceWithProperties` and friends expect. */
  json: string;
  doc: { resource?: Record<string, Record<string, Block>>; data?: Record<string, Record<string, Block>>; output?: Record<string, Block>; locals?: Record<string, unknown>; terraform?: Block };
  /** Every resource of `type`, keyed by logical id. */
  resources(type: string): Record<string, Block>;
  /** The single resource of `type` whose logical id starts with `prefix`; throws if there is not exactly one. */
  resource(type: string, prefix: string): Block;
  /** `${type}.${id}` reference of the resource above, as used in interpolations. */
  ref(type: string, prefix: string): string;
}

export function synthesize(build: (app: ReturnType<typeof Testing.app>) => TerraformStack): SynthesizedStack {
  const stack = build(testApp());
  const json = Testing.synth(stack);
  const doc = JSON.parse(json) as SynthesizedStack['doc'];
  const resources = (type: string) => doc.resource?.[type] ?? {};
  const find = (type: string, prefix: string): [string, Block] => {
    const hits = Object.entries(resources(type)).filter(([id]) => id.startsWith(prefix));
    if (hits.length !== 1) throw new Error(`expected one ${type} named ${prefix}*, found ${hits.map(([id]) => id).join(', ') || 'none'}`);
    return hits[0];
  };
  return {
    json,
    doc,
    resources,
    resource: (type, prefix) => find(type, prefix)[1],
    ref: (type, prefix) => `${type}.${find(type, prefix)[0]}`,
  };
}

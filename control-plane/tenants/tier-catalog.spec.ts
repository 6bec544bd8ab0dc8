import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger } from '../../common/logger';
import { DEFAULT_TEMP_FILE_LIMIT_MB, DEFAULT_TIERS } from '../../provisioning/tiers';
import { TierFileError } from '../../provisioning/tier-catalogue';
import { RuntimeTiers } from '../../tenant-runtime/tiers';
import { TierCatalog } from './tier-catalog';

describe('TierCatalog: tempFileLimitMb', () => {
  const dir = mkdtempSync(join(tmpdir(), 'silo-tiers-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const logger = createLogger({ name: 'tier-catalog-spec', level: 'silent' });
  const { name: _n, tempFileLimitMb: _t, ...base } = DEFAULT_TIERS.starter;

  function catalog(tiers: Record<string, unknown>): TierCatalog {
    const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify({ tiers }));
    return new TierCatalog({ TIERS_FILE: file, DEFAULT_TIER: 'starter' }, logger);
  }

  it('gives every built-in tier a temp file limit', () => {
    const c = new TierCatalog({ TIERS_FILE: undefined, DEFAULT_TIER: 'starter' }, logger);
    for (const name of c.names()) expect(c.settings(name).tempFileLimitMb).toBeGreaterThan(0);
  });

  it('defaults it for a TIERS_FILE tier written before the field existed, and keeps a given one', () => {
    const c = catalog({ old: base, capped: { ...base, tempFileLimitMb: 64 } });
    expect(c.settings('old').tempFileLimitMb).toBe(DEFAULT_TEMP_FILE_LIMIT_MB);
    expect(c.settings('capped').tempFileLimitMb).toBe(64);
  });

  it.each([0, -1, 1.5, 2_097_152, '1GB'])('refuses tempFileLimitMb %p (no "unlimited", within the server\'s int of kB)', (value) => {
    expect(() => catalog({ bad: { ...base, tempFileLimitMb: value } })).toThrow(/tempFileLimitMb/);
  });

  it('reads the example plans file', () => {
    const c = new TierCatalog({ TIERS_FILE: resolve(__dirname, '../billing/plans.example.json'), DEFAULT_TIER: 'starter' }, logger);
    expect(c.settings('team').tempFileLimitMb).toBe(2048);
  });
});

describe('one tier catalogue for the control plane and the runtime (issue #16 item 6)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'silo-tiers-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const logger = createLogger({ name: 'tier-catalog-spec', level: 'silent' });
  const write = (doc: unknown) => {
    const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(doc));
    return file;
  };

  it('accepts a file overriding one field of a built-in tier in both, with the same result', () => {
    const file = write({ tiers: { starter: { connectionLimit: 3 } } });
    const cp = new TierCatalog({ TIERS_FILE: file, DEFAULT_TIER: 'starter' }, logger).settings('starter');
    const rt = new RuntimeTiers(file, 'starter').get('starter');
    expect(cp).toEqual({ ...DEFAULT_TIERS.starter, connectionLimit: 3 });
    expect(rt).toMatchObject({ name: 'starter', connectionLimit: 3, statementTimeoutMs: cp.statementTimeoutMs, rateLimitPerSecond: cp.rateLimitPerSecond, rateLimitBurst: cp.rateLimitBurst });
  });

  it('refuses the same bad files in both, with one readable line per problem naming the tier and field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ tiers: { gold: { connectionLimit: 5 } } }, /tiers\.gold\.minAcu: .*; .*tiers\.gold\.maxAcu/],
      [{ tiers: { starter: { conectionLimit: 5 } } }, /tiers\.starter: .*conectionLimit/],
      [{ tiers: { starter: { connectionLimit: 0 } } }, /tiers\.starter\.connectionLimit: /],
      [{ tiers: { starter: { minAcu: 4, maxAcu: 2 } } }, /tiers\.starter: minAcu 4 is above maxAcu 2/],
      [{ plans: { price_1: 'platinum' } }, /plans\.price_1: unknown tier platinum \(known: starter, pro, enterprise\)/],
    ];
    for (const [doc, message] of cases) {
      const file = write(doc);
      for (const load of [() => new TierCatalog({ TIERS_FILE: file, DEFAULT_TIER: 'starter' }, logger), () => new RuntimeTiers(file, 'starter')]) {
        let error: Error | null = null;
        try {
          load();
        } catch (err) {
          error = err as Error;
        }
        expect(error).toBeInstanceOf(TierFileError);
        expect(error?.message).toMatch(message);
        expect(error?.message).toMatch(new RegExp(`^TIERS_FILE ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
        expect(error?.message).not.toMatch(/\n|ZodError|"code":/);
      }
    }
  });

  it('names a file that is not JSON', () => {
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ tiers: ');
    expect(() => new RuntimeTiers(file, 'starter')).toThrow(/^TIERS_FILE .*broken\.json: /);
  });
});

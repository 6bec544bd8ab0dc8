import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLogger } from '../../common/logger';
import { DEFAULT_TEMP_FILE_LIMIT_MB, DEFAULT_TIERS } from '../../provisioning/tiers';
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

import { planDown, planUp } from './migration-plan';
import { parseMigration, TenantMigration } from './tenant-migration';

const mig = (v: string, up = `SELECT ${v};`, down: string | null = `SELECT -${v};`): TenantMigration =>
  parseMigration(`${v}_m${v}.sql`, `-- migrate:up\n${up}\n-- migrate:down\n${down ?? ''}\n`);
const entry = (m: TenantMigration) => ({ version: m.version, name: m.name, checksum: m.checksum });

describe('migration plans', () => {
  const files = [mig('0001'), mig('0002'), mig('0003')];

  it('plans pending migrations up to the target', () => {
    expect(planUp(files, [entry(files[0])], '0003').pending.map((m) => m.version)).toEqual(['0002', '0003']);
    expect(planUp(files, [entry(files[0])], '0002').pending.map((m) => m.version)).toEqual(['0002']);
    expect(planUp(files, files.map(entry), '0002')).toMatchObject({ current: '0003', pending: [], problems: [] });
  });

  it('reports drift when an applied file changed, and a ledger ahead of the files', () => {
    const edited = [files[0], mig('0002', 'SELECT 22;'), files[2]];
    expect(planUp(edited, files.slice(0, 2).map(entry), '0003').problems).toEqual([expect.stringMatching(/^0002_m0002 changed after it was applied/)]);
    expect(planUp(files.slice(0, 1), files.slice(0, 2).map(entry), '0001').problems).toEqual([expect.stringMatching(/0002_m0002 is applied but has no file/)]);
  });

  it('refuses a migration numbered below one already applied', () => {
    const plan = planUp(files, [entry(files[0]), entry(files[2])], '0003');
    expect(plan.problems).toEqual([expect.stringMatching(/0002_m0002 is not applied but the later 0003 is/)]);
  });

  it('plans down newest first and refuses migrations without a down section', () => {
    expect(planDown(files, files.map(entry), '0001').revert.map((m) => m.version)).toEqual(['0003', '0002']);
    expect(planDown(files, files.map(entry), null).revert).toHaveLength(3);
    const irreversible = [files[0], mig('0002', 'SELECT 2;', null)];
    expect(planDown(irreversible, irreversible.map(entry), '0001').problems).toEqual([expect.stringMatching(/no down section/)]);
  });
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMigrationFile, defaultMigrationsDir, ledgerDigest, loadMigrations, parseMigration, resolveTarget } from './tenant-migration';

const file = (up: string, down = '', header = '') => `${header}-- migrate:up\n${up}\n\n-- migrate:down\n${down}\n`;

describe('tenant migration files', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'silo-mig-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('parses up, down, the no-transaction marker and a checksum of the up section', () => {
    const m = parseMigration('0002_add_orders.sql', file('CREATE TABLE orders (id int);', 'DROP TABLE orders;', '-- silo:no-transaction\n'));
    expect(m).toMatchObject({ version: '0002', name: 'add_orders', up: 'CREATE TABLE orders (id int);', down: 'DROP TABLE orders;', transactional: false });
    expect(m.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(parseMigration('0002_add_orders.sql', file('CREATE TABLE orders (id int);')).down).toBeNull();
  });

  it('ignores line endings, trailing blanks and header edits in the checksum, but not SQL edits', () => {
    const a = parseMigration('0001_a.sql', file('SELECT 1;'));
    expect(parseMigration('0001_a.sql', `-- a new comment\r\n-- migrate:up\r\nSELECT 1;   \r\n\r\n`).checksum).toBe(a.checksum);
    expect(parseMigration('0001_a.sql', file('SELECT 2;')).checksum).not.toBe(a.checksum);
  });

  it.each([
    ['1_bad-name.sql', file('SELECT 1;'), /name must look like/],
    ['0001_x.sql', 'SELECT 1;', /missing "-- migrate:up"/],
    ['0001_x.sql', file('-- nothing yet'), /up section is empty/],
    ['0001_x.sql', '-- migrate:down\nDROP TABLE x;\n-- migrate:up\nSELECT 1;', /must come before/],
  ])('rejects %s with a reason', (name, content, reason) => {
    expect(() => parseMigration(name, content)).toThrow(reason);
  });

  it('loads a directory in numeric order and rejects duplicate versions', () => {
    writeFileSync(join(dir, '0010_b.sql'), file('SELECT 10;'));
    writeFileSync(join(dir, '0002_a.sql'), file('SELECT 2;'));
    writeFileSync(join(dir, 'README.md'), 'ignored');
    expect(loadMigrations(dir).map((m) => m.version)).toEqual(['0002', '0010']);
    writeFileSync(join(dir, '002_dup.sql'), file('SELECT 3;'));
    expect(() => loadMigrations(dir)).toThrow(/same version/);
    expect(() => loadMigrations(join(dir, 'missing'))).toThrow(/not found/);
  });

  it('scaffolds the next version, which refuses to load until its up section is written', () => {
    writeFileSync(join(dir, '0001_init.sql'), file('SELECT 1;'));
    const created = createMigrationFile(dir, 'Add orders table');
    expect(created).toBe(join(dir, '0002_add_orders_table.sql'));
    expect(readFileSync(created, 'utf8')).toMatch(/-- migrate:up[\s\S]*-- migrate:down/);
    expect(() => loadMigrations(dir)).toThrow(/0002_add_orders_table.sql: the up section is empty/);
  });

  it('resolves --to against the files and digests ledgers by version and checksum', () => {
    writeFileSync(join(dir, '0001_a.sql'), file('SELECT 1;'));
    writeFileSync(join(dir, '0002_b.sql'), file('SELECT 2;'));
    const ms = loadMigrations(dir);
    expect(resolveTarget(ms, undefined)).toBe('0002');
    expect(resolveTarget(ms, '1')).toBe('0001');
    expect(resolveTarget(ms, '0', true)).toBeNull();
    expect(() => resolveTarget(ms, '7')).toThrow(/no migration with that version/);
    expect(() => resolveTarget(ms, 'latest')).toThrow(/digits/);
    expect(ledgerDigest(ms)).not.toBe(ledgerDigest(ms.slice(0, 1)));
  });

  it('ships a valid baseline migration', () => {
    const [baseline] = loadMigrations(defaultMigrationsDir());
    expect(baseline).toMatchObject({ version: '0001', name: 'silo_baseline', transactional: true });
    expect(baseline.down).toMatch(/DROP TABLE _silo_meta/);
  });
});

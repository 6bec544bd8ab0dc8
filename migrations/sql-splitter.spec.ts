import { splitSqlStatements, stripSqlComments } from './sql-splitter';

describe('splitSqlStatements', () => {
  it('splits top-level statements and drops comment-only ones', () => {
    expect(splitSqlStatements('CREATE INDEX CONCURRENTLY IF NOT EXISTS a ON t (x);\n-- done\nCREATE INDEX CONCURRENTLY IF NOT EXISTS b ON t (y)\n;\n-- trailing')).toEqual([
      'CREATE INDEX CONCURRENTLY IF NOT EXISTS a ON t (x)',
      '-- done\nCREATE INDEX CONCURRENTLY IF NOT EXISTS b ON t (y)',
    ]);
  });

  it('keeps semicolons inside strings, quoted identifiers, dollar quotes and comments', () => {
    const fn = `CREATE FUNCTION f() RETURNS int AS $body$ BEGIN PERFORM 1; RETURN 2; END $body$ LANGUAGE plpgsql`;
    const sql = `INSERT INTO t VALUES ('a;b', 'it''s;'); SELECT "we;ird" FROM x /* ; /* nested; */ */; ${fn}; SELECT E'\\';x'; SELECT $$;$$`;
    expect(splitSqlStatements(sql)).toEqual([
      `INSERT INTO t VALUES ('a;b', 'it''s;')`,
      'SELECT "we;ird" FROM x /* ; /* nested; */ */',
      fn,
      `SELECT E'\\';x'`,
      'SELECT $$;$$',
    ]);
  });

  it('does not take $1 parameters or identifiers with $ for dollar quotes', () => {
    expect(splitSqlStatements('SELECT a$b FROM t WHERE x = $1; SELECT 2')).toEqual(['SELECT a$b FROM t WHERE x = $1', 'SELECT 2']);
  });

  it('strips comments but not comment markers inside strings', () => {
    expect(stripSqlComments("-- only a comment\n/* and this */ SELECT '--not'").trim()).toBe("SELECT '--not'");
  });
});

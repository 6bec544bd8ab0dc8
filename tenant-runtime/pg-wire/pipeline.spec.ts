import { CLOSE_COMPLETE, PARSE_COMPLETE, Pipeline } from './pipeline';
import { BackendScanner, ScanHooks } from './protocol';
import { SessionWords } from './session-words';

const [P, B, D, E, C, S, Q] = ['P', 'B', 'D', 'E', 'C', 'S', 'Q'].map((t) => t.charCodeAt(0)) as number[];

/** A backend message of `type` with `body`. */
function msg(type: string, body = ''): Buffer {
  const b = Buffer.from(body, 'latin1');
  const m = Buffer.alloc(5 + b.length);
  m.write(type, 0, 'latin1');
  m.writeUInt32BE(4 + b.length, 1);
  b.copy(m, 5);
  return m;
}

/** The message types in a relayed stream, in order. */
function types(out: Buffer): string {
  let s = '';
  for (let i = 0; i < out.length; i += 1 + out.readUInt32BE(i + 1)) s += String.fromCharCode(out[i] as number);
  return s;
}

function relay(pipe: Pipeline, input: Buffer, chunk = input.length): string {
  const scanner = new BackendScanner();
  const hooks: ScanHooks = { drop: (t) => pipe.dropsNext(t), after: (t) => pipe.ended(t), sessionChanged: () => undefined };
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunk) out.push(scanner.scan(input.subarray(i, i + chunk), hooks).out);
  return types(Buffer.concat(out));
}

describe('Pipeline', () => {
  it('answers a Parse the backend already has in its place, after the answers owed before it', () => {
    const pipe = new Pipeline();
    pipe.sent(P); pipe.sent(B); pipe.sent(E); // unnamed statement, run
    expect(pipe.make(PARSE_COMPLETE)).toBeNull(); // a kept statement: answered here, later
    pipe.sent(B); pipe.sent(E); pipe.sent(S);
    const backend = Buffer.concat([msg('1'), msg('2'), msg('D', 'x'), msg('C', 'SELECT 1\0'), msg('2'), msg('D', 'y'), msg('C', 'SELECT 1\0'), msg('Z', 'I')]);
    // Whole and one byte at a time: message boundaries across chunks change nothing.
    expect(relay(pipe, backend)).toBe('12DC12DCZ');
    expect(pipe.empty).toBe(true);
    const again = new Pipeline();
    again.sent(P); again.sent(B); again.sent(E); again.make(PARSE_COMPLETE); again.sent(B); again.sent(E); again.sent(S);
    expect(relay(again, backend, 1)).toBe('12DC12DCZ');
  });

  it('writes an answer at once when nothing is owed', () => {
    const pipe = new Pipeline();
    expect(pipe.make(CLOSE_COMPLETE)).toBe(CLOSE_COMPLETE);
  });

  it('leaves out the answers to its own re-prepare (Close + Parse) and relays the client\'s', () => {
    const pipe = new Pipeline();
    pipe.sent(C, true); pipe.sent(P, true); pipe.sent(B); pipe.sent(E); pipe.sent(S);
    expect(relay(pipe, Buffer.concat([msg('3'), msg('1'), msg('2'), msg('C', 'SELECT 0\0'), msg('Z', 'I')]))).toBe('2CZ');
  });

  it('after an error drops what the backend skipped up to the Sync, made answers included, and says so', () => {
    const pipe = new Pipeline();
    const failed: string[] = [];
    pipe.sent(P, false, () => failed.push('parse'));
    pipe.make(PARSE_COMPLETE, () => failed.push('made'));
    pipe.sent(B, false, () => failed.push('bind'));
    pipe.sent(S);
    pipe.sent(P); pipe.sent(S); // the next cycle is answered as usual
    expect(relay(pipe, Buffer.concat([msg('E', 'SERROR\0\0'), msg('Z', 'I'), msg('1'), msg('Z', 'I')]))).toBe('EZ1Z');
    expect(failed).toEqual(['parse', 'made', 'bind']);
  });

  it('after an error with no Sync sent, skips what comes until one is', () => {
    const pipe = new Pipeline();
    pipe.sent(P); pipe.sent(D);
    expect(relay(pipe, msg('E', 'SERROR\0\0'))).toBe('E');
    expect(pipe.accepting).toBe(false);
    let skipped = false;
    pipe.sent(B, false, () => { skipped = true; });
    expect(skipped).toBe(true);
    expect(pipe.make(PARSE_COMPLETE)).toBeNull();
    pipe.sent(S);
    expect(pipe.accepting).toBe(true);
    expect(relay(pipe, msg('Z', 'I'))).toBe('Z');
    expect(pipe.empty).toBe(true);
  });

  it('waits for a Query\'s ReadyForQuery whatever comes before it (rows, errors, COPY)', () => {
    const pipe = new Pipeline();
    pipe.sent(Q);
    pipe.make(PARSE_COMPLETE);
    expect(relay(pipe, Buffer.concat([msg('T', '\0\0'), msg('C', 'x\0'), msg('E', 'SERROR\0\0'), msg('G', '\0\0\0'), msg('Z', 'I')]))).toBe('TCEGZ1');
  });

  it('ends a Describe at its NoData or RowDescription, not at its ParameterDescription', () => {
    const pipe = new Pipeline();
    pipe.sent(D);
    pipe.make(CLOSE_COMPLETE);
    pipe.sent(S);
    expect(relay(pipe, Buffer.concat([msg('t', '\0\0'), msg('n'), msg('Z', 'I')]))).toBe('tn3Z');
  });
});

describe('SessionWords', () => {
  const read = (sql: string, split = sql.length) => {
    const w = new SessionWords();
    w.feed(Buffer.from(sql.slice(0, split)));
    w.feed(Buffer.from(sql.slice(split)));
    return w;
  };

  it.each([
    'SET application_name = x', 'begin; set search_path = a', '  RESET ALL', '/* hi */ set role x', '-- c\nSET x = 1',
    'LISTEN ch', 'UNLISTEN *', 'PREPARE p AS SELECT 1', 'DEALLOCATE ALL', 'DECLARE c CURSOR WITH HOLD FOR SELECT 1',
    'DISCARD ALL', "LOAD 'x'", 'DO $$ BEGIN END $$', 'CREATE TEMP TABLE t (a int)', 'create temporary table t (a int)',
    'CREATE TABLE pg_temp.t (a int)', 'SELECT * INTO TEMP t FROM x', "SELECT set_config('a.b', '1', false)",
    'SELECT pg_advisory_lock(1)', "SELECT dblink_connect('x')", 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY',
    'CREATE OR REPLACE TEMP VIEW orders AS SELECT 1', 'CREATE /**/ TEMP TABLE t (a int)', `SELECT U&"set\\005fconfig"('a.b', '1', false)`,
    `SELECT 1;${' '.repeat(200)}SET x = 1`, '/* a /* nested */ comment */ SET x = 1', 'SET', 'select 1; -- note\n  set x = 1',
  ])('sees session state in %s', (sql) => {
    expect(read(sql).sessionState).toBe(true);
    expect(read(sql, Math.floor(sql.length / 2)).sessionState).toBe(true); // split across two chunks
  });

  it.each([
    'SELECT abalance FROM pgbench_accounts WHERE aid = $1', 'UPDATE t SET a = 1 WHERE b = 2', 'INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2',
    'INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING', 'BEGIN; SET LOCAL statement_timeout = 5', 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE',
    'SET CONSTRAINTS ALL DEFERRED', 'SELECT attempts, temperature FROM weather', 'SELECT offset, reset_at FROM x', 'CREATE TABLE settings (a int)',
    '/* SET x = 1 */ SELECT 1', '-- SET x\nSELECT 1',
  ])('sees none in %s', (sql) => {
    expect(read(sql).sessionState).toBe(false);
  });

  it('reads any text in linear time (no backtracking on comments or semicolons)', () => {
    for (const sql of ['/**/'.repeat(5_000) + 'x', ';/*'.repeat(20_000), '/*'.repeat(20_000), `${'-'.repeat(50_000)}`]) {
      const started = process.hrtime.bigint();
      read(sql);
      expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(200);
    }
  });

  it('keeps its place across chunks: a statement start split anywhere still counts', () => {
    const sql = 'SELECT 1; /* c */ -- d\n  SET search_path = x';
    for (let cut = 1; cut < sql.length; cut++) expect(read(sql, cut).sessionState).toBe(true);
  });

  it('tells when the text may drop prepared statements', () => {
    expect(read('DEALLOCATE ALL').deallocates).toBe(true);
    expect(read('select 1; discard all').deallocates).toBe(true);
    expect(read('SET x = 1').deallocates).toBe(false);
  });
});

import { Writable } from 'node:stream';
import { QueryFailedError } from 'typeorm';
import { createLogger } from './logger';

function capture(): { lines: () => Record<string, unknown>[]; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({ write(c: Buffer, _e, cb) { chunks.push(c.toString()); cb(); } });
  return { stream, lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('logger', () => {
  it('logs a TypeORM query error without its query parameters, query text or driver detail', () => {
    const { stream, lines } = capture();
    const logger = createLogger({ name: 'test', destination: stream });
    const driverError = Object.assign(new Error('duplicate key value violates unique constraint "api_keys_hash_key"'), {
      code: '23505', constraint: 'api_keys_hash_key', table: 'api_keys', detail: 'Key (hash)=(5e884898da28047151d0e56f8dc629) already exists.',
    });
    const err = new QueryFailedError('INSERT INTO api_keys (hash, payload) VALUES ($1, $2)', ['5e884898da28047151d0e56f8dc629', '{"object":"event","customer_email":"ceo@acme.test"}'], driverError);
    logger.error({ err }, 'unhandled error');
    const text = JSON.stringify(lines());
    for (const leaked of ['5e884898da28047151d0e56f8dc629', 'ceo@acme.test', 'INSERT INTO api_keys', 'already exists']) expect(text).not.toContain(leaked);
    expect(lines()[0].err).toMatchObject({ type: 'QueryFailedError', code: '23505', constraint: 'api_keys_hash_key', table: 'api_keys', message: expect.stringContaining('duplicate key') });
  });

  it('keeps type, message, code, stack and a short cause chain; caps long messages', () => {
    const { stream, lines } = capture();
    const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', address: '10.0.0.5' });
    createLogger({ name: 'test', destination: stream }).warn({ err: new Error('x'.repeat(2_000), { cause }) }, 'failed');
    const logged = lines()[0].err as Record<string, unknown>;
    expect((logged.message as string).length).toBe(500);
    expect(logged.stack).toEqual(expect.any(String));
    expect(logged.cause).toEqual({ type: 'Error', message: 'connect ECONNREFUSED', code: 'ECONNREFUSED', stack: expect.any(String) });
  });

  it('caps the stack too: its first line repeats the message, which may quote tenant data', () => {
    const { stream, lines } = capture();
    createLogger({ name: 'test', destination: stream }).error({ err: new Error(`${'x'.repeat(2_000)} Key (email)=(ceo@acme.test)`) }, 'failed');
    const stack = (lines()[0].err as Record<string, unknown>).stack as string;
    expect(stack).not.toContain('ceo@acme.test');
    expect(stack.split('\n')[0]).toBe(`Error: ${'x'.repeat(500)}`);
    expect(stack.split('\n').slice(1).every((l) => /^\s+at /.test(l))).toBe(true);
    expect(stack.split('\n').length).toBeLessThanOrEqual(21);
  });
});

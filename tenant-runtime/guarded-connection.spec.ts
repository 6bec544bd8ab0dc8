import { MessageGuard } from './guarded-connection';

/** A backend message: type byte, int32 length (itself included), body. */
function msg(type: string, body: number | Buffer): Buffer {
  const b = typeof body === 'number' ? Buffer.alloc(body, 0x78) : body;
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeUInt32BE(b.length + 4, 1);
  return Buffer.concat([h, b]);
}

/** Only a header: what arrives first of a message the server is still sending. */
function header(type: string, bodyLength: number): Buffer {
  const h = Buffer.alloc(5);
  h.write(type, 0, 'latin1');
  h.writeUInt32BE(bodyLength + 4, 1);
  return h;
}

describe('MessageGuard', () => {
  it('lets messages under the caps through, across any chunking', () => {
    const stream = Buffer.concat([msg('T', 40), msg('D', 500), msg('N', 1000), msg('C', 10), msg('Z', 1)]);
    for (const size of [1, 2, 3, 5, 7, 64, stream.length]) {
      const g = new MessageGuard(2048);
      g.allowance = { budget: { bytes: 600 }, limit: 600 };
      for (let i = 0; i < stream.length; i += size) expect(g.scan(stream.subarray(i, i + size))).toBeNull();
      expect(g.allowance.budget.bytes).toBe(100);
    }
  });

  it('rejects a row larger than the remaining budget at its header, before any of its body', () => {
    const g = new MessageGuard();
    g.allowance = { budget: { bytes: 10 * 1024 * 1024 }, limit: 10 * 1024 * 1024 };
    expect(g.scan(header('D', 600 * 1024 * 1024))).toEqual({ kind: 'result', limit: 10 * 1024 * 1024 });
  });

  it('sees a header split over chunks (one byte at a time)', () => {
    const g = new MessageGuard(1024);
    const h = header('N', 5000);
    for (let i = 0; i < 4; i++) expect(g.scan(h.subarray(i, i + 1))).toBeNull();
    expect(g.scan(h.subarray(4))).toMatchObject({ kind: 'message', message: 'notice', size: 5005, limit: 1024 });
  });

  it('charges rows cumulatively: many medium rows past the budget fail at the row that crosses it', () => {
    const g = new MessageGuard();
    g.allowance = { budget: { bytes: 1000 }, limit: 1000 };
    for (let i = 0; i < 9; i++) expect(g.scan(msg('D', 100))).toBeNull();
    expect(g.scan(msg('D', 100))).toBeNull(); // exactly 1000
    expect(g.scan(msg('D', 1))).toEqual({ kind: 'result', limit: 1000 });
  });

  it('counts COPY rows like result rows', () => {
    const g = new MessageGuard();
    g.allowance = { budget: { bytes: 100 }, limit: 100 };
    expect(g.scan(msg('d', 100))).toBeNull();
    expect(g.scan(header('d', 1))).toEqual({ kind: 'result', limit: 100 });
  });

  it.each([
    ['N', 'notice'], ['E', 'error'], ['A', 'notification'], ['T', 'row description'], ['S', 'parameter status'], ['X', "message 'X'"],
  ])('caps a %s message at the fixed limit whatever the result budget', (type, name) => {
    const g = new MessageGuard(1024);
    g.allowance = { budget: { bytes: 1e9 }, limit: 1e9 };
    expect(g.scan(msg(type, 1019))).toBeNull(); // 1024 bytes on the wire
    expect(g.scan(header(type, 1020))).toEqual({ kind: 'message', message: name, size: 1025, limit: 1024 });
  });

  it('holds rows to the fixed limit when no request budget is attached', () => {
    const g = new MessageGuard(1024);
    expect(g.scan(msg('D', 1000))).toBeNull();
    expect(g.scan(header('D', 2000))).toMatchObject({ kind: 'message', message: 'row' });
  });

  it('refuses a length below its own 4 bytes (malformed stream) and stays tripped', () => {
    const g = new MessageGuard();
    const bad = Buffer.from([0x44, 0, 0, 0, 2]);
    expect(g.scan(bad)).toEqual({ kind: 'protocol' });
    expect(g.scan(msg('Z', 1))).toEqual({ kind: 'protocol' });
  });

  it('holds no bytes: scanning a message body leaves nothing buffered but the header', () => {
    const g = new MessageGuard(64 * 1024 * 1024);
    const body = Buffer.alloc(1024 * 1024);
    expect(g.scan(header('D', 32 * 1024 * 1024))).toBeNull();
    for (let i = 0; i < 32; i++) expect(g.scan(body)).toBeNull();
    // The next message's header is read from a fresh start.
    expect(g.scan(header('E', 64 * 1024 * 1024))).toMatchObject({ kind: 'message', message: 'error' });
  });
});

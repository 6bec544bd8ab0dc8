import { jsonbDocument } from './jsonb-document';
import { subscriptionOf } from './stripe-event';

const doc = (raw: string) => jsonbDocument(raw, JSON.parse(raw));

describe('jsonbDocument: JSON text jsonb accepts', () => {
  it('passes a body without risky escapes through as it is (same text, same object)', () => {
    const raw = '{"a": "caf\\u00e9", "b": [1, 2.50, null], "c": "😀"}';
    const parsed = JSON.parse(raw);
    expect(jsonbDocument(raw, parsed)).toEqual({ json: parsed, text: raw });
    expect(jsonbDocument(raw, parsed).json).toBe(parsed);
  });

  it('replaces NUL in values and keys, at any depth, with U+FFFD', () => {
    const d = doc('{"name": "Acme\\u0000 Corp", "meta": {"k\\u0000": ["x\\u0000\\u0000y", 7]}}');
    expect(d.json).toEqual({ name: 'Acme\ufffd Corp', meta: { 'k\ufffd': ['x\ufffd\ufffdy', 7] } });
    expect(d.text).not.toContain('\\u0000');
    expect(d.text).not.toContain('\u0000');
    expect(JSON.parse(d.text)).toEqual(d.json);
  });

  it('replaces unpaired surrogates and keeps pairs (escaped or not)', () => {
    expect(doc('"😀 \\ud83d\\ude00"').json).toBe('😀 😀');
    expect(doc('["\\ud800", "\\udfff", "a\\ud83d\\ude00b", "\\ude00\\ud83d"]').json).toEqual(['\ufffd', '\ufffd', 'a\u{1f600}b', '\ufffd\ufffd']);
  });

  it('leaves an escaped backslash followed by u0000 alone (only the slow path is taken)', () => {
    const d = doc('{"path": "C:\\\\u0000"}');
    expect(d.json).toEqual({ path: 'C:\\u0000' });
  });

  it('keeps "__proto__" an ordinary key', () => {
    const d = doc('{"__proto__": {"polluted": "\\u0000"}}');
    expect(Object.getPrototypeOf(d.json)).toBe(Object.prototype);
    expect(Object.keys(d.json as object)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.parse(d.text)).toEqual(JSON.parse('{"__proto__": {"polluted": "\ufffd"}}'));
  });
});

describe('subscriptionOf: the subscription an event object names', () => {
  it.each([
    ['a subscription', { object: 'subscription', id: 'sub_1' }, 'sub_1'],
    ['an invoice, current API (parent.subscription_details)', { object: 'invoice', parent: { subscription_details: { subscription: 'sub_1' } } }, 'sub_1'],
    ['an invoice, older API (top-level)', { object: 'invoice', subscription: 'sub_1', parent: null }, 'sub_1'],
    ['an invoice with an expanded subscription', { object: 'invoice', subscription: { id: 'sub_1', object: 'subscription' } }, 'sub_1'],
    ['an invoice naming it on its first line only', { object: 'invoice', lines: { data: [{ parent: { subscription_item_details: { subscription: 'sub_1' } } }] } }, 'sub_1'],
    ['a checkout session', { object: 'checkout.session', subscription: 'sub_1' }, 'sub_1'],
    ['a one-off invoice', { object: 'invoice', parent: null, subscription: null }, null],
    ['a customer', { object: 'customer', id: 'cus_1' }, null],
  ])('%s', (_name, o, expected) => {
    expect(subscriptionOf(o)).toBe(expected);
  });
});

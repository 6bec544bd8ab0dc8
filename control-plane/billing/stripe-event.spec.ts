import { SiloError } from '../../common/errors';
import { parseStripeEvent } from './stripe-event';

/** The envelope check every delivery goes through before billing reads it. */
describe('parseStripeEvent', () => {
  const event = () => ({
    id: 'evt_1', object: 'event', type: 'customer.subscription.created', created: 1_760_000_000, api_version: '2025-09-30.clover', livemode: false,
    data: { object: { id: 'sub_1', object: 'subscription' }, previous_attributes: { status: 'incomplete' } }, pending_webhooks: 1, request: { id: null },
  });
  const problem = (json: unknown): string => {
    try {
      parseStripeEvent(json);
    } catch (err) {
      expect(err).toBeInstanceOf(SiloError);
      expect((err as SiloError).code).toBe('WEBHOOK_PAYLOAD_INVALID');
      expect((err as SiloError).status).toBe(400);
      return (err as Error).message;
    }
    throw new Error('accepted');
  };

  it('accepts an event as Stripe sends it and hands it back unchanged, fields it does not check included', () => {
    const e = event();
    expect(parseStripeEvent(e)).toBe(e);
    expect(parseStripeEvent({ ...e, api_version: null, livemode: undefined, data: { object: {} } })).toBeTruthy();
  });

  it.each([
    ['an array', [], 'body'],
    ['null', null, 'body'],
    ['a string', 'evt', 'body'],
    ['an empty id', { ...event(), id: '' }, 'id'],
    ['an id of 256 characters', { ...event(), id: 'e'.repeat(256) }, 'id'],
    ['another object', { ...event(), object: 'invoice' }, 'object'],
    ['no type', { ...event(), type: undefined }, 'type'],
    ['a fractional created', { ...event(), created: 1.5 }, 'created'],
    ['a negative created', { ...event(), created: -1 }, 'created'],
    ['created as text', { ...event(), created: '1760000000' }, 'created'],
    ['a numeric api_version', { ...event(), api_version: 2025 }, 'api_version'],
    ['livemode as text', { ...event(), livemode: 'false' }, 'livemode'],
    ['no data', { ...event(), data: undefined }, 'data'],
    ['data.object an array', { ...event(), data: { object: [] } }, 'data.object'],
    ['previous_attributes a string', { ...event(), data: { object: {}, previous_attributes: 'x' } }, 'data.previous_attributes'],
  ])('refuses %s, naming the field', (_what, json, field) => {
    expect(problem(json)).toContain(`${field}: `);
  });

  it('names at most five problems', () => {
    const message = problem({ id: 1, object: 2, type: 3, created: 'x', api_version: 4, livemode: 5, data: 6 });
    expect(message.split('; ')).toHaveLength(5);
  });
});

import { startTestControlPlane, TestControlPlane } from './support/control-plane';

/**
 * Issue #14 item 8: an admin suspending an already suspended tenant with a new reason. Through the
 * admin API only: the reason shown is the new one, and the change is in the tenant's history.
 */
describe('suspending an already suspended tenant (admin API)', () => {
  let t: TestControlPlane;

  beforeAll(async () => {
    t = await startTestControlPlane();
  });
  afterAll(async () => {
    await t.close();
  });

  it('a second admin suspension with a new reason updates the reason and is audited; a bare or identical one changes nothing', async () => {
    expect((await t.api('POST', '/v1/tenants', { name: 'Reasons', slug: 'reasons' })).status).toBe(202);
    await t.drainJobs();
    expect((await t.api('GET', '/v1/tenants/reasons')).body.status).toBe('active');

    expect((await t.api('POST', '/v1/tenants/reasons/suspend', { reason: 'abuse report' })).body).toMatchObject({ status: 'suspended', suspendReason: 'abuse report' });
    const second = await t.api('POST', '/v1/tenants/reasons/suspend', { reason: 'chargeback under review' });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ status: 'suspended', suspendReason: 'chargeback under review' });
    expect((await t.api('GET', '/v1/tenants/reasons')).body.suspendReason).toBe('chargeback under review');

    // Neither a suspension without a reason nor the same reason again replaces it.
    expect((await t.api('POST', '/v1/tenants/reasons/suspend', {})).body.suspendReason).toBe('chargeback under review');
    expect((await t.api('POST', '/v1/tenants/reasons/suspend', { reason: 'chargeback under review' })).body.suspendReason).toBe('chargeback under review');

    const history = (await t.api('GET', '/v1/tenants/reasons/history')).body.items as Array<{ action: string; detail: Record<string, any> }>;
    const changes = history.filter((h) => h.action === 'suspend_reason_changed');
    expect(changes).toHaveLength(1);
    expect(changes[0].detail).toMatchObject({ from: { by: 'admin', reason: 'abuse report' }, to: { by: 'admin', reason: 'chargeback under review' } });
    expect(history.filter((h) => h.action === 'status_changed' && (h as { to?: string }).to === 'suspended')).toHaveLength(1);
  });
});

/**
 * The bytes the front door holds for clients beyond a message header: kept prepared statements and
 * named Parse messages read whole before they are relayed. Per client they are capped already
 * (1 MiB each); this caps them per tenant and per replica too, so RUNTIME_PG_MAX_CLIENTS hostile
 * connections cannot hold clients x 1 MiB of the runtime's memory, and one tenant cannot take
 * the replica's whole allowance from the others.
 */
export class BufferBudget {
  private used = 0;
  private readonly byTenant = new Map<string, number>();

  constructor(readonly max: number, readonly perTenant: number) {}

  /** Takes `n` bytes for `tenantId`; false (nothing taken) past either cap. */
  take(tenantId: string, n: number): boolean {
    const mine = this.byTenant.get(tenantId) ?? 0;
    if (this.used + n > this.max || mine + n > this.perTenant) return false;
    this.used += n;
    this.byTenant.set(tenantId, mine + n);
    return true;
  }

  give(tenantId: string, n: number): void {
    if (n <= 0) return;
    const mine = (this.byTenant.get(tenantId) ?? 0) - n;
    this.used -= n;
    if (mine <= 0) this.byTenant.delete(tenantId);
    else this.byTenant.set(tenantId, mine);
  }

  get bytes(): number {
    return this.used;
  }
}

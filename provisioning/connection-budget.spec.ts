import { connectionBudgetProblems, DEFAULT_CONNECTION_BUDGET, MAX_ROLE_CONNECTION_LIMIT, roleConnectionLimit } from './connection-budget';
import { DEFAULT_TIERS } from './tiers';

describe('connection budget: role limit = per-replica cap × replicas + reserve', () => {
  it('is the cap plus 2 by default (one replica), and grows with the replicas', () => {
    expect(DEFAULT_CONNECTION_BUDGET).toEqual({ runtimeReplicas: 1, reserve: 2 });
    expect(roleConnectionLimit(10)).toBe(12);
    expect(roleConnectionLimit(25, { runtimeReplicas: 4, reserve: 3 })).toBe(103);
  });

  it('accepts the built-in tiers with sensible numbers', () => {
    expect(connectionBudgetProblems({ runtimeReplicas: 8, reserve: 2 }, DEFAULT_TIERS)).toEqual([]);
  });

  it('names each nonsensical number', () => {
    expect(connectionBudgetProblems({ runtimeReplicas: 0, reserve: 0 }, DEFAULT_TIERS)).toEqual([
      'RUNTIME_REPLICAS must be a whole number of at least 1 (got 0)',
      'TENANT_CONNECTION_RESERVE must be a whole number of at least 1: silo migrate needs a connection of its own (got 0)',
    ]);
    expect(connectionBudgetProblems({ runtimeReplicas: 1.5, reserve: 2 }, DEFAULT_TIERS)).toHaveLength(1);
  });

  it('refuses a tier whose role limit no PostgreSQL server can grant, and only that tier', () => {
    const tiers = { small: { connectionLimit: 10 }, huge: { connectionLimit: 100_000 } };
    expect(connectionBudgetProblems({ runtimeReplicas: 3, reserve: 2 }, tiers)).toEqual([
      `tier huge: connectionLimit 100000 × RUNTIME_REPLICAS 3 + TENANT_CONNECTION_RESERVE 2 = 300002 connections per tenant, more than any PostgreSQL server accepts (${MAX_ROLE_CONNECTION_LIMIT})`,
    ]);
    expect(connectionBudgetProblems({ runtimeReplicas: 2, reserve: 2 }, tiers)).toEqual([]); // 200002
  });
});

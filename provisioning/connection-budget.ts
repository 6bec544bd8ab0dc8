import type { TierSettings } from './tiers';

/**
 * How many connections a tenant's role may hold on its database server, across everything that
 * logs in as it. Each runtime replica caps the tenant's pool at the tier's `connectionLimit` (or
 * lower, RUNTIME_MAX_CONNECTIONS_PER_TENANT); `silo migrate` opens one session per tenant; an
 * operator may open another. The role's `CONNECTION LIMIT` is therefore
 * `connectionLimit × runtimeReplicas + reserve`: the runtime's own cap, not the role, is what
 * bounds a tenant, and a migration still gets in while every replica's pool is full.
 */
export interface ConnectionBudget {
  /** Runtime replicas expected to serve tenants at once (RUNTIME_REPLICAS). */
  runtimeReplicas: number;
  /** Connections left over for migrations and admin sessions (TENANT_CONNECTION_RESERVE); at least 1, `silo migrate` needs one. */
  reserve: number;
}

export const DEFAULT_CONNECTION_BUDGET: ConnectionBudget = { runtimeReplicas: 1, reserve: 2 };

/** PostgreSQL's MAX_BACKENDS: no server accepts more connections, so a larger role limit is a configuration mistake. */
export const MAX_ROLE_CONNECTION_LIMIT = 262_143;

/** The role's CONNECTION LIMIT for a tier whose per-replica cap is `perReplicaCap`. */
export function roleConnectionLimit(perReplicaCap: number, budget: ConnectionBudget = DEFAULT_CONNECTION_BUDGET): number {
  return Math.floor(perReplicaCap) * budget.runtimeReplicas + budget.reserve;
}

/**
 * What is wrong with a budget for these tiers, one readable line per problem (empty: fine). The
 * control plane refuses to start on any (create-provisioning-driver.ts).
 */
export function connectionBudgetProblems(budget: ConnectionBudget, tiers: Readonly<Record<string, Pick<TierSettings, 'connectionLimit'>>>): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(budget.runtimeReplicas) || budget.runtimeReplicas < 1) problems.push(`RUNTIME_REPLICAS must be a whole number of at least 1 (got ${budget.runtimeReplicas})`);
  if (!Number.isInteger(budget.reserve) || budget.reserve < 1) problems.push(`TENANT_CONNECTION_RESERVE must be a whole number of at least 1: silo migrate needs a connection of its own (got ${budget.reserve})`);
  if (problems.length) return problems;
  for (const [name, tier] of Object.entries(tiers)) {
    const limit = roleConnectionLimit(tier.connectionLimit, budget);
    if (limit > MAX_ROLE_CONNECTION_LIMIT) {
      problems.push(`tier ${name}: connectionLimit ${tier.connectionLimit} × RUNTIME_REPLICAS ${budget.runtimeReplicas} + TENANT_CONNECTION_RESERVE ${budget.reserve} = ${limit} connections per tenant, more than any PostgreSQL server accepts (${MAX_ROLE_CONNECTION_LIMIT})`);
    }
  }
  return problems;
}

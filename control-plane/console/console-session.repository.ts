import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { queryRows } from '../../common/control-db/queryable';
import { DATA_SOURCE } from '../common/tokens';

/** `operator`: signed in with a personal token; `sso`: by single sign-on (no token behind it); `break-glass`: ADMIN_TOKEN. */
export type SessionKind = 'operator' | 'break-glass' | 'sso';

export interface ConsoleSessionRow {
  id: string;
  csrfToken: string;
  kind: SessionKind;
  operatorId: string | null;
  tokenId: string | null;
  tokenPrefix: string | null;
  breakGlassFingerprint: string | null;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
  endedAt: Date | null;
}

interface Raw {
  id: string; csrf_token: string; kind: SessionKind; operator_id: string | null; token_id: string | null; token_prefix: string | null;
  break_glass_fingerprint: string | null; created_at: Date; last_seen_at: Date; expires_at: Date; ended_at: Date | null;
}

const row = (r: Raw): ConsoleSessionRow => ({
  id: r.id, csrfToken: r.csrf_token, kind: r.kind, operatorId: r.operator_id, tokenId: r.token_id, tokenPrefix: r.token_prefix,
  breakGlassFingerprint: r.break_glass_fingerprint, createdAt: r.created_at, lastSeenAt: r.last_seen_at, expiresAt: r.expires_at, endedAt: r.ended_at,
});

/** The owner of `console_sessions` (test/table-owners.test.ts). */
@Injectable()
export class ConsoleSessionRepository {
  constructor(@Inject(DATA_SOURCE) private readonly ds: DataSource) {}

  async insert(s: Omit<ConsoleSessionRow, 'endedAt' | 'lastSeenAt' | 'createdAt'> & { hash: string; now: Date }): Promise<void> {
    await this.ds.query(
      `INSERT INTO console_sessions (id, hash, csrf_token, kind, operator_id, token_id, token_prefix, break_glass_fingerprint, created_at, last_seen_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)`,
      [s.id, s.hash, s.csrfToken, s.kind, s.operatorId, s.tokenId, s.tokenPrefix, s.breakGlassFingerprint, s.now, s.expiresAt],
    );
  }

  async findByHash(hash: string): Promise<ConsoleSessionRow | null> {
    const [r] = await queryRows<Raw>(this.ds, `SELECT * FROM console_sessions WHERE hash = $1`, [hash]);
    return r ? row(r) : null;
  }

  async touch(id: string, at: Date): Promise<void> {
    await this.ds.query(`UPDATE console_sessions SET last_seen_at = $2 WHERE id = $1 AND ended_at IS NULL`, [id, at]);
  }

  async end(id: string, at: Date): Promise<void> {
    await this.ds.query(`UPDATE console_sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL`, [id, at]);
  }

  /** Removes sessions past their absolute expiry before `cutoff` (called on sign-in, so the table stays small; ended ones stay until then, to be looked at). */
  async prune(cutoff: Date): Promise<void> {
    await this.ds.query(`DELETE FROM console_sessions WHERE expires_at < $1`, [cutoff]);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Console sign-in sessions (issue #18 item 2, local sign-in). The cookie holds a random session id;
 * only its SHA-256 is stored. A session is an operator's (signed in with one of their personal
 * tokens, which it keeps pointing at so a revoke, an expiry or a disable ends it) or break-glass
 * (ADMIN_TOKEN; `break_glass_fingerprint` is an HMAC of the token, so changing ADMIN_TOKEN ends it).
 */
export class ConsoleSessions1732750000000 implements MigrationInterface {
  name = 'ConsoleSessions1732750000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE console_sessions (
        id uuid PRIMARY KEY,
        hash text NOT NULL UNIQUE,
        csrf_token text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('operator','break-glass')),
        operator_id uuid REFERENCES operators(id),
        token_id uuid REFERENCES operator_tokens(id),
        token_prefix text,
        break_glass_fingerprint text,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        ended_at timestamptz,
        CONSTRAINT console_sessions_owner CHECK (
          (kind = 'operator' AND operator_id IS NOT NULL AND token_id IS NOT NULL AND token_prefix IS NOT NULL AND break_glass_fingerprint IS NULL)
          OR (kind = 'break-glass' AND operator_id IS NULL AND token_id IS NULL AND token_prefix IS NULL AND break_glass_fingerprint IS NOT NULL))
      )`);
    await q.query(`CREATE INDEX console_sessions_token_idx ON console_sessions (token_id) WHERE ended_at IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS console_sessions`);
  }
}

import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Each key's SCRAM-SHA-256 verifier (StoredKey and ServerKey, base64), for the runtime's PostgreSQL
 * front door. Computed when the key is issued, the only time its plaintext exists on the server:
 * keys issued before this migration keep NULL (they still work with cleartext passwords over TLS
 * and over HTTP; a rotation gives them a verifier).
 */
export class ApiKeyScramVerifier1732730000000 implements MigrationInterface {
  name = 'ApiKeyScramVerifier1732730000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE api_keys ADD COLUMN scram_stored_key text, ADD COLUMN scram_server_key text`);
    await q.query(`ALTER TABLE api_keys ADD CONSTRAINT api_keys_scram_both CHECK ((scram_stored_key IS NULL) = (scram_server_key IS NULL))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_scram_both`);
    await q.query(`ALTER TABLE api_keys DROP COLUMN IF EXISTS scram_server_key, DROP COLUMN IF EXISTS scram_stored_key`);
  }
}

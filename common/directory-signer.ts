import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const VERSION = 'silo-directory/v1';

/**
 * HMAC-SHA256 over the records the control plane and the runtime put in the shared cache
 * (directory entries, custom-domain mappings, API-key records). Whoever can write to Redis
 * but does not hold SILO_DIRECTORY_KEY cannot make a record the runtime accepts: an unsigned
 * or badly signed record reads as a cache miss and the control database answers instead.
 *
 * The MAC covers the record kind and the key it is stored under, so a genuine record copied
 * under another slug, domain or key prefix does not verify either. Several keys roll the
 * secret: the first signs, every one verifies.
 */
export class DirectorySigner {
  private readonly keys: Buffer[];

  constructor(keys: readonly string[]) {
    if (!keys.length) throw new Error('DirectorySigner needs at least one key');
    this.keys = keys.map((k) => Buffer.from(k, 'utf8'));
  }

  /** A key known to this process only: for a private in-process cache, which nobody else can write. */
  static ephemeral(): DirectorySigner {
    return new DirectorySigner([randomBytes(32).toString('base64url')]);
  }

  /** `kind` names the record type, `id` the key it is stored under, `fields` its content in a fixed order. */
  sign(kind: string, id: string, fields: readonly unknown[]): string {
    return this.mac(this.keys[0] as Buffer, kind, id, fields).toString('base64url');
  }

  verify(kind: string, id: string, fields: readonly unknown[], sig: unknown): boolean {
    if (typeof sig !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(sig)) return false;
    const given = Buffer.from(sig, 'base64url');
    let ok = false;
    // Every key is tried (no early exit), so the time taken does not say which one matched.
    for (const key of this.keys) ok = timingSafeEqual(given, this.mac(key, kind, id, fields)) || ok;
    return ok;
  }

  private mac(key: Buffer, kind: string, id: string, fields: readonly unknown[]): Buffer {
    return createHmac('sha256', key).update(JSON.stringify([VERSION, kind, id, ...fields])).digest();
  }
}

/** The configured SILO_DIRECTORY_KEY list; none (allowed only without Redis) means a key of this process alone. */
export function directorySignerFor(keys: readonly string[]): DirectorySigner {
  return keys.length ? new DirectorySigner(keys) : DirectorySigner.ephemeral();
}

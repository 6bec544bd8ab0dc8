import { z } from 'zod';
import { ErrorCode } from './error-codes';
import { SiloError } from './errors';

/** Helpers shared by every deployable's config.ts. Parsing is pure over an env record. */
export const port = (def: number) => z.coerce.number().int().min(0).max(65535).default(def);
export const positiveInt = (def: number) => z.coerce.number().int().positive().default(def);
export const bool = (def: boolean) =>
  z.enum(['true', 'false', '1', '0']).default(def ? 'true' : 'false').transform((v) => v === 'true' || v === '1');
export const postgresUrl = () =>
  z.string().refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// URL');
export const redisUrl = () => z.string().refine((v) => /^rediss?:\/\//.test(v), 'must be a redis:// or rediss:// URL');
/** 32 bytes, base64 or hex: the master key that wraps every tenant data key. */
export const masterKey = () =>
  z.string().refine((v) => decodeKey(v)?.length === 32, 'must be 32 bytes, base64 or 64 hex characters');
/** Comma-separated signing keys (the first signs, all verify), each at least 32 characters: SILO_DIRECTORY_KEY. */
export const signingKeys = () =>
  z.string().optional()
    .transform((v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []))
    .refine((keys) => keys.every((k) => k.length >= 32), 'each comma-separated key must be at least 32 characters');
export const logLevel = () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

export function decodeKey(v: string): Buffer | null {
  if (/^[0-9a-fA-F]{64}$/.test(v)) return Buffer.from(v, 'hex');
  const b = Buffer.from(v, 'base64');
  return b.length === 32 ? b : null;
}

/** Empty strings count as unset, so `FOO=` in a .env file does not defeat a default. */
export function parseEnv<T extends z.ZodTypeAny>(schema: T, env: Record<string, string | undefined>, deployable: string): z.infer<T> {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = schema.safeParse(cleaned);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new SiloError(ErrorCode.CONFIG_INVALID, `Invalid ${deployable} configuration:\n  - ${problems.join('\n  - ')}`, 500, { problems });
}

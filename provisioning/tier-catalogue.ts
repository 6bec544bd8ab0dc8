import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { DEFAULT_STORAGE_QUOTA_MB, DEFAULT_TEMP_FILE_LIMIT_MB, DEFAULT_TIERS, TierSettings } from './tiers';

/**
 * The tier catalogue: the built-in tiers overlaid with TIERS_FILE, parsed once with one schema by
 * every deployable (control plane, runtime, CLI). A file entry for a built-in tier may override any
 * of its fields; a new tier must give every field (storageQuotaMb and tempFileLimitMb have defaults).
 * Errors name the file, the tier and the field, one line each.
 */
const fields = {
  minAcu: z.number().min(0.5), maxAcu: z.number().max(256), instanceCount: z.number().int().min(1).max(15),
  backupRetentionDays: z.number().int().min(1).max(35), deletionProtection: z.boolean(),
  connectionLimit: z.number().int().min(1), statementTimeoutMs: z.number().int().min(100),
  // temp_file_limit is an int in kB on the server: at most 2^31-1 kB. No "unlimited" on purpose.
  tempFileLimitMb: z.number().int().min(1).max(2_097_151),
  storageQuotaMb: z.number().int().min(1),
  rateLimitPerSecond: z.number().positive(), rateLimitBurst: z.number().positive(),
};
const newTier = z.strictObject({ ...fields, tempFileLimitMb: fields.tempFileLimitMb.default(DEFAULT_TEMP_FILE_LIMIT_MB), storageQuotaMb: fields.storageQuotaMb.default(DEFAULT_STORAGE_QUOTA_MB) });
const override = z.strictObject(fields).partial();
const fileSchema = z.object({
  tiers: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,39}$/, 'tier names are lowercase letters, digits, - and _'), z.unknown()).optional(),
  /** Stripe price id or lookup_key → tier name. */
  plans: z.record(z.string(), z.string()).default({}),
});

export interface TierCatalogue {
  tiers: Readonly<Record<string, TierSettings>>;
  /** Stripe price id or lookup_key → tier name. */
  plans: Readonly<Record<string, string>>;
  defaultTier: string;
}

export class TierFileError extends Error {
  constructor(readonly source: string, readonly problems: string[]) {
    super(`${source}: ${problems.join('; ')}`);
  }
}

const problemsOf = (prefix: string, err: z.ZodError) => err.issues.map((i) => `${[prefix, ...i.path].filter((p) => p !== '').join('.')}: ${i.message}`);

/** The catalogue from a parsed TIERS_FILE document (or none). Throws TierFileError listing every problem. */
export function tierCatalogueFrom(doc: unknown, defaultTier: string, source = 'TIERS_FILE'): TierCatalogue {
  const problems: string[] = [];
  const file = fileSchema.safeParse(doc ?? {});
  if (!file.success) throw new TierFileError(source, problemsOf('', file.error));
  const parsed = file.data;
  const tiers: Record<string, TierSettings> = { ...DEFAULT_TIERS };
  for (const [name, raw] of Object.entries(parsed.tiers ?? {})) {
    const builtIn = DEFAULT_TIERS[name];
    const r = builtIn ? override.safeParse(raw) : newTier.safeParse(raw);
    if (!r.success) problems.push(...problemsOf(`tiers.${name}`, r.error));
    else tiers[name] = { ...builtIn, ...r.data, name } as TierSettings;
  }
  for (const [name, t] of Object.entries(tiers)) if (t.minAcu > t.maxAcu) problems.push(`tiers.${name}: minAcu ${t.minAcu} is above maxAcu ${t.maxAcu}`);
  for (const [plan, tier] of Object.entries(parsed.plans)) if (!tiers[tier]) problems.push(`plans.${plan}: unknown tier ${tier} (known: ${Object.keys(tiers).join(', ')})`);
  if (!tiers[defaultTier]) problems.push(`DEFAULT_TIER ${defaultTier} is not a known tier (known: ${Object.keys(tiers).join(', ')})`);
  if (problems.length) throw new TierFileError(source, problems);
  return { tiers, plans: parsed.plans, defaultTier };
}

/** The catalogue from TIERS_FILE (a JSON file path), or the built-in tiers when it is unset. */
export function loadTierCatalogue(file: string | undefined, defaultTier: string): TierCatalogue {
  if (!file) return tierCatalogueFrom(undefined, defaultTier);
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new TierFileError(`TIERS_FILE ${file}`, [(err as Error).message]);
  }
  return tierCatalogueFrom(doc, defaultTier, `TIERS_FILE ${file}`);
}

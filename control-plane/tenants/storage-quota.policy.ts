/**
 * What the storage sweep does about one tenant, from its measured size, its quota and what was
 * already done (pure: no I/O, no clock). Hysteresis keeps a tenant hovering at a threshold from
 * being frozen and unfrozen, or warned, on every sweep.
 */
export interface StoragePolicy {
  /** Warn (once) at this share of the quota. */
  warnRatio: number;
  /** A frozen tenant is unfrozen only below this share of the quota. */
  resumeRatio: number;
  /** The warning re-arms only below this share (so it fires again the next time usage climbs). */
  rearmRatio: number;
}

export const STORAGE_POLICY: StoragePolicy = { warnRatio: 0.8, resumeRatio: 0.9, rearmRatio: 0.7 };

export interface StorageObservation {
  usedBytes: number;
  quotaBytes: number;
  /** Write-frozen now (as recorded by the last successful freeze or unfreeze). */
  frozen: boolean;
  /** The warning was already given and not re-armed since. */
  warned: boolean;
}

export enum StorageDecision {
  /** Past the quota: refuse the tenant's writes. */
  Freeze = 'freeze',
  /** Frozen, and back under `resumeRatio` of the quota (it truncated or deleted, or its tier grew). */
  Unfreeze = 'unfreeze',
  /** Crossed `warnRatio` of the quota for the first time. */
  Warn = 'warn',
  /** Well under the warning threshold again: the next crossing warns again. */
  Rearm = 'rearm',
  None = 'none',
}

export function decideStorage(o: StorageObservation, policy: StoragePolicy = STORAGE_POLICY): StorageDecision {
  if (!Number.isFinite(o.usedBytes) || o.usedBytes < 0) throw new RangeError(`usedBytes must be a non-negative number, got ${o.usedBytes}`);
  if (!Number.isFinite(o.quotaBytes) || o.quotaBytes <= 0) throw new RangeError(`quotaBytes must be a positive number, got ${o.quotaBytes}`);
  const { warnRatio, resumeRatio, rearmRatio } = policy;
  if (!(rearmRatio <= warnRatio && warnRatio <= 1 && resumeRatio <= 1 && rearmRatio > 0)) throw new RangeError('storage policy ratios must satisfy 0 < rearm <= warn <= 1 and resume <= 1');
  if (o.frozen) return o.usedBytes < o.quotaBytes * resumeRatio ? StorageDecision.Unfreeze : StorageDecision.None;
  if (o.usedBytes > o.quotaBytes) return StorageDecision.Freeze;
  if (o.usedBytes >= o.quotaBytes * warnRatio) return o.warned ? StorageDecision.None : StorageDecision.Warn;
  if (o.warned && o.usedBytes < o.quotaBytes * rearmRatio) return StorageDecision.Rearm;
  return StorageDecision.None;
}

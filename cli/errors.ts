import { CommanderError } from 'commander';
import { ErrorCode } from '../common/error-codes';
import { isSiloError } from '../common/errors';

/** Exit codes of every `silo` command. */
export enum ExitCode {
  /** Everything asked for was done (or there was nothing to do). */
  Ok = 0,
  /** The command ran, but some tenant (or the template) failed, drifted or stayed locked. */
  Failed = 1,
  /** Bad flags, arguments, configuration or migration files: nothing was changed. */
  Usage = 2,
}

/** A mistake in how the command was called: printed as one line, exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

const USAGE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.CONFIG_INVALID, ErrorCode.VALIDATION_FAILED, ErrorCode.MIGRATION_INVALID, ErrorCode.TENANT_NOT_FOUND,
]);

export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof CommanderError) {
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? ExitCode.Ok : ExitCode.Usage;
  }
  if (err instanceof UsageError) return ExitCode.Usage;
  if (isSiloError(err) && USAGE_CODES.has(err.code)) return ExitCode.Usage;
  return ExitCode.Failed;
}

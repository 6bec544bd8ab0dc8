/** provisioning_steps operation name of an offboarding (DeprovisionHandler). */
export const DEPROVISION_OPERATION = 'deprovision';

/**
 * Recorded (in the tenant's row lock) right before the first irreversible step starts; its result
 * is that step's name. An admin cancel, which takes the same lock, sees it and refuses.
 */
export const POINT_OF_NO_RETURN = 'point-of-no-return';

/**
 * Driver steps after which the tenant's data is still all there (local: logins blocked, export
 * written; AWS: synth, state inspected, deletion protection lifted). A cancelled offboarding undoes
 * them with a reconfigure. Any step not listed counts as irreversible, so a new step is safe by default.
 */
export const REVERSIBLE_DEPROVISION_STEPS: readonly string[] = ['block-logins', 'export', 'deprovision-synth', 'deprovision-inspect', 'deprovision-unprotect'];

export function isReversibleDeprovisionStep(step: string): boolean {
  return REVERSIBLE_DEPROVISION_STEPS.includes(step);
}

/** The first recorded step of an offboarding that destroyed data (or started to), or null if it can still be cancelled. */
export function irreversibleStepDone(recorded: Iterable<string>): string | null {
  for (const step of recorded) if (!isReversibleDeprovisionStep(step)) return step;
  return null;
}

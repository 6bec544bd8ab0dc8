export const JOB_HANDLERS = Symbol('JOB_HANDLERS');

import { loadRuntimeConfig } from './config';

describe('RUNTIME_TERMINATOR_SECRET_REF', () => {
  const base = { DATABASE_URL: 'postgres://u@127.0.0.1:5432/silo', SECRET_STORE: 'aws', AWS_REGION: 'eu-west-1' };
  const load = (ref: string) => loadRuntimeConfig({ ...base, RUNTIME_TERMINATOR_SECRET_REF: ref }).RUNTIME_TERMINATOR_SECRET_REF;

  it('accepts a secret ref, none, and iam:<role name>', () => {
    expect(loadRuntimeConfig(base).RUNTIME_TERMINATOR_SECRET_REF).toBe('local:silo/system/backend-terminator');
    for (const ok of ['none', 'local:silo/system/backend-terminator', 'arn:aws:secretsmanager:eu-west-1:1:secret:x', 'iam:silo_terminator']) expect(load(ok)).toBe(ok);
  });

  it('refuses iam: with anything but a plain lowercase role name, naming the variable', () => {
    for (const bad of ['iam:', 'iam:Silo', 'iam:a b', 'iam:x;y']) expect(() => load(bad)).toThrow(/RUNTIME_TERMINATOR_SECRET_REF: iam:<lowercase role name>/);
  });
});

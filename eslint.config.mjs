import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'cdktf.out/**', '.silo/**', 'coverage/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-imports': ['error', { paths: [{ name: '@cdktf/provider-aws', message: 'Use deep imports (@cdktf/provider-aws/lib/...): the barrel costs ~600 MB per process.' }] }],
    },
  },
  {
    // Deployable boundaries (issue #16): the runtime is its own closure — nothing of the control
    // plane, no NestJS, TypeORM or cdktf (test/runtime-dependencies.test.ts checks the whole closure).
    files: ['tenant-runtime/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: '@cdktf/provider-aws', message: 'Use deep imports (@cdktf/provider-aws/lib/...): the barrel costs ~600 MB per process.' }],
        patterns: [
          { group: ['**/control-plane', '**/control-plane/**'], message: 'The runtime must not import the control plane: shared code belongs in common/ (or provisioning/ for tiers).' },
          { group: ['@nestjs/*', 'typeorm', 'typeorm/*', 'cdktf', '@cdktf/*'], message: 'The runtime image carries no NestJS, TypeORM or cdktf.' },
        ],
      }],
    },
  },
  {
    // The CLI may use control-plane modules (services, repositories), never its composition: no Nest
    // app and no startControlPlane (which migrates the control database as a side effect) for a CLI
    // command; commands build what they need by hand (reconcile.command.ts). `silo worker` runs the
    // worker process through control-plane/worker-process.
    files: ['cli/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: '@cdktf/provider-aws', message: 'Use deep imports (@cdktf/provider-aws/lib/...): the barrel costs ~600 MB per process.' }],
        patterns: [
          { group: ['**/control-plane/http-app', '**/control-plane/app.module', '**/control-plane/core.module', '**/control-plane/**/*.module', '**/control-plane/main', '**/control-plane/server', '**/control-plane/bootstrap'], message: 'The CLI must not boot the control plane (its HTTP app, Nest modules, bootstrap or startControlPlane, which migrates): construct the services a command needs.' },
          { group: ['@nestjs/core', '@nestjs/platform-express'], message: 'No Nest application in the CLI.' },
        ],
      }],
    },
  },
  {
    files: ['**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'readonly', require: 'readonly', process: 'readonly', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Tests read loosely-typed JSON responses; `any` there keeps assertions readable.
    files: ['test/**/*.ts', '**/*.spec.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);

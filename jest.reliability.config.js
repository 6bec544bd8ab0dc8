// The reliability suite (test/reliability): real processes spawned from dist/, faults injected.
// Same transform and shared global setup as jest.config.js; files run one at a time, since
// each one loads the 2-core machine on purpose and measures latency and memory.
const base = require('./jest.config.js');

module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/reliability/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/cdktf.out/', '/.silo/'],
  globalSetup: '<rootDir>/test/reliability/global-setup.ts',
  globalTeardown: '<rootDir>/test/reliability/global-teardown.ts',
  maxWorkers: 1,
  testTimeout: 180000,
  reporters: ['default', '<rootDir>/test/reliability/figures-reporter.js', '<rootDir>/test/summary-reporter.js'],
};

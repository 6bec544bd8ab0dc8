// Shared per-file setup. Kept minimal: each test file owns its own databases (see test/support/test-db.ts).
export {};

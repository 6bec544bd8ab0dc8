#!/usr/bin/env node
// Thin shim: the CLI is compiled to dist/ by `npm run build` (run automatically by `npm ci` via `prepare`).
require('../dist/cli/main.js');

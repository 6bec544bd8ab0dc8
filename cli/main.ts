import { createInterface } from 'node:readline/promises';
import { runCli } from './program';

/**
 * The `silo` executable (bin/silo.js loads the compiled copy): the CLI's composition root, the
 * only place that touches process.*.
 */
async function main(): Promise<void> {
  const interactive = !!(process.stdin.isTTY && process.stderr.isTTY);
  const abort = new AbortController();
  // First Ctrl-C: finish the tenants in flight and print the report. Second: leave now (open
  // transactions roll back when their connections close).
  process.on('SIGINT', () => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write('\nInterrupted: finishing tenants in flight (Ctrl-C again to quit now)...\n');
    abort.abort();
  });
  const code = await runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    signal: abort.signal,
    confirm: interactive ? confirmOnTerminal : undefined,
  });
  process.exitCode = code;
}

async function confirmOnTerminal(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

void main();

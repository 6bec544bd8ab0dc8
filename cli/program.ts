import { Command, CommanderError } from 'commander';
import { isSiloError } from '../common/errors';
import type { CommandDeps } from './command';
import { COMMANDS } from './commands';
import { debugEnabled } from './config';
import { CliContext } from './context';
import { ExitCode, exitCodeFor } from './errors';
import { CliIo, writeLine } from './io';

/**
 * The `silo` program with the commands `args` needs (the one named first, or all of them for
 * help and unknown names). Errors are thrown (exitOverride), never process.exit.
 */
export function buildProgram(deps: CommandDeps, args: readonly string[] = []): Command {
  const program = new Command('silo')
    .description('Silo: database-per-tenant control plane. Operate tenants and their databases from the terminal.')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => deps.io.stdout.write(s),
      writeErr: (s) => deps.io.stderr.write(s),
    })
    .addHelpText('after', '\nExit codes: 0 done, 1 some tenant failed, 2 usage or configuration error.\nEnvironment: DATABASE_URL, SILO_MASTER_KEY, ... (as the control plane); without DATABASE_URL, a running `npm start` is used.');
  const named = COMMANDS.filter((c) => c.name === args[0]);
  for (const entry of named.length ? named : COMMANDS) entry.load()(program, deps);
  return program;
}

/** Runs `silo <args>` (args without node and script) and returns the exit code. */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const context = new CliContext(io);
  let exitCode: number = ExitCode.Ok;
  try {
    const program = buildProgram({ io, context, setExitCode: (code) => (exitCode = code) }, args);
    if (!args.length) {
      program.outputHelp();
      return ExitCode.Usage;
    }
    await program.parseAsync([...args], { from: 'user' });
    return exitCode;
  } catch (err) {
    const code = exitCodeFor(err);
    // commander has already printed its own one-line message.
    if (!(err instanceof CommanderError)) {
      const message = err instanceof Error ? err.message : String(err);
      writeLine(io.stderr, `error: ${message}`);
      if (debugEnabled(io.env) && err instanceof Error && !isSiloError(err)) writeLine(io.stderr, err.stack ?? '');
    }
    return code;
  } finally {
    await context.close();
  }
}

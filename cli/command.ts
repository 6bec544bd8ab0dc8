import { Command, InvalidArgumentError } from 'commander';
import type { CliContext } from './context';
import type { CliIo } from './io';

/** Handed to every command file. */
export interface CommandDeps {
  io: CliIo;
  /** Lazily created adapters (config, control database, secret store, driver). */
  context: CliContext;
  /** The process exit code once the command returns (default 0). Usage errors: throw UsageError. */
  setExitCode(code: number): void;
}

/**
 * One file per command (or command group) in `cli/commands/`, exporting a function of this type;
 * `cli/commands/index.ts` lists them. The function adds its subcommand to `program` and does its
 * work in an async action.
 */
export type RegisterCommand = (program: Command, deps: CommandDeps) => void;

/**
 * An entry of `cli/commands/index.ts`: the top-level command name and a lazy loader, so
 * `silo migrate ...` loads only the migrate files (start-up stays fast however heavy other
 * commands' imports are). `--help` and unknown names load them all.
 */
export interface CommandModule {
  name: string;
  load(): RegisterCommand;
}

/** commander option parser for integers >= `min`: a bad value is a usage error (exit 2). */
export function intOption(min: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < min) throw new InvalidArgumentError(`must be an integer >= ${min}`);
    return Number(value);
  };
}

/** Repeatable option collecting values; commas split too (`--tenant a,b --tenant c`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];
}

/** What a command may touch of the outside world: injected so the program runs in-process in tests. */
export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** The environment as given to the process; only cli/config.ts interprets it. */
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** A y/N question on the terminal; absent when there is no terminal to ask on. */
  confirm?: (question: string) => Promise<boolean>;
  /** Aborted on Ctrl-C: fleet runs stop starting tenants and report. */
  signal?: AbortSignal;
}

export function writeLine(stream: NodeJS.WritableStream, line = ''): void {
  stream.write(`${line}\n`);
}

import { spawn } from 'node:child_process';
import { childEnv, TERRAFORM_ENV } from '../child-env';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';

export type TerraformCommand = 'init' | 'apply' | 'output' | 'destroy' | 'state list' | 'state rm';

/** One entry of `terraform output -json`. */
export interface TerraformOutputValue {
  sensitive: boolean;
  type: unknown;
  value: unknown;
}

export type TerraformOutputs = Record<string, TerraformOutputValue>;

export interface TerraformRunnerOptions {
  /** Path of the terraform (or tofu) executable. Default `terraform` from PATH. */
  binary?: string;
  /** Per-command timeouts in ms; unspecified commands use {@link DEFAULT_TIMEOUTS_MS}. */
  timeoutsMs?: Partial<Record<TerraformCommand, number>>;
  /**
   * Time between SIGTERM and SIGKILL when a command times out or is aborted. Default 60 s:
   * on SIGTERM terraform waits for in-flight API calls and releases the state lock.
   */
  killGraceMs?: number;
  /**
   * How long apply and destroy wait for the state lock another run holds (`-lock-timeout`)
   * before failing. Default 300 s: longer than the kill grace, so a run whose worker was stopped
   * (terraform still finishing, detached, after SIGTERM) releases the lock before the next run
   * of the same stack gives up.
   */
  lockTimeoutSeconds?: number;
  /**
   * Environment the child's is filtered from (AWS credentials come from here). Default: this
   * process's. Only the OS basics and what terraform needs pass (childEnv's TERRAFORM_ENV: AWS_*,
   * TF_*, proxies, CA bundle), plus `passEnv`; `TF_IN_AUTOMATION=1` is always added.
   */
  env?: NodeJS.ProcessEnv;
  /** More variables to pass through by name (the fake terraform's settings in tests). */
  passEnv?: readonly string[];
}

export interface TerraformRunOptions {
  /** Receives every output line as it arrives (the job log). Never gets `output -json` stdout. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
}

/** Aurora creation and deletion with a final snapshot routinely take 10-20 minutes. */
export const DEFAULT_TIMEOUTS_MS: Record<TerraformCommand, number> = {
  init: 10 * 60_000,
  apply: 90 * 60_000,
  destroy: 90 * 60_000,
  output: 2 * 60_000,
  'state list': 2 * 60_000,
  'state rm': 2 * 60_000,
};

const STDERR_TAIL_LINES = 10;
// If the main process has exited but a stray descendant keeps the pipes open, stop waiting.
const CLOSE_AFTER_EXIT_MS = 5_000;

/**
 * Runs terraform in a synthesized stack directory: no shell, its own process group (so a
 * timeout or abort kills terraform and its provider plugins together: SIGTERM, then SIGKILL
 * after a grace), output streamed line by line, failures mapped to `TERRAFORM_FAILED` /
 * `TERRAFORM_TIMEOUT` with the command and the last stderr lines (never the environment).
 */
export class TerraformRunner {
  private readonly binary: string;
  private readonly timeouts: Record<TerraformCommand, number>;
  private readonly killGraceMs: number;
  private readonly lockTimeout: string;
  private readonly env: NodeJS.ProcessEnv;

  constructor(options: TerraformRunnerOptions = {}) {
    this.binary = options.binary ?? 'terraform';
    this.timeouts = { ...DEFAULT_TIMEOUTS_MS, ...options.timeoutsMs };
    this.killGraceMs = options.killGraceMs ?? 60_000;
    this.lockTimeout = `-lock-timeout=${Math.max(0, Math.round(options.lockTimeoutSeconds ?? 300))}s`;
    const rule = { ...TERRAFORM_ENV, names: [...(TERRAFORM_ENV.names ?? []), ...(options.passEnv ?? [])] };
    this.env = childEnv(options.env ?? process.env, rule, { TF_IN_AUTOMATION: '1' });
  }

  /** `terraform init -input=false -no-color` */
  async init(dir: string, opts: TerraformRunOptions = {}): Promise<void> {
    await this.run('init', ['init', '-input=false', '-no-color'], dir, opts);
  }

  /** `terraform apply -auto-approve -input=false -no-color -lock-timeout=<n>s [-target=…]` */
  async apply(dir: string, opts: TerraformRunOptions & { targets?: string[] } = {}): Promise<void> {
    const targets = (opts.targets ?? []).map((t) => `-target=${t}`);
    await this.run('apply', ['apply', '-auto-approve', '-input=false', '-no-color', this.lockTimeout, ...targets], dir, opts);
  }

  /** `terraform destroy -auto-approve -input=false -no-color -lock-timeout=<n>s` */
  async destroy(dir: string, opts: TerraformRunOptions = {}): Promise<void> {
    await this.run('destroy', ['destroy', '-auto-approve', '-input=false', '-no-color', this.lockTimeout], dir, opts);
  }

  /**
   * `terraform output -json`, parsed. Its stdout is not streamed to `onLine`: terraform prints
   * sensitive outputs in clear there.
   */
  async output(dir: string, opts: TerraformRunOptions = {}): Promise<TerraformOutputs> {
    const stdout = await this.run('output', ['output', '-json'], dir, opts, { captureStdout: true });
    return parseTerraformOutputs(stdout);
  }

  /** `terraform state list`: resource addresses currently in state. */
  async stateList(dir: string, opts: TerraformRunOptions = {}): Promise<string[]> {
    const stdout = await this.run('state list', ['state', 'list'], dir, opts, { captureStdout: true });
    return stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  }

  /** `terraform state rm <addresses…>`: forget resources without destroying them. */
  async stateRm(dir: string, addresses: string[], opts: TerraformRunOptions = {}): Promise<void> {
    if (addresses.length === 0) return;
    await this.run('state rm', ['state', 'rm', ...addresses], dir, opts);
  }

  private run(
    command: TerraformCommand,
    args: string[],
    cwd: string,
    opts: TerraformRunOptions,
    { captureStdout = false } = {},
  ): Promise<string> {
    const label = `terraform ${command}`;
    if (opts.signal?.aborted) {
      return Promise.reject(new SiloError(ErrorCode.TERRAFORM_FAILED, `${label} was aborted before it started`, 500, { command, aborted: true }));
    }
    return new Promise<string>((resolve, reject) => {
      const child = spawn(this.binary, args, { cwd, env: this.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      const stdoutChunks: string[] = [];
      const stderrTail: string[] = [];
      let ending: 'timeout' | 'abort' | null = null;
      let spawnError: NodeJS.ErrnoException | null = null;
      let graceTimer: NodeJS.Timeout | undefined;
      let closeTimer: NodeJS.Timeout | undefined;

      const emit = (line: string, stream: 'stdout' | 'stderr') => {
        if (stream === 'stderr') {
          stderrTail.push(line);
          if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
        }
        if (stream === 'stdout' && captureStdout) return;
        try {
          opts.onLine?.(line, stream);
        } catch {
          // A failing log sink must not break the command.
        }
      };
      const stdoutLines = lineSplitter((l) => emit(l, 'stdout'));
      const stderrLines = lineSplitter((l) => emit(l, 'stderr'));
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        if (captureStdout) stdoutChunks.push(chunk);
        stdoutLines.push(chunk);
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => stderrLines.push(chunk));

      const killGroup = (sig: NodeJS.Signals) => {
        if (child.pid === undefined) return;
        try {
          process.kill(-child.pid, sig);
        } catch {
          // ESRCH: the whole group is already gone.
        }
      };
      const stop = (why: 'timeout' | 'abort') => {
        if (ending) return;
        ending = why;
        killGroup('SIGTERM');
        graceTimer = setTimeout(() => killGroup('SIGKILL'), this.killGraceMs);
      };
      const timeoutMs = this.timeouts[command];
      const timer = setTimeout(() => stop('timeout'), timeoutMs);
      const onAbort = () => stop('abort');
      opts.signal?.addEventListener('abort', onAbort, { once: true });

      child.on('error', (err: NodeJS.ErrnoException) => {
        spawnError = err;
      });
      child.on('exit', () => {
        closeTimer = setTimeout(() => {
          child.stdout.destroy();
          child.stderr.destroy();
        }, CLOSE_AFTER_EXIT_MS);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        clearTimeout(graceTimer);
        clearTimeout(closeTimer);
        opts.signal?.removeEventListener('abort', onAbort);
        stdoutLines.end();
        stderrLines.end();
        // Leave nothing of the group behind once we report, whatever the outcome.
        if (ending) killGroup('SIGKILL');

        const details = { command, cwd, exitCode: code, signal, stderrTail: [...stderrTail] };
        if (ending === 'timeout') {
          reject(new SiloError(ErrorCode.TERRAFORM_TIMEOUT, `${label} timed out after ${timeoutMs} ms and was killed`, 504, details));
        } else if (ending === 'abort') {
          reject(new SiloError(ErrorCode.TERRAFORM_FAILED, `${label} was aborted`, 500, { ...details, aborted: true }));
        } else if (spawnError) {
          const reason = spawnError.code === 'ENOENT' ? `executable not found: ${this.binary}` : `could not start (${spawnError.code ?? spawnError.name})`;
          reject(new SiloError(ErrorCode.TERRAFORM_FAILED, `${label} ${reason}`, 500, details));
        } else if (code !== 0) {
          const how = code === null ? `was killed by ${signal}` : `exited with code ${code}`;
          const tail = stderrTail.length ? `:\n${stderrTail.join('\n')}` : '';
          reject(new SiloError(ErrorCode.TERRAFORM_FAILED, `${label} ${how}${tail}`, 500, details));
        } else {
          resolve(stdoutChunks.join(''));
        }
      });
    });
  }
}

/** Parses `terraform output -json`. Errors never quote the input: it may hold sensitive values. */
export function parseTerraformOutputs(json: string): TerraformOutputs {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new SiloError(ErrorCode.TERRAFORM_FAILED, 'terraform output -json printed something that is not JSON', 500);
  }
  if (!isRecord(parsed)) {
    throw new SiloError(ErrorCode.TERRAFORM_FAILED, 'terraform output -json did not print an object', 500);
  }
  const outputs: TerraformOutputs = {};
  for (const [name, entry] of Object.entries(parsed)) {
    if (!isRecord(entry) || !('value' in entry)) {
      throw new SiloError(ErrorCode.TERRAFORM_FAILED, `terraform output ${name} has an unexpected shape`, 500);
    }
    outputs[name] = { sensitive: entry.sensitive === true, type: entry.type, value: entry.value };
  }
  return outputs;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Splits a text stream into lines (LF or CRLF), flushing a trailing partial line on end. */
function lineSplitter(onLine: (line: string) => void): { push(chunk: string): void; end(): void } {
  let buffer = '';
  return {
    push(chunk) {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        onLine(buffer.slice(0, nl).replace(/\r$/, ''));
        buffer = buffer.slice(nl + 1);
      }
    },
    end() {
      if (buffer) onLine(buffer.replace(/\r$/, ''));
      buffer = '';
    },
  };
}

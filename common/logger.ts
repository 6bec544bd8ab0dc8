import pino, { Logger } from 'pino';

/** Paths scrubbed from every log line, wherever they appear. */
const REDACT = [
  'password', '*.password', '*.*.password', 'secret', '*.secret', 'token', '*.token',
  'req.headers.authorization', 'req.headers["stripe-signature"]', 'req.headers.cookie',
  'headers.authorization', 'connectionString', '*.connectionString', 'apiKey', '*.apiKey', 'key', '*.key',
];

const MAX_MESSAGE = 500;
const MAX_FRAMES = 20;
// Names, not values: which constraint or table a database error was about.
const SAFE_ERROR_FIELDS = ['code', 'constraint', 'table', 'column', 'schema', 'routine', 'severity', 'status'] as const;

/**
 * The `err` of every log line: type, message, code, stack and the names above, nothing else.
 * pino's default serializer copies every enumerable field, and a TypeORM QueryFailedError
 * carries `query`, `parameters` (key hashes, webhook payloads) and `driverError.detail`
 * (`Key (hash)=(…) already exists`): those never reach a log.
 */
export function serializeError(err: unknown, depth = 0): Record<string, unknown> | unknown {
  if (!(err instanceof Error)) return typeof err === 'string' ? err.slice(0, MAX_MESSAGE) : err === undefined || err === null ? err : `[${typeof err}]`;
  const e = err as Error & Record<string, unknown>;
  const out: Record<string, unknown> = { type: e.constructor?.name ?? 'Error', message: String(e.message ?? '').slice(0, MAX_MESSAGE) };
  for (const k of SAFE_ERROR_FIELDS) if (typeof e[k] === 'string' || typeof e[k] === 'number') out[k] = e[k];
  const driver = e.driverError as Record<string, unknown> | undefined;
  if (out.code === undefined && driver && typeof driver.code === 'string') out.code = driver.code;
  // The stack's first line repeats the whole message (a database error's may quote tenant data):
  // rebuilt from the capped message and the frames only, at most MAX_FRAMES of them.
  if (e.stack) out.stack = [`${out.type}: ${out.message}`, ...e.stack.split('\n').filter((l) => /^\s+at /.test(l)).slice(0, MAX_FRAMES)].join('\n');
  if (e.cause !== undefined && depth < 3) out.cause = serializeError(e.cause, depth + 1);
  return out;
}

export function createLogger(opts: { level?: string; name: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      redact: { paths: REDACT, censor: '[redacted]' },
      serializers: { err: serializeError, error: serializeError },
      base: { service: opts.name },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}

/** Removes credentials from a Postgres/Redis URL so it can be logged or shown. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '[unparseable url]';
  }
}

export type { Logger };

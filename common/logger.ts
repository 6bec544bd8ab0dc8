import pino, { Logger } from 'pino';

/** Paths scrubbed from every log line, wherever they appear. */
const REDACT = [
  'password', '*.password', '*.*.password', 'secret', '*.secret', 'token', '*.token',
  'req.headers.authorization', 'req.headers["stripe-signature"]', 'req.headers.cookie',
  'headers.authorization', 'connectionString', '*.connectionString', 'apiKey', '*.apiKey', 'key', '*.key',
];

export function createLogger(opts: { level?: string; name: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      redact: { paths: REDACT, censor: '[redacted]' },
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

// pino JSON logs, one line per event. Secrets are kept out in three layers, so that one careless
// log call cannot leak a credential:
//  1. redaction by key: any field named like a secret (password, code, token, authorization …)
//     up to three levels deep is replaced, wherever it sits;
//  2. errors are serialised to type, message, stack and a few safe fields only; an error object
//     from a library (an HTTP client's request config, a driver's bound parameters) is never
//     dumped whole;
//  3. every finished line is scrubbed of anything shaped like a JWT, an rst_ API key, an rst_svc_ service key or a Bearer
//     credential, whatever key or message carried it.
// Every line carries the process id, so lines from the workers of WEB_CONCURRENCY tell apart.
import pino, { type Logger } from 'pino';

export type { Logger };

const SECRET_KEYS = [
  'password',
  'new_password',
  'password_hash',
  'code',
  'token',
  'credential',
  'raw_key',
  'access_token',
  'secret',
  'jwtSecret',
  'authorization',
  'x-api-key',
  'cookie',
];

// A JWT is matched only where a base64url run starts (the lookbehind): tried at every `eyJ`
// inside one long run, as in a path of `eyJ` repeated, each attempt would scan to the run's end
// again, quadratic in the line. Starting at run boundaries, no character is scanned more than a
// few times.
const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
// rst_ API keys and rst_svc_ service keys alike.
const API_KEY = /rst_(?:svc_)?[0-9A-Za-z]{16,}/g;
const BEARER = /(bearer\s+)[^\s"\\,]+/gi;

/** Removes credential-shaped substrings from a serialised line. */
export function scrub(line: string): string {
  if (line.includes('eyJ')) line = line.replace(JWT, '[redacted-jwt]');
  if (line.includes('rst_')) line = line.replace(API_KEY, '[redacted-key]');
  if (/bearer/i.test(line)) line = line.replace(BEARER, '$1[redacted]');
  return line;
}

/** Longest client-sent value (a path) written to a log line. */
export const LOGGED_VALUE_MAX = 256;

/** A value the client chose, bounded for the log: scrubbed whole first, so a credential that
 * straddles the cut is not left half in the line, then cut to LOGGED_VALUE_MAX characters. */
export function fromClient(value: string): string {
  if (value.length <= LOGGED_VALUE_MAX) return value;
  const scrubbed = scrub(value);
  if (scrubbed.length <= LOGGED_VALUE_MAX) return scrubbed;
  return `${scrubbed.slice(0, LOGGED_VALUE_MAX)}…[${scrubbed.length - LOGGED_VALUE_MAX} more]`;
}

interface SafeError {
  type: string;
  message: string;
  stack?: string;
  /** the driver's or system's error code (ECONNRESET, 23505 …); named so the `code` redaction spares it */
  errorCode?: string;
  constraint?: string;
  cause?: SafeError;
}

function serializeError(err: unknown, depth = 0): SafeError | unknown {
  if (!(err instanceof Error)) return err;
  const e = err as Error & { code?: unknown; constraint?: unknown; cause?: unknown };
  const out: SafeError = { type: e.constructor?.name ?? e.name, message: e.message, stack: e.stack };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.errorCode = String(e.code);
  if (typeof e.constraint === 'string') out.constraint = e.constraint;
  if (e.cause instanceof Error && depth < 3) out.cause = serializeError(e.cause, depth + 1) as SafeError;
  return out;
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const paths = [
    'req.headers.authorization',
    'req.headers["x-api-key"]',
    'req.headers.cookie',
    ...SECRET_KEYS.flatMap((k) => {
      const key = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
      const join = (prefix: string) => (key.startsWith('[') ? `${prefix}${key}` : `${prefix}.${key}`);
      return [key, join('*'), join('*.*'), join('*.*.*')];
    }),
  ];
  return pino(
    {
      level,
      base: { service: 'rst-auth', pid: process.pid },
      redact: { paths, censor: '[redacted]' },
      serializers: { err: serializeError, error: serializeError },
      timestamp: pino.stdTimeFunctions.isoTime,
      hooks: { streamWrite: scrub },
    },
    destination,
  );
}

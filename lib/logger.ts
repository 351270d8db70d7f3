// pino JSON logs. Credentials are redacted by path everywhere a log line could carry them
// (request headers, bodies, error objects), so a careless log call cannot leak a secret.
import pino, { type Logger } from 'pino';

export type { Logger };

const SECRET_KEYS = ['password', 'new_password', 'code', 'token', 'credential', 'raw_key', 'access_token', 'secret', 'jwtSecret', 'authorization', 'x-api-key', 'cookie'];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const paths = [
    'req.headers.authorization',
    'req.headers["x-api-key"]',
    'req.headers.cookie',
    ...SECRET_KEYS.flatMap((k) => [`${k}`, `*.${k}`, `*.*.${k}`]),
  ];
  return pino(
    {
      level,
      base: { service: 'rst-auth' },
      redact: { paths, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

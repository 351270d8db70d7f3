// The only reader of process.env. Every variable is parsed and checked here, all problems are
// reported at once (one line each), and the result is frozen and passed down.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { JWT_ALGORITHMS, type JwtAlgorithm, parsePrivateKeys } from './lib/jwt.ts';

export interface RateRule {
  /** requests (or failures, for login) allowed per window */
  limit: number;
  windowSeconds: number;
}

export interface Config {
  env: string;
  host: string;
  port: number;
  databaseUrl: string | undefined;
  /** A direct connection (not through a pooler) for migrations; unset: DATABASE_URL. */
  databaseMigrationUrl: string | undefined;
  /** A direct connection (not through a pooler) for the credential cache's LISTEN; unset: DATABASE_URL. */
  databaseListenUrl: string | undefined;
  /** Named prepared statements on the hot path; false behind a pooler that cannot keep them (PgBouncer < 1.21). */
  databasePreparedStatements: boolean;
  /** The in-process credential cache (lib/credentialCache.ts): on, its size, and the age ceiling of an entry. */
  credentialCache: { enabled: boolean; maxEntries: number; ttlSeconds: number };
  /** Run pending migrations at start (default on the embedded database and in development/test). */
  migrateOnStart: boolean;
  dataDir: string;
  jwtSecret: string | undefined;
  jwtAlgorithm: JwtAlgorithm;
  /** EdDSA/ES256: the first signs, all verify; empty outside production means a generated key kept in the database. */
  jwtPrivateKeys: KeyObject[];
  jwtTtlSeconds: number;
  jwtIssuer: string;
  jwtAudience: string;
  googleClientIds: string[];
  googleCertsUrl: string | undefined;
  smtpUrl: string | undefined;
  /** `console` prints mail to stdout (the default without SMTP_URL); `smtp` sends it. */
  mailTransport: 'smtp' | 'console';
  mailFrom: string;
  appUrl: string;
  passwordMinLength: number;
  scrypt: { logN: number; r: number; p: number };
  kdfConcurrency: number;
  kdfMaxQueue: number;
  /** Nice value of libuv's pool threads (where scrypt runs), so requests get the CPU first; 0 = as the event loop. */
  poolThreadNice: number;
  logLevel: string;
  trustProxy: boolean;
  /** How many proxies in front append to X-Forwarded-For; only the last `proxyHops` entries are believed. */
  proxyHops: number;
  /** Worker processes on one port (node:cluster); 1 runs in-process. */
  webConcurrency: number;
  /** Unset: GET /metrics is 404. Set: it answers only `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /** A second listener for /healthz, /readyz and /metrics; when set the public port serves no /metrics. */
  managementPort: number | undefined;
  managementHost: string;
  /** How long SIGTERM waits for in-flight requests and the delivery worker before exiting anyway. */
  shutdownTimeoutMs: number;
  /** The product's name in every email's subject and body and in the docs page's title. */
  appName: string;
  /** A folder of mail templates that replace the built-in ones (one .html and one .txt per message). */
  mailTemplatesDir: string | undefined;
  corsOrigins: string[];
  bodyLimitBytes: number;
  /** Hours after registration an account whose email is still unverified is deleted, freeing its names. */
  unverifiedAccountTtlHours: number;
  /** Days sent or given-up mail and spent or expired recovery tokens and codes are kept. */
  retentionDays: number;
  /** Delivery attempts after which a message (or job) is given up and its secret erased. */
  outboxMaxAttempts: number;
  /** How often the housekeeping sweep runs (unverified accounts, retention, rate-limit counters). */
  sweepIntervalSeconds: number;
  limits: {
    loginIdentifier: RateRule;
    loginIp: RateRule;
    registerIp: RateRule;
    emailMinute: RateRule;
    emailHour: RateRule;
    /** resend-verification and forgot-password requests per client IP */
    emailIp: RateRule;
    verifyIp: RateRule;
    verifyDaily: RateRule;
    resetIp: RateRule;
    googleIp: RateRule;
    /** refresh attempts per client IP (successful ones are given back) */
    refreshIp: RateRule;
    /** refused tokens and API keys (401) per client IP */
    authFailureIp: RateRule;
    /** introspection calls per service key, whatever address they come from */
    introspect: RateRule;
  };
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('\n'));
    this.problems = problems;
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Secrets that may also come from a file (Docker and Kubernetes secrets): `NAME_FILE=/run/secrets/…`. */
export const SECRET_VARIABLES = [
  'JWT_SECRET',
  'JWT_PRIVATE_KEYS',
  'DATABASE_URL',
  'DATABASE_MIGRATION_URL',
  'DATABASE_LISTEN_URL',
  'SMTP_URL',
  'METRICS_TOKEN',
] as const;

/** The defaults of the password policy and hashing cost; production refuses anything weaker. */
const SCRYPT_DEFAULTS = { logN: 15, r: 8, p: 3 };
const PASSWORD_MIN_LENGTH_DEFAULT = 8;
/** scrypt needs 128·N·r bytes and N·r·p block operations: bounded so a setting cannot exhaust the machine. */
export const SCRYPT_MAX_MEMORY_BYTES = 256 * 1024 * 1024;
export const SCRYPT_MAX_WORK = 2 ** 24;

/** Refused when the cost of one hash is beyond what the service is willing to compute. */
export function scryptCostProblem(params: { logN: number; r: number; p: number }): string | undefined {
  const n = 2 ** params.logN;
  if (128 * n * params.r > SCRYPT_MAX_MEMORY_BYTES)
    return `needs ${(128 * n * params.r) / 2 ** 20} MiB of memory per hash (at most ${SCRYPT_MAX_MEMORY_BYTES / 2 ** 20})`;
  if (n * params.r * params.p > SCRYPT_MAX_WORK)
    return `N·r·p is ${n * params.r * params.p} (at most ${SCRYPT_MAX_WORK})`;
  return undefined;
}

export function loadConfig(input: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const problems: string[] = [];
  const env = withSecretFiles(input, problems);
  const str = (name: string, fallback: string): string => {
    const v = env[name];
    return v === undefined || v === '' ? fallback : v;
  };
  const opt = (name: string): string | undefined =>
    env[name] === undefined || env[name] === '' ? undefined : env[name];
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name}: expected a whole number from ${min} to ${max}, got "${raw}"`);
      return fallback;
    }
    return Number(raw);
  };
  const url = (name: string, fallback?: string): string | undefined => {
    const raw = opt(name) ?? fallback;
    if (raw === undefined) return undefined;
    try {
      new URL(raw);
    } catch {
      problems.push(`${name}: not a valid URL`); // the value may hold a password: never echo it
    }
    return raw;
  };
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = opt(name);
    if (raw === undefined) return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    problems.push(`${name}: expected true or false, got "${raw}"`);
    return fallback;
  };
  // RATE_LIMIT_<NAME>=<limit>/<windowSeconds>, e.g. RATE_LIMIT_LOGIN_IDENTIFIER=10/900
  const rule = (name: string, limit: number, windowSeconds: number): RateRule => {
    const key = `RATE_LIMIT_${name}`;
    const raw = env[key];
    if (raw === undefined || raw === '') return { limit, windowSeconds };
    const m = /^(\d{1,9})\/(\d{1,9})$/.exec(raw);
    if (!m || Number(m[2]) === 0) {
      problems.push(`${key}: expected <limit>/<window seconds> such as 10/900, got "${raw}"`);
      return { limit, windowSeconds };
    }
    return { limit: Number(m[1]), windowSeconds: Number(m[2]) };
  };

  const nodeEnv = str('NODE_ENV', 'development');
  const production = nodeEnv !== 'development' && nodeEnv !== 'test';
  const jwtAlgorithm = str('JWT_ALGORITHM', 'HS256') as JwtAlgorithm;
  if (!JWT_ALGORITHMS.includes(jwtAlgorithm))
    problems.push(`JWT_ALGORITHM: expected one of ${JWT_ALGORITHMS.join(', ')}, got "${jwtAlgorithm}"`);
  const jwtSecret = opt('JWT_SECRET');
  if (jwtSecret !== undefined && Buffer.byteLength(jwtSecret) < 32)
    problems.push('JWT_SECRET: must be at least 32 bytes');
  // With EdDSA or ES256 the secret signs no token; it still keys one-time codes at rest when set,
  // and a generated one kept in the database does otherwise.
  if (jwtSecret === undefined && production && jwtAlgorithm === 'HS256')
    problems.push(`JWT_SECRET: required when NODE_ENV=${nodeEnv}`);
  let jwtPrivateKeys: KeyObject[] = [];
  const privateKeysPem = opt('JWT_PRIVATE_KEYS');
  if (jwtAlgorithm === 'HS256' || !JWT_ALGORITHMS.includes(jwtAlgorithm)) {
    if (privateKeysPem !== undefined && jwtAlgorithm === 'HS256')
      problems.push('JWT_PRIVATE_KEYS: only used with JWT_ALGORITHM=EdDSA or ES256 (HS256 signs with JWT_SECRET)');
  } else if (privateKeysPem !== undefined) {
    const parsed = parsePrivateKeys(jwtAlgorithm, privateKeysPem);
    if (typeof parsed === 'string') problems.push(`JWT_PRIVATE_KEYS: ${parsed}`);
    else jwtPrivateKeys = parsed;
  } else if (production) {
    // A key generated into the database is readable by anyone who can read the database.
    problems.push(`JWT_PRIVATE_KEYS: required when JWT_ALGORITHM=${jwtAlgorithm} and NODE_ENV=${nodeEnv}`);
  }

  const databaseUrl = url('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:/.test(databaseUrl))
    problems.push('DATABASE_URL: expected a postgres:// URL');
  const postgresUrl = (name: string): string | undefined => {
    const value = url(name);
    if (value !== undefined && !/^postgres(ql)?:/.test(value)) problems.push(`${name}: expected a postgres:// URL`);
    return value;
  };
  const databaseMigrationUrl = postgresUrl('DATABASE_MIGRATION_URL');
  const databaseListenUrl = postgresUrl('DATABASE_LISTEN_URL');
  if ((databaseMigrationUrl ?? databaseListenUrl) !== undefined && databaseUrl === undefined)
    problems.push(
      `${databaseMigrationUrl ? 'DATABASE_MIGRATION_URL' : 'DATABASE_LISTEN_URL'}: needs DATABASE_URL (the embedded database has no connections)`,
    );
  const smtpUrl = url('SMTP_URL');
  if (smtpUrl !== undefined && !/^smtps?:/.test(smtpUrl))
    problems.push('SMTP_URL: expected an smtp:// or smtps:// URL');

  const logLevel = str('LOG_LEVEL', 'info');
  if (!LOG_LEVELS.includes(logLevel))
    problems.push(`LOG_LEVEL: expected one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);

  // Exact origins (scheme://host[:port]) as browsers send them in Origin; a path, a wildcard or a
  // typo would otherwise silently allow nothing, or too much.
  const corsOrigins = str('CORS_ORIGINS', '')
    .split(',')
    .map((s) => s.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  for (const origin of corsOrigins) {
    let valid = false;
    try {
      valid = /^https?:$/.test(new URL(origin).protocol) && new URL(origin).origin === origin;
    } catch {}
    if (!valid)
      problems.push(
        `CORS_ORIGINS: "${origin}" is not an origin such as https://app.example.com (lower-case scheme and host, optional port, no path)`,
      );
  }

  const port = int('PORT', 3000, 0, 65535);
  const host = str('HOST', '127.0.0.1');
  const cores = os.availableParallelism();

  // TRUST_PROXY=true believes one proxy hop, N believes N: only the entries the trusted proxies
  // appended count, so a client cannot pick its rate-limit bucket by sending its own header.
  const rawTrust = str('TRUST_PROXY', 'false');
  let proxyHops = 0;
  if (/^\d{1,2}$/.test(rawTrust)) proxyHops = Number(rawTrust);
  else if (/^(1|true|yes|on)$/i.test(rawTrust)) proxyHops = 1;
  else if (!/^(0|false|no|off)$/i.test(rawTrust))
    problems.push(`TRUST_PROXY: expected true, false or a number of proxy hops, got "${rawTrust}"`);
  const webConcurrency = env.WEB_CONCURRENCY === 'auto' ? cores : int('WEB_CONCURRENCY', 1, 1, 64);
  // PGlite is an embedded, single-process database: workers cannot share its folder.
  if (webConcurrency > 1 && databaseUrl === undefined)
    problems.push('WEB_CONCURRENCY: more than 1 worker needs DATABASE_URL (the embedded database is single-process)');
  const metricsToken = opt('METRICS_TOKEN');
  if (metricsToken !== undefined && metricsToken.length < 16)
    problems.push('METRICS_TOKEN: must be at least 16 characters');
  const managementPort = opt('MANAGEMENT_PORT') === undefined ? undefined : int('MANAGEMENT_PORT', 0, 0, 65535);
  const managementHost = str('MANAGEMENT_HOST', '127.0.0.1');
  if (managementPort !== undefined && managementPort !== 0 && managementPort === port && managementHost === host)
    problems.push('MANAGEMENT_PORT: must differ from PORT (the management port is a listener of its own)');

  const appName = str('APP_NAME', 'rst auth');
  // It lands in mail subjects (a header: no line breaks) and in HTML (escaped there).
  if (appName.length > 64 || /\p{Cc}/u.test(appName)) problems.push('APP_NAME: at most 64 characters on one line');
  const mailTemplatesDir = opt('MAIL_TEMPLATES_DIR');

  const mailTransportRaw = str('MAIL_TRANSPORT', smtpUrl === undefined ? 'console' : 'smtp');
  let mailTransport: 'smtp' | 'console' = smtpUrl === undefined ? 'console' : 'smtp';
  if (mailTransportRaw === 'smtp' || mailTransportRaw === 'console') mailTransport = mailTransportRaw;
  else problems.push(`MAIL_TRANSPORT: expected smtp or console, got "${mailTransportRaw}"`);
  if (mailTransport === 'smtp' && smtpUrl === undefined) problems.push('MAIL_TRANSPORT: smtp needs SMTP_URL');

  const scrypt = {
    logN: int('SCRYPT_LOG_N', SCRYPT_DEFAULTS.logN, 1, 20),
    r: int('SCRYPT_R', SCRYPT_DEFAULTS.r, 1, 64),
    p: int('SCRYPT_P', SCRYPT_DEFAULTS.p, 1, 16),
  };
  const costProblem = scryptCostProblem(scrypt);
  if (costProblem) problems.push(`SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P: ${costProblem}`);
  const passwordMinLength = int('PASSWORD_MIN_LENGTH', PASSWORD_MIN_LENGTH_DEFAULT, 1, 256);
  const appUrl = url('APP_URL', `http://${host}:${port}`)!.replace(/\/+$/, '');

  // Anything but development or test is production: a deployment that forgot NODE_ENV gets the
  // strict checks, not the laptop defaults.
  if (production) {
    const allow = (name: string) => /^(1|true|yes|on)$/i.test(str(name, 'false'));
    if (databaseUrl === undefined && !allow('ALLOW_EMBEDDED_DB'))
      problems.push(
        `DATABASE_URL: required when NODE_ENV=${nodeEnv} (or set ALLOW_EMBEDDED_DB=true to run on the embedded database)`,
      );
    if (smtpUrl === undefined && opt('MAIL_TRANSPORT') !== 'console')
      problems.push(
        `SMTP_URL: required when NODE_ENV=${nodeEnv} (or set MAIL_TRANSPORT=console to print mail on purpose)`,
      );
    if (!appUrl.startsWith('https://'))
      problems.push(`APP_URL: must be an https:// URL when NODE_ENV=${nodeEnv} (recovery links are sent to it)`);
    if (!allow('ALLOW_WEAK_KDF')) {
      const weaker = (['logN', 'r', 'p'] as const).filter((k) => scrypt[k] < SCRYPT_DEFAULTS[k]);
      if (weaker.length > 0)
        problems.push(
          `SCRYPT_${weaker[0] === 'logN' ? 'LOG_N' : weaker[0].toUpperCase()}: below the default (logN ${SCRYPT_DEFAULTS.logN}, r ${SCRYPT_DEFAULTS.r}, p ${SCRYPT_DEFAULTS.p}) when NODE_ENV=${nodeEnv} (set ALLOW_WEAK_KDF=true to allow it)`,
        );
      if (passwordMinLength < PASSWORD_MIN_LENGTH_DEFAULT)
        problems.push(
          `PASSWORD_MIN_LENGTH: below the default ${PASSWORD_MIN_LENGTH_DEFAULT} when NODE_ENV=${nodeEnv} (set ALLOW_WEAK_KDF=true to allow it)`,
        );
    }
  }

  const config: Config = {
    env: nodeEnv,
    host,
    port,
    databaseUrl,
    databaseMigrationUrl,
    databaseListenUrl,
    databasePreparedStatements: bool('DATABASE_PREPARED_STATEMENTS', true),
    credentialCache: {
      enabled: bool('CREDENTIAL_CACHE', true),
      maxEntries: int('CREDENTIAL_CACHE_MAX_ENTRIES', 10_000, 1, 10_000_000),
      // A ceiling of its own only as a second line of defence: coherence comes from LISTEN/NOTIFY.
      ttlSeconds: int('CREDENTIAL_CACHE_TTL_SECONDS', 60, 1, 60),
    },
    // Production applies migrations as a step of its own (npm run migrate) before a rolling
    // deploy; a laptop and the embedded database migrate at start as before.
    migrateOnStart: bool(
      'MIGRATE_ON_START',
      databaseUrl === undefined || nodeEnv === 'development' || nodeEnv === 'test',
    ),
    dataDir: path.resolve(str('DATA_DIR', './.data')),
    jwtSecret,
    jwtAlgorithm,
    jwtPrivateKeys,
    jwtTtlSeconds: int('JWT_TTL_SECONDS', 3600, 60, 30 * 24 * 3600),
    jwtIssuer: str('JWT_ISSUER', 'rst'),
    jwtAudience: str('JWT_AUDIENCE', 'rst-api'),
    googleClientIds: str('GOOGLE_CLIENT_ID', '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    googleCertsUrl: url('GOOGLE_CERTS_URL'),
    smtpUrl,
    mailTransport,
    mailFrom: str('MAIL_FROM', 'rst auth <no-reply@localhost>'),
    appUrl,
    passwordMinLength,
    scrypt,
    // Each hash holds a libuv pool thread for its whole run; as many at once as there are cores.
    // With several workers the cores are shared between them.
    kdfConcurrency: int('KDF_CONCURRENCY', Math.max(1, Math.floor(cores / webConcurrency)), 1, 64),
    kdfMaxQueue: int('KDF_MAX_QUEUE', 100, 0, 100_000),
    poolThreadNice: int('POOL_THREAD_NICE', 10, 0, 19),
    logLevel,
    trustProxy: proxyHops > 0,
    proxyHops,
    webConcurrency,
    metricsToken,
    managementPort,
    managementHost,
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_SECONDS', 10, 2, 600) * 1000,
    appName,
    mailTemplatesDir: mailTemplatesDir === undefined ? undefined : path.resolve(mailTemplatesDir),
    corsOrigins,
    bodyLimitBytes: int('BODY_LIMIT_BYTES', 16 * 1024, 1024, 1024 * 1024),
    unverifiedAccountTtlHours: int('UNVERIFIED_ACCOUNT_TTL_HOURS', 72, 1, 24 * 365),
    retentionDays: int('RETENTION_DAYS', 30, 1, 3650),
    outboxMaxAttempts: int('OUTBOX_MAX_ATTEMPTS', 10, 1, 1000),
    sweepIntervalSeconds: int('SWEEP_INTERVAL_SECONDS', 3600, 1, 86400),
    limits: {
      loginIdentifier: rule('LOGIN_IDENTIFIER', 10, 900),
      loginIp: rule('LOGIN_IP', 100, 900),
      registerIp: rule('REGISTER_IP', 10, 3600),
      emailMinute: rule('EMAIL_MINUTE', 1, 60),
      emailHour: rule('EMAIL_HOUR', 5, 3600),
      emailIp: rule('EMAIL_IP', 50, 3600),
      verifyIp: rule('VERIFY_IP', 100, 900),
      verifyDaily: rule('VERIFY_DAILY', 20, 86400),
      resetIp: rule('RESET_IP', 100, 900),
      googleIp: rule('GOOGLE_IP', 100, 900),
      refreshIp: rule('REFRESH_IP', 100, 900),
      authFailureIp: rule('AUTH_FAILURE_IP', 100, 900),
      introspect: rule('INTROSPECT', 6000, 60),
    },
  };
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(config);
}

/**
 * `NAME_FILE` names a file holding the secret NAME (one trailing newline is dropped, as editors and
 * `echo` add one). Setting both is refused: which one wins would be a guess. The file's content is
 * never echoed in a problem.
 */
function withSecretFiles(env: NodeJS.ProcessEnv, problems: string[]): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const name of SECRET_VARIABLES) {
    const file = env[`${name}_FILE`];
    if (file === undefined || file === '') continue;
    if (env[name] !== undefined && env[name] !== '') {
      problems.push(`${name}_FILE: ${name} is set as well; set one of them`);
      continue;
    }
    try {
      out[name] = fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
      if (out[name] === '') problems.push(`${name}_FILE: ${file} is empty`);
    } catch (err) {
      problems.push(`${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  return out;
}

// Configuration: config.ts reads every variable once, and a bad one stops the server at start
// with exit status 2 and one clear line per problem on stderr, before any database is opened.
// loadConfig is checked directly; the refusals also through the real server.ts process.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError, loadConfig } from '../config.ts';
import { ROOT, TEST_ENV } from './support/server.ts';

const APP = 'https://app.example.test';
const DEV = 'http://localhost:5173';

/** Starts server.ts on a database folder that cannot exist, so only a refusal can end it early. */
const boot = (env: Record<string, string>) =>
  new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'server.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...TEST_ENV, PORT: '0', DATA_DIR: '/nonexistent/never-created', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 20_000,
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('close', (code) => resolve({ code, stderr }));
  });

describe('configuration', () => {
  describe('loadConfig', () => {
    it('defaults to the limits of API.md, refused credentials 100 per IP per 15 minutes', () => {
      const { limits, trustProxy, proxyHops } = loadConfig({});
      expect(limits.loginIdentifier).to.deep.equal({ limit: 10, windowSeconds: 900 });
      expect(limits.loginIp).to.deep.equal({ limit: 100, windowSeconds: 900 });
      expect(limits.registerIp).to.deep.equal({ limit: 10, windowSeconds: 3600 });
      expect(limits.emailMinute).to.deep.equal({ limit: 1, windowSeconds: 60 });
      expect(limits.emailHour).to.deep.equal({ limit: 5, windowSeconds: 3600 });
      expect(limits.authFailureIp).to.deep.equal({ limit: 100, windowSeconds: 900 });
      expect({ trustProxy, proxyHops }).to.deep.equal({ trustProxy: false, proxyHops: 0 });
    });

    it('reads TRUST_PROXY as true/false or a number of proxy hops', () => {
      expect(loadConfig({ TRUST_PROXY: 'true' }).proxyHops).to.equal(1);
      expect(loadConfig({ TRUST_PROXY: '2' }).proxyHops).to.equal(2);
      expect(loadConfig({ TRUST_PROXY: 'off' }).trustProxy).to.equal(false);
      expect(() => loadConfig({ TRUST_PROXY: 'sometimes' })).to.throw(ConfigError, /TRUST_PROXY/);
    });

    it('refuses a CORS_ORIGINS entry that is not an exact origin, naming the variable', () => {
      expect(loadConfig({ CORS_ORIGINS: `${APP}/, ${DEV}` }).corsOrigins).to.deep.equal([APP, DEV]);
      expect(loadConfig({}).corsOrigins).to.deep.equal([]);
      for (const bad of [
        '*',
        'https://app.example.test/path',
        'app.example.test',
        'ftp://files.example.test',
        'https://APP.example.test',
        'https://app.example.test:443',
        'null',
      ]) {
        let problems: string[] = [];
        try {
          loadConfig({ CORS_ORIGINS: `${APP},${bad}` });
        } catch (err) {
          if (err instanceof ConfigError) problems = err.problems;
        }
        expect(problems, bad).to.deep.equal([
          `CORS_ORIGINS: "${bad}" is not an origin such as https://app.example.com (lower-case scheme and host, optional port, no path)`,
        ]);
      }
    });
  });

  describe('the server at start', () => {
    it('stops at start with one clear line per bad variable', async () => {
      const { code, stderr } = await boot({ PORT: 'eighty', SCRYPT_LOG_N: '99', RATE_LIMIT_LOGIN_IP: 'lots' });
      expect(code).to.equal(2);
      const lines = stderr.trim().split('\n');
      expect(lines).to.have.length(3);
      expect(lines[0]).to.match(/PORT/);
      expect(stderr)
        .to.match(/SCRYPT_LOG_N/)
        .and.match(/RATE_LIMIT_LOGIN_IP/);
    });

    it('stops the server at start-up with exit status 2 and one line on a bad CORS_ORIGINS', async () => {
      const { code, stderr } = await boot({ CORS_ORIGINS: '*' });
      expect(code).to.equal(2);
      expect(stderr.trim().split('\n')).to.deep.equal([
        'rst auth: configuration error: CORS_ORIGINS: "*" is not an origin such as https://app.example.com (lower-case scheme and host, optional port, no path)',
      ]);
    });

    it('refuses to start on a malformed RATE_LIMIT_* value, naming the variable', async () => {
      const { code, stderr } = await boot({ RATE_LIMIT_AUTH_FAILURE_IP: 'ten per minute' });
      expect(code).to.equal(2);
      expect(stderr).to.match(/configuration error: RATE_LIMIT_AUTH_FAILURE_IP: expected <limit>\/<window seconds>/);
    });

    it('refuses to start in production without JWT_SECRET, and a short JWT_SECRET anywhere', async () => {
      const prod = await boot({ NODE_ENV: 'production', JWT_SECRET: '' });
      expect(prod.code).to.equal(2);
      expect(prod.stderr).to.match(/JWT_SECRET/);
      const short = await boot({ JWT_SECRET: 'short' });
      expect(short.code).to.equal(2);
      expect(short.stderr).to.match(/JWT_SECRET: must be at least 32 bytes/);
    });

    it('never echoes a DATABASE_URL that may hold a password', async () => {
      const { code, stderr } = await boot({ DATABASE_URL: 'not a url with s3cret' });
      expect(code).to.equal(2);
      expect(stderr)
        .to.match(/DATABASE_URL/)
        .and.not.match(/s3cret/);
    });

    it('refuses more than one worker without DATABASE_URL, naming the variable', async () => {
      const { code, stderr } = await boot({ WEB_CONCURRENCY: '2' });
      expect(code).to.equal(2);
      expect(stderr).to.match(/configuration error: WEB_CONCURRENCY: more than 1 worker needs DATABASE_URL/);
    });

    it('refuses a nice value outside 0–19 at start', async () => {
      const { code, stderr } = await boot({ POOL_THREAD_NICE: '20' });
      expect(code).to.equal(2);
      expect(stderr).to.match(/POOL_THREAD_NICE/);
    });
  });
});

/** What start-up refuses, as the list of problems it would print. */
const refusals = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
};

/** A production setting that passes every guard; each test breaks one thing. */
const PRODUCTION: Record<string, string> = {
  NODE_ENV: 'production',
  JWT_SECRET: 'a'.repeat(32),
  DATABASE_URL: 'postgres://rst@db.internal/rst',
  SMTP_URL: 'smtp://mail.internal:587',
  APP_URL: 'https://auth.example.com',
};

describe('configuration: production guardrails', () => {
  it('accepts a complete production setting', () => {
    expect(refusals(PRODUCTION)).to.deep.equal([]);
  });

  it('treats any NODE_ENV but development or test as production', () => {
    for (const env of ['production', 'staging', 'prod']) {
      expect(refusals({ ...PRODUCTION, NODE_ENV: env, JWT_SECRET: '' })).to.deep.equal([
        `JWT_SECRET: required when NODE_ENV=${env}`,
      ]);
    }
    expect(refusals({ NODE_ENV: 'development' })).to.deep.equal([]);
    expect(refusals({ NODE_ENV: 'test' })).to.deep.equal([]);
  });

  it('needs DATABASE_URL unless ALLOW_EMBEDDED_DB=true', () => {
    expect(refusals({ ...PRODUCTION, DATABASE_URL: '' }))
      .to.have.length(1)
      .and.match(/^DATABASE_URL: required/);
    expect(refusals({ ...PRODUCTION, DATABASE_URL: '', ALLOW_EMBEDDED_DB: 'true' })).to.deep.equal([]);
  });

  it('needs SMTP_URL unless MAIL_TRANSPORT=console says mail goes to stdout on purpose', () => {
    expect(refusals({ ...PRODUCTION, SMTP_URL: '' }))
      .to.have.length(1)
      .and.match(/^SMTP_URL: required/);
    const console = loadConfig({ ...PRODUCTION, SMTP_URL: '', MAIL_TRANSPORT: 'console' });
    expect(console.mailTransport).to.equal('console');
    expect(refusals({ ...PRODUCTION, MAIL_TRANSPORT: 'carrier-pigeon' })).to.deep.equal([
      'MAIL_TRANSPORT: expected smtp or console, got "carrier-pigeon"',
    ]);
    expect(refusals({ MAIL_TRANSPORT: 'smtp' })).to.deep.equal(['MAIL_TRANSPORT: smtp needs SMTP_URL']);
  });

  it('needs an https APP_URL', () => {
    expect(refusals({ ...PRODUCTION, APP_URL: 'http://auth.example.com' })).to.deep.equal([
      'APP_URL: must be an https:// URL when NODE_ENV=production (recovery links are sent to it)',
    ]);
    expect(refusals({ ...PRODUCTION, APP_URL: '' }))
      .to.have.length(1)
      .and.match(/^APP_URL/);
  });

  it('refuses a KDF cost or a minimum password length below the defaults unless ALLOW_WEAK_KDF=true', () => {
    expect(refusals({ ...PRODUCTION, SCRYPT_LOG_N: '14' }))
      .to.have.length(1)
      .and.match(/^SCRYPT_LOG_N: below/);
    expect(refusals({ ...PRODUCTION, SCRYPT_R: '4' }))
      .to.have.length(1)
      .and.match(/^SCRYPT_R: below/);
    expect(refusals({ ...PRODUCTION, SCRYPT_P: '1' }))
      .to.have.length(1)
      .and.match(/^SCRYPT_P: below/);
    expect(refusals({ ...PRODUCTION, PASSWORD_MIN_LENGTH: '6' }))
      .to.have.length(1)
      .and.match(/^PASSWORD_MIN_LENGTH/);
    expect(
      refusals({ ...PRODUCTION, SCRYPT_LOG_N: '10', PASSWORD_MIN_LENGTH: '6', ALLOW_WEAK_KDF: 'true' }),
    ).to.deep.equal([]);
    // Stronger than the defaults is always fine.
    expect(refusals({ ...PRODUCTION, SCRYPT_LOG_N: '16', PASSWORD_MIN_LENGTH: '15' })).to.deep.equal([]);
  });

  it('caps the memory (128·N·r) and the work (N·r·p) of one hash, in every environment', () => {
    // logN 19, r 8: 512 MiB per hash.
    expect(refusals({ SCRYPT_LOG_N: '19' }))
      .to.have.length(1)
      .and.match(/needs 512 MiB of memory per hash/);
    // logN 18, r 8, p 16: 256 MiB is allowed, but 2^18·8·16 = 2^25 block operations are not.
    expect(refusals({ SCRYPT_LOG_N: '18', SCRYPT_R: '8', SCRYPT_P: '16' }))
      .to.have.length(1)
      .and.match(/N·r·p is/);
    expect(refusals({ SCRYPT_LOG_N: '17', SCRYPT_R: '8', SCRYPT_P: '1' })).to.deep.equal([]);
  });

  it('stops the server with one stderr line naming the variable and a non-zero exit', async () => {
    const run = await boot({ ...PRODUCTION, ALLOW_WEAK_KDF: 'true', SMTP_URL: '' });
    expect(run.code).to.equal(2);
    expect(run.stderr.trim().split('\n')).to.deep.equal([
      'rst auth: configuration error: SMTP_URL: required when NODE_ENV=production (or set MAIL_TRANSPORT=console to print mail on purpose)',
    ]);
  });
});

const pem = (type: 'ed25519' | 'P-256' | 'P-384' | 'rsa'): string => {
  const { privateKey } =
    type === 'ed25519'
      ? generateKeyPairSync('ed25519')
      : type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ec', { namedCurve: type });
  return privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
};

describe('configuration: JWT signing keys', () => {
  it('reads several PEM keys for EdDSA and for ES256, the first one first', () => {
    const [a, b] = [pem('ed25519'), pem('ed25519')];
    const eddsa = loadConfig({ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEYS: `${a}\n${b}` });
    expect(eddsa.jwtAlgorithm).to.equal('EdDSA');
    expect(eddsa.jwtPrivateKeys.map((k) => k.export({ format: 'pem', type: 'pkcs8' }))).to.deep.equal([a, b]);
    const es256 = loadConfig({ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEYS: pem('P-256') });
    expect(es256.jwtPrivateKeys).to.have.length(1);
    expect(loadConfig({}).jwtAlgorithm).to.equal('HS256');
  });

  it('refuses an unknown algorithm, a key of the wrong kind, a duplicate and stray text, never echoing a key', () => {
    expect(refusals({ JWT_ALGORITHM: 'RS256' })).to.deep.equal([
      'JWT_ALGORITHM: expected one of HS256, EdDSA, ES256, got "RS256"',
    ]);
    expect(refusals({ JWT_ALGORITHM: 'none' })).to.have.length(1);
    const ed = pem('ed25519');
    const cases: [string, string, RegExp][] = [
      ['EdDSA', `${ed}${pem('P-256')}`, /^JWT_PRIVATE_KEYS: key 2 is not an Ed25519 private key/],
      ['ES256', pem('P-384'), /^JWT_PRIVATE_KEYS: key 1 is not a P-256 \(prime256v1\) EC private key/],
      ['ES256', pem('rsa'), /^JWT_PRIVATE_KEYS: key 1 is not a P-256/],
      ['EdDSA', `${ed}\n${ed}`, /^JWT_PRIVATE_KEYS: key 2 is listed twice$/],
      ['EdDSA', `${ed}\ntrailing words`, /^JWT_PRIVATE_KEYS: holds text outside its PEM blocks$/],
      ['EdDSA', 'not a key at all', /^JWT_PRIVATE_KEYS: expected one or more PEM private keys$/],
      [
        'EdDSA',
        '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2Vw\n-----END PRIVATE KEY-----',
        /^JWT_PRIVATE_KEYS: key 1 is not a readable PEM private key$/,
      ],
    ];
    for (const [algorithm, keys, problem] of cases) {
      const problems = refusals({ JWT_ALGORITHM: algorithm, JWT_PRIVATE_KEYS: keys });
      expect(problems, `${algorithm}: ${problem}`).to.have.length(1);
      expect(problems[0]).to.match(problem);
      expect(problems[0]).not.to.include('PRIVATE KEY-----');
    }
    expect(refusals({ JWT_PRIVATE_KEYS: ed })).to.deep.equal([
      'JWT_PRIVATE_KEYS: only used with JWT_ALGORITHM=EdDSA or ES256 (HS256 signs with JWT_SECRET)',
    ]);
  });

  it('needs JWT_PRIVATE_KEYS in production for an asymmetric algorithm, and then no JWT_SECRET', () => {
    expect(refusals({ ...PRODUCTION, JWT_ALGORITHM: 'EdDSA' })).to.deep.equal([
      'JWT_PRIVATE_KEYS: required when JWT_ALGORITHM=EdDSA and NODE_ENV=production',
    ]);
    expect(
      refusals({ ...PRODUCTION, JWT_SECRET: '', JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEYS: pem('P-256') }),
    ).to.deep.equal([]);
    // Outside production a key is generated and kept in the database instead.
    expect(refusals({ JWT_ALGORITHM: 'EdDSA' })).to.deep.equal([]);
  });

  it('reads the keys from JWT_PRIVATE_KEYS_FILE', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rst-keys-'));
    try {
      const file = path.join(dir, 'keys.pem');
      fs.writeFileSync(file, `${pem('ed25519')}${pem('ed25519')}`, { mode: 0o600 });
      expect(loadConfig({ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEYS_FILE: file }).jwtPrivateKeys).to.have.length(2);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stops the server at start on a bad key, with one line', async () => {
    const { code, stderr } = await boot({ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEYS: pem('P-256') });
    expect(code).to.equal(2);
    expect(stderr.trim().split('\n')).to.have.length(1);
    expect(stderr).to.match(/configuration error: JWT_PRIVATE_KEYS: key 1 is not an Ed25519 private key/);
  });
});

describe('configuration: secrets from files (*_FILE)', () => {
  let dir: string;
  const secretFile = (name: string, content: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content, { mode: 0o600 });
    return file;
  };
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rst-secrets-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads every secret from its file, dropping one trailing newline', () => {
    const config = loadConfig({
      JWT_SECRET_FILE: secretFile('jwt', `${'s'.repeat(40)}\n`),
      DATABASE_URL_FILE: secretFile('db', 'postgres://rst:pw@127.0.0.1/rst\r\n'),
      SMTP_URL_FILE: secretFile('smtp', 'smtp://u:p@127.0.0.1:2525\n'),
      METRICS_TOKEN_FILE: secretFile('metrics', 'm'.repeat(20)),
    });
    expect(config.jwtSecret).to.equal('s'.repeat(40));
    expect(config.databaseUrl).to.equal('postgres://rst:pw@127.0.0.1/rst');
    expect(config.smtpUrl).to.equal('smtp://u:p@127.0.0.1:2525');
    expect(config.metricsToken).to.equal('m'.repeat(20));
    expect(config.mailTransport).to.equal('smtp');
  });

  it('checks a secret from a file like the variable itself, without echoing it', () => {
    const problems = refusals({ JWT_SECRET_FILE: secretFile('short', 'sh0rt-s3cret\n') });
    expect(problems).to.deep.equal(['JWT_SECRET: must be at least 32 bytes']);
    const url = refusals({ DATABASE_URL_FILE: secretFile('badurl', 'not a url with s3cret') });
    expect(url).to.not.be.empty;
    for (const line of url)
      expect(line)
        .to.match(/^DATABASE_URL: /)
        .and.not.match(/s3cret/);
  });

  it('refuses both the variable and its file, a missing file and an empty one', () => {
    const file = secretFile('both', 'x'.repeat(40));
    expect(refusals({ JWT_SECRET: 'y'.repeat(40), JWT_SECRET_FILE: file })).to.deep.equal([
      'JWT_SECRET_FILE: JWT_SECRET is set as well; set one of them',
    ]);
    expect(refusals({ SMTP_URL_FILE: path.join(dir, 'absent') })).to.deep.equal([
      `SMTP_URL_FILE: cannot read ${path.join(dir, 'absent')} (ENOENT)`,
    ]);
    expect(refusals({ METRICS_TOKEN_FILE: secretFile('empty', '\n') })).to.deep.equal([
      `METRICS_TOKEN_FILE: ${path.join(dir, 'empty')} is empty`,
    ]);
  });

  it('satisfies the production guardrails from files', () => {
    const { JWT_SECRET: _j, DATABASE_URL: _d, SMTP_URL: _s, ...rest } = PRODUCTION;
    expect(
      refusals({
        ...rest,
        JWT_SECRET_FILE: secretFile('pjwt', 'p'.repeat(32)),
        DATABASE_URL_FILE: secretFile('pdb', PRODUCTION.DATABASE_URL),
        SMTP_URL_FILE: secretFile('psmtp', PRODUCTION.SMTP_URL),
      }),
    ).to.deep.equal([]);
  });
});

describe('configuration: the credential cache', () => {
  it('is on by default, with 10,000 entries of at most 60 s', () => {
    expect(loadConfig({}).credentialCache).to.deep.equal({ enabled: true, maxEntries: 10_000, ttlSeconds: 60 });
    expect(
      loadConfig({ CREDENTIAL_CACHE: 'off', CREDENTIAL_CACHE_MAX_ENTRIES: '50', CREDENTIAL_CACHE_TTL_SECONDS: '5' })
        .credentialCache,
    ).to.deep.equal({ enabled: false, maxEntries: 50, ttlSeconds: 5 });
  });

  it('refuses an unclear switch, no room, and an age ceiling over 60 s', () => {
    expect(refusals({ CREDENTIAL_CACHE: 'sometimes' })).to.deep.equal([
      'CREDENTIAL_CACHE: expected true or false, got "sometimes"',
    ]);
    expect(refusals({ CREDENTIAL_CACHE_MAX_ENTRIES: '0' })).to.deep.equal([
      'CREDENTIAL_CACHE_MAX_ENTRIES: expected a whole number from 1 to 10000000, got "0"',
    ]);
    expect(refusals({ CREDENTIAL_CACHE_TTL_SECONDS: '61' })).to.deep.equal([
      'CREDENTIAL_CACHE_TTL_SECONDS: expected a whole number from 1 to 60, got "61"',
    ]);
  });
});

describe('configuration: running it in production (pooler, management port, migrations, mail, stop)', () => {
  it('parses DATABASE_MIGRATION_URL and DATABASE_LISTEN_URL as postgres:// URLs that need DATABASE_URL', () => {
    const config = loadConfig({
      ...PRODUCTION,
      DATABASE_MIGRATION_URL: 'postgres://owner@db.internal:5432/rst',
      DATABASE_LISTEN_URL: 'postgres://rst@db.internal:5432/rst',
    });
    expect(config.databaseMigrationUrl).to.equal('postgres://owner@db.internal:5432/rst');
    expect(config.databaseListenUrl).to.equal('postgres://rst@db.internal:5432/rst');
    expect(refusals({ ...PRODUCTION, DATABASE_MIGRATION_URL: 'mysql://x@y/z' })).to.deep.equal([
      'DATABASE_MIGRATION_URL: expected a postgres:// URL',
    ]);
    expect(refusals({ ...PRODUCTION, DATABASE_LISTEN_URL: 'not a url with s3cret' })).to.deep.equal([
      'DATABASE_LISTEN_URL: not a valid URL',
      'DATABASE_LISTEN_URL: expected a postgres:// URL',
    ]);
    expect(refusals({ DATABASE_MIGRATION_URL: 'postgres://owner@db/rst' })).to.deep.equal([
      'DATABASE_MIGRATION_URL: needs DATABASE_URL (the embedded database has no connections)',
    ]);
  });

  it('sends named statements unless DATABASE_PREPARED_STATEMENTS=false, and refuses a non-boolean', () => {
    expect(loadConfig(PRODUCTION).databasePreparedStatements).to.equal(true);
    expect(loadConfig({ ...PRODUCTION, DATABASE_PREPARED_STATEMENTS: 'false' }).databasePreparedStatements).to.equal(
      false,
    );
    expect(refusals({ ...PRODUCTION, DATABASE_PREPARED_STATEMENTS: 'sometimes' })).to.deep.equal([
      'DATABASE_PREPARED_STATEMENTS: expected true or false, got "sometimes"',
    ]);
  });

  it('migrates at start on the embedded database and in development or test, not in production', () => {
    expect(loadConfig({}).migrateOnStart).to.equal(true);
    expect(loadConfig({ NODE_ENV: 'test', DATABASE_URL: PRODUCTION.DATABASE_URL }).migrateOnStart).to.equal(true);
    expect(loadConfig(PRODUCTION).migrateOnStart).to.equal(false);
    expect(loadConfig({ ...PRODUCTION, DATABASE_URL: '', ALLOW_EMBEDDED_DB: 'true' }).migrateOnStart).to.equal(true);
    expect(loadConfig({ ...PRODUCTION, MIGRATE_ON_START: 'true' }).migrateOnStart).to.equal(true);
    expect(loadConfig({ MIGRATE_ON_START: 'false' }).migrateOnStart).to.equal(false);
  });

  it('reads MANAGEMENT_PORT and MANAGEMENT_HOST, and refuses the public port or a bad number', () => {
    expect(loadConfig(PRODUCTION).managementPort).to.equal(undefined);
    const config = loadConfig({ ...PRODUCTION, MANAGEMENT_PORT: '9090' });
    expect([config.managementPort, config.managementHost]).to.deep.equal([9090, '127.0.0.1']);
    expect(loadConfig({ ...PRODUCTION, MANAGEMENT_PORT: '9090', MANAGEMENT_HOST: '10.0.0.5' }).managementHost).to.equal(
      '10.0.0.5',
    );
    expect(refusals({ ...PRODUCTION, PORT: '8080', MANAGEMENT_PORT: '8080' })).to.deep.equal([
      'MANAGEMENT_PORT: must differ from PORT (the management port is a listener of its own)',
    ]);
    expect(refusals({ ...PRODUCTION, MANAGEMENT_PORT: '70000' })).to.deep.equal([
      'MANAGEMENT_PORT: expected a whole number from 0 to 65535, got "70000"',
    ]);
  });

  it('names the product with APP_NAME, one line of at most 64 characters', () => {
    expect(loadConfig({}).appName).to.equal('rst auth');
    expect(loadConfig({ APP_NAME: 'Acme ID' }).appName).to.equal('Acme ID');
    for (const bad of ['Acme\r\nBcc: x@evil.test', 'x'.repeat(65)])
      expect(refusals({ APP_NAME: bad })).to.deep.equal(['APP_NAME: at most 64 characters on one line']);
  });

  it('bounds the shutdown with SHUTDOWN_TIMEOUT_SECONDS', () => {
    expect(loadConfig({}).shutdownTimeoutMs).to.equal(10_000);
    expect(loadConfig({ SHUTDOWN_TIMEOUT_SECONDS: '30' }).shutdownTimeoutMs).to.equal(30_000);
    expect(refusals({ SHUTDOWN_TIMEOUT_SECONDS: '1' })).to.deep.equal([
      'SHUTDOWN_TIMEOUT_SECONDS: expected a whole number from 2 to 600, got "1"',
    ]);
  });
});

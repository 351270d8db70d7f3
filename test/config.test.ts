// Configuration: config.ts reads every variable once, and a bad one stops the server at start
// with exit status 2 and one clear line per problem on stderr, before any database is opened.
// loadConfig is checked directly; the refusals also through the real server.ts process.
import { spawn } from 'node:child_process';
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

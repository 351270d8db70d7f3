// The rst CLI, run as a child process (as a user or a script runs it) against a real server, with
// its profile in a temporary XDG_CONFIG_HOME. Only the CLI talks to the server in the lifecycle
// test; elsewhere the SDK sets up accounts and checks what the CLI printed.
import { expect } from 'chai';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { getAccount, googleSignIn, listApiKeys, refreshSession, revokeSession } from '../generated/sdk.gen.ts';
import { type CliRun, onTerminal as onTerminalOf, runCli } from './support/cli.ts';
import { checkResponse } from './support/contract.ts';
import { DB_LABEL } from './support/database.ts';
import { type GoogleFake, newSub, startGoogleFake } from './support/google.ts';
import { startServer, TEST_ENV, type TestServer } from './support/server.ts';
import { registeredUser, uniqueUser } from './support/users.ts';

interface RunOptions {
  /** Written to stdin, which is then closed (stdin is a pipe, never a terminal). */
  input?: string;
  /** Added to (or, when undefined, removed from) the CLI's environment. */
  env?: Record<string, string | undefined>;
}

/** A JSON document the CLI printed, checked against the contract as if the server had sent it. */
async function expectContract(method: string, url: string, status: number, stdout: string): Promise<unknown> {
  const body = JSON.parse(stdout) as unknown;
  const type = status >= 400 ? 'application/problem+json' : 'application/json';
  const headers: Record<string, string> = { 'content-type': type, 'x-request-id': 'cli-test' };
  if (status === 401) headers['www-authenticate'] = 'Bearer';
  await checkResponse(method, url, new Response(stdout, { status, headers }));
  return body;
}

const noStackTrace = (text: string) => expect(text).not.to.match(/^\s+at .+:\d+:\d+\)?$/m);

describe(`rst CLI (${DB_LABEL})`, function () {
  // Each command is a fresh Node process on a shared 2-core machine.
  this.timeout(120_000);
  let server: TestServer;
  let google: GoogleFake;
  let home: string;
  let config: string;

  const run = (args: string[], opts: RunOptions = {}): Promise<CliRun> => {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: home,
      XDG_CONFIG_HOME: config,
      RST_URL: server.url,
    };
    for (const [name, value] of Object.entries(opts.env ?? {})) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    return runCli(args, env, opts.input);
  };

  const profileFile = () => path.join(config, 'rst', 'profile.json');
  const readProfile = () => JSON.parse(fs.readFileSync(profileFile(), 'utf8')) as Record<string, unknown>;
  const freshConfig = () => {
    config = fs.mkdtempSync(path.join(home, 'config-'));
    return config;
  };

  before(async () => {
    google = await startGoogleFake();
    server = await startServer({ env: { GOOGLE_CLIENT_ID: google.audience, GOOGLE_CERTS_URL: google.certsUrl } });
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'rst-cli-'));
  });
  beforeEach(() => freshConfig());
  after(async () => {
    await server?.stop();
    await google?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  it('runs the whole lifecycle through the CLI alone: register, verify, login, whoami, keys, logout', async () => {
    const user = uniqueUser('cli');

    const registered = await run(['register', '--username', user.username, '--email', user.email, '--password-stdin'], {
      input: `${user.password}\n`,
    });
    expect(registered.code, registered.stderr).to.equal(0);
    expect(registered.stdout).to.include(user.username);

    const code = /code is: (\d{6})/.exec((await server.consoleMail(user.email)).text)![1]!;
    const verified = await run(['verify-email', '--email', user.email, '--code', code]);
    expect(verified.code, verified.stderr).to.equal(0);
    expect(verified.stdout).to.include(user.email);

    const loggedIn = await run(['login', '--username', user.username, '--password-stdin'], {
      input: `${user.password}\n`,
    });
    expect(loggedIn.code, loggedIn.stderr).to.equal(0);
    expect(fs.existsSync(profileFile())).to.equal(true);

    const whoami = await run(['whoami']);
    expect(whoami.code, whoami.stderr).to.equal(0);
    for (const shown of [user.username, `${user.email} (verified)`, 'free (source: default)', 'password', 'not linked'])
      expect(whoami.stdout).to.include(shown);

    // The raw key alone on stdout, so it can be piped or captured.
    const created = await run(['keys', 'create', 'ci deploy']);
    expect(created.code, created.stderr).to.equal(0);
    expect(created.stdout).to.match(/^rst_[0-9A-Za-z]{42}\n$/);
    const key = created.stdout.trim();
    expect(created.stderr).to.include(key.slice(0, 12)).and.not.include(key);

    const listed = await run(['keys', 'list']);
    expect(listed.code, listed.stderr).to.equal(0);
    expect(listed.stdout).to.include('ci deploy').and.include(key.slice(0, 12)).and.not.include(key);
    const id = /^([0-9a-f-]{36}) +ci deploy /m.exec(listed.stdout)?.[1];
    expect(id, listed.stdout).to.be.a('string');

    // The key, from the environment, with no stored session at all.
    const emptyConfig = fs.mkdtempSync(path.join(home, 'empty-'));
    const withKey = await run(['whoami'], { env: { RST_API_KEY: key, XDG_CONFIG_HOME: emptyConfig } });
    expect(withKey.code, withKey.stderr).to.equal(0);
    expect(withKey.stdout).to.include(user.username);

    const revoked = await run(['keys', 'revoke', id!]);
    expect(revoked.code, revoked.stderr).to.equal(0);
    const afterRevoke = await run(['whoami'], { env: { RST_API_KEY: key, XDG_CONFIG_HOME: emptyConfig } });
    expect(afterRevoke.code).to.equal(1);
    expect(afterRevoke.stderr).to.include('(unauthorized)');
    expect((await run(['keys', 'list'])).stdout).not.to.include(key.slice(0, 12));

    const loggedOut = await run(['logout']);
    expect(loggedOut.code, loggedOut.stderr).to.equal(0);
    expect(readProfile()).to.deep.equal({ url: server.url });
    const gone = await run(['whoami']);
    expect(gone.code).to.equal(1);
    expect(gone.stderr).to.match(/^error: not signed in/);
    expect(gone.stdout).to.equal('');
  });

  it('stores the session 0600 in a 0700 folder, with the url and tokens only and never the password', async () => {
    const user = await registeredUser(server, 'prof');
    // A folder someone else made too open is tightened, not trusted as it is.
    fs.mkdirSync(path.join(config, 'rst'), { mode: 0o755 });
    fs.chmodSync(path.join(config, 'rst'), 0o755);
    const loggedIn = await run(['login', '-u', user.email, '--password-stdin'], { input: user.password });
    expect(loggedIn.code, loggedIn.stderr).to.equal(0);

    expect(fs.statSync(profileFile()).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(path.dirname(profileFile())).mode & 0o777).to.equal(0o700);
    const text = fs.readFileSync(profileFile(), 'utf8');
    expect(text).not.to.include(user.password);
    const profile = JSON.parse(text) as { url: string; token: string; refresh_token: string };
    expect(Object.keys(profile).sort()).to.deep.equal(['refresh_token', 'token', 'url']);
    expect(profile.refresh_token).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(profile.url).to.equal(server.url);
    // Leftover temporary files would be copies of the token.
    expect(fs.readdirSync(path.dirname(profileFile()))).to.deep.equal(['profile.json']);
    const account = await getAccount({ client: server.as(profile.token), throwOnError: true });
    expect(account.data.username).to.equal(user.username);
  });

  it('exits 1 on a wrong password, printing the problem title and code on stderr, and stores nothing', async () => {
    const user = await registeredUser(server, 'wrongpw');
    const result = await run(['login', '-u', user.username, '--password-stdin'], { input: 'not the password\n' });
    expect(result.code).to.equal(1);
    expect(result.stderr).to.match(/^error: .+ \(invalid_credentials\)$/m);
    noStackTrace(result.stderr);
    expect(result.stdout).to.equal('');
    expect(fs.existsSync(profileFile())).to.equal(false);
  });

  it('exits 1 with the problem code for other refusals (taken username, wrong code, unverified login)', async () => {
    const user = uniqueUser('refuse');
    expect(
      (await run(['register', '-u', user.username, '-e', user.email, '--password-stdin'], { input: user.password }))
        .code,
    ).to.equal(0);
    const cases: [string[], string, string][] = [
      [
        ['register', '-u', user.username.toUpperCase(), '-e', `x${user.email}`, '--password-stdin'],
        user.password,
        'username_taken',
      ],
      [
        ['register', '-u', `w${user.username}`.slice(0, 32), '-e', `w${user.email}`, '--password-stdin'],
        'password',
        'weak_password',
      ],
      [['verify-email', '-e', user.email, '-c', 'abc'], '', 'validation_failed'],
      [['login', '-u', user.email, '--password-stdin'], user.password, 'email_not_verified'],
    ];
    for (const [args, input, code] of cases) {
      const result = await run(args, { input });
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).to.equal(1);
      expect(result.stderr).to.include(`(${code})`);
      noStackTrace(result.stderr);
    }
    // The code that was emailed still works: the refusals above did not spend it.
    const mail = await server.consoleMail(user.email);
    const code = /code is: (\d{6})/.exec(mail.text)![1]!;
    const wrong = code === '000000' ? '111111' : '000000';
    const wrongCode = await run(['verify-email', '-e', user.email, '-c', wrong]);
    expect(wrongCode.code).to.equal(1);
    expect(wrongCode.stderr).to.include('(invalid_code)');
    expect((await run(['verify-email', '-e', user.email, '-c', code])).code).to.equal(0);
  });

  it('resends a verification code, answering alike for an unknown email', async () => {
    const user = uniqueUser('resend');
    expect(
      (await run(['register', '-u', user.username, '-e', user.email, '--password-stdin'], { input: user.password }))
        .code,
    ).to.equal(0);
    await server.consoleMail(user.email);
    const known = await run(['resend-verification', '--email', user.email]);
    const unknown = await run(['resend-verification', '--email', `nobody.${user.email}`]);
    expect(known.code, known.stderr).to.equal(0);
    expect(unknown.code, unknown.stderr).to.equal(0);
    expect(unknown.stdout).to.equal(known.stdout);
    const code = /code is: (\d{6})/.exec((await server.consoleMail(user.email, 2)).text)![1]!;
    const verified = await run(['verify-email', '-e', user.email, '-c', code]);
    expect(verified.code, verified.stderr).to.equal(0);
  });

  it('exits 2 on usage errors, commander’s own included, without calling the server', async () => {
    const cases: [string[], string?][] = [
      [[]],
      [['frobnicate']],
      [['whoami', 'extra']],
      [['login']],
      // A password on the command line is not an option at all.
      [['login', '-u', 'someone', '--password', 'hunter2hunter2']],
      [['keys']],
      [['keys', 'revoke']],
      [['keys', 'create']],
      [['register', '-u', 'someone']],
      [['whoami', '--url', 'ftp://example.test']],
      [['whoami', '--url', 'not a url']],
      // No terminal to prompt on, and no --password-stdin.
      [['login', '-u', 'someone'], 'hunter2hunter2\n'],
      [['login', '-u', 'someone', '--password-stdin'], ''],
      [['reset-password', '--token', 'abc', '--password-stdin'], '\n'],
    ];
    const before = server.logs().filter((l) => l.msg === 'request').length;
    for (const [args, input] of cases) {
      const result = await run(args, { input });
      expect(result.code, `rst ${args.join(' ')}: ${result.stderr}`).to.equal(2);
      // Commander answers a missing subcommand with the help text, on stderr.
      // (After the warning a --token on the command line earns.)
      expect(result.stderr, args.join(' ')).to.match(/^(warning: [^\n]*\n)?(error: |Usage: rst)/);
      noStackTrace(result.stderr);
      expect(result.stdout, args.join(' ')).to.equal('');
    }
    expect(server.logs().filter((l) => l.msg === 'request').length).to.equal(before);
  });

  it('answers --help on every command with exit 0', async () => {
    const commands = [
      [],
      ['register'],
      ['verify-email'],
      ['resend-verification'],
      ['login'],
      ['logout'],
      ['whoami'],
      ['keys'],
      ['keys', 'create'],
      ['keys', 'list'],
      ['keys', 'revoke'],
      ['sessions'],
      ['sessions', 'list'],
      ['sessions', 'revoke'],
      ['google'],
      ['google', 'unlink'],
      ['forgot-password'],
      ['reset-password'],
    ];
    await Promise.all(
      commands.map(async (command) => {
        const result = await run([...command, '--help']);
        expect(result.code, command.join(' ')).to.equal(0);
        expect(result.stdout).to.match(new RegExp(`^Usage: rst${command.map((c) => ` ${c}`).join('')} `));
      }),
    );
  });

  it('prints exactly the API’s JSON with --json, matching the contract and the SDK’s own answers', async () => {
    const user = await registeredUser(server, 'json');
    const env = { RST_TOKEN: user.token };

    const whoami = await run(['whoami', '--json'], { env });
    expect(whoami.code, whoami.stderr).to.equal(0);
    const account = await expectContract('GET', `${server.url}/v1/me/account`, 200, whoami.stdout);
    expect(account).to.deep.equal((await getAccount({ client: server.as(user.token), throwOnError: true })).data);

    const created = await run(['keys', 'create', 'json key', '--json'], { env });
    expect(created.code, created.stderr).to.equal(0);
    const key = (await expectContract('POST', `${server.url}/v1/auth/api-keys`, 201, created.stdout)) as {
      raw_key: string;
      id: string;
    };
    expect((await getAccount({ client: server.as(key.raw_key), throwOnError: true })).data.username).to.equal(
      user.username,
    );

    const listed = await run(['keys', 'list', '--json'], { env });
    expect(listed.code, listed.stderr).to.equal(0);
    const list = await expectContract('GET', `${server.url}/v1/auth/api-keys`, 200, listed.stdout);
    expect(list).to.deep.equal((await listApiKeys({ client: server.as(user.token), throwOnError: true })).data);

    const session = await run(['login', '-u', user.username, '--password-stdin', '--json'], { input: user.password });
    expect(session.code, session.stderr).to.equal(0);
    const { access_token } = (await expectContract('POST', `${server.url}/v1/auth/login`, 200, session.stdout)) as {
      access_token: string;
    };
    expect(readProfile().token).to.equal(access_token);

    // A refusal is the API's JSON too: the problem document, on stdout; the error line on stderr.
    const refused = await run(['login', '-u', user.username, '--password-stdin', '--json'], {
      input: 'wrong password',
    });
    expect(refused.code).to.equal(1);
    const problem = await expectContract('POST', `${server.url}/v1/auth/login`, 401, refused.stdout);
    expect(problem).to.include({ code: 'invalid_credentials', status: 401 });
    expect(refused.stderr).to.include('(invalid_credentials)');

    const revoked = await run(['keys', 'revoke', key.id, '--json'], { env });
    expect(revoked.code, revoked.stderr).to.equal(0);
    expect(revoked.stdout, '204 has no JSON').to.equal('');
  });

  it('creates a key with scopes and an expiry, and lists them', async () => {
    const user = await registeredUser(server, 'scoped');
    const env = { RST_TOKEN: user.token };
    const created = await run(
      ['keys', 'create', 'deploy', '--scope', 'deploy:write', '--scope', 'logs.read', '--expires-in-days', '30'],
      { env },
    );
    expect(created.code, created.stderr).to.equal(0);
    expect(created.stdout).to.match(/^rst_[0-9A-Za-z]{42}\n$/);
    expect(created.stderr)
      .to.include('scopes deploy:write logs.read')
      .and.match(/expires \d{4}-\d\d-\d\dT/);
    const { data } = await listApiKeys({ client: server.as(user.token), throwOnError: true });
    expect(data.items[0]!.scopes).to.deep.equal(['deploy:write', 'logs.read']);
    const expiresAt = data.items[0]!.expires_at!;
    expect(new Date(expiresAt).getTime() - new Date(data.items[0]!.created_at).getTime()).to.equal(30 * 86_400_000);
    const listed = await run(['keys', 'list'], { env });
    expect(listed.stdout)
      .to.match(/EXPIRES +SCOPES/)
      .and.include(expiresAt)
      .and.include('deploy:write,logs.read');

    const notDays = await run(['keys', 'create', 'x', '--expires-in-days', 'soon'], { env });
    expect(notDays.code).to.equal(2);
    expect(notDays.stderr).to.include('whole number of days');
    const tooLong = await run(['keys', 'create', 'x', '--expires-in-days', '400'], { env });
    expect(tooLong.code).to.equal(1);
    expect(tooLong.stderr).to.include('(validation_failed)');
    const badScope = await run(['keys', 'create', 'x', '--scope', 'Not A Scope'], { env });
    expect(badScope.code).to.equal(1);
    expect(badScope.stderr).to.include('(validation_failed)');
  });

  it('reads credentials from RST_TOKEN and RST_API_KEY before the profile, and keys need a JWT', async () => {
    const user = await registeredUser(server, 'envcred');
    const other = await registeredUser(server, 'envother');
    const logged = await run(['login', '-u', other.username, '--password-stdin'], { input: other.password });
    expect(logged.code, logged.stderr).to.equal(0);

    const viaToken = await run(['whoami', '--json'], { env: { RST_TOKEN: user.token } });
    expect(viaToken.code, viaToken.stderr).to.equal(0);
    expect(JSON.parse(viaToken.stdout)).to.include({ username: user.username });
    expect((await run(['whoami', '--json'])).stdout).to.include(other.username);

    const key = (await run(['keys', 'create', 'env'], { env: { RST_TOKEN: user.token } })).stdout.trim();
    const keysWithKey = await run(['keys', 'list'], { env: { RST_API_KEY: key } });
    expect(keysWithKey.code).to.equal(1);
    expect(keysWithKey.stderr).to.include('(jwt_required)');

    const bad = await run(['whoami'], { env: { RST_TOKEN: 'not-a-jwt' } });
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.include('(unauthorized)').and.include('RST_TOKEN');
  });

  describe('sessions', () => {
    const sidOf = (token: string) => (jwt.decode(token) as jwt.JwtPayload).sid as string;
    const reads = async (token: string) => (await getAccount({ client: server.as(token) })).response!.status;
    const refreshes = async (refresh_token: string) =>
      (await refreshSession({ client: server.client, body: { refresh_token } })).response!.status;
    const signedIn = async (prefix: string) => {
      const user = await registeredUser(server, prefix);
      const loggedIn = await run(['login', '-u', user.username, '--password-stdin'], { input: user.password });
      expect(loggedIn.code, loggedIn.stderr).to.equal(0);
      return { user, profile: readProfile() as { url: string; token: string; refresh_token: string } };
    };

    it('rst logout ends the stored session on the server, then forgets it', async () => {
      const { user, profile } = await signedIn('clout');
      expect(await reads(profile.token)).to.equal(200);
      const result = await run(['logout']);
      expect(result.code, result.stderr).to.equal(0);
      expect(result.stdout).to.include('This session has ended');
      expect(readProfile()).to.deep.equal({ url: server.url });
      expect(await reads(profile.token)).to.equal(401);
      expect(await refreshes(profile.refresh_token)).to.equal(401);
      // The account's other session (the SDK's sign-in) is untouched.
      expect(await reads(user.token)).to.equal(200);
      const again = await run(['logout']);
      expect(again.code).to.equal(0);
      expect(again.stdout).to.include('Not signed in');
    });

    it('rst logout --others keeps this session; --all ends every one; both at once is a usage error', async () => {
      const { user, profile } = await signedIn('clall');
      expect((await run(['logout', '--all', '--others'])).code).to.equal(2);
      const others = await run(['logout', '--others']);
      expect(others.code, others.stderr).to.equal(0);
      expect(await reads(user.token)).to.equal(401);
      expect(await reads(profile.token)).to.equal(200);
      expect(readProfile()).to.deep.equal(profile);
      const second = await registeredUser(server, 'clall2');
      const all = await run(['logout', '--all']);
      expect(all.code, all.stderr).to.equal(0);
      expect(await reads(profile.token)).to.equal(401);
      expect(readProfile()).to.deep.equal({ url: server.url });
      expect(await reads(second.token)).to.equal(200);
    });

    it('refreshes an expired stored token silently and stores the new pair', async () => {
      const { user, profile } = await signedIn('clref');
      const now = Math.floor(Date.now() / 1000);
      const expired = jwt.sign({ sid: sidOf(profile.token), iat: now - 120, exp: now - 60 }, TEST_ENV.JWT_SECRET!, {
        algorithm: 'HS256',
        subject: user.id,
        issuer: 'rst',
        audience: 'rst-api',
      });
      fs.writeFileSync(profileFile(), JSON.stringify({ ...profile, token: expired }), { mode: 0o600 });
      const whoami = await run(['whoami']);
      expect(whoami.code, whoami.stderr).to.equal(0);
      expect(whoami.stdout).to.include(user.username);
      expect(whoami.stderr).to.equal('');
      const renewed = readProfile() as typeof profile;
      expect(renewed.url).to.equal(server.url);
      expect(renewed.token).not.to.equal(expired);
      expect(renewed.refresh_token)
        .to.match(/^[A-Za-z0-9_-]{43}$/)
        .and.not.equal(profile.refresh_token);
      expect(sidOf(renewed.token)).to.equal(sidOf(profile.token));
      expect(fs.statSync(profileFile()).mode & 0o777).to.equal(0o600);
      // The next command uses the renewed token directly.
      expect((await run(['keys', 'list'])).code).to.equal(0);
      expect(readProfile()).to.deep.equal(renewed);
    });

    it('an ended stored session: exit 1 with a hint, and the profile forgets its tokens', async () => {
      const { user, profile } = await signedIn('clend');
      await revokeSession({
        client: server.as(user.token),
        path: { session_id: sidOf(profile.token) },
        throwOnError: true,
      });
      const whoami = await run(['whoami']);
      expect(whoami.code).to.equal(1);
      expect(whoami.stderr).to.include('(unauthorized)').and.include('rst login');
      expect(readProfile()).to.deep.equal({ url: server.url });
    });

    it('rst sessions list and rst sessions revoke ID', async () => {
      const { user, profile } = await signedIn('clses');
      const listed = await run(['sessions', 'list']);
      expect(listed.code, listed.stderr).to.equal(0);
      const lines = listed.stdout.trim().split('\n');
      expect(lines[0]).to.match(/ID +METHOD +CREATED +LAST USED +EXPIRES +IP +USER AGENT/);
      expect(lines[1]).to.match(new RegExp(`^\\* +${sidOf(profile.token)} +password `));
      expect(lines[1]).to.include('rst-cli/');
      expect(lines[2]).to.match(new RegExp(`^ +${sidOf(user.token)} `));
      const json = await run(['sessions', 'list', '--json']);
      const body = await expectContract('GET', `${server.url}/v1/me/sessions`, 200, json.stdout);
      expect((body as { items: unknown[] }).items).to.have.length(2);

      const revoked = await run(['sessions', 'revoke', sidOf(user.token)]);
      expect(revoked.code, revoked.stderr).to.equal(0);
      expect(await reads(user.token)).to.equal(401);
      const again = await run(['sessions', 'revoke', sidOf(user.token)]);
      expect(again.code).to.equal(1);
      expect(again.stderr).to.include('(session_not_found)');
      const bad = await run(['sessions', 'revoke', 'nope']);
      expect(bad.code).to.equal(1);
      expect(bad.stderr).to.include('(validation_failed)');
    });
  });

  it('never sends the stored session to a server other than the one that issued it', async () => {
    const user = await registeredUser(server, 'origin');
    expect((await run(['login', '-u', user.username, '--password-stdin'], { input: user.password })).code).to.equal(0);
    // The same server under another name: the CLI cannot know that, so it must not send the token.
    const elsewhere = server.url.replace('127.0.0.1', 'localhost');
    const result = await run(['whoami', '--url', elsewhere]);
    expect(result.code).to.equal(1);
    expect(result.stderr)
      .to.match(/^error: not signed in/)
      .and.include(`the stored session is for ${server.url}`);
    // The same server spelled with a trailing slash is the same server.
    const same = await run(['whoami', '--url', `${server.url}/`, '--json']);
    expect(same.code, same.stderr).to.equal(0);
    expect(JSON.parse(same.stdout)).to.include({ username: user.username });
  });

  it('exits 1 with one line when the server cannot be reached', async () => {
    const closed = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const result = await run(['whoami'], { env: { RST_URL: `http://127.0.0.1:${closed}`, RST_TOKEN: 'x' } });
    expect(result.code).to.equal(1);
    expect(result.stderr).to.equal(`error: cannot reach http://127.0.0.1:${closed} (ECONNREFUSED)\n`);
  });

  it('recovers a password: forgot-password, then reset-password with the token by flag and the password on stdin', async () => {
    const user = await registeredUser(server, 'recover');
    const forgot = await run(['forgot-password', '--email', user.email]);
    expect(forgot.code, forgot.stderr).to.equal(0);
    const token = /recovery token: (\S+)/.exec((await server.consoleMail(user.email, 2)).text)![1]!;

    const newPassword = `${user.password} renewed`;
    const weak = await run(['reset-password', '--token', token, '--password-stdin'], { input: 'password\n' });
    expect(weak.code).to.equal(1);
    expect(weak.stderr).to.include('(weak_password)');
    // Given on the command line, the token still works, with a warning on stderr.
    expect(weak.stderr).to.match(/^warning: --token on the command line can be read by other users/m);
    const reset = await run(['reset-password', '--token', token, '--password-stdin'], { input: `${newPassword}\n` });
    expect(reset.code, reset.stderr).to.equal(0);
    const again = await run(['reset-password', '--token', token, '--password-stdin'], { input: `${newPassword} 2\n` });
    expect(again.code).to.equal(1);
    expect(again.stderr).to.include('(invalid_token)');

    expect((await run(['login', '-u', user.username, '--password-stdin'], { input: user.password })).code).to.equal(1);
    expect((await run(['login', '-u', user.username, '--password-stdin'], { input: newPassword })).code).to.equal(0);
    const oldSession = await run(['whoami'], { env: { RST_TOKEN: user.token } });
    expect(oldSession.code).to.equal(1);
    expect(oldSession.stderr).to.include('(unauthorized)');
  });

  it('reads the recovery token from stdin when not given (its first line; the password the rest), without a warning', async () => {
    const user = await registeredUser(server, 'tokin');
    await run(['forgot-password', '--email', user.email]);
    const token = /recovery token: (\S+)/.exec((await server.consoleMail(user.email, 2)).text)![1]!;
    const newPassword = `${user.password} piped`;
    const reset = await run(['reset-password', '--password-stdin'], { input: `${token}\n${newPassword}\n` });
    expect(reset.code, reset.stderr).to.equal(0);
    expect(reset.stderr).not.to.include('warning');
    expect((await run(['login', '-u', user.username, '--password-stdin'], { input: newPassword })).code).to.equal(0);
    // Nothing on stdin at all: a usage error before any request.
    const empty = await run(['reset-password', '--password-stdin'], { input: '' });
    expect(empty.code).to.equal(2);
    expect(empty.stderr).to.include('no recovery token given');
  });

  it('reads the verification code from stdin when not given, and warns when it is given as --code', async () => {
    const user = uniqueUser('codein');
    await run(['register', '-u', user.username, '-e', user.email, '--password-stdin'], { input: user.password });
    const code = /code is: (\d{6})/.exec((await server.consoleMail(user.email)).text)![1]!;
    const wrong = await run(['verify-email', '--email', user.email, '--code', code === '000000' ? '111111' : '000000']);
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.match(/^warning: --code on the command line/m);
    const piped = await run(['verify-email', '--email', user.email], { input: `${code}\n` });
    expect(piped.code, piped.stderr).to.equal(0);
    expect(piped.stderr).not.to.include('warning');
  });

  it('gives up on a server that never answers after RST_TIMEOUT seconds', async () => {
    const silent = net.createServer(() => {}); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    try {
      const started = Date.now();
      const result = await run(['whoami'], {
        env: { RST_URL: `http://127.0.0.1:${port}`, RST_TOKEN: 'x', RST_TIMEOUT: '1' },
      });
      expect(result.code).to.equal(1);
      expect(result.stderr).to.equal(`error: no answer from http://127.0.0.1:${port} within 1 s\n`);
      expect(Date.now() - started).to.be.below(20_000);
      expect((await run(['whoami'], { env: { RST_TIMEOUT: 'soon' } })).code).to.equal(2);
    } finally {
      silent.close();
    }
  });

  it('shows whether Google can be unlinked, and unlinks it with google unlink', async () => {
    const user = await registeredUser(server, 'unlink');
    const env = { RST_TOKEN: user.token };
    const notLinked = await run(['google', 'unlink'], { env });
    expect(notLinked.code).to.equal(1);
    expect(notLinked.stderr).to.include('(google_not_linked)');

    await googleSignIn({
      client: server.client,
      body: { credential: google.mint({ sub: newSub(), email: user.email }, { claims: { hd: 'example.test' } }) },
      throwOnError: true,
    });
    const linked = await run(['whoami'], { env });
    expect(linked.code, linked.stderr).to.equal(0);
    expect(linked.stdout)
      .to.match(/^sign-in +password, google$/m)
      .and.match(/^google +linked \(can be unlinked/m);

    const unlinked = await run(['google', 'unlink', '--json'], { env });
    expect(unlinked.code, unlinked.stderr).to.equal(0);
    const account = await expectContract('POST', `${server.url}/v1/me/google/unlink`, 200, unlinked.stdout);
    expect(account).to.include({ username: user.username, google_linked: false, can_unlink_google: false });
    expect((await run(['whoami'], { env })).stdout).to.match(/^google +not linked$/m);
  });

  it('refuses to unlink Google from an account without a password (password_required)', async () => {
    const email = uniqueUser('gonly').email;
    const session = await googleSignIn({
      client: server.client,
      body: { credential: google.mint({ sub: newSub(), email }) },
      throwOnError: true,
    });
    const env = { RST_TOKEN: session.data.access_token };
    const whoami = await run(['whoami'], { env });
    expect(whoami.code, whoami.stderr).to.equal(0);
    expect(whoami.stdout)
      .to.match(/^sign-in +google$/m)
      .and.match(/^google +linked \(cannot be unlinked/m);
    const result = await run(['google', 'unlink'], { env });
    expect(result.code).to.equal(1);
    expect(result.stderr).to.include('(password_required)');
  });

  describe('on a terminal', () => {
    const onTerminal = (
      args: string[],
      steps: [prompt: string, keys: string, pauseMs?: number][],
      extraEnv: Record<string, string> = {},
    ) =>
      onTerminalOf(
        args,
        { PATH: process.env.PATH ?? '', HOME: home, XDG_CONFIG_HOME: config, RST_URL: server.url, ...extraEnv },
        steps,
      );

    it('prompts for the password without echoing it', async () => {
      const user = await registeredUser(server, 'tty');
      const { code, screen } = await onTerminal(['login', '-u', user.username], [['Password: ', `${user.password}\r`]]);
      expect(code, screen).to.equal(0);
      expect(screen).to.include('Password: ');
      expect(screen).not.to.include(user.password);
      expect(readProfile().token).to.be.a('string');
    });

    it('asks for a new password twice and refuses two different ones (exit 2)', async () => {
      const user = uniqueUser('tty2');
      const { code, screen } = await onTerminal(
        ['register', '-u', user.username, '-e', user.email],
        [
          ['Password: ', `${user.password}\r`],
          ['Password (again): ', `${user.password}x\r`],
        ],
      );
      expect(code, screen).to.equal(2);
      expect(screen).to.include('the two passwords differ');
      expect(screen).not.to.include(user.password);
    });

    it('asks for the recovery token at a hidden prompt, then the new password twice', async () => {
      const user = await registeredUser(server, 'ttytok');
      await run(['forgot-password', '--email', user.email]);
      const token = /recovery token: (\S+)/.exec((await server.consoleMail(user.email, 2)).text)![1]!;
      const newPassword = `${user.password} typed`;
      const { code, screen } = await onTerminal(
        ['reset-password'],
        [
          ['Recovery token: ', `${token}\r`],
          ['New password: ', `${newPassword}\r`],
          ['New password (again): ', `${newPassword}\r`],
        ],
      );
      expect(code, screen).to.equal(0);
      expect(screen).not.to.include(token);
      expect(screen).not.to.include('warning');
      expect((await run(['login', '-u', user.username, '--password-stdin'], { input: newPassword })).code).to.equal(0);
    });

    it('starts the request timeout after the prompts, not before', async () => {
      const user = await registeredUser(server, 'ttyslow');
      const { code, screen } = await onTerminal(
        ['login', '-u', user.username],
        [['Password: ', `${user.password}\r`, 2500]],
        { RST_TIMEOUT: '1' },
      );
      expect(code, screen).to.equal(0);
      expect(readProfile().token).to.be.a('string');
    });

    it('exits 130 on Ctrl-C at the prompt', async () => {
      const { code } = await onTerminal(['login', '-u', 'someone'], [['Password: ', 'abc\u0003']]);
      expect(code).to.equal(130);
    });
  });
});

// The self-service commands of the rst CLI: password change, email change and verify, google
// link, account delete (with its typed confirmation), run as child processes against a real
// server, with the re-authentication read from stdin, a file or a terminal prompt.
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getAccount, googleSignIn, login } from '../generated/sdk.gen.ts';
import { onTerminal, runCli } from './support/cli.ts';
import { DB_LABEL } from './support/database.ts';
import { type GoogleFake, newSub, startGoogleFake } from './support/google.ts';
import { changeCodeFrom } from './support/mail.ts';
import { startServer, type TestServer } from './support/server.ts';
import { registeredUser, uniqueUser } from './support/users.ts';

describe(`rst self-service commands (${DB_LABEL})`, function () {
  // Each command is a fresh Node process on a shared 2-core machine.
  this.timeout(120_000);
  let server: TestServer;
  let google: GoogleFake;
  let home: string;
  before(async () => {
    google = await startGoogleFake();
    server = await startServer({ env: { GOOGLE_CLIENT_ID: google.audience, GOOGLE_CERTS_URL: google.certsUrl } });
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'rst-cli-self-'));
  });
  after(async () => {
    await server?.stop();
    await google?.stop();
    if (home) fs.rmSync(home, { recursive: true, force: true });
  });

  const envFor = (token?: string): Record<string, string> => ({
    PATH: process.env.PATH ?? '',
    HOME: home,
    XDG_CONFIG_HOME: fs.mkdtempSync(path.join(home, 'config-')),
    RST_URL: server.url,
    ...(token ? { RST_TOKEN: token } : {}),
  });
  const alive = async (token: string) => (await getAccount({ client: server.as(token) })).response!.status === 200;

  it('rst password change reads the current and the new password as two lines of stdin', async () => {
    const user = await registeredUser(server, 'clipw');
    const next = 'a brand new cli passphrase';
    const one = await runCli(['password', 'change', '--password-stdin'], envFor(user.token), `${user.password}\n`);
    expect(one.code).to.equal(2);
    const wrong = await runCli(['password', 'change', '--password-stdin'], envFor(user.token), `nope\n${next}\n`);
    expect(wrong.code).to.equal(1);
    expect(wrong.stderr).to.include('(reauthentication_failed)');
    const ok = await runCli(
      ['password', 'change', '--password-stdin'],
      envFor(user.token),
      `${user.password}\n${next}\n`,
    );
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.include('Password changed');
    const signIn = await login({ client: server.client, body: { username: user.username, password: next } });
    expect(signIn.response!.status).to.equal(200);
  });

  it('rst email change, then rst email verify with the code as an argument or on stdin', async () => {
    for (const viaStdin of [false, true]) {
      const user = await registeredUser(server, 'cliem');
      const address = uniqueUser('climoved').email;
      const env = envFor(user.token);
      const started = await runCli(['email', 'change', '--email', address, '--password-stdin'], env, user.password);
      expect(started.code, started.stderr).to.equal(0);
      expect(started.stdout).to.include('rst email verify CODE');
      const code = changeCodeFrom(await server.consoleMail(address));
      const verified = viaStdin
        ? await runCli(['email', 'verify'], env, `${code}\n`)
        : await runCli(['email', 'verify', code], env);
      expect(verified.code, verified.stderr).to.equal(0);
      expect(verified.stdout).to.include(`Email changed to ${address} (verified)`);
    }
  });

  it('rst google link reads the ID token from a file, and refuses stdin for both secrets', async () => {
    const user = await registeredUser(server, 'cligl');
    const file = path.join(home, `token-${user.username}`);
    fs.writeFileSync(file, `${google.mint({ sub: newSub(), email: 'someone.else@gmail.com' })}\n`);
    const both = await runCli(['google', 'link', '--token-file', '-', '--password-stdin'], envFor(user.token), 'x');
    expect(both.code).to.equal(2);
    const linked = await runCli(
      ['google', 'link', '--token-file', file, '--password-stdin', '--json'],
      envFor(user.token),
      user.password,
    );
    expect(linked.code, linked.stderr).to.equal(0);
    expect(JSON.parse(linked.stdout)).to.include({ id: user.id, google_linked: true });
  });

  it('rst account delete: --yes only with --confirm USERNAME, and a wrong one deletes nothing', async () => {
    const user = await registeredUser(server, 'clidel');
    const env = envFor(user.token);
    const refusals = [
      ['account', 'delete', '--yes', '--password-stdin'],
      ['account', 'delete', '--confirm', user.username, '--password-stdin'],
      ['account', 'delete', '--yes', '--confirm', `${user.username}x`, '--password-stdin'],
      ['account', 'delete', '--password-stdin'], // no terminal to type the username on
    ];
    for (const args of refusals) {
      const { code, stderr } = await runCli(args, env, user.password);
      expect(code, args.join(' ')).to.equal(2);
      expect(stderr).to.match(/^error: /);
    }
    expect(await alive(user.token)).to.equal(true);

    const deleted = await runCli(
      ['account', 'delete', '--yes', '--confirm', user.username, '--password-stdin'],
      env,
      user.password,
    );
    expect(deleted.code, deleted.stderr).to.equal(0);
    expect(deleted.stdout).to.include(`Account ${user.username} deleted`);
    expect(await alive(user.token)).to.equal(false);
  });

  it('rst account delete of a Google-only account needs --google-token-file', async () => {
    const identity = { sub: newSub(), email: uniqueUser('cligo').email };
    const { data } = await googleSignIn({
      client: server.client,
      body: { credential: google.mint(identity) },
      throwOnError: true,
    });
    const env = envFor(data.access_token);
    const username = (await getAccount({ client: server.as(data.access_token), throwOnError: true })).data.username;
    const noToken = await runCli(['account', 'delete', '--yes', '--confirm', username], env);
    expect(noToken.code).to.equal(2);
    expect(noToken.stderr).to.include('--google-token-file');
    const ok = await runCli(
      ['account', 'delete', '--yes', '--confirm', username, '--google-token-file', '-'],
      env,
      google.mint(identity),
    );
    expect(ok.code, ok.stderr).to.equal(0);
    expect(await alive(data.access_token)).to.equal(false);
  });

  it('on a terminal, asks to type the username, then the password without echoing it', async () => {
    const user = await registeredUser(server, 'clitty');
    const env = envFor(user.token);
    const wrong = await onTerminal(['account', 'delete'], env, [['to confirm: ', 'someone else\r']]);
    expect(wrong.code, wrong.screen).to.equal(2);
    expect(await alive(user.token)).to.equal(true);

    const { code, screen } = await onTerminal(['account', 'delete'], env, [
      ['to confirm: ', `${user.username}\r`],
      ['Password: ', `${user.password}\r`],
    ]);
    expect(code, screen).to.equal(0);
    expect(screen).not.to.include(user.password);
    expect(await alive(user.token)).to.equal(false);
  });
});

// The published packages as a consumer gets them. Nothing from the repo is used but the two
// tarballs `npm run pack` writes: in a temporary folder outside the repo, with the machine's own
// Node and npm (not the project's pinned Node 24 in node_modules/.bin), the SDK is installed into
// a consumer project and the CLI globally (into a temporary prefix), and both are driven against
// the server `npm start` runs (dist/server.js) on a fresh PGlite folder:
//   (a) a plain ESM script walks register → verify (code from the console mail) → login → key →
//       account with the key;
//   (b) `tsc --noEmit` type-checks a consumer .ts file and the README's SDK examples against the
//       published .d.ts alone, and refuses a file with a wrong field and a wrong problem code;
//   (c) the installed `rst` binary walks the same way.
// It runs once, on PGlite: the packages do not depend on the database the server uses.
import { expect } from 'chai';
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ON_POSTGRES } from './support/database.ts';
import { ROOT, startServer, type TestServer } from './support/server.ts';
import { uniqueUser } from './support/users.ts';

const FIXTURES = path.join(ROOT, 'test', 'consumer');
const version = (pkg: string) =>
  (JSON.parse(fs.readFileSync(path.join(ROOT, pkg, 'package.json'), 'utf8')) as { version: string }).version;

interface SystemNode {
  node: string;
  npm: string;
  version: string;
}

/** The first node (with an npm beside it) on PATH, or in /usr/local/bin or /usr/bin, that is not in
 * a node_modules folder: the machine's own, which a consumer has, not the project's pinned one. */
function findSystemNode(): SystemNode {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/bin', '/usr/bin'];
  for (const dir of dirs) {
    if (!dir || !path.isAbsolute(dir)) continue;
    const node = path.join(dir, 'node');
    const npm = path.join(dir, 'npm');
    if (!fs.existsSync(node) || !fs.existsSync(npm)) continue;
    if ([dir, fs.realpathSync(node)].some((p) => p.split(path.sep).includes('node_modules'))) continue;
    return { node, npm, version: execFileSync(node, ['--version'], { encoding: 'utf8' }).trim() };
  }
  throw new Error(
    'the consumer test needs a Node.js (with npm) installed outside node_modules, e.g. /usr/bin/node; none was found on PATH',
  );
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

if (!ON_POSTGRES)
  describe('the packed @rst-auth/sdk and @rst-auth/cli, installed from their tarballs', function () {
    // npm installs and four Node processes on a shared 2-core machine.
    this.timeout(120_000);
    let system: SystemNode;
    let work: string;
    let project: string;
    let prefix: string;
    let server: TestServer;
    let sdkTarball: string;
    let cliTarball: string;
    let env: NodeJS.ProcessEnv;

    /** Runs a command as a consumer would: the machine's Node first on PATH, no node_modules/.bin, no
     * npm_* variables from a surrounding npm script. `answer` is called once for each stdout chunk
     * until it returns a line to type. */
    const run = (
      command: string,
      args: string[],
      opts: {
        cwd?: string;
        input?: string;
        env?: NodeJS.ProcessEnv;
        answer?: (stdout: string) => Promise<string> | undefined;
      } = {},
    ): Promise<Run> =>
      new Promise((resolve, reject) => {
        const child = spawn(command, args, { cwd: opts.cwd ?? project, env: { ...env, ...opts.env } });
        let stdout = '';
        let stderr = '';
        let answering = false;
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString('utf8');
          const pending = answering || !opts.answer ? undefined : opts.answer(stdout);
          if (pending) {
            answering = true;
            pending.then(
              (line) => child.stdin.end(`${line}\n`),
              (err: Error) => {
                stderr += `the test could not answer: ${err.message}\n`;
                child.kill();
              },
            );
          }
        });
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
        child.on('error', reject);
        // A command that never reads stdin (sh -c, --help) may exit before it is written: EPIPE
        // then, which is no failure of the command.
        child.stdin.on('error', () => {});
        child.on('close', (code) => resolve({ code, stdout, stderr }));
        if (!opts.answer) child.stdin.end(opts.input ?? '');
      });

    const codeFrom = async (email: string) => /code is: (\d{6})/.exec((await server.consoleMail(email)).text)![1]!;

    before(async function () {
      this.timeout(300_000);
      system = findSystemNode();
      // A consumer's Node: the oldest the packages promise (engines: >=20), not the project's 24.
      expect(Number(/^v(\d+)/.exec(system.version)![1]), `${system.node} is ${system.version}`).to.be.below(24);

      await promisify(execFile)(process.execPath, [path.join(ROOT, 'scripts', 'pack.ts')], { cwd: ROOT });
      const packages = path.join(ROOT, 'dist', 'packages');
      sdkTarball = path.join(packages, `rst-auth-sdk-${version('sdk')}.tgz`);
      cliTarball = path.join(packages, `rst-auth-cli-${version('cli')}.tgz`);

      work = fs.mkdtempSync(path.join(os.tmpdir(), 'rst-consumer-'));
      project = path.join(work, 'app');
      prefix = path.join(work, 'global');
      fs.mkdirSync(project);
      fs.writeFileSync(
        path.join(project, 'package.json'),
        `${JSON.stringify({ name: 'consumer', private: true, type: 'module' })}\n`,
      );
      env = Object.fromEntries(
        Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name) && name !== 'NODE_OPTIONS'),
      );
      env.PATH = [
        path.join(prefix, 'bin'),
        path.dirname(system.node),
        ...(process.env.PATH ?? '')
          .split(path.delimiter)
          .filter((d) => d && !d.split(path.sep).includes('node_modules')),
      ].join(path.delimiter);
      env.XDG_CONFIG_HOME = path.join(work, 'config');

      const npm = (args: string[]) => run(system.npm, [...args, '--no-audit', '--no-fund', '--loglevel=error']);
      // The commands of the README's "Use the SDK" and "Install the CLI" (typescript: for the check).
      const installs = await Promise.all([
        npm(['install', sdkTarball, 'typescript@^6']),
        npm(['install', '-g', '--prefix', prefix, sdkTarball, cliTarball]),
      ]);
      for (const i of installs) expect(i.code, i.stderr).to.equal(0);

      await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: ROOT });
      server = await startServer({ entry: 'dist/server.js' });
    });

    after(async () => {
      await server?.stop();
      if (work) fs.rmSync(work, { recursive: true, force: true });
    });

    it('installs the SDK with no dependencies and the CLI with only the SDK and commander', () => {
      const installed = (dir: string) =>
        fs
          .readdirSync(dir)
          .filter((n) => !n.startsWith('.'))
          .flatMap((n) => (n.startsWith('@') ? fs.readdirSync(path.join(dir, n)).map((m) => `${n}/${m}`) : [n]))
          .sort();
      expect(installed(path.join(project, 'node_modules'))).to.deep.equal(['@rst-auth/sdk', 'typescript']);
      const globalModules = path.join(prefix, 'lib', 'node_modules');
      const cliDir = path.join(globalModules, '@rst-auth', 'cli');
      const everything = [
        ...installed(globalModules),
        ...(fs.existsSync(path.join(cliDir, 'node_modules')) ? installed(path.join(cliDir, 'node_modules')) : []),
      ].sort();
      expect(everything).to.deep.equal(['@rst-auth/cli', '@rst-auth/sdk', 'commander']);
      const manifest = (dir: string) =>
        JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
      expect(manifest(path.join(project, 'node_modules', '@rst-auth', 'sdk'))).to.not.have.property('dependencies');
      expect(Object.keys(manifest(cliDir).dependencies as object).sort()).to.deep.equal(['@rst-auth/sdk', 'commander']);
    });

    it('is installed with the commands the README gives', () => {
      const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
      const [sdk, cli] = [path.basename(sdkTarball), path.basename(cliTarball)];
      expect(readme).to.include(`npm install /path/to/rst-auth/dist/packages/${sdk}`);
      expect(readme).to.include(`npm install -g dist/packages/${sdk} dist/packages/${cli}`);
    });

    it('(a) runs a plain ESM script through the whole walk on the machine’s Node', async () => {
      const user = uniqueUser('esm');
      fs.copyFileSync(path.join(FIXTURES, 'walk.mjs'), path.join(project, 'walk.mjs'));
      const result = await run(system.node, ['walk.mjs', server.url, user.username, user.email, user.password], {
        answer: (stdout) => (/^registered /m.test(stdout) ? codeFrom(user.email) : undefined),
      });
      expect(result.stderr).to.equal('');
      expect(result.code).to.equal(0);
      expect(result.stdout.split('\n')).to.include.members([
        `node ${system.version}`,
        `registered ${user.username} verified=false`,
        `verified ${user.email} verified=true`,
        'refused 401 invalid_credentials',
        `account ${user.username} ${user.email} plan=free`,
      ]);
      expect(result.stdout).to.match(/^logged in bearer expires_in=\d+$/m);
      expect(result.stdout).to.match(/^key rst_[0-9A-Za-z]{8} true$/m);
    });

    it('(b) type-checks a consumer file and the README examples, and refuses a wrong field or problem code', async () => {
      for (const name of ['consumer.ts', 'wrong.ts', 'tsconfig.json'])
        fs.copyFileSync(path.join(FIXTURES, name), path.join(project, name));
      const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
      const section = /^### Use the SDK\n([\s\S]*?)(?=^#{1,3} )/m.exec(readme)?.[1] ?? '';
      const examples = [...section.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
      expect(examples, 'TypeScript examples in the README').to.have.length.of.at.least(2);
      const exampleFiles = examples.map((code, i) => {
        const name = `readme-${i + 1}.ts`;
        fs.writeFileSync(path.join(project, name), code);
        return name;
      });
      const tsc = (files: string[]) => {
        const config = `tsconfig.${files[0]!.replace(/\W/g, '-')}.json`;
        fs.writeFileSync(path.join(project, config), JSON.stringify({ extends: './tsconfig.json', files }));
        return run(system.node, [path.join('node_modules', 'typescript', 'bin', 'tsc'), '-p', config]);
      };

      const good = await tsc(['consumer.ts', ...exampleFiles]);
      expect(good.stdout + good.stderr).to.equal('');
      expect(good.code).to.equal(0);

      const wrong = await tsc(['wrong.ts']);
      expect(wrong.code).to.equal(2);
      const expected = fs
        .readFileSync(path.join(FIXTURES, 'wrong.ts'), 'utf8')
        .split('\n')
        .flatMap((line, i) => {
          const m = /\/\/ expect (TS\d+)/.exec(line);
          return m ? [`wrong.ts:${i + 1} ${m[1]}`] : [];
        });
      const reported = [...wrong.stdout.matchAll(/^wrong\.ts\((\d+),\d+\): error (TS\d+)/gm)].map(
        (m) => `wrong.ts:${m[1]} ${m[2]}`,
      );
      expect(expected).to.have.length(5);
      expect(reported, wrong.stdout).to.deep.equal(expected);
    });

    it('(c) runs the installed rst binary through the same walk', async () => {
      const user = uniqueUser('bin');
      const rst = path.join(prefix, 'bin', 'rst');
      const resolvedNode = await run('sh', ['-c', 'command -v node']);
      expect(resolvedNode.stdout.trim(), 'the node that #!/usr/bin/env node finds').to.equal(system.node);
      const cli = (args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}) =>
        run(rst, ['--url', server.url, ...args], { cwd: work, ...opts });

      const help = await run('rst', ['--help'], { cwd: work });
      expect(help.code).to.equal(0);
      expect(help.stdout)
        .to.include('Usage: rst')
        .and.match(/^ +register /m)
        .and.match(/^ +keys /m);
      const versionRun = await run('rst', ['--version'], { cwd: work });
      expect(versionRun.stdout.trim()).to.equal(version('cli'));

      const registered = await cli(
        ['register', '--username', user.username, '--email', user.email, '--password-stdin'],
        {
          input: `${user.password}\n`,
        },
      );
      expect(registered.code, registered.stderr).to.equal(0);
      expect(registered.stdout).to.include(`Registered ${user.username} <${user.email}>`);
      const verified = await cli(['verify-email', '--email', user.email, '--code', await codeFrom(user.email)]);
      expect(verified.code, verified.stderr).to.equal(0);

      const wrongLogin = await cli(['login', '--username', user.username, '--password-stdin'], {
        input: 'nope nope\n',
      });
      expect(wrongLogin.code).to.equal(1);
      expect(wrongLogin.stderr).to.include('(invalid_credentials)');
      const login = await cli(['login', '--username', user.username, '--password-stdin'], {
        input: `${user.password}\n`,
      });
      expect(login.code, login.stderr).to.equal(0);
      expect(fs.existsSync(path.join(work, 'config', 'rst', 'profile.json'))).to.equal(true);

      const whoami = await cli(['whoami']);
      expect(whoami.code, whoami.stderr).to.equal(0);
      expect(whoami.stdout).to.include(user.username).and.include(user.email);

      const created = await cli(['--json', 'keys', 'create', 'consumer ci']);
      expect(created.code, created.stderr).to.equal(0);
      const key = JSON.parse(created.stdout) as { id: string; raw_key: string; prefix: string };
      expect(key.raw_key).to.match(/^rst_/);
      const listed = await cli(['keys', 'list']);
      expect(listed.code, listed.stderr).to.equal(0);
      expect(listed.stdout).to.include(key.prefix).and.include('consumer ci');

      const withKey = await cli(['whoami'], { env: { RST_API_KEY: key.raw_key } });
      expect(withKey.code, withKey.stderr).to.equal(0);
      expect(withKey.stdout).to.include(user.username);

      const revoked = await cli(['keys', 'revoke', key.id]);
      expect(revoked.code, revoked.stderr).to.equal(0);
      const refused = await cli(['whoami'], { env: { RST_API_KEY: key.raw_key } });
      expect(refused.code).to.equal(1);
      expect(refused.stderr).to.include('(unauthorized)');
      expect(refused.stderr).to.not.match(/^\s+at /m);
    });
  });

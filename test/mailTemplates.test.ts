// The mails carry the product's name (APP_NAME) and come from templates an operator may replace
// (MAIL_TEMPLATES_DIR): one .txt (Subject line, blank line, body) and one .html per message. The
// built-in ones pass a strict HTML check and a plain-text one; a replaced one that lacks a
// required placeholder, uses an unknown one, or is misnamed stops start-up with the file named.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ConfigError } from '../config.ts';
import type { MailKind, MailRow } from '../db/outbox.ts';
import { DEFAULT_TEMPLATES_DIR, loadMailTemplates, MAIL_KINDS } from '../lib/mail.ts';
import { register } from '../generated/sdk.gen.ts';
import { DB_LABEL } from './support/database.ts';
import { htmlProblems, textProblems } from './support/html.ts';
import { ROOT, startServer, TEST_ENV } from './support/server.ts';
import { uniqueUser } from './support/users.ts';

const APP = { appName: 'rst auth', appUrl: 'https://accounts.example.test' };
const KINDS = Object.keys(MAIL_KINDS) as MailKind[];

const row = (kind: MailKind, username = 'ada_lovelace'): MailRow =>
  ({
    id: 1,
    kind,
    recipient: 'ada@example.test',
    payload: { username },
    secret: kind === 'verify_email' ? '123456' : 'EpRKTCrYMzcAenl9h7K-G69CBY-ZRteRyZmwT7HYG4g',
    attempts: 0,
  }) as unknown as MailRow;

/** A MAIL_TEMPLATES_DIR holding these files. */
function templatesDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rst-templates-'));
  for (const [name, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), body);
  return dir;
}

const problemsOf = (mailTemplatesDir: string): string[] => {
  try {
    loadMailTemplates({ ...APP, mailTemplatesDir });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
};

const defaultFile = (name: string) => fs.readFileSync(path.join(DEFAULT_TEMPLATES_DIR, name), 'utf8');

describe('mail templates', () => {
  it('has one built-in .txt and .html per kind of message, and nothing else', () => {
    expect(fs.readdirSync(DEFAULT_TEMPLATES_DIR).sort()).to.deep.equal(
      KINDS.flatMap((k) => [`${k}.html`, `${k}.txt`]).sort(),
    );
  });

  for (const kind of KINDS) {
    it(`renders ${kind} as well-formed HTML with lang and no external resource, and as plain text`, () => {
      const mail = loadMailTemplates(APP).render(row(kind));
      expect(htmlProblems(mail.html)).to.deep.equal([]);
      expect(textProblems(mail.text)).to.deep.equal([]);
      expect(mail.subject)
        .to.include('rst auth')
        .and.not.match(/[\r\n]/);
      expect(mail.html).to.not.match(/\{\{|\}\}/);
      expect(mail.text)
        .to.include('rst auth')
        .and.not.match(/\{\{|\}\}/);
    });
  }

  it('checks HTML strictly enough to fail: the checks catch what they look for', () => {
    const good = loadMailTemplates(APP).render(row('verify_email')).html;
    const broken = {
      'an unclosed element': good.replace('</p>', ''),
      'misnested elements': good.replace('<p>Hello', '<p><b>Hello').replace('</p>', '</p></b>'),
      'no lang': good.replace(' lang="en"', ''),
      'an unquoted attribute': good.replace('lang="en"', 'lang=en'),
      'a bare ampersand': good.replace('Hello', 'Hello & welcome'),
      'an image': good.replace('<p>Hello', '<p><img alt="" src="https://tracker.example/p.gif">Hello'),
      'a remote style': good.replace('style="', 'style="background:url(https://x.example/a.png);'),
      'no doctype': good.replace(/^<!doctype html>\n/, ''),
    };
    for (const [what, html] of Object.entries(broken)) expect(htmlProblems(html), what).to.not.be.empty;
    expect(textProblems('Hello <b>you</b>\n')).to.not.be.empty;
    expect(textProblems(`${'x'.repeat(79)}\n`)).to.not.be.empty;
  });

  it('puts APP_NAME in subjects and bodies, escaped in HTML and kept on one line in the subject', () => {
    const templates = loadMailTemplates({ ...APP, appName: 'Smith & <Co>' });
    for (const kind of KINDS) {
      const mail = templates.render(row(kind));
      expect(mail.subject).to.include('Smith & <Co>');
      expect(mail.text).to.include('Smith & <Co>');
      expect(mail.html).to.include('Smith &#38; &#60;Co&#62;').and.not.include('<Co>');
      expect(htmlProblems(mail.html)).to.deep.equal([]);
    }
  });

  it('escapes every value in HTML: a username cannot add markup', () => {
    const mail = loadMailTemplates(APP).render(row('reset_password', '<script>x</script>'));
    expect(mail.html).to.not.include('<script>');
    expect(htmlProblems(mail.html)).to.deep.equal([]);
  });

  it('uses a replaced template, and the built-in one for every file not replaced', () => {
    const dir = templatesDir({
      'verify_email.txt': 'Subject: {{app_name}}: confirm your address\n\nHi {{username}}! Code: {{code}}\n',
    });
    const templates = loadMailTemplates({ ...APP, appName: 'Acme ID', mailTemplatesDir: dir });
    const mail = templates.render(row('verify_email'));
    expect(mail.subject).to.equal('Acme ID: confirm your address');
    expect(mail.text).to.equal('Hi ada_lovelace! Code: 123456\n');
    expect(mail.html).to.include('Your Acme ID verification code is:');
    expect(templates.render(row('reset_password')).subject).to.equal('Reset your Acme ID password');
    fs.rmSync(dir, { recursive: true });
  });

  it('refuses a template without a required placeholder, naming the file and the placeholder', () => {
    const dir = templatesDir({
      'verify_email.html': defaultFile('verify_email.html').replace('{{code}}', 'soon'),
      'reset_password.txt': defaultFile('reset_password.txt').replace('{{token}}', ''),
    });
    expect(problemsOf(dir)).to.deep.equal([
      `MAIL_TEMPLATES_DIR: ${path.join(dir, 'verify_email.html')} lacks the placeholder {{code}}`,
      `MAIL_TEMPLATES_DIR: ${path.join(dir, 'reset_password.txt')} lacks the placeholder {{token}}`,
    ]);
    fs.rmSync(dir, { recursive: true });
  });

  it('refuses an unknown placeholder, a misnamed file and a text template without its Subject line', () => {
    const dir = templatesDir({
      'verify_email.txt': defaultFile('verify_email.txt').replace('{{username}}', '{{user_name}}'),
      'reset-password.html': '<p>typo</p>',
      'reset_password.txt': 'Reset it: {{link}} {{token}}\n',
      'notes.md': 'not a template: ignored',
    });
    const problems = problemsOf(dir);
    expect(problems).to.have.length(3);
    expect(problems[0]).to.equal(
      `MAIL_TEMPLATES_DIR: ${path.join(dir, 'reset-password.html')} is not a template (expected ${KINDS.flatMap((k) => [`${k}.txt`, `${k}.html`]).join(', ')})`,
    );
    expect(problems[1]).to.match(
      /verify_email\.txt uses an unknown placeholder \{\{user_name\}\} \(known: \{\{app_name\}\}/,
    );
    expect(problems[2]).to.include(`${path.join(dir, 'reset_password.txt')} must start with a "Subject: …" line`);
    fs.rmSync(dir, { recursive: true });
  });
});

describe(`mail templates at start-up (${DB_LABEL})`, () => {
  it('stops start-up with exit status 2 and the file and placeholder named', async function () {
    this.timeout(30_000);
    const dir = templatesDir({ 'verify_email.txt': 'Subject: Hello\n\nNo code here.\n' });
    const child = spawn(process.execPath, [path.join(ROOT, 'server.ts')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...TEST_ENV, PORT: '0', DATA_DIR: dir, MAIL_TEMPLATES_DIR: dir },
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).to.equal(2);
    expect(stderr.trim().split('\n')).to.deep.equal([
      `rst auth: configuration error: MAIL_TEMPLATES_DIR: ${path.join(dir, 'verify_email.txt')} lacks the placeholder {{code}}`,
    ]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('sends mail from the replaced templates with APP_NAME, and titles the docs page with it', async function () {
    this.timeout(30_000);
    const dir = templatesDir({
      'verify_email.txt':
        'Subject: Welcome to {{app_name}}\n\n{{app_name}} code for {{username}}: your verification code is: {{code}}\n',
    });
    const server = await startServer({ env: { APP_NAME: 'Acme ID', MAIL_TEMPLATES_DIR: dir } });
    try {
      const user = uniqueUser('brand');
      await register({ client: server.client, body: user, throwOnError: true });
      const mail = await server.consoleMail(user.email);
      expect(mail.subject).to.equal('Welcome to Acme ID');
      expect(mail.text).to.match(
        new RegExp(`^Acme ID code for ${user.username}: your verification code is: \\d{6}$`, 'm'),
      );
      const docs = await (await fetch(`${server.url}/docs`)).text();
      expect(docs).to.include('<title>Acme ID API</title>');
    } finally {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

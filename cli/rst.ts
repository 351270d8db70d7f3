#!/usr/bin/env node
// rst: the command-line client of rst auth, built only on @rst-auth/sdk.
// Exit codes: 0 ok, 1 the server refused (a problem answer) or could not be reached (or the
// profile could not be written), 2 usage error, 130 Ctrl-C at a password prompt.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { DEFAULT_URL, VERSION } from './api.ts';
import * as commands from './commands.ts';
import * as selfService from './selfService.ts';
import { CliError, EXIT_REFUSED, EXIT_USAGE } from './exit.ts';

const program = new Command('rst');
// Set before any subcommand is added: subcommands inherit these settings when created.
program
  // Commander would exit 1 on its own usage errors; we map them to 2 in report().
  .exitOverride()
  .configureHelp({ showGlobalOptions: true })
  .showHelpAfterError('(add --help for usage)')
  .description('Command-line client of rst auth: accounts, sessions and API keys.')
  .version(VERSION, '-V, --version', 'print the version')
  .helpOption('-h, --help', 'show help')
  .option('--url <url>', `server URL (else RST_URL, else the stored profile, else ${DEFAULT_URL})`)
  .option('--json', "print the API's JSON instead of a summary")
  .addHelpText(
    'after',
    `
Credentials: RST_TOKEN (a JWT) or RST_API_KEY (an rst_ key) from the environment, else the
session stored by \`rst login\` in $XDG_CONFIG_HOME/rst/profile.json (~/.config/rst/profile.json),
which renews itself while in use.
RST_TIMEOUT: seconds one request may take once sent (default 30).
Exit codes: 0 ok, 1 refused by the server or server unreachable, 2 usage error, 130 interrupted.`,
  );

/** Wraps an action: commander passes positional arguments, then the options, then the command. */
function action<A extends unknown[], O>(fn: (...args: [...A, O]) => Promise<void>) {
  return (...args: unknown[]) => {
    const cmd = args.at(-1) as Command;
    const positional = args.slice(0, cmd.registeredArguments.length) as A;
    return fn(...positional, cmd.optsWithGlobals() as O);
  };
}

const passwordStdin = [
  '--password-stdin',
  'read the password from stdin (else a prompt on the terminal; never from the command line)',
] as const;

program
  .command('register')
  .description('create an account; a verification code is emailed')
  .requiredOption('-u, --username <username>', '3–32 of A-Za-z0-9_.-, starting with a letter or digit')
  .requiredOption('-e, --email <email>', 'email address')
  .option(...passwordStdin)
  .addHelpText('after', '\nExample:\n  rst register --username ada --email ada@example.com')
  .action(action(commands.registerCommand));

program
  .command('verify-email')
  .description('confirm an email address with the six-digit code from the email')
  .requiredOption('-e, --email <email>', 'email address')
  .option('-c, --code <code>', 'the six-digit code (else asked for at a hidden prompt, or read from stdin)')
  .addHelpText(
    'after',
    '\nExamples:\n  rst verify-email --email ada@example.com\n  echo "$CODE" | rst verify-email --email ada@example.com',
  )
  .action(action(commands.verifyEmailCommand));

program
  .command('resend-verification')
  .description('email a fresh verification code (the answer is the same whether or not the account exists)')
  .requiredOption('-e, --email <email>', 'email address')
  .action(action(commands.resendVerificationCommand));

program
  .command('login')
  .description('sign in with a password and store the session token in the profile')
  .requiredOption('-u, --username <login>', 'username or email')
  .option(...passwordStdin)
  .addHelpText(
    'after',
    '\nExamples:\n  rst login --username ada\n  printf %s "$PASSWORD" | rst login --username ada --password-stdin',
  )
  .action(action(commands.loginCommand));

program
  .command('logout')
  .description('end this session on the server and forget it (--others: every other one, --all: every one)')
  .option('--all', 'end every session of the account, this one too')
  .option('--others', 'end every other session of the account and keep this one')
  .action(action(commands.logoutCommand));

program
  .command('whoami')
  .description('show the account: username, email, plan and its source, sign-in methods, Google link')
  .action(action(commands.whoamiCommand));

/** A whole number of days; the server checks the range, as for every other value. */
function days(value: string): number {
  if (!/^\d{1,4}$/.test(value)) throw new InvalidArgumentError('expected a whole number of days, such as 90');
  return Number(value);
}

const keys = program.command('keys').description('manage API keys (needs a session from rst login, not an API key)');
keys
  .command('create')
  .description('create an API key and print it, alone on stdout, this one time')
  .argument('<name>', 'a label to tell keys apart (1–64 characters)')
  .option(
    '--scope <scope>',
    'a scope for the product to read through introspection (repeat for several, up to 20)',
    (scope: string, scopes: string[] = []) => [...scopes, scope],
  )
  .option('--expires-in-days <days>', 'the key stops working after this many days (1–365); default: never', days)
  .addHelpText(
    'after',
    '\nExamples:\n  rst keys create ci > ci-key.txt\n  rst keys create deploy --scope deploy:write --expires-in-days 90 > deploy.key',
  )
  .action(action(commands.keysCreateCommand));
keys.command('list').description('list the active API keys, newest first').action(action(commands.keysListCommand));
keys
  .command('revoke')
  .description('revoke an API key; it stops working at once')
  .argument('<id>', 'the key id (from rst keys list)')
  .action(action(commands.keysRevokeCommand));

const sessions = program.command('sessions').description('see and end the sessions of the account');
sessions
  .command('list')
  .description('list the active sessions, newest first (* marks this one)')
  .action(action(commands.sessionsListCommand));
sessions
  .command('revoke')
  .description('end a session; its tokens are refused at once')
  .argument('<id>', 'the session id (from rst sessions list)')
  .action(action(commands.sessionsRevokeCommand));

const google = program.command('google').description('manage the Google sign-in link');
google
  .command('unlink')
  .description('unlink Google from the account (only when it has a password)')
  .action(action(commands.googleUnlinkCommand));
google
  .command('link')
  .description('link a Google account (any email) to this account; asks for the password')
  .requiredOption('--token-file <file>', 'the Google ID token, from a file, or - for stdin')
  .option('--nonce <nonce>', "the nonce the token was requested with (it must match the token's)")
  .option(...passwordStdin)
  .addHelpText('after', '\nExample:\n  gcloud auth print-identity-token | rst google link --token-file -')
  .action(action(selfService.googleLinkCommand));

const googleTokenFile = [
  '--google-token-file <file>',
  'for an account without a password: a Google ID token of its Google account, issued within 10 minutes (- for stdin)',
] as const;

const password = program.command('password').description('change the password');
password
  .command('change')
  .description('change the password (asks for the current one); every other session is signed out')
  .option('--password-stdin', 'read two lines from stdin: the current password, then the new one')
  .action(action(selfService.passwordChangeCommand));

const email = program.command('email').description("change the account's email");
email
  .command('change')
  .description('start an email change: a six-digit code goes to the new address')
  .requiredOption('-e, --email <email>', 'the new address')
  .option(...passwordStdin)
  .option(...googleTokenFile)
  .addHelpText('after', '\nExample:\n  rst email change --email ada@new.example.com')
  .action(action(selfService.emailChangeCommand));
email
  .command('verify')
  .description('confirm the email change with the code sent to the new address')
  .argument('[code]', 'the six-digit code (else read from a prompt that does not echo, or stdin)')
  .action(action(selfService.emailVerifyCommand));

const account = program.command('account').description('the account itself');
account
  .command('delete')
  .description('delete the account for good, with its sessions and API keys (asks to type the username)')
  .option('--yes', 'do not ask: needs --confirm USERNAME')
  .option('--confirm <username>', 'the username of the account, as the confirmation --yes needs')
  .option(...passwordStdin)
  .option(...googleTokenFile)
  .addHelpText(
    'after',
    '\nExample (a script):\n  printf %s "$PASSWORD" | rst account delete --yes --confirm ada --password-stdin',
  )
  .action(action(selfService.accountDeleteCommand));

program
  .command('forgot-password')
  .description('email a password recovery token (the answer is the same whether or not the account exists)')
  .requiredOption('-e, --email <email>', 'email address')
  .action(action(commands.forgotPasswordCommand));

program
  .command('reset-password')
  .description('set a new password with the recovery token from the email')
  .option('-t, --token <token>', "the recovery token (else asked for at a hidden prompt, or stdin's first line)")
  .option(...passwordStdin)
  .addHelpText(
    'after',
    '\nExamples:\n  rst reset-password\n  printf \'%s\\n%s\\n\' "$TOKEN" "$PASSWORD" | rst reset-password --password-stdin',
  )
  .action(action(commands.resetPasswordCommand));

function report(err: unknown): number {
  if (err instanceof CommanderError) {
    // Commander has already printed the help, the version or the usage error; help and version
    // end with 0, anything else it refuses (unknown option, missing argument…) is a usage error.
    return err.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (err instanceof CliError) {
    process.stderr.write(`error: ${err.message}\n${err.details.map((d) => `  ${d}\n`).join('')}`);
    return err.exitCode;
  }
  // A local failure (say, an unwritable profile folder): one line, never a stack trace.
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT_REFUSED;
}

// `rst keys list | head -1` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // exitCode rather than exit(): stdout may still be draining into a pipe.
  process.exitCode = report(err);
}

// A consumer's TypeScript that must NOT compile against the published types: each line marked
// `// expect TSxxxx` is an error tsc has to report, on that line and with that code, and no
// other error may appear. test/packages.test.ts checks exactly that.
import { createRstClient, RstProblem } from '@rst-auth/sdk';

const rst = createRstClient({ baseUrl: 'http://127.0.0.1:3000', token: 'a JWT' });
const account = await rst.getAccount();
console.log(account.user_name); // expect TS2551
await rst.createApiKey({ body: { title: 'ci' } }); // expect TS2353
await rst.revokeApiKey(); // expect TS2554

try {
  await rst.listApiKeys();
} catch (err) {
  if (err instanceof RstProblem) {
    switch (err.code) {
      case 'unauthorized':
        break;
      case 'account_locked': // expect TS2678
        break;
    }
    const seconds: string = err.retryAfter; // expect TS2322
    console.log(seconds);
  }
}

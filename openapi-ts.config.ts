import { defineConfig } from '@hey-api/openapi-ts';

// The SDK and the handler types both come from openapi.yaml; `npm run generate` rewrites generated/.
export default defineConfig({
  input: './openapi.yaml',
  output: { path: './generated', importFileExtension: '.ts' },
  plugins: ['@hey-api/client-fetch', '@hey-api/typescript', '@hey-api/sdk'],
});

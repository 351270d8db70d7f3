// What the service publishes about itself: the contract, served as the very document it routes
// by (/openapi.yaml, /openapi.json), and the interactive reference on it (/docs, http/docs.ts).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Document } from 'openapi-backend';
import YAML from 'yaml';
import { problem } from '../lib/problems.ts';
import { docs } from './docs.ts';
import type { Middleware } from './state.ts';

// openapi.yaml sits at the project root, one level above http/ (and dist/http/ after npm run build).
const SPEC_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'openapi.yaml');

export interface Spec {
  yaml: string;
  document: Document;
}

/** The contract, read once: routed by openapi-backend and served as-is at /openapi.{yaml,json}. */
export function loadSpec(): Spec {
  const yaml = fs.readFileSync(SPEC_PATH, 'utf8');
  return { yaml, document: YAML.parse(yaml) as Document };
}

export function published(spec: Spec, appName: string): Middleware {
  const specJson = JSON.stringify(spec.document);
  const docsPages = docs(appName);
  return (ctx, next) => {
    const p = ctx.path;
    if (p.startsWith('/docs')) return docsPages(ctx, next);
    if (p === '/openapi.yaml' || p === '/openapi.json') {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD')
        throw problem('method_not_allowed', { headers: { Allow: 'GET, HEAD' } });
      ctx.type = p === '/openapi.yaml' ? 'application/yaml' : 'application/json';
      ctx.body = p === '/openapi.yaml' ? spec.yaml : specJson;
      return;
    }
    return next();
  };
}

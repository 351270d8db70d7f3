// The string formats the contract uses, for ajv: the server's request validation and the tests'
// response checks agree on them. ajv-formats' `uuid` also takes `urn:uuid:…`, which PostgreSQL
// cannot read (22P02): an id in a path then answered 500. Ours is the canonical form only,
// upper or lower case (RFC 9562 §4 asks for case-insensitive input; PostgreSQL reads both).
import type { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { UUID } from '../db/accounts.ts';

export function addContractFormats(ajv: Ajv): Ajv {
  addFormats.default(ajv, ['email', 'date-time']);
  ajv.addFormat('uuid', UUID);
  return ajv;
}

// Why this process should not get traffic now, for GET /readyz: its migrations are not applied
// yet (MIGRATE_ON_START=false and nobody ran them), or it is shutting down (draining). A load
// balancer then stops sending it new requests while it finishes the ones it has.
export class Readiness {
  migrationsPending = false;
  shuttingDown = false;

  /** undefined when ready. */
  reason(): string | undefined {
    if (this.shuttingDown) return 'The server is shutting down.';
    if (this.migrationsPending) return 'Database migrations are pending: run `npm run migrate`.';
    return undefined;
  }
}

/**
 * The audit trail: one structured log line per token use (every access decision, granted or not),
 * marked `audit: true` so a log pipeline can route it apart. It names who asked for which
 * connection and what came of it; never the token.
 */
import type { Logger } from '../log.js';
import type { TokenUse } from '../tokens/events.js';

export const AUDIT_TOKEN_USE_EVENT = 'token.use';

/** The shape of an audit line's fields (beside pino's level, time, service and msg). */
export interface TokenUseAuditRecord {
  readonly audit: true;
  readonly event: typeof AUDIT_TOKEN_USE_EVENT;
  /** `<issuer>#<sub>` of the caller's JWT, or `managed:<objectId>` for the gateway itself. */
  readonly principal: string;
  readonly provider: string;
  readonly connection: string;
  /** null: the token endpoint. */
  readonly subgraph: string | null;
  /** `granted`, or the error code the caller got. */
  readonly outcome: string;
}

export interface AuditLog {
  tokenUse(use: TokenUse): void;
}

export function createAuditLog(logger: Logger): AuditLog {
  // An operator who turns the log down to warn still keeps the audit trail; only silent drops it.
  const audit =
    logger.level === 'silent' || logger.isLevelEnabled('info') ? logger : logger.child({}, { level: 'info' });
  return Object.freeze({
    tokenUse(use: TokenUse): void {
      const record: TokenUseAuditRecord = {
        audit: true,
        event: AUDIT_TOKEN_USE_EVENT,
        principal: use.principal,
        provider: use.providerId,
        connection: use.connectionId,
        subgraph: use.subgraph ?? null,
        outcome: use.outcome,
      };
      audit.info(record, 'token use');
    },
  });
}

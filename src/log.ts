/**
 * Structured JSON logs with secrets redacted by key wherever they sit in a logged object.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/**
 * Keys whose values never reach a log line, at any depth we log (pino redaction is path based).
 * Not `code`: it is how errors name themselves; OAuth authorization codes are never logged.
 */
const SECRET_KEYS = [
  'clientSecret',
  'client_secret',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'id_token',
  'codeVerifier',
  'code_verifier',
  'password',
  'authorization',
  'Authorization',
  'x-api-key',
  'apiKey',
  'apiKeys',
  'tokens',
  'key',
  'cookie',
  'set-cookie',
];

const REDACT_PATHS = SECRET_KEYS.flatMap((k) => {
  const prop = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
  const join = (prefix: string) => (prop.startsWith('[') ? `${prefix}${prop}` : `${prefix}.${prop}`);
  // Four levels: an error's cause or response (`err.response.headers.authorization`) sits that deep;
  // `req.headers.<k>` is one of the three-level paths.
  return [prop, join('*'), join('*.*'), join('*.*.*')];
});

const BASE = { service: 'credential-gateway' };

/** Where each logger made here writes, so that a sibling can write there too. */
const DESTINATIONS = new WeakMap<Logger, DestinationStream | undefined>();

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const logger = pino(
    {
      level,
      base: BASE,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
  DESTINATIONS.set(logger, destination);
  return logger;
}

/**
 * Same output and level, without redaction: for records built field by field from values that are
 * never secret (the audit trail, one line per token use). Path redaction costs about 60 µs a line
 * here; a hot path cannot pay that. A logger not made by `createLogger` is returned as it is.
 */
export function unredactedSibling(logger: Logger): Logger {
  if (!DESTINATIONS.has(logger)) return logger;
  return pino({ level: logger.level, base: BASE, timestamp: pino.stdTimeFunctions.isoTime }, DESTINATIONS.get(logger));
}

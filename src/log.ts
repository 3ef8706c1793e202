/**
 * Structured JSON logs with secrets redacted by key wherever they sit in a logged object.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

/** Keys whose values never reach a log line, at any depth we log (pino redaction is path based). */
const SECRET_KEYS = [
  'clientSecret',
  'client_secret',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'id_token',
  'code',
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
  return [prop.startsWith('[') ? prop : prop, join('*'), join('*.*'), join('req.headers'), join('*.headers')];
});

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'credential-gateway' },
      redact: { paths: [...new Set(REDACT_PATHS)], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/**
 * gateway/tokenPlan.ts: where a subgraph call's connection id is born. A binding and a caller make
 * one token request (principal, rendered connection id, delegated or not), or a refusal.
 */
import { describe, expect, it } from 'vitest';
import { isGatewayError } from '../../src/errors.js';
import { callerFromClaims } from '../../src/identity/caller.js';
import { requestFor } from '../../src/gateway/tokenPlan.js';
import {
  parseConnectionTemplate,
  type ConnectionTemplate,
  type SubgraphBinding,
} from '../../src/gateway/supergraphConfig.js';

const MANAGED_OBJECT_ID = 'credential-gateway';

function binding(connection: string, identity: 'jwt' | 'managed'): SubgraphBinding {
  const template = parseConnectionTemplate(connection, 'connection') as ConnectionTemplate;
  return { providerId: 'github-01', connection: template, identity, ignoreError: false, header: 'authorization' };
}

const alice = callerFromClaims({ iss: 'https://idp.example.com', sub: 'alice', oid: 'alice-oid' }, 'roles', 'corp');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isGatewayError(e) ? e.code : 'not a GatewayError';
  }
  return undefined;
}

describe('requestFor', () => {
  it('renders a claims template from the caller and marks the use delegated', () => {
    expect(requestFor(binding('{issuer}.{jwt.sub}', 'jwt'), alice, MANAGED_OBJECT_ID)).toEqual({
      providerId: 'github-01',
      connectionId: 'corp.alice',
      principal: { kind: 'caller', caller: alice },
      delegated: true,
    });
  });

  it('uses a fixed connection for a signed-in caller without delegation', () => {
    expect(requestFor(binding('shared-01', 'jwt'), alice, MANAGED_OBJECT_ID)).toMatchObject({
      connectionId: 'shared-01',
      principal: { kind: 'caller' },
      delegated: false,
    });
  });

  it('asks as the gateway itself for a managed binding, with or without a caller', () => {
    for (const caller of [alice, null]) {
      expect(requestFor(binding('shared-01', 'managed'), caller, MANAGED_OBJECT_ID)).toEqual({
        providerId: 'github-01',
        connectionId: 'shared-01',
        principal: { kind: 'managed', objectId: MANAGED_OBJECT_ID },
        delegated: false,
      });
    }
  });

  it('refuses a jwt binding without a caller with UNAUTHENTICATED', () => {
    expect(codeOf(() => requestFor(binding('{jwt.sub}', 'jwt'), null, MANAGED_OBJECT_ID))).toBe('UNAUTHENTICATED');
  });

  it('refuses a caller whose token lacks the template claims with ACCESS_DENIED', () => {
    expect(codeOf(() => requestFor(binding('user-{jwt.email}', 'jwt'), alice, MANAGED_OBJECT_ID))).toBe(
      'ACCESS_DENIED',
    );
  });
});

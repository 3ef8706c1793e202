/**
 * The local JWT issuer of the tests is the demo's (src/demo/jwtIssuer.ts, one implementation).
 *
 *   const idp = await startJwtIssuer();
 *   const token = await idp.sign({ sub: 'alice', oid: 'alice-oid', groups: ['g1'] });
 *   // config: { issuer: idp.issuer, audience: idp.audience, jwksUri: null, algorithms: [...] }
 *   await idp.close();
 */
export {
  DEFAULT_AUDIENCE as DEFAULT_TEST_AUDIENCE,
  startJwtIssuer,
  type JwtIssuer,
  type JwtIssuerOptions,
  type SignOptions,
} from '../../src/demo/jwtIssuer.js';

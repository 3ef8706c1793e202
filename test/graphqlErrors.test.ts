import { describe, expect, it } from 'vitest';
import { scrubVariableError } from '../src/graphql/errors.js';

describe('variable coercion errors', () => {
  it.each([
    [
      'Variable "$input" got invalid value "s3cret" at "input.grantType"; Value "s3cret" does not exist in "GrantType" enum.',
      'Variable "$input" got an invalid value at "input.grantType".',
    ],
    [
      'Variable "$first" got invalid value "abc"; Int cannot represent non-integer value: "abc"',
      'Variable "$first" got an invalid value.',
    ],
    [
      'Variable "$input" got invalid value { nope: "s3cret" }; Field "nope" is not defined by type "CreateConnectionInput".',
      'Variable "$input" got an invalid value. Field "nope" is not defined by type "CreateConnectionInput".',
    ],
  ])('drops the rejected value from %j', (message, expected) => {
    expect(scrubVariableError(message)).toBe(expected);
    expect(scrubVariableError(message)).not.toContain('s3cret');
  });

  it('leaves other messages alone', () => {
    expect(scrubVariableError('Cannot query field "x" on type "Query".')).toBe(
      'Cannot query field "x" on type "Query".',
    );
  });
});

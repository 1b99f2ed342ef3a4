import { describe, expect, it } from 'vitest';
import { GoMap, goMarshal, goMarshalIndent, goQuote } from '../../src/core/gojson';

describe('goQuote: Go encoding/json string escaping', () => {
  it.each([
    ['plain', '"plain"'],
    ['a<b>&c', '"a\\u003cb\\u003e\\u0026c"'],
    ['tab\tnl\ncr\r', '"tab\\tnl\\ncr\\r"'],
    ['\b\f', '"\\b\\f"'],
    ['\u0001\u001f', '"\\u0001\\u001f"'],
    ['q"b\\', '"q\\"b\\\\"'],
    ['\u2028\u2029', '"\\u2028\\u2029"'],
    ['é😀', '"é😀"'],
  ])('%j → %s', (input, expected) => {
    expect(goQuote(input)).toBe(expected);
  });
});

describe('goMarshalIndent', () => {
  it('sorts Go map keys by UTF-8 bytes and keeps struct field order', () => {
    // Prepare: keys whose UTF-8 byte order differs from their UTF-16 code-unit order
    const map = new GoMap({ b: 1, a: 2, '\u{1F600}': 3, '\uFF5E': 4 });
    // Act
    const out = goMarshalIndent({ z: map, a: [] , e: {} });
    // Assess: EF BD 9E (U+FF5E) < F0 9F 98 80 (U+1F600), although JS's default sort puts U+1F600 (D83D) first.
    expect(out).toBe('{\n\t"z": {\n\t\t"a": 2,\n\t\t"b": 1,\n\t\t"\uFF5E": 4,\n\t\t"\u{1F600}": 3\n\t},\n\t"a": [],\n\t"e": {}\n}');
  });

  it('compact form has no spaces', () => {
    expect(goMarshal({ A: ['x'], B: null, C: true })).toBe('{"A":["x"],"B":null,"C":true}');
  });
});

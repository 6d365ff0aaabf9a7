import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES } from '../src/errors.js'

/** The codes a Markdown document's tables name in their first column (`| \`CODE\` |`, several per cell allowed). */
function tableCodes(path: string): Set<string> {
  const text = readFileSync(new URL(path, import.meta.url), 'utf8')
  const codes = new Set<string>()
  for (const line of text.split('\n')) {
    const first = /^\|([^|]*)\|/.exec(line)?.[1] ?? ''
    for (const match of first.matchAll(/`(?:\d{3} )?([A-Z_]+)`/g)) codes.add(match[1]!)
  }
  return codes
}

describe('error tables', () => {
  // A code the code has and a table forgot is a question a user cannot look up.
  for (const doc of ['../../../README.md', '../../../PROTOCOL.md', '../README.md']) {
    it(`should name every error code in ${doc.replace(/^(\.\.\/)+/, '')}`, () => {
      const named = tableCodes(doc)
      expect(Object.keys(ERROR_CODES).filter((code) => !named.has(code))).toEqual([])
    })
  }
})

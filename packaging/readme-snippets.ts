import { readFileSync } from 'node:fs'

/** A README code block that the packaging test compiles against the installed tarballs. */
export interface ReadmeSnippet {
  /** The README it comes from, relative to the repository root. */
  readme: string
  /** Line of the README where the code starts (1-based). */
  line: number
  /** Which TypeScript project compiles it: Node (nodenext) or a bundled browser app. */
  target: 'node' | 'browser'
  extension: 'ts' | 'tsx'
  code: string
}

/**
 * The fenced ```ts / ```tsx blocks of a README that follow a `<!-- snippet: node -->` or
 * `<!-- snippet: browser -->` line: the README's own text is what gets compiled, so a
 * README that stops compiling fails the test.
 *
 * @example
 * readmeSnippets(root, 'packages/node/README.md') // [{ readme, line: 18, target: 'node', extension: 'ts', code }]
 */
export function readmeSnippets(root: URL, readme: string): ReadmeSnippet[] {
  const text = readFileSync(new URL(readme, root), 'utf8')
  const found: ReadmeSnippet[] = []
  for (const match of text.matchAll(/^<!-- snippet: (node|browser) -->\n```(tsx?)\n([\s\S]*?)^```$/gm)) {
    const line = text.slice(0, match.index).split('\n').length + 2
    found.push({ readme, line, target: match[1] as ReadmeSnippet['target'], extension: match[2] as ReadmeSnippet['extension'], code: match[3]! })
  }
  return found
}

/** A file name that says where the snippet is: `packages__node__README.md_L18.ts`. */
export function snippetFileName(snippet: ReadmeSnippet): string {
  return `${snippet.readme.replaceAll('/', '__')}_L${snippet.line}.${snippet.extension}`
}

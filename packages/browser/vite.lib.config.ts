import { defineConfig, type Plugin } from 'vite'

const protocolSrc = (file: string) => new URL(`../protocol/src/${file}`, import.meta.url).pathname

/**
 * The protocol package is inlined, but only its events and errors: its schemas module pulls
 * in valibot, which only the server needs. A browser import of anything else from it fails
 * this build ("is not exported"), which is the point.
 */
function protocolWithoutSchemas(): Plugin {
  const id = '\0session-socket-protocol'
  return {
    name: 'session-socket:protocol-without-schemas',
    enforce: 'pre',
    resolveId: (source) => (source === '@session-socket/protocol' ? id : null),
    load: (source) =>
      source === id ? `export * from ${JSON.stringify(protocolSrc('errors.ts'))}\nexport * from ${JSON.stringify(protocolSrc('events.ts'))}\n` : null,
  }
}

/**
 * dist/react.js and dist/durable.js import the core by the package's own name, so an app that
 * imports several entries runs one copy of the core (and of the hook's shared-client cache).
 */
function entriesImportCoreByName(): Plugin {
  return {
    name: 'session-socket:entries-import-core-by-name',
    enforce: 'pre',
    async resolveId(source, importer) {
      if ((source === '../index.js' && importer?.includes('/src/react/')) || (source === './index.js' && importer?.endsWith('/src/durable-calls.ts'))) {
        return { id: '@session-socket/browser', external: true }
      }
      // dist/durable.js keeps its own copy of idb-keyval rather than a chunk shared with the
      // core: the core stays one file, and its size is what the budget says.
      if (source === 'idb-keyval' && importer?.endsWith('/src/idb-store.ts')) {
        const resolved = await this.resolve(source, importer, { skipSelf: true })
        return resolved ? `${resolved.id}?durable` : null
      }
      return null
    },
  }
}

const entry = (file: string) => new URL(`./src/${file}`, import.meta.url).pathname

/**
 * Two builds, one per output format (`vite build -c vite.lib.config.ts [--mode iife]`):
 * - default: ESM `dist/index.js` and `dist/react.js`; socket.io-client and React stay
 *   imports, nanoid, idb-keyval and the protocol's events and errors are inlined;
 * - iife: `dist/session-socket.iife.js` for a <script> tag, everything inlined, minified.
 */
export default defineConfig(({ mode }) => ({
  plugins: mode === 'iife' ? [protocolWithoutSchemas()] : [protocolWithoutSchemas(), entriesImportCoreByName()],
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    target: 'es2022',
    sourcemap: true,
    minify: true,
    lib:
      mode === 'iife'
        ? { entry: entry('script.ts'), formats: ['iife'], name: 'SessionSocket', fileName: () => 'session-socket.iife.js' }
        : { entry: { index: entry('index.ts'), react: entry('react/index.ts'), durable: entry('durable.ts') }, formats: ['es'], fileName: (_format, name) => `${name}.js` },
    rolldownOptions: {
      // Constants imported from another module (timeouts, the protocol version) are written
      // where they are used instead of kept as variables: the core is split into small modules.
      optimization: { inlineConst: { mode: 'all', pass: 2 } },
      // Keep react/jsx-runtime external too, not just "react".
      external: mode === 'iife' ? [] : [/^react($|\/)/, /^socket\.io-client($|\/)/],
      // Fully minified (Vite keeps whitespace in ES libraries), like socket.io-client's own ESM build:
      // source maps carry the source, the .d.ts files the docs.
      output: { comments: { legal: true, annotation: true, jsdoc: false }, minify: true },
    },
  },
}))

import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

// The front end: client/ → dist/public, served by the demo's Express server (dist/server).
// client/public/ (plain.html, plain.js) is copied as is: that page uses only the <script> bundle.
export default defineConfig({
  root: 'client',
  plugins: [react()],
  build: {
    outDir: '../dist/public',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: {
    // `vite` dev server, for work on the UI: the API and the socket stay on the demo server.
    proxy: {
      '/api': 'http://127.0.0.1:3000',
      '/login': 'http://127.0.0.1:3000',
      '/logout': 'http://127.0.0.1:3000',
      '/session-socket': 'http://127.0.0.1:3000',
      '/session-socket.iife.js': 'http://127.0.0.1:3000',
      '/socket.io': { target: 'ws://127.0.0.1:3000', ws: true },
    },
  },
})

// The <script> entry: the IIFE build (vite.lib.config.ts, mode "iife") assigns this default export to window.SessionSocket.
import * as core from './index.js'
import * as durable from './durable.js'
declare global { var SessionSocket: typeof import('./index.js') & typeof import('./durable.js') }
export default { ...core, ...durable }
